package privacy

import (
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/profile"
)

// Kinds of consent entries.
const (
	ConsentRequested = "requested" // a form asked for the newsletter
	ConsentConfirmed = "confirmed" // the confirmation link was followed
	ConsentWithdrawn = "withdrawn" // the box unticked, or an unsubscribe link
	ConsentExpired   = "expired"   // a request left unconfirmed: its expiry timer, or its link's life, ran out
)

// LinkExpiry is how long a confirmation link lasts unless its rule says
// otherwise (rules.DefaultLinkExpiry): a request neither confirmed nor
// withdrawn nor asked again within it has expired.
const LinkExpiry = 7 * 24 * time.Hour

// ConsentEntry is one step of a customer's consent, read from the event
// that made it.
type ConsentEntry struct {
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Event is the id of the event, Action its action, UUID the customer
	// uuid it was sent for, Site the site it came from.
	Event  string `json:"event,omitempty"`
	Action string `json:"action,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	Site   string `json:"site,omitempty"`
	// Value is the form's newsletter_agreement_enabled value.
	Value string `json:"value,omitempty"`
	// IP, UserAgent and Link are the evidence a link page records; Source
	// is the event of the request a confirmation link was sent for.
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Link      string `json:"link,omitempty"`
	Source    string `json:"source_event,omitempty"`
}

// ConsentRecord is the customer's consent: the agreement as the profile
// holds it now, the evidence kept with it, and its history.
type ConsentRecord struct {
	// Agreement is the profile's newsletterAgreement: enabled,
	// confirmation, disabled, or "" for none.
	Agreement string `json:"agreement"`
	// Evidence holds the profile's newsletter attributes (when requested,
	// confirmed, from which address and browser, …).
	Evidence map[string]any `json:"evidence,omitempty"`
	// Merged holds the newsletter attributes of customers merged into
	// this one that the merge kept aside, by merged uuid.
	Merged map[string]map[string]any `json:"merged,omitempty"`
	// History is read from the customer's events still in the stream,
	// oldest first.
	History []ConsentEntry `json:"history"`
	// Since is the time of the oldest event in the stream: history before
	// it is gone with the events (see retention), and only Evidence
	// tells of it.
	Since *time.Time `json:"events_since,omitempty"`
}

// consentOf builds the consent record of a customer from their record and
// events, at now.
func consentOf(rec *profile.Record, events []*StoredEvent, now time.Time) *ConsentRecord {
	c := &ConsentRecord{History: []ConsentEntry{}}
	if rec != nil && rec.Profile != nil {
		for k, v := range rec.Profile.Attributes {
			if profile.IsNewsletterAttribute(k) {
				if c.Evidence == nil {
					c.Evidence = map[string]any{}
				}
				c.Evidence[k] = v
			}
		}
		c.Agreement, _ = rec.Profile.Attributes["newsletterAgreement"].(string)
	}
	if rec != nil {
		for _, m := range rec.Merges {
			for _, from := range []map[string]any{m.Unmerged, m.Replaced} {
				for k, v := range from {
					if profile.IsNewsletterAttribute(k) {
						if c.Merged == nil {
							c.Merged = map[string]map[string]any{}
						}
						if c.Merged[m.From] == nil {
							c.Merged[m.From] = map[string]any{}
						}
						c.Merged[m.From][k] = v
					}
				}
			}
		}
	}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b *StoredEvent) int { return a.Time.Compare(b.Time) })
	if len(sorted) > 0 {
		first := slices.MinFunc(events, func(a, b *StoredEvent) int { return a.Stored.Compare(b.Stored) }).Stored
		c.Since = &first
	}
	seen := map[string]bool{}
	for _, e := range sorted {
		if e.ID != "" && seen[e.ID] {
			continue // the plain copy of a routed event
		}
		seen[e.ID] = true
		entry, ok := consentEntry(e)
		if !ok {
			continue
		}
		if entry.Kind == ConsentExpired || entry.Value == "reminder" {
			// An expiry or reminder timer counts only while a request is
			// open: the rules ignore one that fires after an answer.
			if n := len(c.History); n == 0 || c.History[n-1].Kind != ConsentRequested {
				continue
			}
		}
		c.History = append(c.History, entry)
	}
	c.History = withExpiries(c.History, now)
	return c
}

// consentEntry reads the consent step an event makes, if any.
func consentEntry(e *StoredEvent) (ConsentEntry, bool) {
	str := func(k string) string { s, _ := e.Params[k].(string); return s }
	entry := ConsentEntry{At: e.Time, Event: e.ID, Action: e.Action, UUID: e.UUID, Site: e.Site}
	switch e.Action {
	case "form.submit":
		v := str("newsletter_agreement_enabled")
		switch {
		case v == "enabled" || v == "confirmation":
			entry.Kind, entry.Value = ConsentRequested, v
		case v == "disabled":
			entry.Kind, entry.Value = ConsentWithdrawn, v
		case v == "" && slices.Contains(strings.Split(str("form_type"), ","), "newsletter"):
			entry.Kind = ConsentRequested
		default:
			return entry, false
		}
	case "newsletter.remind":
		// A reminder sends a new confirmation link for the open request.
		entry.Kind, entry.Value = ConsentRequested, "reminder"
	case "newsletter.expire":
		entry.Kind = ConsentExpired
	case "newsletter.confirm":
		entry.Kind = ConsentConfirmed
	case "newsletter.unsubscribe":
		entry.Kind = ConsentWithdrawn
	default:
		return entry, false
	}
	entry.IP, entry.UserAgent, entry.Link, entry.Source = str("ip"), str("user_agent"), str("link"), str("source_event")
	if at, err := time.Parse(time.RFC3339Nano, str("consented_at")); err == nil {
		entry.At = at.UTC()
	}
	return entry, true
}

// withExpiries adds an expired entry after each request that nothing
// answered (a confirmation, a withdrawal, a newer request) within
// LinkExpiry, if that time has passed.
func withExpiries(h []ConsentEntry, now time.Time) []ConsentEntry {
	var out []ConsentEntry
	for i, e := range h {
		out = append(out, e)
		if e.Kind != ConsentRequested {
			continue
		}
		end := e.At.Add(LinkExpiry)
		answered := false
		for _, later := range h[i+1:] {
			if later.At.Before(end) || later.At.Equal(end) {
				answered = true
				break
			}
		}
		if !answered && !now.Before(end) {
			out = append(out, ConsentEntry{Kind: ConsentExpired, At: end, Source: e.Event, UUID: e.UUID})
		}
	}
	slices.SortStableFunc(out, func(a, b ConsentEntry) int { return a.At.Compare(b.At) })
	return out
}
