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
	// held holds customers with a failed event waiting for redelivery, or
	// later events sent back to wait behind it and not back yet: their
	// newer events are sent back behind those.
	held map[string]*hold
	// done keeps, with Partitions, the latest event of each customer this
	// engine settled: it settles a customer's events in stream order, so
	// an earlier one delivered again was settled before and its ack lost
	// (a consumer's leader changed before it stored the ack).
	done map[string]uint64
}

// maxSettled bounds the customers a worker remembers in done.
const maxSettled = 100_000

// hold is what a worker keeps of a customer whose events wait.
type hold struct {
	failed  uint64    // stream sequence of the failed event; 0 once it is done
	until   time.Time // when the failed event is due back
	lineage uint64    // with Partitions, the lineage the events were pulled in
	// parked holds the later events sent back to wait, by stream
	// sequence, with when they are due back at the latest: until then,
	// newer events of the customer wait behind them too, so that none
	// overtakes them once the failed event is done.
	parked map[uint64]time.Time
}

// parkGrace is how long past its delay an event sent back may take to come
// back before the customer's newer events stop waiting for it.
const parkGrace = 30 * time.Second

// handle handles one event and settles its message: ack on success, dead
// letter on a permanent failure, the last delivery or a crash loop (see
// Attempts), nak with a backoff on any other failure.
func (w *worker) handle(ctx context.Context, j job) {
	r, meta, ev := w.r, j.meta, j.ev
	if j.part != nil && !j.part.holds(j.tenure) {
		// This engine let go of the partition, or lost it, since the event
		// was pulled: the engine that holds it now gets it again.
		j.fl.drop(j.msg)
		return
	}
	if d, ok := w.done[j.key]; ok && j.part != nil && meta.NumDelivered > 1 && meta.Sequence.Stream <= d {
		// Settled before: handling it again would evaluate it against
		// what later events made of the customer.
		r.log.Debug("event settled before delivered again; acking it", "event", ev.ID, "seq", meta.Sequence.Stream, "delivery", meta.NumDelivered)
		r.ack(ctx, j)
		return
	}
	if h := w.held[j.key]; h != nil {
		if delay, wait := w.mustWait(h, j); wait {
			h.parked[meta.Sequence.Stream] = r.now().Add(delay + parkGrace)
			r.sendBack(ctx, j, delay)
			return
		}
	}
	if r.fwd != nil {
		switch moved, err := r.fwd.merged(ctx, j); {
		case err != nil:
			delay := r.backoff(meta.NumDelivered)
			r.log.Info("retry event later", "event", ev.ID, "uuid", ev.UUID, "delivery", meta.NumDelivered, "delay", delay, "err", err)
			w.block(j, delay)
			r.retry(ctx, j, delay)
			return
		case moved:
			return
		}
	}
	if err := r.begin(ctx, &j); err != nil {
		w.giveUp(ctx, j, err, reasonPoison)
		return
	}
	err := r.handle(ctx, ev)
	switch {
	case err == nil:
		w.unblock(j)
		w.settled(j)
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
		w.settled(j)
		return
	}
	w.block(j, w.r.backoff(j.meta.NumDelivered))
}

// settled records, with Partitions, that j was settled.
func (w *worker) settled(j job) {
	if j.part == nil {
		return
	}
	if len(w.done) >= maxSettled {
		clear(w.done)
	}
	if w.done[j.key] < j.meta.Sequence.Stream {
		w.done[j.key] = j.meta.Sequence.Stream
	}
}

// mustWait reports whether j must wait behind its customer's failed event
// or events sent back before it, and for how long it is sent back.
func (w *worker) mustWait(h *hold, j job) (time.Duration, bool) {
	r, seq := w.r, j.meta.Sequence.Stream
	if j.part != nil && h.lineage != j.lineage {
		// Pulled in another lineage: what the hold waited for was settled
		// by whichever engine held the partition meanwhile.
		delete(w.held, j.key)
		return 0, false
	}
	now := r.now()
	for s, due := range h.parked {
		if s != seq && now.After(due) {
			delete(h.parked, s) // lost, or handled elsewhere
		}
	}
	if h.failed != 0 && seq > h.failed {
		wait := h.until.Sub(now)
		switch {
		case wait > 0:
			return wait + time.Second, true
		case j.part != nil:
			// Nobody else has held the customer's partition since the
			// event failed, so it comes back here, however late.
			return time.Second, true
		}
		// The failed event is overdue (it may have been handled by another
		// engine): stop holding the customer's events for it.
		h.failed = 0
	}
	for s := range h.parked {
		if s < seq {
			return time.Second, true // an earlier event sent back is not back yet
		}
	}
	delete(h.parked, seq)
	if h.failed == 0 && len(h.parked) == 0 {
		delete(w.held, j.key)
	}
	return 0, false
}

// block holds the customer's later events until the failed event j comes
// back, after delay.
func (w *worker) block(j job, delay time.Duration) {
	h := w.held[j.key]
	if h == nil {
		h = &hold{parked: make(map[uint64]time.Time)}
		w.held[j.key] = h
	}
	h.failed, h.until, h.lineage = j.meta.Sequence.Stream, w.r.now().Add(delay), j.lineage
	delete(h.parked, h.failed)
}

// unblock lets the customer's later events go on once j, which may have
// held them, is settled; those sent back before still go first.
func (w *worker) unblock(j job) {
	h := w.held[j.key]
	if h == nil {
		return
	}
	seq := j.meta.Sequence.Stream
	if h.failed == seq {
		h.failed = 0
	}
	delete(h.parked, seq)
	if h.failed == 0 && len(h.parked) == 0 {
		delete(w.held, j.key)
	}
}

// ack acknowledges a handled event, waiting for the server to confirm it
// when acks are synchronous.
func (r *run) ack(ctx context.Context, j job) {
	j.fl.done(j.msg)
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
	j.fl.done(j.msg)
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
	j.fl.done(j.msg)
	if err := j.msg.NakWithDelay(delay); err != nil {
		r.log.Error("nak event", "event", j.ev.ID, "err", err)
		return
	}
	r.metrics.retriedOne()
}

// sendBack sends an event back to wait behind its customer's failed
// event, without handling it.
func (r *run) sendBack(ctx context.Context, j job, delay time.Duration) {
	r.log.Debug("event sent back to wait behind its customer's earlier events", "event", j.ev.ID, "seq", j.meta.Sequence.Stream, "delivery", j.meta.NumDelivered, "delay", delay)
	r.unfinished(ctx, j)
	j.fl.done(j.msg)
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
	j.fl.done(j.msg)
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
