package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/natsbus"
)

// timerRules schedules a reminder 2 seconds after an order, cancels it
// when the order is cancelled, and counts the reminders.
const timerRules = `rules:
  - name: order-placed
    on: order.placed
    do:
      - set:
          placedAt: ${ now }
      - emit:
          action: order.remind
          after: 2s
          key: reminder
          params:
            order: ${ params.order }
  - name: order-cancelled
    on: order.cancelled
    do:
      - cancel: reminder
  - name: reminded
    on: order.remind
    do:
      - set:
          remindedAt: ${ now }
          remindedFor: ${ params.order }
          reminders: ${ (profile.attributes.reminders ?? 0) + 1 }
`

func timerRulesDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(timerRules), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (h *herald) timeAttr(uuid, name string) time.Time {
	h.t.Helper()
	s, _ := h.attribute(uuid, name).(string)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		h.t.Fatalf("%s of %s: %q is not a time", name, uuid, s)
	}
	return tm
}

func (h *herald) pendingTimers(uuid string) int {
	h.t.Helper()
	p, err := natsbus.NewTimers(h.js).Pending(context.Background(), uuid)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(p)
}

// A delayed emit fires once, after its delay and not before; the event
// it schedules is delivered twice and still schedules one timer.
func TestServeDelayedEmitFiresOnceAfterItsDelay(t *testing.T) {
	h := startHerald(t, timerRulesDir(t))
	placed := `{"id":"01KT0000000000000000000001","action":"order.placed","uuid":"ola-1","params":{"order":"A-1"}}`
	// Published twice without a message id: the stream keeps both, and
	// the second delivery finds the event applied.
	h.publish("herald.events.shop", placed)
	h.publish("herald.events.shop", placed)
	eventually(t, "the order applied", func() bool { return h.attribute("ola-1", "placedAt") != nil })
	if n := h.pendingTimers("ola-1"); n != 1 {
		t.Fatalf("%d timers pending after the order, want 1", n)
	}
	eventually(t, "the reminder", func() bool { return h.attribute("ola-1", "reminders") != nil })
	placedAt, remindedAt := h.timeAttr("ola-1", "placedAt"), h.timeAttr("ola-1", "remindedAt")
	if remindedAt.Before(placedAt.Add(2 * time.Second)) {
		t.Fatalf("reminded at %s, placed at %s: before the 2s delay", remindedAt, placedAt)
	}
	if got := h.attribute("ola-1", "remindedFor"); got != "A-1" {
		t.Errorf("reminded for %v, want A-1", got)
	}
	// Time for a second timer, had one been set, to fire.
	time.Sleep(3 * time.Second)
	if got := h.attribute("ola-1", "reminders"); got != 1.0 {
		t.Fatalf("reminders %v, want 1", got)
	}
	if n := h.pendingTimers("ola-1"); n != 0 {
		t.Fatalf("%d timers pending after the reminder", n)
	}
}

// A cancelled timer never fires.
func TestServeCancelledTimerNeverFires(t *testing.T) {
	h := startHerald(t, timerRulesDir(t))
	h.publish("herald.events.shop", `{"id":"01KT0000000000000000000011","action":"order.placed","uuid":"pia-1","params":{"order":"B-1"}}`)
	eventually(t, "the timer", func() bool { return h.pendingTimers("pia-1") == 1 })
	h.publish("herald.events.shop", `{"id":"01KT0000000000000000000012","action":"order.cancelled","uuid":"pia-1"}`)
	eventually(t, "the cancel", func() bool { return h.pendingTimers("pia-1") == 0 })
	placedAt := h.timeAttr("pia-1", "placedAt")
	time.Sleep(time.Until(placedAt.Add(4 * time.Second)))
	if got := h.attribute("pia-1", "reminders"); got != nil {
		t.Fatalf("a cancelled timer fired: reminders %v", got)
	}
}

// A timer survives a restart of Herald: it fires while Herald is down and
// its event is applied once Herald is back, late but not lost.
func TestServeTimerSurvivesRestart(t *testing.T) {
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, timerRulesDir(t), smtp)
	first := startHeraldWith(t, cfg, smtp)
	first.publish("herald.events.shop", `{"id":"01KT0000000000000000000021","action":"order.placed","uuid":"ria-1","params":{"order":"C-1"}}`)
	eventually(t, "the timer", func() bool { return first.pendingTimers("ria-1") == 1 })
	placedAt := first.timeAttr("ria-1", "placedAt")
	if err := first.srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Down past the timer's time.
	time.Sleep(time.Until(placedAt.Add(3 * time.Second)))
	cfg.NATS.Listen = "127.0.0.1:-1"
	second := startHeraldWith(t, cfg, smtp)
	eventually(t, "the late reminder", func() bool { return second.attribute("ria-1", "reminders") != nil })
	time.Sleep(time.Second)
	if got := second.attribute("ria-1", "reminders"); got != 1.0 {
		t.Fatalf("reminders %v, want 1", got)
	}
}
