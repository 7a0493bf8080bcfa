package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkServe measures herald serve end to end on the embedded NATS
// server: events published with a NATS client until every one is applied
// and acked. Each op is one event. "form" events go through two rules of
// the double opt-in example (a profile write and a rendered email in the
// .eml outbox, each for a new customer); "visit" events match no rule and
// are only decoded and acked. fsync=on is the default set-up.
func BenchmarkServe(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, kind := range []string{"form", "visit"} {
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

func benchServe(b *testing.B, kind string, fsync bool) {
	b.Setenv(config.EnvLinkKeys, "b1:"+"YmVuY2htYXJrLWtleS1iZW5jaG1hcmsta2V5LWJlbmNobWFyaw")
	cfg := apptest.Config(b, "../examples/newsletter-double-opt-in")
	cfg.NATS.Fsync = &fsync
	s := apptest.Start(b, cfg)
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cons, err := js.Consumer(ctx, natsbus.EventsStream, natsbus.ConsumerName)
	if err != nil {
		b.Fatal(err)
	}
	payload := func(i int) []byte {
		if kind == "visit" {
			return fmt.Appendf(nil, `{"action":"page.visit","label":"Home","uuid":"c-%d","params":{"url":"https://shop.example.com/"}}`, i)
		}
		return fmt.Appendf(nil, `{"action":"form.submit","label":"Newsletter form","uuid":"c-%d","params":{"form_type":"newsletter","email":"c%d@example.com","newsletter_agreement_enabled":"enabled"}}`, i, i)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := js.PublishAsync("herald.events.bench", payload(i)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
