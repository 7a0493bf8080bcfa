package rules

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/profile"
	"gopkg.in/yaml.v3"
)

// reservedNames are profile properties rules cannot set or unset.
var reservedNames = []string{"uuid", "known", "attributes", "tags", "created", "updated"}

func (f *fileLoader) attributeName(k *yaml.Node, action string) bool {
	name := k.Value
	switch {
	case slices.Contains(reservedNames, name):
		f.errorf(k, "%s: %s is kept by Herald and cannot be changed by rules", action, name)
	case !validAttribute(name):
		f.errorf(k, "%s: %q is not an attribute name; use letters, digits and _, starting with a letter, at most 64 characters", action, name)
	default:
		return true
	}
	return false
}

func validAttribute(s string) bool { return profile.ValidAttribute(s) }

func (f *fileLoader) setAction(n *yaml.Node) Action {
	keys, values := f.pairs(n, "set")
	if keys == nil && n.Kind == yaml.MappingNode {
		f.errorf(n, "set: nothing to set")
	}
	a := &SetAction{}
	for i, k := range keys {
		if !f.attributeName(k, "set") {
			continue
		}
		v := f.value(values[i], "set "+k.Value)
		if v == nil {
			continue
		}
		if profile.IsStandardField(k.Value) {
			if got, bad := acceptText.refuses(v); bad {
				f.errorf(values[i], "set %s: %s holds text, and this value is %s", k.Value, k.Value, got)
				continue
			}
		} else if got, bad := acceptScalar.refuses(v); bad {
			f.errorf(values[i], "set %s: an attribute holds text, a number or true/false, and this value is %s", k.Value, got)
			continue
		}
		a.Fields = append(a.Fields, Assign{Name: k.Value, Value: v})
	}
	return a
}

func (f *fileLoader) unsetAction(n *yaml.Node) Action {
	a := &UnsetAction{}
	for _, s := range f.strs(n, "unset") {
		if f.attributeName(s, "unset") {
			a.Names = append(a.Names, s.Value)
		}
	}
	return a
}

func (f *fileLoader) tagAction(kind string, n *yaml.Node) Action {
	var tags []*Value
	for _, s := range f.strs(n, kind) {
		var v *Value
		if s.Tag == "!!str" {
			v = f.value(s, kind)
		} else {
			// A tag written as a number or true/false is the text as
			// written: tag: 2026 is the tag "2026".
			v = &Value{Src: s.Value, konst: s.Value}
		}
		if v == nil {
			continue
		}
		if v.IsConst() {
			if t, _ := v.Const().(string); !ValidTag(t) {
				f.errorf(s, "%s: %q is not a tag; %s", kind, s.Value, tagRule)
				continue
			}
		} else if got, bad := acceptTags.refuses(v); bad {
			f.errorf(s, "%s: a tag is text, or a list of text, and this value is %s", kind, got)
			continue
		}
		tags = append(tags, v)
	}
	if kind == "tag" {
		return &TagAction{Tags: tags}
	}
	return &UntagAction{Tags: tags}
}

// tagRule says what a tag may hold, for messages.
const tagRule = "use letters, digits, -, _, . and :, at most 64 characters"

// ValidTag reports whether s can be a profile tag (profile.ValidTag).
func ValidTag(s string) bool { return profile.ValidTag(s) }

// SetAction sets standard profile fields and custom attributes.
type SetAction struct{ Fields []Assign }

// UnsetAction removes standard profile fields or custom attributes.
type UnsetAction struct{ Names []string }

// TagAction adds tags to the profile.
type TagAction struct{ Tags []*Value }

// UntagAction removes tags from the profile.
type UntagAction struct{ Tags []*Value }

// Kind implements Action.
func (*SetAction) Kind() string { return "set" }

// Kind implements Action.
func (*UnsetAction) Kind() string { return "unset" }

// Kind implements Action.
func (*TagAction) Kind() string { return "tag" }

// Kind implements Action.
func (*UntagAction) Kind() string { return "untag" }

// Plan implements Action.
func (a *SetAction) Plan(s Step) error {
	for _, f := range a.Fields {
		v, err := s.Eval(f.Value)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		v, err = attributeValue(f.Name, v)
		if err != nil {
			return err
		}
		if err := s.Change(profile.OpSet, f.Name, v); err != nil {
			return err
		}
	}
	return nil
}

// Plan implements Action.
func (a *UnsetAction) Plan(s Step) error {
	for _, name := range a.Names {
		if err := s.Change(profile.OpUnset, name, nil); err != nil {
			return err
		}
	}
	return nil
}

// Plan implements Action.
func (a *TagAction) Plan(s Step) error { return planTags(s, profile.OpTag, a.Tags) }

// Plan implements Action.
func (a *UntagAction) Plan(s Step) error { return planTags(s, profile.OpUntag, a.Tags) }

func planTags(s Step, op profile.Op, tags []*Value) error {
	for _, t := range tags {
		v, err := s.Eval(t)
		if err != nil {
			return err
		}
		names, err := tagsOf(v)
		if err != nil {
			return err
		}
		for _, tag := range names {
			if err := s.Change(op, tag, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// tagsOf returns the tags a value names: text is one tag; a list names
// each of its elements, trimmed of spaces, leaving out empty and missing
// ones, so
// ${ split(params.form_type ?? "", ",") } tags each type of a form.
func tagsOf(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		if !ValidTag(x) {
			hint := ""
			if strings.Contains(x, ",") {
				hint = `; to name several tags, give a list, such as ${ split(params.form_type ?? "", ",") }`
			}
			return nil, fmt.Errorf("%q is not a tag; %s%s", x, tagRule, hint)
		}
		return []string{x}, nil
	case nil:
		return nil, fmt.Errorf(`"" is not a tag; %s`, tagRule)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("a tag is text, or a list of text, and this value is %s", describeValue(v))
	}
	out := make([]string, 0, rv.Len())
	for i := range rv.Len() {
		e := rv.Index(i).Interface()
		if e == nil {
			continue // a missing value, such as params.x in [params.x]
		}
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("list element %s is %s, not a tag: a tag is text", Format(e), describeValue(e))
		}
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case !ValidTag(s):
			return nil, fmt.Errorf("list element %q is not a tag; %s", s, tagRule)
		default:
			out = append(out, s)
		}
	}
	return out, nil
}

func decodeSet(d *Decoder, n *yaml.Node) Action   { return d.f.setAction(n) }
func decodeUnset(d *Decoder, n *yaml.Node) Action { return d.f.unsetAction(n) }
func decodeTag(d *Decoder, n *yaml.Node) Action   { return d.f.tagAction("tag", n) }
func decodeUntag(d *Decoder, n *yaml.Node) Action { return d.f.tagAction("untag", n) }

// attributeValue checks a value for a profile field or attribute and brings
// numbers to float64, the one number type profiles hold.
func attributeValue(name string, v any) (any, error) {
	if profile.IsStandardField(name) {
		if _, ok := v.(string); ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s holds text, not %s", name, typeName(v))
	}
	if f, ok := number(v); ok {
		return f, nil
	}
	switch x := v.(type) {
	case string, bool, float64:
		return v, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case nil:
		return nil, fmt.Errorf("%s: the value is empty (nil); use unset to remove an attribute", name)
	}
	return nil, fmt.Errorf("%s: an attribute holds text, a number or true/false, not %s", name, typeName(v))
}

// number converts any Go number to float64, the one number type profiles
// and event params hold.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "true/false"
	case int, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
