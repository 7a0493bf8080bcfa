package privacy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go/jetstream"
)

// ForgetOptions tunes Forget.
type ForgetOptions struct {
	// Suppress puts the customer's addresses on the suppression list:
	// Herald sends them no email again, whoever gives them.
	Suppress bool
	// Reason is kept with the suppression.
	Reason string
}

// Report says what Forget removed.
type Report struct {
	UUID string `json:"uuid"`
	// UUIDs are the customer's uuids erased: UUID, the customer its
	// aliases lead to, and the customers merged into them.
	UUIDs []string `json:"uuids"`
	// AlreadyErased is set when every record was erased before.
	AlreadyErased bool `json:"already_erased"`
	// Records is how many records became erasure tombstones.
	Records int `json:"records"`
	// EmailIndex is how many email index entries naming them were removed.
	EmailIndex int `json:"email_index"`
	// Events is how many of their events HERALD_EVENTS no longer holds.
	Events int `json:"events"`
	// Timers is how many pending timers were removed.
	Timers int `json:"timers"`
	// DeadLetters is how many dead letters naming them were deleted.
	DeadLetters int `json:"dead_letters"`
	// Emails are the .eml files removed from the outbox.
	Emails []string `json:"outbox_files"`
	// Suppressed is how many addresses are on the suppression list now.
	Suppressed int `json:"suppressed"`
}

// Forget erases the customer uuid, aliases followed, with the customers
// merged into them:
//
//  1. each record becomes an erasure tombstone (profile.Erasure), written
//     with compare-and-set: from then on the applier drops the customer's
//     events, so one arriving during the erasure recreates nothing; a
//     record an engine wrote meanwhile is read again and erased;
//  2. the email index entries they own are removed, so a later form with
//     the address starts a new customer; with opts.Suppress the addresses
//     go on the suppression list first;
//  3. their events are purged from HERALD_EVENTS by subject, and those on
//     plain subjects deleted one by one;
//  4. their timers, dead letters and outbox .eml files are deleted.
//
// Forget is idempotent: run again, it removes what appeared since (an
// email being written at the moment of erasure) and reports the rest as
// already done.
func (c *Config) Forget(ctx context.Context, uuid string, opts ForgetOptions) (*Report, error) {
	if uuid == "" {
		return nil, errors.New("forget: empty customer uuid")
	}
	rep := &Report{UUID: uuid, Emails: []string{}}
	cu, err := c.erase(ctx, uuid, opts, rep)
	if err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	rep.UUIDs = cu.uuids
	stream, events, err := readEvents(ctx, c.JS, cu.uuids)
	if err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	n := c.naming(ctx, cu, events)
	// The addresses the events name are released too, if theirs.
	if err := c.releaseEmails(ctx, cu, opts, rep); err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	if stream != nil {
		if err := purgeEvents(ctx, stream, cu, events, rep); err != nil {
			return rep, fmt.Errorf("forget %s: %w", uuid, err)
		}
	}
	if err := c.purgeTimers(ctx, cu, rep); err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	dl, dead, err := readDead(ctx, c.JS, n)
	if err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	for _, d := range dead {
		if err := natsbus.RetryRead(ctx, func(ctx context.Context) error { return dl.Delete(ctx, d.Seq) }); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return rep, fmt.Errorf("forget %s: %w", uuid, err)
		}
		rep.DeadLetters++
	}
	emails, err := readOutbox(c.Outbox, n)
	if err != nil {
		return rep, fmt.Errorf("forget %s: %w", uuid, err)
	}
	for _, m := range emails {
		if err := os.Remove(m.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("forget %s: %w", uuid, err)
		}
		rep.Emails = append(rep.Emails, m.File)
	}
	return rep, nil
}

// erase makes every record of the customer an erasure tombstone, and
// returns the customer as found: their uuids and addresses.
func (c *Config) erase(ctx context.Context, uuid string, opts ForgetOptions, rep *Report) (*customer, error) {
	now := c.now().UTC()
	// What was found in earlier rounds stays found: an alias erased in
	// one round no longer leads to the customer it was merged into.
	var all *customer
	for range maxRounds {
		cu, err := c.find(ctx, uuid)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = cu
		} else {
			for _, u := range all.uuids {
				if cu.addUUID(u) {
					rec, rev, err := c.Profiles.Get(ctx, u)
					if err == nil {
						cu.records[u], cu.revs[u] = rec, rev
						cu.collect(rec)
					} else if !errors.Is(err, profile.ErrNotFound) {
						return nil, err
					}
				}
			}
			for _, e := range all.emails {
				cu.addEmail(e)
			}
			cu.applied = append(cu.applied, all.applied...)
			all = cu
		}
		conflict := false
		// The customer at the end of the aliases first: once it is
		// erased, no event applies anywhere.
		order := slices.Clone(all.uuids)
		if i := slices.Index(order, all.canonical); i > 0 {
			order = append([]string{all.canonical}, slices.Delete(order, i, i+1)...)
		}
		for _, u := range order {
			rec := all.records[u]
			if rec.IsErased() {
				continue
			}
			t := &profile.Erasure{At: now, Suppressed: opts.Suppress}
			for _, w := range all.uuids {
				if w != u {
					t.With = append(t.With, w)
				}
			}
			if u == all.canonical || u == uuid {
				for _, e := range all.emails {
					t.EmailHashes = append(t.EmailHashes, c.Hasher.Hash(e))
				}
			}
			// A uuid with no record gets a tombstone too: its events
			// are dropped from now on.
			_, err := c.Profiles.Put(ctx, u, &profile.Record{Erased: t}, all.revs[u])
			if errors.Is(err, profile.ErrConflict) {
				conflict = true
				break
			}
			if err != nil {
				return nil, err
			}
			rep.Records++
			all.records[u] = &profile.Record{Erased: t}
		}
		if !conflict {
			rep.AlreadyErased = rep.Records == 0
			return all, nil
		}
	}
	return nil, fmt.Errorf("records still changing after %d tries", maxRounds)
}

// releaseEmails removes the email index entries the customer owns, after
// putting the addresses on the suppression list when asked.
func (c *Config) releaseEmails(ctx context.Context, cu *customer, opts ForgetOptions, rep *Report) error {
	for _, e := range cu.emails {
		if opts.Suppress {
			if err := c.Profiles.Suppress(ctx, c.Hasher.Hash(e), profile.Suppression{At: c.now().UTC(), Reason: opts.Reason}); err != nil {
				return err
			}
			rep.Suppressed++
		}
		owner, err := c.Profiles.Owner(ctx, e)
		if errors.Is(err, profile.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !slices.Contains(cu.uuids, owner) {
			continue // another customer's
		}
		if err := c.Profiles.ReleaseEmail(ctx, e, owner); err != nil {
			return err
		}
		rep.EmailIndex++
	}
	return nil
}

// purgeEvents removes the customer's events from the events stream: a
// purge by subject for each of their subjects, and a delete for each of
// their events on a plain subject.
func purgeEvents(ctx context.Context, s jetstream.Stream, cu *customer, events []*StoredEvent, rep *Report) error {
	for _, f := range eventFilters(partitioned(s), cu.tokens()) {
		n, err := purgeSubject(ctx, s, f)
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		rep.Events += n
	}
	for _, e := range events {
		if natsbus.SplitStored(e.Subject).Customer != "" {
			continue // purged above
		}
		err := natsbus.RetryRead(ctx, func(ctx context.Context) error { return s.DeleteMsg(ctx, e.Seq) })
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete event %d: %w", e.Seq, err)
		}
		rep.Events++
	}
	return nil
}

// purgeTimers removes the customer's pending timers.
func (c *Config) purgeTimers(ctx context.Context, cu *customer, rep *Report) error {
	for _, t := range cu.tokens() {
		s, err := timerStream(ctx, c.JS, t)
		if err != nil {
			return err
		}
		if s == nil {
			continue
		}
		n, err := purgeSubject(ctx, s, natsbus.TimersPrefix+t+".>")
		if err != nil {
			return fmt.Errorf("timers: %w", err)
		}
		rep.Timers += n
	}
	return nil
}

// purgeSubject purges the messages of stream s on subject filter f and
// returns how many there were.
func purgeSubject(ctx context.Context, s jetstream.Stream, f string) (int, error) {
	var info *jetstream.StreamInfo
	err := natsbus.RetryRead(ctx, func(ctx context.Context) (err error) {
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(f))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count the messages on %s: %w", f, err)
	}
	held := 0
	for _, n := range info.State.Subjects {
		held += int(n)
	}
	if held == 0 {
		return 0, nil
	}
	if err := natsbus.RetryRead(ctx, func(ctx context.Context) error { return s.Purge(ctx, jetstream.WithPurgeSubject(f)) }); err != nil {
		return 0, fmt.Errorf("purge %s: %w", f, err)
	}
	return held, nil
}
