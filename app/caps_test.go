package app_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
)

// A capped rule fires once in its window, across redeliveries and a
// restart of Herald: the fires are counted in the customer's record.
func TestServeLimitHoldsAcrossRedeliveriesAndRestarts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`rules:
  - name: daily-offer
    on: page.visit
    limit: {count: 1, per: 24h}
    do:
      - set:
          offers: ${ (profile.attributes.offers ?? 0) + 1 }
  - name: count-visits
    on: page.visit
    do:
      - set:
          visits: ${ (profile.attributes.visits ?? 0) + 1 }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, dir, smtp)
	first := startHeraldWith(t, cfg, smtp)
	visit := `{"id":"01KC0000000000000000000001","action":"page.visit","uuid":"vic-1"}`
	// The same event twice (a redelivery), then another visit.
	first.publish("herald.events.web", visit)
	first.publish("herald.events.web", visit)
	first.publish("herald.events.web", `{"id":"01KC0000000000000000000002","action":"page.visit","uuid":"vic-1"}`)
	eventually(t, "two visits", func() bool { return first.attribute("vic-1", "visits") == 2.0 })
	if err := first.srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg.NATS.Listen = "127.0.0.1:-1"
	second := startHeraldWith(t, cfg, smtp)
	second.publish("herald.events.web", `{"id":"01KC0000000000000000000003","action":"page.visit","uuid":"vic-1"}`)
	eventually(t, "the third visit", func() bool { return second.attribute("vic-1", "visits") == 3.0 })
	time.Sleep(200 * time.Millisecond)
	if got := second.attribute("vic-1", "offers"); got != 1.0 {
		t.Fatalf("offers %v after three visits within a day, want 1", got)
	}
}
