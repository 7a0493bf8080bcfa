package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait is the longest a pull for events waits for them; it bounds
// how long shutdown waits for the pull under way.
const fetchWait = time.Second

// fatalPullError reports errors after which pulling cannot go on: the
// consumer or stream is gone, or the connection closed for good.
func fatalPullError(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrConnectionClosed)
}

// DepthHeader carries an emitted event's depth (event.Event.Depth): how
// many emits led to it. Tracked events have none.
const DepthHeader = natsbus.DepthHeader

// HandlerFunc applies one event. nil means done (ack). An error for which
// IsPermanent is true means the event can never be applied (it is kept as
// a dead letter); any other error means try again later (nak with a
// delay).
type HandlerFunc func(ctx context.Context, ev *event.Event) error

// DeadLetterFunc keeps a message that cannot be processed, with the
// reason, so nothing is dropped silently. It must not acknowledge msg:
// the Consumer terminates msg once it is kept, and naks it if keeping it
// fails.
type DeadLetterFunc func(ctx context.Context, msg jetstream.Msg, reason error) error

// Consumer pulls events from a JetStream consumer and hands them to a
// handler, a few at a time. Events of one customer are handled one at a
// time and in order: each customer is served by one worker, and after a
// failure the customer's later events wait behind the failed one until it
// is handled, or kept as a dead letter.
//
// An event the handler fails with a permanent error (IsPermanent), an
// event that failed on its MaxDeliveries-th delivery, an event whose
// handling died MaxCrashes times (see Attempts) and a message that is not
// a valid event are kept with DeadLetter, then terminated: they are never
// delivered again. Every other failure is retried after Backoff.
//
// Every message pulled is reported in progress to the server until it is
// settled, whether it is being handled or waits for its worker, so that a
// slow handler does not make the server deliver it again meanwhile.
type Consumer struct {
	// Consumer is the JetStream pull consumer to pull from, with explicit
	// acks. Required.
	Consumer jetstream.Consumer
	// Handle applies each event; see HandlerFunc and Chain. A panic in it
	// is recovered as Recover does. Required.
	Handle HandlerFunc
	// DeadLetter keeps what cannot be processed. Required.
	DeadLetter DeadLetterFunc
	// Workers is how many events are handled at once (default 4).
	Workers int
	// Wants, if not nil, tells the events Handle has something to do
	// with. An event it does not want is settled as soon as it is pulled,
	// acked without waiting for the server's confirmation and without
	// taking a worker: no rule wants a page view, and a busy site sends
	// mostly those. Wants must be cheap and must not block.
	Wants func(ev *event.Event) bool
	// MaxPending bounds the events pulled and not yet settled, waiting for
	// a worker or being handled (default 1024, at least 4 per worker).
	// Events are pulled in batches of up to the room left.
	MaxPending int
	// AckSync makes every ack of a handled event wait for the server to
	// confirm it. Without it, acks are sent and not waited for: an ack
	// lost on the way only makes the event come back, which the handler
	// recognises (every effect is keyed), so the wait buys nothing but
	// latency. See docs/reliability.md.
	AckSync bool
	// Backoff gives the redelivery delay after the n-th failed delivery
	// (n from 1); default doubles from 1s to at most 5 minutes.
	Backoff func(n uint64) time.Duration
	// MaxDeliveries is the delivery on which a failing event is given up
	// and kept as a dead letter (default 100: about eight hours of
	// retries at the default backoff). Deliveries are counted by the
	// server and include those on which the event went back to wait
	// behind its customer's failed event.
	MaxDeliveries int
	// Attempts, if not nil, ends crash loops: it counts the attempts at
	// handling an event that started and never finished because the
	// process died or hung, and an event with MaxCrashes of them is kept
	// as a dead letter, with the reason "poison: delivered N times without
	// completing", before it is handled again. Retries and events sent
	// back behind their customer do not count. See Attempts.
	Attempts *Attempts
	// MaxCrashes is how many attempts at handling an event may die before
	// it is kept as a poison dead letter (default 3). Used with Attempts.
	MaxCrashes int
	// AckWait is the consumer's ack wait: messages pulled are reported in
	// progress three times within it. Default: the consumer's own, as
	// cached when it was looked up, or 30s.
	AckWait time.Duration
	// Drain bounds how long Run waits for events under way at shutdown
	// (default 30s).
	Drain time.Duration
	// Metrics, if not nil, counts events and samples the JetStream
	// consumer's figures. Handler durations are timed by the Instrument
	// stage in Handle.
	Metrics *Metrics
	// InfoEvery is how often the JetStream consumer's figures are sampled
	// for Metrics (default 5s).
	InfoEvery time.Duration
	// Now tells the time (default time.Now).
	Now func() time.Time
	// Logger receives what the consumer does with failed events (default:
	// nothing is logged).
	Logger *slog.Logger

	// Partitions, if not nil, makes Run consume a partitioned events
	// stream (natsbus.SetupConfig.Partitions) as one of the engines
	// sharing it, in place of Consumer: the engines agree which of them
	// takes each partition, and each customer's events are handled by
	// one engine at a time, in stream order, across engines. See
	// partitioned.go and docs/scaling.md.
	Partitions *natsbus.Partitions
	// Engine names this engine among the engines sharing Partitions;
	// required with them. Engines need distinct names.
	Engine string
	// Canonical, if not nil, tells the customer whose events an event of
	// uuid joins: with Partitions, an event of an anonymous customer
	// merged into a known one is published again on the known customer's
	// subject, so that both customers' later events are handled in one
	// order. See CanonicalFunc.
	Canonical CanonicalFunc
	// Released, if not nil, is called with Partitions once the events of
	// partitions this engine lets go of are all settled, before another
	// engine can take them (serve writes the performed effects out of the
	// customers' records). An error is logged.
	Released func(ctx context.Context) error
	// Heartbeat is how often the engine announces itself with Partitions
	// (default a quarter of the engines bucket's TTL).
	Heartbeat time.Duration

	pulling atomic.Bool // see Pulling
}

// Pulling reports whether Run is pulling events: it is running and its
// latest pull did not fail. While a stream's leader is elected or the
// connection is re-established, pulls fail and Pulling is false.
func (c *Consumer) Pulling() bool { return c.pulling.Load() }

func defaultBackoff(n uint64) time.Duration {
	if n == 0 {
		n = 1
	}
	d := time.Second << min(n-1, 9)
	return min(d, 5*time.Minute)
}

// run is one Run of a Consumer, with its settings defaulted.
type run struct {
	fwd *forwarder // with Partitions: publishes events on other subjects

	js            jetstream.Consumer
	handle        HandlerFunc
	deadLetterFn  DeadLetterFunc
	backoff       func(n uint64) time.Duration
	maxDeliveries uint64
	attempts      *Attempts
	maxCrashes    int
	now           func() time.Time
	log           *slog.Logger
	metrics       *Metrics
	inflight      *inflight
	wants         func(ev *event.Event) bool
	ackSync       bool

	failures int // pulls failed in a row
	pulling  *atomic.Bool
}

// Run pulls and handles events until ctx ends, then stops pulling, lets
// the workers finish the events they hold (acking them as usual) and
// returns. It returns an error when the Consumer lacks a required field or
// when pulling cannot go on (the consumer was deleted, the connection
// closed).
func (c *Consumer) Run(ctx context.Context) error {
	switch {
	case c.Consumer == nil && c.Partitions == nil:
		return errors.New("run consumer: no JetStream consumer")
	case c.Partitions != nil && c.Engine == "":
		return errors.New("run consumer: partitioned, but no engine name")
	case c.Handle == nil:
		return errors.New("run consumer: no handler")
	case c.DeadLetter == nil:
		return errors.New("run consumer: no dead-letter function")
	}
	workers := c.Workers
	if workers <= 0 {
		workers = 4
	}
	pending := c.MaxPending
	if pending <= 0 {
		pending = 1024
	}
	r := &run{
		js:            c.Consumer,
		handle:        Recover(c.Logger)(c.Handle),
		deadLetterFn:  c.DeadLetter,
		backoff:       c.Backoff,
		maxDeliveries: 100,
		attempts:      c.Attempts,
		maxCrashes:    3,
		now:           c.Now,
		log:           c.Logger,
		metrics:       c.Metrics,
		inflight:      newInflight(max(pending, 4*workers)),
		wants:         c.Wants,
		ackSync:       c.AckSync,
		pulling:       &c.pulling,
	}
	c.pulling.Store(true)
	defer c.pulling.Store(false)
	if r.backoff == nil {
		r.backoff = defaultBackoff
	}
	if c.MaxDeliveries > 0 {
		r.maxDeliveries = uint64(c.MaxDeliveries)
	}
	if c.MaxCrashes > 0 {
		r.maxCrashes = c.MaxCrashes
	}
	if r.attempts != nil {
		r.metrics.reasonUsed(reasonPoison)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	drain := c.Drain
	if drain <= 0 {
		drain = 30 * time.Second
	}

	// Work goes on under its own context at shutdown, so events under way
	// are finished and acked rather than cut off.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	queueSize := r.inflight.size()
	if c.Partitions != nil {
		queueSize = partitionedQueueSize(c.Partitions)
	}
	queues := make([]chan job, workers)
	var wg sync.WaitGroup
	for i := range queues {
		// A queue can take every message pulled: handing one out never
		// waits, and each is reported in progress while it waits.
		q := make(chan job, queueSize)
		queues[i] = q
		w := &worker{r: r, held: make(map[string]*hold), done: make(map[string]uint64)}
		wg.Go(func() {
			for j := range q {
				w.handle(workCtx, j)
			}
		})
	}
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	every := c.InfoEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	var runErr error
	if c.Partitions != nil {
		runErr = c.runPartitioned(ctx, workCtx, r, queues)
	} else {
		bg.Go(func() { r.inflight.keepInProgress(bgCtx, c.progressEvery(), nil) })
		if r.metrics != nil {
			bg.Go(func() { r.sample(bgCtx, every) })
		}
		runErr = r.pull(ctx, workCtx, queues)
	}

	for _, q := range queues {
		close(q)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	drainTimer := time.NewTimer(drain)
	select {
	case <-done:
	case <-drainTimer.C:
		r.log.Warn("events under way outlast the drain; cancelling them", "drain", drain)
		cancelWork()
		<-done
	}
	drainTimer.Stop()
	stopBg()
	bg.Wait()
	return runErr
}

// progressEvery is how often messages pulled are reported in progress:
// three times within the consumer's ack wait.
func (c *Consumer) progressEvery() time.Duration {
	ackWait := c.AckWait
	if ackWait <= 0 {
		if info := c.Consumer.CachedInfo(); info != nil {
			ackWait = info.Config.AckWait
		}
	}
	if ackWait <= 0 {
		ackWait = 30 * time.Second // JetStream's default
	}
	return max(ackWait/3, time.Millisecond)
}

// pull pulls events and hands them to the workers until ctx ends or
// pulling cannot go on. Events are pulled in batches that end by
// themselves (when full or after fetchWait), each as large as there is
// room in the inflight set. At shutdown the batch under way ends within
// fetchWait and is handed out whole: no event is left pulled but unseen,
// which the server would redeliver only after the ack wait.
func (r *run) pull(ctx, workCtx context.Context, queues []chan job) error {
	seed := maphash.MakeSeed()
	for ctx.Err() == nil {
		n := r.inflight.reserve(ctx)
		if n == 0 {
			break
		}
		batch, err := r.js.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			r.inflight.endFetch()
			if fatalPullError(err) {
				return fmt.Errorf("pull events: %w", err)
			}
			r.pullFailed(ctx, err)
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			if got++; got == 1 {
				r.pullWorked()
			}
			r.inflight.add(msg)
			r.metrics.receivedOne()
			j, err := decode(msg)
			j.fl = r.inflight
			if err != nil {
				r.keepDead(workCtx, j, err, reasonInvalid)
				continue
			}
			j.key = j.ev.UUID
			if r.wants != nil && !r.wants(j.ev) {
				r.settleUnwanted(workCtx, j)
				continue
			}
			queues[maphash.String(seed, j.key)%uint64(len(queues))] <- j
		}
		r.inflight.endFetch()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if fatalPullError(err) {
				return fmt.Errorf("pull events: %w", err)
			}
			if got == 0 {
				r.pullFailed(ctx, err)
				continue
			}
			r.log.Debug("pull events", "err", err)
		} else if got == 0 {
			r.pullWorked() // nothing to pull
		}
	}
	return nil
}

// Pull failures (no responders while a stream's leader is elected, a
// connection being re-established) are retried after a pause that doubles
// from pullBackoffMin to pullBackoffMax, with jitter.
const (
	pullBackoffMin = 100 * time.Millisecond
	pullBackoffMax = 5 * time.Second
)

// pullFailed counts a failed pull, logs it if pulling worked until now,
// and waits before the next attempt.
func (r *run) pullFailed(ctx context.Context, err error) {
	r.metrics.pullFailedOne()
	r.failures++
	if r.failures == 1 {
		r.log.Warn("pull events failed; retrying with backoff until it works again", "err", err)
		r.pulling.Store(false)
	}
	d := min(pullBackoffMin<<min(r.failures-1, 10), pullBackoffMax)
	d = d/2 + rand.N(d/2+1) // jitter, so that engines do not retry in step
	wait := time.NewTimer(d)
	defer wait.Stop()
	select {
	case <-ctx.Done():
	case <-wait.C:
	}
}

// pullWorked records that a pull went through, logging the recovery.
func (r *run) pullWorked() {
	if r.failures > 0 {
		r.log.Info("pulling events again", "failed_pulls", r.failures)
		r.failures = 0
	}
	r.pulling.Store(true)
}

// sample records the consumer's figures in the metrics now and every
// interval until ctx ends.
func (r *run) sample(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		info, err := r.js.Info(ctx)
		if err == nil {
			r.metrics.sampled(info)
		} else if ctx.Err() == nil {
			r.log.Debug("sample consumer info", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// job is a message with its metadata and event. A message that is not a
// valid event has no event, and no metadata if it has none.
type job struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ev   *event.Event
	att  attempt   // the attempt at handling it; see Attempts
	fl   *inflight // holds msg until it is settled
	// key names the customer whose events are handled one at a time, in
	// order: the uuid, or with Partitions the customer token of the
	// subject (the known customer's, for events forwarded after a merge).
	key string
	// part is the partition msg came from, with Partitions: the job is
	// handled only while this engine still holds the partition, in the
	// tenure it was pulled in.
	part    *partition
	tenure  uint64
	lineage uint64 // see partition.lineage
}

// decode reads the event in a message. An event without a time gets the
// time the stream received it; one without an id gets an id derived from
// the stream and sequence, so every redelivery has the same id.
func decode(msg jetstream.Msg) (job, error) {
	j := job{msg: msg}
	meta, err := msg.Metadata()
	if err != nil {
		return j, fmt.Errorf("read message metadata: %w", err)
	}
	j.meta = meta
	ev, err := DecodeStored(msg)
	if err != nil {
		return j, err
	}
	// Apps publish on NATS too and may set these headers: a depth or
	// budget above what Herald itself ever sends is read as the most it
	// sends (event.MaxEmitDepth, which is rules.MaxDepth, and
	// event.DefaultEmitBudget), not trusted. See natsbus.BudgetHeader.
	if d := msg.Headers().Get(DepthHeader); d != "" {
		n, err := strconv.Atoi(d)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || n < 0 {
			return j, fmt.Errorf("header %s: %q is not a depth", DepthHeader, d)
		}
		ev.Depth = min(n, event.MaxEmitDepth)
	}
	if b := msg.Headers().Get(natsbus.BudgetHeader); b != "" {
		n, err := strconv.Atoi(b)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || n < 0 {
			return j, fmt.Errorf("header %s: %q is not an emit budget", natsbus.BudgetHeader, b)
		}
		ev.Budget = min(n, event.DefaultEmitBudget)
	} else if ev.Depth == 0 {
		ev.Budget = event.DefaultEmitBudget // a tracked event
	}
	// An emitted event without a budget (published before budgets) has
	// nothing left to emit.
	j.ev = ev
	return j, nil
}
