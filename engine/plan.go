package engine

import (
	"fmt"
	"strconv"

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
	// Evaluated names the rules whose trigger and match held, in order:
	// those whose condition was then run.
	Evaluated []string
	Fired     []Fired
	Errors    []*RuleError
	// Held lists the rules whose condition held but whose limit (limit:,
	// once:) held them back, with the reason.
	Held []Held
}

// Fired is one rule that fired and what it does.
type Fired struct {
	Rule    string
	Effects []Effect
	// Limit is the rule's limit, nil when it has none: its firing counts
	// towards it (the applier records it in the customer's record).
	Limit *rules.Limit
}

// Held is a rule held back by its limit.
type Held struct {
	Rule   string
	Reason string
}

// Effect is one effect of a rule: a profile Change, applied with the
// plan, or an effect on the world (Out: an email, an emitted event, a
// webhook call), performed once the plan is applied. Step is the index of
// the action in the rule's do list.
type Effect struct {
	Step   int
	Change *profile.Change
	Out    rules.Effect
}

// Key is the idempotency key of an effect of rule for event ev: event id,
// rule and step. Every effector passes it on (Message-ID, Nats-Msg-Id,
// Idempotency-Key), so performing an effect again is harmless.
func Key(ev *event.Event, rule string, step int) string {
	return ev.ID + "." + rule + "." + strconv.Itoa(step)
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

// Changes returns the profile changes of the plan in order, nil when
// there are none.
func (p *Plan) Changes() []*profile.Change {
	n := 0
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Change != nil {
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]*profile.Change, 0, n)
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Change != nil {
				out = append(out, e.Change)
			}
		}
	}
	return out
}

// Outs returns the plan's effects on the world, suppressed ones included,
// in order, nil when there are none.
func (p *Plan) Outs() []rules.Effect {
	n := 0
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Out != nil {
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]rules.Effect, 0, n)
	for _, f := range p.Fired {
		for _, e := range f.Effects {
			if e.Out != nil {
				out = append(out, e.Out)
			}
		}
	}
	return out
}
