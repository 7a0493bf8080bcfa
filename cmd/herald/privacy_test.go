package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/privacy"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// privacyEnv is a running Herald (double opt-in rules, emails into an
// outbox folder) and what the privacy verbs need to reach it: a
// configuration file naming its NATS and its outbox.
type privacyEnv struct {
	t      *testing.T
	app    *app.App
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     *profile.KV
	outbox string
	config string
}

const adminToken = "test-admin-token-7c1e"

func startPrivacyEnv(t *testing.T, cluster *natstest.Cluster) *privacyEnv {
	t.Helper()
	t.Setenv(config.EnvAdminToken, adminToken)
	t.Setenv(config.EnvPrivacyKey, "test-privacy-key")
	cfg := apptest.Config(t, "../../examples/newsletter-double-opt-in")
	natsURL := ""
	if cluster != nil {
		cfg.NATS.URL, cfg.NATS.Listen = cluster.URL(), ""
		cfg.NATS.Replicas, cfg.NATS.Partitions = 3, 3
		natsURL = cluster.URL()
	}
	a := apptest.Start(t, cfg)
	if natsURL == "" {
		natsURL = a.NATSURL()
	}
	c := apptest.Connect(t, a)
	path := filepath.Join(t.TempDir(), "herald.yaml")
	yaml := fmt.Sprintf("data_dir: %s\nnats:\n  url: %s\nemail:\n  outbox: %s\n", cfg.DataDir, natsURL, cfg.Email.Outbox)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &privacyEnv{t: t, app: a, nc: c.Conn, js: c.JS, kv: c.Profiles, outbox: cfg.Email.Outbox, config: path}
}

func (e *privacyEnv) publish(subject, data string) {
	e.t.Helper()
	if _, err := e.js.Publish(e.t.Context(), subject, []byte(data)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *privacyEnv) record(uuid string) *profile.Record {
	rec, _, err := e.kv.Get(context.Background(), uuid)
	if err != nil {
		return nil
	}
	return rec
}

// emailsTo returns the outbox emails to addr.
func (e *privacyEnv) emailsTo(addr string) []*outboxMail {
	mails, _, err := readOutbox(e.outbox)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	var out []*outboxMail
	for _, m := range mails {
		if strings.EqualFold(m.to(), addr) {
			out = append(out, m)
		}
	}
	return out
}

// drained waits until every event stored was handled.
func (e *privacyEnv) drained(t *testing.T) {
	t.Helper()
	last := ""
	defer func() {
		if t.Failed() {
			t.Log(last)
		}
	}()
	eventually(t, "every event handled", func() bool {
		s, err := e.js.Stream(context.Background(), natsbus.EventsStream)
		if err != nil {
			return false
		}
		for name := range s.ConsumerNames(context.Background()).Name() {
			c, err := s.Consumer(context.Background(), name)
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			if err == nil && info.Config.Durable == "" {
				continue // a reader's, not an engine's
			}
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				if info != nil {
					last = fmt.Sprintf("%s: pending %d, ack pending %d, redelivered %d", name, info.NumPending, info.NumAckPending, info.NumRedelivered)
				}
				return false
			}
		}
		return true
	})
}

func (e *privacyEnv) run(args ...string) (string, string) {
	e.t.Helper()
	full := append([]string{"profile", args[0], "--config", e.config}, args[1:]...)
	code, stdout, stderr := run(e.t, "", full...)
	if code != exitOK {
		e.t.Fatalf("herald %s: exit code %d; stderr:\n%s", strings.Join(full, " "), code, stderr)
	}
	return stdout, stderr
}

func (e *privacyEnv) export(uuid string) (*privacy.Document, string) {
	e.t.Helper()
	out, _ := e.run("export", uuid)
	var doc privacy.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		e.t.Fatalf("export %s: %v\n%s", uuid, err, out)
	}
	return &doc, out
}

// customers sends the events of two customers, Kate and Bob: Kate asks
// for the newsletter and confirms it through the link in the email, then
// comes back on her phone as an anonymous visitor who gives her address
// and is merged into her; each has a dead letter and a pending timer.
func (e *privacyEnv) customers() {
	t := e.t
	e.publish("herald.events.web", `{"id":"kate-form-1","action":"form.submit","label":"Newsletter form","uuid":"kate-01","site":"shop.example.com","params":{"form_type":"newsletter","email":"kate@example.com","firstname":"Kate","newsletter_agreement_enabled":"enabled"}}`)
	e.publish("herald.events.web", `{"id":"bob-form-1","action":"form.submit","label":"Newsletter form","uuid":"bob-01","params":{"form_type":"newsletter","email":"bob@example.com","firstname":"Bob","newsletter_agreement_enabled":"enabled"}}`)
	eventually(t, "the confirmation requests", func() bool {
		return len(e.emailsTo("kate@example.com")) == 1 && len(e.emailsTo("bob@example.com")) == 1
	})
	var confirm string
	for _, l := range e.emailsTo("kate@example.com")[0].links() {
		if strings.Contains(l, "/l/") {
			confirm = l
		}
	}
	req, err := http.NewRequest(http.MethodPost, confirm, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "privacy-test/1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d", confirm, resp.StatusCode)
	}
	eventually(t, "kate's confirmation", func() bool { return len(e.emailsTo("kate@example.com")) == 2 })
	e.publish("herald.events.web", `{"id":"kate-visit-1","action":"page.visit","label":"Home","uuid":"kate-phone"}`)
	e.publish("herald.events.web", `{"id":"kate-form-2","action":"form.submit","label":"Contact form","uuid":"kate-phone","params":{"form_type":"contact","email":"Kate@Example.com","phone":"+48 600 000 000"}}`)
	eventually(t, "the merge", func() bool {
		rec := e.record("kate-phone")
		return rec != nil && rec.MergedInto == "kate-01" && rec.Profile == nil
	})
	// Invalid events naming each: kept as dead letters.
	e.publish("herald.events.web", `{"action":"form.submit","uuid":"kate-01","params":{"cart":{"items":2}}}`)
	e.publish("herald.events.web", `{"action":"form.submit","uuid":"bob-01","params":{"cart":{"items":3}}}`)
	eventually(t, "the dead letters", func() bool {
		s, err := e.js.Stream(context.Background(), natsbus.DeadStream)
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 2
	})
	// Kate's confirmation cancelled her request's timers; she gets one of
	// her own. Bob keeps the reminder and the expiry of his request.
	followUp := &event.Event{ID: "kate-follow-up-1", Action: "customer.follow_up", UUID: "kate-01", Time: time.Now().Add(30 * 24 * time.Hour)}
	if err := natsbus.NewTimers(e.js).Schedule(t.Context(), "follow-up", followUp.Time, followUp); err != nil {
		t.Fatal(err)
	}
	e.drained(t)
	// What a rule with a limit counts, as the applier keeps it.
	eventually(t, "kate's fired rules written", func() bool {
		rec, rev, err := e.kv.Get(t.Context(), "kate-01")
		if err != nil {
			return false
		}
		rec.Fired = map[string][]time.Time{"welcome-once": {time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}}
		_, err = e.kv.Put(t.Context(), "kate-01", rec, rev)
		return err == nil
	})
}

// TestPrivacyServe runs export, consent and forget against a running
// Herald with its embedded NATS server.
func TestPrivacyServe(t *testing.T) {
	testPrivacy(t, startPrivacyEnv(t, nil))
}

// TestPrivacyCluster runs them against Herald on a three-server cluster,
// with the events stream partitioned.
func TestPrivacyCluster(t *testing.T) {
	testPrivacy(t, startPrivacyEnv(t, natstest.StartCluster(t, 3)))
}

func testPrivacy(t *testing.T, e *privacyEnv) {
	e.customers()
	bobBefore, _ := e.export("bob-01")

	t.Run("export", func(t *testing.T) {
		doc, raw := e.export("kate-phone")
		if doc.Customer != "kate-01" || !slices.Contains(doc.UUIDs, "kate-phone") || !slices.Contains(doc.UUIDs, "kate-01") {
			t.Errorf("customer %q, uuids %v", doc.Customer, doc.UUIDs)
		}
		if doc.Profile == nil || !strings.EqualFold(doc.Profile.Email, "kate@example.com") || doc.Profile.Phone != "+48 600 000 000" || !doc.Profile.HasTag("newsletter") {
			t.Errorf("profile: %+v", doc.Profile)
		}
		if len(doc.Merges) != 1 || doc.Merges[0].From != "kate-phone" || len(doc.Aliases) != 1 || doc.Aliases[0].UUID != "kate-phone" {
			t.Errorf("merges %+v, aliases %+v", doc.Merges, doc.Aliases)
		}
		var kinds []string
		for _, h := range doc.Consent.History {
			kinds = append(kinds, h.Kind)
		}
		if !slices.Equal(kinds, []string{"requested", "confirmed"}) {
			t.Errorf("consent history %v", kinds)
		} else if c := doc.Consent.History[1]; c.IP != "127.0.0.1" || c.UserAgent != "privacy-test/1.0" || c.Link != "confirm" || c.Source != "kate-form-1" {
			t.Errorf("confirmation evidence: %+v", c)
		}
		if doc.Consent.Agreement != "enabled" || doc.Consent.Evidence["newsletterConfirmedIp"] != "127.0.0.1" {
			t.Errorf("consent: %+v", doc.Consent)
		}
		ids := map[string]bool{}
		for _, ev := range doc.Events {
			var body struct{ ID, UUID string }
			_ = json.Unmarshal(ev.Event, &body)
			if body.UUID != "kate-01" && body.UUID != "kate-phone" {
				t.Errorf("an event of %q in the export: %s", body.UUID, ev.Event)
			}
			ids[body.ID] = true
		}
		for _, id := range []string{"kate-form-1", "kate-visit-1", "kate-form-2"} {
			if !ids[id] {
				t.Errorf("event %s not in the export", id)
			}
		}
		if len(doc.Fired["welcome-once"]) != 1 {
			t.Errorf("rules fired: %v", doc.Fired)
		}
		if len(doc.Timers) != 1 || doc.Timers[0].Subject != natsbus.TimerSubjectOf("kate-01", "follow-up") {
			t.Errorf("timers: %+v", doc.Timers)
		}
		if len(doc.DeadLetters) != 1 || !strings.Contains(strings.Join(strings.Fields(string(doc.DeadLetters[0].Data)), ""), `"items":2`) {
			t.Errorf("dead letters: %+v", doc.DeadLetters)
		}
		if len(doc.Emails) != 2 {
			t.Errorf("%d outbox emails, want 2", len(doc.Emails))
		}
		if strings.Contains(strings.ToLower(raw), "bob") {
			t.Errorf("the export names another customer:\n%s", raw)
		}
	})

	t.Run("http", func(t *testing.T) {
		get := func(token string) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+e.app.HTTPAddr()+"/v1/profiles/kate-phone", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if code, _ := get(""); code != http.StatusUnauthorized {
			t.Errorf("without a token: %d", code)
		}
		if code, _ := get("wrong"); code != http.StatusUnauthorized {
			t.Errorf("with a wrong token: %d", code)
		}
		code, body := get(adminToken)
		var doc privacy.Document
		if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || doc.Customer != "kate-01" || len(doc.Emails) != 2 || len(doc.Timers) != 1 {
			t.Errorf("with the token: %d\n%s", code, body)
		}
	})

	t.Run("consent", func(t *testing.T) {
		out, _ := e.run("consent", "kate-phone")
		for _, want := range []string{
			"Consent record of customer kate-phone (merged into kate-01)\n",
			"Newsletter agreement now: enabled\n",
			"  newsletterConfirmedIp          \"127.0.0.1\"\n",
			" requested  event kate-form-1, action form.submit, value enabled, site shop.example.com\n",
			` confirmed  event `, `action newsletter.confirm, site shop.example.com, ip 127.0.0.1, user agent "privacy-test/1.0", link confirm, source event kate-form-1` + "\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("consent does not say %q:\n%s", want, out)
			}
		}
	})

	t.Run("forget", func(t *testing.T) {
		// Kate's events keep coming while she is erased.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				uuid := []string{"kate-01", "kate-phone"}[i%2]
				_, _ = e.js.Publish(context.Background(), "herald.events.web."+uuid, fmt.Appendf(nil,
					`{"id":"during-%d","action":"form.submit","uuid":"%s","params":{"form_type":"newsletter","email":"kate@example.com","lastname":"During","newsletter_agreement_enabled":"enabled"}}`, i, uuid))
				time.Sleep(3 * time.Millisecond)
			}
		})
		out, _ := e.run("forget", "kate-phone")
		close(stop)
		wg.Wait()
		if !strings.HasPrefix(out, "Erased customer kate-phone (uuids: kate-phone, kate-01):\n") || !strings.Contains(out, "  timers                1\n") ||
			!strings.Contains(out, "  dead letters          1\n") || !strings.Contains(out, "  email index entries   1\n") {
			t.Errorf("forget reported:\n%s", out)
		}
		e.drained(t)
		for _, u := range []string{"kate-01", "kate-phone"} {
			if rec := e.record(u); rec == nil || !rec.IsErased() || rec.Profile != nil || rec.MergedInto != "" || len(rec.Applied) > 0 || len(rec.Merges) > 0 {
				t.Errorf("%s after the erasure: %+v", u, rec)
			}
		}
		if o, err := e.kv.Owner(context.Background(), "kate@example.com"); !errors.Is(err, profile.ErrNotFound) {
			t.Errorf("the email index still names %q (%v)", o, err)
		}
		if code, out, _ := run(t, "", "profile", "--config", e.config, "kate-phone"); code != exitOK || !strings.Contains(out, "Customer kate-phone was erased on ") {
			t.Errorf("herald profile of an erased customer: %d\n%s", code, out)
		}
		// Once more, as an operator would after the sender stopped: it
		// removes what came in meanwhile.
		out, _ = e.run("forget", "kate-01")
		if !strings.HasPrefix(out, "Customer kate-01 was erased before") {
			t.Errorf("forget again:\n%s", out)
		}
		doc, raw := e.export("kate-01")
		if doc.Erased == nil || doc.Profile != nil || len(doc.Events) != 0 || len(doc.Timers) != 0 || len(doc.DeadLetters) != 0 || len(doc.Emails) != 0 {
			t.Errorf("export after the erasure:\n%s", raw)
		}
		if strings.Contains(raw, "kate@") || strings.Contains(raw, "Kate") {
			t.Errorf("the erased customer's export still holds personal data:\n%s", raw)
		}
		if n := len(e.emailsTo("kate@example.com")); n != 0 {
			t.Errorf("%d emails to kate in the outbox", n)
		}
		s, err := e.js.Stream(context.Background(), natsbus.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"herald.events.*.kate-01", "herald.events.*.kate-phone", "herald.part.*.*.kate-01", "herald.part.*.*.kate-phone"} {
			info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(f))
			if err != nil {
				t.Fatal(err)
			}
			if len(info.State.Subjects) > 0 {
				t.Errorf("the stream still holds %v", info.State.Subjects)
			}
		}
		bobAfter, _ := e.export("bob-01")
		if len(bobAfter.Events) != len(bobBefore.Events) || len(bobAfter.Timers) != 2 || len(bobAfter.DeadLetters) != 1 || len(bobAfter.Emails) != 1 ||
			bobAfter.Profile == nil || bobAfter.Profile.Email != "bob@example.com" {
			t.Errorf("bob after kate's erasure: %d events (%d before), %d timers, %d dead letters, %d emails, profile %+v",
				len(bobAfter.Events), len(bobBefore.Events), len(bobAfter.Timers), len(bobAfter.DeadLetters), len(bobAfter.Emails), bobAfter.Profile)
		}
	})

	t.Run("a new form starts afresh", func(t *testing.T) {
		e.publish("herald.events.web", `{"id":"kate-new-form","action":"form.submit","uuid":"kate-new","params":{"form_type":"newsletter","email":"kate@example.com","newsletter_agreement_enabled":"enabled"}}`)
		eventually(t, "a confirmation request to the new customer", func() bool { return len(e.emailsTo("kate@example.com")) == 1 })
		rec := e.record("kate-new")
		if rec == nil || rec.Profile == nil || rec.Profile.Firstname != "" || rec.Profile.Phone != "" || len(rec.Merges) > 0 || rec.Profile.Attributes["newsletterConfirmedIp"] != nil {
			t.Errorf("kate-new: %+v", rec)
		}
		if o, err := e.kv.Owner(context.Background(), "kate@example.com"); err != nil || o != "kate-new" {
			t.Errorf("owner %q, %v", o, err)
		}
	})

	t.Run("suppressed stays suppressed", func(t *testing.T) {
		out, _ := e.run("forget", "bob-01", "--suppress", "--reason", "asked never to be emailed")
		if !strings.Contains(out, "  addresses suppressed  1\n") {
			t.Errorf("forget --suppress:\n%s", out)
		}
		// Both on bob-new's subject, so that they are handled in order on
		// a partitioned stream too.
		e.publish("herald.events.web.bob-new", `{"id":"bob-new-1","action":"form.submit","uuid":"bob-new","params":{"form_type":"newsletter","email":"bob@example.com","newsletter_agreement_enabled":"enabled"}}`)
		e.publish("herald.events.web.bob-new", `{"id":"bob-new-2","action":"form.submit","uuid":"bob-new","params":{"form_type":"settled"}}`)
		eventually(t, "bob-new's events", func() bool {
			rec := e.record("bob-new")
			return rec != nil && rec.Profile != nil && rec.Profile.HasTag("settled")
		})
		if got := e.record("bob-new").Profile.Attributes["newsletterAgreement"]; got != "confirmation" {
			t.Errorf("bob-new's agreement %v: the rules did not run", got)
		}
		if n := len(e.emailsTo("bob@example.com")); n != 0 {
			t.Errorf("%d emails to a suppressed address", n)
		}
	})
}
