package emit_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/actionstest"
	"github.com/herald-events/herald/actions/emit"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func emitEffect(t *testing.T, key, action string, depth int) *actions.Effect {
	t.Helper()
	ev := &event.Event{ID: key, Action: action, Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), UUID: "c-1", Depth: depth}
	data, err := json.Marshal(map[string]any{"event": ev, "depth": depth})
	if err != nil {
		t.Fatal(err)
	}
	return &actions.Effect{Key: key, Kind: "emit", Event: "source", Data: data}
}

// The emit effector on a real JetStream: the stream deduplicates on the
// event id (Nats-Msg-Id), and the depth travels in Herald-Depth.
func TestEffectorSuite(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	pub := natsbus.NewPublisher(js, natsbus.EmitSubject)
	// Events of the action test.unrouted go to a subject no stream takes,
	// as when the stream is unavailable.
	eff := &emit.Effector{Publisher: emit.PublisherFunc(func(ctx context.Context, ev *event.Event) error {
		if ev.Action == "test.unrouted" {
			_, err := pub.PublishOn(ctx, "nowhere.events", ev)
			return err
		}
		return pub.Publish(ctx, ev)
	})}
	received := func(t *testing.T) []string {
		s, err := js.Stream(ctx, natsbus.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, m.Header.Get(jetstream.MsgIDHeader))
		}
		return keys
	}
	actionstest.Run(t, actionstest.Harness{
		Effector:  eff,
		Effect:    func(t *testing.T, key string) *actions.Effect { return emitEffect(t, key, "test.emitted", 1) },
		Received:  received,
		Dedupes:   true,
		Permanent: func(t *testing.T, key string) *actions.Effect { return emitEffect(t, key, "not an action", 1) },
		Retryable: func(t *testing.T, key string) *actions.Effect { return emitEffect(t, key, "test.unrouted", 1) },
	})

	t.Run("Depth", func(t *testing.T) {
		if _, err := eff.Perform(ctx, emitEffect(t, "depth-3", "test.emitted", 3)); err != nil {
			t.Fatal(err)
		}
		s, _ := js.Stream(ctx, natsbus.EventsStream)
		m, err := s.GetLastMsgForSubject(ctx, natsbus.CustomerSubject(natsbus.EmitSubject, "c-1"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(natsbus.DepthHeader) != "3" {
			t.Fatalf("Herald-Depth %q, want 3", m.Header.Get(natsbus.DepthHeader))
		}
	})
}
