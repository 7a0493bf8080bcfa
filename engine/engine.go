// Package engine evaluates events against rules. Evaluation is pure: an
// event, the customer's profile and the time go in, a Plan of effects comes
// out, with no I/O. Serving, replaying and testing run the same evaluation
// and differ only in where the effects go.
package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// MaxDepth is how long a chain of emitted events may grow (rules.MaxDepth).
const MaxDepth = rules.MaxDepth

// AgreementAttribute is the profile attribute holding the customer's
// newsletter agreement (rules.AgreementAttribute).
const AgreementAttribute = rules.AgreementAttribute

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

// Wants reports whether an event with action needs the customer's profile
// at all: a rule triggers on it, or it is a form submission, whose fields
// the built-in form step applies.
func (e *Engine) Wants(action string) bool {
	return action == FormAction || len(e.rules.Load().For(action)) > 0
}

// Evaluate runs every rule for the event's action, in order, against the
// customer's profile p (nil for a customer without one) at time now. Each
// rule sees the changes of the rules and actions before it. A rule that
// fails at run time is recorded in Plan.Errors and its effects left out;
// the others still run. Evaluate neither changes p nor the event.
func (e *Engine) Evaluate(ev *event.Event, p *profile.Profile, now time.Time) *Plan {
	plan := &Plan{Event: ev}
	candidates := e.rules.Load().For(ev.Action)
	isForm := ev.Action == FormAction
	if len(candidates) == 0 && !isForm {
		return plan
	}
	plan.Before = p
	plan.Fired = make([]Fired, 0, len(candidates))
	plan.Evaluated = make([]string, 0, len(candidates))
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
	if isForm {
		ev2.form()
	}
	for _, r := range candidates {
		if r.Matches(ev.Params) {
			plan.Evaluated = append(plan.Evaluated, r.Name)
			ev2.rule(r)
		}
	}
	plan.After = ev2.work
	ev2.shareEmitBudget()
	return plan
}

// shareEmitBudget gives the events the rules emitted their shares of the
// event's emit budget (rules.ShareEmitBudget), now that every emit is
// planned.
func (x *evaluation) shareEmitBudget() {
	var emits []*rules.Emit
	for _, f := range x.plan.Fired {
		for _, e := range f.Effects {
			if em, ok := e.Out.(*rules.Emit); ok {
				emits = append(emits, em)
			}
		}
	}
	rules.ShareEmitBudget(x.ev, emits)
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
	step    step             // what the action being planned sees
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
	at, kind := -1, "if"
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
		x.plan.Errors = append(x.plan.Errors, &RuleError{Rule: r.Name, EventID: x.ev.ID, Step: at, Kind: kind, Err: err})
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
	st := &x.step
	st.x, st.rule = x, r.Name
	for i, a := range r.Do {
		at, kind = i, a.Kind()
		st.index = i
		if err := a.Plan(st); err != nil {
			fail(err)
			return
		}
	}
	x.plan.Fired = append(x.plan.Fired, Fired{Rule: r.Name, Effects: x.effects[start:len(x.effects):len(x.effects)]})
}

// step is the rules.Step one action of a rule sees.
type step struct {
	x     *evaluation
	rule  string
	index int
}

func (s *step) Event() *event.Event              { return s.x.ev }
func (s *step) Profile() *profile.Profile        { return s.x.work }
func (s *step) Now() time.Time                   { return s.x.now }
func (s *step) Rule() string                     { return s.rule }
func (s *step) Index() int                       { return s.index }
func (s *step) Eval(v *rules.Value) (any, error) { return s.x.eval(v) }
func (s *step) Changes() []*profile.Change {
	var out []*profile.Change
	for _, e := range s.x.effects {
		if e.Change != nil {
			out = append(out, e.Change)
		}
	}
	return out
}

func (s *step) Effect(e rules.Effect) {
	s.x.effects = append(s.x.effects, Effect{Step: s.index, Out: e})
}

// Emitted counts the "emit" effects planned so far: those of the rules
// that fired and of the rule being run.
func (s *step) Emitted() int {
	n := 0
	for _, e := range s.x.effects {
		if e.Out != nil && e.Out.Kind() == "emit" {
			n++
		}
	}
	return n
}

// Change applies a change to the working profile, copying the caller's
// profile first, and records it when it changes anything.
func (s *step) Change(op profile.Op, name string, value any) error {
	x := s.x
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
		return err
	}
	x.stale = true
	x.effects = append(x.effects, Effect{Step: s.index, Change: c})
	return nil
}
