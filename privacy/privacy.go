// Package privacy answers a customer's requests about their data: export
// everything Herald holds about them as one document (Export), erase it
// (Forget), and show the history of their consent (Consent). It finds
// what Herald holds about a customer where Herald keeps it: the record in
// the profile bucket (with the customers merged into it), the email
// index, the customer's events in HERALD_EVENTS (by subject), timers,
// dead letters and the .eml outbox.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where a customer's data is.
type Config struct {
	JS jetstream.JetStream
	// Profiles is the profile bucket's store (HERALD_PROFILES).
	Profiles *profile.KV
	// Hasher hashes addresses for the erasure's tombstone and the
	// suppression list.
	Hasher profile.Hasher
	// Outbox is the folder of .eml files herald serve writes emails to;
	// "" when it writes none (SMTP).
	Outbox string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// maxRounds bounds how often Forget reads a customer's records again
// after an engine wrote one of them meanwhile.
const maxRounds = 16

// customer is what is found of one customer: the uuids that are one
// person (the one asked about, the tombstones of customers merged into
// them, the customer at the end of the aliases) and their records.
type customer struct {
	asked     string
	canonical string // "" when nothing is stored for the uuid asked
	uuids     []string
	records   map[string]*profile.Record
	revs      map[string]uint64
	emails    []string // normalised, each once
	applied   []string // ids of events applied, from the records as found
}

func (c *customer) addUUID(u string) bool {
	if u == "" || slices.Contains(c.uuids, u) {
		return false
	}
	c.uuids = append(c.uuids, u)
	return true
}

func (c *customer) addEmail(e string) {
	e = profile.NormalizeEmail(e)
	if e == "" || !strings.Contains(e, "@") || slices.Contains(c.emails, e) {
		return
	}
	c.emails = append(c.emails, e)
}

// tokens returns the subject tokens of the customer's uuids.
func (c *customer) tokens() []string {
	out := make([]string, len(c.uuids))
	for i, u := range c.uuids {
		out[i] = natsbus.CustomerToken(u)
	}
	return out
}

// find gathers the customer uuid is: follows its aliases to the record
// they lead to, and from each record the customers merged into it.
func (c *Config) find(ctx context.Context, uuid string) (*customer, error) {
	cu := &customer{asked: uuid, records: map[string]*profile.Record{}, revs: map[string]uint64{}}
	cu.addUUID(uuid)
	for i := 0; i < len(cu.uuids); i++ {
		u := cu.uuids[i]
		rec, rev, err := c.Profiles.Get(ctx, u)
		if errors.Is(err, profile.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		cu.records[u], cu.revs[u] = rec, rev
		if rec.IsErased() {
			for _, w := range rec.Erased.With {
				cu.addUUID(w)
			}
		}
		if rec.IsAlias() {
			cu.addUUID(rec.MergedInto)
		} else if cu.canonical == "" && !rec.IsErased() {
			cu.canonical = u
		}
		cu.collect(rec)
		if len(cu.uuids) > 64 {
			return nil, fmt.Errorf("customer %q: more than 64 uuids merged into one another", uuid)
		}
	}
	return cu, nil
}

// collect takes from rec the customers merged into it and the addresses
// it names.
func (cu *customer) collect(rec *profile.Record) {
	cu.applied = append(cu.applied, rec.Applied...)
	for _, m := range rec.Merges {
		cu.addUUID(m.From)
		for _, v := range []any{m.Unmerged[profile.FieldEmail], m.Replaced[profile.FieldEmail]} {
			if s, ok := v.(string); ok {
				cu.addEmail(s)
			}
		}
	}
	if rec.Profile != nil {
		cu.addEmail(rec.Profile.Email)
	}
	// An old address the applier has yet to release from the index.
	for _, raw := range rec.Outbox {
		var e struct {
			Kind string `json:"kind"`
			Data struct {
				Email string `json:"email"`
				To    string `json:"to"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &e) == nil {
			cu.addEmail(e.Data.Email)
			cu.addEmail(e.Data.To)
		}
	}
}
