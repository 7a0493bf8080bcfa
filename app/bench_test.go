package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkServe measures herald serve consuming events, end to end on the
// embedded NATS server: b.N events are preloaded into the events stream
// with the consumer paused, Herald is started, the consumer resumed, and
// the clock runs from its first delivery until every event is acked and,
// for form submissions, every email is in the .eml outbox. Each op is one event.
// "visit" events match no rule: they are decoded and acked. "form" events
// go through the double opt-in example (a profile write and a rendered
// email, each for a new customer); "hot" events are the same, all of one
// customer. fsync=on is the default set-up. `make bench` measures the same
// with the built binary, next to nats bench; see bench/README.md.
func BenchmarkServe(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, kind := range []string{"form", "hot", "visit"} {
			b.Run(fmt.Sprintf("%s/fsync=%v", kind, onOff(fsync)), func(b *testing.B) {
				benchServe(b, kind, fsync)
			})
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func benchPayload(kind string, i int) []byte {
	switch kind {
	case "visit":
		return fmt.Appendf(nil, `{"action":"page.visit","label":"Home","uuid":"c-%d","params":{"url":"https://shop.example.com/"}}`, i)
	case "hot":
		i = 0
	}
	return fmt.Appendf(nil, `{"action":"form.submit","label":"Newsletter form","uuid":"c-%d","params":{"form_type":"newsletter","email":"c%d@example.com","newsletter_agreement_enabled":"enabled"}}`, i, i)
}

func benchServe(b *testing.B, kind string, fsync bool) {
	b.StopTimer()
	b.Setenv(config.EnvLinkKeys, "b1:"+"YmVuY2htYXJrLWtleS1iZW5jaG1hcmsta2V5LWJlbmNobWFyaw")
	cfg := apptest.Config(b, "../examples/newsletter-double-opt-in")
	cfg.NATS.Fsync = &fsync
	benchPreload(b, filepath.Join(cfg.DataDir, "nats"), b.N, func(i int) []byte { return benchPayload(kind, i) })
	c := apptest.Connect(b, apptest.Start(b, cfg))
	ctx := context.Background()
	cons, err := c.JS.Consumer(ctx, natsbus.EventsStream, natsbus.ConsumerName)
	if err != nil {
		b.Fatal(err)
	}
	emails := b.N
	if kind == "visit" {
		emails = 0
	}

	if _, err := c.JS.ResumeConsumer(ctx, natsbus.EventsStream, natsbus.ConsumerName); err != nil {
		b.Fatal(err)
	}
	// The clock starts at the first delivery: a pull request Herald made
	// while the consumer was paused may wait out its expiry first, which
	// a Herald starting on a backlog does not.
	resumed := time.Now()
	var start time.Time
	for {
		start = time.Now()
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.Delivered.Consumer > 0 {
			break
		}
		if time.Since(resumed) > time.Minute {
			b.Fatal("no event delivered a minute after the consumer was resumed")
		}
		time.Sleep(time.Millisecond)
	}
	b.StartTimer()
	deadline := start.Add(5 * time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && countEML(b, cfg.Email.Outbox) >= emails {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s: %d events pending, %d awaiting their ack, %d of %d emails", time.Since(start), info.NumPending, info.NumAckPending, countEML(b, cfg.Email.Outbox), emails)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// benchPreload publishes n events to the events stream of an embedded
// NATS server on storeDir, set up as Herald sets it up, with Herald's
// consumer paused, then stops the server.
func benchPreload(b *testing.B, storeDir string, n int, payload func(int) []byte) {
	b.Helper()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: -1, StoreDir: storeDir})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		b.Fatal(err)
	}
	if _, err := js.PauseConsumer(ctx, natsbus.EventsStream, natsbus.ConsumerName, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		for {
			_, err := js.PublishAsync("herald.events.bench", payload(i))
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("preload: publishes not acked after a minute")
	}
}

func countEML(b *testing.B, dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".eml") {
			n++
		}
	}
	return n
}
