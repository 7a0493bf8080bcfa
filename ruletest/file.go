// Package ruletest runs rule unit tests: YAML files (*_test.yaml) that
// name rule files and hold cases, each a profile to start from, events to
// send and what must come of them (emails, profile, emitted events, rules
// fired or not). Cases run through package replay, the very applier
// herald serve runs, with effects recorded instead of performed.
package ruletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"gopkg.in/yaml.v3"
)

// DefaultStart is where a case's clock starts when it gives no start.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultUUID is the customer of a case that names none.
const DefaultUUID = "customer-1"

// File is a parsed test file.
type File struct {
	Path string
	// Rules lists the rule files and folders, relative paths resolved
	// against the test file's folder.
	Rules []string
	Cases []*Case
}

// Case is one test case.
type Case struct {
	Name    string
	Line    int
	UUID    string
	Start   time.Time
	Profile *profile.Profile // nil: no profile
	Events  []*Step
	Expect  *Expect // about the whole case; nil when none
}

// Step is one input event of a case and what it alone must cause, with
// the timers due by its time, which fire first. A step without an action
// only moves the clock on to At, firing the timers due by then.
type Step struct {
	Line int
	At   time.Time
	Wait bool // no event: the clock moves on
	// Click names a link of the latest email that has it: the step is
	// the event the link page publishes when the customer confirms it.
	Click Named
	// JSON is the event's envelope without its time, which the case
	// gives.
	Event  map[string]any
	Expect *Expect
}

// Expect is what a case or one event must cause. A nil list leaves that
// effect unchecked.
type Expect struct {
	Line     int
	Emails   []*EmailExp
	NoEmail  bool
	emails   bool // Emails was given, possibly empty
	Profile  *ProfileExp
	Emitted  []*EmitExp
	emitted  bool
	Fired    []Named
	NotFired []Named
	Errors   []Named // substrings of the rule errors expected
	// TimersFired lists the keys of the timers that fired, in order;
	// TimersPending the customer's timers left, soonest first.
	TimersFired   []Named
	timersFired   bool
	TimersPending []*TimerExp
	timersPending bool
}

// TimerExp is an expected pending timer; empty fields are not checked.
type TimerExp struct {
	Line, Col int
	Key       string
	Action    string
	At        time.Time
}

// Named is a name, or text, with where it is written.
type Named struct {
	Name      string
	Line, Col int
}

// EmailExp is an expected email; empty fields are not checked.
type EmailExp struct {
	Line, Col   int
	To          Named
	Subject     Named
	Template    Named
	Contains    []Named
	NotContains []Named
	Links       []Named
}

// ProfileExp is what the profile must hold: the fields and attributes
// named (nil: must be absent), the tags listed, not the tags in NotTags.
type ProfileExp struct {
	Line, Col int
	Fields    []FieldExp
	Tags      []Named
	NotTags   []Named
	Missing   bool // the customer must have no profile
}

// FieldExp is one field or attribute the profile must hold.
type FieldExp struct {
	Name      string // "email" or "attributes.NAME"
	Value     any    // nil: absent
	Line, Col int
}

// EmitExp is an expected emitted event.
type EmitExp struct {
	Line, Col int
	Action    string
	Label     string
	Params    map[string]any
}

// Parse reads a test file. Its errors are rules.Errors, positioned.
func Parse(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseBytes(path, data)
}

// ParseBytes parses the test file held in data as if read from path.
func ParseBytes(path string, data []byte) (*File, error) {
	d := &decoder{file: path}
	f := &File{Path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSpace(yamlLine.ReplaceAllString(msg, ""))
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		return nil, rules.Errors{{File: path, Line: line, Col: 1, Msg: "YAML: " + msg}}
	}
	if len(doc.Content) == 0 {
		return nil, rules.Errors{{File: path, Line: 1, Col: 1, Msg: "empty test file: give rule_files and tests"}}
	}
	top := d.fields(doc.Content[0], "a test file", "rule_files", "tests")
	if top == nil {
		return nil, d.errs
	}
	dir := filepath.Dir(path)
	if n := top["rule_files"]; n != nil {
		for _, s := range d.strings(n, "rule_files") {
			p := s.Name
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			if _, err := os.Stat(p); err != nil {
				d.errAt(s.Line, s.Col, "rule_files: %s does not exist", s.Name)
				continue
			}
			f.Rules = append(f.Rules, p)
		}
	} else {
		// The rule files beside the test file.
		f.Rules = []string{dir}
	}
	if n := top["tests"]; n == nil {
		d.errf(doc.Content[0], "tests: required, a list of cases")
	} else if n.Kind != yaml.SequenceNode {
		d.errf(n, "tests: must be a list of cases")
	} else {
		names := map[string]int{}
		for _, cn := range n.Content {
			c := d.testCase(cn)
			if c == nil {
				continue
			}
			if l, ok := names[c.Name]; ok {
				d.errf(cn, "test %q: the name is used already at line %d", c.Name, l)
			}
			names[c.Name] = cn.Line
			f.Cases = append(f.Cases, c)
		}
		if len(n.Content) == 0 {
			d.errf(n, "tests: no cases")
		}
	}
	if len(d.errs) > 0 {
		d.errs.Sort()
		return nil, d.errs
	}
	return f, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): ?`)

type decoder struct {
	file string
	errs rules.Errors
}

func (d *decoder) errf(n *yaml.Node, format string, args ...any) {
	d.errAt(n.Line, n.Column, format, args...)
}

func (d *decoder) errAt(line, col int, format string, args ...any) {
	d.errs = append(d.errs, &rules.Error{File: d.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// fields checks that n is a map with only the keys allowed, each once,
// and returns the values by key; nil when n is not a map.
func (d *decoder) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.errf(n, "%s must be a map", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(allowed, k.Value):
			d.errf(k, "unknown field %q in %s%s; fields: %s", k.Value, what, rules.Suggest(k.Value, allowed), strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			d.errf(k, "field %q given twice in %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (d *decoder) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errf(n, "%s: must be text", field)
		return ""
	}
	return n.Value
}

// strings decodes one text or a list of them.
func (d *decoder) strings(n *yaml.Node, field string) []Named {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []Named{{n.Value, n.Line, n.Column}}
	}
	if n.Kind != yaml.SequenceNode {
		d.errf(n, "%s: must be text or a list of text", field)
		return nil
	}
	var out []Named
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			d.errf(e, "%s: must be text or a list of text", field)
			continue
		}
		out = append(out, Named{e.Value, e.Line, e.Column})
	}
	return out
}

func (d *decoder) bool(n *yaml.Node, field string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.errf(n, "%s: must be true or false", field)
	}
	return b
}

// value decodes a scalar into text, a number (float64) or true/false,
// nil for null, as JSON gives them.
func (d *decoder) value(n *yaml.Node, field string) any {
	if n.Kind != yaml.ScalarNode {
		d.errf(n, "%s: must be text, a number or true/false", field)
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		d.errf(n, "%s: %v", field, err)
		return nil
	}
	return normalize(v)
}

// normalize gives numbers as float64, as they come out of JSON.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case time.Time: // an unquoted timestamp: the text as written
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// valueMap decodes a map of names to scalar values.
func (d *decoder) valueMap(n *yaml.Node, field string) map[string]any {
	if n.Kind != yaml.MappingNode {
		d.errf(n, "%s: must be a map", field)
		return nil
	}
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := out[k.Value]; dup {
			d.errf(k, "%s: %q given twice", field, k.Value)
		}
		out[k.Value] = d.value(v, field+"."+k.Value)
	}
	return out
}

// when decodes a time: RFC 3339, or an offset from start such as +10m,
// +2d, +1h30m.
func (d *decoder) when(n *yaml.Node, start time.Time) time.Time {
	s := d.str(n, "at")
	if s == "" {
		return start
	}
	if strings.HasPrefix(s, "+") {
		off, err := ParseOffset(s[1:])
		if err != nil {
			d.errf(n, "at: %q: %v", s, err)
			return start
		}
		return start.Add(off)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.errf(n, "at: %q is neither an RFC 3339 time nor an offset such as +10m or +2d", s)
		return start
	}
	return t.UTC()
}

// ParseOffset parses a duration with units d (days), h, m, s, ms, as
// 2d, 10m, 1h30m, 1d12h.
func ParseOffset(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty offset")
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		days, err := strconv.Atoi(rest[:i])
		if err != nil || days < 0 || days > 36500 {
			return 0, fmt.Errorf("bad number of days; write an offset such as +2d or +1d12h")
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		dur, err := time.ParseDuration(rest)
		if err != nil || dur < 0 {
			return 0, fmt.Errorf("bad offset; write one such as +10m, +2h, +2d or +1d12h")
		}
		total += dur
	}
	return total, nil
}

var caseFields = []string{"name", "uuid", "start", "profile", "events", "expect"}

func (d *decoder) testCase(n *yaml.Node) *Case {
	fs := d.fields(n, "a test", caseFields...)
	if fs == nil {
		return nil
	}
	c := &Case{Line: n.Line, UUID: DefaultUUID, Start: DefaultStart}
	if v := fs["name"]; v != nil {
		c.Name = d.str(v, "name")
	} else {
		d.errf(n, "name: required")
	}
	if v := fs["uuid"]; v != nil {
		c.UUID = d.str(v, "uuid")
	}
	if v := fs["start"]; v != nil {
		s := d.str(v, "start")
		if t, err := time.Parse(time.RFC3339Nano, s); err != nil {
			d.errf(v, "start: %q is not an RFC 3339 time", s)
		} else {
			c.Start = t.UTC()
		}
	}
	if v := fs["profile"]; v != nil {
		c.Profile = d.profile(v, c.UUID)
	}
	if v := fs["expect"]; v != nil {
		c.Expect = d.expect(v, c.Start)
	}
	v := fs["events"]
	switch {
	case v == nil:
		d.errf(n, "events: required, a list of events")
		return c
	case v.Kind != yaml.SequenceNode || len(v.Content) == 0:
		d.errf(v, "events: must be a list of events")
		return c
	}
	at := c.Start
	for _, en := range v.Content {
		st := d.step(en, c, at)
		if st != nil {
			c.Events = append(c.Events, st)
			at = st.At
		}
	}
	return c
}

var eventFields = []string{"at", "action", "click", "label", "id", "site", "uuid", "params", "expect"}

func (d *decoder) step(n *yaml.Node, c *Case, prev time.Time) *Step {
	fs := d.fields(n, "an event", eventFields...)
	if fs == nil {
		return nil
	}
	st := &Step{Line: n.Line, At: prev, Event: map[string]any{"uuid": c.UUID}}
	if v := fs["at"]; v != nil {
		st.At = d.when(v, c.Start)
	}
	if v := fs["click"]; v != nil {
		st.Click = Named{d.str(v, "click"), v.Line, v.Column}
		if fs["action"] != nil {
			d.errf(v, "click: give click or action, not both")
		}
	} else if fs["action"] == nil {
		if fs["at"] == nil {
			d.errf(n, "action: required (or only at, to let the clock move on)")
		}
		for _, k := range []string{"label", "id", "site", "uuid", "params"} {
			if fs[k] != nil && fs["at"] != nil {
				d.errf(n, "action: required with %s", k)
				break
			}
		}
		st.Wait = true
	}
	for _, k := range []string{"action", "label", "id", "site", "uuid"} {
		if v := fs[k]; v != nil {
			st.Event[k] = d.str(v, k)
		}
	}
	if v := fs["params"]; v != nil {
		st.Event["params"] = d.valueMap(v, "params")
	}
	if v := fs["expect"]; v != nil {
		st.Expect = d.expect(v, c.Start)
	}
	return st
}

var profileFields = []string{"email", "firstname", "lastname", "phone", "city", "company",
	"address", "zipCode", "countryCode", "birthDate", "attributes", "tags", "created", "updated"}

// profile decodes an initial profile as herald replay's --profiles reads
// one.
func (d *decoder) profile(n *yaml.Node, uuid string) *profile.Profile {
	fs := d.fields(n, "profile", profileFields...)
	if fs == nil {
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		d.errf(n, "profile: %v", err)
		return nil
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	for k, x := range m {
		if mm, ok := x.(map[string]any); ok {
			for kk, xx := range mm {
				mm[kk] = normalize(xx)
			}
		}
		m[k] = normalize(x)
	}
	m["uuid"] = uuid
	data, err := json.Marshal(m)
	if err != nil {
		d.errf(n, "profile: %v", err)
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p profile.Profile
	if err := dec.Decode(&p); err != nil {
		d.errf(n, "profile: %v", err)
		return nil
	}
	p.Normalize()
	return &p
}

var expectFields = []string{"emails", "no_email", "profile", "emitted", "fired", "not_fired", "errors", "timers_fired", "timers_pending"}

func (d *decoder) expect(n *yaml.Node, start time.Time) *Expect {
	fs := d.fields(n, "expect", expectFields...)
	if fs == nil {
		return nil
	}
	e := &Expect{Line: n.Line}
	if v := fs["emails"]; v != nil {
		e.emails = true
		if v.Kind != yaml.SequenceNode {
			d.errf(v, "emails: must be a list of emails")
		} else {
			for _, m := range v.Content {
				if x := d.email(m); x != nil {
					e.Emails = append(e.Emails, x)
				}
			}
		}
	}
	if v := fs["no_email"]; v != nil {
		e.NoEmail = d.bool(v, "no_email")
		if e.NoEmail && len(e.Emails) > 0 {
			d.errf(v, "no_email: true, but emails are expected too")
		}
	}
	if v := fs["profile"]; v != nil {
		e.Profile = d.profileExp(v)
	}
	if v := fs["emitted"]; v != nil {
		e.emitted = true
		if v.Kind != yaml.SequenceNode {
			d.errf(v, "emitted: must be a list of events")
		} else {
			for _, m := range v.Content {
				if x := d.emitExp(m); x != nil {
					e.Emitted = append(e.Emitted, x)
				}
			}
		}
	}
	if v := fs["fired"]; v != nil {
		e.Fired = d.strings(v, "fired")
	}
	if v := fs["not_fired"]; v != nil {
		e.NotFired = d.strings(v, "not_fired")
	}
	if v := fs["errors"]; v != nil {
		e.Errors = d.strings(v, "errors")
	}
	if v := fs["timers_fired"]; v != nil {
		e.timersFired = true
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			e.TimersFired = nil
		} else {
			e.TimersFired = d.strings(v, "timers_fired")
		}
	}
	if v := fs["timers_pending"]; v != nil {
		e.timersPending = true
		if v.Kind != yaml.SequenceNode {
			d.errf(v, "timers_pending: must be a list of timers")
		} else {
			for _, m := range v.Content {
				tf := d.fields(m, "an expected timer", "key", "action", "at")
				if tf == nil {
					continue
				}
				x := &TimerExp{Line: m.Line, Col: m.Column}
				if k := tf["key"]; k != nil {
					x.Key = d.str(k, "key")
				}
				if a := tf["action"]; a != nil {
					x.Action = d.str(a, "action")
				}
				if a := tf["at"]; a != nil {
					x.At = d.when(a, start)
				}
				e.TimersPending = append(e.TimersPending, x)
			}
		}
	}
	return e
}

var emailFields = []string{"to", "subject", "template", "contains", "not_contains", "links"}

func (d *decoder) email(n *yaml.Node) *EmailExp {
	fs := d.fields(n, "an expected email", emailFields...)
	if fs == nil {
		return nil
	}
	e := &EmailExp{Line: n.Line, Col: n.Column}
	for k, p := range map[string]*Named{"to": &e.To, "subject": &e.Subject, "template": &e.Template} {
		if v := fs[k]; v != nil {
			*p = Named{d.str(v, k), v.Line, v.Column}
		}
	}
	names := func(k string) []Named {
		if v := fs[k]; v != nil {
			return d.strings(v, k)
		}
		return nil
	}
	e.Contains, e.NotContains, e.Links = names("contains"), names("not_contains"), names("links")
	return e
}

func (d *decoder) emitExp(n *yaml.Node) *EmitExp {
	fs := d.fields(n, "an expected emitted event", "action", "label", "params")
	if fs == nil {
		return nil
	}
	e := &EmitExp{Line: n.Line, Col: n.Column}
	if v := fs["action"]; v != nil {
		e.Action = d.str(v, "action")
	} else {
		d.errf(n, "action: required")
	}
	if v := fs["label"]; v != nil {
		e.Label = d.str(v, "label")
	}
	if v := fs["params"]; v != nil {
		e.Params = d.valueMap(v, "params")
	}
	return e
}

var profileExpFields = append(slices.Clone(profileFields[:10]), "attributes", "agreement", "tags", "not_tags", "none")

func (d *decoder) profileExp(n *yaml.Node) *ProfileExp {
	fs := d.fields(n, "the expected profile", profileExpFields...)
	if fs == nil {
		return nil
	}
	p := &ProfileExp{Line: n.Line, Col: n.Column}
	for _, k := range profileFields[:10] {
		if v := fs[k]; v != nil {
			p.Fields = append(p.Fields, FieldExp{Name: k, Value: d.value(v, k), Line: v.Line, Col: v.Column})
		}
	}
	if v := fs["agreement"]; v != nil {
		p.Fields = append(p.Fields, FieldExp{Name: "attributes." + rules.AgreementAttribute, Value: d.value(v, "agreement"), Line: v.Line, Col: v.Column})
	}
	if v := fs["attributes"]; v != nil {
		if v.Kind != yaml.MappingNode {
			d.errf(v, "attributes: must be a map")
		} else {
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, x := v.Content[i], v.Content[i+1]
				p.Fields = append(p.Fields, FieldExp{Name: "attributes." + k.Value, Value: d.value(x, "attributes."+k.Value), Line: x.Line, Col: x.Column})
			}
		}
	}
	if v := fs["tags"]; v != nil {
		p.Tags = d.strings(v, "tags")
	}
	if v := fs["not_tags"]; v != nil {
		p.NotTags = d.strings(v, "not_tags")
	}
	if v := fs["none"]; v != nil {
		p.Missing = d.bool(v, "none")
	}
	return p
}
