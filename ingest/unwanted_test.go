package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Events the handler does not want are acked as they are pulled, never
// handled, while the wanted ones interleaved with them are handled in
// order; a redelivered message is not involved: each is delivered once.
func TestConsumerSettlesUnwantedEventsWithoutHandlingThem(t *testing.T) {
	js, res := setup(t)
	var msgs []string
	for i := range 300 {
		action := "page.visit"
		if i%30 == 0 {
			action = "form.submit"
		}
		msgs = append(msgs, fmt.Sprintf(`{"id":"e-%03d","action":%q,"uuid":"c-%d"}`, i, action, i%3))
	}
	publish(t, js, "herald.events.test", msgs...)

	reg := prometheus.NewRegistry()
	handled := &calls{}
	dead := &deadLetters{js: js}
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: dead.keep,
		Metrics:    ingest.NewMetrics(reg),
		Wants:      func(ev *event.Event) bool { return ev.Action == "form.submit" },
		Handle: func(_ context.Context, ev *event.Event) error {
			if ev.Action != "form.submit" {
				t.Errorf("handler called with unwanted event %s (%s)", ev.ID, ev.Action)
			}
			handled.add(ev.ID)
			return nil
		},
	})
	info := settled(t, res.Consumer)
	if info.Delivered.Consumer != uint64(len(msgs)) {
		t.Errorf("%d deliveries, want %d (one per event)", info.Delivered.Consumer, len(msgs))
	}
	got := handled.list()
	if len(got) != 10 || !slices.IsSorted(got) {
		t.Errorf("handled %v, want the 10 forms in order", got)
	}
	want := `
# HELP herald_events_unwanted_total Events acked as soon as they were pulled because no rule wants them.
# TYPE herald_events_unwanted_total counter
herald_events_unwanted_total 290
# HELP herald_events_acked_total Events acknowledged: handled, or not wanted by any rule.
# TYPE herald_events_acked_total counter
herald_events_acked_total 300
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "herald_events_unwanted_total", "herald_events_acked_total"); err != nil {
		t.Error(err)
	}
	if d := dead.list(); len(d) > 0 {
		t.Errorf("dead letters %q, want none", d)
	}
}
