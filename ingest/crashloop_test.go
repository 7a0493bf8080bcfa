package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// crashConsumer is a consumer with a short ack wait, so that an event
// whose process died comes back soon.
const crashConsumer = "crashy"

// crashSetup starts a JetStream with Herald's resources and a consumer
// with a short ack wait, and returns the server's URL.
func crashSetup(t *testing.T) (string, jetstream.JetStream, *natsbus.Resources) {
	t.Helper()
	srv, js := natstest.Start(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("set up jetstream: %v", err)
	}
	_, err = res.Events.CreateConsumer(t.Context(), jetstream.ConsumerConfig{
		Durable: crashConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	return srv.ClientURL(), js, res
}

// process is one Herald process: its own connection, and a Consumer
// running on it.
type process struct {
	nc     *nats.Conn
	stop   context.CancelFunc
	done   chan error
	killed sync.Once
}

// startProcess connects to url and runs a Consumer on crashConsumer with
// handle, as a fresh process would.
func startProcess(t *testing.T, url string, maxCrashes int, backoff time.Duration, handle ingest.HandlerFunc, reg prometheus.Registerer) *process {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), natsbus.EventsStream, crashConsumer)
	if err != nil {
		t.Fatalf("look up consumer: %v", err)
	}
	c := &ingest.Consumer{
		Consumer:   cons,
		Handle:     handle,
		DeadLetter: (&deadLetters{js: js}).keep,
		Attempts:   ingest.NewAttempts(js),
		MaxCrashes: maxCrashes,
		Backoff:    func(uint64) time.Duration { return backoff },
		Drain:      10 * time.Millisecond,
	}
	if reg != nil {
		c.Metrics = ingest.NewMetrics(reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{nc: nc, stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- c.Run(ctx) }()
	t.Cleanup(func() { p.kill(t) })
	return p
}

// kill ends the process as a crash does: its connection goes first, so it
// settles nothing, then its Consumer stops.
func (p *process) kill(t *testing.T) {
	t.Helper()
	p.killed.Do(func() {
		p.nc.Close()
		p.stop()
		select {
		case <-p.done:
		case <-time.After(waitFor):
			t.Errorf("the consumer did not stop within %v", waitFor)
		}
	})
}

// An event whose handling never finishes — the process dies each time —
// is kept as a poison dead letter, unhandled, on the delivery after the
// third attempt died; the customer's next event goes on.
func TestConsumerEndsCrashLoops(t *testing.T) {
	url, js, res := crashSetup(t)
	publish(t, js, "herald.events.test", eventJSON("poison", "ann"))

	var rec calls
	started := make(chan struct{}, 10)
	// The handler never returns by itself: it stands for an event that
	// takes the process down (out of memory, a crash in a dependency).
	hang := func(ctx context.Context, ev *event.Event) error {
		rec.add(ev.ID)
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	const crashes = 3 // the default MaxCrashes
	for i := range crashes {
		p := startProcess(t, url, 0, 20*time.Millisecond, hang, nil)
		select {
		case <-started:
		case <-time.After(waitFor):
			t.Fatalf("crash %d: the event was not delivered again within %v", i+1, waitFor)
		}
		p.kill(t)
	}
	if got := rec.count("poison"); got != crashes {
		t.Fatalf("handled %d times before the last restart, want %d", got, crashes)
	}

	reg := prometheus.NewRegistry()
	publish(t, js, "herald.events.test", eventJSON("after", "ann"))
	startProcess(t, url, 0, 20*time.Millisecond, func(ctx context.Context, ev *event.Event) error {
		rec.add(ev.ID)
		if ev.ID == "poison" {
			return errors.New("the poison was handled again")
		}
		return nil
	}, reg)
	eventually(t, "the customer's next event handled", func() (bool, string) {
		return rec.count("after") == 1, fmt.Sprint(rec.list())
	})
	cons, err := js.Consumer(t.Context(), natsbus.EventsStream, crashConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info := settled(t, cons)
	if want := []string{"poison", "poison", "poison", "after"}; !slices.Equal(rec.list(), want) {
		t.Errorf("handled %v, want %v", rec.list(), want)
	}
	if info.Delivered.Stream != 2 || info.NumRedelivered != 0 {
		t.Errorf("consumer %+v, want both events settled", info.Delivered)
	}

	dead, err := res.Dead.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatalf("read the dead letter: %v", err)
	}
	if got, want := dead.Header.Get(natsbus.HeaderReason), "poison: delivered 3 times without completing"; got != want {
		t.Errorf("dead letter reason %q, want %q", got, want)
	}
	if got := dead.Header.Get(natsbus.HeaderEventID); got != "poison" {
		t.Errorf("dead letter %s %q, want poison", natsbus.HeaderEventID, got)
	}
	if got := value(t, reg, "herald_events_dead_lettered_total", "reason", "poison"); got != 1 {
		t.Errorf(`herald_events_dead_lettered_total{reason="poison"} = %v, want 1`, got)
	}
	// The count is gone with the event.
	kv, err := js.KeyValue(t.Context(), natsbus.AttemptsBucket)
	if err != nil {
		t.Fatalf("open %s: %v", natsbus.AttemptsBucket, err)
	}
	if e, err := kv.Get(t.Context(), natsbus.EventsStream+"."+crashConsumer+".1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("attempts of the poison: %v, %v; want none", e, err)
	}
}

// Retries — the handler fails and the event is nak'ed — and events sent
// back to wait behind their customer's failed one are not crashes, even
// with MaxCrashes 1, and leave no count behind.
func TestConsumerRetriesAreNotCrashes(t *testing.T) {
	url, js, res := crashSetup(t)
	publish(t, js, "herald.events.test", eventJSON("flaky", "ann"), eventJSON("after", "ann"))

	var rec calls
	// The backoff outlasts the bookkeeping, so "after" waits behind flaky.
	p := startProcess(t, url, 1, 300*time.Millisecond, func(ctx context.Context, ev *event.Event) error {
		if rec.add(ev.ID) <= 4 && ev.ID == "flaky" {
			return errors.New("smtp server unavailable")
		}
		return nil
	}, nil)
	eventually(t, "both events handled", func() (bool, string) {
		return rec.count("after") == 1, fmt.Sprint(rec.list())
	})
	cons, err := js.Consumer(t.Context(), natsbus.EventsStream, crashConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info := settled(t, cons)
	p.kill(t)
	if want := []string{"flaky", "flaky", "flaky", "flaky", "flaky", "after"}; !slices.Equal(rec.list(), want) {
		t.Errorf("handled %v, want %v", rec.list(), want)
	}
	if info.Delivered.Consumer < 7 {
		t.Errorf("%d deliveries; want at least 7, after waiting behind flaky", info.Delivered.Consumer)
	}
	if dead, err := res.Dead.Info(t.Context()); err != nil || dead.State.Msgs != 0 {
		t.Errorf("dead letters: %+v, %v; want none", dead, err)
	}
	kv, err := js.KeyValue(t.Context(), natsbus.AttemptsBucket)
	if err != nil {
		t.Fatalf("open %s: %v", natsbus.AttemptsBucket, err)
	}
	if keys, err := kv.ListKeys(t.Context()); err != nil {
		t.Fatal(err)
	} else {
		var left []string
		for k := range keys.Keys() {
			left = append(left, k)
		}
		if len(left) != 0 {
			t.Errorf("counts left behind: %v", left)
		}
	}
}
