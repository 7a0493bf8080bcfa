package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// metric finds the metric name{labels...} (label name and value pairs) in
// what reg gathers, or nil.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// value is the value of the counter or gauge name{labels...}; it fails the
// test if there is none.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := metric(t, reg, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no metric %s%v", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// observations is how many observations the histogram name holds.
func observations(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	m := metric(t, reg, name)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s", name)
	}
	return m.Histogram.GetSampleCount()
}

func TestConsumerMetrics(t *testing.T) {
	js, res := setup(t)
	publish(t, js, "herald.events.test",
		eventJSON("slow", "ann"),
		eventJSON("ok", "bob"),
		eventJSON("flaky", "cat"),
		eventJSON("broken", "dan"),
		eventJSON("panics", "eve"),
		`not json`,
	)

	reg := prometheus.NewRegistry()
	metrics := ingest.NewMetrics(reg)
	var rec calls
	release := make(chan struct{})
	start(t, &ingest.Consumer{
		Consumer:   res.Consumer,
		DeadLetter: (&deadLetters{js: js}).keep,
		Backoff:    func(uint64) time.Duration { return 20 * time.Millisecond },
		Metrics:    metrics,
		InfoEvery:  20 * time.Millisecond,
		// A clock an hour ahead of the stream's shows in the latency.
		Now: func() time.Time { return time.Now().Add(time.Hour) },
		Handle: ingest.Chain(func(ctx context.Context, ev *event.Event) error {
			n := rec.add(ev.ID)
			switch ev.ID {
			case "slow":
				<-release
			case "flaky":
				if n == 1 {
					return errors.New("smtp server unavailable")
				}
			case "broken":
				return ingest.Permanent(errors.New("address rejected"))
			case "panics":
				panic("boom")
			}
			return nil
		}, ingest.Instrument(metrics), ingest.Recover(nil)),
	})
	// The consumer's figures are sampled while it runs: the slow event is
	// waiting for its ack.
	eventually(t, "the sampled gauge to show an event waiting for its ack", func() (bool, string) {
		v := value(t, reg, "herald_consumer_ack_pending_messages")
		return v >= 1, fmt.Sprint(v)
	})
	close(release)
	eventually(t, "every event handled", func() (bool, string) {
		return rec.count("slow") == 1 && rec.count("ok") == 1 && rec.count("flaky") == 2, fmt.Sprint(rec.list())
	})
	settled(t, res.Consumer)
	eventually(t, "the sampled gauges to show nothing left", func() (bool, string) {
		pending := value(t, reg, "herald_consumer_pending_messages")
		ackPending := value(t, reg, "herald_consumer_ack_pending_messages")
		redelivered := value(t, reg, "herald_consumer_redelivered_messages")
		return pending == 0 && ackPending == 0 && redelivered == 0, fmt.Sprintf("pending %v, ack pending %v, redelivered %v", pending, ackPending, redelivered)
	})
	// The counters are updated just after each message is settled.
	eventually(t, "every event acked in the counters", func() (bool, string) {
		v := value(t, reg, "herald_events_acked_total")
		return v == 3, fmt.Sprint(v)
	})

	counters := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"herald_events_received_total", nil, 7}, // flaky twice
		{"herald_events_acked_total", nil, 3},
		{"herald_events_retried_total", nil, 1},
		{"herald_events_dead_lettered_total", []string{"reason", "invalid"}, 1},
		{"herald_events_dead_lettered_total", []string{"reason", "panic"}, 1},
		{"herald_events_dead_lettered_total", []string{"reason", "permanent"}, 1},
		{"herald_events_dead_lettered_total", []string{"reason", "max_deliveries"}, 0},
	}
	for _, c := range counters {
		t.Run(fmt.Sprint(c.name, c.labels), func(t *testing.T) {
			if got := value(t, reg, c.name, c.labels...); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		})
	}
	histograms := []struct {
		name string
		want uint64
	}{
		{"herald_event_handle_seconds", 6}, // every call of the handler
		{"herald_event_latency_seconds", 3},
	}
	for _, h := range histograms {
		t.Run(h.name, func(t *testing.T) {
			if got := observations(t, reg, h.name); got != h.want {
				t.Errorf("%s holds %d observations, want %d", h.name, got, h.want)
			}
		})
	}

	t.Run("latency by the consumer's clock", func(t *testing.T) {
		sum := metric(t, reg, "herald_event_latency_seconds").GetHistogram().GetSampleSum()
		if least, most := 3*time.Hour, 3*(time.Hour+time.Minute); sum < least.Seconds() || sum > most.Seconds() {
			t.Errorf("herald_event_latency_seconds sums to %vs, want about 3h (3 events, an hour each)", sum)
		}
	})
	t.Run("lint", func(t *testing.T) {
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatalf("lint metrics: %v", err)
		}
		for _, p := range problems {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	})
	t.Run("no label but the reason", func(t *testing.T) {
		families, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather metrics: %v", err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() != "reason" {
						t.Errorf("metric %s has label %s=%q", f.GetName(), l.GetName(), l.GetValue())
					}
				}
			}
		}
	})
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *ingest.Metrics
	h := ingest.Chain(func(context.Context, *event.Event) error { return nil }, ingest.Instrument(m))
	if err := h(t.Context(), &event.Event{ID: "e1"}); err != nil {
		t.Errorf("handle: %v", err)
	}
	if m := ingest.NewMetrics(nil); m == nil {
		t.Error("NewMetrics(nil) = nil, want metrics that are not registered")
	}
}
