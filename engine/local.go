package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

// Local runs events through an Engine against a profile store and feeds the
// events they emit straight back in, as `herald serve` does through NATS.
// Emails are recorded in the plans, never sent. Replays and rule tests use
// it.
type Local struct {
	Engine *Engine
	Store  profile.Store
}

// Run evaluates ev at time now, stores the profile it changes, then runs
// each event it emits the same way, depth first. It returns every plan in
// the order evaluated: ev's first.
func (l *Local) Run(ctx context.Context, ev *event.Event, now time.Time) ([]*Plan, error) {
	var plans []*Plan
	queue := []*event.Event{ev}
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		plan, err := l.runOne(ctx, ev, now)
		if err != nil {
			return plans, err
		}
		plans = append(plans, plan)
		// Emitted events run before the rest of the queue, in order.
		queue = append(plan.Emits(), queue...)
	}
	return plans, nil
}

func (l *Local) runOne(ctx context.Context, ev *event.Event, now time.Time) (*Plan, error) {
	if !l.Engine.Wants(ev.Action) {
		return l.Engine.Evaluate(ev, nil, now), nil
	}
	rec, rev, err := l.Store.Get(ctx, ev.UUID)
	switch {
	case errors.Is(err, profile.ErrNotFound):
		rec = &profile.Record{}
	case err != nil:
		return nil, fmt.Errorf("load profile %s: %w", ev.UUID, err)
	}
	plan := l.Engine.Evaluate(ev, rec.Profile, now)
	if len(plan.Changes()) > 0 {
		rec.Profile = plan.After
		if _, err := l.Store.Put(ctx, ev.UUID, rec, rev); err != nil {
			return nil, fmt.Errorf("store profile %s: %w", ev.UUID, err)
		}
	}
	return plan, nil
}
