package timer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/timer"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/replay"
)

var due = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func effect(t *testing.T, kind string, data any) *actions.Effect {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return &actions.Effect{Key: "k", Kind: kind, Event: "e", Data: raw}
}

// The effector schedules and cancels through its Scheduler, and refuses
// for good what does not decode.
func TestEffector(t *testing.T) {
	clock := &replay.Clock{}
	eff := &timer.Effector{Scheduler: clock}
	ctx := context.Background()
	ev := &event.Event{ID: "01KT0000000000000000000001", Action: "order.remind", Time: due, UUID: "c-1"}
	if retry, err := eff.Perform(ctx, effect(t, "timer", map[string]any{"key": "remind", "due": due, "event": ev, "depth": 1, "budget": 2})); err != nil || retry {
		t.Fatalf("timer: retry %v, %v", retry, err)
	}
	p := clock.Pending("c-1")
	if len(p) != 1 || p[0].Key != "remind" || !p[0].Due.Equal(due) || p[0].Event.Depth != 1 || p[0].Event.Budget != 2 {
		t.Fatalf("pending %+v", p)
	}
	if retry, err := eff.Perform(ctx, effect(t, "cancel", map[string]any{"uuid": "c-1", "keys": []string{"remind", "other"}})); err != nil || retry {
		t.Fatalf("cancel: retry %v, %v", retry, err)
	}
	if p := clock.Pending(""); len(p) != 0 {
		t.Fatalf("pending after the cancel: %+v", p)
	}
	for name, e := range map[string]*actions.Effect{
		"unknown field":  effect(t, "timer", map[string]any{"key": "remind", "due": due, "event": ev, "depth": 1, "extra": 1}),
		"no key":         effect(t, "timer", map[string]any{"due": due, "event": ev, "depth": 1}),
		"invalid event":  effect(t, "timer", map[string]any{"key": "remind", "due": due, "event": map[string]any{"id": "x", "action": "nope", "uuid": "c-1"}, "depth": 1}),
		"cancel no keys": effect(t, "cancel", map[string]any{"uuid": "c-1"}),
		"unknown kind":   effect(t, "later", map[string]any{}),
	} {
		if retry, err := eff.Perform(ctx, e); err == nil || retry {
			t.Errorf("%s: retry %v, err %v; want a permanent failure", name, retry, err)
		}
	}
}
