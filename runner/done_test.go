package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
)

// markedEngines returns two appliers, "a" and "b", sharing f's store and
// effectors and marking effects in a HERALD_EFFECTS bucket on a real
// server, as serve wires them.
func (f *fixture) markedEngines(t *testing.T, leaseFor time.Duration) (a, b *Runner) {
	t.Helper()
	_, js := natstest.Start(t)
	kv, err := natsbus.Effects(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(owner string) *Runner {
		cfg := f.runner.cfg
		cfg.Owner, cfg.LeaseFor, cfg.LazyClear = owner, leaseFor, true
		cfg.Marks = &natsbus.EffectMarks{KV: kv, Engine: owner}
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return mk("a"), mk("b")
}

// Engine a sends an email and dies before clearing it from the record.
// Once a's lease ran out, engine b gets the event again (a never acked it)
// and then the customer's next event: the email is not sent again, the
// next one is sent once, and the record ends with nothing listed.
func TestMarksKeepTheNextEngineFromSendingAgain(t *testing.T) {
	f := newFixture(t)
	a, b := f.markedEngines(t, 200*time.Millisecond)
	ctx := context.Background()
	form := formEvent("01KB0000000000000000000001", "enabled")
	if err := a.Handle(ctx, form); err != nil {
		t.Fatal(err)
	}
	f.smtp.WaitFor(t, 1, 5*time.Second)
	if n := len(f.record(t).Outbox); n != 3 {
		t.Fatalf("record lists %d effects after a sent the email, want 3 (cleared lazily): the email and the reminder's and the expiry's timers", n)
	}
	// a dies here: no Flush. Its lease runs out.
	time.Sleep(250 * time.Millisecond)
	if err := b.Handle(ctx, form); err != nil {
		t.Fatalf("b.Handle of a's event after a's lease ran out: %v", err)
	}
	if err := b.Handle(ctx, confirmEvent("01KB0000000000000000000002")); err != nil {
		t.Fatalf("b.Handle of the next event: %v", err)
	}
	f.smtp.WaitFor(t, 2, 5*time.Second)
	if err := b.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a third email would arrive by now
	if n := len(f.smtp.Messages()); n != 2 {
		t.Errorf("%d emails, want 2: the request once, then the confirmation", n)
	}
	if rec := f.record(t); len(rec.Outbox) != 0 || rec.Lease != nil {
		t.Errorf("record after b's flush: outbox %d, lease %+v; want both empty", len(rec.Outbox), rec.Lease)
	}
}

// An engine restarted under its own name finds its own lease on a record
// still listing an email it sent before it died: it does not send it
// again.
func TestMarksKeepARestartedEngineFromSendingAgain(t *testing.T) {
	f := newFixture(t)
	a, _ := f.markedEngines(t, time.Minute)
	ctx := context.Background()
	form := formEvent("01KB0000000000000000000001", "enabled")
	if err := a.Handle(ctx, form); err != nil {
		t.Fatal(err)
	}
	f.smtp.WaitFor(t, 1, 5*time.Second)
	again, err := New(a.cfg) // the same engine started again: it remembers nothing
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Handle(ctx, form); err != nil {
		t.Fatal(err)
	}
	if err := again.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("%d emails, want 1", n)
	}
	if rec := f.record(t); len(rec.Outbox) != 0 {
		t.Errorf("record after the flush lists %d effects, want 0", len(rec.Outbox))
	}
}

// An engine that stored an effect and died before performing it (here the
// SMTP server refused it once) left no mark: once its lease ran out, the
// next engine performs it.
func TestMarksLeaveAnUnperformedEffectToTheNextEngine(t *testing.T) {
	f := newFixture(t, smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "try later", Times: 1}))
	a, b := f.markedEngines(t, 200*time.Millisecond)
	ctx := context.Background()
	form := formEvent("01KB0000000000000000000001", "enabled")
	if _, ok := errors.AsType[*RetryError](a.Handle(ctx, form)); !ok {
		t.Fatal("a.Handle with SMTP answering 451: want a RetryError")
	}
	time.Sleep(250 * time.Millisecond)
	if err := b.Handle(ctx, form); err != nil {
		t.Fatalf("b.Handle after a's lease ran out: %v", err)
	}
	if msgs := f.smtp.WaitFor(t, 1, 5*time.Second); len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
}
