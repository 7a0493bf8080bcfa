package natsbus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects Herald itself publishes events on.
const (
	// EmitSubject carries events that rules emit.
	EmitSubject = "herald.events.emitted"
	// LinkSubject carries events of confirmed signed links.
	LinkSubject = "herald.events.link"
	// HTTPSubject carries events the HTTP collector accepted.
	HTTPSubject = "herald.events.http"
)

// DepthHeader carries an emitted event's depth (event.Event.Depth): how
// many emits led to it. Tracked events have none. Since apps publish on
// NATS too, the consumer does not trust it: it reads a depth above
// rules.MaxDepth as rules.MaxDepth.
const DepthHeader = "Herald-Depth"

// BudgetHeader carries an event's emit budget (event.Event.Budget): how
// many more events its chain may emit. Emitted events always have one, 0
// included; a tracked event without one gets event.DefaultEmitBudget. Since
// apps publish on NATS too, the consumer does not trust it either: it reads
// a budget above event.DefaultEmitBudget as event.DefaultEmitBudget, and
// an emitted event (with a depth) without one as having nothing left.
const BudgetHeader = "Herald-Budget"

// Publisher publishes events to JetStream. It is the one place that owns
// the wire contract of an event on NATS: the JSON envelope on the
// customer's subject under herald.events. (herald.events.<source>.<customer
// token>, see CustomerSubject), the event's id as Nats-Msg-Id (so JetStream
// stores an event published twice within DuplicateWindow once), and the
// depth and emit budget of an emitted event in DepthHeader and
// BudgetHeader. Emits, the link pages, the HTTP collector and `herald
// publish` publish through it.
type Publisher struct {
	js      jetstream.JetStream
	subject string
}

// NewPublisher returns a publisher that publishes on subject, which must
// be under herald.events.: a source subject such as herald.events.http,
// to which each event's customer token is added, or a full subject.
func NewPublisher(js jetstream.JetStream, subject string) *Publisher {
	return &Publisher{js: js, subject: subject}
}

// Publish publishes ev on the publisher's subject, with ev's customer
// token added to a source subject.
func (p *Publisher) Publish(ctx context.Context, ev *event.Event) error {
	_, err := p.PublishOn(ctx, p.subject, ev)
	return err
}

// PublishOn publishes ev on subject, with ev's customer token added to a
// source subject (CustomerSubject), and returns JetStream's ack, which
// says whether the event was a duplicate.
func (p *Publisher) PublishOn(ctx context.Context, subject string, ev *event.Event) (*jetstream.PubAck, error) {
	msg, err := Msg(CustomerSubject(subject, ev.UUID), ev)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	return ack, nil
}

// Msg builds the NATS message of ev on subject. ev must have an id.
func Msg(subject string, ev *event.Event) (*nats.Msg, error) {
	if ev.ID == "" {
		return nil, fmt.Errorf("publish %s event: no id", ev.Action)
	}
	data, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if ev.Depth > 0 {
		msg.Header.Set(DepthHeader, strconv.Itoa(ev.Depth))
	}
	// An emitted event's budget goes even when 0, to say so; a tracked
	// event's only when set.
	if ev.Depth > 0 || ev.Budget > 0 {
		msg.Header.Set(BudgetHeader, strconv.Itoa(ev.Budget))
	}
	return msg, nil
}
