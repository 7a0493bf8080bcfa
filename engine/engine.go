// Package engine evaluates events against rules. Evaluation is pure: an
// event, the customer's profile and the time go in, a Plan of effects comes
// out, with no I/O. Serving, replaying and testing run the same evaluation
// and differ only in where the effects go.
package engine

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// MaxDepth is how long a chain of emitted events may grow: an event emitted
// by an event emitted by … a tracked event, at most MaxDepth times.
const MaxDepth = 8

// AgreementAttribute is the profile attribute holding the customer's
// newsletter agreement: "enabled", "confirmation" or "disabled". Marketing
// emails go only to customers whose agreement is "enabled".
const AgreementAttribute = "newsletterAgreement"

// Engine evaluates events against a rule set. It is safe for concurrent
// use; SetRules swaps the rule set atomically.
type Engine struct {
	rules atomic.Pointer[rules.Set]
	vms   sync.Pool
}

// New returns an engine for the rule set.
func New(set *rules.Set) *Engine {
	e := &Engine{}
	e.rules.Store(set)
	e.vms.New = func() any { return &vm.VM{MemoryBudget: rules.MemoryBudget} }
	return e
}

// Rules returns the current rule set.
func (e *Engine) Rules() *rules.Set { return e.rules.Load() }

// SetRules replaces the rule set; evaluations under way finish with the old
// one.
func (e *Engine) SetRules(s *rules.Set) { e.rules.Store(s) }

// Wants reports whether any rule triggers on action, that is whether an
// event with that action needs the customer's profile at all.
func (e *Engine) Wants(action string) bool { return len(e.rules.Load().For(action)) > 0 }

// Evaluate runs every rule for the event's action, in order, against the
// customer's profile p (nil for a customer without one) at time now. Each
// rule sees the changes of the rules and actions before it. A rule that
// fails at run time is recorded in Plan.Errors and its effects left out;
// the others still run. Evaluate neither changes p nor the event.
func (e *Engine) Evaluate(ev *event.Event, p *profile.Profile, now time.Time) *Plan {
	plan := &Plan{Event: ev}
	candidates := e.rules.Load().For(ev.Action)
	if len(candidates) == 0 {
		return plan
	}
	plan.Before = p
	plan.Fired = make([]Fired, 0, len(candidates))
	ev2 := evaluation{plan: plan, ev: ev, now: now, m: e.vms.Get().(*vm.VM), effects: make([]Effect, 0, 2*len(candidates))}
	defer e.vms.Put(ev2.m)
	if p == nil {
		ev2.work = profile.New(ev.UUID, now).CloneForChange()
		ev2.owned = true
	} else {
		ev2.work = p
	}
	ev2.env = rules.Env{
		Event: rules.EventEnv{
			ID: ev.ID, Action: ev.Action, Label: ev.Label, Time: ev.Time,
			UUID: ev.UUID, Site: ev.Site, Params: ev.Params, Depth: ev.Depth,
		},
		Action: ev.Action, Label: ev.Label, Params: ev.Params, UUID: ev.UUID,
		Site: ev.Site, Time: ev.Time, Now: now,
		Profile: rules.ProfileEnvOf(ev2.work),
	}
	ev2.env.Bind()
	for _, r := range candidates {
		if r.Matches(ev.Params) {
			ev2.rule(r)
		}
	}
	plan.After = ev2.work
	return plan
}

// evaluation is the state of one Evaluate call.
type evaluation struct {
	plan  *Plan
	ev    *event.Event
	now   time.Time
	m     *vm.VM
	env   rules.Env
	work  *profile.Profile // the profile with the changes so far
	owned bool             // work is a copy Evaluate may change

	effects []Effect         // of all rules; each Fired holds a part
	changes []profile.Change // the current block of changes
	stale   bool             // env.Profile lags behind work
}

// run runs an expression, first bringing the profile it sees up to date.
func (x *evaluation) run(p *vm.Program) (any, error) {
	x.sync()
	return x.m.Run(p, &x.env)
}

// eval evaluates a rule value like run.
func (x *evaluation) eval(v *rules.Value) (any, error) {
	x.sync()
	return v.Eval(&x.env, x.m)
}

func (x *evaluation) sync() {
	if x.stale {
		x.env.Profile = rules.ProfileEnvOf(x.work)
		x.stale = false
	}
}

// rule runs one rule. Its changes are undone if a later action of the same
// rule fails, so a rule takes effect whole or not at all.
func (x *evaluation) rule(r *rules.Rule) {
	start := len(x.effects)
	step, kind := -1, "if"
	updated := x.work.Updated
	fail := func(err error) {
		for i := len(x.effects) - 1; i >= start; i-- {
			if c := x.effects[i].Change; c != nil {
				x.work.Revert(c)
			}
		}
		if len(x.effects) > start {
			x.work.Updated = updated
			x.stale = true
		}
		x.effects = x.effects[:start]
		x.plan.Errors = append(x.plan.Errors, &RuleError{Rule: r.Name, EventID: x.ev.ID, Step: step, Kind: kind, Err: err})
	}
	defer func() {
		if v := recover(); v != nil {
			fail(fmt.Errorf("panic: %v", v))
		}
	}()
	if r.If != nil {
		out, err := x.run(r.If.Program)
		if err != nil {
			fail(err)
			return
		}
		if ok, _ := out.(bool); !ok {
			return
		}
	}
	for i, a := range r.Do {
		step, kind = i, a.Kind()
		if err := x.action(r, i, a); err != nil {
			fail(err)
			return
		}
	}
	x.plan.Fired = append(x.plan.Fired, Fired{Rule: r.Name, Effects: x.effects[start:len(x.effects):len(x.effects)]})
}

func (x *evaluation) action(r *rules.Rule, step int, a rules.Action) error {
	switch a := a.(type) {
	case *rules.SetAction:
		for _, f := range a.Fields {
			v, err := x.eval(f.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
			v, err = attributeValue(f.Name, v)
			if err != nil {
				return err
			}
			x.change(step, profile.OpSet, f.Name, v)
		}
	case *rules.UnsetAction:
		for _, name := range a.Names {
			x.change(step, profile.OpUnset, name, nil)
		}
	case *rules.TagAction:
		return x.tags(step, profile.OpTag, a.Tags)
	case *rules.UntagAction:
		return x.tags(step, profile.OpUntag, a.Tags)
	case *rules.EmailAction:
		m, err := x.email(a)
		if err != nil {
			return err
		}
		x.effects = append(x.effects, Effect{Step: step, Email: m})
	case *rules.EmitAction:
		out, err := x.emit(r, step, a)
		if err != nil {
			return err
		}
		x.effects = append(x.effects, Effect{Step: step, Emit: out})
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}

// change applies a change to the working profile, copying the caller's
// profile first, and records it when it changes anything.
func (x *evaluation) change(step int, op profile.Op, name string, value any) {
	if !x.owned {
		x.work = x.work.CloneForChange()
		x.owned = true
	}
	// Changes are allocated in small blocks: the plan keeps pointers to
	// them, and one allocation a change is most of what evaluation costs.
	if len(x.changes) == cap(x.changes) {
		x.changes = make([]profile.Change, 0, max(8, 2*len(x.plan.Fired)+2))
	}
	x.changes = append(x.changes, profile.Change{Op: op, Name: name, Value: value})
	c := &x.changes[len(x.changes)-1]
	changed, err := x.work.Apply(c, x.now)
	if err != nil || !changed {
		x.changes = x.changes[:len(x.changes)-1]
		return
	}
	x.stale = true
	x.effects = append(x.effects, Effect{Step: step, Change: c})
}

func (x *evaluation) tags(step int, op profile.Op, tags []*rules.Value) error {
	for _, t := range tags {
		v, err := x.eval(t)
		if err != nil {
			return err
		}
		s, _ := v.(string)
		if !rules.ValidTag(s) {
			return fmt.Errorf("%q is not a tag; use letters, digits, -, _, . and :, at most 64 characters", rules.Format(v))
		}
		x.change(step, op, s, nil)
	}
	return nil
}

// attributeValue checks a value for a profile field or attribute and brings
// numbers to float64, the one number type profiles hold.
func attributeValue(name string, v any) (any, error) {
	if profile.IsStandardField(name) {
		if _, ok := v.(string); ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s holds text, not %s", name, typeName(v))
	}
	if f, ok := number(v); ok {
		return f, nil
	}
	switch x := v.(type) {
	case string, bool, float64:
		return v, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case nil:
		return nil, fmt.Errorf("%s: the value is empty (nil); use unset to remove an attribute", name)
	}
	return nil, fmt.Errorf("%s: an attribute holds text, a number or true/false, not %s", name, typeName(v))
}

// number converts any Go number to float64, the one number type profiles
// and event params hold.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "true/false"
	case int, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

var errNoRecipient = errors.New("no recipient: to is empty (has the customer given an email address?)")

func (x *evaluation) email(a *rules.EmailAction) (*Email, error) {
	m := &Email{Template: a.Template, Marketing: a.Marketing, Links: a.Links}
	if a.Marketing {
		// Checked first: a customer without consent gets no marketing
		// email, whether or not an address can be found for them.
		if agreement, _ := x.work.Attributes[AgreementAttribute].(string); agreement == "" {
			m.Suppressed = "marketing email, and the customer has given no newsletter agreement"
		} else if agreement != "enabled" {
			m.Suppressed = fmt.Sprintf("marketing email, and the newsletter agreement is %q, not \"enabled\"", agreement)
		}
	}
	to, err := x.eval(a.To)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.To, _ = to.(string)
	switch {
	case m.Suppressed != "" && m.To == "":
	case to == nil || m.To == "":
		return nil, errNoRecipient
	case !rules.IsEmail(m.To):
		return nil, fmt.Errorf("to: %q is not an email address", rules.Format(to))
	}
	if a.Subject != nil {
		s, err := x.eval(a.Subject)
		if err != nil {
			return nil, fmt.Errorf("subject: %w", err)
		}
		m.Subject = rules.Format(s)
	}
	// The template sees the profile as it is at this step of the plan.
	m.Profile = x.work.Clone()
	return m, nil
}

func (x *evaluation) emit(r *rules.Rule, step int, a *rules.EmitAction) (*event.Event, error) {
	if x.ev.Depth+1 > MaxDepth {
		return nil, fmt.Errorf("%s: emitted events chain deeper than %d (this event is %d emits from a tracked one); stopped to break a loop", a.Action, MaxDepth, x.ev.Depth)
	}
	out := &event.Event{
		// The id depends on the source event only, so evaluating a
		// redelivered event again emits the very same event.
		ID:     event.DeriveID(x.ev.Time, x.ev.ID, r.Name, strconv.Itoa(step)),
		Action: a.Action,
		Time:   x.now,
		UUID:   x.ev.UUID,
		Site:   x.ev.Site,
		Depth:  x.ev.Depth + 1,
	}
	if a.Label != nil {
		v, err := x.eval(a.Label)
		if err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
		out.Label = rules.Format(v)
	}
	if a.UUID != nil {
		v, err := x.eval(a.UUID)
		if err != nil {
			return nil, fmt.Errorf("uuid: %w", err)
		}
		out.UUID = rules.Format(v)
	}
	if len(a.Params) > 0 {
		out.Params = make(map[string]any, len(a.Params))
		defer func() {
			if len(out.Params) == 0 {
				out.Params = nil // as decoding the emitted event would give
			}
		}()
		for _, p := range a.Params {
			v, err := x.eval(p.Value)
			if err != nil {
				return nil, fmt.Errorf("params.%s: %w", p.Name, err)
			}
			if f, ok := number(v); ok {
				v = f
			}
			switch v := v.(type) {
			case string, bool, float64:
				out.Params[p.Name] = v
			case time.Time:
				out.Params[p.Name] = v.UTC().Format(time.RFC3339Nano)
			case nil:
				// A missing value leaves the parameter out.
			default:
				return nil, fmt.Errorf("params.%s: a parameter holds text, a number or true/false, not %s", p.Name, typeName(v))
			}
		}
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}
