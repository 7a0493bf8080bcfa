package runner

import (
	"context"
	"errors"
	"github.com/herald-events/herald/actions/timer"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/actions/emit"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// recordingEmitter keeps emitted events; serve's emitter publishes to
// JetStream and is tested end to end.
type recordingEmitter struct {
	mu     sync.Mutex
	events []*event.Event
	fail   error
}

func (r *recordingEmitter) Publish(_ context.Context, ev *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func linker(l rules.Link, ev *event.Event, rule string, expires time.Time) (string, error) {
	return "https://shop.example/l/" + l.Name + "-" + ev.UUID + "-" + rule + "-" + expires.Format("20060102"), nil
}

type fixture struct {
	runner  *Runner
	store   *profile.Memory
	smtp    *smtptest.Server
	emitter *recordingEmitter
	timers  *recordingTimers
	dead    []string // key: reason
}

// recordingTimers keeps the timers scheduled, by customer and key.
type recordingTimers struct {
	mu  sync.Mutex
	set map[string]time.Time
}

func (r *recordingTimers) Schedule(_ context.Context, key string, due time.Time, ev *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[string]time.Time)
	}
	r.set[ev.UUID+"/"+key] = due
	return nil
}

func (r *recordingTimers) Cancel(_ context.Context, uuid, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, uuid+"/"+key)
	return nil
}

func newFixture(t *testing.T, opts ...smtptest.Option) *fixture {
	t.Helper()
	set, err := rules.Load("../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.NewServer(t, opts...)
	mailer, err := email.NewSMTP(email.SMTPConfig{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: profile.NewMemory(), smtp: srv, emitter: &recordingEmitter{}, timers: &recordingTimers{}}
	mail, err := email.NewEffector(mailer, "Example Shop <news@shop.example>", "help@shop.example")
	if err != nil {
		t.Fatal(err)
	}
	f.runner, err = New(Config{
		Engine: engine.New(set), Store: f.store, Linker: linker,
		Effectors: actions.Registry{"email": mail, "emit": &emit.Effector{Publisher: f.emitter},
			"timer": &timer.Effector{Scheduler: f.timers}, "cancel": &timer.Effector{Scheduler: f.timers}},
		Now: func() time.Time { return t0 },
		DeadLetter: func(_ context.Context, key string, _ []byte, reason error) error {
			f.dead = append(f.dead, key+": "+reason.Error())
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func formEvent(id, agreement string) *event.Event {
	return &event.Event{ID: id, Action: "form.submit", Time: t0, UUID: "anna-7f3c", Site: "shop.example",
		Params: map[string]any{"form_type": "newsletter", "email": "anna@example.com", "firstname": "Anna", "newsletter_agreement_enabled": agreement}}
}

func (f *fixture) record(t *testing.T) *profile.Record {
	t.Helper()
	rec, _, err := f.store.Get(context.Background(), "anna-7f3c")
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestHandleSendsTheConfirmationRequest(t *testing.T) {
	f := newFixture(t)
	if err := f.runner.Handle(context.Background(), formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatal(err)
	}
	msgs := f.smtp.WaitFor(t, 1, 5*time.Second)
	m, err := mail.ReadMessage(strings.NewReader(string(msgs[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != "Please confirm your newsletter subscription" {
		t.Errorf("subject %q", got)
	}
	if got := m.Header.Get("Message-Id"); got != "<01KB0000000000000000000001.doi-request.1@shop.example>" {
		t.Errorf("message id %q", got)
	}
	if msgs[0].To[0] != "anna@example.com" || m.Header.Get("Reply-To") != "<help@shop.example>" {
		t.Errorf("to %v, reply-to %q", msgs[0].To, m.Header.Get("Reply-To"))
	}
	if m.Header.Get("List-Unsubscribe") != "" {
		t.Error("a confirmation request is not a marketing email, yet it has List-Unsubscribe")
	}
	if want := "https://shop.example/l/confirm-anna-7f3c-doi-request-20261205"; !strings.Contains(string(msgs[0].Data), want) {
		t.Errorf("email lacks the confirmation link %s (7 days)", want)
	}
	rec := f.record(t)
	if rec.Profile.Attributes["newsletterAgreement"] != "confirmation" || rec.Profile.Email != "anna@example.com" {
		t.Errorf("profile = %+v", rec.Profile)
	}
	if len(rec.Outbox) != 0 || !rec.HasApplied("01KB0000000000000000000001") {
		t.Errorf("record outbox %d, applied %v", len(rec.Outbox), rec.Applied)
	}
}

func TestHandleMarketingEmailHasOneClickUnsubscribe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.runner.Handle(ctx, formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatal(err)
	}
	confirm := &event.Event{ID: "01KB0000000000000000000002", Action: "newsletter.confirm", Time: t0, UUID: "anna-7f3c",
		Params: map[string]any{"ip": "203.0.113.7", "user_agent": "Firefox", "source_event": "01KB0000000000000000000001"}}
	if err := f.runner.Handle(ctx, confirm); err != nil {
		t.Fatal(err)
	}
	msgs := f.smtp.WaitFor(t, 2, 5*time.Second)
	m, err := mail.ReadMessage(strings.NewReader(string(msgs[1].Data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != "Your newsletter subscription is confirmed" {
		t.Errorf("subject %q", got)
	}
	if got := m.Header.Get("List-Unsubscribe"); got != "<https://shop.example/l/unsubscribe-anna-7f3c-doi-confirmed-20261205>" {
		t.Errorf("List-Unsubscribe %q", got)
	}
	if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", got)
	}
	p := f.record(t).Profile
	if p.Attributes["newsletterAgreement"] != "enabled" || p.Attributes["newsletterConfirmedIp"] != "203.0.113.7" || !p.HasTag("subscriber") {
		t.Errorf("profile after confirmation = %+v", p)
	}
	if len(f.emitter.events) != 1 || f.emitter.events[0].Action != "newsletter.subscribed" || f.emitter.events[0].Depth != 1 {
		t.Errorf("emitted %+v", f.emitter.events)
	}
}

func TestHandleRetriesAfterTemporaryFailureWithoutReapplying(t *testing.T) {
	f := newFixture(t, smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "try later", Times: 1}))
	ctx := context.Background()
	ev := formEvent("01KB0000000000000000000001", "enabled")
	err := f.runner.Handle(ctx, ev)
	var retry *RetryError
	if !errors.As(err, &retry) {
		t.Fatalf("Handle = %v, want a RetryError", err)
	}
	rec := f.record(t)
	// The email that failed and the two timers after it wait.
	if len(rec.Outbox) != 3 || rec.Profile.Attributes["newsletterAgreement"] != "confirmation" {
		t.Fatalf("after the failure: outbox %d, profile %+v", len(rec.Outbox), rec.Profile)
	}
	requested := rec.Profile.Attributes["newsletterRequestedAt"]
	// The redelivery sends the email that is waiting, and evaluates nothing
	// again: the profile is not touched twice.
	if err := f.runner.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if msgs := f.smtp.WaitFor(t, 1, 5*time.Second); len(msgs) != 1 {
		t.Fatalf("%d emails delivered", len(msgs))
	}
	rec = f.record(t)
	if len(rec.Outbox) != 0 || rec.Profile.Attributes["newsletterRequestedAt"] != requested {
		t.Fatalf("after the retry: outbox %d, profile %+v", len(rec.Outbox), rec.Profile)
	}
	// A third delivery of the same event does nothing at all.
	if err := f.runner.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := len(f.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails after a duplicate delivery, want 1", n)
	}
}

func TestHandleDropsPermanentFailures(t *testing.T) {
	f := newFixture(t, smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 550, Message: "no such user"}))
	if err := f.runner.Handle(context.Background(), formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatalf("Handle = %v, want nil: a rejected recipient is not retried", err)
	}
	if rec := f.record(t); len(rec.Outbox) != 0 {
		t.Fatalf("outbox keeps %d effects", len(rec.Outbox))
	}
	if len(f.dead) != 1 || !strings.HasPrefix(f.dead[0], "01KB0000000000000000000001.doi-request.1: ") || !strings.Contains(f.dead[0], "550") {
		t.Fatalf("dead letters %q, want the rejected email with its reason", f.dead)
	}
}

func TestHandleSkipsActionsWithoutRules(t *testing.T) {
	f := newFixture(t)
	ev := &event.Event{ID: "01KB0000000000000000000009", Action: "page.visit", Time: t0, UUID: "anna-7f3c"}
	if err := f.runner.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Get(context.Background(), "anna-7f3c"); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("a profile was stored for an event no rule wants: %v", err)
	}
}

func TestHandleEmitFailureIsRetried(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.runner.Handle(ctx, formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatal(err)
	}
	f.emitter.fail = errors.New("nats: no responders")
	confirm := &event.Event{ID: "01KB0000000000000000000002", Action: "newsletter.confirm", Time: t0, UUID: "anna-7f3c",
		Params: map[string]any{"source_event": "01KB0000000000000000000001"}}
	var retry *RetryError
	if err := f.runner.Handle(ctx, confirm); !errors.As(err, &retry) {
		t.Fatalf("Handle = %v, want a RetryError", err)
	}
	f.emitter.fail = nil
	if err := f.runner.Handle(ctx, confirm); err != nil {
		t.Fatal(err)
	}
	if len(f.emitter.events) != 1 {
		t.Fatalf("emitted %d events, want 1", len(f.emitter.events))
	}
	// The confirmed email was queued after the emit and went out with it.
	f.smtp.WaitFor(t, 2, 5*time.Second)
}
