package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredEvent is one of the customer's events as HERALD_EVENTS stores it.
type StoredEvent struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Stored  time.Time       `json:"stored"`
	Event   json.RawMessage `json:"event"`
	// ID, UUID, Action and Time are read from the event, leniently.
	ID     string         `json:"-"`
	UUID   string         `json:"-"`
	Action string         `json:"-"`
	Site   string         `json:"-"`
	Time   time.Time      `json:"-"`
	Params map[string]any `json:"-"`
}

// eventFilters returns the subject filters of the customer's events in
// the events stream, as it stores them: herald.events.*.<token> and, on a
// partitioned stream, herald.part.*.*.<token>.
func eventFilters(partitioned bool, tokens []string) []string {
	var out []string
	for _, t := range tokens {
		out = append(out, "herald.events.*."+t)
		if partitioned {
			out = append(out, "herald.part.*.*."+t)
		}
	}
	return out
}

// plainFilter matches the events published on a subject without a
// customer token (herald.events.web): whose they are is in their body.
const plainFilter = "herald.events.*"

// partitioned reports whether the events stream stores partitioned
// subjects.
func partitioned(s jetstream.Stream) bool {
	return s.CachedInfo().Config.SubjectTransform != nil
}

// readEvents returns the events of the customer with uuids and tokens:
// those on their subjects, and those on plain subjects whose body names
// one of the uuids. It returns nil when the stream does not exist.
func readEvents(ctx context.Context, js jetstream.JetStream, uuids, tokens []string) (jetstream.Stream, []*StoredEvent, error) {
	s, err := js.Stream(ctx, natsbus.EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", natsbus.EventsStream, err)
	}
	filters := append(eventFilters(partitioned(s), tokens), plainFilter)
	var out []*StoredEvent
	err = readMsgs(ctx, s, filters, func(m jetstream.Msg, meta *jetstream.MsgMetadata) {
		e := &StoredEvent{Seq: meta.Sequence.Stream, Subject: m.Subject(), Stored: meta.Timestamp.UTC(), Event: json.RawMessage(slices.Clone(m.Data()))}
		var body struct {
			ID     string         `json:"id"`
			UUID   string         `json:"uuid"`
			Action string         `json:"action"`
			Site   string         `json:"site"`
			Time   any            `json:"time"`
			Params map[string]any `json:"params"`
		}
		_ = json.Unmarshal(m.Data(), &body)
		e.ID, e.UUID, e.Action, e.Site, e.Params = body.ID, body.UUID, body.Action, body.Site, body.Params
		e.Time = e.Stored
		switch t := body.Time.(type) {
		case string:
			if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
				e.Time = p.UTC()
			}
		case float64:
			e.Time = time.UnixMilli(int64(t)).UTC()
		}
		if natsbus.SplitStored(m.Subject()).Customer == "" && !slices.Contains(uuids, e.UUID) {
			return // a plain subject's event of someone else
		}
		if !json.Valid(e.Event) {
			b, _ := json.Marshal(string(m.Data()))
			e.Event = b
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", natsbus.EventsStream, err)
	}
	return s, out, nil
}

// readMsgs hands fn every message of s on filters, in stream order,
// through an ordered consumer (no durable state on the server). A read
// that finds no responder (on a cluster, just after the consumer was made,
// before its leader is known) is started again, a few times.
func readMsgs(ctx context.Context, s jetstream.Stream, filters []string, fn func(jetstream.Msg, *jetstream.MsgMetadata)) error {
	type read struct {
		m    jetstream.Msg
		meta *jetstream.MsgMetadata
	}
	var got []read
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		got = got[:0]
		err := readOnce(ctx, s, filters, func(m jetstream.Msg, meta *jetstream.MsgMetadata) { got = append(got, read{m, meta}) })
		if err == nil {
			break
		}
		if !errors.Is(err, nats.ErrNoResponders) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
	for _, r := range got {
		fn(r.m, r.meta)
	}
	return nil
}

func readOnce(ctx context.Context, s jetstream.Stream, filters []string, fn func(jetstream.Msg, *jetstream.MsgMetadata)) error {
	// A reader that dies leaves its consumer behind for a minute at most.
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, InactiveThreshold: time.Minute})
	if err != nil {
		return err
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			_ = s.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
		}
	}()
	// What creating the consumer answered: asking again at once may find
	// no responder on a cluster, before the consumer's leader is known.
	info := cons.CachedInfo()
	if info == nil {
		return errors.New("ordered consumer: no info")
	}
	left := info.NumPending
	for left > 0 {
		batch, err := cons.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			fn(m, meta)
			if meta.NumPending == 0 {
				left = 0
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n == 0 {
			break // purged meanwhile
		}
		if left > 0 {
			left -= min(left, uint64(n))
		}
	}
	return nil
}

// Timer is one of the customer's pending timers: a scheduled message on
// herald.timers.<customer token>.<key>.
type Timer struct {
	Stream  string            `json:"stream"`
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Stored  time.Time         `json:"stored"`
	Header  map[string]string `json:"header,omitempty"`
	Data    json.RawMessage   `json:"data"`
}

// timerStream returns the stream holding the timers of the customer with
// token, or nil when no stream holds such subjects.
func timerStream(ctx context.Context, js jetstream.JetStream, token string) (jetstream.Stream, error) {
	name, err := js.StreamNameBySubject(ctx, TimerSubjectPrefix+token+".>")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the stream of timers: %w", err)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return s, nil
}

// readTimers returns the customer's timers.
func readTimers(ctx context.Context, js jetstream.JetStream, tokens []string) ([]*Timer, error) {
	var out []*Timer
	for _, t := range tokens {
		s, err := timerStream(ctx, js, t)
		if err != nil || s == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		name := s.CachedInfo().Config.Name
		err = readMsgs(ctx, s, []string{TimerSubjectPrefix + t + ".>"}, func(m jetstream.Msg, meta *jetstream.MsgMetadata) {
			tm := &Timer{Stream: name, Seq: meta.Sequence.Stream, Subject: m.Subject(), Stored: meta.Timestamp.UTC(), Data: rawJSON(m.Data())}
			for k := range m.Headers() {
				if tm.Header == nil {
					tm.Header = map[string]string{}
				}
				tm.Header[k] = m.Headers().Get(k)
			}
			out = append(out, tm)
		})
		if err != nil {
			return nil, fmt.Errorf("read timers in %s: %w", name, err)
		}
	}
	return out, nil
}

// rawJSON returns data as JSON: itself when it is JSON, else a string.
func rawJSON(data []byte) json.RawMessage {
	if json.Valid(data) {
		return json.RawMessage(slices.Clone(data))
	}
	b, _ := json.Marshal(string(data))
	return b
}

// natsbusCustomer returns the customer token of a stored event subject,
// "" for a plain subject.
func natsbusCustomer(subject string) string { return natsbus.SplitStored(subject).Customer }
