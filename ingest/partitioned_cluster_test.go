package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/runner"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Engines sharing a partitioned events stream on a three-server cluster,
// as serve runs them: the applier with the single opt-in example's rules,
// the JetStream profile bucket, lazily cleared outboxes with leases, and
// an email effector that records each Message-ID (an effect's key) it
// sends. Each customer sends a burst of newsletter forms ticking and
// unticking the box; the order their events are handled in, the state
// their profile ends in and the emails sent are checked.

// Timings of the tests' set-up: short, so that failing over takes seconds.
var scalePartitioned = natsbus.PartitionedConfig{AckWait: 4 * time.Second, PinnedTTL: 2 * time.Second, EngineTTL: 2 * time.Second}

const (
	scalePartitions = 12
	scaleCustomers  = 100
	scaleLeaseFor   = 10 * time.Second
)

// scale is a cluster, engines on it, and what they did.
type scale struct {
	t       *testing.T
	cluster *natstest.Cluster
	rules   *rules.Set
	signer  *links.Signer
	js      jetstream.JetStream // the test's own client
	store   *profile.KV

	mu      sync.Mutex
	engines map[string]*scaleEngine
	sent    map[string][]sending // effect key -> each time it was performed
	marked  map[string]time.Time // "engine key" -> when its mark was stored
	handled map[string][]int     // customer -> the number of each event handled, in the order handling began
	by      map[string][]string  // customer -> the engine that handled each
	plans   []*burst
}

type sending struct {
	engine string
	at     time.Time
}

// scaleEngine is one engine: its own connection, consumer and applier.
type scaleEngine struct {
	name   string
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// burst is one customer's events: the newsletter box ticked or unticked.
type burst struct {
	uuid   string
	plain  bool // published on herald.events.web, for the router
	values []string
}

func newScale(t *testing.T) *scale {
	t.Helper()
	if testing.Short() {
		t.Skip("runs engines on a three-server cluster")
	}
	set, err := rules.Loader{}.Load("../examples/newsletter-single-opt-in/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := links.NewSigner(links.Key{ID: "t1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	s := &scale{t: t, cluster: natstest.StartCluster(t, 3), rules: set, signer: signer,
		engines: map[string]*scaleEngine{}, sent: map[string][]sending{}, marked: map[string]time.Time{}, handled: map[string][]int{}, by: map[string][]string{}}
	_, s.js = s.cluster.Connect(t)
	s.setup(s.js)
	s.store = profile.NewKV(s.profiles(s.js))
	return s
}

// profiles opens the profile bucket, which Setup made answer reads from
// its leader only.
func (s *scale) profiles(js jetstream.JetStream) jetstream.KeyValue {
	s.t.Helper()
	var kv jetstream.KeyValue
	s.eventually(30*time.Second, func() error {
		st, err := js.Stream(s.t.Context(), "KV_"+natsbus.ProfileBucket)
		if err != nil {
			return err
		}
		if st.CachedInfo().Config.AllowDirect {
			s.t.Fatal("the profile bucket answers direct gets from any replica")
		}
		kv, err = js.KeyValue(s.t.Context(), natsbus.ProfileBucket)
		return err
	})
	return kv
}

// setup runs Setup as each engine does, retrying while leaders are
// elected.
func (s *scale) setup(js jetstream.JetStream) *natsbus.Resources {
	s.t.Helper()
	var res *natsbus.Resources
	s.eventually(30*time.Second, func() error {
		var err error
		res, err = natsbus.Setup(s.t.Context(), js, natsbus.SetupConfig{Replicas: 3, Partitions: scalePartitions, Partitioned: scalePartitioned})
		return err
	})
	return res
}

// start starts an engine named name.
func (s *scale) start(name string) *scaleEngine {
	s.t.Helper()
	nc, err := nats.Connect(s.cluster.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	res := s.setup(js)
	store := profile.NewKV(s.profiles(js))
	var marks jetstream.KeyValue
	s.eventually(30*time.Second, func() error {
		var err error
		marks, err = natsbus.Effects(s.t.Context(), js)
		return err
	})
	mail := actions.EffectorFunc(func(_ context.Context, e *actions.Effect) (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sent[e.Key] = append(s.sent[e.Key], sending{engine: name, at: time.Now()})
		return false, nil
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testLog{s.t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("engine", name)
	}
	apply, err := runner.New(runner.Config{
		Engine:    engine.New(s.rules),
		Store:     store,
		Effectors: actions.Registry{"email": mail},
		Linker:    runner.SignedLinks(s.signer, "http://links.test"),
		Owner:     name,
		LeaseFor:  scaleLeaseFor,
		LazyClear: true,
		Marks:     &scaleMarks{EffectMarks: natsbus.EffectMarks{KV: marks, Engine: name}, s: s},
		Logger:    logger,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &scaleEngine{name: name, nc: nc, cancel: cancel, done: make(chan error, 1)}
	c := &ingest.Consumer{
		Partitions: res.Partitions,
		Engine:     name,
		Handle: func(ctx context.Context, ev *event.Event) error {
			s.began(name, ev)
			return apply.Handle(ctx, ev)
		},
		DeadLetter: func(ctx context.Context, msg jetstream.Msg, reason error) error {
			s.t.Errorf("engine %s: dead letter %s: %v", name, msg.Subject(), reason)
			return natsbus.DeadLetter(ctx, js, msg, reason, time.Now())
		},
		Wants:     apply.Wants,
		Workers:   4,
		Canonical: canonical(store),
		Released:  func(ctx context.Context) error { return apply.Flush(ctx, 0) },
		Drain:     10 * time.Second,
		Logger:    logger,
	}
	go func() {
		// Clear performed effects from quiet customers' records, as serve
		// does.
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = apply.Flush(ctx, 500*time.Millisecond)
			}
		}
	}()
	go func() {
		err := c.Run(ctx)
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = apply.Flush(fctx, 0)
		fcancel()
		e.done <- err
	}()
	s.mu.Lock()
	s.engines[name] = e
	s.mu.Unlock()
	s.t.Cleanup(func() { e.stop(s.t) })
	return e
}

// scaleMarks are the marks serve wires, recording which were stored.
type scaleMarks struct {
	natsbus.EffectMarks
	s *scale
}

func (m *scaleMarks) Mark(ctx context.Context, key string) error {
	err := m.EffectMarks.Mark(ctx, key)
	if err == nil {
		m.s.mu.Lock()
		m.s.marked[m.Engine+" "+key] = time.Now()
		m.s.mu.Unlock()
	}
	return err
}

// canonical is the Consumer.Canonical serve wires.
func canonical(store profile.Store) ingest.CanonicalFunc {
	return func(ctx context.Context, uuid string) (string, bool, error) {
		res, err := profile.Resolve(ctx, store, uuid)
		switch {
		case errors.Is(err, profile.ErrNotFound), errors.Is(err, profile.ErrAliasLoop):
			return uuid, false, nil
		case err != nil:
			return "", false, err
		}
		return res.UUID, res.UUID != uuid || res.Record.Profile.Known(), nil
	}
}

// stop stops the engine as serve does at SIGTERM.
func (e *scaleEngine) stop(t *testing.T) {
	e.cancel()
	select {
	case <-e.done:
		e.done <- nil // for a second stop
	case <-time.After(30 * time.Second):
		t.Errorf("engine %s did not stop", e.name)
	}
}

// kill ends the engine as a crash would: its connection goes at once, and
// with it its acks, its pins and its key in the engines bucket, which run
// out on the servers.
func (e *scaleEngine) kill(t *testing.T) {
	e.nc.Close()
	e.stop(t)
}

// began records that an engine began handling ev.
func (s *scale) began(engine string, ev *event.Event) {
	uuid, n, ok := strings.Cut(ev.ID, ".")
	if !ok {
		return
	}
	var i int
	fmt.Sscan(n, &i)
	s.mu.Lock()
	s.handled[uuid] = append(s.handled[uuid], i)
	s.by[uuid] = append(s.by[uuid], engine)
	s.mu.Unlock()
}

// plan makes each customer's burst: n values, at random, the first one
// ticking the box; every tenth customer publishes on a plain subject.
func (s *scale) plan(n int, rng *rand.Rand) {
	for c := range scaleCustomers {
		b := &burst{uuid: fmt.Sprintf("c%03d", c), plain: c%10 == 9, values: []string{"enabled"}}
		for range n - 1 {
			b.values = append(b.values, []string{"enabled", "disabled"}[rng.IntN(2)])
		}
		s.plans = append(s.plans, b)
	}
}

// publish publishes the events from..to (exclusive) of every customer's
// burst, each customer's in order, customers interleaved.
func (s *scale) publish(from, to int) {
	s.t.Helper()
	pub := natsbus.NewPublisher(s.js, natsbus.HTTPSubject)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := from; i < to; i++ {
				for c := w; c < len(s.plans); c += 4 {
					b := s.plans[c]
					ev := &event.Event{ID: fmt.Sprintf("%s.%d", b.uuid, i), Action: "form.submit", Label: "Newsletter", Time: time.Now().UTC().Truncate(time.Millisecond), UUID: b.uuid,
						Params: map[string]any{"form_type": "newsletter", "email": b.uuid + "@example.com", "newsletter_agreement_enabled": b.values[i]}}
					s.eventually(30*time.Second, func() error {
						ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
						defer cancel()
						if b.plain {
							data, err := ev.MarshalJSON()
							if err != nil {
								return err
							}
							_, err = s.js.Publish(ctx, "herald.events.web", data, jetstream.WithMsgID(ev.ID))
							return err
						}
						_, err := pub.PublishOn(ctx, natsbus.HTTPSubject, ev)
						return err
					})
				}
			}
		})
	}
	wg.Wait()
}

// waitHandled waits until every event published has been handled and
// acknowledged, and every customer's profile is as their burst implies.
func (s *scale) waitHandled(within time.Duration) { s.waitHandledUpTo(-1, within) }

// waitHandledUpTo waits until every event published has been handled and
// acknowledged, and every customer's profile is as the events of their
// burst up to index last (-1: all) imply.
func (s *scale) waitHandledUpTo(last int, within time.Duration) {
	s.t.Helper()
	s.eventually(within, func() error {
		for _, b := range s.plans {
			res, err := profile.Resolve(s.t.Context(), s.store, b.uuid)
			if err != nil {
				return fmt.Errorf("customer %s: %w", b.uuid, err)
			}
			got, _ := res.Record.Profile.Attributes["newsletterAgreement"].(string)
			want := b.values[len(b.values)-1]
			if last >= 0 {
				want = b.values[last]
			}
			if got != want {
				s.mu.Lock()
				defer s.mu.Unlock()
				return fmt.Errorf("customer %s: agreement %q, want %q (values %v, handled %v by %v, applied %v)", b.uuid, got, want, b.values, s.handled[b.uuid], s.by[b.uuid], res.Record.Applied)
			}
		}
		events, err := s.js.Stream(s.t.Context(), natsbus.EventsStream)
		if err != nil {
			return err
		}
		for info := range events.ListConsumers(s.t.Context()).Info() {
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return fmt.Errorf("consumer %s: %d events pending, %d unacknowledged", info.Name, info.NumPending, info.NumAckPending)
			}
		}
		return nil
	})
}

// check checks what the engines did: each customer's events handled in the
// order published (a redelivery may be handled again later), and one email per
// form that enabled a disabled agreement, sent once. Emails sent again are
// allowed only when allowAgain says so.
func (s *scale) check(allowAgain func(key string, sends []sending) bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.plans {
		// A redelivered event is handled again (and applied no more), so
		// it may come again anywhere; each event's first handling must be
		// in order.
		var first []int
		seen := map[int]bool{}
		for _, n := range s.handled[b.uuid] {
			if !seen[n] {
				seen[n] = true
				first = append(first, n)
			}
		}
		if got := s.handled[b.uuid]; !slices.IsSorted(first) {
			s.t.Errorf("customer %s (partition %d): events handled in the order %v by %v", b.uuid, natsbus.PartitionOf(natsbus.CustomerToken(b.uuid), scalePartitions), got, s.by[b.uuid])
		}
	}
	want := map[string]bool{}
	for _, b := range s.plans {
		state := ""
		for i, v := range b.values {
			if v == "enabled" && state != "enabled" {
				want[fmt.Sprintf("%s.%d", b.uuid, i)] = true
			}
			state = v
		}
	}
	got := map[string]bool{}
	again := 0
	for key, sends := range s.sent {
		id, _, _ := strings.Cut(key, ".soi-subscribe.")
		got[id] = true
		if !want[id] {
			s.t.Errorf("email %s sent, but its form did not enable the agreement", key)
		}
		if len(sends) > 1 {
			again++
			if allowAgain == nil || !allowAgain(key, sends) {
				s.t.Errorf("email %s sent %d times: %v", key, len(sends), sends)
			}
		}
	}
	for id := range want {
		if !got[id] {
			uuid, _, _ := strings.Cut(id, ".")
			res, err := profile.Resolve(s.t.Context(), s.store, uuid)
			if err != nil {
				s.t.Errorf("no email for form %s, which enabled the agreement; customer: %v", id, err)
				continue
			}
			s.t.Errorf("no email for form %s, which enabled the agreement; handled %v by %v, applied %v, outbox %d, lease %+v",
				id, s.handled[uuid], s.by[uuid], res.Record.Applied, len(res.Record.Outbox), res.Record.Lease)
		}
	}
	s.t.Logf("%d emails, %d of them sent again", len(s.sent), again)
}

// eventually calls f until it succeeds, failing the test after within.
func (s *scale) eventually(within time.Duration, f func() error) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Three engines share the stream from the start: each customer's events
// are handled one at a time in the order published, every profile ends as
// its burst implies, and every email is sent once.
func TestPartitionedEnginesKeepEachCustomersOrder(t *testing.T) {
	s := newScale(t)
	for _, name := range []string{"e1", "e2", "e3"} {
		s.start(name)
	}
	s.plan(6, rand.New(rand.NewPCG(1, 2)))
	s.publish(0, 6)
	s.waitHandled(45 * time.Second)
	s.check(nil)
}

// An engine killed mid-stream, and started again: the other takes its
// partitions over once its key runs out, after the events it held come
// back, so order holds; the killed engine's events are all handled. An
// email may be sent again only if the killed engine sent it and died
// before its mark was stored: one it marked is not sent again by the
// engine taking over, though the record may still list it.
func TestPartitionedEngineKilledAndRestarted(t *testing.T) {
	s := newScale(t)
	e1 := s.start("e1")
	s.start("e2")
	s.plan(9, rand.New(rand.NewPCG(3, 4)))
	s.publish(0, 3)
	var killed time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		killed = time.Now()
		e1.kill(t)
	}()
	s.publish(3, 6)
	<-done
	time.Sleep(time.Second)
	s.start("e1")
	s.publish(6, 9)
	s.waitHandled(50 * time.Second)
	s.check(func(key string, sends []sending) bool {
		// s.mu is held.
		first := sends[0]
		marked, ok := s.marked["e1 "+key]
		return first.engine == "e1" && first.at.Before(killed) && (!ok || marked.After(killed))
	})
}

// A server killed mid-stream, and started again: leaders move, pins are
// taken again, and nothing is lost, reordered or sent twice. The engines
// have settled which partitions each takes before the server goes.
func TestPartitionedServerKilledAndRestarted(t *testing.T) {
	s := newScale(t)
	for _, name := range []string{"e1", "e2", "e3"} {
		s.start(name)
	}
	s.plan(9, rand.New(rand.NewPCG(5, 6)))
	s.publish(0, 3)
	s.waitHandledUpTo(2, 30*time.Second)
	info, err := s.js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	var victim *natstest.ClusterServer
	for _, srv := range s.cluster.Servers() {
		if srv.Name() == leader {
			victim = srv
		}
	}
	if victim == nil {
		t.Fatalf("no server leads the events stream (%q)", leader)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		victim.Kill()
	}()
	s.publish(3, 6)
	<-done
	victim.Restart()
	s.publish(6, 9)
	s.waitHandled(50 * time.Second)
	s.check(nil)
}

// Engines added mid-stream: partitions move to them as each finishes what
// it held, with nothing reordered or sent twice.
func TestPartitionedEnginesAdded(t *testing.T) {
	s := newScale(t)
	s.start("e1")
	s.plan(9, rand.New(rand.NewPCG(7, 8)))
	s.publish(0, 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(200 * time.Millisecond)
		s.start("e2")
		time.Sleep(500 * time.Millisecond)
		s.start("e3")
	}()
	s.publish(3, 6)
	<-done
	s.publish(6, 9)
	s.waitHandled(50 * time.Second)
	s.check(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	engines := map[string]bool{}
	for _, by := range s.by {
		for _, e := range by {
			engines[e] = true
		}
	}
	if len(engines) != 3 {
		t.Errorf("events handled by %v, want e1, e2 and e3", engines)
	}
}
