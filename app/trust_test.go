package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
)

// A rule that emits its own trigger eight times a step ran away: the
// depth limit alone allowed millions of events. The emit budget stops the
// chain at 64 events caused by one tracked event; serve stays healthy and
// another customer's email goes out meanwhile.
func TestServeStopsARunawayEmitChain(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "../examples/newsletter-double-opt-in", dir)
	loop := "rules:\n  - name: loop\n    on: loop.step\n    do:\n" + strings.Repeat("      - emit: loop.step\n", 8)
	if err := os.WriteFile(filepath.Join(dir, "loop.yaml"), []byte(loop), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHerald(t, dir)
	h.publish("herald.events.web", `{"action":"loop.step","uuid":"runaway"}`)
	h.publish("herald.events.web", annaForm)
	if m := h.emails(1)[0]; m.to != "anna@example.com" {
		t.Fatalf("email to %s", m.to)
	}
	eventually(t, "the chain to end", func() bool { return h.consumerIdle() })
	// The tracked event, what its chain emitted (at most the budget), and
	// anna's form.
	if n := h.streamMsgs(natsbus.EventsStream); n > 1+event.DefaultEmitBudget+1 {
		t.Fatalf("the stream holds %d events: the chain was not bounded", n)
	}
	if code, _ := get(t, "http://"+h.srv.HTTPAddr()+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

// A template whose output grows with the data stops at the bound: the
// email is kept as a dead letter with the reason, the rest goes on.
func TestServeBoundsTemplateOutput(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Every tag repeats a long line: with enough tags, the body passes
	// 512 KiB, whatever the limits on event size.
	body := `{{range .Profile.Tags}}{{range $i := 100}}` + strings.Repeat("x", 100) + `{{end}}{{end}}` + "\n"
	files := map[string]string{
		"rules.yaml":          "rules:\n  - name: big\n    on: big.send\n    do:\n      - email: {template: big, subject: Big, to: big@example.com}\n  - name: small\n    on: small.send\n    do:\n      - email: {template: small, subject: Small, to: small@example.com}\n",
		"templates/big.txt":   body,
		"templates/small.txt": "Hello.\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := startHerald(t, dir)
	// 60 tags x 100 x 100 bytes is 600 KB of body.
	p := profile.New("big-1", time.Now())
	for i := range 60 {
		p.Tags = append(p.Tags, fmt.Sprintf("t%03d", i))
	}
	if _, err := h.kv.Put(context.Background(), "big-1", &profile.Record{Profile: p}, 0); err != nil {
		t.Fatal(err)
	}
	h.publish("herald.events.web", `{"action":"big.send","uuid":"big-1"}`)
	h.publish("herald.events.web", `{"action":"small.send","uuid":"small-1"}`)
	if m := h.emails(1)[0]; m.to != "small@example.com" {
		t.Fatalf("email to %s", m.to)
	}
	eventually(t, "the big email kept as a dead letter", func() bool { return h.streamMsgs(natsbus.DeadStream) == 1 })
	if reason := h.lastDead(natsbus.DeadEffectSubject).Header.Get(natsbus.HeaderReason); !strings.Contains(reason, "larger than 512 KiB") {
		t.Fatalf("reason %q", reason)
	}
}

// consumerIdle reports whether every event has been handled.
func (h *herald) consumerIdle() bool {
	c, err := h.js.Consumer(context.Background(), natsbus.EventsStream, natsbus.ConsumerName)
	if err != nil {
		return false
	}
	ci, err := c.Info(context.Background())
	return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
}
