package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The link key of the tests, so they can sign tokens of their own.
var testSecret = strings.Repeat("k", 32)

// herald is a running `herald serve` with a real SMTP server and a NATS
// client, for end-to-end tests.
type herald struct {
	t    *testing.T
	srv  *app.App
	smtp *smtptest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	kv   *profile.KV
}

func startHerald(t *testing.T, rulesDir string, smtpOpts ...smtptest.Option) *herald {
	t.Helper()
	smtp := smtptest.NewServer(t, smtpOpts...)
	return startHeraldWith(t, testConfig(t, rulesDir, smtp), smtp)
}

// testConfig is serve's configuration for a test: its own data directory,
// free ports, the given rules and SMTP server.
func testConfig(t *testing.T, rulesDir string, smtp *smtptest.Server) *config.Config {
	t.Helper()
	t.Setenv(config.EnvLinkKeys, "t1:"+base64.RawURLEncoding.EncodeToString([]byte(testSecret)))
	cfg := apptest.Config(t, rulesDir)
	cfg.Email.From = "Example Shop <news@shop.example>"
	cfg.Email.SMTP.URL = smtp.URL()
	return cfg
}

func startHeraldWith(t *testing.T, cfg *config.Config, smtp *smtptest.Server) *herald {
	t.Helper()
	s := apptest.Start(t, cfg)
	c := apptest.Connect(t, s)
	return &herald{t: t, srv: s, smtp: smtp, nc: c.Conn, js: c.JS, kv: c.Profiles}
}

func (h *herald) publish(subject, data string) {
	h.t.Helper()
	if err := h.nc.Publish(subject, []byte(data)); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *herald) profile(uuid string) *profile.Profile {
	rec, _, err := h.kv.Get(context.Background(), uuid)
	if err != nil {
		return nil
	}
	return rec.Profile
}

func (h *herald) attribute(uuid, name string) any {
	if p := h.profile(uuid); p != nil {
		return p.Attributes[name]
	}
	return nil
}

func (h *herald) streamMsgs(name string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// received is an email as the SMTP server got it.
type received struct {
	to, subject string
	header      mail.Header
	text, html  string
}

func (h *herald) emails(n int) []received {
	h.t.Helper()
	var out []received
	for _, m := range h.smtp.WaitFor(h.t, n, 15*time.Second) {
		msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			h.t.Fatal(err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		r := received{to: m.To[0], subject: subject, header: msg.Header}
		_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			h.t.Fatal(err)
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(part)
			if strings.HasPrefix(part.Header.Get("Content-Type"), "text/html") {
				r.html = string(body)
			} else {
				r.text = string(body)
			}
		}
		out = append(out, r)
	}
	return out
}

var linkRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/l/[A-Za-z0-9._-]+`)

func link(t *testing.T, text string) string {
	t.Helper()
	u := linkRE.FindString(text)
	if u == "" {
		t.Fatalf("no link in:\n%s", text)
	}
	return u
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func post(t *testing.T, u, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "HeraldTest/1.0")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const annaForm = `{"action":"form.submit","label":"Newsletter form","uuid":"anna-7f3c","site":"shop.example.com","params":{"form_type":"newsletter","email":"anna@example.com","firstname":"Anna","newsletter_agreement_enabled":"enabled"}}`

func TestServeDoubleOptIn(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")

	// The form: a confirmation request with a signed link.
	h.publish("herald.events.web", annaForm)
	req := h.emails(1)[0]
	if req.to != "anna@example.com" || req.subject != "Please confirm your newsletter subscription" {
		t.Fatalf("request email to %s, subject %q", req.to, req.subject)
	}
	if !strings.Contains(req.text, "Hello Anna,") || !strings.Contains(req.html, "Confirm my subscription") {
		t.Fatalf("request email text:\n%s", req.text)
	}
	confirm := link(t, req.text)
	if h.attribute("anna-7f3c", "newsletterAgreement") != "confirmation" {
		t.Fatalf("profile before the click: %+v", h.profile("anna-7f3c"))
	}

	// GET shows a page and changes nothing: mail scanners fetch links.
	events := h.streamMsgs(natsbus.EventsStream)
	code, page := get(t, confirm)
	if code != http.StatusOK || !strings.Contains(page, "<form") || !strings.Contains(page, `method="post"`) {
		t.Fatalf("GET %s: %d\n%s", confirm, code, page)
	}
	if n := h.streamMsgs(natsbus.EventsStream); n != events {
		t.Fatalf("GET published an event: %d events, was %d", n, events)
	}

	// The button: the agreement is enabled, with its evidence, and the
	// "subscription confirmed" email goes out.
	if resp := post(t, confirm, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	confirmed := h.emails(2)[1]
	if confirmed.to != "anna@example.com" || confirmed.subject != "Your newsletter subscription is confirmed" {
		t.Fatalf("confirmation email to %s, subject %q", confirmed.to, confirmed.subject)
	}
	eventually(t, "the agreement", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "enabled" })
	p := h.profile("anna-7f3c")
	if p.Attributes["newsletterConfirmedIp"] != "127.0.0.1" || p.Attributes["newsletterConfirmedUserAgent"] != "HeraldTest/1.0" ||
		p.Attributes["newsletterConfirmedAt"] == nil || !p.HasTag("subscriber") {
		t.Fatalf("profile after confirming: %+v", p)
	}
	// Pressing the button twice confirms once: the event id is the token's.
	if resp := post(t, confirm, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("second POST: %d", resp.StatusCode)
	}

	// The marketing email carries RFC 8058 one-click unsubscribe.
	unsub := strings.Trim(confirmed.header.Get("List-Unsubscribe"), "<>")
	if unsub != link(t, confirmed.text) || confirmed.header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe %q, List-Unsubscribe-Post %q", unsub, confirmed.header.Get("List-Unsubscribe-Post"))
	}
	resp := post(t, unsub, "List-Unsubscribe=One-Click")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("one-click unsubscribe: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	eventually(t, "the unsubscribe", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "disabled" })

	// No further marketing email: the campaign is not sent to Anna. The
	// form after it, from the same customer, is applied after it (a
	// customer's events are in order), so once its email is here the
	// campaign was handled.
	h.publish("herald.events.web", `{"action":"campaign.send","uuid":"anna-7f3c","params":{"campaign":"newsletter"}}`)
	h.publish("herald.events.web", annaForm)
	all := h.emails(3)
	if all[2].subject != "Please confirm your newsletter subscription" || len(h.smtp.Messages()) != 3 {
		t.Fatalf("after unsubscribing: %d emails, the third %q", len(h.smtp.Messages()), all[2].subject)
	}
}

func TestServeSingleOptInAndDisabled(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-single-opt-in")
	h.publish("herald.events.web", `{"action":"form.submit","label":"Newsletter form","uuid":"erin-1","params":{"form_type":"newsletter","email":"erin@example.com","newsletter_agreement_enabled":"enabled"}}`)
	m := h.emails(1)[0]
	if m.to != "erin@example.com" || m.header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("welcome email to %s, headers %v", m.to, m.header)
	}
	if !strings.Contains(m.text, link(t, m.text)) || h.attribute("erin-1", "newsletterAgreement") != "enabled" {
		t.Fatalf("profile %+v", h.profile("erin-1"))
	}
	h.publish("herald.events.web", `{"action":"form.submit","label":"Account","uuid":"erin-1","params":{"form_type":"account","newsletter_agreement_enabled":"disabled"}}`)
	eventually(t, "the agreement disabled", func() bool { return h.attribute("erin-1", "newsletterAgreement") == "disabled" })
}

func TestServeRejectsBadTokens(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	h.publish("herald.events.web", annaForm)
	good := link(t, h.emails(1)[0].text)
	base := good[:strings.LastIndex(good, "/l/")+3]
	token := good[len(base):]

	signer, err := links.NewSigner(links.Key{ID: "t1", Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := signer.Sign(links.Claims{UUID: "anna-7f3c", Action: "newsletter.confirm", Link: "confirm", Event: "x", Rule: "doi-request", Expires: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(token)
	i := len(flipped) - 5
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	events := h.streamMsgs(natsbus.EventsStream)
	for name, u := range map[string]string{
		"tampered": base + string(flipped),
		"expired":  base + expired,
		"garbage":  base + url.PathEscape("v1.nope"),
	} {
		t.Run(name, func(t *testing.T) {
			if code, _ := get(t, u); code != http.StatusBadRequest {
				t.Errorf("GET: %d, want 400", code)
			}
			if resp := post(t, u, ""); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST: %d, want 400", resp.StatusCode)
			}
		})
	}
	if n := h.streamMsgs(natsbus.EventsStream); n != events {
		t.Fatalf("bad tokens published %d events", n-events)
	}
	if h.attribute("anna-7f3c", "newsletterAgreement") != "confirmation" {
		t.Fatal("a bad token changed the agreement")
	}
}

func TestServeKeepsInvalidEventsInTheDeadLetterStream(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	h.publish("herald.events.web", annaForm)
	h.publish("herald.events.web", `{"action":"form.submit","uuid":"x","params":{"cart":{"items":2}}}`)
	h.publish("herald.events.web", `not json`)
	h.publish("herald.events.web", strings.ReplaceAll(strings.ReplaceAll(annaForm, "anna", "bob"), "Anna", "Bob"))
	h.emails(2) // the valid events around the invalid ones are processed
	eventually(t, "two dead letters", func() bool { return h.streamMsgs(natsbus.DeadStream) == 2 })
	stream, err := h.js.Stream(context.Background(), natsbus.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if reason := first.Header.Get("Herald-Reason"); !strings.Contains(reason, "params.cart: objects are not allowed") {
		t.Fatalf("dead letter reason %q", reason)
	}
	if !strings.Contains(string(first.Data), `"cart"`) {
		t.Fatalf("dead letter body %s", first.Data)
	}
}

func TestServeRetriesWhenSMTPFailsTemporarily(t *testing.T) {
	// The server answers 451 to the first message, as a greylisting or
	// overloaded server does. The event is nak'ed and redelivered; the
	// email arrives once, and the profile was changed once.
	h := startHerald(t, "../examples/newsletter-double-opt-in",
		smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "try again later", Times: 1}))
	h.publish("herald.events.web", annaForm)
	eventually(t, "the profile change", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "confirmation" })
	requested := h.attribute("anna-7f3c", "newsletterRequestedAt")
	m := h.emails(1)[0]
	if m.subject != "Please confirm your newsletter subscription" {
		t.Fatalf("subject %q", m.subject)
	}
	if got := h.attribute("anna-7f3c", "newsletterRequestedAt"); got != requested {
		t.Fatalf("the redelivery applied the rules again: requested at %v, then %v", requested, got)
	}
	eventually(t, "the outbox emptied", func() bool {
		rec, _, err := h.kv.Get(context.Background(), "anna-7f3c")
		return err == nil && len(rec.Outbox) == 0
	})
	if n := len(h.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails accepted, want 1", n)
	}
}

func TestServeKeepsRejectedEmailsInTheDeadLetterStream(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in",
		smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 550, Message: "no such mailbox"}))
	h.publish("herald.events.web", annaForm)
	eventually(t, "the failed email kept", func() bool { return h.streamMsgs(natsbus.DeadStream) == 1 })
	stream, err := h.js.Stream(context.Background(), natsbus.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(context.Background(), natsbus.DeadEffectSubject)
	if err != nil {
		t.Fatal(err)
	}
	if reason := m.Header.Get(natsbus.HeaderReason); !strings.Contains(reason, "550") || !strings.Contains(reason, "anna@example.com") {
		t.Fatalf("reason %q", reason)
	}
	if !strings.Contains(string(m.Data), "Please confirm your newsletter subscription") {
		t.Fatalf("the kept effect lacks the email: %s", m.Data)
	}
	// The profile change stands; only the email failed.
	if h.attribute("anna-7f3c", "newsletterAgreement") != "confirmation" {
		t.Fatalf("profile %+v", h.profile("anna-7f3c"))
	}
}

func TestServeReloadKeepsWorkingRulesWhenAFileBreaks(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "../examples/newsletter-double-opt-in", dir)
	h := startHerald(t, dir)
	before := h.srv.Rules()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("rules:\n  - name: broken\n    iff: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = h.srv.Reload()
	if h.srv.Rules() != before {
		t.Fatal("a broken rule file replaced the working rules")
	}
	h.publish("herald.events.web", annaForm)
	h.emails(1) // still served by the old rules
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("rules:\n  - {name: only, on: form.submit, do: [{tag: reloaded}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = h.srv.Reload()
	if h.srv.Rules().Len() != 1 {
		t.Fatalf("after a good reload: %d rules", h.srv.Rules().Len())
	}
	h.publish("herald.events.web", strings.NewReplacer("anna-7f3c", "carl-1", "anna@", "carl@").Replace(annaForm))
	eventually(t, "the new rule", func() bool { p := h.profile("carl-1"); return p != nil && p.HasTag("reloaded") })
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServeKeepsEachCustomersEventsInOrder publishes numbered events for
// many customers at once; a rule records whether each arrives right after
// the one before, across the consumer's workers.
func TestServeKeepsEachCustomersEventsInOrder(t *testing.T) {
	dir := t.TempDir()
	// outOfOrder is computed before last changes: set applies its fields
	// in order.
	rules := `rules:
  - name: step
    on: step.done
    do:
      - set:
          outOfOrder: ${ (profile.attributes.outOfOrder ?? false) || (profile.attributes.last ?? -1) + 1 != params.n }
          last: ${ params.n }
`
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHerald(t, dir)
	const customers, steps = 12, 25
	// Each customer's events back to back, so that without ordering
	// several workers would handle one customer's events at once.
	for c := range customers {
		for n := range steps {
			h.publish("herald.events.app", fmt.Sprintf(`{"action":"step.done","uuid":"c-%d","params":{"n":%d}}`, c, n))
		}
	}
	for c := range customers {
		uuid := fmt.Sprintf("c-%d", c)
		eventually(t, uuid+" done", func() bool { return h.attribute(uuid, "last") == float64(steps-1) })
		if p := h.profile(uuid); p.Attributes["outOfOrder"] != false {
			t.Errorf("%s saw its events out of order: %v", uuid, p.Attributes)
		}
	}
}

// TestServeShutdownFinishesWorkAndRestartLosesNothing stops Herald while
// events are under way and starts it again on the same data directory:
// every event is applied once, every email sent once.
func TestServeShutdownFinishesWorkAndRestartLosesNothing(t *testing.T) {
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, "../examples/newsletter-double-opt-in", smtp)
	first := startHeraldWith(t, cfg, smtp)
	const n = 40
	for i := range n {
		first.publish("herald.events.web", fmt.Sprintf(`{"id":"01KC%022d","action":"form.submit","uuid":"c-%d","params":{"form_type":"newsletter","email":"c%d@example.com","newsletter_agreement_enabled":"enabled"}}`, i, i, i))
	}
	if err := first.srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The embedded server keeps its store: a new Herald on the same data
	// directory (and a new port) picks up where the first stopped.
	cfg.NATS.Listen = "127.0.0.1:-1"
	second := startHeraldWith(t, cfg, smtp)
	msgs := smtp.WaitFor(t, n, 20*time.Second)
	ids := make(map[string]bool)
	for _, m := range msgs {
		parsed, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatal(err)
		}
		ids[parsed.Header.Get("Message-Id")] = true
	}
	if len(msgs) != n || len(ids) != n {
		t.Fatalf("%d emails with %d distinct ids, want %d of each", len(msgs), len(ids), n)
	}
	for i := range n {
		if got := second.attribute(fmt.Sprintf("c-%d", i), "newsletterAgreement"); got != "confirmation" {
			t.Fatalf("c-%d: agreement %v", i, got)
		}
	}
}
