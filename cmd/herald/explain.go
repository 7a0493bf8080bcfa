package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/replay"
)

func (c *cli) explain(args []string) int {
	fl := c.flags("explain", "--rules DIR --event FILE [--profile FILE | --uuid UUID] [flags]", `Explain what the rules do with one event for one customer: for every rule
that triggers on the event's action, whether it fired and, when it did not,
why: the match entry that failed with the value the event had, the value of
the if condition and of its parts, a disabled rule, a run-time error. Then
what the rules that fired would do, as herald replay prints it. Nothing is
performed and nothing is stored.

The customer's profile comes from --profile (a JSON profile, as herald
replay --profiles reads them), or from the running Herald with --uuid,
read from its profile bucket; without either, the customer has none.`)
	var ruleDirs listFlag
	fl.Var(&ruleDirs, "rules", "rule `file or directory` (repeat for more)")
	eventFile := fl.String("event", "", "the event, one JSON event (`FILE`, - for stdin)")
	profileFile := fl.String("profile", "", "the customer's profile, one JSON profile (`FILE`)")
	uuid := fl.String("uuid", "", "read the profile of customer `UUID` from the running Herald (and give the event this uuid)")
	target := natsFlags(fl)
	if code, ok := parse(fl, args); !ok {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "herald explain: "+format+"\n", args...)
		return exitUsage
	}
	switch {
	case fl.NArg() > 0:
		return usage("unexpected argument %q", fl.Arg(0))
	case len(ruleDirs) == 0:
		return usage("--rules is required")
	case *eventFile == "":
		return usage("--event is required (- reads standard input)")
	case *profileFile != "" && *uuid != "":
		return usage("give --profile or --uuid, not both")
	}
	cfg, _, ok := c.loadConfig(target.config)
	if !ok {
		return exitUsage
	}
	set, ok := c.loadRules(cfg, ruleDirs)
	if !ok {
		return exitUsage
	}
	var data []byte
	var err error
	if *eventFile == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, event.MaxEventSize+1))
	} else {
		data, err = os.ReadFile(*eventFile)
	}
	if err != nil {
		return usage("%v", err)
	}
	data = []byte(strings.TrimSpace(string(data)))
	dec := event.Decoder{NewID: func(t time.Time) string { return event.DeriveID(t, "explain", string(data)) }}
	ev, err := dec.Decode(data)
	if err != nil {
		return usage("%s: %v", *eventFile, err)
	}
	store := profile.NewMemory()
	switch {
	case *profileFile != "":
		if err := loadProfiles(store, *profileFile); err != nil {
			return usage("%v", err)
		}
	case *uuid != "":
		ev.UUID = *uuid
		rec, code := c.liveRecord(target, *uuid)
		if code != exitOK {
			return code
		}
		if rec != nil && rec.Profile != nil {
			ev.UUID = rec.Profile.UUID
			if _, err := store.Put(context.Background(), ev.UUID, &profile.Record{Profile: rec.Profile}, 0); err != nil {
				return usage("%v", err)
			}
		}
	}
	rp, err := replay.New(replay.Config{Rules: set, Store: store, From: cfg.Email.From, Kinds: kindNames(cfg)})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald explain: %v\n", err)
		return exitFailed
	}
	results, err := rp.Run(context.Background(), ev)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald explain: %v\n", err)
		return exitFailed
	}
	var b strings.Builder
	out := &textReport{w: &b, explain: set, single: true}
	for _, r := range results {
		out.plan(1, r)
	}
	// Plans are separated by a blank line; the last needs none.
	fmt.Fprint(c.stdout, strings.TrimSuffix(b.String(), "\n"))
	return exitOK
}

// liveRecord reads a customer's record from the running Herald's
// profile bucket, following merges; nil when there is none.
func (c *cli) liveRecord(target *natsTarget, uuid string) (*profile.Record, int) {
	nc, js, code := c.connectNATS("explain", target)
	if code != exitOK {
		return nil, code
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	profiles, err := openProfiles(ctx, nc, js)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald explain: %v\n", err)
		return nil, exitFailed
	}
	res, err := profile.Resolve(ctx, profiles, uuid)
	switch {
	case err == nil:
		return res.Record, exitOK
	case errors.Is(err, profile.ErrNotFound):
		return nil, exitOK
	}
	fmt.Fprintf(c.stderr, "herald explain: %v\n", err)
	return nil, exitFailed
}

// writeExplanation prints why each rule did or did not fire, under a
// replay's plan.
func writeExplanation(w io.Writer, ex *engine.Explanation) {
	if len(ex.Rules) == 0 {
		fmt.Fprintln(w, "  why: no rule triggers on", ex.Event.Action)
		return
	}
	fmt.Fprintln(w, "  why:")
	for _, r := range ex.Rules {
		fmt.Fprintf(w, "    %s: %s\n", r.Rule, r.Reason())
		if r.Fired || r.Match != nil || r.Disabled {
			continue
		}
		for _, p := range r.Parts {
			v := engine.ShowValue(p.Value)
			if p.Err != "" {
				v = "error: " + p.Err
			}
			fmt.Fprintf(w, "    %s%s = %s\n", strings.Repeat("  ", p.Depth+1), p.Src, v)
		}
	}
}

// jsonExplanation is an explanation for tools.
type jsonExplanation struct {
	Rule     string            `json:"rule"`
	Fired    bool              `json:"fired"`
	Reason   string            `json:"reason"`
	Disabled bool              `json:"disabled,omitempty"`
	Match    *engine.MatchMiss `json:"match,omitempty"`
	If       string            `json:"if,omitempty"`
	Value    any               `json:"value,omitempty"`
	Parts    []jsonPart        `json:"parts,omitempty"`
	Error    string            `json:"error,omitempty"`
}

type jsonPart struct {
	Src   string `json:"expr"`
	Value any    `json:"value"`
	Error string `json:"error,omitempty"`
}

func explanationJSON(ex *engine.Explanation) []jsonExplanation {
	out := []jsonExplanation{}
	for _, r := range ex.Rules {
		j := jsonExplanation{Rule: r.Rule, Fired: r.Fired, Reason: r.Reason(), Disabled: r.Disabled,
			Match: r.Match, If: r.If, Value: r.Value, Error: r.Error}
		for _, p := range r.Parts {
			j.Parts = append(j.Parts, jsonPart{Src: p.Src, Value: p.Value, Error: p.Err})
		}
		out = append(out, j)
	}
	return out
}

// kindNames lists the action kinds of the configuration.
func kindNames(cfg *config.Config) []string {
	var kinds []string
	for _, k := range app.Kinds(cfg) {
		kinds = append(kinds, k.Name)
	}
	return kinds
}
