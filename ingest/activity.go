package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go/jetstream"
)

// Activity is what RecentActivity found of a customer's events.
type Activity struct {
	// Events are the customer's latest events, oldest first, in stream
	// order.
	Events []*event.Event
	// PlainScan is how many of the stream's latest messages were looked
	// through for events on plain subjects (a stream without partitions
	// only; see RecentActivity), when any event on a plain subject was
	// among them; 0 otherwise.
	PlainScan int
}

// firstWindow is how many of the stream's latest sequences RecentActivity
// looks through first; each further window is four times as large.
const firstWindow = 4096

// RecentActivity returns the latest keep events of customer uuid in the
// events stream, oldest first, with their ids and times as the consumer
// gives them (an event without an id gets one derived from its sequence,
// one without a time the time it was stored).
//
// The events are found by subject (natsbus.CustomerEventsIn): no consumer
// is created, and every stored event of the customer can be found however
// large the stream, looked for from the stream's end in windows of
// growing size until keep are found. Only events whose uuid is uuid are
// kept: the copy of a merged customer's event published again on the
// known customer's subject names the merged customer, and is found under
// that uuid.
//
// Events published on a plain source subject (herald.events.web) carry no
// customer in the subject. On a partitioned stream the router publishes
// each again on its customer's subject, where it is found. On a stream
// without partitions they stay on the plain subject: RecentActivity then
// also looks through the plain subjects among the stream's latest
// plainScan messages, reading each such event to match its uuid; older
// ones are not found.
func RecentActivity(ctx context.Context, js jetstream.JetStream, uuid string, keep, plainScan int) (*Activity, error) {
	s, err := natsbus.OpenEvents(ctx, js)
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	first, last := info.State.FirstSeq, info.State.LastSeq
	act := new(Activity)
	if info.State.Msgs == 0 || keep < 1 {
		return act, nil
	}
	var out []found
	collect := func(into *[]found) func(*jetstream.RawStreamMsg) error {
		return func(m *jetstream.RawStreamMsg) error {
			if ev := decodeStored(m); ev != nil && ev.UUID == uuid {
				*into = append(*into, found{m.Sequence, ev})
			}
			return nil
		}
	}
	// Customer subjects, from the end, in windows of growing size.
	partitions := natsbus.StreamPartitions(info.Config)
	filters := natsbus.CustomerFilters(uuid, partitions)
	to := last
	for window := uint64(firstWindow); ; window *= 4 {
		from := first
		if to >= first+window {
			from = to - window + 1
		}
		var chunk []found
		if err := natsbus.StoredEvents(ctx, s, filters, natsbus.HistoryRange{From: from, To: to}, collect(&chunk)); err != nil {
			return nil, err
		}
		out = append(chunk, out...)
		if len(out) >= keep || from <= first {
			break
		}
		to = from - 1
	}
	// Plain subjects, on a stream without partitions.
	if partitions == 0 && plainScan > 0 {
		from := first
		if last >= first+uint64(plainScan) {
			from = last - uint64(plainScan) + 1
		}
		plain, seen, err := plainActivity(ctx, s, from, last, collect)
		if err != nil {
			return nil, err
		}
		if seen > 0 {
			act.PlainScan = int(last - from + 1)
		}
		out = append(out, plain...)
		slices.SortFunc(out, func(a, b found) int { return cmp.Compare(a.seq, b.seq) })
	}
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	for _, f := range out {
		act.Events = append(act.Events, f.ev)
	}
	return act, nil
}

// found is an event found, with its sequence.
type found struct {
	seq uint64
	ev  *event.Event
}

// plainWalks is how many walks of the plain subjects run at once, each
// over a part of the range: each message is a request and its answer.
const plainWalks = 8

// plainActivity walks the plain subjects from sequence from to to, in
// plainWalks parts at once, and returns what collect kept, in stream
// order, and how many messages were on plain subjects.
func plainActivity(ctx context.Context, s jetstream.Stream, from, to uint64, collect func(*[]found) func(*jetstream.RawStreamMsg) error) ([]found, int, error) {
	n := uint64(plainWalks)
	size := (to - from + n) / n
	parts := make([][]found, n)
	seen := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		r := natsbus.HistoryRange{From: from + i*size, To: min(from+(i+1)*size-1, to)}
		if r.From > to {
			break
		}
		wg.Go(func() {
			add := collect(&parts[i])
			errs[i] = natsbus.StoredEvents(ctx, s, []string{natsbus.PlainFilter}, r, func(m *jetstream.RawStreamMsg) error {
				seen[i]++
				return add(m)
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	total := 0
	for _, k := range seen {
		total += k
	}
	return slices.Concat(parts...), total, nil
}

// decodeStored decodes the event of a message read by sequence, as
// DecodeStored does, or returns nil for a message that is not a valid
// event.
func decodeStored(m *jetstream.RawStreamMsg) *event.Event {
	ev, err := decodeAt(m.Data, natsbus.EventsStream, m.Sequence, m.Time)
	if err != nil {
		return nil
	}
	return ev
}

// DecodeStored decodes the event of a stored message as the engine does:
// an event stored without an id gets the id derived from its stream and
// sequence, one without a time the time the stream stored it. So every
// reading of the stream shows the id and time its effects were made
// under, never a new one.
func DecodeStored(msg jetstream.Msg) (*event.Event, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("read message metadata: %w", err)
	}
	return decodeAt(msg.Data(), meta.Stream, meta.Sequence.Stream, meta.Timestamp)
}

// decodeAt decodes data, stored in stream at sequence seq at time stored.
func decodeAt(data []byte, stream string, seq uint64, stored time.Time) (*event.Event, error) {
	dec := event.Decoder{
		Now: func() time.Time { return stored },
		NewID: func(t time.Time) string {
			return event.DeriveID(t, stream, strconv.FormatUint(seq, 10))
		},
	}
	return dec.Decode(data)
}
