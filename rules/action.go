package rules

import (
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// Action is one step of a rule's do list, as its Kind decoded it.
type Action interface {
	// Kind is the action's name as written in rules ("set", "email", …).
	Kind() string
	// Plan works out what the action does when its rule fires, without
	// any I/O: it changes the profile and records effects through s. An
	// error fails the whole rule; its earlier steps are undone.
	Plan(s Step) error
}

// Step is what an action sees and does while its rule fires. The engine
// implements it.
type Step interface {
	// Event is the event being evaluated.
	Event() *event.Event
	// Profile is the customer's profile with the changes of the rules and
	// actions before this one. It must not be changed; use Change.
	Profile() *profile.Profile
	// Now is the evaluation time.
	Now() time.Time
	// Rule names the rule; Index is the action's position in its do list.
	Rule() string
	Index() int
	// Eval evaluates a Value against the event and the profile as it is
	// now.
	Eval(v *Value) (any, error)
	// Change changes the profile; a change that changes nothing is not
	// recorded.
	Change(op profile.Op, name string, value any) error
	// Changes returns the profile changes the event has made so far.
	Changes() []*profile.Change
	// Effect records an effect on the world (an email, an event, a call).
	Effect(e Effect)
	// Emitted is how many events the rules have emitted for the event so
	// far, this rule's earlier steps included: the "emit" effects planned
	// and not undone by a failing rule.
	Emitted() int
}

// Effect is something a rule does outside the profile: pure data, keyed
// by the plan (event id, rule, step) and performed, once rendered, by the
// effector registered for its Kind.
type Effect interface {
	// Kind names the effector that performs it.
	Kind() string
	// Render makes the effect's wire form, the data its effector performs
	// (encoded as JSON into the customer's outbox). It runs when the plan
	// is applied, once. A render error is permanent: the effect is kept as
	// a dead letter and never performed.
	Render(rc *RenderContext) (any, error)
	// Describe says what the effect does, for people (one line, without
	// the kind) and for tools (a value encoded as JSON). rendered is what
	// Render returned, nil when it was not rendered or failed.
	Describe(rendered any) (text string, data any)
}

// Suppressor is implemented by effects that may be planned but withheld,
// such as a marketing email to a customer without consent.
type Suppressor interface {
	// Suppressed says why the effect must not be performed; "" to perform
	// it.
	Suppressed() string
}

// RenderContext is what rendering an effect may use.
type RenderContext struct {
	// Key is the effect's idempotency key: event id, rule and step.
	Key   string
	Event *event.Event
	Rule  string
	Step  int
	Now   time.Time
	// Link returns the URL of the signed link l, issued for this event
	// and rule.
	Link func(l Link) (string, error)
}
