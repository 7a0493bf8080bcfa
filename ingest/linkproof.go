package ingest

import (
	"context"
	"fmt"

	"github.com/herald-events/herald/event"
)

// LinkProofParam is the event parameter that carries the proof that an
// event was published by a link page (links.ProofParam; ingest does not
// import links).
const LinkProofParam = "link_proof"

// LinkProof accepts a link-only action (isLinkAction: newsletter.confirm,
// newsletter.unsubscribe and every action a rule's links emit) only with
// a proof that verify accepts, taken from the event's LinkProofParam
// parameter. An event without one, or with one verify refuses, fails with
// a permanent error naming the action and the reason, so the Consumer
// keeps it as a dead letter and never applies it: without the proof,
// anyone who can publish to NATS could give consent in a customer's name.
// Other actions pass untouched, with or without the parameter.
//
// verify is typically the link signer's VerifyProof; isLinkAction is
// asked for every event, so it may follow rule reloads.
func LinkProof(isLinkAction func(action string) bool, verify func(ev *event.Event, proof string) error) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, ev *event.Event) error {
			if !isLinkAction(ev.Action) {
				return next(ctx, ev)
			}
			proof, _ := ev.Params[LinkProofParam].(string)
			var err error
			if proof == "" {
				err = fmt.Errorf("no %s param: link-only actions are published by the link pages alone", LinkProofParam)
			} else {
				err = verify(ev, proof)
			}
			if err != nil {
				return Permanent(fmt.Errorf("link-only action %s without a valid link proof: %w", ev.Action, err))
			}
			return next(ctx, ev)
		}
	}
}
