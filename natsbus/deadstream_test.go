package natsbus_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestDeadRetryMsg(t *testing.T) {
	received := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	dead := func(body string, extra nats.Header) *natsbus.Dead {
		h := nats.Header{
			"Trace-Id":                      {"t-1"},
			natsbus.DepthHeader:             {"2"},
			natsbus.HeaderReason:            {"boom"},
			natsbus.HeaderOriginalSubject:   {"herald.events.web"},
			natsbus.HeaderOriginalStream:    {"HERALD_EVENTS"},
			natsbus.HeaderOriginalStreamSeq: {"7"},
			natsbus.HeaderOriginalTime:      {received.Format(time.RFC3339Nano)},
			natsbus.HeaderFailedAt:          {"2026-11-28T11:00:00Z"},
			jetstream.MsgIDHeader:           {"dead-7"},
		}
		for k, v := range extra {
			h[k] = v
		}
		return &natsbus.Dead{Seq: 3, Subject: "herald.dead.web", Header: h, Data: []byte(body)}
	}
	tests := []struct {
		name     string
		d        *natsbus.Dead
		wantID   string
		wantTime time.Time
	}{
		{"own id", dead(`{"id":"ev-1","action":"page.visit","uuid":"u","time":"2026-11-27T09:00:00Z"}`, nil), "ev-1", time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)},
		{"id the consumer gave", dead(`{"action":"page.visit","uuid":"u"}`, nats.Header{natsbus.HeaderEventID: {"given-1"}}), "given-1", received},
		{"id derived as the consumer does", dead(`{"action":"page.visit","uuid":"u"}`, nil), event.DeriveID(received, "HERALD_EVENTS", "7"), received},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := tt.d.RetryMsg()
			if err != nil {
				t.Fatal(err)
			}
			if msg.Subject != "herald.events.web" {
				t.Errorf("subject %q", msg.Subject)
			}
			ev, err := event.Decode(msg.Data)
			if err != nil {
				t.Fatalf("body %s: %v", msg.Data, err)
			}
			if ev.ID != tt.wantID || !ev.Time.Equal(tt.wantTime) {
				t.Errorf("event %s at %v, want %s at %v", ev.ID, ev.Time, tt.wantID, tt.wantTime)
			}
			want := nats.Header{
				"Trace-Id":            {"t-1"},
				natsbus.DepthHeader:   {"2"},
				jetstream.MsgIDHeader: {"retry-3-" + tt.wantID},
			}
			if !reflect.DeepEqual(msg.Header, want) {
				t.Errorf("headers %v, want %v", msg.Header, want)
			}
		})
	}

	t.Run("effect", func(t *testing.T) {
		d := &natsbus.Dead{Seq: 4, Subject: natsbus.DeadEffectSubject, Header: nats.Header{natsbus.HeaderEffectKey: {"ev-1.r.0"}}, Data: []byte(`{"event":"ev-1"}`)}
		if _, err := d.RetryMsg(); !errors.Is(err, natsbus.ErrDeadEffect) {
			t.Errorf("RetryMsg of an effect: %v, want ErrDeadEffect", err)
		}
		if !d.IsEffect() || d.EventID() != "ev-1" || d.UUID() != "" {
			t.Errorf("effect: IsEffect %v, EventID %q, UUID %q", d.IsEffect(), d.EventID(), d.UUID())
		}
	})
	t.Run("invalid event", func(t *testing.T) {
		d := dead(`{"action":"x"}`, nil)
		if _, err := d.RetryMsg(); err == nil {
			t.Error("RetryMsg of an invalid event: no error")
		}
	})
}

func TestAttemptsBucket(t *testing.T) {
	js, _ := setup(t)
	kv, err := natsbus.Attempts(t.Context(), js)
	if err != nil {
		t.Fatalf("Attempts: %v", err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Bucket() != natsbus.AttemptsBucket || st.TTL() != natsbus.AttemptsTTL || st.History() != 1 {
		t.Errorf("bucket %s, ttl %v, history %d", st.Bucket(), st.TTL(), st.History())
	}
	if _, err := kv.Put(t.Context(), "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Opening it again keeps what it holds.
	again, err := natsbus.Attempts(t.Context(), js)
	if err != nil {
		t.Fatalf("Attempts again: %v", err)
	}
	if e, err := again.Get(t.Context(), "k"); err != nil || string(e.Value()) != "1" {
		t.Errorf("after opening again: %v, %v", e, err)
	}
}
