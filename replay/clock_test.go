package replay

import (
	"context"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

const timerRules = `rules:
  - name: placed
    on: order.placed
    do:
      - emit: {action: order.remind, after: 48h, key: remind}
      - emit: {action: order.expire, after: 7d, key: expire}
  - name: cancelled
    on: order.cancelled
    do:
      - cancel: [remind, expire]
  - name: reminded
    on: order.remind
    do:
      - set: {remindedAt: "${ now }"}
      - emit: order.reminded
  - name: expired
    on: order.expire
    do:
      - set: {expiredAt: "${ now }"}
`

// Timers fire on the virtual clock, at their own time, soonest first,
// when the clock is advanced past them; a cancelled one never does.
func TestAdvanceFiresDueTimersInOrder(t *testing.T) {
	set, err := rules.Parse("rules.yaml", []byte(timerRules))
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	ctx := context.Background()
	ev := func(id, action, uuid string, at time.Time) *event.Event {
		return &event.Event{ID: id, Action: action, Time: at, UUID: uuid}
	}
	for _, e := range []*event.Event{
		ev("01KB0000000000000000000001", "order.placed", "ann", t0),
		ev("01KB0000000000000000000002", "order.placed", "bob", t0.Add(time.Hour)),
		ev("01KB0000000000000000000003", "order.cancelled", "bob", t0.Add(30*time.Hour)),
	} {
		if res, err := r.Advance(ctx, e.Time); err != nil || len(res) != 0 {
			t.Fatalf("advance to %s: %d results, %v", e.Time, len(res), err)
		}
		if _, err := r.Run(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if p := r.Clock().Pending(""); len(p) != 2 || p[0].Key != "remind" || p[1].Key != "expire" || p[0].Event.UUID != "ann" {
		t.Fatalf("pending after bob cancelled: %+v", p)
	}
	// 3 days on: ann's reminder (and the event it emits), not her expiry.
	res, err := r.Advance(ctx, t0.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Timer == nil || res[0].Timer.Key != "remind" || res[1].Timer != nil || res[1].Plan.Event.Action != "order.reminded" {
		t.Fatalf("advance 3 days: %d results %+v", len(res), res)
	}
	if got := res[0].Plan.After.Attributes["remindedAt"]; got != "2026-11-30T10:00:00Z" {
		t.Errorf("reminded at %v, want the timer's time 2026-11-30T10:00:00Z", got)
	}
	if !r.Clock().Now().Equal(t0.Add(72 * time.Hour)) {
		t.Errorf("clock at %s after advancing", r.Clock().Now())
	}
	res, err = r.Advance(ctx, t0.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Timer.Key != "expire" || res[0].Plan.After.Attributes["expiredAt"] != "2026-12-05T10:00:00Z" {
		t.Fatalf("advance 30 days: %+v", res)
	}
	if p := r.Clock().Pending(""); len(p) != 0 {
		t.Fatalf("timers left: %+v", p)
	}
}
