package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go/jetstream"
)

// recordedEmit is how a recording holds an event the rules emitted: not
// as an event line, which a replay would run again besides the one its
// cause emits, but wrapped, so that replays skip it.
type recordedEmit struct {
	Emitted struct {
		Depth int             `json:"depth"`
		Event json.RawMessage `json:"event"`
	} `json:"emitted"`
}

// isRecordedEmit reports whether a JSONL line is an emitted event of a
// recording, which replays skip: the rules emit it again from its cause.
func isRecordedEmit(data []byte) bool {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t"), []byte(`{"emitted":`)) {
		return false
	}
	var r recordedEmit
	return json.Unmarshal(data, &r) == nil && len(r.Emitted.Event) > 0
}

func (c *cli) record(args []string) int {
	fl := c.flags("record", "[flags]", `Capture events from the HERALD_EVENTS stream into JSONL that herald replay
reads: the stream's history (from its start, --since a time or --from-seq a
stream sequence) up to its end when the command starts, or with --follow
on and on until --limit or Ctrl-C; --live records only events that arrive
from now on. Each event is written as stored, with the id and time the
engine gave it (an event published without an id or time gets the id
derived from the stream sequence and the time the stream stored it, as
herald serve does).

Events the rules emitted (those with a Herald-Depth header) are written as
{"emitted":{"depth":D,"event":{...}}}: herald replay skips them, since
the rules emit them again from the event that caused them.`)
	target := natsFlags(fl)
	out := fl.String("out", "-", "write the recording to `FILE` (- for standard output)")
	since := fl.String("since", "", "start at the first event stored at or after `TIME` (RFC 3339)")
	fromSeq := fl.Uint64("from-seq", 0, "start at stream sequence `N`")
	follow := fl.Bool("follow", false, "after the history, go on recording events as they arrive")
	live := fl.Bool("live", false, "record only events that arrive from now on (implies --follow)")
	limit := fl.Int("limit", 0, "stop after `N` events (0: no limit)")
	subject := fl.String("subject", "", "record only events stored on subjects matching `FILTER` (a NATS subject filter such as herald.events.web)")
	action := fl.String("action", "", "record only events whose action matches `GLOB` (form.submit, newsletter.*)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "herald record: "+format+"\n", args...)
		return exitUsage
	}
	starts := 0
	for _, set := range []bool{*since != "", *fromSeq > 0, *live} {
		if set {
			starts++
		}
	}
	var sinceT time.Time
	switch {
	case fl.NArg() > 0:
		return usage("unexpected argument %q", fl.Arg(0))
	case starts > 1:
		return usage("give one of --since, --from-seq and --live")
	case *limit < 0:
		return usage("--limit %d: must be 0 or more", *limit)
	case *action != "":
		if _, err := path.Match(*action, "a.b"); err != nil {
			return usage("--action %q is not a glob", *action)
		}
	}
	if *since != "" {
		t, err := time.Parse(time.RFC3339Nano, *since)
		if err != nil {
			return usage("--since %q is not an RFC 3339 time", *since)
		}
		sinceT = t
	}
	w := c.stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return usage("%v", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()

	nc, js, code := c.connectNATS("record", target)
	if code != exitOK {
		return code
	}
	defer nc.Close()
	ctx := c.context()
	stream, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald record: open %s (has herald serve run against %s?): %v\n", natsbus.EventsStream, nc.ConnectedUrlRedacted(), err)
		return exitFailed
	}
	info, err := stream.Info(ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald record: %v\n", err)
		return exitFailed
	}
	last := info.State.LastSeq
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case *live:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case *fromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *fromSeq
	case !sinceT.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &sinceT
	}
	if *subject != "" {
		cfg.FilterSubjects = []string{*subject}
	}
	forever := *follow || *live
	if !forever && (info.State.Msgs == 0 || (*fromSeq > last)) {
		fmt.Fprintf(c.stderr, "recorded 0 events (%s holds none to record)\n", natsbus.EventsStream)
		return exitOK
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald record: %v\n", err)
		return exitFailed
	}
	var written, emitted, invalid int
	var prog *progress
	if *out != "-" {
		prog = c.newProgress("events recorded")
	}
	var firstSeq, lastSeq uint64
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(c.stderr, "herald record: %v\n", err)
			return exitFailed
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			if !forever && seq >= last {
				done = true
			}
			if !forever && seq > last {
				break
			}
			line, isEmit, err := recordLine(msg)
			if err != nil {
				invalid++
				fmt.Fprintf(c.stderr, "herald record: stream sequence %d: not an event Herald can read (skipped): %v\n", seq, err)
				continue
			}
			if line == nil || (*action != "" && !actionMatches(*action, line, isEmit)) {
				continue
			}
			bw.Write(line)
			bw.WriteByte('\n')
			if firstSeq == 0 {
				firstSeq = seq
			}
			lastSeq = seq
			written++
			prog.tick(written)
			if isEmit {
				emitted++
			}
			if *limit > 0 && written >= *limit {
				done = true
				break
			}
		}
		if forever {
			bw.Flush()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			fmt.Fprintf(c.stderr, "herald record: %v\n", err)
			return exitFailed
		}
		if done || ctx.Err() != nil || (!forever && n == 0) {
			break
		}
	}
	prog.done()
	if err := bw.Flush(); err != nil {
		fmt.Fprintf(c.stderr, "herald record: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(c.stderr, "recorded %d events (%d emitted by rules, which replays skip)", written, emitted)
	if written > 0 {
		fmt.Fprintf(c.stderr, ", stream sequences %d to %d", firstSeq, lastSeq)
	}
	if invalid > 0 {
		fmt.Fprintf(c.stderr, "; %d messages skipped, not events", invalid)
	}
	fmt.Fprintln(c.stderr)
	return exitOK
}

// recordLine is the JSONL line of a stored event: its canonical envelope
// with the id and time herald serve gives it, wrapped when the rules
// emitted it.
func recordLine(msg jetstream.Msg) ([]byte, bool, error) {
	ev, err := ingest.DecodeStored(msg)
	if err != nil {
		return nil, false, err
	}
	data, err := ev.MarshalJSON()
	if err != nil {
		return nil, false, err
	}
	depth := 0
	if d := msg.Headers().Get(natsbus.DepthHeader); d != "" {
		if depth, err = strconv.Atoi(d); err != nil || depth < 0 {
			return nil, false, fmt.Errorf("header %s: %q is not a depth", natsbus.DepthHeader, d)
		}
	}
	if depth == 0 {
		return data, false, nil
	}
	var r recordedEmit
	r.Emitted.Depth, r.Emitted.Event = depth, data
	line, err := json.Marshal(r)
	return line, true, err
}

// actionMatches reports whether a recorded line's event has an action
// matching glob.
func actionMatches(glob string, line []byte, isEmit bool) bool {
	data := line
	if isEmit {
		var r recordedEmit
		if json.Unmarshal(line, &r) != nil {
			return false
		}
		data = r.Emitted.Event
	}
	var ev struct {
		Action string `json:"action"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return false
	}
	ok, _ := path.Match(glob, ev.Action)
	return ok
}
