package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/replay"
	"github.com/herald-events/herald/rules"
)

// comparer runs one stream through two versions of the rules and prints,
// per event, the effects that differ.
type comparer struct {
	a, b  *replay.Replayer
	clock time.Time
	w     io.Writer
	sum   compareSummary
}

type compareSummary struct {
	Events, Invalid, Differ                   int
	EmailsAdded, EmailsRemoved, EmailsChanged int
	ChangesAdded, ChangesRemoved              int
	EmitsAdded, EmitsRemoved                  int
	OtherAdded, OtherRemoved                  int
	ErrorsA, ErrorsB                          int
}

// effects is what one event (with the events it emitted) did, for a
// comparison: emails by recipient and template, and the other effects as
// lines.
type effects struct {
	emails  []mailFact
	changes []string // "uuid: set x = 1"
	emits   []string
	other   []string
	errors  []string
}

type mailFact struct {
	key     string // template and recipient
	subject string
	links   []string
	notSent string
}

func (m mailFact) String() string {
	s := "email " + m.key
	if m.subject != "" {
		s += fmt.Sprintf(" subject %q", m.subject)
	}
	if len(m.links) > 0 {
		s += " links " + strings.Join(m.links, ",")
	}
	if m.notSent != "" {
		s += " (not sent)"
	}
	return s
}

func collect(results []*replay.Result) *effects {
	out := &effects{}
	for _, r := range results {
		p := r.Plan
		// Effects on the customer of the event are shown bare, those on
		// another (an emitted event's) with their uuid.
		who := ""
		if r.Timer != nil {
			who = "timer " + r.Timer.Key + ": "
		}
		if p.Event.UUID != results[0].Plan.Event.UUID {
			who = p.Event.UUID + ": "
		}
		for _, f := range p.Fired {
			for _, e := range f.Effects {
				if e.Change != nil {
					out.changes = append(out.changes, who+changeShort(e))
					continue
				}
				key := engine.Key(p.Event, f.Rule, e.Step)
				switch o := e.Out.(type) {
				case *rules.Email:
					m := mailFact{key: o.Template.Name + " to " + o.To, notSent: o.Suppress}
					if mail, ok := r.Rendered[key].(*rules.Mail); ok {
						m.subject = mail.Subject
					}
					for _, l := range o.Links {
						m.links = append(m.links, l.Name+"->"+l.Emit)
					}
					slices.Sort(m.links)
					out.emails = append(out.emails, m)
				case *rules.Emit:
					text, _ := o.Describe(nil)
					out.emits = append(out.emits, who+"emit "+text)
				default:
					text, _ := e.Out.Describe(r.Rendered[key])
					out.other = append(out.other, e.Out.Kind()+" "+text)
				}
				if err := r.Failed[key]; err != nil {
					out.errors = append(out.errors, err.Error())
				}
			}
		}
		for _, err := range p.Errors {
			out.errors = append(out.errors, err.Error())
		}
	}
	return out
}

// changeShort describes a change without its old value, which differs
// once two runs' profiles differ.
func changeShort(e engine.Effect) string {
	c := *e.Change
	c.Had = false
	if c.Op == profile.OpUnset { // the name is enough
		return "unset " + c.Name
	}
	return changeText(&c)
}

// minus returns the lines of a not in b, counting repeats.
func minus(a, b []string) []string {
	left := slices.Clone(b)
	var out []string
	for _, x := range a {
		if i := slices.Index(left, x); i >= 0 {
			left = slices.Delete(left, i, i+1)
			continue
		}
		out = append(out, x)
	}
	return out
}

func (c *comparer) line(n int, data []byte, err error) error {
	if err == nil && isRecordedEmit(data) {
		return nil // emitted again from its cause
	}
	var ev *event.Event
	if err == nil {
		dec := event.Decoder{
			Now:   func() time.Time { return c.clock },
			NewID: func(t time.Time) string { return event.DeriveID(t, "replay", string(data)) },
		}
		ev, err = dec.Decode(data)
	}
	if err != nil {
		c.sum.Invalid++
		fmt.Fprintf(c.w, "line %d: invalid event: %v\n\n", n, err)
		return nil
	}
	c.clock = ev.Time
	c.sum.Events++
	// Timers due by the event's time fire first, on both sides; what
	// they do is shown with the event.
	ta, err := c.a.Advance(context.Background(), ev.Time)
	if err != nil {
		return err
	}
	tb, err := c.b.Advance(context.Background(), ev.Time)
	if err != nil {
		return err
	}
	evB := *ev
	ra, err := c.a.Run(context.Background(), ev)
	if err != nil {
		return err
	}
	rb, err := c.b.Run(context.Background(), &evB)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("line %d  %s  %s  uuid %s", n, ev.Time.UTC().Format(time.RFC3339), ev.Action, ev.UUID)
	if ev.Label != "" {
		head += fmt.Sprintf("  %q", ev.Label)
	}
	c.diff(head, append(ta, ra...), append(tb, rb...))
	return nil
}

// advance fires the timers due by t on both sides and prints what
// differs.
func (c *comparer) advance(t time.Time) error {
	ta, err := c.a.Advance(context.Background(), t)
	if err != nil {
		return err
	}
	tb, err := c.b.Advance(context.Background(), t)
	if err != nil {
		return err
	}
	c.diff("after the last event, timers due by "+t.UTC().Format(time.RFC3339), ta, tb)
	return nil
}

// diff prints under head the effects of ra and rb that differ.
func (c *comparer) diff(head string, ra, rb []*replay.Result) {
	a, b := collect(ra), collect(rb)
	c.sum.ErrorsA += len(a.errors)
	c.sum.ErrorsB += len(b.errors)
	var lines []string
	// Emails: matched by template and recipient; a match whose subject,
	// links or sending differ is changed.
	bLeft := slices.Clone(b.emails)
	for _, ma := range a.emails {
		i := slices.IndexFunc(bLeft, func(mb mailFact) bool { return mb.key == ma.key })
		if i < 0 {
			lines = append(lines, "- "+ma.String())
			c.sum.EmailsRemoved++
			continue
		}
		mb := bLeft[i]
		bLeft = slices.Delete(bLeft, i, i+1)
		var diffs []string
		if ma.subject != mb.subject {
			diffs = append(diffs, fmt.Sprintf("subject %q -> %q", ma.subject, mb.subject))
		}
		if !slices.Equal(ma.links, mb.links) {
			diffs = append(diffs, fmt.Sprintf("links %s -> %s", orNone(ma.links), orNone(mb.links)))
		}
		if (ma.notSent == "") != (mb.notSent == "") {
			diffs = append(diffs, fmt.Sprintf("%s -> %s", sentText(ma), sentText(mb)))
		}
		if len(diffs) > 0 {
			lines = append(lines, "~ email "+ma.key+": "+strings.Join(diffs, ", "))
			c.sum.EmailsChanged++
		}
	}
	for _, mb := range bLeft {
		lines = append(lines, "+ "+mb.String())
		c.sum.EmailsAdded++
	}
	for _, d := range []struct {
		a, b           []string
		added, removed *int
	}{
		{a.changes, b.changes, &c.sum.ChangesAdded, &c.sum.ChangesRemoved},
		{a.emits, b.emits, &c.sum.EmitsAdded, &c.sum.EmitsRemoved},
		{a.other, b.other, &c.sum.OtherAdded, &c.sum.OtherRemoved},
	} {
		for _, x := range minus(d.a, d.b) {
			lines = append(lines, "- "+x)
			*d.removed++
		}
		for _, x := range minus(d.b, d.a) {
			lines = append(lines, "+ "+x)
			*d.added++
		}
	}
	for _, x := range minus(b.errors, a.errors) {
		lines = append(lines, "+ error: "+x)
	}
	for _, x := range minus(a.errors, b.errors) {
		lines = append(lines, "- error: "+x)
	}
	if len(lines) == 0 {
		return
	}
	c.sum.Differ++
	fmt.Fprintln(c.w, head)
	for _, l := range lines {
		fmt.Fprintln(c.w, "  "+l)
	}
	fmt.Fprintln(c.w)
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}

func sentText(m mailFact) string {
	if m.notSent != "" {
		return "not sent"
	}
	return "sent"
}

func (c *comparer) summary() {
	s := &c.sum
	fmt.Fprintf(c.w, "%d events (%d invalid): %d differ; emails %d added, %d removed, %d changed; profile changes %d added, %d removed; emits %d added, %d removed",
		s.Events+s.Invalid, s.Invalid, s.Differ, s.EmailsAdded, s.EmailsRemoved, s.EmailsChanged, s.ChangesAdded, s.ChangesRemoved, s.EmitsAdded, s.EmitsRemoved)
	if s.OtherAdded+s.OtherRemoved > 0 {
		fmt.Fprintf(c.w, "; other effects %d added, %d removed", s.OtherAdded, s.OtherRemoved)
	}
	if s.ErrorsA+s.ErrorsB > 0 {
		fmt.Fprintf(c.w, "; errors %d before, %d after", s.ErrorsA, s.ErrorsB)
	}
	fmt.Fprintln(c.w)
}
