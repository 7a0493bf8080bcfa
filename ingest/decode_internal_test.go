package ingest

import (
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/rules"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// decode reads an event's depth and emit budget from the headers
// natsbus.Msg writes, and does not trust them: apps publish on NATS too,
// so a depth or budget above what Herald sends is read as the most it
// sends, and a tracked event without a budget gets the default.
func TestDecodeDepthAndBudgetHeaders(t *testing.T) {
	_, js := natstest.Start(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if event.MaxEmitDepth != rules.MaxDepth {
		t.Fatalf("event.MaxEmitDepth %d is not rules.MaxDepth %d", event.MaxEmitDepth, rules.MaxDepth)
	}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		headers       map[string]string // nil: as natsbus.Msg writes them
		depth, budget int               // of the event published
		wantDepth     int
		wantBudget    int
		wantErr       string
	}{
		{name: "tracked", wantBudget: event.DefaultEmitBudget},
		{name: "emitted", depth: 2, budget: 7, wantDepth: 2, wantBudget: 7},
		{name: "emitted with nothing left", depth: 3, wantDepth: 3, wantBudget: 0},
		{name: "tracked with a smaller budget", budget: 5, wantBudget: 5},
		{name: "forged budget", headers: map[string]string{natsbus.BudgetHeader: "1000000"}, wantBudget: event.DefaultEmitBudget},
		{name: "forged depth and budget", headers: map[string]string{DepthHeader: "1000", natsbus.BudgetHeader: "99999999999999999999999"},
			wantDepth: rules.MaxDepth, wantBudget: event.DefaultEmitBudget},
		{name: "forged huge depth", headers: map[string]string{DepthHeader: "9223372036854775807"},
			wantDepth: rules.MaxDepth, wantBudget: 0},
		{name: "emitted without a budget", headers: map[string]string{DepthHeader: "1"}, wantDepth: 1, wantBudget: 0},
		{name: "negative budget", headers: map[string]string{natsbus.BudgetHeader: "-1"}, wantErr: `header Herald-Budget: "-1" is not an emit budget`},
		{name: "bad budget", headers: map[string]string{natsbus.BudgetHeader: "lots"}, wantErr: `header Herald-Budget: "lots" is not an emit budget`},
		{name: "negative depth", headers: map[string]string{DepthHeader: "-99999999999999999999"}, wantErr: `header Herald-Depth: "-99999999999999999999" is not a depth`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &event.Event{
				ID: event.DeriveID(t0, "decode-test", tt.name), Action: "test.event", Time: t0, UUID: "c-1",
				Depth: tt.depth, Budget: tt.budget,
			}
			msg, err := natsbus.Msg(natsbus.HTTPSubject, ev)
			if err != nil {
				t.Fatal(err)
			}
			if tt.headers != nil {
				msg.Header = nats.Header{jetstream.MsgIDHeader: []string{ev.ID}}
				for k, v := range tt.headers {
					msg.Header.Set(k, v)
				}
			}
			if _, err := js.PublishMsg(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
			batch, err := res.Consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var got jetstream.Msg
			for m := range batch.Messages() {
				got = m
			}
			if got == nil {
				t.Fatalf("message %d not delivered: %v", i, batch.Error())
			}
			defer got.Ack()
			j, err := decode(got)
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("decode error %v, want %s", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if j.ev.ID != ev.ID || j.ev.Depth != tt.wantDepth || j.ev.Budget != tt.wantBudget {
				t.Errorf("decoded %s depth %d budget %d, want %s depth %d budget %d",
					j.ev.ID, j.ev.Depth, j.ev.Budget, ev.ID, tt.wantDepth, tt.wantBudget)
			}
		})
	}
}
