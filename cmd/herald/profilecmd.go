package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go/jetstream"
)

func (c *cli) profile(args []string) int {
	if len(args) > 0 && privacyVerbs[args[0]] != nil {
		return privacyVerbs[args[0]](c, args[1:])
	}
	fl := c.flags("profile", "[flags] UUID", `Show a customer's profile and their recent activity: the label and time of
their latest events in the stream, found by their subjects. An anonymous
customer merged into a known one shows the known customer, with the history
of the customers merged into them.

herald profile export|forget|consent UUID answer a customer's requests
about their data; run herald profile export -h and so on for theirs.`)
	target := natsFlags(fl)
	recent := fl.Int("recent", 10, "how many of the customer's latest `events` to show")
	scan := fl.Int("scan", 1000, "on a stream without partitions, how many of the stream's latest `events` to look through for events published on a plain subject (herald.events.<source>)")
	asJSON := fl.Bool("json", false, "print the stored record (null when there is none), the events and the resolved uuid as JSON")
	explain := fl.Bool("explain", false, "also show why the rules did or did not fire on the customer's latest events, as the running engines keep them (the latest 5 of each of the 4096 customers each engine handled last)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() != 1 || fl.Arg(0) == "" {
		fl.Usage()
		return exitUsage
	}
	if *recent < 1 || *scan < 1 {
		fmt.Fprintf(c.stderr, "herald profile: --recent %d, --scan %d: both must be at least 1\n", *recent, *scan)
		return exitUsage
	}
	uuid := fl.Arg(0)
	fail := func(err error) int {
		fmt.Fprintf(c.stderr, "herald profile: %v\n", err)
		return exitFailed
	}
	nc, js, code := c.connectNATS("profile", target)
	if code != exitOK {
		return code
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Reads are tried again while a bucket or stream elects a leader.
	profiles, err := openProfiles(ctx, nc, js)
	if err != nil {
		return fail(err)
	}
	// Aliases are followed: a merged anonymous customer shows the known
	// customer they were merged into.
	var rec *profile.Record
	var res *profile.Resolved
	err = natsbus.RetryRead(ctx, func(ctx context.Context) (err error) {
		res, err = profile.Resolve(ctx, profiles, uuid)
		return err
	})
	switch {
	case err == nil:
		rec = res.Record
	case errors.Is(err, profile.ErrNotFound):
	default:
		return fail(err)
	}
	activity, scanned, err := customerActivity(ctx, js, res, rec, *recent, *scan)
	if err != nil {
		return fail(err)
	}
	timers, err := natsbus.NewTimers(js).Pending(ctx, res.UUID)
	if err != nil {
		return fail(err)
	}
	var explained []app.ExplainedAtTime
	if *explain {
		if explained, err = recentExplanations(ctx, nc, res.UUID); err != nil {
			return fail(err)
		}
	}
	if *asJSON {
		if activity == nil {
			activity = []*event.Event{} // [], not null
		}
		var via []string
		for _, a := range res.Via {
			via = append(via, a.UUID)
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Record   *profile.Record `json:"record"`
			Activity []*event.Event  `json:"activity"`
			// ResolvedUUID is the customer whose record this is: the uuid
			// asked for, or the one its aliases (Via) lead to.
			ResolvedUUID string   `json:"resolved_uuid"`
			Via          []string `json:"via,omitempty"`
			// Timers are the customer's timers not fired yet.
			Timers []*natsbus.TimerBody `json:"timers,omitempty"`
			// Explanations are the engines' latest evaluations of the
			// customer, explained (--explain).
			Explanations []app.ExplainedAtTime `json:"explanations,omitempty"`
		}{rec, activity, res.UUID, via, timers, explained}); err != nil {
			return fail(err)
		}
		return exitOK
	}
	for _, a := range res.Via {
		fmt.Fprintf(c.stdout, "uuid %s was merged into %s (event %s", a.UUID, a.Record.MergedInto, a.Record.MergedBy)
		if rec != nil {
			if i := slices.IndexFunc(rec.Merges, func(m profile.Merge) bool { return m.From == a.UUID }); i >= 0 {
				fmt.Fprintf(c.stdout, ", %s", rec.Merges[i].At.UTC().Format(time.RFC3339))
			}
		}
		fmt.Fprintln(c.stdout, ").")
	}
	if len(res.Via) > 0 {
		fmt.Fprintln(c.stdout)
	}
	if rec != nil && rec.Profile != nil {
		printProfile(c.stdout, rec.Profile)
		printMerges(c.stdout, rec.Merges)
		printTimers(c.stdout, timers)
	} else if rec.IsErased() {
		fmt.Fprintf(c.stdout, "Customer %s was erased on %s (herald profile forget); their events are dropped.\n", res.UUID, rec.Erased.At.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(c.stdout, "No profile for %s: no rule has changed it yet.\n", res.UUID)
	}
	fmt.Fprintf(c.stdout, "\nRecent activity (latest %d in %s", len(activity), natsbus.EventsStream)
	if scanned > 0 {
		fmt.Fprintf(c.stdout, "; of events sent on a plain subject, those among its last %d", scanned)
	}
	fmt.Fprintln(c.stdout, "):")
	if len(activity) == 0 {
		fmt.Fprintln(c.stdout, "  none")
	}
	for _, ev := range activity {
		label := ev.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(c.stdout, "  %s  %-24s %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Action, label)
	}
	if *explain {
		printExplanations(c.stdout, explained)
	}
	return exitOK
}

// maxActivityUUIDs bounds the uuids whose events herald profile looks
// for.
const maxActivityUUIDs = 8

// customerActivity returns the latest keep events of the customer res
// resolved to (see ingest.RecentActivity): the events sent with their own
// uuid, the uuid asked for and those merged into them (the latest merges
// first, at most maxActivityUUIDs in all), oldest first; and how many of
// the stream's latest events were looked through for events on plain
// subjects (0 when there were none, as on a partitioned stream).
func customerActivity(ctx context.Context, js jetstream.JetStream, res *profile.Resolved, rec *profile.Record, keep, scan int) ([]*event.Event, int, error) {
	uuids := []string{res.UUID}
	for _, a := range res.Via {
		uuids = append(uuids, a.UUID)
	}
	if rec != nil {
		for _, m := range slices.Backward(rec.Merges) {
			uuids = append(uuids, m.From)
		}
	}
	slices.Sort(uuids[1:])
	uuids = slices.Compact(uuids)
	if len(uuids) > maxActivityUUIDs {
		uuids = uuids[:maxActivityUUIDs]
	}
	// One look-up per uuid, at once: each mostly waits for answers.
	lists := make([][]*event.Event, len(uuids))
	counts := make([]int, len(uuids))
	errs := make([]error, len(uuids))
	var wg sync.WaitGroup
	for i, uuid := range uuids {
		wg.Go(func() {
			act, err := ingest.RecentActivity(ctx, js, uuid, keep, scan)
			if err != nil {
				errs[i] = err
				return
			}
			lists[i], counts[i] = act.Events, act.PlainScan
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	out, scanned := slices.Concat(lists...), slices.Max(counts)
	if len(uuids) > 1 {
		// Each list is in stream order; together, in time order.
		slices.SortStableFunc(out, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
		if len(out) > keep {
			out = out[len(out)-keep:]
		}
	}
	return out, scanned, nil
}

// printMerges shows the customers merged into a profile, and the names of
// the values the merges kept aside as evidence (see profile.Merge).
func printMerges(w io.Writer, merges []profile.Merge) {
	if len(merges) == 0 {
		return
	}
	fmt.Fprintln(w, "  merged (oldest first)")
	for _, m := range merges {
		fmt.Fprintf(w, "    %s  %s  by event %s\n", m.At.UTC().Format(time.RFC3339), m.From, m.Event)
		if len(m.Unmerged) > 0 {
			fmt.Fprintf(w, "      kept aside, not merged: %s\n", strings.Join(slices.Sorted(maps.Keys(m.Unmerged)), ", "))
		}
		if len(m.Replaced) > 0 {
			fmt.Fprintf(w, "      kept aside, replaced: %s\n", strings.Join(slices.Sorted(maps.Keys(m.Replaced)), ", "))
		}
	}
}

func printProfile(w io.Writer, p *profile.Profile) {
	known := "no (anonymous)"
	if p.Known() {
		known = "yes"
	}
	fmt.Fprintf(w, "Profile %s\n", p.UUID)
	for _, name := range profile.StandardFields {
		if v := p.Field(name); v != "" {
			fmt.Fprintf(w, "  %-10s %s\n", name, v)
		}
	}
	fmt.Fprintf(w, "  %-10s %s\n", "known", known)
	fmt.Fprintf(w, "  %-10s %s\n", "created", p.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  %-10s %s\n", "updated", p.Updated.UTC().Format(time.RFC3339))
	if len(p.Tags) > 0 {
		fmt.Fprintf(w, "  %-10s %v\n", "tags", p.Tags)
	}
	if len(p.Attributes) > 0 {
		fmt.Fprintln(w, "  attributes")
		names := make([]string, 0, len(p.Attributes))
		for k := range p.Attributes {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "    %-30s %s\n", k, valueText(p.Attributes[k]))
		}
	}
}
