package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/herald-events/herald/event"
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
const DepthHeader = "Herald-Depth"

// HandlerFunc applies one event. nil means done (ack); an error means try
// again later (nak with a delay).
type HandlerFunc func(ctx context.Context, ev *event.Event) error

// DeadLetterFunc keeps a message that cannot be processed, with the
// reason, so nothing is dropped silently.
type DeadLetterFunc func(ctx context.Context, msg jetstream.Msg, reason error) error

// Consumer pulls events from a JetStream consumer and hands them to a
// handler, a few at a time. Events of one customer are handled one at a
// time and in order: each customer is served by one worker, and after a
// failure the customer's later events wait behind the failed one.
type Consumer struct {
	Consumer   jetstream.Consumer
	Handle     HandlerFunc
	DeadLetter DeadLetterFunc
	// Workers is how many events are handled at once (default 4).
	Workers int
	// Backoff gives the redelivery delay after the n-th failed delivery
	// (n from 1); default doubles from 1s to at most 5 minutes.
	Backoff func(n uint64) time.Duration
	// AckWait is the consumer's ack wait; events under way are reported
	// in progress three times within it (default: every 10s).
	AckWait time.Duration
	// Drain bounds how long Run waits for events under way at shutdown
	// (default 30s).
	Drain  time.Duration
	Logger *slog.Logger
}

func defaultBackoff(n uint64) time.Duration {
	d := time.Second << min(n-1, 9)
	return min(d, 5*time.Minute)
}

// Run pulls and handles events until ctx ends, then stops pulling, lets
// the workers finish the events they hold (acking them as usual) and
// returns.
func (c *Consumer) Run(ctx context.Context) error {
	workers := c.Workers
	if workers <= 0 {
		workers = 4
	}
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.Drain <= 0 {
		c.Drain = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// Work goes on under its own context at shutdown, so events under way
	// are finished and acked rather than cut off.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	queues := make([]chan job, workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 2)
		w := &worker{c: c, blocked: make(map[string]blocked)}
		wg.Go(func() {
			for j := range queues[i] {
				w.handle(workCtx, j)
			}
		})
	}
	seed := maphash.MakeSeed()
	var runErr error
	// Events are pulled in batches that end by themselves (when full or
	// after fetchWait), and each batch is handed out whole. At shutdown
	// the batch under way ends within fetchWait: no event is left pulled
	// but unseen, which the server would redeliver only after the ack
	// wait.
	for ctx.Err() == nil {
		batch, err := c.Consumer.Fetch(4*workers, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if fatalPullError(err) {
				runErr = fmt.Errorf("pull events: %w", err)
				break
			}
			c.Logger.Warn("pull events; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for msg := range batch.Messages() {
			j, err := decode(msg)
			if err != nil {
				c.deadLetter(workCtx, msg, err)
				continue
			}
			queues[maphash.String(seed, j.ev.UUID)%uint64(workers)] <- j
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if fatalPullError(err) {
				runErr = fmt.Errorf("pull events: %w", err)
				break
			}
			c.Logger.Warn("pull events", "err", err)
		}
	}
	for _, q := range queues {
		close(q)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.Drain):
		cancelWork()
		<-done
	}
	return runErr
}

// job is a message with its event.
type job struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ev   *event.Event
}

// decode reads the event in a message. An event without a time gets the
// time the stream received it; one without an id gets an id derived from
// the stream and sequence, so every redelivery has the same id.
func decode(msg jetstream.Msg) (job, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return job{}, fmt.Errorf("read message metadata: %w", err)
	}
	dec := event.Decoder{
		Now: func() time.Time { return meta.Timestamp },
		NewID: func(t time.Time) string {
			return event.DeriveID(t, meta.Stream, strconv.FormatUint(meta.Sequence.Stream, 10))
		},
	}
	ev, err := dec.Decode(msg.Data())
	if err != nil {
		return job{}, err
	}
	if d := msg.Headers().Get(DepthHeader); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return job{}, fmt.Errorf("header %s: %q is not a depth", DepthHeader, d)
		}
		ev.Depth = n
	}
	return job{msg: msg, meta: meta, ev: ev}, nil
}

// deadLetter keeps an invalid message with its reason and terminates it,
// so it is not redelivered. If keeping it fails, the message is nak'ed so
// it comes back rather than being lost.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, reason error) {
	c.Logger.Warn("invalid event kept in the dead-letter stream", "subject", msg.Subject(), "reason", reason)
	if err := c.DeadLetter(ctx, msg, reason); err != nil {
		c.Logger.Error("keep invalid event", "err", err)
		_ = msg.NakWithDelay(c.Backoff(1))
		return
	}
	if err := msg.TermWithReason(truncate(reason.Error(), 256)); err != nil {
		c.Logger.Error("terminate invalid event", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// progressEvery is how often an event under way is reported in progress:
// well within the consumer's ack wait.
func (c *Consumer) progressEvery() time.Duration {
	if c.AckWait > 0 {
		return c.AckWait / 3
	}
	return 10 * time.Second
}

// worker handles the events of its share of customers, in order.
type worker struct {
	c *Consumer
	// blocked holds customers with a failed event waiting for
	// redelivery; their later events are sent back behind it.
	blocked map[string]blocked
}

type blocked struct {
	seq   uint64 // stream sequence of the failed event
	until time.Time
}

func (w *worker) handle(ctx context.Context, j job) {
	c, msg, meta, ev := w.c, j.msg, j.meta, j.ev
	if b, ok := w.blocked[ev.UUID]; ok && b.seq != meta.Sequence.Stream {
		if wait := time.Until(b.until); wait > 0 && meta.Sequence.Stream > b.seq {
			_ = msg.NakWithDelay(wait + time.Second)
			return
		}
		// The failed event is overdue (it may have been handled by another
		// engine): stop holding the customer's events for it.
		delete(w.blocked, ev.UUID)
	}
	// Tell the server the event is still being worked on, so a slow SMTP
	// server does not make it redeliver the event elsewhere meanwhile.
	progress := time.NewTicker(c.progressEvery())
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-progress.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	err := c.Handle(ctx, ev)
	progress.Stop()
	close(done)
	if err != nil {
		delay := c.Backoff(meta.NumDelivered)
		c.Logger.Warn("event will be retried", "event", ev.ID, "uuid", ev.UUID, "delivery", meta.NumDelivered, "delay", delay, "err", err)
		w.blocked[ev.UUID] = blocked{seq: meta.Sequence.Stream, until: time.Now().Add(delay)}
		if err := msg.NakWithDelay(delay); err != nil {
			c.Logger.Error("nak event", "event", ev.ID, "err", err)
		}
		return
	}
	if b, ok := w.blocked[ev.UUID]; ok && b.seq == meta.Sequence.Stream {
		delete(w.blocked, ev.UUID)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The event will come back; the runner recognises it by its id.
		c.Logger.Warn("ack event", "event", ev.ID, "err", err)
	}
}
