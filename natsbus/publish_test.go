package natsbus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
)

// An event's depth and emit budget, which its JSON leaves out, travel in
// headers through JetStream: an emitted event's budget always (0
// included), a tracked event's only when set.
func TestPublishCarriesDepthAndBudget(t *testing.T) {
	js, _ := setup(t)
	pub := natsbus.NewPublisher(js, natsbus.EmitSubject)
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		depth, budget int
		wantDepth     string // "" for no header
		wantBudget    string
	}{
		{"tracked", 0, 0, "", ""},
		{"tracked with a budget", 0, 5, "", "5"},
		{"emitted", 2, 7, "2", "7"},
		{"emitted with nothing left", 3, 0, "3", "0"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &event.Event{
				ID: event.DeriveID(t0, "publish-test", tt.name), Action: "test.emitted",
				Time: t0, UUID: "c-1", Depth: tt.depth, Budget: tt.budget,
			}
			ack, err := pub.PublishOn(t.Context(), natsbus.EmitSubject, ev)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Duplicate {
				t.Fatalf("event %d stored as a duplicate", i)
			}
			s, err := js.Stream(t.Context(), natsbus.EventsStream)
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.GetMsg(t.Context(), ack.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
				t.Errorf("Nats-Msg-Id %q, want %q", got, ev.ID)
			}
			if got := m.Header.Get(natsbus.DepthHeader); got != tt.wantDepth {
				t.Errorf("%s %q, want %q", natsbus.DepthHeader, got, tt.wantDepth)
			}
			if got := m.Header.Get(natsbus.BudgetHeader); got != tt.wantBudget {
				t.Errorf("%s %q, want %q", natsbus.BudgetHeader, got, tt.wantBudget)
			}
			if _, ok := m.Header[natsbus.BudgetHeader]; ok != (tt.wantBudget != "") {
				t.Errorf("%s present %v, want %v", natsbus.BudgetHeader, ok, tt.wantBudget != "")
			}
		})
	}
}
