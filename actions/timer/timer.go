// Package timer performs "timer" and "cancel" effects: it sets a
// customer's timer to publish an event later, or removes timers, through
// a Scheduler (serve's is natsbus.Timers, on JetStream scheduled
// messages; a replay's runs on a virtual clock).
package timer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/event"
)

// Scheduler keeps timers. Schedule sets the timer key of ev's customer
// to publish ev at due, replacing the key's timer; Cancel removes the
// timer key of customer uuid. Both are idempotent.
type Scheduler interface {
	Schedule(ctx context.Context, key string, due time.Time, ev *event.Event) error
	Cancel(ctx context.Context, uuid, key string) error
}

// Effector performs "timer" and "cancel" effects through a Scheduler.
type Effector struct{ Scheduler Scheduler }

// Timer is a decoded "timer" effect.
type Timer struct {
	Key   string
	Due   time.Time
	Event *event.Event
}

// Decode decodes a "timer" effect: the wire form {"key", "due", "event",
// "depth", "budget"} the rules render (rules.Timed).
func Decode(e *actions.Effect) (*Timer, error) {
	var w struct {
		Key    string       `json:"key"`
		Due    time.Time    `json:"due"`
		Event  *event.Event `json:"event"`
		Depth  int          `json:"depth"`
		Budget int          `json:"budget"`
	}
	if err := strict(e.Data, &w); err != nil {
		return nil, fmt.Errorf("decode timer effect %s: %w", e.Key, err)
	}
	if w.Event == nil || w.Key == "" || w.Due.IsZero() {
		return nil, fmt.Errorf("decode timer effect %s: no event, key or due time", e.Key)
	}
	w.Event.Depth, w.Event.Budget = w.Depth, w.Budget
	if err := w.Event.Validate(); err != nil {
		return nil, fmt.Errorf("timer effect %s: %w", e.Key, err)
	}
	return &Timer{Key: w.Key, Due: w.Due, Event: w.Event}, nil
}

// Cancel is a decoded "cancel" effect.
type Cancel struct {
	UUID string   `json:"uuid"`
	Keys []string `json:"keys"`
}

// DecodeCancel decodes a "cancel" effect (rules.Cancel).
func DecodeCancel(e *actions.Effect) (*Cancel, error) {
	var c Cancel
	if err := strict(e.Data, &c); err != nil {
		return nil, fmt.Errorf("decode cancel effect %s: %w", e.Key, err)
	}
	if c.UUID == "" || len(c.Keys) == 0 {
		return nil, fmt.Errorf("decode cancel effect %s: no customer or no key", e.Key)
	}
	return &c, nil
}

func strict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Perform implements actions.Effector. Undecodable data is a permanent
// failure; a scheduler's failure is worth retrying.
func (f *Effector) Perform(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	switch e.Kind {
	case "timer":
		t, err := Decode(e)
		if err != nil {
			return false, err
		}
		if err := ctx.Err(); err != nil {
			return true, err
		}
		if err := f.Scheduler.Schedule(ctx, t.Key, t.Due, t.Event); err != nil {
			return true, fmt.Errorf("timer %s: %w", t.Key, err)
		}
		return false, nil
	case "cancel":
		c, err := DecodeCancel(e)
		if err != nil {
			return false, err
		}
		if err := ctx.Err(); err != nil {
			return true, err
		}
		var errs []error
		for _, k := range c.Keys {
			if err := f.Scheduler.Cancel(ctx, c.UUID, k); err != nil {
				errs = append(errs, fmt.Errorf("cancel timer %s: %w", k, err))
			}
		}
		return len(errs) > 0, errors.Join(errs...)
	}
	return false, fmt.Errorf("timer effector: unknown kind %q", e.Kind)
}
