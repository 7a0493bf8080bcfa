package ingest_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/internal/syncbuf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// outage makes every pull fail as pulls do while a stream's leader is
// elected on a cluster, which one server cannot reproduce; the rest is
// the real consumer.
type outage struct {
	jetstream.Consumer
	down atomic.Bool
}

func (o *outage) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	if o.down.Load() {
		return nil, nats.ErrNoResponders
	}
	return o.Consumer.Fetch(n, opts...)
}

// While pulls fail the consumer backs off, logs the failure once and the
// recovery once, counts the failures and says it is not pulling; then it
// consumes as before.
func TestConsumerBacksOffQuietlyWhilePullsFail(t *testing.T) {
	js, res := setup(t)
	cons := &outage{Consumer: res.Consumer}
	cons.down.Store(true)
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	handled := &calls{}
	c := &ingest.Consumer{
		Consumer:   cons,
		DeadLetter: (&deadLetters{js: js}).keep,
		Metrics:    ingest.NewMetrics(reg),
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Handle: func(_ context.Context, ev *event.Event) error {
			handled.add(ev.ID)
			return nil
		},
	}
	start(t, c)
	time.Sleep(2 * time.Second)
	if c.Pulling() {
		t.Error("Pulling() = true while every pull fails")
	}
	failures := counterValue(t, reg, "herald_consumer_pull_failures_total")
	// 2 s of 100 ms doubling with jitter: at most 7 attempts (a tight
	// loop makes thousands).
	if failures < 2 || failures > 8 {
		t.Errorf("%v pull failures counted in 2s, want a handful backed off", failures)
	}
	cons.down.Store(false)
	publish(t, js, "herald.events.test", eventJSON("after", "ann"))
	eventually(t, "the event published after the outage handled", func() (bool, string) {
		return handled.count("after") == 1, strings.Join(handled.list(), ",")
	})
	eventually(t, "Pulling() true after the outage", func() (bool, string) { return c.Pulling(), "false" })
	out := logs.String()
	if n := strings.Count(out, "pull events failed"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "pulling events again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once:\n%s", n, out)
	}
}

// counterValue returns the value of the counter named name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
