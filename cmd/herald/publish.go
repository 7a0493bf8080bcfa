package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// defaultNATSURL is where herald serve's embedded server listens.
const defaultNATSURL = "nats://127.0.0.1:4222"

func (c *cli) publish(args []string) int {
	fl := c.flags("publish", "[flags] [FILE.jsonl|-]", `Send events to Herald through NATS JetStream, one JSON event a line, from a
file or standard input. Each event is validated first; an invalid line is
reported with its line number and not sent, and the others are. An event's
id is its Nats-Msg-Id, so sending a file again within 10 minutes does not
send events with ids twice; events without an id get a new one each time.
Exits 1 when any line was invalid.`)
	url := fl.String("nats", envOr("NATS_URL", defaultNATSURL), "NATS `URL` (default from NATS_URL)")
	subject := fl.String("subject", "herald.events.cli", "`subject` to publish on, under herald.events.")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() > 1 {
		fl.Usage()
		return exitUsage
	}
	if !strings.HasPrefix(*subject, "herald.events.") {
		fmt.Fprintf(c.stderr, "herald publish: --subject %q is not under herald.events.\n", *subject)
		return exitUsage
	}
	in, name := c.stdin, "stdin"
	if fl.NArg() == 1 && fl.Arg(0) != "-" {
		f, err := os.Open(fl.Arg(0))
		if err != nil {
			fmt.Fprintf(c.stderr, "herald publish: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		in, name = f, fl.Arg(0)
	}
	nc, err := natsbus.Connect(natsbus.ConnectOptions{URL: *url, Name: "herald publish"})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald publish: %v\n", err)
		return exitUsage
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald publish: %v\n", err)
		return exitUsage
	}
	ctx := context.Background()
	sent, invalid := 0, 0
	err = ingest.ReadJSONL(in, func(line int, data []byte, err error) error {
		var ev *event.Event
		if err == nil {
			ev, err = event.Decode(data)
		}
		if err != nil {
			invalid++
			fmt.Fprintf(c.stderr, "%s:%d: %v\n", name, line, err)
			return nil
		}
		msg := nats.NewMsg(*subject)
		if msg.Data, err = ev.MarshalJSON(); err != nil {
			return err
		}
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := js.PublishMsg(pctx, msg); err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("line %d: no stream takes %s: is herald serve running? (%w)", line, *subject, err)
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
		sent++
		return nil
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald publish: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "%d events sent to %s, %d invalid lines\n", sent, *subject, invalid)
	if invalid > 0 {
		return exitFailed
	}
	return exitOK
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
