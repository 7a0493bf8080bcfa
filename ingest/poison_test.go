package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConsumerKeepsPoisonAsDeadLetter(t *testing.T) {
	errSMTP := errors.New("smtp server unavailable")
	tests := []struct {
		name string
		// poison is published first for customer ann, then event "after"
		// of ann.
		poison string
		// fail is what the handler does on its n-th call for the poison.
		fail func(n int) error
		// recover puts a Recover stage in the chain.
		recover bool
		// deadLetterFails is how many times keeping a dead letter fails
		// before it works.
		deadLetterFails int
		wantCalls       int // of the handler for the poison
		// wantDeliveries counts both events' deliveries: "after" is sent
		// back once when it comes while the poison waits for a retry.
		wantDeliveries uint64
		wantReason     *regexp.Regexp
		wantLabel      string
	}{
		{
			name:           "not an event",
			poison:         `{"id":"poison","action":"page.visit","uuid":"ann"`,
			wantReason:     regexp.MustCompile(`invalid JSON`),
			wantLabel:      "invalid",
			wantDeliveries: 2,
		},
		{
			name:   "permanent error",
			poison: eventJSON("poison", "ann"),
			fail: func(int) error {
				return fmt.Errorf("render email: %w", ingest.Permanent(errors.New(`template "welcome" does not render`)))
			},
			wantCalls:      1,
			wantReason:     regexp.MustCompile(`^render email: template "welcome" does not render$`),
			wantLabel:      "permanent",
			wantDeliveries: 2,
		},
		{
			name:           "panic in a chain with Recover",
			poison:         eventJSON("poison", "ann"),
			fail:           func(int) error { panic("boom") },
			recover:        true,
			wantCalls:      1,
			wantReason:     regexp.MustCompile(`^panic: boom at github\.com/herald-events/herald/ingest_test\.TestConsumerKeepsPoisonAsDeadLetter\.func[0-9.]+ \(.*poison_test\.go:[0-9]+\)$`),
			wantLabel:      "panic",
			wantDeliveries: 2,
		},
		{
			name:           "panic with no Recover stage",
			poison:         eventJSON("poison", "ann"),
			fail:           func(n int) error { return []error{nil}[n] },
			wantCalls:      1,
			wantReason:     regexp.MustCompile(`^panic: runtime error: index out of range \[1\] with length 1 at github\.com/herald-events/herald/ingest_test\.TestConsumerKeepsPoisonAsDeadLetter\.func[0-9.]+ \(.*poison_test\.go:[0-9]+\)$`),
			wantLabel:      "panic",
			wantDeliveries: 2,
		},
		{
			name:           "retries run out",
			poison:         eventJSON("poison", "ann"),
			fail:           func(int) error { return errSMTP },
			wantCalls:      3,
			wantReason:     regexp.MustCompile(`^gave up after 3 deliveries: smtp server unavailable$`),
			wantLabel:      "max_deliveries",
			wantDeliveries: 5,
		},
		{
			name:            "keeping the dead letter fails at first",
			poison:          eventJSON("poison", "ann"),
			fail:            func(int) error { return ingest.Permanent(errors.New("address rejected")) },
			deadLetterFails: 1,
			wantCalls:       2,
			wantReason:      regexp.MustCompile(`^address rejected$`),
			wantLabel:       "permanent",
			wantDeliveries:  4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js, res := setup(t)
			publish(t, js, "herald.events.test", tt.poison, eventJSON("after", "ann"))

			var rec calls
			handle := func(ctx context.Context, ev *event.Event) error {
				n := rec.add(ev.ID)
				if ev.ID == "poison" {
					return tt.fail(n)
				}
				return nil
			}
			if tt.recover {
				handle = ingest.Chain(handle, ingest.Recover(nil))
			}
			dead := &deadLetters{js: js, fail: tt.deadLetterFails}
			reg := prometheus.NewRegistry()
			start(t, &ingest.Consumer{
				Consumer:      res.Consumer,
				Handle:        handle,
				DeadLetter:    dead.keep,
				MaxDeliveries: 3,
				Backoff:       func(uint64) time.Duration { return 20 * time.Millisecond },
				Metrics:       ingest.NewMetrics(reg),
			})
			eventually(t, "the customer's next event handled", func() (bool, string) {
				return rec.count("after") > 0, fmt.Sprint(rec.list())
			})
			info := settled(t, res.Consumer)
			if info.Delivered.Consumer != tt.wantDeliveries {
				t.Errorf("%d deliveries, want %d", info.Delivered.Consumer, tt.wantDeliveries)
			}

			got := rec.list()
			if want := append(slices.Repeat([]string{"poison"}, tt.wantCalls), "after"); !slices.Equal(got, want) {
				t.Errorf("handled %v, want %v", got, want)
			}
			reasons := dead.list()
			if len(reasons) != 1 || !tt.wantReason.MatchString(reasons[0]) {
				t.Fatalf("dead letters %q, want one matching %s", reasons, tt.wantReason)
			}
			msg, err := res.Dead.GetMsg(t.Context(), 1)
			if err != nil {
				t.Fatalf("read the dead letter: %v", err)
			}
			if got := msg.Header.Get(natsbus.HeaderReason); got != reasons[0] {
				t.Errorf("dead letter reason %q, want %q", got, reasons[0])
			}
			if info, err := res.Dead.Info(t.Context()); err != nil || info.State.Msgs != 1 {
				t.Errorf("dead-letter stream info: %+v, %v; want 1 message", info, err)
			}
			for _, label := range []string{"invalid", "panic", "permanent", "max_deliveries"} {
				want := 0.0
				if label == tt.wantLabel {
					want = 1
				}
				if got := value(t, reg, "herald_events_dead_lettered_total", "reason", label); got != want {
					t.Errorf("herald_events_dead_lettered_total{reason=%q} = %v, want %v", label, got, want)
				}
			}
		})
	}
}
