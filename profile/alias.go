package profile

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrAliasLoop means tombstones lead round in a loop, or through more than
// MaxAliasHops aliases, instead of to a customer's record.
var ErrAliasLoop = errors.New("profile aliases loop")

// MaxAliasHops is how many tombstones Resolve follows. A merge always
// points a tombstone at a customer with a record of their own, so chains
// stay one or two long; more means something is wrong.
const MaxAliasHops = 4

// Alias is one tombstone Resolve followed.
type Alias struct {
	UUID   string
	Record *Record // MergedInto names the next customer
	Rev    uint64
}

// Resolved is where a customer's events apply: the customer's own record,
// or the one their tombstones lead to.
type Resolved struct {
	// UUID is the customer whose record this is: the uuid resolved, or the
	// customer it was merged into.
	UUID   string
	Record *Record
	Rev    uint64
	// Via lists the tombstones followed to get there, the one of the uuid
	// resolved first; none when the uuid has a record of its own.
	Via []Alias
}

// Resolve returns the record the events of the customer uuid apply to:
// uuid's own record or, when that is a tombstone (Record.MergedInto), the
// record the tombstones lead to, following at most MaxAliasHops. A
// tombstone whose merge is still under way (Record.MergePending) is
// followed like any other.
//
// When the customer at the end has no record, Resolve returns
// ErrNotFound; when the tombstones loop or run on too long, ErrAliasLoop.
// With either, the Resolved is returned too, without a Record: its UUID
// names the customer without a record, the first one met twice, or the
// tombstone not followed; Via lists the tombstones followed. Other errors
// are the store's, with a nil Resolved.
func Resolve(ctx context.Context, s Store, uuid string) (*Resolved, error) {
	res := &Resolved{UUID: uuid}
	for {
		rec, rev, err := s.Get(ctx, res.UUID)
		if errors.Is(err, ErrNotFound) {
			return res, err
		}
		if err != nil {
			return nil, err
		}
		if !rec.IsAlias() {
			res.Record, res.Rev = rec, rev
			return res, nil
		}
		if len(res.Via) == MaxAliasHops {
			return res, fmt.Errorf("resolve %q: more than %d aliases: %w", uuid, MaxAliasHops, ErrAliasLoop)
		}
		res.Via = append(res.Via, Alias{UUID: res.UUID, Record: rec, Rev: rev})
		next := rec.MergedInto
		if slices.ContainsFunc(res.Via, func(a Alias) bool { return a.UUID == next }) {
			res.UUID = next
			return res, fmt.Errorf("resolve %q: %q is merged into itself through %d aliases: %w", uuid, next, len(res.Via), ErrAliasLoop)
		}
		res.UUID = next
	}
}
