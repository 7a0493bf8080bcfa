package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go/jetstream"
)

// RecentActivity returns the customer's latest events, newest last, found
// among the last scan events of the stream.
func RecentActivity(ctx context.Context, js jetstream.JetStream, uuid string, keep, scan int) ([]*event.Event, int, error) {
	stream, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", natsbus.EventsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	last, first := info.State.LastSeq, info.State.FirstSeq
	if info.State.Msgs == 0 {
		return nil, 0, nil
	}
	start := first
	if last >= uint64(scan) && last-uint64(scan)+1 > first {
		start = last - uint64(scan) + 1
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return nil, 0, err
	}
	var out []*event.Event
	scanned := 0
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, 0, err
		}
		n := 0
		done := false
		for msg := range batch.Messages() {
			n++
			scanned++
			if ev, err := DecodeStored(msg); err == nil && ev.UUID == uuid {
				out = append(out, ev)
				if len(out) > keep {
					out = slices.Delete(out, 0, 1)
				}
			}
			if meta, err := msg.Metadata(); err == nil && meta.Sequence.Stream >= last {
				done = true
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
			return nil, 0, batch.Error()
		}
		if done || n == 0 {
			return out, scanned, nil
		}
	}
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
	dec := event.Decoder{
		Now: func() time.Time { return meta.Timestamp },
		NewID: func(t time.Time) string {
			return event.DeriveID(t, meta.Stream, strconv.FormatUint(meta.Sequence.Stream, 10))
		},
	}
	return dec.Decode(msg.Data())
}
