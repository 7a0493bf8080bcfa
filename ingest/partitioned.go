package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go/jetstream"
)

// Partitioned consumption: several engines share a partitioned events
// stream (natsbus.SetupConfig.Partitions), each customer's events handled
// by one engine at a time, in stream order.
//
//   - Membership. Every engine announces itself in the engines bucket and
//     follows the others (membership.go). From the same set of engines,
//     every engine computes the same assignment of partitions, and of the
//     router, to engines (assign).
//   - Ownership. An engine pulls only what is assigned to it. Each
//     partition consumer pins one client at a time (the pinned-client
//     priority policy), so even while two engines disagree about the
//     assignment, only one of them receives a partition's events. The pin
//     is the engine's lease on the partition: it keeps it by pulling at
//     least every fetchWait (with a pull that takes nothing when it has no
//     room), and holds it, as far as it is concerned, until PinnedTTL less
//     a margin after its last pull that went through. A pull refused for a
//     pin that moved (the consumer's leader changed, or the pin ran out)
//     means the partition may be someone else's.
//   - Handing over. An engine that lets go of a partition (it was assigned
//     elsewhere, or it stops) stops taking new events, finishes those it
//     holds, calls Consumer.Released and then unpins the consumer: the next
//     engine gets the partition at once, with nothing under way elsewhere.
//   - Taking over. An engine that gets a partition's pin checks the
//     consumer: if more events are delivered and unacknowledged than it
//     holds, another engine may still hold some (it died, or lost the pin
//     to a leader change). It then holds back the partition's events until
//     the others' are back in its hands (the consumer counts no more than
//     it holds) or could no longer be held elsewhere (AckWait + PinnedTTL
//     and a margin after it took over), and hands them out in stream
//     order. So a customer's later event never overtakes an earlier one
//     another engine was handling.
//   - A pin regained after a refused pull, with no delivery in between
//     (the consumer's delivery sequence goes on from the engine's last),
//     keeps the engine's events under way: nobody else received any.
//     Otherwise the engine drops what it held of the partition, unsettled,
//     to be delivered again.
//   - Events published without a customer in the subject are taken by
//     the router, which is assigned like a partition, and published
//     again on their customer's subject, one at a time in stream order.
//     An event on another customer's subject is published again on its
//     own; with Consumer.Canonical, one of an anonymous customer merged
//     into a known one is published again on the known customer's subject.

// CanonicalFunc returns the customer whose record the events of uuid apply
// to: uuid itself, or the known customer an anonymous one was merged into.
// final reports that the answer will never change (a merge is for good,
// and a known customer is never merged into another), so that it may be
// remembered.
type CanonicalFunc func(ctx context.Context, uuid string) (canonical string, final bool, err error)

// Timings of partitioned consumption.
const (
	// gateMargin is added to how long a new owner waits for events another
	// engine may hold: for timers and the pulls in between.
	gateMargin = 2 * time.Second
	// gateCheck is how often a waiting new owner asks the consumer whether
	// the others' events are back.
	gateCheck = 500 * time.Millisecond
	// drainPoll is how often an engine letting go of a partition checks
	// whether its events are all settled.
	drainPoll = 100 * time.Millisecond
)

// partitionedQueueSize returns how many jobs one worker's queue may have
// to take with p: every event every partition may hold, the second half
// for what comes back while a new owner waits.
func partitionedQueueSize(p *natsbus.Partitions) int {
	return max(len(p.Consumers)*partitionBudget(p)*2, 1)
}

// partitionBudget is how many events of one partition an engine holds at
// most: the consumers' max ack pending.
func partitionBudget(p *natsbus.Partitions) int {
	if len(p.Consumers) > 0 {
		if info := p.Consumers[0].CachedInfo(); info != nil && info.Config.MaxAckPending > 0 {
			return info.Config.MaxAckPending
		}
	}
	return natsbus.PartitionMaxAckPending
}

// engines is one partitioned Run of a Consumer.
type engines struct {
	c       *Consumer
	r       *run
	parts   *natsbus.Partitions
	queues  []chan job
	seed    maphash.Seed
	workCtx context.Context
	epoch   time.Time // since() counts from it, on the monotonic clock
	slots   []*partition
	drain   time.Duration

	failing atomic.Int32 // slots whose pulls fail
	fatal   chan error   // a slot cannot pull any more
}

// since is the time since e started, on the monotonic clock.
func (e *engines) since() time.Duration { return time.Since(e.epoch) }

// slotRun is a slot's goroutine.
type slotRun struct {
	stop     context.CancelFunc
	done     chan struct{}
	stopping bool
}

// runPartitioned consumes the partitions and the router assigned to this
// engine until ctx ends, then leaves the engines, lets go of everything,
// finishing what it holds, and returns; or returns the error that stopped
// a slot's pulls for good.
func (c *Consumer) runPartitioned(ctx, workCtx context.Context, r *run, queues []chan job) error {
	p := c.Partitions
	if len(p.Consumers) == 0 || p.Router == nil || p.Engines == nil || p.Stream == nil || p.JS == nil {
		return errors.New("run consumer: partitions incomplete")
	}
	drain := c.Drain
	if drain <= 0 {
		drain = 30 * time.Second
	}
	e := &engines{c: c, r: r, parts: p, queues: queues, seed: maphash.MakeSeed(), workCtx: workCtx,
		epoch: time.Now(), drain: drain, fatal: make(chan error, 1)}
	r.fwd = &forwarder{r: r, js: p.JS, canonical: c.Canonical, known: make(map[string]string)}
	budget := partitionBudget(p)
	for i, cons := range p.Consumers {
		e.slots = append(e.slots, &partition{e: e, index: i, name: natsbus.PartitionConsumerName(i), cons: cons, fl: newInflight(budget)})
	}
	e.slots = append(e.slots, &partition{e: e, index: len(p.Consumers), name: natsbus.RouterConsumer, router: true, cons: p.Router, fl: newInflight(budget)})

	beat := c.Heartbeat
	if beat <= 0 {
		beat = max(p.EngineTTL/4, 100*time.Millisecond)
	}
	m := &membership{kv: p.Engines, name: c.Engine, beat: beat, log: r.log}
	views := make(chan []string, 1)
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { m.run(bgCtx, views) })
	if r.metrics != nil {
		every := c.InfoEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		bg.Go(func() { e.sample(bgCtx, every) })
	}
	r.log.Info("joining engines", "engine", c.Engine, "partitions", len(p.Consumers))

	running := make([]*slotRun, len(e.slots))
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-e.fatal:
			break loop
		case v := <-views:
			e.assign(ctx, v, running)
		}
	}
	// Leave first, so that the others take over while this engine
	// finishes what it holds.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	m.leave(lctx)
	cancel()
	for _, s := range running {
		if s != nil && !s.stopping {
			s.stop()
		}
	}
	for _, s := range running {
		if s != nil {
			<-s.done
		}
	}
	stopBg()
	bg.Wait()
	r.metrics.ownedSet(0)
	return err
}

// assign starts the slots assigned to this engine among engines and lets
// go of the others.
func (e *engines) assign(ctx context.Context, engines []string, running []*slotRun) {
	owners := assign(engines, len(e.slots))
	var mine []int
	for i, s := range e.slots {
		cur := running[i]
		if cur != nil && cur.stopping {
			select {
			case <-cur.done:
				running[i], cur = nil, nil
			default:
			}
		}
		if owners[i] != e.c.Engine {
			if cur != nil && !cur.stopping {
				cur.stopping = true
				cur.stop()
			}
			continue
		}
		mine = append(mine, i)
		if cur != nil && !cur.stopping {
			continue
		}
		var prev <-chan struct{}
		if cur != nil {
			prev = cur.done // still letting go from an earlier assignment
		}
		sctx, stop := context.WithCancel(ctx)
		sr := &slotRun{stop: stop, done: make(chan struct{})}
		running[i] = sr
		go func() {
			defer close(sr.done)
			if prev != nil {
				<-prev
			}
			s.run(sctx)
		}()
	}
	e.r.metrics.ownedSet(len(mine))
	e.r.log.Info("engines changed", "engine", e.c.Engine, "engines", engines, "slots", describeSlots(mine, len(e.parts.Consumers)))
}

// describeSlots names the slots, the router by name.
func describeSlots(slots []int, partitions int) string {
	var parts []int
	router := false
	for _, s := range slots {
		if s == partitions {
			router = true
		} else {
			parts = append(parts, s)
		}
	}
	out := fmt.Sprintf("partitions %v", parts)
	if router {
		out += " and the router"
	}
	return out
}

// failed records that a slot's pulls started failing (failing true) or
// work again, for Consumer.Pulling.
func (e *engines) failed(failing bool) {
	if failing {
		e.failing.Add(1)
		e.c.pulling.Store(false)
		return
	}
	if e.failing.Add(-1) == 0 {
		e.c.pulling.Store(true)
	}
}

// sample records the figures of the consumers this engine holds, summed,
// now and every interval until ctx ends.
func (e *engines) sample(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var sum jetstream.ConsumerInfo
		for _, s := range e.slots {
			if !s.holding() {
				continue
			}
			info, err := s.cons.Info(ctx)
			if err != nil {
				continue
			}
			sum.NumPending += info.NumPending
			sum.NumAckPending += info.NumAckPending
			sum.NumRedelivered += info.NumRedelivered
		}
		e.r.metrics.sampled(&sum)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// forwarder publishes events again on the subject of their customer.
type forwarder struct {
	r         *run
	js        jetstream.JetStream
	canonical CanonicalFunc

	mu    sync.Mutex
	known map[string]string // uuid -> canonical customer, for final answers
}

// maxKnown bounds the canonical customers remembered.
const maxKnown = 100_000

// forward publishes j's event again on subject (natsbus.RouteMsg; customer
// names the known customer of a merged one, or is "") and acks j, counting
// it under reason. It returns an error when publishing failed; j is then
// left to its caller.
func (f *forwarder) forward(ctx context.Context, j job, subject, customer, reason string) error {
	msg, err := natsbus.RouteMsg(subject, j.ev, j.msg, customer)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.js.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publish event %s again on %s: %w", j.ev.ID, subject, err)
	}
	f.r.log.Debug("event published on its customer's subject", "event", j.ev.ID, "from", j.msg.Subject(), "to", subject, "reason", reason)
	f.r.metrics.forwardedOne(reason)
	f.r.ack(ctx, j)
	return nil
}

// merged publishes j's event again on the subject of the known customer
// its anonymous customer was merged into, and acks it, reporting whether
// it did. An event published again that way, or one of the router, is
// handled where it is.
func (f *forwarder) merged(ctx context.Context, j job) (bool, error) {
	if f.canonical == nil || j.part == nil || j.part.router || j.msg.Headers().Get(natsbus.CustomerHeader) != "" {
		return false, nil
	}
	canon, err := f.lookup(ctx, j.ev.UUID)
	if err != nil {
		return false, fmt.Errorf("resolve customer %s: %w", j.ev.UUID, err)
	}
	token := natsbus.CustomerToken(canon)
	if canon == j.ev.UUID || token == j.key {
		return false, nil
	}
	stored := natsbus.SplitStored(j.msg.Subject())
	if err := f.forward(ctx, j, natsbus.CustomerSubject(natsbus.SourceSubject(stored.Source), canon), canon, forwardMerged); err != nil {
		return false, err
	}
	return true, nil
}

// lookup returns the canonical customer of uuid, remembering final
// answers.
func (f *forwarder) lookup(ctx context.Context, uuid string) (string, error) {
	f.mu.Lock()
	canon, ok := f.known[uuid]
	f.mu.Unlock()
	if ok {
		return canon, nil
	}
	canon, final, err := f.canonical(ctx, uuid)
	if err != nil {
		return "", err
	}
	if final {
		f.mu.Lock()
		if len(f.known) >= maxKnown {
			clear(f.known)
		}
		f.known[uuid] = canon
		f.mu.Unlock()
	}
	return canon, nil
}

// Reasons an event is published again: the values of the reason label of
// herald_events_forwarded_total.
const (
	forwardRouted    = "routed"    // published without a customer in the subject
	forwardMisrouted = "misrouted" // published on another customer's subject
	forwardMerged    = "merged"    // its anonymous customer was merged into a known one
)

// sortBySeq sorts jobs by stream sequence.
func sortBySeq(jobs []jetstream.Msg) {
	slices.SortStableFunc(jobs, func(a, b jetstream.Msg) int {
		ma, _ := a.Metadata()
		mb, _ := b.Metadata()
		switch {
		case ma == nil || mb == nil:
			return 0
		case ma.Sequence.Stream < mb.Sequence.Stream:
			return -1
		case ma.Sequence.Stream > mb.Sequence.Stream:
			return 1
		}
		return 0
	})
}
