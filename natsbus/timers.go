package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Timers: events to be published later, kept as JetStream scheduled
// messages.
//
// A timer of customer C under key K is one message on
// herald.timers.<CustomerToken(C)>.<KeyToken(K)> in TimersStream, with the
// headers Nats-Schedule ("@at <time>") and Nats-Schedule-Target. The
// server keeps one message per subject (it stores a schedule as a
// per-subject rollup), so scheduling a key again replaces the timer, and
// cancelling it is purging that subject. When the time comes, the server
// itself stores the message's body on the target subject,
// <timer subject>.fired, and purges the timer, in one step; a target must
// be a subject of the timer's own stream, which is why fired timers pass
// through TimersStream. Herald's engines forward each fired timer into
// EventsStream (Forward) with the event's id as Nats-Msg-Id, and delete
// it. The server fires a timer whose time has passed while it was down as
// soon as it is up again: late, never lost.
const (
	// TimersStream holds pending timers and fired ones not yet forwarded.
	TimersStream = "HERALD_TIMERS"
	// TimersSubjects is the subject filter of TimersStream: every timer
	// of every customer. A customer's timers are under
	// TimersPrefix + CustomerToken(uuid) + ".>", which a privacy purge
	// or export takes whole.
	TimersSubjects = "herald.timers.>"
	// TimersPrefix starts every subject of TimersStream.
	TimersPrefix = "herald.timers."
	// FiredSuffix ends the subject a timer fires on: its own subject
	// with .fired added.
	FiredSuffix = ".fired"
	// TimersConsumer is the durable consumer that forwards fired timers.
	TimersConsumer = "herald-timers"
	// TimerSubject is the subject the events of fired timers are
	// published on, with the customer's token added.
	TimerSubject = "herald.events.timer"
	// TimerKeyHeader names the timer's key on its messages, for people
	// and tools reading the stream.
	TimerKeyHeader = "Herald-Timer-Key"
)

// KeyToken returns the subject token of a timer key, built as
// CustomerToken builds a customer's: a key of [A-Za-z0-9_-] is its own
// token, any other "~" and its unpadded base64url encoding.
func KeyToken(key string) string { return CustomerToken(key) }

// TimerSubjectOf returns the subject of customer uuid's timer key.
func TimerSubjectOf(uuid, key string) string {
	return TimersPrefix + CustomerToken(uuid) + "." + KeyToken(key)
}

// CustomerTimers returns the subject filter of every timer of customer
// uuid, fired ones included.
func CustomerTimers(uuid string) string { return TimersPrefix + CustomerToken(uuid) + ".>" }

// firedFilter is the subject filter of fired timers.
const firedFilter = TimersPrefix + "*.*" + FiredSuffix

// TimerBody is a timer's message body: the event to publish, with its
// depth and emit budget (which the event's JSON leaves out), under key.
type TimerBody struct {
	Key    string       `json:"key"`
	Due    time.Time    `json:"due"`
	Event  *event.Event `json:"event"`
	Depth  int          `json:"depth"`
	Budget int          `json:"budget,omitempty"`
}

func decodeTimer(data []byte) (*TimerBody, error) {
	var b TimerBody
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("decode timer: %w", err)
	}
	if b.Event == nil || b.Key == "" {
		return nil, errors.New("decode timer: no event or no key")
	}
	b.Event.Depth, b.Event.Budget = b.Depth, b.Budget
	if err := b.Event.Validate(); err != nil {
		return nil, fmt.Errorf("timer %s: %w", b.Key, err)
	}
	return &b, nil
}

// Timers schedules, cancels and lists timers on TimersStream.
type Timers struct{ js jetstream.JetStream }

// NewTimers returns timers on js; Setup creates TimersStream.
func NewTimers(js jetstream.JetStream) *Timers { return &Timers{js: js} }

// Schedule sets the timer key of the customer of ev to publish ev at due,
// replacing the timer the key had. A due time in the past fires at once.
// Scheduling the same event again (a redelivered effect) within
// DuplicateWindow is stored once; later, it replaces the timer with an
// equal one.
func (t *Timers) Schedule(ctx context.Context, key string, due time.Time, ev *event.Event) error {
	if key == "" || ev.UUID == "" || ev.ID == "" {
		return fmt.Errorf("schedule timer: key, customer and event id are required")
	}
	data, err := json.Marshal(&TimerBody{Key: key, Due: due.UTC(), Event: ev, Depth: ev.Depth, Budget: ev.Budget})
	if err != nil {
		return fmt.Errorf("schedule timer %s: %w", key, err)
	}
	subject := TimerSubjectOf(ev.UUID, key)
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Header.Set(jetstream.ScheduleHeader, "@at "+due.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(jetstream.ScheduleTargetHeader, subject+FiredSuffix)
	msg.Header.Set(TimerKeyHeader, key)
	if _, err := t.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("schedule timer %s of %s: %w", key, ev.UUID, err)
	}
	return nil
}

// Cancel removes the timer key of customer uuid, and the timer fired but
// not yet forwarded. A timer already forwarded is an event like any other
// and is not taken back. Cancelling a key without a timer does nothing.
func (t *Timers) Cancel(ctx context.Context, uuid, key string) error {
	s, err := t.js.Stream(ctx, TimersStream)
	if err != nil {
		return fmt.Errorf("cancel timer %s of %s: %w", key, uuid, err)
	}
	subject := TimerSubjectOf(uuid, key)
	for _, subj := range []string{subject, subject + FiredSuffix} {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return fmt.Errorf("cancel timer %s of %s: %w", key, uuid, err)
		}
	}
	return nil
}

// Pending returns the timers of customer uuid that have not fired, by due
// time.
func (t *Timers) Pending(ctx context.Context, uuid string) ([]*TimerBody, error) {
	s, err := t.js.Stream(ctx, TimersStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list timers of %s: %w", uuid, err)
	}
	filter := TimersPrefix + CustomerToken(uuid) + ".*"
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("list timers of %s: %w", uuid, err)
	}
	var out []*TimerBody
	for subj := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // fired or cancelled meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list timers of %s: %w", uuid, err)
		}
		b, err := decodeTimer(m.Data)
		if err != nil {
			return nil, fmt.Errorf("timer on %s: %w", subj, err)
		}
		out = append(out, b)
	}
	sortTimers(out)
	return out, nil
}

func sortTimers(ts []*TimerBody) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && (ts[j].Due.Before(ts[j-1].Due) || ts[j].Due.Equal(ts[j-1].Due) && ts[j].Key < ts[j-1].Key); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// Forward publishes each fired timer's event through pub (on
// TimerSubject, with the event's id as Nats-Msg-Id, so a timer forwarded
// twice is stored once) and deletes it from TimersStream, until ctx ends.
// A fired timer that does not decode is logged and deleted; one that
// cannot be published is tried again after a delay.
func (t *Timers) Forward(ctx context.Context, pub *Publisher, logger *slog.Logger) error {
	s, err := t.js.Stream(ctx, TimersStream)
	if err != nil {
		return fmt.Errorf("forward timers: %w", err)
	}
	c, err := s.Consumer(ctx, TimersConsumer)
	if err != nil {
		return fmt.Errorf("forward timers: %w", err)
	}
	for ctx.Err() == nil {
		batch, err := c.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			logger.Warn("fetch fired timers; trying again", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for msg := range batch.Messages() {
			t.forward(ctx, s, pub, msg, logger)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			logger.Warn("fetch fired timers; trying again", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

func (t *Timers) forward(ctx context.Context, s jetstream.Stream, pub *Publisher, msg jetstream.Msg, logger *slog.Logger) {
	meta, err := msg.Metadata()
	if err != nil {
		logger.Error("fired timer without metadata", "subject", msg.Subject(), "err", err)
		return
	}
	b, err := decodeTimer(msg.Data())
	if err != nil {
		logger.Error("fired timer dropped: it does not decode", "subject", msg.Subject(), "err", err)
	} else if err := pub.Publish(ctx, b.Event); err != nil {
		logger.Warn("forward fired timer; trying again", "key", b.Key, "event", b.Event.ID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if err := s.DeleteMsg(ctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		logger.Warn("delete forwarded timer", "subject", msg.Subject(), "err", err)
	}
	_ = msg.Ack()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ensureTimers creates TimersStream and TimersConsumer, or fixes them.
func ensureTimers(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name:              TimersStream,
		Description:       "Herald: timers, events to publish later",
		Subjects:          []string{TimersSubjects},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          max(replicas, 1),
		Duplicates:        DuplicateWindow,
		AllowMsgSchedules: true,
		AllowRollup:       true,
	}
	s, err := ensureStream(ctx, js, want, streamNeeds{what: "timers", subjects: TimersSubjects, prefix: TimersPrefix, duplicates: DuplicateWindow, replicas: replicas})
	if err != nil {
		return nil, err
	}
	if cfg := s.CachedInfo().Config; !cfg.AllowMsgSchedules || !cfg.AllowRollup || cfg.DenyPurge {
		cfg.AllowMsgSchedules, cfg.AllowRollup, cfg.DenyPurge = true, true, false
		if s, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("update stream %s: %w", TimersStream, err)
		}
	}
	_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Name:          TimersConsumer,
		Durable:       TimersConsumer,
		Description:   "Herald engines: forward fired timers to the events stream",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1,
		FilterSubject: firedFilter,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", TimersConsumer, TimersStream, err)
	}
	return s, nil
}
