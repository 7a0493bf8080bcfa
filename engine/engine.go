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
	// evaluations holds idle *evaluation values, each with its expression
	// VM and bound environment, so that an evaluation allocates only what
	// its plan keeps.
	evaluations sync.Pool
}

// New returns an engine for the rule set.
func New(set *rules.Set) *Engine {
	e := &Engine{}
	e.rules.Store(set)
	e.evaluations.New = func() any {
		x := &evaluation{m: &vm.VM{MemoryBudget: rules.MemoryBudget}}
		x.step.x = x
		return x
	}
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
//
// The plan's After is a copy of p as soon as the plan changes anything:
// it shares no attributes or tags with p, so either may be changed later
// without the other seeing it. When the plan changes nothing, After is p
// itself (for a customer without a profile, a new empty one).
func (e *Engine) Evaluate(ev *event.Event, p *profile.Profile, now time.Time) *Plan {
	return e.EvaluateFired(ev, p, nil, now)
}

// EvaluateFired is Evaluate for a customer whose capped rules fired at
// the times fired (profile.Record.Fired): a rule whose limit they reach
// is held back (Plan.Held) instead of firing.
func (e *Engine) EvaluateFired(ev *event.Event, p *profile.Profile, fired map[string][]time.Time, now time.Time) *Plan {
	plan := &Plan{Event: ev}
	candidates := e.rules.Load().For(ev.Action)
	isForm := ev.Action == FormAction
	if len(candidates) == 0 && !isForm {
		return plan
	}
	plan.Before = p
	x := e.evaluations.Get().(*evaluation)
	x.fired = fired
	x.begin(plan, ev, p, now, candidates, isForm)
	if isForm {
		x.form()
	}
	for _, r := range x.matched {
		plan.Evaluated = append(plan.Evaluated, r.Name)
		x.rule(r)
	}
	plan.After = x.work
	x.shareEmitBudget()
	// Only an evaluation that ran to its end is reused: a panic above
	// leaves x to the garbage collector.
	x.end()
	e.evaluations.Put(x)
	return plan
}

// shareEmitBudget gives the events the rules emitted their shares of the
// event's emit budget (rules.ShareEmitBudget), now that every emit is
// planned.
func (x *evaluation) shareEmitBudget() {
	if !x.outs {
		return // no effect on the world, so no emit
	}
	var emits []*rules.Emit
	for _, f := range x.plan.Fired {
		for _, e := range f.Effects {
			switch o := e.Out.(type) {
			case *rules.Emit:
				emits = append(emits, o)
			case *rules.Timer:
				emits = append(emits, &rules.Emit{Event: o.Event})
			}
		}
	}
	rules.ShareEmitBudget(x.ev, emits)
}

// evaluation is the state of one Evaluate call. Between calls it rests in
// the engine's pool, holding only what is not the plan's: the VM, the
// bound environment and the matched-rules buffer.
type evaluation struct {
	plan *Plan
	ev   *event.Event
	now  time.Time
	m    *vm.VM
	env  rules.Env

	// work is the profile with the changes so far: the caller's profile
	// until the first change that changes something, then a copy made
	// with room for attrs more attributes and tags more tags.
	work        *profile.Profile
	owned       bool
	attrs, tags int

	fired   map[string][]time.Time // when capped rules fired, by rule
	matched []*rules.Rule          // the rules whose trigger and match hold
	effects []Effect               // of all rules; each Fired holds a part
	outs    bool                   // an effect on the world was planned
	changes []profile.Change       // the current block of changes
	stale   bool                   // env.Profile lags behind work
	step    step                   // what the action being planned sees
}

// Bounds on what begin sets aside before the rules run; a plan needing
// more grows as it goes.
const (
	roomChanges = 64 // profile changes and effects
	roomFields  = 32 // new attributes, and new tags, of the working copy
)

// begin prepares x to evaluate ev against p: it picks the candidates
// whose match holds, sets aside room for what they may plan, and binds the
// environment.
func (x *evaluation) begin(plan *Plan, ev *event.Event, p *profile.Profile, now time.Time, candidates []*rules.Rule, isForm bool) {
	x.plan, x.ev, x.now = plan, ev, now
	var n room
	if isForm {
		n = formRoom(ev.Params)
	}
	for _, r := range candidates {
		if r.Matches(ev.Params) {
			x.matched = append(x.matched, r)
			n.add(r)
		}
	}
	fired := len(x.matched)
	if isForm {
		fired++
	}
	plan.Fired = make([]Fired, 0, fired)
	plan.Evaluated = make([]string, 0, len(x.matched))
	x.effects = make([]Effect, 0, min(n.changes+n.outs, roomChanges))
	if k := min(n.changes, roomChanges); k > 0 {
		x.changes = make([]profile.Change, 0, k)
	}
	x.attrs, x.tags = min(n.attrs, roomFields), min(n.tags, roomFields)
	if p == nil {
		// A customer without a profile: the empty profile is ours to
		// change from the start.
		x.work = &profile.Profile{UUID: ev.UUID, Created: now, Updated: now,
			Attributes: make(map[string]any, x.attrs), Tags: make([]string, 0, x.tags)}
		x.owned = true
	} else {
		x.work, x.owned = p, false
	}

	env := &x.env
	env.Event = rules.EventEnv{
		ID: ev.ID, Action: ev.Action, Label: ev.Label, Time: ev.Time,
		UUID: ev.UUID, Site: ev.Site, Params: ev.Params, Depth: ev.Depth,
	}
	env.Action, env.Label, env.Params, env.UUID = ev.Action, ev.Label, ev.Params, ev.UUID
	env.Site, env.Time, env.Now = ev.Site, ev.Time, now
	env.Profile = rules.ProfileEnvOf(x.work)
	env.Bind()
	x.stale, x.outs = false, false
}

// end lets go of everything the plan holds or the call was given, so that
// x can rest in the pool.
func (x *evaluation) end() {
	x.plan, x.ev, x.work, x.fired = nil, nil, nil, nil
	x.effects, x.changes = nil, nil
	clear(x.matched)
	x.matched = x.matched[:0]
	x.env.Event = rules.EventEnv{}
	x.env.Params = nil
	x.env.Profile = rules.ProfileEnv{}
	x.step.rule = ""
}

// room estimates what rules add to a plan when they fire: profile changes,
// effects on the world, new attributes and new tags.
type room struct{ changes, outs, attrs, tags int }

// add counts the actions of r.
func (n *room) add(r *rules.Rule) {
	for _, a := range r.Do {
		switch a := a.(type) {
		case *rules.SetAction:
			n.changes += len(a.Fields)
			for _, f := range a.Fields {
				if !profile.IsStandardField(f.Name) {
					n.attrs++
				}
			}
		case *rules.UnsetAction:
			n.changes += len(a.Names)
		case *rules.TagAction:
			n.changes += len(a.Tags)
			n.tags += len(a.Tags)
		case *rules.UntagAction:
			n.changes += len(a.Tags)
		default:
			n.outs++
		}
	}
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
	if x.held(r) {
		return
	}
	st := &x.step
	st.rule = r.Name
	for i, a := range r.Do {
		at, kind = i, a.Kind()
		st.index = i
		if err := a.Plan(st); err != nil {
			fail(err)
			return
		}
	}
	x.plan.Fired = append(x.plan.Fired, Fired{Rule: r.Name, Effects: x.effects[start:len(x.effects):len(x.effects)], Limit: r.Limit})
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
	s.x.outs = true
}

// Emitted counts the "emit" and "timer" effects planned so far: those of the rules
// that fired and of the rule being run.
func (s *step) Emitted() int {
	n := 0
	for _, e := range s.x.effects {
		if e.Out != nil && (e.Out.Kind() == "emit" || e.Out.Kind() == "timer") {
			n++
		}
	}
	return n
}

// Change applies a change to the working profile, copying the caller's
// profile at the first change that changes something, and records it when
// it changes anything.
func (s *step) Change(op profile.Op, name string, value any) error {
	x := s.x
	if !x.owned {
		if !x.work.WouldChange(&profile.Change{Op: op, Name: name, Value: value}) {
			return nil
		}
		x.work = x.work.CloneWithRoom(x.attrs, x.tags)
		x.owned = true
	}
	if len(x.changes) == cap(x.changes) {
		// Changes are allocated in blocks: the plan keeps pointers to
		// them, and one allocation a change would be most of what
		// evaluation costs.
		x.changes = make([]profile.Change, 0, max(8, 2*len(x.plan.Fired)+2))
	}
	x.changes = append(x.changes, profile.Change{Op: op, Name: name, Value: value})
	pc := &x.changes[len(x.changes)-1]
	changed, err := x.work.Apply(pc, x.now)
	if err != nil || !changed {
		x.changes = x.changes[:len(x.changes)-1]
		return err
	}
	x.stale = true
	x.effects = append(x.effects, Effect{Step: s.index, Change: pc})
	return nil
}
