package ingest

import (
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestAttemptKey(t *testing.T) {
	meta := &jetstream.MsgMetadata{Stream: "HERALD_EVENTS", Consumer: "herald", Sequence: jetstream.SequencePair{Stream: 42}}
	if got, want := attemptKey(meta), "HERALD_EVENTS.herald.42"; got != want {
		t.Errorf("attemptKey = %q, want %q", got, want)
	}
	meta.Stream, meta.Consumer = "odd$name", "é"
	if got, want := attemptKey(meta), "odd_name._.42"; got != want {
		t.Errorf("attemptKey = %q, want %q", got, want)
	}
}

// headerMsg is a message with headers only.
type headerMsg struct {
	jetstream.Msg
	h nats.Header
}

func (m headerMsg) Headers() nats.Header { return m.h }

// The dead letter of a valid event carries the id the consumer read it
// with; a Herald-Event-Id the message came with is never kept.
func TestDeadLetterMsgCarriesTheEventID(t *testing.T) {
	forged := func() nats.Header {
		return nats.Header{natsbus.HeaderEventID: {"forged"}, "Trace-Id": {"t"}}
	}
	tests := []struct {
		name string
		j    job
		want string
	}{
		{"valid event", job{msg: headerMsg{h: forged()}, ev: &event.Event{ID: "01JD"}}, "01JD"},
		{"invalid event", job{msg: headerMsg{h: forged()}}, ""},
		{"no headers", job{msg: headerMsg{}, ev: &event.Event{ID: "01JD"}}, "01JD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := deadLetterMsg(tt.j).Headers()
			if got := h.Get(natsbus.HeaderEventID); got != tt.want {
				t.Errorf("%s = %q, want %q", natsbus.HeaderEventID, got, tt.want)
			}
			if orig := tt.j.msg.Headers(); orig != nil && orig.Get(natsbus.HeaderEventID) != "forged" {
				t.Errorf("the message's own headers changed: %v", orig)
			}
		})
	}
}
