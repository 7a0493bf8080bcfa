package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of DeadLetters.
var (
	// ErrDeadNotFound means DeadStream holds no message with the sequence
	// asked for.
	ErrDeadNotFound = errors.New("no such dead letter")
	// ErrDeadEffect means a dead letter is a failed effect, which cannot
	// be published again as an event.
	ErrDeadEffect = errors.New("a failed effect, not an event: effects cannot be retried as events")
)

// Dead is one message DeadStream keeps: the dead letter of an event (see
// DeadLetter) or a failed effect (see DeadEffect).
type Dead struct {
	// Seq is the message's sequence in DeadStream: its id.
	Seq uint64
	// Subject is its subject in DeadStream.
	Subject string
	Header  nats.Header
	Data    []byte
	// Stored is when DeadStream stored it.
	Stored time.Time
}

// IsEffect reports whether d is a failed effect rather than an event.
func (d *Dead) IsEffect() bool {
	return d.Header.Get(HeaderOriginalSubject) == "" && (d.Header.Get(HeaderEffectKey) != "" || d.Subject == DeadEffectSubject)
}

// Reason is why the message could not be processed.
func (d *Dead) Reason() string { return d.Header.Get(HeaderReason) }

// OriginalSubject is the subject the event was published to; "" for an
// effect.
func (d *Dead) OriginalSubject() string { return d.Header.Get(HeaderOriginalSubject) }

// EffectKey is a failed effect's key: the source event, rule and step.
func (d *Dead) EffectKey() string { return d.Header.Get(HeaderEffectKey) }

// FailedAt is when processing gave up, or when DeadStream stored d if it
// does not say.
func (d *Dead) FailedAt() time.Time {
	if t, err := time.Parse(time.RFC3339, d.Header.Get(HeaderFailedAt)); err == nil {
		return t
	}
	return d.Stored
}

// EventID is the id of the event: HeaderEventID, else the id in the body
// (for an effect, the event that caused it); "" when there is none.
func (d *Dead) EventID() string {
	if id := d.Header.Get(HeaderEventID); id != "" && !d.IsEffect() {
		return id
	}
	var body struct {
		ID    string `json:"id"`
		Event string `json:"event"` // an effect's source event
	}
	_ = json.Unmarshal(d.Data, &body)
	if d.IsEffect() {
		return body.Event
	}
	return body.ID
}

// UUID is the customer of the event, read leniently from the body (an
// invalid event may still name one); "" when there is none.
func (d *Dead) UUID() string {
	if d.IsEffect() {
		return ""
	}
	var body struct {
		UUID string `json:"uuid"`
	}
	_ = json.Unmarshal(d.Data, &body)
	return body.UUID
}

// Event reads the event of a dead letter as the consumer read it: with the
// id it gave it (HeaderEventID; for dead letters kept before that header,
// the id the consumer derives from the stream and sequence) and, for an
// event without a time, the time the events stream received it. It fails
// for an effect (ErrDeadEffect) and for a body that is not a valid event.
// Depth and emit budget travel in headers and are not read.
func (d *Dead) Event() (*event.Event, error) {
	if d.IsEffect() {
		return nil, ErrDeadEffect
	}
	received := d.Stored
	if t, err := time.Parse(time.RFC3339Nano, d.Header.Get(HeaderOriginalTime)); err == nil {
		received = t
	}
	stream := d.Header.Get(HeaderOriginalStream)
	if stream == "" {
		stream = EventsStream
	}
	dec := event.Decoder{
		Now: func() time.Time { return received },
		NewID: func(t time.Time) string {
			if id := d.Header.Get(HeaderEventID); id != "" {
				return id
			}
			return event.DeriveID(t, stream, d.Header.Get(HeaderOriginalStreamSeq))
		},
	}
	ev, err := dec.Decode(d.Data)
	if err != nil {
		return nil, fmt.Errorf("not a valid event: %w", err)
	}
	return ev, nil
}

// deadHeader reports whether a header of a dead letter was added by
// DeadLetter or the consumer, rather than carried from the original.
func deadHeader(k string) bool {
	switch k {
	case HeaderReason, HeaderOriginalSubject, HeaderOriginalStream, HeaderOriginalStreamSeq,
		HeaderOriginalTime, HeaderFailedAt, HeaderEventID, HeaderEffectKey:
		return true
	}
	return len(k) >= 5 && strings.EqualFold(k[:5], "Nats-")
}

// RetryMsg builds the message that publishes the event of d again: the
// event (see Event) as Msg encodes it, on its original subject, with the
// original's headers (its depth and emit budget among them). Its
// Nats-Msg-Id is "retry-<Seq>-<event id>", not the event's id: the
// original's id may still be in the duplicate window, which would drop the
// retry, while retrying the same dead letter twice within the window
// stores the event once. Past the window, the applier recognises the
// event by its id (profile.Record.HasApplied) and does not apply it
// twice.
func (d *Dead) RetryMsg() (*nats.Msg, error) {
	ev, err := d.Event()
	if err != nil {
		return nil, err
	}
	subject := d.OriginalSubject()
	if !strings.HasPrefix(subject, eventsPrefix) || len(subject) == len(eventsPrefix) {
		return nil, fmt.Errorf("original subject %q is not under %s", subject, eventsPrefix)
	}
	msg, err := Msg(subject, ev)
	if err != nil {
		return nil, err
	}
	for k, v := range d.Header {
		if deadHeader(k) || msg.Header.Get(k) != "" {
			continue
		}
		msg.Header[k] = append([]string(nil), v...)
	}
	msg.Header.Set(jetstream.MsgIDHeader, "retry-"+strconv.FormatUint(d.Seq, 10)+"-"+ev.ID)
	return msg, nil
}

// DeadLetters reads and settles what DeadStream keeps.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenDeadLetters opens DeadStream, trying again while a leader is
// elected.
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream) (*DeadLetters, error) {
	var s jetstream.Stream
	err := RetryRead(ctx, func(ctx context.Context) (err error) {
		s, err = js.Stream(ctx, DeadStream)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", DeadStream, err)
	}
	return &DeadLetters{js: js, stream: s}, nil
}

// List returns every message DeadStream holds, oldest first. It reads
// them with get-message requests to the stream's leader (StoredEvents), so
// it creates no consumer, and it tries reads again while a leader is
// elected: on a cluster it neither fails for a moment nor leaves
// consumers behind.
func (dl *DeadLetters) List(ctx context.Context) ([]*Dead, error) {
	var info *jetstream.StreamInfo
	err := RetryRead(ctx, func(ctx context.Context) (err error) {
		info, err = dl.stream.Info(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DeadStream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	var out []*Dead
	err = StoredEvents(ctx, dl.stream, []string{DeadSubjects}, HistoryRange{To: info.State.LastSeq}, func(m *jetstream.RawStreamMsg) error {
		h := m.Header
		if h == nil {
			h = nats.Header{}
		}
		out = append(out, &Dead{Seq: m.Sequence, Subject: m.Subject, Header: h, Data: m.Data, Stored: m.Time})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DeadStream, err)
	}
	return out, nil
}

// Get returns the message with sequence seq, or ErrDeadNotFound.
func (dl *DeadLetters) Get(ctx context.Context, seq uint64) (*Dead, error) {
	m, err := dl.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dead letter %d: %w", seq, ErrDeadNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	return &Dead{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data, Stored: m.Time}, nil
}

// Retry publishes the event of d again on its original subject (see
// RetryMsg), then deletes d. It returns the event. If deleting fails
// after the event was published, retrying d again is harmless.
func (dl *DeadLetters) Retry(ctx context.Context, d *Dead) (*event.Event, error) {
	msg, err := d.RetryMsg()
	if err != nil {
		return nil, err
	}
	ev, err := d.Event()
	if err != nil {
		return nil, err
	}
	if _, err := dl.js.PublishMsg(ctx, msg); err != nil {
		return nil, fmt.Errorf("publish %s on %s: %w", ev.ID, msg.Subject, err)
	}
	if err := dl.Delete(ctx, d.Seq); err != nil {
		return ev, fmt.Errorf("published again, but: %w", err)
	}
	return ev, nil
}

// Delete deletes the message with sequence seq from DeadStream.
func (dl *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	if err := dl.stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}
