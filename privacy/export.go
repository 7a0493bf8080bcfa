package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-events/herald/profile"
)

// Document is everything Herald holds about one customer: what Export
// returns, and herald profile export prints as JSON.
type Document struct {
	// UUID is the uuid asked about; Customer the one whose record holds
	// the profile (the same, or the customer UUID was merged into).
	UUID     string `json:"uuid"`
	Customer string `json:"customer,omitempty"`
	// UUIDs are every uuid found to be this customer: UUID, the customer
	// at the end of its aliases, and the customers merged into them.
	UUIDs      []string  `json:"uuids"`
	ExportedAt time.Time `json:"exported_at"`
	// Profile holds the attributes, standard fields and tags.
	Profile *profile.Profile `json:"profile"`
	// Merges is the history of customers merged into this one, with the
	// values each merge kept aside.
	Merges []profile.Merge `json:"merges,omitempty"`
	// Fired holds, by rule, when the rules with a limit (limit:, once:)
	// fired for the customer.
	Fired map[string][]time.Time `json:"rules_fired,omitempty"`
	// Aliases are the uuids whose records point to another customer.
	Aliases []Alias `json:"aliases,omitempty"`
	// Erased is set when the customer was erased.
	Erased *profile.Erasure `json:"erased,omitempty"`
	// Pending lists effects of the customer's events not yet performed
	// (emails to send, events to emit), as the applier stored them.
	Pending []any `json:"pending_effects,omitempty"`
	// Suppressed lists the customer's addresses on the suppression list.
	Suppressed  []string       `json:"suppressed,omitempty"`
	Consent     *ConsentRecord `json:"consent"`
	Events      []*StoredEvent `json:"events"`
	Timers      []*Timer       `json:"timers"`
	DeadLetters []*DeadLetter  `json:"dead_letters"`
	Emails      []*Email       `json:"outbox_emails"`
}

// Alias is a uuid merged into another customer.
type Alias struct {
	UUID       string `json:"uuid"`
	MergedInto string `json:"merged_into"`
	MergedBy   string `json:"merged_by"`
}

// Export gathers everything Herald holds about the customer uuid, aliases
// followed, into one document. Nothing of other customers is in it: events
// are read by the customer's subjects (and from plain subjects, by the
// uuid in their body), dead letters and emails by the customer's uuids,
// addresses and event ids.
func (c *Config) Export(ctx context.Context, uuid string) (*Document, error) {
	if uuid == "" {
		return nil, fmt.Errorf("export: empty customer uuid")
	}
	cu, err := c.find(ctx, uuid)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uuid, err)
	}
	doc := &Document{UUID: uuid, Customer: cu.canonical, UUIDs: cu.uuids, ExportedAt: c.now().UTC(),
		Events: []*StoredEvent{}, Timers: []*Timer{}, DeadLetters: []*DeadLetter{}, Emails: []*Email{}}
	var main *profile.Record
	for _, u := range cu.uuids {
		rec := cu.records[u]
		if rec == nil {
			continue
		}
		switch {
		case rec.IsAlias():
			doc.Aliases = append(doc.Aliases, Alias{UUID: u, MergedInto: rec.MergedInto, MergedBy: rec.MergedBy})
		case rec.IsErased() && u == uuid:
			doc.Erased = rec.Erased
		case u == cu.canonical:
			main = rec
		}
	}
	if main != nil {
		doc.Profile, doc.Merges, doc.Fired = main.Profile, main.Merges, main.Fired
		for _, raw := range main.Outbox {
			doc.Pending = append(doc.Pending, rawJSON(raw))
		}
	}
	_, events, err := readEvents(ctx, c.JS, cu.uuids)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uuid, err)
	}
	doc.Events = append(doc.Events, events...)
	doc.Consent = consentOf(main, events, c.now())
	timers, err := readTimers(ctx, c.JS, cu.tokens())
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uuid, err)
	}
	doc.Timers = append(doc.Timers, timers...)
	n := c.naming(ctx, cu, events)
	_, dead, err := readDead(ctx, c.JS, n)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uuid, err)
	}
	for _, d := range dead {
		doc.DeadLetters = append(doc.DeadLetters, deadLetterOf(d))
	}
	emails, err := readOutbox(c.Outbox, n)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", uuid, err)
	}
	doc.Emails = append(doc.Emails, emails...)
	for _, e := range cu.emails {
		if _, err := c.Profiles.Suppressed(ctx, c.Hasher.Hash(e)); err == nil {
			doc.Suppressed = append(doc.Suppressed, e)
		} else if !errors.Is(err, profile.ErrNotFound) {
			return nil, fmt.Errorf("export %s: %w", uuid, err)
		}
	}
	return doc, nil
}

// Consent returns the consent record of the customer uuid, aliases
// followed.
func (c *Config) Consent(ctx context.Context, uuid string) (*ConsentRecord, *Document, error) {
	doc, err := c.Export(ctx, uuid)
	if err != nil {
		return nil, nil, err
	}
	return doc.Consent, doc, nil
}
