package runner

import (
	"context"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
)

// outboxKeys returns the keys of the effects anna's stored record lists.
func (f *fixture) outboxKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, raw := range f.record(t).Outbox {
		keys = append(keys, entryKey(raw))
	}
	return keys
}

// With LazyClear an event that has effects costs one write: the effects
// it performed stay listed in the stored record until the customer's next
// write or Flush drops them, and are never performed twice meanwhile.
func TestLazyClearWritesOncePerEvent(t *testing.T) {
	f := newFixture(t)
	f.runner.cfg.LazyClear = true
	ctx := context.Background()
	request := formEvent("01KB0000000000000000000001", "enabled")
	if err := f.runner.Handle(ctx, request); err != nil {
		t.Fatal(err)
	}
	f.smtp.WaitFor(t, 1, 5*time.Second)
	// The request's email and its two timers (reminder, expiry).
	if got := f.outboxKeys(t); len(got) != 3 {
		t.Fatalf("after the request the record lists %v, want the performed email and timers still listed", got)
	}
	// A redelivery sends nothing again.
	if err := f.runner.Handle(ctx, request); err != nil {
		t.Fatal(err)
	}
	// The customer's next write drops the performed email and lists only
	// its own effects.
	confirm := &event.Event{ID: "01KB0000000000000000000002", Action: "newsletter.confirm", Time: t0, UUID: "anna-7f3c",
		Params: map[string]any{"ip": "203.0.113.7", "user_agent": "Firefox", "source_event": "01KB0000000000000000000001"}}
	if err := f.runner.Handle(ctx, confirm); err != nil {
		t.Fatal(err)
	}
	msgs := f.smtp.WaitFor(t, 2, 5*time.Second)
	for _, key := range f.outboxKeys(t) {
		if key == "01KB0000000000000000000001.doi-request.1" {
			t.Errorf("the confirmation's write kept the performed request email listed: %v", f.outboxKeys(t))
		}
	}
	if err := f.runner.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.outboxKeys(t); len(got) != 0 {
		t.Errorf("after Flush the record lists %v, want nothing", got)
	}
	if n := f.runner.done.size(); n != 0 {
		t.Errorf("%d performed effects still remembered after Flush", n)
	}
	time.Sleep(100 * time.Millisecond) // an email sent twice would arrive by now
	if got := len(f.smtp.Messages()); got != len(msgs) {
		t.Errorf("%d emails sent, want %d: an effect was performed twice", got, len(msgs))
	}
	if len(f.emitter.events) != 1 {
		t.Errorf("emitted %d events, want 1", len(f.emitter.events))
	}
}

// Flush leaves alone customers whose latest effect is more recent than
// quiet: their next event will likely drop it for free.
func TestFlushWaitsForQuietCustomers(t *testing.T) {
	f := newFixture(t)
	f.runner.cfg.LazyClear = true
	ctx := context.Background()
	if err := f.runner.Handle(ctx, formEvent("01KB0000000000000000000001", "enabled")); err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Flush(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := f.outboxKeys(t); len(got) != 3 {
		t.Errorf("Flush cleared a customer active within quiet: the record lists %v", got)
	}
	if err := f.runner.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.outboxKeys(t); len(got) != 0 {
		t.Errorf("after Flush with quiet 0 the record lists %v", got)
	}
}
