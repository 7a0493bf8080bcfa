package natsbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading a customer's stored events.
//
// Every event Herald or `herald publish` publishes, and every event the
// router routes, is stored on its customer's subjects:
// herald.events.<source>.<token> on a stream without partitions (and on a
// partitioned stream, for the events stored before it was partitioned),
// herald.part.<p>.<source>.<token> on a partitioned one. So a customer's
// events are found by subject, with
// JetStream's "get message" request: the first message at or after a
// sequence on a subject filter (next_by_subj, wildcards allowed). No
// consumer is created, nothing is left behind, and the request is answered
// by the stream's leader, so what was acknowledged to a publisher is seen
// (a read from a replica, as a direct get is, may lag behind the leader).
// So the events stream does not allow direct gets; if an operator turns
// allow_direct on, nats.go sends these reads as direct gets, which any
// replica may answer.
//
// Events published on a plain source subject (herald.events.web) of a
// stream without partitions have no customer in the subject and are not
// found this way; PlainEvents walks those. Nor are events published on a
// subject of five tokens or more (herald.events.a.b.c) of such a stream.
//
// Each message costs one round trip to the stream's leader, and what a
// walk costs is the number of the customer's events, whatever the size of
// the stream.

// HistoryRange bounds a walk of stored events by stream sequence. Zero
// values mean from the stream's first message, and to its last message
// as of the moment each request is answered.
type HistoryRange struct {
	From, To uint64
}

// CustomerFilters returns the subject filters of customer uuid's events
// as the events stream stores them: herald.events.*.<token>, and the
// partitioned form herald.part.<p>.*.<token>, p being the customer's
// partition among partitions (herald.part.*.*.<token> when partitions is
// 0 or less: any partition).
func CustomerFilters(uuid string, partitions int) []string {
	tok := CustomerToken(uuid)
	part := "*"
	if partitions > 0 {
		part = strconv.Itoa(PartitionOf(tok, partitions))
	}
	return []string{eventsPrefix + "*." + tok, partitionPrefix + part + ".*." + tok}
}

// PlainFilter is the subject filter of events published on a plain source
// subject (herald.events.<source>), with no customer in the subject.
const PlainFilter = eventsPrefix + "*"

// CustomerEvents calls fn with each message stored in the events stream
// on customer uuid's subjects (CustomerFilters), oldest first, in stream
// order, as the stream stores it: subject, sequence, time, headers and
// data. It creates no consumer: each message is one get-message request
// to the stream's leader. An error from fn stops the walk and is
// returned.
//
// The data is the event's JSON as published; its uuid is usually uuid,
// but not always: an event published on another customer's subject, or
// an event of an anonymous customer published again on the known
// customer's subject after a merge (with CustomerHeader), is stored on a
// subject of one customer and names another. Callers decide what to make
// of those. Events on plain subjects of a stream without partitions
// (PlainEvents) are not among them.
func CustomerEvents(ctx context.Context, js jetstream.JetStream, uuid string, fn func(*jetstream.RawStreamMsg) error) error {
	return CustomerEventsIn(ctx, js, uuid, HistoryRange{}, fn)
}

// CustomerEventsIn is CustomerEvents limited to the stream sequences of r.
func CustomerEventsIn(ctx context.Context, js jetstream.JetStream, uuid string, r HistoryRange, fn func(*jetstream.RawStreamMsg) error) error {
	s, err := OpenEvents(ctx, js)
	if err != nil {
		return err
	}
	n := streamPartitions(s.CachedInfo().Config)
	return StoredEvents(ctx, s, CustomerFilters(uuid, n), r, fn)
}

// PlainEvents calls fn with each message stored in the events stream on a
// plain source subject (PlainFilter) within r, in stream order. On a
// partitioned stream these are the copies the router published again on
// their customers' subjects.
func PlainEvents(ctx context.Context, js jetstream.JetStream, r HistoryRange, fn func(*jetstream.RawStreamMsg) error) error {
	s, err := OpenEvents(ctx, js)
	if err != nil {
		return err
	}
	return StoredEvents(ctx, s, []string{PlainFilter}, r, fn)
}

// OpenEvents opens the events stream, trying again while it elects a
// leader (see RetryRead). Its CachedInfo holds the stream's configuration
// and state as of the call.
func OpenEvents(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := RetryRead(ctx, func(ctx context.Context) error {
		var err error
		s, err = js.Stream(ctx, EventsStream)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", EventsStream, err)
	}
	return s, nil
}

// StoredEvents calls fn with each message of stream s stored on any of the
// subject filters within r, in stream order, each message once. Each
// filter is walked with get-message requests (next_by_subj from a
// sequence), and the walks are merged by sequence. A request that fails
// for a moment (no leader while one is elected, a timeout) is tried again
// with a capped, jittered backoff (see RetryRead).
func StoredEvents(ctx context.Context, s jetstream.Stream, filters []string, r HistoryRange, fn func(*jetstream.RawStreamMsg) error) error {
	from := max(r.From, 1)
	type cursor struct {
		filter string
		next   *jetstream.RawStreamMsg // nil when the filter has no more
	}
	advance := func(c *cursor, seq uint64) error {
		c.next = nil
		if r.To > 0 && seq > r.To {
			return nil
		}
		var m *jetstream.RawStreamMsg
		err := RetryRead(ctx, func(ctx context.Context) error {
			var err error
			m, err = s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(c.filter))
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("read %s on %s from sequence %d: %w", s.CachedInfo().Config.Name, c.filter, seq, err)
		}
		if r.To > 0 && m.Sequence > r.To {
			return nil
		}
		c.next = m
		return nil
	}
	cursors := make([]*cursor, 0, len(filters))
	for _, f := range filters {
		c := &cursor{filter: f}
		if err := advance(c, from); err != nil {
			return err
		}
		cursors = append(cursors, c)
	}
	for {
		var low *cursor
		for _, c := range cursors {
			if c.next != nil && (low == nil || c.next.Sequence < low.next.Sequence) {
				low = c
			}
		}
		if low == nil {
			return nil
		}
		m := low.next
		// Filters may overlap: a message matching several is passed once.
		for _, c := range cursors {
			if c != low && c.next != nil && c.next.Sequence == m.Sequence {
				if err := advance(c, m.Sequence+1); err != nil {
					return err
				}
			}
		}
		if err := fn(m); err != nil {
			return err
		}
		if err := advance(low, m.Sequence+1); err != nil {
			return err
		}
	}
}

// Retries of a read: for up to readBudget (or until the caller's context
// ends, if sooner), waiting from readRetryMin, doubling up to
// readRetryMax, with full jitter; each attempt waits at most readTimeout
// for its answer.
const (
	readBudget   = 30 * time.Second
	readRetryMin = 50 * time.Millisecond
	readRetryMax = 2 * time.Second
	readTimeout  = 5 * time.Second
)

// RetryRead calls f until it succeeds, fails for good, or has failed for
// a moment (a timeout, no responders, JetStream temporarily unavailable:
// a stream or bucket electing a leader, a connection moving to another
// server) for 30 seconds or until ctx ends, waiting from 50 ms, doubling
// up to 2 s, with full jitter. Each call of f gets a context bounded to
// 5 s, so a request sent while no leader could answer it is sent again
// rather than waited for. For reads, and for writes that are harmless to
// repeat (a purge by subject, a delete): another write tried again may be
// applied twice.
func RetryRead(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readBudget)
	defer cancel()
	wait := readRetryMin
	for {
		actx, cancel := context.WithTimeout(ctx, readTimeout)
		err := f(actx)
		cancel()
		if err == nil || !transientRead(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(rand.N(wait) + time.Millisecond):
		}
		wait = min(2*wait, readRetryMax)
	}
}

// transientRead reports whether a failed read may succeed if tried again:
// a timeout, no responders (no leader yet, or the connection
// reconnecting), a JetStream cluster not available for the moment.
func transientRead(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	case errors.As(err, &apiErr):
		// 503s: JetStream or the stream's group not available right now.
		return apiErr.Code == 503 || apiErr.Code == 500
	}
	return false
}

// StreamPartitions returns the number of partitions the events stream of
// configuration cfg is split into: 0 when it is not partitioned, -1 when
// its subject transform is not one Herald set.
func StreamPartitions(cfg jetstream.StreamConfig) int { return streamPartitions(cfg) }
