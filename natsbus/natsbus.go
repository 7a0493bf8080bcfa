// Package natsbus is Herald's NATS plumbing: an embedded nats-server for
// single-machine installs, a connection to an existing deployment with
// Herald's defaults, the JetStream resources Herald needs (events stream,
// dead-letter stream, durable consumer, profile bucket) and the copy of
// unprocessable messages to the dead-letter stream, and the one Publisher
// that puts events on NATS.
//
// The package knows names, configurations, wiring and the wire contract of
// an event on NATS; of Herald's packages it imports only event, so every
// other package may use it.
package natsbus

import "time"

// Names Herald uses on NATS.
const (
	// EventsStream is the JetStream stream holding every tracked event.
	EventsStream = "HERALD_EVENTS"
	// EventsSubjects is the subject filter of EventsStream. Apps publish
	// events to any subject under it.
	EventsSubjects = "herald.events.>"
	// DeadStream is the stream holding events that could not be processed,
	// each with its reason.
	DeadStream = "HERALD_DEAD"
	// DeadSubjects is the subject filter of DeadStream.
	DeadSubjects = "herald.dead.>"
	// ProfileBucket is the key-value bucket holding customer profiles.
	ProfileBucket = "HERALD_PROFILES"
	// ConsumerName is the durable pull consumer on EventsStream shared by
	// every Herald engine.
	ConsumerName = "herald"
)

// Settings Setup applies.
const (
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id on
	// EventsStream and DeadStream: a message published again within it with
	// the same id is stored once.
	DuplicateWindow = 10 * time.Minute
	// DeadMaxAge is how long DeadStream keeps a message, unless an operator
	// changed the stream's limits.
	DeadMaxAge = 30 * 24 * time.Hour
	// AckWait is how long the consumer waits for an ack before it delivers
	// a message again. Work that takes longer must call InProgress.
	AckWait = 30 * time.Second
	// MaxAckPending is how many delivered messages the consumer lets wait
	// for their ack, across all engines, when Setup creates it.
	MaxAckPending = 1024
)

const (
	eventsPrefix = "herald.events."
	deadPrefix   = "herald.dead."
)
