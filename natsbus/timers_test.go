package natsbus_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// eventsOf returns the events stored in the events stream, in order.
func eventsOf(t *testing.T, js jetstream.JetStream) []*event.Event {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stored event %d: %v", seq, err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Errorf("event %s stored with Nats-Msg-Id %q", ev.ID, got)
		}
		if m.Subject != natsbus.TimerSubject+"."+natsbus.CustomerToken(ev.UUID) {
			t.Errorf("event %s stored on %s", ev.ID, m.Subject)
		}
		out = append(out, ev)
	}
	return out
}

func TestTimersFireOnceAfterTheirTimeAndCancel(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	timers := natsbus.NewTimers(js)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = timers.Forward(fctx, natsbus.NewPublisher(js, natsbus.TimerSubject), slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { stop(); <-done })

	start := time.Now()
	due := start.Add(1500 * time.Millisecond)
	ev := func(id, uuid string) *event.Event {
		return &event.Event{ID: id, Action: "order.remind", Time: due, UUID: uuid, Depth: 1, Budget: 3}
	}
	// Scheduled twice (a redelivered effect): one timer.
	for range 2 {
		if err := timers.Schedule(ctx, "remind", due, ev("01KT0000000000000000000001", "anna b")); err != nil {
			t.Fatal(err)
		}
	}
	// The same key scheduled again later, past the duplicate window's
	// reach (another id): it replaces the timer.
	if err := timers.Schedule(ctx, "remind", due, ev("01KT0000000000000000000002", "anna b")); err != nil {
		t.Fatal(err)
	}
	if err := timers.Schedule(ctx, "order.A-1", due, ev("01KT0000000000000000000003", "bob")); err != nil {
		t.Fatal(err)
	}
	if err := timers.Schedule(ctx, "order.A-2", due, ev("01KT0000000000000000000004", "bob")); err != nil {
		t.Fatal(err)
	}
	pending, err := timers.Pending(ctx, "anna b")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Key != "remind" || pending[0].Event.ID != "01KT0000000000000000000002" || !pending[0].Due.Equal(due.UTC()) {
		t.Fatalf("pending timers of anna: %+v", pending)
	}
	if err := timers.Cancel(ctx, "bob", "order.A-1"); err != nil {
		t.Fatal(err)
	}
	if pending, _ := timers.Pending(ctx, "bob"); len(pending) != 1 || pending[0].Key != "order.A-2" {
		t.Fatalf("pending timers of bob after a cancel: %+v", pending)
	}

	var got []*event.Event
	waitFor(t, "two timers to fire", func() bool { got = eventsOf(t, js); return len(got) >= 2 })
	if now := time.Now(); now.Before(due) {
		t.Fatalf("timers fired at %s, before they were due at %s", now, due)
	}
	// Give a wrongly kept timer the time to fire too.
	time.Sleep(1500 * time.Millisecond)
	got = eventsOf(t, js)
	ids := map[string]bool{}
	for _, e := range got {
		ids[e.ID] = true
	}
	if len(got) != 2 || !ids["01KT0000000000000000000002"] || !ids["01KT0000000000000000000004"] {
		t.Fatalf("events of fired timers: %d, ids %v; want the replacing timer of anna and bob's uncancelled one", len(got), ids)
	}
	for _, uuid := range []string{"anna b", "bob"} {
		if pending, _ := timers.Pending(ctx, uuid); len(pending) != 0 {
			t.Errorf("%s still has timers after they fired: %+v", uuid, pending)
		}
	}
	s, _ := js.Stream(ctx, natsbus.TimersStream)
	if info, _ := s.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("%d messages left in %s after forwarding", info.State.Msgs, natsbus.TimersStream)
	}
}
