package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventsPrefix starts every subject an event may be published on.
var eventsPrefix = strings.TrimSuffix(natsbus.EventsSubjects, ">")

func (c *cli) publish(args []string) int {
	fl := c.flags("publish", "[flags] [FILE.jsonl|-]", `Send events to Herald through NATS JetStream, one JSON event a line, from a
file or standard input. Each event is validated first; an invalid line is
reported with its line number and not sent, and the others are. An event's
id is its Nats-Msg-Id, so sending a file again within 10 minutes does not
store events with ids twice: NATS drops them, and they are counted as
duplicates. Events without an id get a new one each time.
Exits 1 when any line was invalid, NATS could not be reached or a publish
failed, and 2 on bad flags or configuration.`)
	target := natsFlags(fl)
	subject := fl.String("subject", eventsPrefix+"cli", "`subject` to publish on, under "+eventsPrefix)
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() > 1 {
		fl.Usage()
		return exitUsage
	}
	if err := checkSubject(*subject); err != nil {
		fmt.Fprintf(c.stderr, "herald publish: --subject %q: %v\n", *subject, err)
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
	nc, js, code := c.connectNATS("publish", target)
	if code != exitOK {
		return code
	}
	defer nc.Close()
	ctx := context.Background()
	pub := natsbus.NewPublisher(js, *subject)
	sent, dups, invalid := 0, 0, 0
	err := ingest.ReadJSONL(in, func(line int, data []byte, err error) error {
		var ev *event.Event
		if err == nil {
			ev, err = event.Decode(data)
		}
		if err != nil {
			invalid++
			fmt.Fprintf(c.stderr, "%s:%d: %v\n", name, line, err)
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ack, err := pub.PublishOn(pctx, *subject, ev)
		if err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("line %d: no stream takes %s: is herald serve running? (%w)", line, *subject, err)
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
		if ack.Duplicate {
			dups++
		} else {
			sent++
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald publish: %v\n", err)
		fmt.Fprintf(c.stderr, "herald publish: stopped after %d events sent, %d duplicates dropped, %d invalid lines\n", sent, dups, invalid)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "%d events sent, %d duplicates dropped by NATS (same id within the duplicate window), %d invalid lines\n", sent, dups, invalid)
	if invalid > 0 {
		return exitFailed
	}
	return exitOK
}

// checkSubject reports why s is not a subject events may be published on:
// a literal subject under herald.events., with at least one token after
// the prefix.
func checkSubject(s string) error {
	rest, ok := strings.CutPrefix(s, eventsPrefix)
	if !ok {
		return fmt.Errorf("not under %s", eventsPrefix)
	}
	if rest == "" {
		return fmt.Errorf("needs a token after %s, such as %scli", eventsPrefix, eventsPrefix)
	}
	for tok := range strings.SplitSeq(rest, ".") {
		switch {
		case tok == "":
			return errors.New("has an empty token")
		case strings.ContainsAny(tok, "*>"):
			return errors.New("has a wildcard; events are published on a literal subject")
		case strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			return errors.New("has a space or a control character")
		}
	}
	return nil
}
