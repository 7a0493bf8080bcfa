package rules

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"gopkg.in/yaml.v3"
)

var ruleFields = []string{"name", "description", "enabled", "on", "match", "if", "do"}

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
	prog, err := expr.Compile(src, f.condOpts...)
	if err != nil {
		f.exprError(n, "if", exprOffsetError(err, src, 0))
		return nil
	}
	return &Condition{Src: src, Program: prog}
}

// actions decodes the do: list; each entry is a map with one action.
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
			f.errorf(item, "each entry of do is one action, such as - tag: newsletter; one of %s", strings.Join(actionKinds, ", "))
			continue
		}
		k, v := item.Content[0], resolve(item.Content[1])
		var a Action
		switch k.Value {
		case "set":
			a = f.setAction(v)
		case "unset":
			a = f.unsetAction(v)
		case "tag", "untag":
			a = f.tagAction(k.Value, v)
		case "email":
			a = f.emailAction(v)
		case "emit":
			a = f.emitAction(v)
		default:
			f.errorf(k, "unknown action %q%s; actions are %s", k.Value, suggest(k.Value, actionKinds), strings.Join(actionKinds, ", "))
		}
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

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

func validAttribute(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) || c == '-' {
			return false
		}
	}
	return true
}

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
		if kind := v.resultKind(); profile.IsStandardField(k.Value) && kind != "" && kind != "string" {
			f.errorf(values[i], "set %s: %s holds text, and this value is %s", k.Value, k.Value, article(kind))
			continue
		}
		a.Fields = append(a.Fields, Assign{Name: k.Value, Value: v})
	}
	return a
}

func article(kind string) string {
	switch kind {
	case "bool":
		return "true/false"
	case "number":
		return "a number"
	}
	return "of type " + kind
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
		v := f.value(s, kind)
		if v == nil {
			continue
		}
		if v.IsConst() {
			if t, _ := v.Const().(string); !ValidTag(t) {
				f.errorf(s, "%s: %q is not a tag; use letters, digits, -, _, . and :, at most 64 characters", kind, s.Value)
				continue
			}
		}
		tags = append(tags, v)
	}
	if kind == "tag" {
		return &TagAction{Tags: tags}
	}
	return &UntagAction{Tags: tags}
}

// ValidTag reports whether s can be a profile tag.
func ValidTag(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !isWordByte(c) && c != '.' && c != ':' {
			return false
		}
	}
	return true
}

var emailFields = []string{"template", "to", "subject", "marketing", "links"}

func (f *fileLoader) emailAction(n *yaml.Node) Action {
	fields := f.fields(n, "email", emailFields)
	if fields == nil {
		return nil
	}
	a := &EmailAction{To: f.defaultTo}
	if v, ok := fields["to"]; ok {
		a.To = f.value(v, "email to")
	}
	if v, ok := fields["subject"]; ok {
		a.Subject = f.value(v, "email subject")
	}
	if v, ok := fields["marketing"]; ok {
		a.Marketing, _ = f.boolean(v, "email marketing")
	}
	if v, ok := fields["links"]; ok {
		a.Links = f.links(v)
	}
	tn, ok := fields["template"]
	if !ok {
		f.errorf(n, "email has no template: name one from templates/ beside this file")
		return nil
	}
	name, ok := f.str(tn, "email template")
	if !ok {
		return nil
	}
	if !validTemplateName(name) {
		f.errorf(tn, "email template %q: a template name has letters, digits, - and _ only", name)
		return nil
	}
	t, err := f.template(f.dir, name)
	if err != nil {
		f.errorf(tn, "email template %q: %v", name, err)
		return nil
	}
	a.Template = t
	if a.Subject == nil && !t.HasSubject() {
		f.errorf(tn, `email has no subject: add subject: or {{define "subject"}}…{{end}} to %s`, t.TextFile)
	}
	for _, use := range t.Links() {
		if !hasLink(a.Links, use) {
			f.errorf(tn, "email template %q uses link %q, which this email does not declare under links", name, use)
		}
	}
	if a.Marketing && !hasLink(a.Links, "unsubscribe") {
		f.errorf(n, "email: a marketing email needs an unsubscribe link: add links: {unsubscribe: newsletter.unsubscribe}")
	}
	return a
}

func hasLink(links []Link, name string) bool {
	for _, l := range links {
		if l.Name == name {
			return true
		}
	}
	return false
}

var linkFields = []string{"emit", "label", "expires"}

// links decodes links: name -> action to emit, or name -> {emit, label,
// expires}.
func (f *fileLoader) links(n *yaml.Node) []Link {
	keys, values := f.pairs(n, "links")
	var out []Link
	for i, k := range keys {
		l := Link{Name: k.Value, Expires: DefaultLinkExpiry}
		if !validAttribute(l.Name) {
			f.errorf(k, "links: %q is not a link name; use letters, digits and _, starting with a letter", l.Name)
			continue
		}
		v := values[i]
		emitNode := v
		if v.Kind == yaml.MappingNode {
			fields := f.fields(v, "link "+l.Name, linkFields)
			if fields == nil {
				continue
			}
			emitNode = fields["emit"]
			if emitNode == nil {
				f.errorf(v, "link %s has no emit: name the action a click emits, such as newsletter.confirm", l.Name)
				continue
			}
			if lv, ok := fields["label"]; ok {
				l.Label, _ = f.str(lv, "link "+l.Name+" label")
			}
			if ev, ok := fields["expires"]; ok {
				s, _ := f.str(ev, "link "+l.Name+" expires")
				d, err := parseDuration(s)
				if err != nil || d <= 0 {
					f.errorf(ev, "link %s expires: %q is not a duration such as 7d, 48h or 30m", l.Name, s)
					continue
				}
				l.Expires = d
			}
		}
		action, ok := f.str(emitNode, "link "+l.Name)
		if !ok {
			continue
		}
		if !event.ValidAction(action) {
			f.errorf(emitNode, "link %s: %q is not an action of the form context.activity", l.Name, action)
			continue
		}
		l.Emit = action
		out = append(out, l)
	}
	return out
}

// parseDuration is time.ParseDuration that also takes whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

var emitFields = []string{"action", "label", "uuid", "params"}

func (f *fileLoader) emitAction(n *yaml.Node) Action {
	if n.Kind == yaml.ScalarNode { // emit: newsletter.confirmed
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "action", Line: n.Line, Column: n.Column}, n,
		}}
	}
	fields := f.fields(n, "emit", emitFields)
	if fields == nil {
		return nil
	}
	a := &EmitAction{}
	if v, ok := fields["action"]; !ok {
		f.errorf(n, "emit has no action: name the event to emit, such as newsletter.confirmed")
	} else if s, ok := f.str(v, "emit action"); ok {
		if !event.ValidAction(s) {
			f.errorf(v, "emit action %q is not of the form context.activity (letters, digits, _ or -, parts joined by dots), at most %d characters", s, event.MaxActionLen)
		}
		a.Action = s
	}
	if v, ok := fields["label"]; ok {
		a.Label = f.value(v, "emit label")
	}
	if v, ok := fields["uuid"]; ok {
		a.UUID = f.value(v, "emit uuid")
	}
	if v, ok := fields["params"]; ok {
		keys, values := f.pairs(v, "emit params")
		for i, k := range keys {
			if k.Value == "" || len(k.Value) > event.MaxParamKeyLen {
				f.errorf(k, "emit params: %q is not a parameter name (1 to %d characters)", k.Value, event.MaxParamKeyLen)
				continue
			}
			if pv := f.value(values[i], "emit params."+k.Value); pv != nil {
				a.Params = append(a.Params, Assign{Name: k.Value, Value: pv})
			}
		}
	}
	return a
}
