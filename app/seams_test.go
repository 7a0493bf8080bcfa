package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/actions/webhook"
	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go/jetstream"
)

// metric returns the value of the sample of name whose labels include
// every pair of want, summed, from the text /metrics serves.
func metric(t *testing.T, page, name string, want ...string) float64 {
	t.Helper()
	var sum float64
	found := false
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for _, w := range want {
			if !strings.Contains(series, w) {
				match = false
			}
		}
		if !match {
			continue
		}
		var v float64
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		t.Fatalf("no %s%v in /metrics:\n%s", name, want, page)
	}
	return sum
}

func TestServeMetricsAfterDoubleOptIn(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	base := "http://" + h.srv.HTTPAddr()
	h.publish("herald.events.web", annaForm)
	m := h.emails(1)[0]
	if code := post(t, link(t, m.text), "").StatusCode; code != http.StatusOK && code != http.StatusSeeOther {
		t.Fatalf("confirm answered %d", code)
	}
	h.emails(2)
	eventually(t, "the subscribed event acked", func() bool {
		_, page := get(t, base+"/metrics")
		return strings.Contains(page, "herald_events_acked_total 3")
	})
	_, page := get(t, base+"/metrics")
	if v := metric(t, page, "herald_events_received_total"); v < 3 {
		t.Errorf("herald_events_received_total = %v, want at least 3", v)
	}
	for _, rule := range []string{"doi-request", "doi-confirmed", "@form"} {
		if v := metric(t, page, "herald_rule_fires_total", `rule="`+rule+`"`); v != 1 {
			t.Errorf("herald_rule_fires_total{rule=%q} = %v, want 1", rule, v)
		}
	}
	if v := metric(t, page, "herald_effects_total", `kind="email"`, `outcome="done"`); v != 2 {
		t.Errorf("emails sent = %v, want 2", v)
	}
	if v := metric(t, page, "herald_effect_perform_seconds_count", `kind="email"`); v != 2 {
		t.Errorf("email send latency observations = %v, want 2", v)
	}
	if strings.Contains(page, "anna") {
		t.Error("/metrics names a customer")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+path); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s answered %d %q", path, code, body)
		}
	}
}

// A template that fails on every event ends as a dead letter with the
// reason; the server goes on with the next event.
func TestServeTemplateFailureIsADeadLetter(t *testing.T) {
	h := startHerald(t, "testdata/broken-template")
	h.publish("herald.events.web", `{"action":"order.placed","uuid":"c-1","params":{"email":"ann@example.com"}}`)
	h.publish("herald.events.web", `{"action":"account.created","uuid":"c-2","params":{"email":"bob@example.com"}}`)
	if m := h.emails(1)[0]; m.to != "bob@example.com" || m.subject != "Welcome" {
		t.Fatalf("email %+v", m)
	}
	eventually(t, "the receipt kept as a dead letter", func() bool { return h.streamMsgs(natsbus.DeadStream) == 1 })
	dead := h.lastDead(natsbus.DeadEffectSubject)
	if reason := dead.Header.Get(natsbus.HeaderReason); !strings.Contains(reason, "receipt.txt") || !strings.Contains(reason, "Apply") {
		t.Fatalf("reason %q does not say which template failed where", reason)
	}
	// The render failed before the profile was written: the rule's profile
	// change still stands.
	eventually(t, "the receipt rule's profile change", func() bool {
		p := h.profile("c-1")
		return p != nil && p.Email == "ann@example.com"
	})
	if code, _ := get(t, "http://"+h.srv.HTTPAddr()+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

// A permanent failure of the handler (a profile too large for the
// bucket) ends as a dead letter, is not redelivered, and does not hold
// back anyone.
func TestServePermanentFailureIsADeadLetter(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	ctx := context.Background()
	s, err := h.js.Stream(ctx, "KV_"+natsbus.ProfileBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxMsgSize = 8 << 10
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	huge := strings.ReplaceAll(annaForm, `"firstname":"Anna"`, `"firstname":"`+strings.Repeat("A", 4000)+`"`)
	h.publish("herald.events.web", huge)
	h.publish("herald.events.web", strings.ReplaceAll(strings.ReplaceAll(annaForm, "anna", "bob"), "Anna", "Bob"))
	if m := h.emails(1)[0]; m.to != "bob@example.com" {
		t.Fatalf("email to %s", m.to)
	}
	eventually(t, "the event kept as a dead letter", func() bool { return h.streamMsgs(natsbus.DeadStream) == 1 })
	dead := h.lastDead("herald.dead.>")
	if reason := dead.Header.Get(natsbus.HeaderReason); !strings.Contains(reason, "too large") {
		t.Fatalf("reason %q", reason)
	}
	eventually(t, "nothing left to deliver", func() bool {
		c, err := h.js.Consumer(ctx, natsbus.EventsStream, natsbus.ConsumerName)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	if h.profile("anna-7f3c") != nil {
		t.Fatal("a profile was stored for the event that failed")
	}
}

func (h *herald) lastDead(subject string) *jetstream.RawStreamMsg {
	h.t.Helper()
	stream, err := h.js.Stream(context.Background(), natsbus.DeadStream)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// hookServer is a webhook receiver that verifies signatures.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []hookCall
}

type hookCall struct {
	body       map[string]any
	key, event string
	verified   error
}

func newHookServer(t *testing.T, secret string) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := hookCall{key: r.Header.Get("Idempotency-Key"), event: r.Header.Get("Herald-Event-Id")}
		c.verified = webhook.Verify(webhook.Secret(secret), r.Header.Get("Herald-Signature"), raw, time.Now(), 5*time.Minute)
		_ = json.Unmarshal(raw, &c.body)
		h.mu.Lock()
		h.calls = append(h.calls, c)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// The webhook action end to end: a rule posts to an allowed receiver,
// signed, with the effect key as Idempotency-Key.
func TestServeWebhook(t *testing.T) {
	const secret = "whsec-test-0123456789"
	t.Setenv("HERALD_WEBHOOK_SECRET", secret)
	hooks := newHookServer(t, secret)
	dir := t.TempDir()
	rules := `rules:
  - name: subscribe
    on: crm.subscribe
    do:
      - set: {email: "${ params.email }", newsletterAgreement: enabled}
      - emit: newsletter.subscribed
  - name: crm-subscribed
    on: newsletter.subscribed
    do:
      - webhook:
          url: ` + hooks.URL + `/subscribers
          body:
            email: ${ profile.email }
            agreement: ${ profile.attributes.newsletterAgreement }
            source: herald
`
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, dir, smtp)
	cfg.Webhook.AllowHosts = []string{"127.0.0.1"}
	cfg.Webhook.AllowPrivate = true // the receiver is on loopback
	h := startHeraldWith(t, cfg, smtp)
	h.publish("herald.events.web", `{"id":"01KB0000000000000000000001","action":"crm.subscribe","uuid":"c-1","params":{"email":"ann@example.com"}}`)
	eventually(t, "the webhook call", func() bool { return len(hooks.received()) == 1 })
	c := hooks.received()[0]
	if c.verified != nil {
		t.Fatalf("signature does not verify: %v", c.verified)
	}
	if c.body["email"] != "ann@example.com" || c.body["agreement"] != "enabled" || c.body["source"] != "herald" {
		t.Fatalf("body %v", c.body)
	}
	if !strings.HasSuffix(c.key, ".crm-subscribed.0") || c.event == "" || !strings.HasPrefix(c.key, c.event+".") {
		t.Fatalf("Idempotency-Key %q, event %q", c.key, c.event)
	}
}

// A webhook to a host the configuration does not allow fails to load.
func TestServeRefusesWebhooksToHostsNotAllowed(t *testing.T) {
	dir := t.TempDir()
	rules := "rules:\n  - name: leak\n    on: form.submit\n    do:\n      - webhook: https://evil.example/collect\n"
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, smtptest.NewServer(t))
	cfg.Webhook.AllowHosts = []string{"hooks.example.com"}
	_, err := app.LoadRules(cfg)
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:5:18") || !strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("LoadRules = %v, want the position and the host refused", err)
	}
}
