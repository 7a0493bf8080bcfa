package ingest_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RecentActivity finds a customer's events wherever they are in the
// stream, however far from its end, in stream order; plain-subject events
// only among the last plainScan; an event without an id or a time gets
// the ones the consumer gives it; other customers' events, and a merged
// customer's event published again on the known customer's subject, are
// left out.
func TestRecentActivity(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := t.Context()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	const total = 4500 // more than the first window of 4096
	base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var old, recent []string
	for i := range total {
		if i%500 == 0 {
			<-js.PublishAsyncComplete()
		}
		uuid := fmt.Sprintf("busy-%d", i%7)
		switch i {
		case 3, 9, 300: // far from the end: found in later, larger windows
			uuid = "old"
			old = append(old, fmt.Sprintf("ev-%05d", i))
		case total - 50, total - 10:
			uuid = "recent"
			recent = append(recent, fmt.Sprintf("ev-%05d", i))
		}
		ev := &event.Event{ID: fmt.Sprintf("ev-%05d", i), Action: "page.visit", Time: base.Add(time.Duration(i) * time.Second), UUID: uuid}
		msg, err := natsbus.Msg(natsbus.CustomerSubject("herald.events.app", uuid), ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	// On the plain subject, without id or time: one far back, one near the end.
	plain := func(uuid string) uint64 {
		ack, err := js.Publish(ctx, "herald.events.web", fmt.Appendf(nil, `{"action":"page.visit","uuid":%q}`, uuid))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	_ = plain("recent") // ... is now beyond the last 10 messages after these:
	for i := range 20 {
		if _, err := js.PublishMsg(ctx, mustMsg(t, fmt.Sprintf("filler-%d", i), "busy-0")); err != nil {
			t.Fatal(err)
		}
	}
	lastPlain := plain("recent")
	// A merged customer's event published again on the known one's subject.
	again := mustMsg(t, "ev-merged", "old")
	again.Subject = natsbus.CustomerSubject("herald.events.app", "recent")
	again.Header.Set(natsbus.CustomerHeader, "recent")
	if _, err := js.PublishMsg(ctx, again); err != nil {
		t.Fatal(err)
	}

	ids := func(act *ingest.Activity) []string {
		var out []string
		for _, ev := range act.Events {
			out = append(out, ev.ID)
		}
		return out
	}
	act, err := ingest.RecentActivity(ctx, js, "old", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(act), old) {
		t.Errorf("old: %v, want %v", ids(act), old)
	}
	act, err = ingest.RecentActivity(ctx, js, "old", 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(act), old[1:]) {
		t.Errorf("old, keep 2: %v, want %v", ids(act), old[1:])
	}

	act, err = ingest.RecentActivity(ctx, js, "recent", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(act)
	if len(got) != 3 || !slices.Equal(got[:2], recent) {
		t.Fatalf("recent: %v, want %v and the last plain event", got, recent)
	}
	if act.PlainScan != 10 {
		t.Errorf("plain scan %d, want 10", act.PlainScan)
	}
	// The plain event has the id and time the consumer gives it.
	last := act.Events[2]
	m, err := mustStream(t, js).GetMsg(ctx, lastPlain)
	if err != nil {
		t.Fatal(err)
	}
	if want := event.DeriveID(m.Time.UTC(), natsbus.EventsStream, fmt.Sprint(lastPlain)); last.ID != want || !last.Time.Equal(m.Time) {
		t.Errorf("plain event id %s at %s, want %s at %s", last.ID, last.Time, want, m.Time)
	}

	if act, err := ingest.RecentActivity(ctx, js, "nobody", 10, 10); err != nil || len(act.Events) != 0 || act.PlainScan != 10 {
		t.Errorf("nobody: %+v, %v", act, err)
	}
}

func mustMsg(t *testing.T, id, uuid string) *nats.Msg {
	t.Helper()
	msg, err := natsbus.Msg(natsbus.CustomerSubject("herald.events.app", uuid), &event.Event{ID: id, Action: "page.visit", Time: time.Now(), UUID: uuid})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func mustStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
