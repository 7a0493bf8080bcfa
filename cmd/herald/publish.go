package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
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
reported with its line number and not sent, and the others are. Every event
gets its id before it is first sent: its own, or one made from the line
(see docs/publishing.md), sent as its Nats-Msg-Id, so a retry, or sending
the file again within the stream's duplicate window (10 minutes), stores
nothing twice. A publish that fails for a moment (a server gone, a leader
being elected) is tried again, on the other servers listed, for up to
--retry. Each line's outcome is printed, then the counts.
Exits 1 when any line was invalid or not stored, or NATS could not be
reached, and 2 on bad flags or configuration.`)
	target := natsFlags(fl)
	subject := fl.String("subject", eventsPrefix+"cli", "`subject` to publish on, under "+eventsPrefix)
	retryFor := fl.Duration("retry", publishRetry, "how long to keep trying to store a line before giving up (`duration`)")
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
	if *retryFor <= 0 {
		fmt.Fprintf(c.stderr, "herald publish: --retry %s: must be more than 0\n", *retryFor)
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
	p := &publisher{js: js, pub: natsbus.NewPublisher(js, *subject), subject: *subject, retryFor: *retryFor, seen: map[[sha256.Size]byte]int{}}
	var n publishCounts
	stoppedAt, firstSkipped, lastSkipped := 0, 0, 0
	err := ingest.ReadJSONL(in, func(line int, data []byte, err error) error {
		if stoppedAt > 0 {
			if firstSkipped == 0 {
				firstSkipped = line
			}
			lastSkipped = line
			n.notSent++
			return nil
		}
		var ev *event.Event
		if err == nil {
			ev, err = p.decode(data)
		}
		if err != nil {
			n.invalid++
			fmt.Fprintf(c.stderr, "%s:%d: %v\n", name, line, err)
			return nil
		}
		out := p.publish(ev)
		switch {
		case out.err != nil:
			n.failed++
			fmt.Fprintf(c.stderr, "%s:%d: not stored (id %s): %v\n", name, line, ev.ID, out.err)
			if out.stop {
				stoppedAt = line
			}
		case out.ack.Duplicate && out.attempts == 1:
			n.dups++
			fmt.Fprintf(c.stdout, "%s:%d: duplicate of %s #%d (id %s), not stored again\n", name, line, out.ack.Stream, out.ack.Sequence, ev.ID)
		case out.ack.Duplicate:
			n.stored++
			fmt.Fprintf(c.stdout, "%s:%d: stored as %s #%d (id %s): attempt %d was told the stream had it, from an earlier attempt or an earlier send\n", name, line, out.ack.Stream, out.ack.Sequence, ev.ID, out.attempts)
		case out.attempts > 1:
			n.stored++
			fmt.Fprintf(c.stdout, "%s:%d: stored as %s #%d (id %s) on attempt %d\n", name, line, out.ack.Stream, out.ack.Sequence, ev.ID, out.attempts)
		default:
			n.stored++
			fmt.Fprintf(c.stdout, "%s:%d: stored as %s #%d (id %s)\n", name, line, out.ack.Stream, out.ack.Sequence, ev.ID)
		}
		return nil
	})
	if stoppedAt > 0 && n.notSent > 0 {
		lines := strconv.Itoa(firstSkipped)
		if lastSkipped != firstSkipped {
			lines += "-" + strconv.Itoa(lastSkipped)
		}
		fmt.Fprintf(c.stderr, "%s:%s: %d lines not sent: stopped after line %d could not be stored\n", name, lines, n.notSent, stoppedAt)
	}
	if err != nil {
		// Reading the input failed: the lines after it are not accounted for.
		fmt.Fprintf(c.stderr, "herald publish: %s: %v\n", name, err)
		fmt.Fprintf(c.stdout, "%s, then reading stopped\n", n)
		return exitFailed
	}
	fmt.Fprintln(c.stdout, n.String())
	if n.invalid > 0 || n.failed > 0 || n.notSent > 0 {
		return exitFailed
	}
	return exitOK
}

// publishRetry is how long herald publish keeps trying to store a line by
// default: enough for a cluster to elect new leaders and for the
// connection to move to another server.
const publishRetry = 30 * time.Second

// Retries of a publish: waits from publishRetryMin, doubling up to
// publishRetryMax, with full jitter; each attempt waits at most
// publishAttempt for the stream's acknowledgement.
const (
	publishRetryMin = 100 * time.Millisecond
	publishRetryMax = 2 * time.Second
	publishAttempt  = 5 * time.Second
)

// publishCounts counts what became of the lines of herald publish's input.
type publishCounts struct {
	stored, dups, invalid, failed, notSent int
}

func (n publishCounts) String() string {
	s := fmt.Sprintf("%d lines: %d stored, %d duplicates (already stored within the duplicate window), %d invalid, %d failed",
		n.stored+n.dups+n.invalid+n.failed+n.notSent, n.stored, n.dups, n.invalid, n.failed)
	if n.notSent > 0 {
		s += fmt.Sprintf(", %d not sent", n.notSent)
	}
	return s
}

// publisher publishes the lines of herald publish's input.
type publisher struct {
	js       jetstream.JetStream
	pub      *natsbus.Publisher
	subject  string
	retryFor time.Duration
	// seen counts the lines read so far by content, so that the k-th
	// copy of a line gets an id of its own, the same on every send.
	seen map[[sha256.Size]byte]int
}

// decode decodes and validates a line. An event without an id gets one
// made from the line: "cli-" and the first 128 bits of the SHA-256 of the
// line (its blanks at either end left out) in hex, followed by "-K" for
// the K-th copy of the same line in the input (K from 2). So sending the
// same input again gives every event the same id, and the stream's
// duplicate window drops what it stored already.
func (p *publisher) decode(data []byte) (*event.Event, error) {
	sum := sha256.Sum256(bytes.TrimSpace(data))
	p.seen[sum]++
	k := p.seen[sum]
	dec := event.Decoder{NewID: func(time.Time) string {
		id := "cli-" + hex.EncodeToString(sum[:16])
		if k > 1 {
			id += "-" + strconv.Itoa(k)
		}
		return id
	}}
	return dec.Decode(data)
}

// publishOutcome is what became of one event.
type publishOutcome struct {
	ack      *jetstream.PubAck // the stream's acknowledgement; nil when err
	attempts int
	err      error // why the event was not stored
	// stop says the next lines would fail alike: the stream did not
	// answer for the whole retry budget, or does not exist.
	stop bool
}

// publish stores ev, trying again on a failure that may pass (a server
// gone, no stream leader for a moment, no acknowledgement in time) with a
// capped, jittered backoff, for up to p.retryFor. The connection itself
// moves to another of the servers listed when its server goes away. Every
// attempt sends the same message, with the same Nats-Msg-Id, so an
// attempt that was stored although its acknowledgement was lost makes the
// next one a duplicate, not a second copy.
func (p *publisher) publish(ev *event.Event) publishOutcome {
	deadline := time.Now().Add(p.retryFor)
	wait := publishRetryMin
	var errs []string
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), min(publishAttempt, max(time.Until(deadline), time.Second)))
		ack, err := p.pub.PublishOn(ctx, p.subject, ev)
		cancel()
		if err == nil {
			return publishOutcome{ack: ack, attempts: attempt}
		}
		if !transientPublish(err) {
			return publishOutcome{attempts: attempt, err: err}
		}
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			if why := p.noStream(); why != nil {
				return publishOutcome{attempts: attempt, err: why, stop: true}
			}
		}
		if len(errs) == 0 || errs[len(errs)-1] != errText(err) {
			errs = append(errs, errText(err))
		}
		sleep := rand.N(wait) + time.Millisecond
		if time.Now().Add(sleep).After(deadline) {
			tries := "1 attempt"
			if attempt > 1 {
				tries = strconv.Itoa(attempt) + " attempts"
			}
			return publishOutcome{attempts: attempt, stop: true, err: fmt.Errorf(
				"the stream did not acknowledge it within --retry %s (%s: %s); the servers, or the stream's leader, did not answer",
				p.retryFor, tries, strings.Join(errs, "; "))}
		}
		time.Sleep(sleep)
		wait = min(2*wait, publishRetryMax)
	}
}

// noStream returns why no stream takes the events, when that is why a
// publish found no responders: the events stream does not exist on the
// NATS reached, or does not take the subject. It returns nil when the
// stream is there (a server or a leader was missing for a moment) or when
// that cannot be told now.
func (p *publisher) noStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := p.js.Stream(ctx, natsbus.EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no stream %s on this NATS takes %s: herald serve sets it up when it starts; has it run against this NATS?", natsbus.EventsStream, p.subject)
	}
	return nil
}

// errText says in a few words why an attempt failed.
func errText(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "no acknowledgement in time"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "no responders"
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // without PublishOn's "publish ID: "
	}
	return strings.TrimPrefix(err.Error(), "nats: ")
}

// transientPublish reports whether a failed publish may succeed if sent
// again: no acknowledgement in time, no responders (a server gone, no
// stream leader yet), the connection reconnecting, or JetStream
// unavailable for a moment.
func transientPublish(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.Code == 500
	}
	return false
}

// checkSubject reports why s is not a subject events may be published on:
// a literal subject under herald.events., with one token after the
// prefix: the source. The customer's token is added for each event
// (natsbus.CustomerSubject); a second token would be read as the customer
// of every event, whoever it is about, and break their order.
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
	if source, _, more := strings.Cut(rest, "."); more {
		return fmt.Errorf("has more than the source after %s: Herald adds each event's customer to the subject itself, and would read the next token as the customer of every event; name the source alone, such as %s%s", eventsPrefix, eventsPrefix, source)
	}
	return nil
}
