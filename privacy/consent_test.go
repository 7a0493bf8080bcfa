package privacy

import (
	"slices"
	"testing"
	"time"

	"github.com/herald-events/herald/profile"
)

// The consent history is read from the events: requests, confirmations
// with their evidence, withdrawals, and requests nothing answered within
// a link's life, which expired.
func TestConsentHistory(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := func(id, action string, at time.Time, params map[string]any) *StoredEvent {
		return &StoredEvent{ID: id, UUID: "kate", Action: action, Time: at, Stored: at, Params: params}
	}
	events := []*StoredEvent{
		ev("f1", "form.submit", t0, map[string]any{"newsletter_agreement_enabled": "enabled", "email": "kate@example.com"}),
		ev("c1", "newsletter.confirm", t0.Add(time.Hour), map[string]any{"ip": "203.0.113.7", "user_agent": "UA", "link": "confirm", "source_event": "f1", "consented_at": t0.Add(time.Hour).Format(time.RFC3339Nano)}),
		ev("v1", "page.visit", t0.Add(2*time.Hour), nil),
		ev("u1", "newsletter.unsubscribe", t0.Add(24*time.Hour), map[string]any{"ip": "203.0.113.8", "link": "unsubscribe"}),
		ev("f2", "form.submit", t0.Add(48*time.Hour), map[string]any{"form_type": "contact,newsletter"}),
		ev("f3", "form.submit", t0.Add(20*24*time.Hour), map[string]any{"newsletter_agreement_enabled": "disabled"}),
		ev("f4", "form.submit", t0.Add(21*24*time.Hour), map[string]any{"newsletter_agreement_enabled": "confirmation"}),
		ev("r4", "newsletter.remind", t0.Add(23*24*time.Hour), nil),
		ev("x4", "newsletter.expire", t0.Add(28*24*time.Hour), nil),
		ev("x5", "newsletter.expire", t0.Add(29*24*time.Hour), nil), // after the expiry: nothing open
	}
	rec := &profile.Record{Profile: &profile.Profile{UUID: "kate", Attributes: map[string]any{"newsletterAgreement": "confirmation", "newsletterConfirmedIp": "203.0.113.7", "city": "Kraków"}}}
	c := consentOf(rec, events, t0.Add(40*24*time.Hour))
	var got []string
	for _, e := range c.History {
		got = append(got, e.Kind+":"+e.Event)
	}
	want := []string{"requested:f1", "confirmed:c1", "withdrawn:u1", "requested:f2", "expired:", "withdrawn:f3", "requested:f4", "requested:r4", "expired:x4"}
	if !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
	if e := c.History[1]; e.IP != "203.0.113.7" || e.UserAgent != "UA" || e.Link != "confirm" || e.Source != "f1" {
		t.Errorf("confirmation evidence %+v", e)
	}
	if e := c.History[4]; !e.At.Equal(t0.Add(48*time.Hour+LinkExpiry)) || e.Source != "f2" {
		t.Errorf("expiry %+v", e)
	}
	if c.Agreement != "confirmation" || c.Evidence["newsletterConfirmedIp"] != "203.0.113.7" || c.Evidence["city"] != nil {
		t.Errorf("agreement %q, evidence %v", c.Agreement, c.Evidence)
	}
}

// An email caused by an event with one of the customer's ids is theirs,
// unless its address is another customer's: ids are the senders', and
// two may use the same.
func TestNamingCaused(t *testing.T) {
	n := &naming{emails: []string{"kate@example.com"}, events: map[string]bool{"e1": true},
		others: func(a string) bool { return a == "bob@example.com" }}
	for _, c := range []struct {
		id, addr string
		want     bool
	}{
		{"e1", "bob@example.com", false},
		{"e1", "new@example.com", true},
		{"e2", "Kate@Example.com", true},
		{"e2", "new@example.com", false},
	} {
		if got := n.caused(c.id, c.addr); got != c.want {
			t.Errorf("caused(%q, %q) = %v, want %v", c.id, c.addr, got, c.want)
		}
	}
}
