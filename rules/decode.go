package rules

import (
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/herald-events/herald/event"
	"gopkg.in/yaml.v3"
)

var ruleFields = []string{"name", "description", "enabled", "on", "match", "if", "limit", "once", "do"}

// decodeRule decodes and compiles one rule, reporting every problem. It
// returns nil when the rule has errors.
func (f *fileLoader) decodeRule(n *yaml.Node) *Rule {
	f.rule = ""
	defer func() { f.rule = "" }()
	before := len(f.errs)

	if n.Kind != yaml.MappingNode {
		f.errorf(n, "a rule must be a map with name, on and do, not %s", describe(n))
		return nil
	}
	// Find the name first so every other message can carry it.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode {
				f.rule = v.Value
			}
		}
	}
	fields := f.fields(n, "a rule", ruleFields)
	r := &Rule{File: f.file, Line: n.Line, Enabled: true}

	if v, ok := fields["name"]; !ok {
		f.errorf(n, "rule has no name")
	} else if name, ok := f.str(v, "name"); ok {
		if !validName(name) {
			f.errorf(v, "name %q: use letters, digits, -, _ and ., starting with a letter or digit, at most 64 characters", name)
		} else if prev := f.byName[name]; prev != nil {
			f.errorf(v, "name is already used by the rule at %s:%d", prev.File, prev.Line)
		} else {
			r.Name = name
			f.byName[name] = r
		}
	}
	if v, ok := fields["description"]; ok {
		r.Description, _ = f.str(v, "description")
	}
	if v, ok := fields["enabled"]; ok {
		r.Enabled, _ = f.boolean(v, "enabled")
	}
	if v, ok := fields["on"]; !ok {
		f.errorf(n, "rule has no trigger: add on: with an action such as form.submit")
	} else {
		r.On = f.triggers(v)
	}
	if v, ok := fields["match"]; ok {
		r.Match = f.matches(v)
	}
	if v, ok := fields["if"]; ok {
		r.If = f.condition(v)
	}
	r.Limit = f.limit(fields)
	if v, ok := fields["do"]; !ok {
		f.errorf(n, "rule has nothing to do: add do: with a list of actions")
	} else {
		r.Do = f.actions(v)
	}
	if len(f.errs) > before {
		return nil
	}
	return r
}

func validName(s string) bool {
	if s == "" || len(s) > 64 || !isWordByte(s[0]) || s[0] == '-' || s[0] == '_' {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) && c != '.' {
			return false
		}
	}
	return true
}

// triggers decodes on: one action, a list, or globs such as newsletter.*.
func (f *fileLoader) triggers(n *yaml.Node) []string {
	var out []string
	for _, s := range f.strs(n, "on") {
		t := s.Value
		switch {
		case event.ValidAction(t):
		case strings.ContainsAny(t, "*?["):
			if _, err := path.Match(t, ""); err != nil || strings.ContainsAny(t, "/ ") {
				f.errorf(s, "on: %q is not a valid glob; * matches any part of an action, as in newsletter.*", t)
				continue
			}
		default:
			f.errorf(s, "on: %q is not an action of the form context.activity (such as form.submit) nor a glob (such as newsletter.*)", t)
			continue
		}
		if slices.Contains(out, t) {
			f.errorf(s, "on: %q is listed twice", t)
			continue
		}
		out = append(out, t)
	}
	return out
}

// matches decodes match: param -> value or list of values.
func (f *fileLoader) matches(n *yaml.Node) []Match {
	keys, values := f.pairs(n, "match")
	out := make([]Match, 0, len(keys))
	for i, k := range keys {
		if k.Value == "" || len(k.Value) > event.MaxParamKeyLen {
			f.errorf(k, "match: %q is not a parameter name", k.Value)
			continue
		}
		m := Match{Param: k.Value}
		for _, v := range f.strs(values[i], "match."+k.Value) {
			m.Values = append(m.Values, canonicalScalar(v))
		}
		out = append(out, m)
	}
	return out
}

// canonicalScalar writes a YAML scalar the way Format writes the event
// parameter it is compared with.
func canonicalScalar(n *yaml.Node) string {
	if n.Tag == "!!int" || n.Tag == "!!float" {
		var x float64
		if err := n.Decode(&x); err == nil {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	return n.Value
}

func (f *fileLoader) condition(n *yaml.Node) *Condition {
	src, ok := f.str(n, "if")
	if !ok {
		return nil
	}
	if strings.TrimSpace(src) == "" {
		f.errorf(n, "if is empty")
		return nil
	}
	if err := checkExprSource(src); err != nil {
		f.exprError(n, "if", err)
		return nil
	}
	prog, err := expr.Compile(src, f.condOpts...)
	if err != nil {
		f.exprError(n, "if", exprOffsetError(err, src, 0))
		return nil
	}
	return &Condition{Src: src, Program: prog}
}

// actions decodes the do: list; each entry is a map with one action,
// decoded by the Kind of that name.
func (f *fileLoader) actions(n *yaml.Node) []Action {
	if n.Kind != yaml.SequenceNode {
		f.errorf(n, "do must be a list of actions, not %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		f.errorf(n, "do is an empty list: a rule needs at least one action")
	}
	out := make([]Action, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			f.errorf(item, "each entry of do is one action, such as - tag: newsletter; one of %s", strings.Join(f.kindNames, ", "))
			continue
		}
		k, v := item.Content[0], resolve(item.Content[1])
		kind, ok := f.kinds[k.Value]
		if !ok {
			f.errorf(k, "unknown action %q%s; actions are %s", k.Value, suggest(k.Value, f.kindNames), strings.Join(f.kindNames, ", "))
			continue
		}
		if a := f.decodeAction(kind, v); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// decodeAction runs a kind's decoder; a panic in it is reported as an
// error at the action, never a crash of the loader.
func (f *fileLoader) decodeAction(k Kind, n *yaml.Node) (a Action) {
	before := len(f.errs)
	defer func() {
		if v := recover(); v != nil {
			f.errorf(n, "%s: decoding the action failed: %v", k.Name, v)
			a = nil
		}
	}()
	a = k.Decode(&Decoder{f: f}, n)
	if len(f.errs) > before {
		return nil
	}
	return a
}

// reservedNames are profile properties rules cannot set or unset.
