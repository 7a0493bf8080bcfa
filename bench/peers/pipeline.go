package peers

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"github.com/hyperjumptech/grule-rule-engine/ast"
	"github.com/hyperjumptech/grule-rule-engine/builder"
	grule "github.com/hyperjumptech/grule-rule-engine/engine"
	"github.com/hyperjumptech/grule-rule-engine/pkg"
)

// Pipeline handles one event: it decodes the JSON and evaluates the rules,
// returning how many rules fired. A Pipeline is used by one goroutine.
type Pipeline interface {
	Handle(data []byte) (fired int, err error)
}

// Change is a profile change a peer's rule makes.
type Change struct {
	Op, Name string
	Value    any
}

// now is the evaluation time of every pipeline.
var now = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// Herald is Herald's own pipeline: event.Decode, then engine.Evaluate
// against an empty profile, as herald serve does for a new customer.
type Herald struct {
	engine  *engine.Engine
	profile *profile.Profile
}

// NewHerald loads n rules (HeraldRules) into an engine.
func NewHerald(n int) (*Herald, error) {
	set, err := rules.Parse("bench.yaml", HeraldRules(n))
	if err != nil {
		return nil, err
	}
	return &Herald{engine: engine.New(set), profile: profile.New("6f1c2d1e-8b1a-4c1e-9d3b-2a6f0c9e7d11", now)}, nil
}

// Handle implements Pipeline. The built-in form step, which Herald runs
// for every form submission, is not counted as a rule.
func (h *Herald) Handle(data []byte) (int, error) {
	ev, err := event.Decode(data)
	if err != nil {
		return 0, err
	}
	plan := h.engine.Evaluate(ev, h.profile, now)
	if len(plan.Errors) > 0 {
		return 0, plan.Errors[0]
	}
	fired := 0
	for _, f := range plan.Fired {
		if f.Rule != engine.FormRule {
			fired++
		}
	}
	return fired, nil
}

// naiveEnv is what the naive loop's expressions see.
type naiveEnv struct {
	Action  string         `expr:"action"`
	Params  map[string]any `expr:"params"`
	Profile naiveProfile   `expr:"profile"`
	IsEmail func(any) bool `expr:"isEmail"`
}

type naiveProfile struct {
	Attributes map[string]any `expr:"attributes"`
}

func isEmail(v any) bool {
	s, ok := v.(string)
	return ok && rules.IsEmail(s)
}

type naiveRule struct {
	condition *vm.Program
	names     []string
	values    []*vm.Program
	tag       string
}

// Naive decodes the event with event.Decode, then runs every rule's
// compiled condition, whatever the event's action, and the value
// expressions of those that hold. Expressions are compiled once, against
// a typed environment, and run on one reused VM.
type Naive struct {
	rules   []naiveRule
	vm      vm.VM
	changes []Change
}

// NewNaive compiles n rules (NaiveRules).
func NewNaive(n int) (*Naive, error) {
	opts := []expr.Option{expr.Env(naiveEnv{})}
	nv := &Naive{}
	for _, r := range NaiveRules(n) {
		cond, err := expr.Compile(r.Condition, append(opts, expr.AsBool())...)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		nr := naiveRule{condition: cond, tag: r.Tag}
		for name, src := range r.Set {
			p, err := expr.Compile(src, opts...)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %s: %w", r.Name, name, err)
			}
			nr.names = append(nr.names, name)
			nr.values = append(nr.values, p)
		}
		nv.rules = append(nv.rules, nr)
	}
	return nv, nil
}

// Handle implements Pipeline.
func (nv *Naive) Handle(data []byte) (int, error) {
	ev, err := event.Decode(data)
	if err != nil {
		return 0, err
	}
	env := naiveEnv{Action: ev.Action, Params: ev.Params, Profile: naiveProfile{Attributes: map[string]any{}}, IsEmail: isEmail}
	nv.changes = nv.changes[:0]
	fired := 0
	for i := range nv.rules {
		r := &nv.rules[i]
		ok, err := nv.vm.Run(r.condition, env)
		if err != nil {
			return 0, err
		}
		if !ok.(bool) {
			continue
		}
		fired++
		for j, p := range r.values {
			v, err := nv.vm.Run(p, env)
			if err != nil {
				return 0, err
			}
			nv.changes = append(nv.changes, Change{Op: "set", Name: r.names[j], Value: v})
		}
		nv.changes = append(nv.changes, Change{Op: "tag", Name: r.tag})
	}
	return fired, nil
}

// GruleEvent is the event as grule rules see it (Ev).
type GruleEvent struct {
	Action string
	params map[string]any
}

// Param returns the event's parameter name as a string, "" when missing.
func (e *GruleEvent) Param(name string) string {
	s, _ := e.params[name].(string)
	return s
}

// GruleProfile is the profile as grule rules see it (Prof).
type GruleProfile struct{ attributes map[string]any }

// Attribute returns the custom attribute name as a string, "" when
// missing.
func (p *GruleProfile) Attribute(name string) string {
	s, _ := p.attributes[name].(string)
	return s
}

// GruleFuncs holds the functions grule rules call (Fn).
type GruleFuncs struct{}

// IsEmail is Herald's isEmail.
func (GruleFuncs) IsEmail(s string) bool { return rules.IsEmail(s) }

// GruleOut collects the changes grule rules make (Out).
type GruleOut struct {
	Changes []Change
	fired   int
}

// Set records setting an attribute by rule.
func (o *GruleOut) Set(rule, name, value string) {
	o.Changes = append(o.Changes, Change{Op: "set", Name: name, Value: value})
}

// Tag records adding a tag; every rule adds exactly one, so it counts the
// rules fired.
func (o *GruleOut) Tag(tag string) {
	o.Changes = append(o.Changes, Change{Op: "tag", Name: tag})
	o.fired++
}

// Grule decodes the event with event.Decode, then runs grule's engine on
// the rules (GruleRules) with the event, an empty profile and the output
// as facts. Grule evaluates every rule's condition in each cycle and fires
// the first that holds; a fired rule retracts itself, so an event takes
// one cycle per matching rule and one more.
type Grule struct {
	kb     *ast.KnowledgeBase
	engine *grule.GruleEngine
	out    GruleOut
}

// NewGrule builds a knowledge base of n rules.
func NewGrule(n int) (*Grule, error) {
	lib := ast.NewKnowledgeLibrary()
	if err := builder.NewRuleBuilder(lib).BuildRuleFromResource("bench", "1", pkg.NewBytesResource(GruleRules(n))); err != nil {
		return nil, err
	}
	kb, err := lib.NewKnowledgeBaseInstance("bench", "1")
	if err != nil {
		return nil, err
	}
	if len(kb.RuleEntries) != n {
		return nil, fmt.Errorf("grule loaded %d rules, want %d", len(kb.RuleEntries), n)
	}
	g := &Grule{kb: kb, engine: grule.NewGruleEngine()}
	g.engine.ReturnErrOnFailedRuleEvaluation = true
	return g, nil
}

// Handle implements Pipeline.
func (g *Grule) Handle(data []byte) (int, error) {
	ev, err := event.Decode(data)
	if err != nil {
		return 0, err
	}
	g.out = GruleOut{Changes: g.out.Changes[:0]}
	dctx := ast.NewDataContext()
	err = errors.Join(
		dctx.Add("Ev", &GruleEvent{Action: ev.Action, params: ev.Params}),
		dctx.Add("Prof", &GruleProfile{attributes: map[string]any{}}),
		dctx.Add("Fn", GruleFuncs{}),
		dctx.Add("Out", &g.out),
	)
	if err != nil {
		return 0, err
	}
	if err := g.engine.Execute(dctx, g.kb); err != nil {
		return 0, err
	}
	return g.out.fired, nil
}

// New returns the pipeline called name (herald, naive or grule) with n
// rules loaded.
func New(name string, n int) (Pipeline, error) {
	switch name {
	case "herald":
		return NewHerald(n)
	case "naive":
		return NewNaive(n)
	case "grule":
		return NewGrule(n)
	}
	return nil, errors.New("unknown pipeline " + name)
}
