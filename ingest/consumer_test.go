package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// waitFor bounds every wait of these tests.
const waitFor = 15 * time.Second

// setup starts a JetStream with Herald's resources.
func setup(t *testing.T) (jetstream.JetStream, *natsbus.Resources) {
	t.Helper()
	_, js := natstest.Start(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("set up jetstream: %v", err)
	}
	return js, res
}

// eventJSON is a valid event of customer uuid.
func eventJSON(id, uuid string) string {
	return fmt.Sprintf(`{"id":%q,"action":"page.visit","uuid":%q}`, id, uuid)
}

// publish publishes each message to subject, in order.
func publish(t *testing.T, js jetstream.JetStream, subject string, data ...string) {
	t.Helper()
	for _, d := range data {
		if _, err := js.Publish(t.Context(), subject, []byte(d)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// eventually polls cond until it holds, and fails the test if it does not
// within waitFor. cond returns whether it holds and, if not, what it saw.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw %s", waitFor, what, saw)
		}
		<-tick.C
	}
}

// settled waits until every message of the consumer is delivered and
// settled (acked or terminated), and returns the consumer's info.
func settled(t *testing.T, c jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, "every message settled", func() (bool, string) {
		var err error
		if info, err = c.Info(t.Context()); err != nil {
			return false, err.Error()
		}
		return info.NumPending == 0 && info.NumAckPending == 0, fmt.Sprintf("%d pending, %d waiting for their ack", info.NumPending, info.NumAckPending)
	})
	return info
}

// running is a Consumer's Run under way.
type running struct {
	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
	err    error
}

// start runs c until stop is called or the test ends.
func start(t *testing.T, c *ingest.Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("run consumer: %v", err)
		}
	})
	return r
}

// stop cancels the run and waits for Run to return its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	r.once.Do(func() {
		select {
		case r.err = <-r.errc:
		case <-time.After(waitFor):
			r.err = fmt.Errorf("run did not return within %v of its context ending", waitFor)
		}
	})
	return r.err
}

// calls records the events a handler was called with, in order.
type calls struct {
	mu  sync.Mutex
	ids []string
}

// add records a call with id and returns how many calls with id there
// were, this one included.
func (c *calls) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	n := 0
	for _, x := range c.ids {
		if x == id {
			n++
		}
	}
	return n
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

func (c *calls) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.ids {
		if x == id {
			n++
		}
	}
	return n
}

// recordDeadLetters keeps dead letters with natsbus.DeadLetter, as serve
// does, and records their reasons.
type deadLetters struct {
	js      jetstream.JetStream
	mu      sync.Mutex
	reasons []string
	fail    int // how many of the first calls fail
}

func (d *deadLetters) keep(ctx context.Context, msg jetstream.Msg, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail > 0 {
		d.fail--
		return errors.New("dead-letter stream unavailable")
	}
	if err := natsbus.DeadLetter(ctx, d.js, msg, reason, time.Now()); err != nil {
		return err
	}
	d.reasons = append(d.reasons, reason.Error())
	return nil
}

func (d *deadLetters) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reasons)
}

func TestConsumerHandlesEachCustomersEventsInOrder(t *testing.T) {
	js, res := setup(t)
	customers := []string{"ann", "bob", "cat"}
	const perCustomer = 40
	var msgs []string
	for i := range perCustomer {
		for _, c := range customers {
			msgs = append(msgs, eventJSON(fmt.Sprintf("%s-%02d", c, i), c))
		}
	}
	publish(t, js, "herald.events.test", msgs...)

	var (
		mu      sync.Mutex
		handled = map[string][]string{}
		total   int
	)
	dead := &deadLetters{js: js}
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: dead.keep,
		Workers:    4,
		Handle: func(ctx context.Context, ev *event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			handled[ev.UUID] = append(handled[ev.UUID], ev.ID)
			total++
			return nil
		},
	})
	eventually(t, "every event handled", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return total >= len(msgs), fmt.Sprintf("%d of %d", total, len(msgs))
	})
	info := settled(t, res.Consumer)
	if info.Delivered.Consumer != uint64(len(msgs)) {
		t.Errorf("%d deliveries, want %d (one per event)", info.Delivered.Consumer, len(msgs))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range customers {
		got := handled[c]
		want := slices.Clone(got)
		slices.Sort(want)
		if len(got) != perCustomer || !slices.Equal(got, want) {
			t.Errorf("customer %s: events handled in the order %v, want %d events in publish order", c, got, perCustomer)
		}
	}
	if d := dead.list(); len(d) > 0 {
		t.Errorf("dead letters %q, want none", d)
	}
}

func TestConsumerFailureHoldsOnlyItsCustomer(t *testing.T) {
	js, res := setup(t)
	publish(t, js, "herald.events.test",
		eventJSON("a1", "ann"), eventJSON("a2", "ann"), eventJSON("a3", "ann"),
		eventJSON("b1", "bob"), eventJSON("b2", "bob"), eventJSON("b3", "bob"))

	var rec calls
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: (&deadLetters{js: js}).keep,
		Backoff:    func(uint64) time.Duration { return 100 * time.Millisecond },
		Handle: func(ctx context.Context, ev *event.Event) error {
			if rec.add(ev.ID) <= 2 && ev.ID == "a1" {
				return errors.New("smtp server unavailable")
			}
			return nil
		},
	})
	eventually(t, "every event handled", func() (bool, string) {
		got := rec.list()
		return len(got) == 8, fmt.Sprint(got)
	})
	settled(t, res.Consumer)

	got := rec.list()
	var ann, bob []string
	for _, id := range got {
		if id[0] == 'a' {
			ann = append(ann, id)
		} else {
			bob = append(bob, id)
		}
	}
	if want := []string{"a1", "a1", "a1", "a2", "a3"}; !slices.Equal(ann, want) {
		t.Errorf("ann's events handled in the order %v, want %v", ann, want)
	}
	if want := []string{"b1", "b2", "b3"}; !slices.Equal(bob, want) {
		t.Errorf("bob's events handled in the order %v, want %v", bob, want)
	}
	// Bob's events do not wait for ann's retry.
	firstTry := slices.Index(got, "a1")
	retry := firstTry + 1 + slices.Index(got[firstTry+1:], "a1")
	if slices.Index(got, "b3") > retry {
		t.Errorf("calls %v: bob's events waited for the retry of a1", got)
	}
}

func TestConsumerBacksOffMoreWithEachDelivery(t *testing.T) {
	js, res := setup(t)
	publish(t, js, "herald.events.test", eventJSON("e1", "ann"))

	var (
		mu     sync.Mutex
		asked  []uint64
		starts []time.Time
	)
	backoff := func(n uint64) time.Duration { return time.Duration(n) * 40 * time.Millisecond }
	done := make(chan struct{})
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: (&deadLetters{js: js}).keep,
		Backoff: func(n uint64) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, n)
			return backoff(n)
		},
		Handle: func(ctx context.Context, ev *event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			if len(starts) <= 3 {
				return errors.New("smtp server unavailable")
			}
			close(done)
			return nil
		},
	})
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("event not handled within %v", waitFor)
	}
	settled(t, res.Consumer)

	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 2, 3}; !slices.Equal(asked, want) {
		t.Errorf("backoff asked for deliveries %v, want %v", asked, want)
	}
	for i := 1; i < len(starts); i++ {
		if gap, least := starts[i].Sub(starts[i-1]), backoff(uint64(i)); gap < least {
			t.Errorf("delivery %d came %v after delivery %d, want at least %v", i+1, gap, i, least)
		}
	}
}

func TestConsumerKeepsQueuedEventsInProgress(t *testing.T) {
	_, js := natstest.Start(t)
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PROGRESS", Subjects: []string{"progress.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	// The Consumer takes the ack wait from the consumer's configuration.
	cons, err := stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{
		Durable: "slow", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	// One worker takes 400ms an event: the fourth waits 1.2s in the
	// worker's queue, longer than the ack wait.
	const n = 4
	for i := range n {
		publish(t, js, "progress.test", eventJSON(fmt.Sprintf("e%d", i), "ann"))
	}
	var rec calls
	start(t, &ingest.Consumer{
		Consumer:   cons,
		DeadLetter: func(context.Context, jetstream.Msg, error) error { return errors.New("no dead letters here") },
		Workers:    1,
		Handle: func(ctx context.Context, ev *event.Event) error {
			rec.add(ev.ID)
			work := time.NewTimer(400 * time.Millisecond)
			defer work.Stop()
			select {
			case <-work.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	eventually(t, "every event handled", func() (bool, string) {
		got := rec.list()
		return len(got) >= n, fmt.Sprint(got)
	})
	info := settled(t, cons)
	if got, want := rec.list(), []string{"e0", "e1", "e2", "e3"}; !slices.Equal(got, want) {
		t.Errorf("handled %v, want %v, each once", got, want)
	}
	if info.Delivered.Consumer != n {
		t.Errorf("%d deliveries, want %d: queued events were redelivered", info.Delivered.Consumer, n)
	}
}

func TestConsumerDrainsAtShutdown(t *testing.T) {
	js, res := setup(t)
	const n = 20
	var all []string
	for i := range n {
		id := fmt.Sprintf("e%02d", i)
		all = append(all, id)
		publish(t, js, "herald.events.test", eventJSON(id, fmt.Sprintf("c%d", i%5)))
	}

	const workers = 2
	var first calls
	started := make(chan struct{}, n)
	release := make(chan struct{})
	run := start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: (&deadLetters{js: js}).keep,
		Workers:    workers,
		Handle: func(ctx context.Context, ev *event.Event) error {
			first.add(ev.ID)
			started <- struct{}{}
			<-release
			return nil
		},
	})
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatalf("no event handled within %v", waitFor)
	}
	// More events are pulled than the workers hold: some wait in queues.
	eventually(t, "events queued in the workers", func() (bool, string) {
		info, err := res.Consumer.Info(t.Context())
		if err != nil {
			return false, err.Error()
		}
		return info.NumAckPending > workers, fmt.Sprintf("%d events pulled", info.NumAckPending)
	})
	run.cancel()
	close(release)
	if err := run.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	info, err := res.Consumer.Info(t.Context())
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	handled := first.list()
	if info.NumAckPending != 0 || info.Delivered.Consumer != uint64(len(handled)) {
		t.Fatalf("after shutdown: %d events delivered, %d handled, %d not acked; want every event delivered handled and acked",
			info.Delivered.Consumer, len(handled), info.NumAckPending)
	}

	var second calls
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: (&deadLetters{js: js}).keep,
		Workers:    workers,
		Handle: func(ctx context.Context, ev *event.Event) error {
			second.add(ev.ID)
			return nil
		},
	})
	eventually(t, "the rest handled by the next run", func() (bool, string) {
		got := second.list()
		return len(handled)+len(got) >= n, fmt.Sprint(got)
	})
	info = settled(t, res.Consumer)
	got := append(handled, second.list()...)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("events handled over both runs: %v, want each of %v once", got, all)
	}
	if info.Delivered.Consumer != n {
		t.Errorf("%d deliveries, want %d: events were redelivered", info.Delivered.Consumer, n)
	}
}

func TestConsumerRunNeedsItsFields(t *testing.T) {
	_, res := setup(t)
	handle := func(context.Context, *event.Event) error { return nil }
	keep := func(context.Context, jetstream.Msg, error) error { return nil }
	tests := []struct {
		name string
		c    *ingest.Consumer
		want string
	}{
		{"no consumer", &ingest.Consumer{Handle: handle, DeadLetter: keep}, "no JetStream consumer"},
		{"no handler", &ingest.Consumer{Consumer: res.Consumer, DeadLetter: keep}, "no handler"},
		{"no dead letters", &ingest.Consumer{Consumer: res.Consumer, Handle: handle}, "no dead-letter function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
