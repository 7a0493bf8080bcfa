package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
)

// customerIDs returns the ids of the events CustomerEvents passes for
// uuid, with their sequences, checking that they come in stream order.
func customerIDs(t *testing.T, js jetstream.JetStream, uuid string, r natsbus.HistoryRange) []string {
	t.Helper()
	var ids []string
	var last uint64
	err := natsbus.CustomerEventsIn(t.Context(), js, uuid, r, func(m *jetstream.RawStreamMsg) error {
		if m.Sequence <= last {
			t.Errorf("sequence %d after %d", m.Sequence, last)
		}
		last = m.Sequence
		if m.Time.IsZero() || len(m.Data) == 0 {
			t.Errorf("message %d without time or data: %+v", m.Sequence, m)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
		return nil
	})
	if err != nil {
		t.Fatalf("CustomerEvents %q: %v", uuid, err)
	}
	return ids
}

// A customer's events are found by subject, in stream order, on a stream
// without partitions and, after it is partitioned, on both subject forms;
// other customers' events and plain subjects are not among them, and no
// consumer is created.
func TestCustomerEvents(t *testing.T) {
	_, js := startServer(t)
	ctx := t.Context()
	res, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	uuids := []string{"anna-7f3c", "bob", "a b/c", "bob-2", "~x"}
	want := map[string][]string{}
	publish := func(round string) {
		t.Helper()
		pub := natsbus.NewPublisher(js, "herald.events.cli")
		for i := range 30 {
			uuid := uuids[i%len(uuids)]
			id := fmt.Sprintf("%s-%02d-%s", round, i, natsbus.CustomerToken(uuid))
			if _, err := pub.PublishOn(ctx, "herald.events.cli", &event.Event{ID: id, Action: "page.visit", Time: time.Now(), UUID: uuid}); err != nil {
				t.Fatal(err)
			}
			want[uuid] = append(want[uuid], id)
			// A plain subject, which names the customer in the body only.
			if _, err := js.Publish(ctx, "herald.events.web", fmt.Appendf(nil, `{"action":"page.visit","uuid":%q}`, uuid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("a")
	for _, uuid := range uuids {
		if got := customerIDs(t, js, uuid, natsbus.HistoryRange{}); !slices.Equal(got, want[uuid]) {
			t.Errorf("%q: %v, want %v", uuid, got, want[uuid])
		}
	}
	if got := customerIDs(t, js, "nobody", natsbus.HistoryRange{}); len(got) != 0 {
		t.Errorf("nobody: %v", got)
	}

	// Partitioned: the events stored before stay on herald.events.*.<token>,
	// the later ones go to herald.part.<p>.*.<token>; both are found, in
	// order.
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	publish("b")
	for _, uuid := range uuids {
		if got := customerIDs(t, js, uuid, natsbus.HistoryRange{}); !slices.Equal(got, want[uuid]) {
			t.Errorf("partitioned %q: %v, want %v", uuid, got, want[uuid])
		}
	}
	// A range: the second half of the stream holds round b only.
	info, err := res.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := customerIDs(t, js, "bob", natsbus.HistoryRange{From: 61}); !slices.Equal(got, want["bob"][6:]) {
		t.Errorf("bob from 61: %v, want %v", got, want["bob"][6:])
	}
	if got := customerIDs(t, js, "bob", natsbus.HistoryRange{From: 1, To: 60}); !slices.Equal(got, want["bob"][:6]) {
		t.Errorf("bob to 60: %v, want %v", got, want["bob"][:6])
	}

	// The plain subjects are walked apart.
	plain := 0
	if err := natsbus.PlainEvents(ctx, js, natsbus.HistoryRange{}, func(m *jetstream.RawStreamMsg) error {
		if m.Subject != "herald.events.web" {
			t.Errorf("plain walk passed %s", m.Subject)
		}
		plain++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if plain != 60 {
		t.Errorf("%d plain events, want 60", plain)
	}

	// fn's error stops the walk and comes back.
	stop := errors.New("enough")
	n := 0
	err = natsbus.CustomerEvents(ctx, js, "anna-7f3c", func(*jetstream.RawStreamMsg) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("stopped walk: %v after %d", err, n)
	}

	after, err := res.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.Consumers != info.State.Consumers {
		t.Errorf("%d consumers after the reads, %d before", after.State.Consumers, info.State.Consumers)
	}
}

// A missing events stream is an error naming it.
func TestCustomerEventsNoStream(t *testing.T) {
	_, js := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := natsbus.CustomerEvents(ctx, js, "anna", func(*jetstream.RawStreamMsg) error { return nil })
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("err = %v, want stream not found", err)
	}
}
