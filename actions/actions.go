// Package actions is the seam between applying a plan and performing its
// effects. A planned effect (an email, an emitted event, a webhook call) is
// rendered once into an [Effect] and kept in the customer's outbox; an
// [Effector] registered for the effect's kind performs it, at least once,
// and says whether a failure is worth retrying. Each backend lives in its
// own package under actions/; the applier knows only this interface.
package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Effect is one rendered effect as kept in a customer's outbox until it is
// performed.
type Effect struct {
	// Key identifies the effect: source event id, rule and step, as in
	// "01JD….doi-request.1". It is stable across redeliveries, and every
	// effector passes it on as its idempotency key (Message-ID,
	// Nats-Msg-Id, Idempotency-Key).
	Key string `json:"key"`
	// Kind names the effector that performs it ("email", "emit", …).
	Kind string `json:"kind"`
	// Event is the id of the event whose rules planned it.
	Event string `json:"event"`
	// Data is the rendered effect in the kind's own wire form.
	Data json.RawMessage `json:"data"`
}

// Effector performs rendered effects of one kind. Perform reports whether
// a failure is worth retrying: retry is true for transient failures (the
// server is down, a timeout, 5xx) and false when the same effect would fail
// again (an invalid address, a rejected request, undecodable data).
// Retrying, deduplication and dead-lettering are stages of their own, not
// part of an effector. Perform must honour ctx's cancellation.
type Effector interface {
	Perform(ctx context.Context, e *Effect) (retry bool, err error)
}

// EffectorFunc adapts a function to an Effector.
type EffectorFunc func(ctx context.Context, e *Effect) (retry bool, err error)

// Perform calls f.
func (f EffectorFunc) Perform(ctx context.Context, e *Effect) (bool, error) { return f(ctx, e) }

// Registry maps effect kinds to the effectors that perform them. It is
// built once, in the one wiring place, and not changed afterwards.
type Registry map[string]Effector

// Perform performs e with the effector registered for its kind. An effect
// of an unknown kind fails permanently.
func (r Registry) Perform(ctx context.Context, e *Effect) (retry bool, err error) {
	eff, ok := r[e.Kind]
	if !ok {
		return false, fmt.Errorf("perform %s: no effector for kind %q (have %s)", e.Key, e.Kind, strings.Join(r.Kinds(), ", "))
	}
	return eff.Perform(ctx, e)
}

// Kinds lists the registered kinds, sorted.
func (r Registry) Kinds() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
