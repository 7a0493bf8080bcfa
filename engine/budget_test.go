package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

// chain evaluates ev, then every event it emits, then theirs, depth first,
// as serve does through the outbox and NATS: each emitted event carries its
// depth and budget. It returns the plans, ev's first, and fails when the
// chain does not end within limit evaluations.
func chain(t *testing.T, e *Engine, ev *event.Event, limit int) []*Plan {
	t.Helper()
	var plans []*Plan
	queue := []*event.Event{ev}
	for len(queue) > 0 {
		if len(plans) == limit {
			t.Fatalf("the chain is still going after %d evaluations", limit)
		}
		next := queue[0]
		plan := e.Evaluate(next, nil, next.Time.Add(time.Second))
		plans = append(plans, plan)
		queue = append(emits(plan), queue[1:]...)
	}
	return plans
}

// fanRules is a rule set whose rules emit their own trigger 8 times an
// evaluation: as one rule of 8 emits, or as 8 rules of one emit each.
func fanRules(t *testing.T, rulesOf8 bool) *rules.Set {
	var b strings.Builder
	if rulesOf8 {
		for i := range 8 {
			fmt.Fprintf(&b, "  - {name: fan%d, on: loop.step, do: [{emit: loop.step}]}\n", i)
		}
	} else {
		b.WriteString("  - name: fan\n    on: loop.step\n    do:\n")
		for range 8 {
			b.WriteString("      - emit: loop.step\n")
		}
	}
	return mustRules(t, b.String())
}

// A rule that emits its own trigger 8 times a step, which the depth limit
// alone let grow to 8^8 events, stops within the tracked event's budget:
// at most DefaultEmitBudget events are emitted in all, and the chain ends
// on the budget error.
func TestEmitBudgetBoundsALoopInWidth(t *testing.T) {
	tests := []struct {
		name      string
		rulesOf8  bool
		wantPlans int
	}{
		// 8 emits of budget (64-8)/8 = 7; each of them would emit 8 in
		// one rule, 1 more than it may, so that rule fails whole.
		{"one rule emitting 8 times", false, 1 + 8},
		// 8 emits of budget 7; each of them emits 7 (the 8th rule fails)
		// of budget 0, whose rules all fail: 1 + 8 + 56 = 65.
		{"8 rules emitting once", true, 1 + event.DefaultEmitBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(fanRules(t, tt.rulesOf8))
			plans := chain(t, e, newEvent("loop.step", nil), 10*event.DefaultEmitBudget)
			if len(plans) > event.DefaultEmitBudget+1 {
				t.Fatalf("%d evaluations, more than the budget %d and the tracked event", len(plans), event.DefaultEmitBudget)
			}
			if len(plans) != tt.wantPlans {
				t.Errorf("%d evaluations, want %d", len(plans), tt.wantPlans)
			}
			if got := len(emits(plans[0])); got != 8 {
				t.Fatalf("the tracked event emitted %d events, want 8", got)
			}
			for _, ev := range emits(plans[0]) {
				if ev.Budget != (event.DefaultEmitBudget-8)/8 || ev.Depth != 1 {
					t.Fatalf("emitted %s with depth %d, budget %d; want 1, %d", ev.ID, ev.Depth, ev.Budget, (event.DefaultEmitBudget-8)/8)
				}
			}
			last := plans[len(plans)-1]
			if len(last.Errors) == 0 {
				t.Fatal("the last evaluation has no error")
			}
			err := last.Errors[len(last.Errors)-1]
			if !strings.Contains(err.Error(), "emits: this event's chain may emit") || !strings.Contains(err.Error(), "stopped to break a loop") {
				t.Fatalf("last error %v, want the emit budget's", err)
			}
			for _, p := range plans {
				for _, err := range p.Errors {
					if strings.Contains(err.Error(), "chain deeper") {
						t.Fatalf("the depth limit stopped the chain, not the budget: %v", err)
					}
				}
			}
		})
	}
}

// The rule whose emit would go past the budget fails whole, naming itself;
// the rules before it keep their emits, which share what is left.
func TestEmitBudgetFailsTheRuleThatExceedsIt(t *testing.T) {
	e := New(mustRules(t, `
  - {name: first, on: loop.step, do: [{emit: loop.step}, {emit: loop.step}]}
  - {name: second, on: loop.step, do: [{tag: seen}, {emit: loop.step}, {emit: loop.step}]}
  - {name: third, on: loop.step, do: [{tag: third}]}
`))
	const prefix = "rule %q on event 01KB0000000000000000000001: do[%d] emit: emits: this event's chain may emit "
	tests := []struct {
		depth, budget int
		wantEmits     int
		wantBudget    int      // of each emitted event
		wantErrs      []string // of the plan
	}{
		{0, 0, 4, (event.DefaultEmitBudget - 4) / 4, nil}, // a tracked event gets the default
		{1, 9, 4, 1, nil},
		{1, 4, 4, 0, nil},
		{1, 3, 2, 0, []string{
			fmt.Sprintf(prefix+`3 more events, and rule "second" would emit a 4th; stopped to break a loop`, "second", 2),
		}},
		{1, 1, 0, 0, []string{
			fmt.Sprintf(prefix+`1 more event, and rule "first" would emit a 2nd; stopped to break a loop`, "first", 1),
			fmt.Sprintf(prefix+`1 more event, and rule "second" would emit a 2nd; stopped to break a loop`, "second", 2),
		}},
		{1, 0, 0, 0, []string{
			fmt.Sprintf(prefix+`no more events, and rule "first" would emit one; stopped to break a loop`, "first", 0),
			fmt.Sprintf(prefix+`no more events, and rule "second" would emit one; stopped to break a loop`, "second", 1),
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("depth %d budget %d", tt.depth, tt.budget), func(t *testing.T) {
			ev := newEvent("loop.step", nil)
			ev.Depth, ev.Budget = tt.depth, tt.budget
			plan := e.Evaluate(ev, nil, t0)
			out := emits(plan)
			if len(out) != tt.wantEmits {
				t.Fatalf("%d emits, want %d", len(out), tt.wantEmits)
			}
			for _, em := range out {
				if em.Budget != tt.wantBudget || em.Depth != tt.depth+1 {
					t.Errorf("emitted depth %d budget %d, want %d, %d", em.Depth, em.Budget, tt.depth+1, tt.wantBudget)
				}
			}
			var errs []string
			for _, err := range plan.Errors {
				errs = append(errs, err.Error())
			}
			if got, want := strings.Join(errs, "\n"), strings.Join(tt.wantErrs, "\n"); got != want {
				t.Errorf("errors:\n got %s\nwant %s", got, want)
			}
			if got := firedNames(plan); !strings.HasSuffix(got, "third") {
				t.Errorf("fired %q: a rule without emits must still fire", got)
			}
		})
	}
}
