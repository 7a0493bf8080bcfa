package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Anonymous customers becoming known.
//
// An email address makes a customer known. The applier keeps the email
// index (profile.EmailIndex) in step with the profiles, and merges an
// anonymous customer into the known customer who owns the address they
// give:
//
//   - A form submission whose email param is a valid address, from a
//     customer whose profile (aliases followed) has no email, looks the
//     address up before the rules run. If another customer owns it, the
//     anonymous customer is merged into them and the event is evaluated
//     against the known customer's merged record.
//   - Whenever a plan changes a profile's email to a valid address, the
//     address is claimed for the customer before the plan is stored
//     (create-if-absent, so of two customers claiming one address at once
//     exactly one wins). A customer who was anonymous before the event and
//     loses the claim is merged into the winner, and the event is
//     evaluated again there. A known customer who loses it keeps the new
//     address, and so does the owner: two known customers are never
//     merged; a warning is logged. Once the new address is stored, the
//     old one is released if the customer owned it, by an entry of the
//     outbox (releaseKind), so that a crash cannot skip it. An address
//     claimed for a plan that was then not stored is released at once.
//
// A merge writes three records, each with compare-and-set, and is finished
// by whoever meets it half done, so a crash or a redelivery between any
// two writes loses nothing and repeats nothing:
//
//  1. The anonymous record becomes a tombstone (MergedInto, MergedBy) that
//     still holds its profile, applied ids and outbox, frozen: from now on
//     its customer's events resolve to the known customer, so nothing
//     changes the frozen copy.
//  2. The known customer's record takes in the merged profile
//     (profile.Profile.Merge), a history entry (Record.Merges), the
//     applied ids (so the anonymous customer's redelivered events are
//     recognised) and the outbox (so effects not yet performed are
//     performed by the known customer's record, with their own keys);
//     skipped when the history lists the merge already.
//  3. The tombstone drops its copy.
//
// Loading a customer (load) follows aliases and finishes any merge under
// way it passes, so no event is ever evaluated before a merge it depends
// on is complete.

// identifyingEmail returns the address a form submission identifies its
// customer with: its email param, when that is a valid address.
func identifyingEmail(ev *event.Event) string {
	if ev.Action != engine.FormAction {
		return ""
	}
	s, _ := ev.Params[profile.FieldEmail].(string)
	if s = strings.TrimSpace(s); !rules.IsEmail(s) {
		return ""
	}
	return s
}

// anonymous reports whether a customer with profile p has no email.
func anonymous(p *profile.Profile) bool { return p == nil || !p.Known() }

// emailOf returns the profile's email, "" for no profile.
func emailOf(p *profile.Profile) string {
	if p == nil {
		return ""
	}
	return p.Email
}

// claimable reports whether the address in a profile's email field is
// one the index keeps: two customers who typed the same nonsense into a
// form are not one customer.
func claimable(email string) bool { return rules.IsEmail(strings.TrimSpace(email)) }

// resolve follows the aliases of uuid (profile.Resolve). A customer
// without a record gets an empty one at revision 0; a loop of merges made
// by racing engines is broken and resolved again.
func (r *Runner) resolve(ctx context.Context, uuid string) (*profile.Resolved, error) {
	for range maxConflicts {
		res, err := profile.Resolve(ctx, r.cfg.Store, uuid)
		switch {
		case errors.Is(err, profile.ErrNotFound):
			res.Record, res.Rev = &profile.Record{}, 0
			return res, nil
		case errors.Is(err, profile.ErrAliasLoop):
			if err := r.breakLoop(ctx, res, err); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("load profile %s: %w", uuid, err)
		default:
			return res, nil
		}
	}
	return nil, &RetryError{Err: fmt.Errorf("load profile %s: aliases still changing after %d tries", uuid, maxConflicts)}
}

// load returns the record the events of uuid apply to, finishing first
// any merge under way on the way there.
func (r *Runner) load(ctx context.Context, uuid string) (*profile.Resolved, error) {
	for range maxConflicts {
		res, err := r.resolve(ctx, uuid)
		if err != nil {
			return nil, err
		}
		pending := false
		for _, a := range res.Via {
			if a.Record.MergePending() {
				if err := r.finish(ctx, a.UUID, a.Record, a.Rev); err != nil {
					return nil, err
				}
				pending = true
			}
		}
		if !pending {
			return res, nil
		}
	}
	return nil, &RetryError{Err: fmt.Errorf("load profile %s: merges still under way after %d tries", uuid, maxConflicts)}
}

// canonical returns the customer whose record the events of uuid apply
// to, and whether that customer was erased.
func (r *Runner) canonical(ctx context.Context, uuid string) (string, bool, error) {
	res, err := r.resolve(ctx, uuid)
	if err != nil {
		return "", false, err
	}
	return res.UUID, res.Record.IsErased(), nil
}

// owner returns the customer who owns email, aliases followed, or "". An
// entry naming an erased customer (left by an erasure that was stopped
// half way) is removed: the address is nobody's.
func (r *Runner) owner(ctx context.Context, email string) (string, error) {
	o, err := r.cfg.Store.Owner(ctx, email)
	if errors.Is(err, profile.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up email owner: %w", err)
	}
	c, erased, err := r.canonical(ctx, o)
	if err != nil || !erased {
		return c, err
	}
	if err := r.cfg.Store.ReleaseEmail(ctx, email, o); err != nil {
		return "", fmt.Errorf("release email of erased customer %s: %w", o, err)
	}
	return "", nil
}

// claim claims email for uuid and returns its owner, aliases followed:
// uuid when the claim holds. An owner that was erased loses the address.
func (r *Runner) claim(ctx context.Context, email, uuid string) (string, error) {
	for range maxConflicts {
		o, err := r.cfg.Store.ClaimEmail(ctx, email, uuid)
		if err != nil {
			return "", fmt.Errorf("claim email of %s: %w", uuid, err)
		}
		if o == uuid {
			return o, nil
		}
		c, erased, err := r.canonical(ctx, o)
		if err != nil || !erased {
			return c, err
		}
		if err := r.cfg.Store.ReleaseEmail(ctx, email, o); err != nil {
			return "", fmt.Errorf("release email of erased customer %s: %w", o, err)
		}
	}
	return "", &RetryError{Err: fmt.Errorf("claim email of %s: still conflicting after %d tries", uuid, maxConflicts)}
}

// release releases email if uuid owns it. A failure is logged: the
// address then stays claimed for a customer who no longer shows it, which
// only makes later customers giving it merge into that one.
func (r *Runner) release(ctx context.Context, email, uuid string) {
	if err := r.cfg.Store.ReleaseEmail(ctx, email, uuid); err != nil {
		r.cfg.Logger.Warn("email not released", "uuid", uuid, "err", err)
	}
}

// releaseKind is the kind of the applier's own outbox entry that releases
// a customer's old address once their new one is stored. Its "@" keeps it
// apart from every effector's kind; the applier performs it itself.
const releaseKind = "@release-email"

// release is the data of a releaseKind entry.
type releaseData struct {
	Email string `json:"email"`
	UUID  string `json:"uuid"`
}

// releaseEntry returns the outbox entry releasing email for uuid, keyed
// by the event ev that changed the address.
func releaseEntry(ev *event.Event, uuid, email string) (*actions.Effect, error) {
	data, err := json.Marshal(releaseData{Email: email, UUID: uuid})
	if err != nil {
		return nil, fmt.Errorf("encode email release: %w", err)
	}
	return &actions.Effect{Key: engine.Key(ev, releaseKind, 0), Kind: releaseKind, Event: ev.ID, Data: data}, nil
}

// performRelease performs a releaseKind entry, as an effector would.
func (r *Runner) performRelease(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	var d releaseData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return false, fmt.Errorf("perform %s: %w", e.Key, err)
	}
	if err := r.cfg.Store.ReleaseEmail(ctx, d.Email, d.UUID); err != nil {
		return true, fmt.Errorf("perform %s: %w", e.Key, err)
	}
	return false, nil
}

// claimed is an address claimed for a customer while handling one event.
type claimed struct{ email, uuid string }

// releaseClaims releases the addresses claimed while handling an event,
// except the one the customer uuid's stored profile p shows.
func (r *Runner) releaseClaims(ctx context.Context, claims []claimed, uuid string, p *profile.Profile) {
	for _, c := range claims {
		if c.uuid != uuid || !profile.SameEmail(c.email, emailOf(p)) {
			r.release(ctx, c.email, c.uuid)
		}
	}
}

// merge merges the customer from, whose record rec was read at revision
// rev, into the customer into, because of the event with id eventID: it
// makes rec a tombstone and finishes the merge. ErrConflict means rec
// changed meanwhile; load it again.
func (r *Runner) merge(ctx context.Context, from string, rec *profile.Record, rev uint64, into, eventID string) error {
	if rec.Profile == nil {
		rec.Profile = profile.New(from, r.cfg.Now())
	}
	rec.MergedInto, rec.MergedBy = into, eventID
	trev, err := r.cfg.Store.Put(ctx, from, rec, rev)
	if errors.Is(err, profile.ErrConflict) {
		return err
	} else if err != nil {
		return storeError(fmt.Errorf("store profile %s: %w", from, err))
	}
	r.cfg.Logger.Info("customer merged", "from", from, "into", into, "event", eventID)
	r.cfg.Metrics.merged()
	return r.finish(ctx, from, rec, trev)
}

// finish completes the merge the tombstone t of the customer from (at
// revision trev) stands for: the record it points to takes in its
// profile, applied ids and outbox, unless its history shows it did, and
// then the tombstone drops them.
func (r *Runner) finish(ctx context.Context, from string, t *profile.Record, trev uint64) error {
	for attempt := 0; ; attempt++ {
		if attempt == maxConflicts {
			return &RetryError{Err: fmt.Errorf("merge %s into %s: still conflicting after %d tries", from, t.MergedInto, maxConflicts)}
		}
		res, err := r.resolve(ctx, t.MergedInto)
		if err != nil {
			return err
		}
		into := res.Record
		if into.IsErased() {
			// The customer merged into was erased: so is the one merged,
			// who is the same person.
			return r.eraseMerged(ctx, from, into.Erased, trev)
		}
		if into.HasMerged(from, t.MergedBy) {
			break
		}
		now := r.cfg.Now()
		p := into.Profile
		if p == nil {
			p = profile.New(res.UUID, now)
		} else {
			p = p.CloneForChange()
		}
		m := p.Merge(t.Profile, now)
		m.Event = t.MergedBy
		into.Profile = p
		into.Merges = append(into.Merges, m)
		// The merged customer's ids go before the known customer's, so
		// that when there are too many to keep, theirs are forgotten
		// first.
		applied := slices.DeleteFunc(slices.Clone(t.Applied), into.HasApplied)
		into.Applied = append(applied, into.Applied...)
		if n := len(into.Applied) - profile.MaxApplied; n > 0 {
			into.Applied = into.Applied[n:]
		}
		into.Outbox = append(into.Outbox, t.Outbox...)
		_, err = r.cfg.Store.Put(ctx, res.UUID, into, res.Rev)
		if errors.Is(err, profile.ErrConflict) {
			continue
		} else if err != nil {
			return storeError(fmt.Errorf("merge %s into %s: %w", from, res.UUID, err))
		}
		break
	}
	for range maxConflicts {
		_, err := r.cfg.Store.Put(ctx, from, &profile.Record{MergedInto: t.MergedInto, MergedBy: t.MergedBy}, trev)
		if !errors.Is(err, profile.ErrConflict) {
			if err != nil {
				return storeError(fmt.Errorf("store profile %s: %w", from, err))
			}
			return nil
		}
		// Someone else finished it, or is about to.
		if t, trev, err = r.cfg.Store.Get(ctx, from); errors.Is(err, profile.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("load profile %s: %w", from, err)
		}
		if !t.MergePending() {
			return nil
		}
	}
	return &RetryError{Err: fmt.Errorf("store profile %s: still conflicting after %d tries", from, maxConflicts)}
}

// breakLoop undoes one merge of a loop of tombstones. Such a loop is made
// only by two merges racing each other in opposite directions, before
// either was finished; both then still hold their profiles. Every engine
// picks the same one to undo, the pending merge of the smallest uuid, so
// they agree. A chain too long, or a loop without a merge to undo, is
// permanent.
func (r *Runner) breakLoop(ctx context.Context, res *profile.Resolved, cause error) error {
	var loop []profile.Alias
	if i := slices.IndexFunc(res.Via, func(a profile.Alias) bool { return a.UUID == res.UUID }); i >= 0 {
		loop = res.Via[i:]
	}
	var undo *profile.Alias
	for i := range loop {
		if a := &loop[i]; a.Record.MergePending() && (undo == nil || a.UUID < undo.UUID) {
			undo = a
		}
	}
	if undo == nil {
		return &PermanentError{Err: cause}
	}
	rec := undo.Record.Clone()
	rec.MergedInto, rec.MergedBy = "", ""
	_, err := r.cfg.Store.Put(ctx, undo.UUID, rec, undo.Rev)
	if errors.Is(err, profile.ErrConflict) {
		return nil // someone else changed it: look again
	} else if err != nil {
		return storeError(fmt.Errorf("store profile %s: %w", undo.UUID, err))
	}
	r.cfg.Logger.Warn("racing merges made a loop; one is undone", "uuid", undo.UUID, "was_merged_into", undo.Record.MergedInto)
	// The other merges of the loop now lead to undo's record: complete
	// them.
	for _, a := range loop {
		if a.UUID != undo.UUID && a.Record.MergePending() {
			if err := r.finish(ctx, a.UUID, a.Record, a.Rev); err != nil {
				return err
			}
		}
	}
	return nil
}

// eraseMerged erases the customer from, whose tombstone (at revision
// trev) still held a merge into a customer since erased.
func (r *Runner) eraseMerged(ctx context.Context, from string, e *profile.Erasure, trev uint64) error {
	for range maxConflicts {
		_, err := r.cfg.Store.Put(ctx, from, &profile.Record{Erased: &profile.Erasure{At: e.At}}, trev)
		if !errors.Is(err, profile.ErrConflict) {
			if err != nil {
				return storeError(fmt.Errorf("store profile %s: %w", from, err))
			}
			return nil
		}
		t, rev, err := r.cfg.Store.Get(ctx, from)
		if errors.Is(err, profile.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("load profile %s: %w", from, err)
		}
		if t.IsErased() || !t.MergePending() {
			return nil
		}
		trev = rev
	}
	return &RetryError{Err: fmt.Errorf("store profile %s: still conflicting after %d tries", from, maxConflicts)}
}
