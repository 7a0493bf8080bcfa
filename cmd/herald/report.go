package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// textReport prints a replay for people to read.
type textReport struct {
	w io.Writer
}

func (t *textReport) invalid(line int, err error) {
	fmt.Fprintf(t.w, "line %d: invalid event: %v\n\n", line, err)
}

func (t *textReport) plan(line int, p *engine.Plan, emails []renderedEmail) {
	ev := p.Event
	head := fmt.Sprintf("line %d", line)
	if ev.Depth > 0 {
		head += fmt.Sprintf(" (emitted, depth %d)", ev.Depth)
	}
	fmt.Fprintf(t.w, "%s  %s  %s  uuid %s", head, ev.Time.UTC().Format(time.RFC3339), ev.Action, ev.UUID)
	if ev.Label != "" {
		fmt.Fprintf(t.w, "  %q", ev.Label)
	}
	fmt.Fprintln(t.w)
	if len(p.Fired) == 0 && len(p.Errors) == 0 {
		fmt.Fprintln(t.w, "  no rule fired")
	}
	mails := emails
	for _, f := range p.Fired {
		fmt.Fprintf(t.w, "  rule %s\n", f.Rule)
		if len(f.Effects) == 0 {
			fmt.Fprintln(t.w, "    (no changes)")
		}
		for _, e := range f.Effects {
			switch {
			case e.Change != nil:
				fmt.Fprintf(t.w, "    %s\n", changeText(e.Change))
			case e.Email != nil:
				m := mails[0]
				mails = mails[1:]
				fmt.Fprintf(t.w, "    %s\n", emailText(m))
			case e.Emit != nil:
				fmt.Fprintf(t.w, "    emit %s%s\n", e.Emit.Action, paramsText(e.Emit))
			}
		}
	}
	for _, err := range p.Errors {
		fmt.Fprintf(t.w, "  error: %v\n", err)
	}
	fmt.Fprintln(t.w)
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

func emailText(m renderedEmail) string {
	var b strings.Builder
	fmt.Fprintf(&b, "email %s to %s", m.Template.Name, m.To)
	if m.err == nil && m.Suppressed == "" {
		fmt.Fprintf(&b, " subject %q", m.subject)
	}
	for i, l := range m.Links {
		if i == 0 {
			b.WriteString(" links")
		}
		fmt.Fprintf(&b, " %s->%s", l.Name, l.Emit)
	}
	if m.Marketing {
		b.WriteString(" (marketing)")
	}
	if m.Suppressed != "" {
		fmt.Fprintf(&b, "\n      not sent: %s", m.Suppressed)
	}
	if m.err != nil {
		fmt.Fprintf(&b, "\n      error: %v", m.err)
	}
	return b.String()
}

func paramsText(ev *event.Event) string {
	if len(ev.Params) == 0 {
		return ""
	}
	data, _ := json.Marshal(ev.Params)
	return " " + string(data)
}

func (t *textReport) summary(s *replaySummary) {
	fmt.Fprintf(t.w, "%d events (%d invalid, %d emitted): %d rules fired, %d profile changes, %d emails (%d not sent), %d rule errors\n",
		s.Events+s.Invalid+s.Emitted, s.Invalid, s.Emitted, s.Fired, s.Changes, s.Emails, s.Suppressed, s.Errors)
}

// jsonReport prints a replay as JSON lines, for tools.
type jsonReport struct {
	enc *json.Encoder
}

type jsonPlan struct {
	Line   int          `json:"line"`
	Depth  int          `json:"depth"`
	Event  *event.Event `json:"event"`
	Fired  []jsonFired  `json:"fired"`
	Errors []string     `json:"errors,omitempty"`
}

type jsonFired struct {
	Rule    string       `json:"rule"`
	Effects []jsonEffect `json:"effects"`
}

type jsonEffect struct {
	Step   int             `json:"step"`
	Change *profile.Change `json:"change,omitempty"`
	Email  *jsonEmail      `json:"email,omitempty"`
	Emit   *event.Event    `json:"emit,omitempty"`
}

type jsonEmail struct {
	Template   string            `json:"template"`
	To         string            `json:"to"`
	Subject    string            `json:"subject"`
	Links      map[string]string `json:"links,omitempty"`
	Marketing  bool              `json:"marketing"`
	Suppressed string            `json:"not_sent,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func (j *jsonReport) invalid(line int, err error) {
	_ = j.enc.Encode(struct {
		Line    int    `json:"line"`
		Invalid string `json:"invalid"`
	}{line, err.Error()})
}

func (j *jsonReport) plan(line int, p *engine.Plan, emails []renderedEmail) {
	out := jsonPlan{Line: line, Depth: p.Event.Depth, Event: p.Event, Fired: []jsonFired{}}
	for _, f := range p.Fired {
		jf := jsonFired{Rule: f.Rule}
		for _, e := range f.Effects {
			je := jsonEffect{Step: e.Step, Change: e.Change, Emit: e.Emit}
			if e.Email != nil {
				m := emails[0]
				emails = emails[1:]
				je.Email = &jsonEmail{Template: m.Template.Name, To: m.To, Subject: m.subject, Marketing: m.Marketing, Suppressed: m.Suppressed}
				if m.err != nil {
					je.Email.Error = m.err.Error()
				}
				if len(m.Links) > 0 {
					je.Email.Links = make(map[string]string, len(m.Links))
					for _, l := range m.Links {
						je.Email.Links[l.Name] = l.Emit
					}
				}
			}
			jf.Effects = append(jf.Effects, je)
		}
		out.Fired = append(out.Fired, jf)
	}
	for _, err := range p.Errors {
		out.Errors = append(out.Errors, err.Error())
	}
	_ = j.enc.Encode(out)
}

func (j *jsonReport) summary(s *replaySummary) {
	_ = j.enc.Encode(struct {
		Summary *replaySummary `json:"summary"`
	}{s})
}
