package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/replay"
	"github.com/herald-events/herald/rules"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (c *cli) replay(args []string) int {
	fl := c.flags("replay", "--rules DIR --events FILE.jsonl [flags]", `Run every event of a recorded JSONL stream, in order, through the rules, with
an in-memory profile store. The clock is each event's time; events the rules
emit are fed back in. An event without a time takes the clock: the previous
event's time or, before any event with a time, --start (default: the time of
the first event in the file that has one; the current time when reading
standard input or when no event has a time). Effects are recorded and
printed, never performed: no email is sent, nothing is published. Invalid
lines are reported with their line number and reason, and the replay goes on.

Timers the rules set (emit with after or at) run on the replay's clock:
before each event, the timers due by its time fire, each at its own time;
after the last event, those due within --horizon of it.

Exits 1 when any line was invalid, any rule failed or any effect failed as
it would in herald serve (kept as a dead letter), 0 otherwise.

With --compare, the stream runs through both the rules of --rules (before)
and those of --compare (after), each with its own profiles, and only what
differs is printed, per event: emails added (+), removed (-) or changed (~:
subject, links, sent or not), profile changes, emitted events and other
effects added or removed; then a summary. Exits 1 when anything differs.`)
	var ruleDirs listFlag
	fl.Var(&ruleDirs, "rules", "rule `file or directory` (repeat for more)")
	configPath := fl.String("config", "", "herald serve's configuration `file`: the email sender address and the webhook hosts allowed (default: $"+envConfig+", else ./"+defaultConfigFile+" when there is one)")
	events := fl.String("events", "", "recorded events, one JSON event a line (`FILE`.jsonl, - for stdin)")
	profiles := fl.String("profiles", "", "initial profiles, one JSON profile a line (`FILE`.jsonl)")
	format := fl.String("format", "text", "output `format`: text or json")
	var compareDirs listFlag
	fl.Var(&compareDirs, "compare", "another version of the rules (`file or directory`, repeat for more): print only the effects that differ from --rules")
	explain := fl.Bool("explain", false, "after each event, say for every rule that triggers on its action whether it fired and why not")
	start := fl.String("start", "", "clock for events that have no time before any that has one (RFC 3339; default: the first time in the file, or now when reading stdin)")
	horizon := fl.String("horizon", "30d", "after the last event, fire the timers due within this `duration` of it (such as 30d or 48h)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "herald replay: "+format+"\n", args...)
		return exitUsage
	}
	switch {
	case fl.NArg() > 0:
		return usage("unexpected argument %q; give files with --rules and --events", fl.Arg(0))
	case len(ruleDirs) == 0:
		return usage("--rules is required")
	case *events == "":
		return usage("--events is required (- reads standard input)")
	case *format != "text" && *format != "json":
		return usage("--format %q: use text or json", *format)
	}
	until, err := rules.ParseDuration(*horizon)
	if err != nil || until < 0 {
		return usage("--horizon %q is not a duration such as 30d or 48h", *horizon)
	}
	var clock time.Time
	if *start != "" {
		t, err := time.Parse(time.RFC3339Nano, *start)
		if err != nil {
			return usage("--start %q is not an RFC 3339 time", *start)
		}
		clock = t
	}
	cfg, _, ok := c.loadConfig(*configPath)
	if !ok {
		return exitUsage
	}
	set, ok := c.loadRules(cfg, ruleDirs)
	if !ok {
		return exitUsage
	}
	store := profile.NewMemory()
	if *profiles != "" {
		if err := loadProfiles(store, *profiles); err != nil {
			return usage("%v", err)
		}
	}
	in := c.stdin
	if *events != "-" {
		f, err := os.Open(*events)
		if err != nil {
			return usage("%v", err)
		}
		defer f.Close()
		in = f
		if clock.IsZero() {
			if clock, err = firstTime(f); err != nil {
				return usage("%v", err)
			}
		}
	}
	if clock.IsZero() {
		clock = time.Now().UTC()
	}
	var kinds []string
	for _, k := range app.Kinds(cfg) {
		kinds = append(kinds, k.Name)
	}
	rp, err := replay.New(replay.Config{Rules: set, Store: store, From: cfg.Email.From, Kinds: kinds})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	if len(compareDirs) > 0 {
		if *explain || *format != "text" {
			return usage("--compare prints text, without --explain")
		}
		return c.compare(cfg, *profiles, compareDirs, rp, clock, until, in)
	}
	var explainSet *rules.Set
	if *explain {
		explainSet = set
	}
	r := &replayer{replay: rp, clock: clock, lines: make(map[string]int), progress: c.newProgress("events replayed")}
	if *format == "json" {
		r.out = &jsonReport{enc: json.NewEncoder(c.stdout), explain: explainSet}
	} else {
		r.out = &textReport{w: c.stdout, explain: explainSet}
	}
	err = ingest.ReadJSONL(in, r.line)
	r.progress.done()
	if err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	// The timers due within the horizon fire; later ones stay pending.
	if err := r.advance(r.clock.Add(until)); err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	r.out.pending(rp.Clock().Pending(""), r.lines)
	r.out.summary(&r.sum)
	if r.sum.Invalid > 0 || r.sum.Errors > 0 || r.sum.Failed > 0 {
		return exitFailed
	}
	return exitOK
}

// firstTime returns the time of the first valid event in f that has one,
// or the zero time when none has, and rewinds f. It reads nothing from a
// file that is not a regular file (a pipe cannot be read twice).
func firstTime(f *os.File) (time.Time, error) {
	var first time.Time
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return first, nil
	}
	errFound := errors.New("found")
	err := ingest.ReadJSONL(f, func(_ int, data []byte, err error) error {
		if err != nil {
			return nil // reported by the replay itself
		}
		timed := true
		dec := event.Decoder{
			Now:   func() time.Time { timed = false; return time.Time{} },
			NewID: func(time.Time) string { return "-" },
		}
		if ev, err := dec.Decode(data); err == nil && timed {
			first = ev.Time
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return time.Time{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return time.Time{}, err
	}
	return first, nil
}

// loadProfiles reads initial profiles, one JSON object a line.
func loadProfiles(store *profile.Memory, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ingest.ReadJSONL(f, func(line int, data []byte, err error) error {
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		var p profile.Profile
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if p.UUID == "" {
			return fmt.Errorf("%s:%d: uuid: required", path, line)
		}
		p.Normalize()
		if _, err := store.Put(context.Background(), p.UUID, &profile.Record{Profile: &p}, 0); err != nil {
			return fmt.Errorf("%s:%d: uuid %s: %w", path, line, p.UUID, err)
		}
		if p.Email != "" {
			// Index the email as serve does, so that a form giving it
			// makes its sender this customer.
			if owner, err := store.ClaimEmail(context.Background(), p.Email, p.UUID); err != nil {
				return fmt.Errorf("%s:%d: uuid %s: %w", path, line, p.UUID, err)
			} else if owner != p.UUID {
				return fmt.Errorf("%s:%d: uuid %s: email %s is already the email of %s", path, line, p.UUID, p.Email, owner)
			}
		}
		return nil
	})
}

// replaySummary counts what a replay did.
type replaySummary struct {
	Events     int `json:"events"`
	Invalid    int `json:"invalid"`
	Emitted    int `json:"emitted"`
	Fired      int `json:"rules_fired"`
	Changes    int `json:"profile_changes"`
	Emails     int `json:"emails"`
	Suppressed int `json:"emails_suppressed"`
	Errors     int `json:"rule_errors"`
	Effects    int `json:"other_effects"`
	Failed     int `json:"effects_failed"`
	Timers     int `json:"timers_fired,omitempty"`
	// Skipped counts the recorded emitted events (herald record) left
	// out, since the rules emit them again.
	Skipped int `json:"recorded_emits_skipped,omitempty"`
	// ByRule counts the times each rule fired (the form step as @form).
	ByRule map[string]int `json:"rules_fired_by_rule,omitempty"`
}

type replayer struct {
	replay *replay.Replayer
	clock  time.Time
	out    report
	sum    replaySummary
	// lines maps the ids of the events timers will publish to the line
	// whose event scheduled them.
	lines    map[string]int
	progress *progress
}

// report prints a replay in one format.
type report interface {
	invalid(line int, err error)
	plan(line int, r *replay.Result)
	pending(timers []*replay.Timer, lines map[string]int)
	summary(s *replaySummary)
}

func (r *replayer) line(n int, data []byte, err error) error {
	r.progress.tick(n)
	if err == nil && isRecordedEmit(data) {
		// The rules emit it again from its cause, which the recording
		// holds too.
		r.sum.Skipped++
		return nil
	}
	if err == nil {
		var ev *event.Event
		dec := event.Decoder{
			Now: func() time.Time { return r.clock },
			// Ids derived from the line keep replays repeatable.
			NewID: func(t time.Time) string { return event.DeriveID(t, "replay", string(data)) },
		}
		ev, err = dec.Decode(data)
		if err == nil {
			r.clock = ev.Time
			// Timers due by the event's time fire first.
			if err := r.advance(ev.Time); err != nil {
				return err
			}
			r.sum.Events++
			results, err := r.replay.Run(context.Background(), ev)
			if err != nil {
				return err
			}
			r.report(n, results)
			return nil
		}
	}
	r.sum.Invalid++
	r.out.invalid(n, err)
	return nil
}

// advance fires the timers due by t, each reported under the line of the
// event that scheduled it.
func (r *replayer) advance(t time.Time) error {
	results, err := r.replay.Advance(context.Background(), t)
	var group []*replay.Result
	for _, res := range results {
		if res.Timer != nil && len(group) > 0 {
			r.report(r.lines[group[0].Plan.Event.ID], group)
			group = nil
		}
		group = append(group, res)
	}
	if len(group) > 0 {
		r.report(r.lines[group[0].Plan.Event.ID], group)
	}
	return err
}

// report counts and prints the results of one event: the event, run or
// fired by a timer, and the events it emitted.
func (r *replayer) report(n int, results []*replay.Result) {
	for i, res := range results {
		p := res.Plan
		switch {
		case res.Timer != nil:
			r.sum.Timers++
		case i > 0:
			r.sum.Emitted++
		}
		r.sum.Fired += len(p.Fired)
		for _, f := range p.Fired {
			if r.sum.ByRule == nil {
				r.sum.ByRule = make(map[string]int)
			}
			r.sum.ByRule[f.Rule]++
		}
		r.sum.Errors += len(p.Errors)
		r.sum.Failed += len(res.Failed)
		r.sum.Changes += len(p.Changes())
		for _, o := range p.Outs() {
			if t, ok := o.(*rules.Timer); ok {
				r.lines[t.Event.ID] = n
			}
			switch o.Kind() {
			case "emit", "timer", "cancel": // counted as the events they make
				continue
			case "email":
			default:
				r.sum.Effects++
				continue
			}
			r.sum.Emails++
			if s, ok := o.(rules.Suppressor); ok && s.Suppressed() != "" {
				r.sum.Suppressed++
			}
		}
		r.out.plan(n, res)
	}
}

// compare runs the stream through rp (the rules of --rules) and the rules
// of dirs, and prints what differs.
func (c *cli) compare(cfg *config.Config, profiles string, dirs []string, rp *replay.Replayer, clock time.Time, until time.Duration, in io.Reader) int {
	set, ok := c.loadRules(cfg, dirs)
	if !ok {
		return exitUsage
	}
	store := profile.NewMemory()
	if profiles != "" {
		if err := loadProfiles(store, profiles); err != nil {
			fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
			return exitUsage
		}
	}
	rb, err := replay.New(replay.Config{Rules: set, Store: store, From: cfg.Email.From, Kinds: kindNames(cfg)})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	cmp := &comparer{a: rp, b: rb, clock: clock, w: c.stdout}
	if err := ingest.ReadJSONL(in, cmp.line); err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	// The timers due within the horizon fire, as in a replay.
	if err := cmp.advance(cmp.clock.Add(until)); err != nil {
		fmt.Fprintf(c.stderr, "herald replay: %v\n", err)
		return exitFailed
	}
	cmp.summary()
	if cmp.sum.Differ > 0 || cmp.sum.Invalid > 0 {
		return exitFailed
	}
	return exitOK
}
