package engine

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Explanation says, for every rule that triggers on an event's action,
// whether it fired and, when it did not, why: a disabled rule, the match
// entry that failed with the value the event had, the condition's value
// with those of its parts, or the error the rule failed with.
type Explanation struct {
	Event *event.Event
	Rules []*RuleExplanation
}

// RuleExplanation is what became of one rule.
type RuleExplanation struct {
	Rule     string
	Fired    bool
	Disabled bool
	// Match is the first match entry that failed; nil when all held.
	Match *MatchMiss
	// If is the condition's source, "" when the rule has none; Value
	// its value (when it ran without an error) and Parts the values of
	// its parts (rules.Condition.Parts).
	If    string
	Value any
	Parts []PartValue
	// Error is the run-time error the rule failed with, "" for none.
	Error string
	// Held says why the rule's limit (limit:, once:) held it back, ""
	// when it did not.
	Held string
}

// MatchMiss is a match entry that failed: the parameter, the values it
// had to equal, and the value the event had (Missing when it had none).
type MatchMiss struct {
	Param   string   `json:"param"`
	Want    []string `json:"want"`
	Got     any      `json:"got,omitempty"`
	Missing bool     `json:"missing,omitempty"`
}

// PartValue is the value of a part of a condition, or the error its
// evaluation gave.
type PartValue struct {
	Src   string
	Depth int
	Value any
	Err   string
}

// Reason says in a few words why the rule did not fire; "fired" when it
// did.
func (r *RuleExplanation) Reason() string {
	switch {
	case r.Fired:
		return "fired"
	case r.Disabled:
		return "disabled (enabled: false)"
	case r.Match != nil && r.Match.Missing:
		return fmt.Sprintf("match %s: the event has no %s", r.Match.Param, r.Match.Param)
	case r.Match != nil:
		return fmt.Sprintf("match %s: %s is not %s", r.Match.Param, showValue(r.Match.Got), wantList(r.Match.Want))
	case r.Error != "":
		return "error: " + r.Error
	case r.Held != "":
		return "held back by its limit: " + r.Held
	case r.If != "":
		return "if is " + showValue(r.Value)
	}
	return "did not fire"
}

func wantList(want []string) string {
	if len(want) == 1 {
		return fmt.Sprintf("%q", want[0])
	}
	s := "any of"
	for i, w := range want {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %q", w)
	}
	return s
}

// showValue shows a value as an expression would write it.
func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any, []string, map[string]any:
		if data, err := json.Marshal(x); err == nil {
			return string(data)
		}
	}
	return fmt.Sprintf("%v", v)
}

// ShowValue shows a value of an explanation as an expression would write
// it: text quoted, nil for no value.
func ShowValue(v any) string { return showValue(v) }

// Explain evaluates ev as Evaluate does and explains what became of each
// rule that triggers on its action, disabled ones included, in order. It
// costs more than Evaluate: conditions that did not hold are evaluated
// again, part by part, against the profile as the rule saw it.
func (e *Engine) Explain(ev *event.Event, p *profile.Profile, now time.Time) (*Plan, *Explanation) {
	set := e.Rules()
	plan := e.Evaluate(ev, p, now)
	return plan, explain(set, plan, ev, p, now)
}

// ExplainPlan explains a plan that Evaluate made of ev against p at now
// with the rule set set.
func ExplainPlan(set *rules.Set, plan *Plan, p *profile.Profile, now time.Time) *Explanation {
	return explain(set, plan, plan.Event, p, now)
}

func explain(set *rules.Set, plan *Plan, ev *event.Event, p *profile.Profile, now time.Time) *Explanation {
	ex := &Explanation{Event: ev}
	fired := make(map[string]int, len(plan.Fired))
	for i, f := range plan.Fired {
		fired[f.Rule] = i
	}
	held := make(map[string]string, len(plan.Held))
	for _, h := range plan.Held {
		held[h.Rule] = h.Reason
	}
	failed := make(map[string]string, len(plan.Errors))
	for _, err := range plan.Errors {
		failed[err.Rule] = firstLine(err.Err.Error())
	}
	// work is the profile as the next rule evaluated saw it: p with the
	// changes of the rules fired before it (the form step first).
	work := p
	if work == nil {
		work = &profile.Profile{UUID: ev.UUID, Created: now, Updated: now}
	}
	work = work.Clone()
	next := 0 // the first entry of plan.Fired not applied to work yet
	applyUpTo := func(i int) {
		for ; next < i; next++ {
			for _, eff := range plan.Fired[next].Effects {
				if eff.Change != nil {
					c := *eff.Change
					_, _ = work.Apply(&c, now)
				}
			}
		}
	}
	if len(plan.Fired) > 0 && plan.Fired[0].Rule == FormRule {
		applyUpTo(1)
	}
	m := &vm.VM{MemoryBudget: rules.MemoryBudget}
	for _, r := range set.Rules() {
		if !triggers(r, ev.Action) {
			continue
		}
		re := &RuleExplanation{Rule: r.Name, Disabled: !r.Enabled}
		ex.Rules = append(ex.Rules, re)
		if !r.Enabled {
			continue
		}
		if miss := firstMiss(r, ev.Params); miss != nil {
			re.Match = miss
			continue
		}
		i, ok := fired[r.Name]
		re.Fired = ok
		re.Error = failed[r.Name]
		re.Held = held[r.Name]
		if r.If != nil {
			re.If = r.If.Src
			if ok {
				applyUpTo(i)
			}
			env := envOf(ev, work, now)
			if re.Error == "" {
				re.Value, _ = m.Run(r.If.Program, env)
			}
			for _, part := range r.If.Parts() {
				env.Bind()
				pv := PartValue{Src: part.Src, Depth: part.Depth}
				v, err := m.Run(part.Program, env)
				if err != nil {
					pv.Err = firstLine(err.Error())
				} else {
					pv.Value = v
				}
				re.Parts = append(re.Parts, pv)
			}
		}
		if ok {
			applyUpTo(i + 1)
		}
	}
	return ex
}

// triggers reports whether the rule's on: names the action, exactly or
// by a glob.
func triggers(r *rules.Rule, action string) bool {
	for _, t := range r.On {
		if t == action {
			return true
		}
		if ok, _ := path.Match(t, action); ok {
			return true
		}
	}
	return false
}

// firstMiss returns the first match entry of r that params fail.
func firstMiss(r *rules.Rule, params map[string]any) *MatchMiss {
	for _, m := range r.Match {
		v, ok := params[m.Param]
		if !ok {
			return &MatchMiss{Param: m.Param, Want: m.Values, Missing: true}
		}
		one := &rules.Rule{Match: []rules.Match{m}}
		if !one.Matches(params) {
			return &MatchMiss{Param: m.Param, Want: m.Values, Got: v}
		}
	}
	return nil
}

// envOf is the environment a rule's condition sees.
func envOf(ev *event.Event, p *profile.Profile, now time.Time) *rules.Env {
	env := &rules.Env{}
	env.Event = rules.EventEnv{
		ID: ev.ID, Action: ev.Action, Label: ev.Label, Time: ev.Time,
		UUID: ev.UUID, Site: ev.Site, Params: ev.Params, Depth: ev.Depth,
	}
	env.Action, env.Label, env.Params, env.UUID = ev.Action, ev.Label, ev.Params, ev.UUID
	env.Site, env.Time, env.Now = ev.Site, ev.Time, now
	env.Profile = rules.ProfileEnvOf(p)
	env.Bind()
	return env
}

// firstLine is an error's first line: expr's errors go on with the source
// and a caret, which an explanation shows already.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
