package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/replay"
	"github.com/herald-events/herald/rules"
)

// textReport prints a replay for people to read.
type textReport struct {
	w io.Writer
	// explain, when set, is the rule set to explain each plan with.
	explain *rules.Set
	// single: one event, not a stream: no line numbers.
	single bool
}

func (t *textReport) invalid(line int, err error) {
	fmt.Fprintf(t.w, "line %d: invalid event: %v\n\n", line, err)
}

func (t *textReport) plan(line int, r *replay.Result) {
	p := r.Plan
	ev := p.Event
	head := fmt.Sprintf("line %d", line)
	if t.single {
		head = "event"
	}
	switch {
	case r.Timer != nil:
		head += fmt.Sprintf(" (timer %s, depth %d)", r.Timer.Key, ev.Depth)
	case ev.Depth > 0:
		head += fmt.Sprintf(" (emitted, depth %d)", ev.Depth)
	}
	fmt.Fprintf(t.w, "%s  %s  %s  uuid %s", head, ev.Time.UTC().Format(time.RFC3339), ev.Action, ev.UUID)
	if ev.Label != "" {
		fmt.Fprintf(t.w, "  %q", ev.Label)
	}
	fmt.Fprintln(t.w)
	if len(p.Fired) == 0 && len(p.Errors) == 0 && len(p.Held) == 0 {
		fmt.Fprintln(t.w, "  no rule fired")
	}
	for _, h := range p.Held {
		fmt.Fprintf(t.w, "  rule %s held back: %s\n", h.Rule, h.Reason)
	}
	for _, f := range p.Fired {
		if f.Rule == engine.FormRule {
			fmt.Fprintln(t.w, "  form (built in)")
		} else {
			fmt.Fprintf(t.w, "  rule %s\n", f.Rule)
		}
		if len(f.Effects) == 0 {
			fmt.Fprintln(t.w, "    (no changes)")
		}
		for _, e := range f.Effects {
			if e.Change != nil {
				fmt.Fprintf(t.w, "    %s\n", changeText(e.Change))
				continue
			}
			key := engine.Key(ev, f.Rule, e.Step)
			text, _ := e.Out.Describe(r.Rendered[key])
			fmt.Fprintf(t.w, "    %s %s\n", e.Out.Kind(), text)
			if s := suppressed(e.Out); s != "" {
				fmt.Fprintf(t.w, "      not sent: %s\n", s)
			}
			if err := r.Failed[key]; err != nil {
				fmt.Fprintf(t.w, "      error: %v\n", err)
			}
		}
	}
	for _, err := range p.Errors {
		fmt.Fprintf(t.w, "  error: %v\n", err)
	}
	if t.explain != nil {
		writeExplanation(t.w, engine.ExplainPlan(t.explain, p, p.Before, ev.Time))
	}
	fmt.Fprintln(t.w)
}

func suppressed(e rules.Effect) string {
	if s, ok := e.(rules.Suppressor); ok {
		return s.Suppressed()
	}
	return ""
}

func changeText(c *profile.Change) string {
	switch c.Op {
	case profile.OpSet:
		if c.Had {
			return fmt.Sprintf("set %s = %s (was %s)", c.Name, valueText(c.Value), valueText(c.Old))
		}
		return fmt.Sprintf("set %s = %s", c.Name, valueText(c.Value))
	case profile.OpUnset:
		return fmt.Sprintf("unset %s (was %s)", c.Name, valueText(c.Old))
	case profile.OpTag:
		return "tag " + c.Name
	default:
		return "untag " + c.Name
	}
}

func valueText(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return rules.Format(v)
}

// pending lists the timers left when the replay ended, past its horizon.
func (t *textReport) pending(timers []*replay.Timer, lines map[string]int) {
	for _, tm := range timers {
		fmt.Fprintf(t.w, "line %d (timer %s)  %s  %s  uuid %s\n  not fired: due after the end of the replay\n\n",
			lines[tm.Event.ID], tm.Key, tm.Due.UTC().Format(time.RFC3339), tm.Event.Action, tm.Event.UUID)
	}
}

func (t *textReport) summary(s *replaySummary) {
	timers := ""
	if s.Timers > 0 {
		timers = fmt.Sprintf(", %d from timers", s.Timers)
	}
	fmt.Fprintf(t.w, "%d events (%d invalid, %d emitted%s): %d rules fired, %d profile changes, %d emails (%d not sent), %d rule errors",
		s.Events+s.Invalid+s.Emitted+s.Timers, s.Invalid, s.Emitted, timers, s.Fired, s.Changes, s.Emails, s.Suppressed, s.Errors)
	if s.Effects > 0 {
		fmt.Fprintf(t.w, ", %d other effects", s.Effects)
	}
	if s.Failed > 0 {
		fmt.Fprintf(t.w, ", %d effects failed", s.Failed)
	}
	if s.Skipped > 0 {
		fmt.Fprintf(t.w, "; %d recorded emitted events skipped (the rules emitted them again)", s.Skipped)
	}
	fmt.Fprintln(t.w)
	if len(s.ByRule) > 0 {
		// The rules that fired most first, then by name.
		names := slices.Collect(maps.Keys(s.ByRule))
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(s.ByRule[b], s.ByRule[a]), cmp.Compare(a, b))
		})
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, s.ByRule[n])
		}
		fmt.Fprintf(t.w, "fired: %s\n", strings.Join(parts, ", "))
	}
}

// jsonReport prints a replay as JSON lines, for tools.
type jsonReport struct {
	enc     *json.Encoder
	explain *rules.Set
}

type jsonPlan struct {
	Line   int          `json:"line"`
	Depth  int          `json:"depth"`
	Timer  string       `json:"timer,omitempty"`
	Event  *event.Event `json:"event"`
	Fired  []jsonFired  `json:"fired"`
	Held   []jsonHeld   `json:"held,omitempty"`
	Errors []string     `json:"errors,omitempty"`
	// Explain says why each rule did or did not fire (--explain).
	Explain []jsonExplanation `json:"explain,omitempty"`
}

// jsonHeld is a rule its limit held back.
type jsonHeld struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

type jsonFired struct {
	Rule    string       `json:"rule"`
	Effects []jsonEffect `json:"effects"`
}

// jsonEffect is {"step": n, "change": …} or {"step": n, KIND: …}, with
// "error" when the effect failed as it would in serve.
type jsonEffect struct {
	Step   int
	Change *profile.Change
	Kind   string
	Data   any
	Error  string
}

// MarshalJSON writes the fields in a fixed order, the effect's data under
// its kind.
func (e jsonEffect) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"step":%d`, e.Step)
	name, data := "change", any(e.Change)
	if e.Change == nil {
		name, data = e.Kind, e.Data
	}
	for _, f := range []struct {
		name  string
		value any
	}{{name, data}, {"error", e.Error}} {
		if f.name == "error" && e.Error == "" {
			continue
		}
		k, _ := json.Marshal(f.name)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (j *jsonReport) invalid(line int, err error) {
	_ = j.enc.Encode(struct {
		Line    int    `json:"line"`
		Invalid string `json:"invalid"`
	}{line, err.Error()})
}

// plan writes each effect as {"step": n, KIND: what it does}, with
// "error" when it failed as it would in serve.
func (j *jsonReport) plan(line int, r *replay.Result) {
	p := r.Plan
	out := jsonPlan{Line: line, Depth: p.Event.Depth, Event: p.Event, Fired: []jsonFired{}}
	if r.Timer != nil {
		out.Timer = r.Timer.Key
	}
	for _, f := range p.Fired {
		jf := jsonFired{Rule: f.Rule}
		for _, e := range f.Effects {
			je := jsonEffect{Step: e.Step, Change: e.Change}
			if e.Change == nil {
				key := engine.Key(p.Event, f.Rule, e.Step)
				je.Kind = e.Out.Kind()
				_, je.Data = e.Out.Describe(r.Rendered[key])
				if err := r.Failed[key]; err != nil {
					je.Error = err.Error()
				}
			}
			jf.Effects = append(jf.Effects, je)
		}
		out.Fired = append(out.Fired, jf)
	}
	for _, h := range p.Held {
		out.Held = append(out.Held, jsonHeld{h.Rule, h.Reason})
	}
	for _, err := range p.Errors {
		out.Errors = append(out.Errors, err.Error())
	}
	if j.explain != nil {
		out.Explain = explanationJSON(engine.ExplainPlan(j.explain, p, p.Before, p.Event.Time))
	}
	_ = j.enc.Encode(out)
}

// pending writes {"line": n, "pending": {"key", "due", "event"}} for each
// timer left when the replay ended.
func (j *jsonReport) pending(timers []*replay.Timer, lines map[string]int) {
	for _, tm := range timers {
		_ = j.enc.Encode(struct {
			Line    int `json:"line"`
			Pending any `json:"pending"`
		}{lines[tm.Event.ID], struct {
			Key   string       `json:"key"`
			Due   time.Time    `json:"due"`
			Event *event.Event `json:"event"`
		}{tm.Key, tm.Due, tm.Event}})
	}
}

// summary counts the events as the text report does: the lines read,
// invalid ones included, and the events the rules emitted.
func (j *jsonReport) summary(s *replaySummary) {
	all := *s
	all.Events = s.Events + s.Invalid + s.Emitted + s.Timers
	_ = j.enc.Encode(struct {
		Summary *replaySummary `json:"summary"`
	}{&all})
}
