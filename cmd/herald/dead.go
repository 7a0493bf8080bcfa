package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-events/herald/natsbus"
)

const deadUsage = `Usage: herald dead list|show|retry|purge [flags] [ID...]

Inspect, retry and delete the dead letters Herald keeps in ` + natsbus.DeadStream + `:
events it could not process and effects (emails, webhooks…) that failed for
good, each with the reason. A dead letter's ID is its sequence in the stream.

  list   [--reason RE] [--json]         the dead letters, oldest first
  show   ID                             one dead letter: headers and body
  retry  [--reason RE] --all | ID...    publish events again, then delete them
  purge  [--reason RE] [--yes] [ID...]  delete dead letters (all, or those chosen)

Each reaches NATS with serve's configuration (--config, else $HERALD_CONFIG,
else ./herald.yaml), or the server --server names.
Run herald dead COMMAND -h for its flags.
Exits 1 when something could not be done, and 2 on bad usage or configuration.
`

func (c *cli) dead(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, deadUsage)
		return exitUsage
	}
	switch args[0] {
	case "list":
		return c.deadList(args[1:])
	case "show":
		return c.deadShow(args[1:])
	case "retry":
		return c.deadRetry(args[1:])
	case "purge":
		return c.deadPurge(args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, deadUsage)
		return exitOK
	}
	fmt.Fprintf(c.stderr, "herald dead: unknown command %q\n\n%s", args[0], deadUsage)
	return exitUsage
}

// reasonFlag adds --reason to fl.
func reasonFlag(fl *flag.FlagSet) *string {
	return fl.String("reason", "", "only dead letters whose reason matches this regular `expression` (RE2, anywhere in the reason; (?i) for any case)")
}

// compileReason compiles --reason; nil matches every reason.
func compileReason(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("--reason: %w", err)
	}
	return re, nil
}

// openDead connects as t says and opens the dead letters. On failure it
// has reported the problem and returns the exit code.
func (c *cli) openDead(cmd string, t *natsTarget) (*natsbus.DeadLetters, func(), int) {
	nc, js, code := c.connectNATS(cmd, t)
	if code != exitOK {
		return nil, nil, code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dl, err := natsbus.OpenDeadLetters(ctx, js)
	if err != nil {
		nc.Close()
		fmt.Fprintf(c.stderr, "herald %s: %v (has herald serve run against %s?)\n", cmd, err, nc.ConnectedUrlRedacted())
		return nil, nil, exitFailed
	}
	return dl, nc.Close, exitOK
}

// parseIDs reads dead-letter IDs.
func parseIDs(args []string) ([]uint64, error) {
	var ids []uint64
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not a dead letter ID (a sequence number, as herald dead list shows)", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// deadRow is a dead letter as list shows it; list --json prints these.
type deadRow struct {
	ID       uint64    `json:"id"`
	FailedAt time.Time `json:"failed_at"`
	// Kind is "event" or "effect".
	Kind string `json:"kind"`
	// Subject is the subject the event was published to; none for an
	// effect.
	Subject   string `json:"subject,omitempty"`
	Event     string `json:"event,omitempty"`
	UUID      string `json:"uuid,omitempty"`
	EffectKey string `json:"effect_key,omitempty"`
	Reason    string `json:"reason"`
}

func rowOf(d *natsbus.Dead) deadRow {
	r := deadRow{ID: d.Seq, FailedAt: d.FailedAt().UTC(), Kind: "event", Subject: d.OriginalSubject(), Event: d.EventID(), UUID: d.UUID(), Reason: d.Reason()}
	if d.IsEffect() {
		r.Kind, r.EffectKey = "effect", d.EffectKey()
	}
	return r
}

func (c *cli) deadList(args []string) int {
	fl := c.flags("dead list", "[flags]", `List the dead letters, oldest first: ID, when processing gave up, the subject
the event was published to (or "effect" for a failed effect), the event id,
the customer's uuid and the reason.`)
	target := natsFlags(fl)
	reason := reasonFlag(fl)
	asJSON := fl.Bool("json", false, "print a JSON array of {id, failed_at, kind, subject, event, uuid, effect_key, reason}")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() != 0 {
		fl.Usage()
		return exitUsage
	}
	re, err := compileReason(*reason)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald dead list: %v\n", err)
		return exitUsage
	}
	dl, closeNATS, code := c.openDead("dead list", target)
	if code != exitOK {
		return code
	}
	defer closeNATS()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := dl.List(ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald dead list: %v\n", err)
		return exitFailed
	}
	rows := []deadRow{}
	for _, d := range all {
		if re == nil || re.MatchString(d.Reason()) {
			rows = append(rows, rowOf(d))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			fmt.Fprintf(c.stderr, "herald dead list: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	printDeadRows(c.stdout, rows, len(all))
	return exitOK
}

// printDeadRows prints the rows as a table, and how many of total they
// are.
func printDeadRows(w io.Writer, rows []deadRow, total int) {
	if len(rows) == 0 {
		if total == 0 {
			fmt.Fprintln(w, "No dead letters.")
		} else {
			fmt.Fprintf(w, "None of the %d dead letters matches.\n", total)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED AT\tSUBJECT\tEVENT\tUUID\tREASON")
	for _, r := range rows {
		subject := r.Subject
		if r.Kind == "effect" {
			subject = "effect"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.FailedAt.Format(time.RFC3339), cell(subject), cell(r.Event), cell(r.UUID), cell(r.Reason))
	}
	tw.Flush()
	if len(rows) == total {
		fmt.Fprintf(w, "%d dead letters.\n", total)
	} else {
		fmt.Fprintf(w, "%d of %d dead letters.\n", len(rows), total)
	}
}

// cell makes s safe for one cell of a table: "-" when empty, control
// characters and tabs replaced.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func (c *cli) deadShow(args []string) int {
	fl := c.flags("dead show", "[flags] ID", `Show one dead letter: its subject, its headers (the reason, the original
subject, …) and its body as it was received.`)
	target := natsFlags(fl)
	if code, ok := parse(fl, args); !ok {
		return code
	}
	ids, err := parseIDs(fl.Args())
	if err != nil || len(ids) != 1 {
		if err != nil {
			fmt.Fprintf(c.stderr, "herald dead show: %v\n", err)
		} else {
			fl.Usage()
		}
		return exitUsage
	}
	dl, closeNATS, code := c.openDead("dead show", target)
	if code != exitOK {
		return code
	}
	defer closeNATS()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := dl.Get(ctx, ids[0])
	if err != nil {
		fmt.Fprintf(c.stderr, "herald dead show: %v\n", err)
		return exitFailed
	}
	kind := "event"
	if d.IsEffect() {
		kind = "failed effect"
	}
	fmt.Fprintf(c.stdout, "Dead letter %d (%s) on %s, stored %s\n\n", d.Seq, kind, d.Subject, d.Stored.UTC().Format(time.RFC3339))
	for _, k := range slices.Sorted(maps.Keys(d.Header)) {
		for _, v := range d.Header[k] {
			fmt.Fprintf(c.stdout, "%s: %s\n", k, cell(v))
		}
	}
	fmt.Fprintln(c.stdout)
	fmt.Fprintln(c.stdout, printableBody(d.Data))
	return exitOK
}

// printableBody is the body as it is when it is text, and quoted as a Go
// string when it holds invalid UTF-8 or control characters other than
// line breaks and tabs, which a terminal would act on.
func printableBody(data []byte) string {
	ok := utf8.Valid(data) && !strings.ContainsFunc(string(data), func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r'
	})
	if ok {
		return strings.TrimRight(string(data), "\n")
	}
	return "(not printable text; quoted)\n" + strconv.Quote(string(data))
}

// selectDead returns the dead letters ids names, or with all every one;
// either way only those whose reason matches re. An id that names none is
// an error.
func selectDead(ctx context.Context, dl *natsbus.DeadLetters, ids []uint64, all bool, re *regexp.Regexp) ([]*natsbus.Dead, []error, error) {
	var (
		picked []*natsbus.Dead
		errs   []error
	)
	if all {
		list, err := dl.List(ctx)
		if err != nil {
			return nil, nil, err
		}
		picked = list
	} else {
		for _, id := range ids {
			d, err := dl.Get(ctx, id)
			if errors.Is(err, natsbus.ErrDeadNotFound) {
				errs = append(errs, err)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			picked = append(picked, d)
		}
	}
	if re != nil {
		picked = slices.DeleteFunc(picked, func(d *natsbus.Dead) bool { return !re.MatchString(d.Reason()) })
	}
	return picked, errs, nil
}

// pickDead selects the dead letters retry or purge act on (selectDead),
// reporting on stderr those it could not read, which it counts as failed.
// ok is false when reading failed altogether.
func (c *cli) pickDead(ctx context.Context, cmd string, dl *natsbus.DeadLetters, ids []uint64, all bool, re *regexp.Regexp) (picked []*natsbus.Dead, failed int, ok bool) {
	picked, errs, err := selectDead(ctx, dl, ids, all, re)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
		return nil, 0, false
	}
	for _, err := range errs {
		fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
	}
	return picked, len(errs), true
}

func (c *cli) deadRetry(args []string) int {
	fl := c.flags("dead retry", "[flags] --all | ID...", `Publish the events of dead letters again, on the subjects they were first
published to, then delete the dead letters. Each event keeps its id, so the
rules do not apply twice to an event they were applied to (the profile
remembers the ids it applied), and retrying the same dead letter twice within
the duplicate window stores it once. An event that fails again becomes a new
dead letter. A dead letter that is not a valid event is kept and reported:
publish a corrected event with herald publish, then purge it. Failed effects
cannot be retried as events: --all leaves them out, and naming one fails.`)
	target := natsFlags(fl)
	reason := reasonFlag(fl)
	all := fl.Bool("all", false, "retry every event dead letter (with --reason, every matching one)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	ids, err := parseIDs(fl.Args())
	if err == nil && *all == (len(ids) > 0) {
		err = errors.New("name dead letters by ID, or give --all")
	}
	re, rerr := compileReason(*reason)
	if err = errors.Join(err, rerr); err != nil {
		fmt.Fprintf(c.stderr, "herald dead retry: %v\n", err)
		return exitUsage
	}
	dl, closeNATS, code := c.openDead("dead retry", target)
	if code != exitOK {
		return code
	}
	defer closeNATS()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	picked, failed, ok := c.pickDead(ctx, "dead retry", dl, ids, *all, re)
	if !ok {
		return exitFailed
	}
	effects, retried := 0, 0
	for _, d := range picked {
		if d.IsEffect() {
			if *all {
				effects++
				continue
			}
			failed++
			fmt.Fprintf(c.stderr, "dead letter %d not retried: %v (key %s); herald dead purge %d deletes it\n", d.Seq, natsbus.ErrDeadEffect, cell(d.EffectKey()), d.Seq)
			continue
		}
		ev, err := dl.Retry(ctx, d)
		if ev == nil {
			failed++
			fmt.Fprintf(c.stderr, "dead letter %d not retried: %v\n", d.Seq, err)
			continue
		}
		retried++
		fmt.Fprintf(c.stdout, "dead letter %d: event %s of %s published again on %s\n", d.Seq, ev.ID, ev.UUID, d.OriginalSubject())
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "dead letter %d: %v\n", d.Seq, err)
		}
	}
	fmt.Fprintf(c.stdout, "%d retried, %d not retried", retried, failed)
	if effects > 0 {
		fmt.Fprintf(c.stdout, ", %d failed effects left out (they cannot be retried as events)", effects)
	}
	fmt.Fprintln(c.stdout)
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

func (c *cli) deadPurge(args []string) int {
	fl := c.flags("dead purge", "[flags] [ID...]", `Delete dead letters: those named by ID, or every one; with --reason, only
those whose reason matches. Asks first, on standard input, unless --yes.`)
	target := natsFlags(fl)
	reason := reasonFlag(fl)
	yes := fl.Bool("yes", false, "delete without asking")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	ids, err := parseIDs(fl.Args())
	re, rerr := compileReason(*reason)
	if err = errors.Join(err, rerr); err != nil {
		fmt.Fprintf(c.stderr, "herald dead purge: %v\n", err)
		return exitUsage
	}
	dl, closeNATS, code := c.openDead("dead purge", target)
	if code != exitOK {
		return code
	}
	defer closeNATS()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	picked, failed, ok := c.pickDead(ctx, "dead purge", dl, ids, len(ids) == 0, re)
	if !ok {
		return exitFailed
	}
	if len(picked) > 0 && !*yes {
		fmt.Fprintf(c.stdout, "Delete %d dead letters for good? [y/N] ", len(picked))
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(c.stdout, "Nothing deleted.")
			return exitFailed
		}
	}
	deleted := 0
	for _, d := range picked {
		if err := dl.Delete(ctx, d.Seq); err != nil {
			failed++
			fmt.Fprintf(c.stderr, "herald dead purge: %v\n", err)
			continue
		}
		deleted++
	}
	fmt.Fprintf(c.stdout, "%d dead letters deleted.\n", deleted)
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}
