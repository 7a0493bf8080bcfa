// Package emit performs "emit" effects: it publishes the event a rule
// emitted, with its depth, through a Publisher that deduplicates on the
// event's id (serve's is natsbus.Publisher, on Nats-Msg-Id).
package emit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/event"
)

// Publisher publishes an event into Herald. ev.Depth and ev.Budget travel
// with it.
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) error
}

// PublisherFunc adapts a function to a Publisher.
type PublisherFunc func(ctx context.Context, ev *event.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, ev *event.Event) error { return f(ctx, ev) }

// Effector performs emit effects through a Publisher.
type Effector struct{ Publisher Publisher }

// Event decodes the event an emit effect publishes, with its depth and
// emit budget: the wire form {"event": {…}, "depth": n, "budget": b} the
// rules render (rules.Emitted). An effect without a budget, as rendered
// before emit budgets, gives an event that may emit nothing more.
func Event(e *actions.Effect) (*event.Event, error) {
	var w struct {
		Event  *event.Event `json:"event"`
		Depth  int          `json:"depth"`
		Budget int          `json:"budget"`
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("decode emit effect %s: %w", e.Key, err)
	}
	if w.Event == nil {
		return nil, fmt.Errorf("decode emit effect %s: no event", e.Key)
	}
	w.Event.Depth, w.Event.Budget = w.Depth, w.Budget
	if err := w.Event.Validate(); err != nil {
		return nil, fmt.Errorf("emit effect %s: %w", e.Key, err)
	}
	return w.Event, nil
}

// Perform implements actions.Effector. Undecodable data is a permanent
// failure; a failed publish is worth retrying.
func (f *Effector) Perform(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	ev, err := Event(e)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("emit %s: %w", ev.ID, err)
	}
	if err := f.Publisher.Publish(ctx, ev); err != nil {
		var invalid *event.ValidationError
		return !errors.As(err, &invalid), fmt.Errorf("emit %s: %w", ev.ID, err)
	}
	return false, nil
}
