package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// reasonPoison labels events kept as dead letters because attempts at
// handling them kept dying (see Attempts).
const reasonPoison = "poison"

// Attempts ends crash loops. An event whose handling kills the process
// (out of memory, a crash in a dependency) or hangs it past the ack wait
// is delivered again after every restart, and kills it again. The
// server's delivery count cannot tell such deliveries apart from the
// Consumer's own retries (naks) and from events sent back to wait behind
// their customer's failed one, so Attempts counts, per message, the
// attempts at handling it that started and never finished, in
// natsbus.AttemptsBucket, which outlives the process:
//
//   - a first delivery costs nothing: it is neither read nor written; if
//     it does not finish, the next delivery finds no count and counts it
//     as one attempt that died;
//   - a later delivery reads the count; if MaxCrashes attempts died, the
//     event is kept as a dead letter ("poison: delivered N times without
//     completing") and terminated without being handled; otherwise the
//     count goes up by one, for this attempt, before handling;
//   - when the attempt finishes without completing the event (a nak for
//     a retry, or sent back behind its customer) the count goes back
//     down; a first delivery that does so writes a count of 0, so that
//     the next delivery does not take it for a crash;
//   - when the event completes (acked, or terminated as a dead letter) the
//     count is deleted.
//
// Counts are keyed by stream, consumer and stream sequence; the bucket's
// TTL (natsbus.AttemptsTTL) clears counts left behind. Bookkeeping that
// fails is logged and does not hold events up: at worst a crash is
// missed, or a retry taken for one.
type Attempts struct {
	js jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue // opened on first use
}

// NewAttempts returns Attempts kept in js's natsbus.AttemptsBucket, which
// is created the first time an event is delivered again.
func NewAttempts(js jetstream.JetStream) *Attempts {
	return &Attempts{js: js}
}

func (a *Attempts) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kv == nil {
		kv, err := natsbus.Attempts(ctx, a.js)
		if err != nil {
			return nil, err
		}
		a.kv = kv
	}
	return a.kv, nil
}

// get returns the count under key, and whether there is one.
func (a *Attempts) get(ctx context.Context, key string) (int, bool, error) {
	kv, err := a.bucket(ctx)
	if err != nil {
		return 0, false, err
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read attempts %s: %w", key, err)
	}
	n, err := strconv.Atoi(string(e.Value()))
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("read attempts %s: %q is not a count", key, e.Value())
	}
	return n, true, nil
}

func (a *Attempts) set(ctx context.Context, key string, n int) error {
	kv, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, []byte(strconv.Itoa(n))); err != nil {
		return fmt.Errorf("count attempts %s: %w", key, err)
	}
	return nil
}

func (a *Attempts) clear(ctx context.Context, key string) error {
	kv, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("clear attempts %s: %w", key, err)
	}
	return nil
}

// attempt is the bookkeeping of one delivery of an event.
type attempt struct {
	// started is true once the attempt is counted: the count stands at
	// before+1 until it finishes.
	started bool
	before  int
}

// attemptKey is the key of a message's count: stream, consumer and stream
// sequence, with any character a key may not hold replaced.
func attemptKey(meta *jetstream.MsgMetadata) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
				return r
			}
			return '_'
		}, s)
	}
	return clean(meta.Stream) + "." + clean(meta.Consumer) + "." + strconv.FormatUint(meta.Sequence.Stream, 10)
}

// PoisonError is the reason an event is kept as a poison dead letter.
type PoisonError struct {
	// Crashes is how many attempts at handling the event never finished.
	Crashes int
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("poison: delivered %d times without completing", e.Crashes)
}

// begin counts the attempt j is about to make, before it is handled. It
// returns a *PoisonError instead when MaxCrashes attempts died already.
func (r *run) begin(ctx context.Context, j *job) error {
	if r.attempts == nil || j.meta.NumDelivered <= 1 {
		return nil
	}
	key := attemptKey(j.meta)
	n, ok, err := r.attempts.get(ctx, key)
	if err != nil {
		r.log.Warn("read attempts; handling the event anyway", "event", j.ev.ID, "err", err)
		return nil
	}
	if !ok {
		n = 1 // the first delivery never finished: neither acked nor sent back
	}
	if n >= r.maxCrashes {
		return &PoisonError{Crashes: n}
	}
	if err := r.attempts.set(ctx, key, n+1); err != nil {
		r.log.Warn("count attempt; handling the event anyway", "event", j.ev.ID, "err", err)
		return nil
	}
	j.att = attempt{started: true, before: n}
	return nil
}

// unfinished records that j's attempt finishes without completing the
// event, which will be delivered again: it is not a crash. Called before
// the nak, so the next delivery finds the count.
func (r *run) unfinished(ctx context.Context, j job) {
	if r.attempts == nil || j.ev == nil || j.meta == nil {
		return
	}
	n := 0
	switch {
	case j.att.started:
		n = j.att.before
	case j.meta.NumDelivered <= 1:
	default:
		return // not counted: the count stands as it was
	}
	if err := r.attempts.set(ctx, attemptKey(j.meta), n); err != nil {
		r.log.Warn("count attempt", "event", j.ev.ID, "err", err)
	}
}

// completed forgets j's count once the event is acked or terminated.
func (r *run) completed(ctx context.Context, j job) {
	if r.attempts == nil || j.ev == nil || j.meta == nil || j.meta.NumDelivered <= 1 {
		return
	}
	if err := r.attempts.clear(ctx, attemptKey(j.meta)); err != nil {
		r.log.Debug("clear attempts", "event", j.ev.ID, "err", err)
	}
}

// withEventID is a message whose headers also carry, in
// natsbus.HeaderEventID, the id the consumer read its event with, for the
// dead letter to keep: an event without an id of its own is given one
// derived from where it is stored, which a retry must keep.
type withEventID struct {
	jetstream.Msg
	header nats.Header
}

func (m withEventID) Headers() nats.Header { return m.header }

// deadLetterMsg is the message to give DeadLetter for j: with the event's
// id in natsbus.HeaderEventID, and never a HeaderEventID it came with.
func deadLetterMsg(j job) jetstream.Msg {
	h := j.msg.Headers()
	if j.ev == nil && h.Get(natsbus.HeaderEventID) == "" {
		return j.msg
	}
	c := make(nats.Header, len(h)+1)
	for k, v := range h {
		c[k] = v
	}
	c.Del(natsbus.HeaderEventID)
	if j.ev != nil {
		c.Set(natsbus.HeaderEventID, j.ev.ID)
	}
	return withEventID{Msg: j.msg, header: c}
}

// reasonUsed reports the dead-letter reason label from the start, at 0,
// as NewMetrics does for the others.
func (m *Metrics) reasonUsed(label string) {
	if m != nil {
		m.deadLettered.WithLabelValues(label)
	}
}
