package rules

import (
	"fmt"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind is an action kind as rule files write it (`- email: …`): its name
// and how it decodes. Adding an action to Herald means writing a Kind in
// the action's own package and listing it where the loader is built; the
// rules, the engine and the applier need no edit.
type Kind struct {
	// Name is the key that introduces the action in a do list.
	Name string
	// Decode decodes and checks the action's YAML value. It reports every
	// problem through d, each at its position, and returns nil when there
	// was any.
	Decode func(d *Decoder, n *yaml.Node) Action
}

// Builtin returns the kinds every rule set has: set, unset, tag, untag,
// email, emit and cancel.
func Builtin() []Kind {
	return []Kind{
		{Name: "set", Decode: decodeSet},
		{Name: "unset", Decode: decodeUnset},
		{Name: "tag", Decode: decodeTag},
		{Name: "untag", Decode: decodeUntag},
		{Name: "email", Decode: decodeEmail},
		{Name: "emit", Decode: decodeEmit},
		{Name: "cancel", Decode: decodeCancel},
	}
}

// Loader loads rule files with a given set of action kinds.
type Loader struct {
	// Kinds are the action kinds rules may use; nil means Builtin.
	Kinds []Kind
}

func (l Loader) kinds() ([]Kind, []string, error) {
	kinds := l.Kinds
	if kinds == nil {
		kinds = Builtin()
	}
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		if k.Name == "" || k.Decode == nil {
			return nil, nil, fmt.Errorf("load rules: action kind %q has no name or no decoder", k.Name)
		}
		if slices.Contains(names, k.Name) {
			return nil, nil, fmt.Errorf("load rules: action kind %q is registered twice", k.Name)
		}
		names = append(names, k.Name)
	}
	return kinds, names, nil
}

// Decoder is what a Kind's decoder works with: positioned error reports
// carrying the rule's name, and the loader's compilation of values and
// templates. It is valid only during the Decode call.
type Decoder struct{ f *fileLoader }

// Errorf reports a problem at n's position.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) { d.f.errorf(n, format, args...) }

// Fields checks that n is a map whose keys are all in known, each at most
// once, and returns the values by key; nil when n is not a map.
func (d *Decoder) Fields(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	return d.f.fields(n, what, known)
}

// Pairs returns the keys and values of the map n in order.
func (d *Decoder) Pairs(n *yaml.Node, what string) (keys, values []*yaml.Node) {
	return d.f.pairs(n, what)
}

// String returns the text of the scalar n.
func (d *Decoder) String(n *yaml.Node, field string) (string, bool) { return d.f.str(n, field) }

// Strings accepts one scalar or a list of scalars.
func (d *Decoder) Strings(n *yaml.Node, field string) []*yaml.Node { return d.f.strs(n, field) }

// Bool returns the boolean n.
func (d *Decoder) Bool(n *yaml.Node, field string) (bool, bool) { return d.f.boolean(n, field) }

// Value compiles the scalar n into a Value: constants stay constants, text
// may embed ${ expressions }, checked against the rule environment.
func (d *Decoder) Value(n *yaml.Node, field string) *Value { return d.f.value(n, field) }

// Duration reads a duration such as 30s, 48h or 7d.
func (d *Decoder) Duration(n *yaml.Node, field string) (time.Duration, bool) {
	s, ok := d.f.str(n, field)
	if !ok {
		return 0, false
	}
	t, err := parseDuration(s)
	if err != nil || t <= 0 {
		d.f.errorf(n, "%s: %q is not a duration such as 7d, 48h or 30m", field, s)
		return 0, false
	}
	return t, true
}

// Shorthand lets an action be written as one scalar standing for the map
// {key: scalar}, as in `- emit: newsletter.confirmed`. Anything else is
// returned as it is.
func (d *Decoder) Shorthand(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		return n
	}
	return &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: key, Line: n.Line, Column: n.Column}, n,
	}}
}

// Template loads the email template name from templates/ beside the rule
// file.
func (d *Decoder) Template(name string) (*Template, error) { return d.f.template(d.f.dir, name) }

// Rule is the name of the rule being decoded ("" when it has none yet).
func (d *Decoder) Rule() string { return d.f.rule }
