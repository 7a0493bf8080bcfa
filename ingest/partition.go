package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pinHeader carries the id of the pin a pinned consumer's message was
// delivered under.
const pinHeader = "Nats-Pin-Id"

// partition is one slot of partitioned consumption, a partition consumer
// or the router, as this engine sees it. Its goroutine (run) pulls while
// the slot is assigned to this engine; workers handle a partition's events
// only while holds says the engine still holds it. See partitioned.go.
type partition struct {
	e      *engines
	index  int
	name   string // the consumer's name
	router bool
	cons   jetstream.Consumer
	fl     *inflight

	// tenure counts the times this engine took the partition, or lost it:
	// a job pulled in another tenure is not handled.
	tenure atomic.Uint64
	// lineage counts the times this engine took the partition when another
	// engine may have held it since this engine last did: what workers
	// remember of its customers (events settled, events waiting) holds
	// within a lineage.
	lineage atomic.Uint64
	// leaseUntil is when (e.since, in nanoseconds) the pin stops being
	// this engine's as far as it knows; 0 when it holds none.
	leaseUntil atomic.Int64

	// The pull loop's own state.
	pin       string // the pin this engine holds; "" for none
	lastDseq  uint64 // the consumer sequence of the latest delivery
	suspect   bool   // a pull was refused because the pin moved
	lapsed    bool   // the engine lost the partition for want of pulls
	checkGate bool   // see takeOver
	taking    bool   // the pin was just taken
	gate      *gate  // new events held back; nil when none are
	failures  int    // pulls failed in a row
}

// gate holds back a partition's events after an engine took it while
// another may still hold some of them.
type gate struct {
	start     time.Duration // e.since() when it was set
	deadline  time.Duration // after it, no other engine can hold any
	lastCheck time.Duration
	held      []jetstream.Msg
}

// holds reports whether this engine still holds the partition in tenure:
// neither lost it nor let go of it since. A lease that ran out for a moment
// does not end a tenure by itself: the pull loop decides (see pull), since
// the next pull may show that the server kept the pin.
func (p *partition) holds(tenure uint64) bool {
	return tenure == p.tenure.Load() && p.leaseUntil.Load() > 0
}

// holding reports whether this engine holds the partition's pin.
func (p *partition) holding() bool {
	u := p.leaseUntil.Load()
	return u > 0 && p.e.since() < time.Duration(u)
}

// extend records a pull with the pin that went through, sent at sent.
func (p *partition) extend(sent time.Duration) {
	p.leaseUntil.Store(int64(sent + p.e.leaseFor()))
}

// leaseFor is how long after a pull that went through an engine counts on
// the pin: PinnedTTL less a quarter, for the time a pull takes to reach
// the server.
func (e *engines) leaseFor() time.Duration { return e.parts.PinnedTTL - e.parts.PinnedTTL/4 }

// pullWait is how long one pull of a partition waits for events: short
// enough that an engine pulls several times within PinnedTTL.
func (e *engines) pullWait() time.Duration { return min(fetchWait, e.parts.PinnedTTL/4) }

// run pulls the partition until ctx ends (the slot is assigned elsewhere,
// or the engine stops), then lets go of it.
func (p *partition) run(ctx context.Context) {
	bgCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { p.fl.keepInProgress(bgCtx, max(p.e.parts.AckWait/3, time.Millisecond), p.holding) })
	defer func() {
		stop()
		bg.Wait()
	}()
	for ctx.Err() == nil {
		if err := p.pull(ctx); err != nil {
			select {
			case p.e.fatal <- err:
			default:
			}
			break
		}
	}
	p.release()
}

// pull pulls once and hands out what came, or holds it back.
func (p *partition) pull(ctx context.Context) error {
	r := p.e.r
	if (p.pin != "" || p.suspect) && !p.holding() {
		p.lost("its pulls have not gone through for longer than the pin lasts")
	}
	sent := p.e.since()
	wait := p.e.pullWait()
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(wait), jetstream.FetchPriorityGroup(natsbus.PartitionGroup)}
	n := p.fl.limit - p.fl.len()
	keepalive := false
	switch {
	case p.gate != nil:
		// What another engine held comes back even beyond the budget: the
		// server delivers redeliveries past its max ack pending.
		n = max(n, 1)
	case n <= 0:
		// No room: a pull that takes nothing keeps the pin.
		n, keepalive = 1, true
		opts = append(opts, jetstream.FetchMaxBytes(1))
	}
	batch, err := p.cons.Fetch(n, opts...)
	if err != nil {
		if fatalPullError(err) {
			return fmt.Errorf("pull %s: %w", p.name, err)
		}
		p.pullFailed(ctx, err)
		return nil
	}
	// Events are handed out as they come, but for those of a pull that
	// took the pin, or came after a missing delivery, or while the
	// partition's events are held back: those are kept and handed out in
	// stream order once the consumer has been asked (see takeOver).
	var kept []jetstream.Msg
	got := 0
	var routeErr error
	for msg := range batch.Messages() {
		got++
		meta, _ := msg.Metadata()
		if pin := msg.Headers().Get(pinHeader); pin != p.pin {
			p.pinned(pin, meta, sent)
		} else if meta != nil && meta.Sequence.Consumer != p.lastDseq+1 && !p.checkGate {
			// A delivery went missing (lost with a server that went
			// away, or after a pull ended): it comes back once its ack
			// wait runs out, and newer events wait for it.
			r.log.Info("partition's deliveries have a gap; holding back its newer events until the missing ones come back", "consumer", p.name, "after", p.lastDseq, "got", meta.Sequence.Consumer)
			p.checkGate = true
		}
		if meta != nil {
			p.lastDseq = meta.Sequence.Consumer
		}
		p.fl.add(msg)
		r.metrics.receivedOne()
		switch {
		case p.gate != nil || p.checkGate:
			kept = append(kept, msg)
		case routeErr != nil:
			// Routing failed: the rest go back, in order, to come again
			// first.
			p.fl.done(msg)
			_ = msg.Nak()
		default:
			if err := p.handOut(msg); err != nil {
				routeErr = err
				p.fl.done(msg)
				_ = msg.Nak()
			}
		}
	}
	switch err := batch.Error(); {
	case errors.Is(err, jetstream.ErrPinIDMismatch):
		// The pin moved: the consumer's leader changed, or the pin ran
		// out. Until this engine is pinned again with nothing delivered
		// elsewhere meanwhile, or its lease runs out, it goes on.
		if !p.suspect && p.pin != "" {
			r.log.Info("partition's pin moved; pulling to be pinned again", "consumer", p.name)
		}
		p.pin, p.suspect = "", true
	case err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages):
		if fatalPullError(err) {
			return fmt.Errorf("pull %s: %w", p.name, err)
		}
		if got == 0 {
			p.pullFailed(ctx, err)
		}
	default:
		p.pullWorked()
		if p.pin != "" && !p.suspect {
			p.extend(sent)
		}
	}
	if p.checkGate {
		taking := p.taking
		p.checkGate, p.taking = false, false
		p.takeOver(taking)
	}
	if p.gate != nil {
		p.gate.held = append(p.gate.held, kept...)
		routeErr = p.tryOpen(sent, got < n)
	} else if len(kept) > 0 {
		// A pull returns redeliveries first, but one another engine handed
		// back while the pull was served comes after newer events: stream
		// order is what counts.
		sortBySeq(kept)
		routeErr = p.handOutAll(kept)
	}
	if routeErr != nil {
		r.log.Warn("route events failed; trying again", "err", routeErr)
		p.pullFailed(ctx, routeErr)
	}
	if keepalive {
		// The pull that takes nothing returns at once when events wait:
		// pace it.
		t := time.NewTimer(sent + wait - p.e.since())
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// pinned records that this engine got the pin pin with the delivery meta,
// from a pull sent at sent. After a pull refused for a pin that moved, or
// after the partition was lost for want of pulls, a delivery that follows
// the engine's last one (the consumer's delivery sequence) shows that
// nothing was delivered elsewhere meanwhile.
func (p *partition) pinned(pin string, meta *jetstream.MsgMetadata, sent time.Duration) {
	r := p.e.r
	continued := (p.suspect || p.lapsed) && p.lineage.Load() > 0 && meta != nil && meta.Sequence.Consumer == p.lastDseq+1
	switch {
	case continued && p.suspect && p.holding():
		// Pinned again in time: what this engine holds is still its own.
		r.log.Info("partition pinned again; nothing was delivered elsewhere meanwhile", "consumer", p.name)
	case continued:
		// What it held was dropped (see lost) and comes back; the same
		// lineage goes on.
		if p.fl.len() > 0 {
			p.lost("its pin moved meanwhile")
		}
		p.checkGate, p.taking = true, true
		r.log.Info("partition pinned again after it was lost; nothing was delivered elsewhere meanwhile", "consumer", p.name)
	default:
		if p.fl.len() > 0 {
			p.lost("its pin moved to another engine meanwhile")
		}
		p.tenure.Add(1)
		p.lineage.Add(1)
		p.checkGate, p.taking = true, true
	}
	p.pin, p.suspect, p.lapsed = pin, false, false
	p.extend(sent)
}

// takeOver checks, once the engine took the pin (taking) or saw a
// delivery go missing, whether events of the partition are out of its
// hands: the consumer counts more events delivered and not acknowledged
// than this engine holds (another engine may still hold some, or a
// delivery was lost on the way). If so, the partition's events are held
// back (see tryOpen) until those come back.
func (p *partition) takeOver(taking bool) {
	r := p.e.r
	ictx, cancel := context.WithTimeout(p.e.workCtx, 5*time.Second)
	info, err := p.cons.Info(ictx)
	cancel()
	held := p.fl.len()
	if err == nil && info.NumAckPending <= held {
		if taking {
			r.metrics.takeoverOne(false)
			r.log.Info("took partition", "consumer", p.name)
		}
		return
	}
	now := p.e.since()
	deadline := now + p.e.parts.AckWait + p.e.parts.PinnedTTL + gateMargin
	if p.gate != nil {
		p.gate.deadline = max(p.gate.deadline, deadline)
		return
	}
	p.gate = &gate{start: now, lastCheck: now, deadline: deadline}
	if taking {
		r.metrics.takeoverOne(true)
	}
	attrs := []any{"consumer", p.name, "held", held, "at_most", deadline - now}
	if err == nil {
		attrs = append(attrs, "unacknowledged", info.NumAckPending)
	} else {
		attrs = append(attrs, "err", err)
	}
	if taking {
		r.log.Info("took partition; holding back its new events until those another engine may hold come back", attrs...)
	} else {
		r.log.Info("holding back the partition's new events until its missing deliveries come back", attrs...)
	}
}

// tryOpen hands out the events held back, in stream order, once every
// event delivered and not acknowledged is this engine's, or once no other
// engine can hold any (the deadline passed before the pull sent at sent,
// which took all there was: drained). It returns an error when routing
// failed.
func (p *partition) tryOpen(sent time.Duration, drained bool) error {
	g := p.gate
	now := p.e.since()
	open := sent >= g.deadline && drained
	if !open && now-g.lastCheck >= gateCheck {
		g.lastCheck = now
		ictx, cancel := context.WithTimeout(p.e.workCtx, 5*time.Second)
		info, err := p.cons.Info(ictx)
		cancel()
		open = err == nil && info.NumAckPending <= p.fl.len()
	}
	if !open {
		return nil
	}
	p.gate = nil
	sortBySeq(g.held)
	p.e.r.log.Info("handing out partition's events held back", "consumer", p.name, "events", len(g.held), "waited", now-g.start)
	return p.handOutAll(g.held)
}

// lost drops what this engine held of the partition, unsettled, to be
// delivered again: it may hold the partition no more.
func (p *partition) lost(why string) {
	p.tenure.Add(1)
	p.leaseUntil.Store(0)
	held := p.fl.len()
	p.fl.clear()
	p.gate = nil
	p.pin, p.suspect, p.lapsed = "", false, true
	if held > 0 {
		p.e.r.log.Warn("lost partition; the events it held are delivered again", "consumer", p.name, "events", held, "why", why)
	}
}

// handOut hands out an event pulled: a partition's to the worker of its
// customer, the router's routed here. An error means routing failed; the
// event is left to the caller.
func (p *partition) handOut(msg jetstream.Msg) error {
	if !p.router {
		p.dispatch(msg)
		return nil
	}
	return p.route(msg)
}

// handOutAll hands out events in order; when routing one fails, it and the
// rest go back, in order, to come again first.
func (p *partition) handOutAll(msgs []jetstream.Msg) error {
	for i, msg := range msgs {
		if err := p.handOut(msg); err != nil {
			for _, m := range msgs[i:] {
				p.fl.done(m)
				_ = m.Nak()
			}
			return err
		}
	}
	return nil
}

// job makes the job of msg, pulled in the current tenure.
func (p *partition) job(msg jetstream.Msg) (job, error) {
	j, err := decode(msg)
	j.fl, j.part, j.tenure, j.lineage = p.fl, p, p.tenure.Load(), p.lineage.Load()
	return j, err
}

// dispatch hands a partition's event to the worker of its customer;
// settles it at once if it is invalid or unwanted; or publishes it again
// on its customer's subject if it is on another's.
func (p *partition) dispatch(msg jetstream.Msg) {
	r, ctx := p.e.r, p.e.workCtx
	j, err := p.job(msg)
	if err != nil {
		r.keepDead(ctx, j, err, reasonInvalid)
		return
	}
	if r.wants != nil && !r.wants(j.ev) {
		r.settleUnwanted(ctx, j)
		return
	}
	stored := natsbus.SplitStored(msg.Subject())
	j.key = stored.Customer
	if c := msg.Headers().Get(natsbus.CustomerHeader); c == "" || natsbus.CustomerToken(c) != stored.Customer {
		if own := natsbus.CustomerToken(j.ev.UUID); own != stored.Customer {
			subject := natsbus.CustomerSubject(natsbus.SourceSubject(stored.Source), j.ev.UUID)
			if err := r.fwd.forward(ctx, j, subject, "", forwardMisrouted); err != nil {
				delay := r.backoff(j.meta.NumDelivered)
				r.log.Warn("publish event on its customer's subject; trying again later", "event", j.ev.ID, "err", err, "delay", delay)
				r.retry(ctx, j, delay)
			}
			return
		}
	}
	p.e.queues[maphash.String(p.e.seed, j.key)%uint64(len(p.e.queues))] <- j
}

// route publishes a router's event again on its customer's subject and
// acks it; an invalid or unwanted one is settled at once. An error means
// the event is not routed.
func (p *partition) route(msg jetstream.Msg) error {
	r, ctx := p.e.r, p.e.workCtx
	j, err := p.job(msg)
	if err != nil {
		r.keepDead(ctx, j, err, reasonInvalid)
		return nil
	}
	if r.wants != nil && !r.wants(j.ev) {
		r.settleUnwanted(ctx, j)
		return nil
	}
	source := natsbus.SplitStored(msg.Subject()).Source
	return r.fwd.forward(ctx, j, natsbus.CustomerSubject(natsbus.SourceSubject(source), j.ev.UUID), "", forwardRouted)
}

// release lets go of the partition: the events held back go back at once,
// in order; those handed out are finished, the pin kept meanwhile, for up
// to the drain; then Consumer.Released is called and the consumer
// unpinned, so the next engine takes over at once.
func (p *partition) release() {
	r, ctx := p.e.r, p.e.workCtx
	if g := p.gate; g != nil {
		p.gate = nil
		sortBySeq(g.held)
		for _, m := range g.held {
			p.fl.done(m)
			_ = m.Nak()
		}
	}
	deadline := p.e.since() + p.e.drain
	for p.fl.len() > 0 && p.holding() && p.e.since() < deadline && ctx.Err() == nil {
		sent := p.e.since()
		// A pull that takes nothing keeps the pin meanwhile.
		batch, err := p.cons.Fetch(1, jetstream.FetchMaxWait(drainPoll), jetstream.FetchPriorityGroup(natsbus.PartitionGroup), jetstream.FetchMaxBytes(1))
		if err == nil {
			for range batch.Messages() {
			}
			if err := batch.Error(); (err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages)) && p.pin != "" && !p.suspect {
				p.extend(sent)
			}
		}
		t := time.NewTimer(sent + drainPoll - p.e.since())
		<-t.C
	}
	if n := p.fl.len(); n > 0 {
		p.lost(fmt.Sprintf("%d events under way outlast the drain", n))
	}
	if p.pin != "" && p.holding() {
		if p.e.c.Released != nil {
			if err := p.e.c.Released(ctx); err != nil {
				r.log.Warn("finish letting go of partition", "consumer", p.name, "err", err)
			}
		}
		if p.holding() {
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := p.e.parts.Unpin(uctx, p.cons); err != nil {
				r.log.Warn("unpin partition; the next engine gets it once the pin runs out", "consumer", p.name, "err", err)
			}
			cancel()
		}
		r.metrics.releasedOne()
		r.log.Info("let go of partition", "consumer", p.name)
	}
	p.tenure.Add(1)
	p.leaseUntil.Store(0)
	p.pin, p.suspect, p.lapsed = "", false, false
	if p.failures > 0 {
		p.failures = 0
		p.e.failed(false)
	}
}

// pullFailed counts a failed pull, logs it if this slot's pulls worked
// until now, and waits before the next attempt.
func (p *partition) pullFailed(ctx context.Context, err error) {
	p.e.r.metrics.pullFailedOne()
	p.failures++
	if p.failures == 1 {
		p.e.r.log.Warn("pull partition failed; retrying with backoff until it works again", "consumer", p.name, "err", err)
		p.e.failed(true)
	}
	// Short of the pin's TTL, so that a pin held is kept if pulls work
	// again soon.
	d := min(pullBackoffMin<<min(p.failures-1, 10), pullBackoffMax, p.e.pullWait())
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pullWorked records that a pull went through.
func (p *partition) pullWorked() {
	if p.failures > 0 {
		p.e.r.log.Info("pulling partition again", "consumer", p.name, "failed_pulls", p.failures)
		p.failures = 0
		p.e.failed(false)
	}
}
