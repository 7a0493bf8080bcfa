package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/event"
	"gopkg.in/yaml.v3"
)

// Timers: an emit with `after:` or `at:` publishes its event later, on a
// durable timer under a key; `cancel:` removes a customer's timers by key.

// MaxKeyLen bounds a timer key, in bytes.
const MaxKeyLen = 128

// timing decodes the after, at and key fields of an emit.
func (f *fileLoader) timing(fields map[string]*yaml.Node, a *EmitAction) {
	after, hasAfter := fields["after"]
	at, hasAt := fields["at"]
	key, hasKey := fields["key"]
	if hasAfter && hasAt {
		f.errorf(at, "emit: give after or at, not both")
		return
	}
	if hasAfter {
		d := &Decoder{f: f}
		if v, ok := d.Duration(after, "emit after"); ok {
			a.After = v
		}
	}
	if hasAt {
		a.At = f.typedValue(at, "emit at", "a time is a time or RFC 3339 text", accepts(func(t reflect.Type) bool { return t == timeType || isText(t) }))
	}
	if hasKey {
		if !hasAfter && !hasAt {
			f.errorf(key, "emit key: a key names a timer; give after or at too")
			return
		}
		if v := f.typedValue(key, "emit key", "a key is text", acceptScalar); v != nil {
			if v.IsConst() {
				if err := checkKey(Format(v.Const())); err != nil {
					f.errorf(key, "emit key: %v", err)
					return
				}
			}
			a.Key = v
		}
	}
}

// checkKey says what is wrong with a timer key.
func checkKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("the key is empty")
	case len(k) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes: at most %d", len(k), MaxKeyLen)
	case !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("key %q: not valid UTF-8 or holds a control character", k)
	}
	return nil
}

// key evaluates the timer's key: Key, or the rule's name and the action.
func (a *EmitAction) key(s Step) (string, error) {
	if a.Key == nil {
		return s.Rule() + "." + a.Action, nil
	}
	v, err := s.Eval(a.Key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	k := Format(v)
	if err := checkKey(k); err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	return k, nil
}

// planTimer plans out, the event of a timed emit, as a *Timer due after
// After or at At.
func (a *EmitAction) planTimer(s Step, out *event.Event) error {
	due := s.Now().Add(a.After)
	if a.At != nil {
		v, err := s.Eval(a.At)
		if err != nil {
			return fmt.Errorf("at: %w", err)
		}
		switch v := v.(type) {
		case time.Time:
			due = v
		case string:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("at: %q is not an RFC 3339 time", v)
			}
			due = t
		default:
			return fmt.Errorf("at: a time is a time or RFC 3339 text, not %s", describeValue(v))
		}
	}
	key, err := a.key(s)
	if err != nil {
		return err
	}
	due = due.UTC()
	// The event happens when the timer fires.
	out.Time = due
	if err := out.Validate(); err != nil {
		return err
	}
	s.Effect(&Timer{Key: key, Due: due, Event: out})
	return nil
}

// Timer is a planned timed emit: Event is published at Due, on the timer
// Key of its customer, replacing the timer the key had.
type Timer struct {
	Key   string
	Due   time.Time
	Event *event.Event
}

// Kind implements Effect.
func (*Timer) Kind() string { return "timer" }

// Timed is the wire form of a "timer" effect.
type Timed struct {
	Key    string       `json:"key"`
	Due    time.Time    `json:"due"`
	Event  *event.Event `json:"event"`
	Depth  int          `json:"depth"`
	Budget int          `json:"budget,omitempty"`
}

// Render implements Effect.
func (t *Timer) Render(*RenderContext) (any, error) {
	return &Timed{Key: t.Key, Due: t.Due, Event: t.Event, Depth: t.Event.Depth, Budget: t.Event.Budget}, nil
}

// Describe implements Effect.
func (t *Timer) Describe(any) (string, any) {
	text := t.Event.Action
	if len(t.Event.Params) > 0 {
		data, _ := json.Marshal(t.Event.Params)
		text += " " + string(data)
	}
	text += " at " + t.Due.Format(time.RFC3339) + ", key " + t.Key
	return text, struct {
		Key   string       `json:"key"`
		Due   time.Time    `json:"due"`
		Event *event.Event `json:"event"`
	}{t.Key, t.Due, t.Event}
}

// CancelAction removes timers of the customer by key.
type CancelAction struct{ Keys []*Value }

// Kind implements Action.
func (*CancelAction) Kind() string { return "cancel" }

func decodeCancel(d *Decoder, n *yaml.Node) Action {
	f := d.f
	a := &CancelAction{}
	for _, k := range f.strs(n, "cancel") {
		v := f.typedValue(k, "cancel", "a key is text", acceptScalar)
		if v == nil {
			continue
		}
		if v.IsConst() {
			if err := checkKey(Format(v.Const())); err != nil {
				f.errorf(k, "cancel: %v", err)
				continue
			}
		}
		a.Keys = append(a.Keys, v)
	}
	if len(a.Keys) == 0 {
		return nil
	}
	return a
}

// Plan implements Action: it plans a *Cancel.
func (a *CancelAction) Plan(s Step) error {
	c := &Cancel{UUID: s.Event().UUID}
	for _, k := range a.Keys {
		v, err := s.Eval(k)
		if err != nil {
			return err
		}
		key := Format(v)
		if err := checkKey(key); err != nil {
			return err
		}
		c.Keys = append(c.Keys, key)
	}
	s.Effect(c)
	return nil
}

// Cancel is a planned cancellation of the customer's timers Keys.
type Cancel struct {
	UUID string   `json:"uuid"`
	Keys []string `json:"keys"`
}

// Kind implements Effect.
func (*Cancel) Kind() string { return "cancel" }

// Render implements Effect: the wire form is the *Cancel itself.
func (c *Cancel) Render(*RenderContext) (any, error) { return c, nil }

// Describe implements Effect.
func (c *Cancel) Describe(any) (string, any) { return strings.Join(c.Keys, ", "), c }

// ParseDuration reads a duration as rules write them: whole days (7d) or
// hours, minutes and seconds (48h, 30m, 1h30m).
func ParseDuration(s string) (time.Duration, error) { return parseDuration(s) }
