package app

import (
	"context"
	"errors"

	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/profile"
)

// canonicalCustomer returns the ingest.CanonicalFunc of the profiles in
// store: the customer a uuid's aliases lead to. The answer is final once
// the customer was merged into another, or is known: a known customer is
// never merged into another.
func canonicalCustomer(store profile.Store) ingest.CanonicalFunc {
	return func(ctx context.Context, uuid string) (string, bool, error) {
		res, err := profile.Resolve(ctx, store, uuid)
		switch {
		case errors.Is(err, profile.ErrNotFound), errors.Is(err, profile.ErrAliasLoop):
			// No record yet, or a loop of merges the applier breaks when it
			// meets it: the events stay where they are.
			return uuid, false, nil
		case err != nil:
			return "", false, err
		}
		known := res.Record.Profile != nil && res.Record.Profile.Known()
		return res.UUID, res.UUID != uuid || known, nil
	}
}
