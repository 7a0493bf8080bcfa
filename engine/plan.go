package engine

import (
	"fmt"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Plan is the outcome of evaluating one event: the rules that fired, in
// order, with their effects, and the rules that failed. It is pure data; a
// runner carries it out (or, in a replay, records it).
type Plan struct {
	Event *event.Event
	// Before is the profile the event was evaluated against (nil when the
	// customer had none); After is the profile once the plan's changes are
	// applied. Both are nil when no rule is indexed for the event's action,
	// since then no profile is needed.
	Before, After *profile.Profile
	Fired         []Fired
	Errors        []*RuleError
}

// Fired is one rule that fired and what it does.
type Fired struct {
	Rule    string
	Effects []Effect
}

// Effect is one effect of a rule; exactly one of Change, Email and Emit is
// set. Step is the index of the action in the rule's do list.
type Effect struct {
	Step   int
	Change *profile.Change
	Email  *Email
	Emit   *event.Event
}

// Email is an email to render and send.
type Email struct {
	Template  *rules.Template
	To        string
	Subject   string // "" means the template's subject
	Marketing bool
	Links     []rules.Link
	// Profile is the customer's profile when the email action ran, which
	// the template sees.
	Profile *profile.Profile
	// Suppressed says why the email must not be sent (a marketing email to
	// a customer without an enabled newsletter agreement); "" to send it.
	Suppressed string
}

// RuleError is a rule that failed at run time. Its effects are left out of
// the plan; the other rules still run.
type RuleError struct {
	Rule    string
	EventID string
	Step    int    // the action that failed, -1 for the condition
	Kind    string // "if" or the action's kind
	Err     error
}

// Error says which rule failed on which event, and where.
func (e *RuleError) Error() string {
	where := "if"
	if e.Step >= 0 {
		where = fmt.Sprintf("do[%d] %s", e.Step, e.Kind)
	}
	return fmt.Sprintf("rule %q on event %s: %s: %v", e.Rule, e.EventID, where, e.Err)
}

// Unwrap returns the underlying error.
func (e *RuleError) Unwrap() error { return e.Err }

// Changes returns the profile changes of the plan in order.
func (p *Plan) Changes() []*profile.Change {
	var out []*profile.Change
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Change != nil {
				out = append(out, e.Change)
			}
		}
	}
	return out
}

// Emits returns the events the plan emits, in order.
func (p *Plan) Emits() []*event.Event {
	var out []*event.Event
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Emit != nil {
				out = append(out, e.Emit)
			}
		}
	}
	return out
}

// Emails returns the emails of the plan, suppressed ones included, in order.
func (p *Plan) Emails() []*Email {
	var out []*Email
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Email != nil {
				out = append(out, e.Email)
			}
		}
	}
	return out
}

// Render renders the email for ev, with the URL link returns for each of
// its links. It returns the rendered email and the URLs by link name.
func (m *Email) Render(ev *event.Event, link func(rules.Link) (string, error)) (*rules.Rendered, map[string]string, error) {
	urls := make(map[string]string, len(m.Links))
	for _, l := range m.Links {
		u, err := link(l)
		if err != nil {
			return nil, nil, fmt.Errorf("sign link %s: %w", l.Name, err)
		}
		urls[l.Name] = u
	}
	out, err := m.Template.Render(&rules.TemplateData{Event: ev, Profile: m.Profile, Params: ev.Params, Links: urls}, m.Subject)
	if err != nil {
		return nil, nil, err
	}
	return out, urls, nil
}
