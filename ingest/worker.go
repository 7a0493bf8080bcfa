package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// worker handles the events of its share of customers, in order.
type worker struct {
	r *run
	// blocked holds customers with a failed event waiting for
	// redelivery; their later events are sent back behind it.
	blocked map[string]blocked
}

type blocked struct {
	seq   uint64 // stream sequence of the failed event
	until time.Time
}

// handle handles one event and settles its message: ack on success, dead
// letter on a permanent failure, the last delivery or a crash loop (see
// Attempts), nak with a backoff on any other failure.
func (w *worker) handle(ctx context.Context, j job) {
	r, meta, ev := w.r, j.meta, j.ev
	seq := meta.Sequence.Stream
	if b, ok := w.blocked[ev.UUID]; ok && b.seq != seq {
		if wait := b.until.Sub(r.now()); wait > 0 && seq > b.seq {
			r.sendBack(ctx, j, wait+time.Second)
			return
		}
		// The failed event is overdue (it may have been handled by another
		// engine): stop holding the customer's events for it.
		delete(w.blocked, ev.UUID)
	}
	if err := r.begin(ctx, &j); err != nil {
		w.giveUp(ctx, j, err, reasonPoison)
		return
	}
	err := r.handle(ctx, ev)
	switch {
	case err == nil:
		w.unblock(j)
		r.ack(ctx, j)
	case IsPermanent(err):
		reason := reasonPermanent
		if _, ok := errors.AsType[*PanicError](err); ok {
			reason = reasonPanic
		}
		w.giveUp(ctx, j, err, reason)
	case meta.NumDelivered >= r.maxDeliveries:
		w.giveUp(ctx, j, fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, err), reasonMaxDeliveries)
	default:
		delay := r.backoff(meta.NumDelivered)
		r.log.Info("retry event later", "event", ev.ID, "uuid", ev.UUID, "delivery", meta.NumDelivered, "delay", delay, "err", err)
		w.block(j, delay)
		r.retry(ctx, j, delay)
	}
}

// giveUp keeps a failed event as a dead letter and lets the customer's
// later events go on. If the event cannot be kept, it is retried later and
// the customer's later events wait behind it.
func (w *worker) giveUp(ctx context.Context, j job, reason error, label string) {
	if w.r.keepDead(ctx, j, reason, label) {
		w.unblock(j)
		return
	}
	w.block(j, w.r.backoff(j.meta.NumDelivered))
}

// block holds the customer's later events until the failed event j comes
// back, after delay.
func (w *worker) block(j job, delay time.Duration) {
	w.blocked[j.ev.UUID] = blocked{seq: j.meta.Sequence.Stream, until: w.r.now().Add(delay)}
}

// unblock lets the customer's later events go on once j, which may have
// held them, is settled.
func (w *worker) unblock(j job) {
	if b, ok := w.blocked[j.ev.UUID]; ok && b.seq == j.meta.Sequence.Stream {
		delete(w.blocked, j.ev.UUID)
	}
}

// ack acknowledges a handled event, waiting for the server to confirm it
// when acks are synchronous.
func (r *run) ack(ctx context.Context, j job) {
	r.inflight.done(j.msg)
	var err error
	if r.ackSync {
		err = j.msg.DoubleAck(ctx)
	} else {
		err = j.msg.Ack()
	}
	if err != nil {
		// The event will come back; the runner recognises it by its id.
		r.log.Warn("ack event", "event", j.ev.ID, "err", err)
		return
	}
	r.metrics.ackedOne(r.now().Sub(j.meta.Timestamp))
	r.completed(ctx, j)
}

// settleUnwanted acks, without waiting, an event the handler has nothing
// to do with, as soon as it is pulled.
func (r *run) settleUnwanted(ctx context.Context, j job) {
	r.inflight.done(j.msg)
	if err := j.msg.Ack(); err != nil {
		r.log.Warn("ack event", "event", j.ev.ID, "err", err)
		return
	}
	r.metrics.unwantedOne()
	r.metrics.ackedOne(r.now().Sub(j.meta.Timestamp))
	r.completed(ctx, j)
}

// retry sends a failed event back to be delivered again after delay.
func (r *run) retry(ctx context.Context, j job, delay time.Duration) {
	r.unfinished(ctx, j)
	r.inflight.done(j.msg)
	if err := j.msg.NakWithDelay(delay); err != nil {
		r.log.Error("nak event", "event", j.ev.ID, "err", err)
		return
	}
	r.metrics.retriedOne()
}

// sendBack sends an event back to wait behind its customer's failed
// event, without handling it.
func (r *run) sendBack(ctx context.Context, j job, delay time.Duration) {
	r.unfinished(ctx, j)
	r.inflight.done(j.msg)
	if err := j.msg.NakWithDelay(delay); err != nil {
		r.log.Error("nak event", "event", j.ev.ID, "err", err)
	}
}

// keepDead keeps a message that cannot be processed with DeadLetter, with
// the reason, then terminates it so it is not redelivered, and reports
// whether it did. If keeping it fails, the message is nak'ed so it comes
// back after a backoff rather than being lost. label is the reason's
// metric label.
func (r *run) keepDead(ctx context.Context, j job, reason error, label string) bool {
	r.inflight.done(j.msg)
	var delivery uint64 = 1
	if j.meta != nil {
		delivery = j.meta.NumDelivered
	}
	attrs := []any{"subject", j.msg.Subject(), "delivery", delivery, "reason", reason}
	if j.meta != nil {
		attrs = append(attrs, "seq", j.meta.Sequence.Stream)
	}
	if j.ev != nil {
		attrs = append(attrs, "event", j.ev.ID, "uuid", j.ev.UUID)
	}
	if err := r.deadLetterFn(ctx, deadLetterMsg(j), reason); err != nil {
		delay := r.backoff(delivery)
		r.unfinished(ctx, j)
		r.log.Error("keep dead letter; trying again later", append(attrs, "delay", delay, "err", err)...)
		if err := j.msg.NakWithDelay(delay); err != nil {
			r.log.Error("nak event", append(attrs, "err", err)...)
			return false
		}
		r.metrics.retriedOne()
		return false
	}
	r.log.Warn("kept as dead letter", attrs...)
	r.metrics.deadLetteredOne(label)
	if err := j.msg.TermWithReason(truncate(reason.Error(), 256)); err != nil {
		// The message will come back and be kept again: DeadLetter stores
		// a message once within the duplicate window.
		r.log.Error("terminate dead letter", append(attrs, "err", err)...)
	}
	r.completed(ctx, j)
	return true
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
