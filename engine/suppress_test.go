package engine

import (
	"testing"

	"github.com/herald-events/herald/profile"
)

// Marketing email goes only to customers whose agreement is exactly
// "enabled": every other value, confirmation included, suppresses it.
func TestMarketingSuppressedUnlessEnabled(t *testing.T) {
	e := New(mustRules(t, `
  - name: news
    on: campaign.send
    do:
      - email:
          template: news
          marketing: true
          links: {unsubscribe: newsletter.unsubscribe}
`))
	for _, agreement := range []any{nil, "", "confirmation", "disabled", "Enabled", "enabled ", true, "enabled"} {
		p := &profile.Profile{UUID: "c-1", Email: "ann@example.com"}
		if agreement != nil {
			p.Attributes = map[string]any{AgreementAttribute: agreement}
		}
		m := emails(e.Evaluate(newEvent("campaign.send", nil), p, t0))
		if len(m) != 1 {
			t.Fatalf("agreement %#v: %d emails planned", agreement, len(m))
		}
		sent := m[0].Suppress == ""
		if want := agreement == "enabled"; sent != want {
			t.Errorf("agreement %#v: sent %v, want %v (reason %q)", agreement, sent, want, m[0].Suppress)
		}
	}
}
