package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/herald-events/herald/natsbus"
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

// partitioned reports whether the events stream stores partitioned
// subjects.
func partitioned(s jetstream.Stream) bool {
	return s.CachedInfo().Config.SubjectTransform != nil
}

// readEvents returns the events of the customer with uuids: those on
// their subjects, and those on plain subjects whose body names one of the
// uuids. It returns a nil stream when there is no events stream. Events
// are read with get-message requests (natsbus.StoredEvents): no consumer
// is made.
func readEvents(ctx context.Context, js jetstream.JetStream, uuids []string) (jetstream.Stream, []*StoredEvent, error) {
	var s jetstream.Stream
	err := natsbus.RetryRead(ctx, func(ctx context.Context) (err error) {
		s, err = js.Stream(ctx, natsbus.EventsStream)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", natsbus.EventsStream, err)
	}
	n := max(natsbus.StreamPartitions(s.CachedInfo().Config), 0)
	filters := []string{natsbus.PlainFilter}
	for _, u := range uuids {
		filters = append(filters, natsbus.CustomerFilters(u, n)...)
	}
	var out []*StoredEvent
	err = natsbus.StoredEvents(ctx, s, filters, natsbus.HistoryRange{}, func(m *jetstream.RawStreamMsg) error {
		e := &StoredEvent{Seq: m.Sequence, Subject: m.Subject, Stored: m.Time.UTC(), Event: rawJSON(m.Data)}
		var body struct {
			ID     string         `json:"id"`
			UUID   string         `json:"uuid"`
			Action string         `json:"action"`
			Site   string         `json:"site"`
			Time   any            `json:"time"`
			Params map[string]any `json:"params"`
		}
		_ = json.Unmarshal(m.Data, &body)
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
		if natsbus.SplitStored(m.Subject).Customer == "" && !slices.Contains(uuids, e.UUID) {
			return nil // a plain subject's event of someone else
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return s, out, nil
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
	var name string
	err := natsbus.RetryRead(ctx, func(ctx context.Context) (err error) {
		name, err = js.StreamNameBySubject(ctx, natsbus.TimersPrefix+token+".>")
		return err
	})
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
		err = natsbus.StoredEvents(ctx, s, []string{natsbus.TimersPrefix + t + ".>"}, natsbus.HistoryRange{}, func(m *jetstream.RawStreamMsg) error {
			tm := &Timer{Stream: name, Seq: m.Sequence, Subject: m.Subject, Stored: m.Time.UTC(), Data: rawJSON(m.Data)}
			for k := range m.Header {
				if tm.Header == nil {
					tm.Header = map[string]string{}
				}
				tm.Header[k] = m.Header.Get(k)
			}
			out = append(out, tm)
			return nil
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
