package runner

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/event"
)

// engines returns two appliers, "a" and "b", sharing f's store, effectors
// and SMTP server, as two engines sharing a NATS cluster do.
func (f *fixture) engines(t *testing.T, leaseFor time.Duration) (a, b *Runner) {
	t.Helper()
	mk := func(owner string) *Runner {
		cfg := f.runner.cfg
		cfg.Owner, cfg.LeaseFor, cfg.LazyClear = owner, leaseFor, true
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return mk("a"), mk("b")
}

func confirmEvent(id string) *event.Event {
	return &event.Event{ID: id, Action: "newsletter.confirm", Time: t0, UUID: "anna-7f3c",
		Params: map[string]any{"ip": "203.0.113.7", "user_agent": "Firefox", "source_event": "01KB0000000000000000000001"}}
}

// While engine a holds the lease on a customer's outbox, engine b handles
// none of the customer's events; once a has cleared what it performed, b
// goes on. No email is sent twice.
func TestLeaseKeepsAnotherEngineOffTheOutbox(t *testing.T) {
	f := newFixture(t)
	a, b := f.engines(t, time.Minute)
	ctx := context.Background()
	if err := a.Handle(ctx, formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatal(err)
	}
	f.smtp.WaitFor(t, 1, 5*time.Second)
	if l := f.record(t).Lease; l == nil || l.Engine != "a" {
		t.Fatalf("lease after a's write = %+v, want a's", l)
	}
	// b gets the customer's next event (say, after a rebalance) while a's
	// lease holds its performed email still listed.
	err := b.Handle(ctx, confirmEvent("01KB0000000000000000000002"))
	if _, ok := errors.AsType[*RetryError](err); !ok {
		t.Fatalf("b.Handle under a's lease = %v, want a RetryError", err)
	}
	// b also must not perform a's listed effect on a redelivery of a's
	// event.
	if _, ok := errors.AsType[*RetryError](b.Handle(ctx, formEvent("01KB0000000000000000000001", "enabled"))); !ok {
		t.Fatal("b handled a redelivery of a's event under a's lease")
	}
	if err := a.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if rec := f.record(t); len(rec.Outbox) != 0 || rec.Lease != nil {
		t.Fatalf("after a's flush: outbox %d, lease %+v; want both empty", len(rec.Outbox), rec.Lease)
	}
	if err := b.Handle(ctx, confirmEvent("01KB0000000000000000000002")); err != nil {
		t.Fatalf("b.Handle after a cleared the outbox: %v", err)
	}
	msgs := f.smtp.WaitFor(t, 2, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // a third email would arrive by now
	if got := len(f.smtp.Messages()); got != 2 {
		t.Errorf("%d emails, want 2 (request and confirmation, each once)", got)
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		ids[msg.Header.Get("Message-Id")] = true
	}
	if len(ids) != 2 {
		t.Errorf("Message-IDs %v, want two distinct", ids)
	}
}

// An engine that died holding a lease with effects still to perform
// leaves them to whoever handles the customer once the lease ran out: the
// redelivered event takes the lease over and the email is sent.
func TestLeaseRunsOutAndAnotherEngineTakesOver(t *testing.T) {
	f := newFixture(t, smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "try later", Times: 1}))
	a, b := f.engines(t, 200*time.Millisecond)
	ctx := context.Background()
	ev := formEvent("01KB0000000000000000000001", "enabled")
	if _, ok := errors.AsType[*RetryError](a.Handle(ctx, ev)); !ok {
		t.Fatal("a.Handle with SMTP answering 451: want a RetryError")
	}
	// a is gone; b gets the redelivery.
	if _, ok := errors.AsType[*RetryError](b.Handle(ctx, ev)); !ok {
		t.Fatal("b performed a's effects while a's lease held")
	}
	time.Sleep(250 * time.Millisecond)
	if err := b.Handle(ctx, ev); err != nil {
		t.Fatalf("b.Handle after a's lease ran out: %v", err)
	}
	f.smtp.WaitFor(t, 1, 5*time.Second)
	if l := f.record(t).Lease; l == nil || l.Engine != "b" {
		t.Errorf("lease = %+v, want b's", l)
	}
}
