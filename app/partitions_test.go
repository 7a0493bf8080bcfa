package app_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/natsbus"
)

// With nats.partitions, serve consumes the partitioned stream: a form an
// app publishes on a plain subject is routed to its customer's partition,
// the link page's event goes there directly, and the double opt-in works
// as with one consumer.
func TestServePartitioned(t *testing.T) {
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, "../examples/newsletter-double-opt-in", smtp)
	cfg.NATS.Partitions = 4
	h := startHeraldWith(t, cfg, smtp)

	h.publish("herald.events.web", annaForm)
	req := h.emails(1)[0]
	if req.to != "anna@example.com" || req.subject != "Please confirm your newsletter subscription" {
		t.Fatalf("request email to %s, subject %q", req.to, req.subject)
	}
	if resp := post(t, link(t, req.text), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if confirmed := h.emails(2)[1]; confirmed.subject != "Your newsletter subscription is confirmed" {
		t.Fatalf("second email %q", confirmed.subject)
	}
	eventually(t, "the agreement", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "enabled" })

	s, err := h.js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	token := natsbus.CustomerToken("anna-7f3c")
	p := natsbus.PartitionOf(token, 4)
	for _, subject := range []string{"herald.part." + strconv.Itoa(p) + ".web." + token, "herald.part." + strconv.Itoa(p) + ".link." + token} {
		if _, err := s.GetLastMsgForSubject(t.Context(), subject); err != nil {
			t.Errorf("nothing stored on %s: %v", subject, err)
		}
	}
}
