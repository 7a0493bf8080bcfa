package schema_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsURL is the NATS server the examples publish to: an embedded server
// with Herald's streams, as herald serve runs it.
var natsURL string

func TestMain(m *testing.M) {
	os.Exit(runWithNATS(m))
}

func runWithNATS(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-schema-test-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		log.Fatal(err)
	}
	natsURL = srv.ClientURL()
	return m.Run()
}

// An app written in Go builds an event with the event package, checks it,
// and publishes it with nats.go to JetStream, its id as Nats-Msg-Id, so
// that publishing it again (after a timeout, say) stores it once.
func Example_publish() {
	ctx := context.Background()
	nc, err := nats.Connect(natsURL) // herald serve's NATS, nats://127.0.0.1:4222 by default
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	now := time.Now()
	ev := event.Event{
		ID:     event.NewID(now), // the idempotency key of everything the event causes
		Action: "form.submit",
		Label:  "Newsletter form",
		Time:   now,
		UUID:   "zoe-1",
		Params: map[string]any{
			"form_type":                    "newsletter",
			"email":                        "zoe@example.com",
			"newsletter_agreement_enabled": "enabled",
		},
	}
	if err := ev.Validate(); err != nil {
		log.Fatalf("invalid event: %v", err) // every problem, each naming its field
	}
	data, err := json.Marshal(ev)
	if err != nil {
		log.Fatal(err)
	}
	msg := nats.NewMsg("herald.events.app")
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)

	for range 2 {
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			log.Fatal(err) // nothing stored it: retry later with the same id
		}
		fmt.Printf("stored in %s, duplicate: %v\n", ack.Stream, ack.Duplicate)
	}
	// Output:
	// stored in HERALD_EVENTS, duplicate: false
	// stored in HERALD_EVENTS, duplicate: true
}
