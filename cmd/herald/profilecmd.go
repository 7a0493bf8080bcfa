package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
)

func (c *cli) profile(args []string) int {
	fl := c.flags("profile", "[flags] UUID", `Show a customer's profile and their recent activity: the label and time of
their latest events among the most recent events in the stream.`)
	target := natsFlags(fl)
	recent := fl.Int("recent", 10, "how many of the customer's latest `events` to show")
	scan := fl.Int("scan", 10000, "how many of the stream's latest `events` to look through")
	asJSON := fl.Bool("json", false, "print the stored record (null when there is none) and the events as JSON")
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
	kv, err := js.KeyValue(ctx, natsbus.ProfileBucket)
	if err != nil {
		return fail(fmt.Errorf("open %s (has herald serve run against %s?): %w", natsbus.ProfileBucket, nc.ConnectedUrlRedacted(), err))
	}
	rec, _, err := profile.NewKV(kv).Get(ctx, uuid)
	if err != nil && !errors.Is(err, profile.ErrNotFound) {
		return fail(err)
	}
	activity, scanned, err := ingest.RecentActivity(ctx, js, uuid, *recent, *scan)
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		if activity == nil {
			activity = []*event.Event{} // [], not null
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Record   *profile.Record `json:"record"`
			Activity []*event.Event  `json:"activity"`
		}{rec, activity}); err != nil {
			return fail(err)
		}
		return exitOK
	}
	if rec != nil && rec.Profile != nil {
		printProfile(c.stdout, rec.Profile)
	} else {
		fmt.Fprintf(c.stdout, "No profile for %s: no rule has changed it yet.\n", uuid)
	}
	fmt.Fprintf(c.stdout, "\nRecent activity (latest %d of the last %d events in %s):\n", len(activity), scanned, natsbus.EventsStream)
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
	return exitOK
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
