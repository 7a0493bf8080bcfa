package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// inflight holds the messages pulled and not yet settled (acked, nak'ed or
// terminated). It bounds how many there are, and reports every one of them
// in progress to the server, whether it is being handled or waits in a
// worker's queue, so that none is redelivered meanwhile.
type inflight struct {
	limit int
	wake  chan struct{} // signalled when a message is settled

	mu       sync.Mutex
	reserved int // room taken by the fetch under way
	msgs     map[jetstream.Msg]struct{}
}

func newInflight(limit int) *inflight {
	return &inflight{limit: limit, wake: make(chan struct{}, 1), msgs: make(map[jetstream.Msg]struct{})}
}

// size is the most messages held at once.
func (f *inflight) size() int { return f.limit }

// reserve waits for room for messages and takes all there is for a fetch,
// until endFetch. It returns how many messages may be fetched, or 0 if ctx
// ended first.
func (f *inflight) reserve(ctx context.Context) int {
	for {
		f.mu.Lock()
		free := f.limit - len(f.msgs) - f.reserved
		if free > 0 {
			f.reserved += free
			f.mu.Unlock()
			return free
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0
		case <-f.wake:
		}
	}
}

// add holds a message just pulled, in room reserved for it.
func (f *inflight) add(msg jetstream.Msg) {
	f.mu.Lock()
	f.msgs[msg] = struct{}{}
	if f.reserved > 0 {
		f.reserved--
	}
	f.mu.Unlock()
}

// endFetch gives back the room the fetch under way did not use.
func (f *inflight) endFetch() {
	f.mu.Lock()
	f.reserved = 0
	f.mu.Unlock()
}

// len reports how many messages are held.
func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

// clear lets go of every message held without settling any: they are
// delivered again once their ack wait runs out.
func (f *inflight) clear() {
	f.mu.Lock()
	clear(f.msgs)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// drop lets go of a message that is left unsettled, to be delivered again
// once its ack wait runs out.
func (f *inflight) drop(msg jetstream.Msg) { f.done(msg) }

// done lets go of a message about to be settled.
func (f *inflight) done(msg jetstream.Msg) {
	f.mu.Lock()
	delete(f.msgs, msg)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// keepInProgress reports every message held in progress every interval,
// until ctx ends; while ok, if not nil, reports false, it reports none.
func (f *inflight) keepInProgress(ctx context.Context, every time.Duration, ok func() bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ok != nil && !ok() {
			continue
		}
		f.mu.Lock()
		msgs = msgs[:0]
		for msg := range f.msgs {
			msgs = append(msgs, msg)
		}
		f.mu.Unlock()
		for _, msg := range msgs {
			// An error means the message was settled meanwhile, or the
			// connection is down and the message will come back anyway.
			_ = msg.InProgress()
		}
	}
}
