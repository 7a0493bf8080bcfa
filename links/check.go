package links

import (
	"context"
	"fmt"
)

// The profile attributes that record where a customer's newsletter
// request stands. The double opt-in rules keep them (see
// examples/newsletter-double-opt-in): the request rule sets
// RequestEventAttribute to the id of the request's event (the Event
// claim of the confirmation link it sends) and AgreementAttribute to
// "confirmation"; a withdrawal sets the agreement to "disabled" and
// removes the request; a newer request replaces it.
const (
	AgreementAttribute    = "newsletterAgreement"
	RequestEventAttribute = "newsletterRequestEvent"
)

// Request is where a customer's confirmation request stands.
type Request struct {
	// Event is the id of the event of the customer's current request, ""
	// when there is none.
	Event string
	// Agreement is the customer's newsletter agreement: "confirmation"
	// while the request waits, "enabled" once confirmed, "disabled" after
	// a withdrawal, "" when never asked.
	Agreement string
}

// ConfirmationCheck returns a Handler.Check for the confirmation links that
// emit action (such as newsletter.confirm): withdrawal wins, so such a link
// confirms only the request it was issued for. current tells where the
// customer's request stands (the zero Request for an unknown customer);
// its errors are failures to check.
//
// The link is void (the error wraps ErrVoid) unless its Event claim is the
// customer's current request and the agreement is "confirmation", or
// already "enabled" by that same request (pressing the button again
// changes nothing and is not refused). A later withdrawal (agreement
// "disabled", request removed) or a newer request (another event) voids
// it. Links that emit other actions pass.
func ConfirmationCheck(action string, current func(ctx context.Context, uuid string) (Request, error)) func(context.Context, Claims) error {
	return func(ctx context.Context, c Claims) error {
		if c.Action != action {
			return nil
		}
		if c.Event == "" {
			return fmt.Errorf("%w: the link names no request", ErrVoid)
		}
		r, err := current(ctx, c.UUID)
		if err != nil {
			return fmt.Errorf("check the request of %q: %w", c.UUID, err)
		}
		switch {
		case r.Event == "":
			return fmt.Errorf("%w: request %s was withdrawn (agreement %q, no request open)", ErrVoid, c.Event, r.Agreement)
		case r.Event != c.Event:
			return fmt.Errorf("%w: request %s was replaced by request %s", ErrVoid, c.Event, r.Event)
		case r.Agreement != "confirmation" && r.Agreement != "enabled":
			return fmt.Errorf("%w: request %s was withdrawn (agreement %q)", ErrVoid, c.Event, r.Agreement)
		}
		return nil
	}
}
