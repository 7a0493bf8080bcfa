package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/replay"
	"github.com/herald-events/herald/rules"
)

// Through the applier serve runs (replay feeds emitted events back in from
// the outbox, as serve does through NATS), the budget travels with each
// emitted event, and a rule emitting its own trigger 8 times a step ends
// within DefaultEmitBudget emitted events, on the budget error.
func TestEmitBudgetThroughTheOutbox(t *testing.T) {
	var src strings.Builder
	src.WriteString("rules:\n")
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		src.WriteString("  - {name: fan-" + name + ", on: loop.step, do: [{emit: loop.step}]}\n")
	}
	set, err := rules.Parse("fan.yaml", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.New(replay.Config{Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.Run(ctx, &event.Event{ID: "01KB0000000000000000000001", Action: "loop.step", Time: t0, UUID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) > event.DefaultEmitBudget+1 {
		t.Fatalf("%d evaluations, more than the budget %d and the tracked event", len(res), event.DefaultEmitBudget)
	}
	if len(res) != event.DefaultEmitBudget+1 {
		t.Errorf("%d evaluations, want %d (8 of budget 7, 56 of budget 0)", len(res), event.DefaultEmitBudget+1)
	}
	budgets := map[int]int{} // evaluations by the budget of their event
	for _, x := range res[1:] {
		budgets[x.Plan.Event.Budget]++
	}
	if budgets[7] != 8 || budgets[0] != 56 {
		t.Errorf("evaluated events by budget %v, want 8 of 7 and 56 of 0", budgets)
	}
	last := res[len(res)-1].Plan
	if len(last.Errors) != 8 || !strings.Contains(last.Errors[0].Error(), "emits: this event's chain may emit no more events") {
		t.Fatalf("last plan errors = %v", last.Errors)
	}
}
