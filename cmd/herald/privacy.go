package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/privacy"
)

// privacyVerbs are herald profile's verbs for a customer's requests about
// their data; profile hands them its arguments.
var privacyVerbs = map[string]func(c *cli, args []string) int{
	"export":  (*cli).profileExport,
	"forget":  (*cli).profileForget,
	"consent": (*cli).profileConsent,
}

// openPrivacy connects verb cmd to NATS and the profile bucket as serve's
// configuration says, with its outbox folder and address hasher (see
// app.Privacy). On failure it has reported the problem and returns the
// exit code.
func (c *cli) openPrivacy(cmd string, t *natsTarget) (privacy.Config, func(), int) {
	cfg, _, ok := c.loadConfig(t.config)
	if !ok {
		return privacy.Config{}, nil, exitUsage
	}
	nc, js, code := c.connectNATS(cmd, t)
	if code != exitOK {
		return privacy.Config{}, nil, code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	profiles, err := openProfiles(ctx, nc, js)
	if err != nil {
		nc.Close()
		fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
		return privacy.Config{}, nil, exitFailed
	}
	return app.Privacy(cfg, privacy.Config{JS: js, Profiles: profiles}), nc.Close, exitOK
}

// oneUUID parses a privacy verb's flags and its one argument, a uuid.
func oneUUID(c *cli, name, about string, args []string, more func(fl *flag.FlagSet)) (*natsTarget, string, int, bool) {
	fl := c.flags("profile "+name, "[flags] UUID", about)
	target := natsFlags(fl)
	if more != nil {
		more(fl)
	}
	if code, ok := parse(fl, args); !ok {
		return nil, "", code, false
	}
	if fl.NArg() != 1 || fl.Arg(0) == "" {
		fl.Usage()
		return nil, "", exitUsage, false
	}
	return target, fl.Arg(0), exitOK, true
}

func (c *cli) profileExport(args []string) int {
	t, uuid, code, ok := oneUUID(c, "export", `Print everything Herald holds about a customer as one JSON document: the
profile (attributes, tags, aliases, merge history), the consent record with
its evidence and history, the customer's events in HERALD_EVENTS, pending
timers, and the dead letters and outbox emails that name them. Aliases are
followed: a merged uuid exports the customer it was merged into, with every
uuid merged into them. Nothing of other customers is included.`, args, nil)
	if !ok {
		return code
	}
	p, done, code := c.openPrivacy("profile export", t)
	if code != exitOK {
		return code
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doc, err := p.Export(ctx, uuid)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald profile export: %v\n", err)
		return exitFailed
	}
	return c.printJSON("profile export", doc)
}

func (c *cli) printJSON(cmd string, v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
		return exitFailed
	}
	return exitOK
}

func (c *cli) profileForget(args []string) int {
	var suppress *bool
	var reason *string
	var asJSON *bool
	t, uuid, code, ok := oneUUID(c, "forget", `Erase a customer: their profile and aliases (the customers merged into
them too), their email index entries, their events in HERALD_EVENTS (purged
by subject), their pending timers, and the dead letters and outbox emails
that name them. A tombstone stays that holds no personal data, only when and
a keyed hash of each address (HERALD_PRIVACY_KEY): later events of the uuid
are dropped, and a form giving the same address starts a new customer.
With --suppress the addresses go on the suppression list: Herald sends them
no email again, whoever gives them. Running it again is harmless.`, args, func(fl *flag.FlagSet) {
		suppress = fl.Bool("suppress", false, "put the customer's addresses on the suppression list: never email them again")
		reason = fl.String("reason", "", "why, kept with the suppression (with --suppress)")
		asJSON = fl.Bool("json", false, "print the report as JSON")
	})
	if !ok {
		return code
	}
	p, done, code := c.openPrivacy("profile forget", t)
	if code != exitOK {
		return code
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := p.Forget(ctx, uuid, privacy.ForgetOptions{Suppress: *suppress, Reason: *reason})
	if err != nil {
		fmt.Fprintf(c.stderr, "herald profile forget: %v\n", err)
		if rep != nil && rep.Records > 0 {
			fmt.Fprintf(c.stderr, "herald profile forget: the customer is erased, but not all they left is removed yet; run it again\n")
		}
		return exitFailed
	}
	if *asJSON {
		return c.printJSON("profile forget", rep)
	}
	printForget(c.stdout, rep)
	return exitOK
}

// printForget prints what Forget removed.
func printForget(w io.Writer, r *privacy.Report) {
	if r.AlreadyErased {
		fmt.Fprintf(w, "Customer %s was erased before; removed what was left of them:\n", r.UUID)
	} else {
		fmt.Fprintf(w, "Erased customer %s (uuids: %s):\n", r.UUID, strings.Join(r.UUIDs, ", "))
	}
	fmt.Fprintf(w, "  records erased        %d\n", r.Records)
	fmt.Fprintf(w, "  email index entries   %d\n", r.EmailIndex)
	fmt.Fprintf(w, "  events                %d\n", r.Events)
	fmt.Fprintf(w, "  timers                %d\n", r.Timers)
	fmt.Fprintf(w, "  dead letters          %d\n", r.DeadLetters)
	fmt.Fprintf(w, "  outbox emails         %d\n", len(r.Emails))
	for _, f := range r.Emails {
		fmt.Fprintf(w, "    %s\n", f)
	}
	if r.Suppressed > 0 {
		fmt.Fprintf(w, "  addresses suppressed  %d\n", r.Suppressed)
	}
}

func (c *cli) profileConsent(args []string) int {
	var asJSON *bool
	t, uuid, code, ok := oneUUID(c, "consent", `Print a customer's newsletter consent for a regulator: the agreement as the
profile holds it with its evidence, and its history read from the customer's
events (requested, confirmed, withdrawn, expired), each with its time, IP
address, user agent, link and source event.`, args, func(fl *flag.FlagSet) {
		asJSON = fl.Bool("json", false, "print the consent record as JSON")
	})
	if !ok {
		return code
	}
	p, done, code := c.openPrivacy("profile consent", t)
	if code != exitOK {
		return code
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec, doc, err := p.Consent(ctx, uuid)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald profile consent: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		return c.printJSON("profile consent", struct {
			UUID     string   `json:"uuid"`
			Customer string   `json:"customer,omitempty"`
			UUIDs    []string `json:"uuids"`
			*privacy.ConsentRecord
		}{doc.UUID, doc.Customer, doc.UUIDs, rec})
	}
	printConsent(c.stdout, doc, rec)
	return exitOK
}

// printConsent prints a consent record as text.
func printConsent(w io.Writer, doc *privacy.Document, r *privacy.ConsentRecord) {
	who := doc.UUID
	if doc.Customer != "" && doc.Customer != doc.UUID {
		who += " (merged into " + doc.Customer + ")"
	}
	fmt.Fprintf(w, "Consent record of customer %s\n", who)
	fmt.Fprintf(w, "Printed %s\n\n", doc.ExportedAt.Format(time.RFC3339))
	if doc.Erased != nil {
		fmt.Fprintf(w, "The customer was erased on %s; nothing of their consent is kept.\n", doc.Erased.At.UTC().Format(time.RFC3339))
		return
	}
	agreement := r.Agreement
	if agreement == "" {
		agreement = "none given"
	}
	fmt.Fprintf(w, "Newsletter agreement now: %s\n", agreement)
	if len(r.Evidence) > 0 {
		fmt.Fprintln(w, "Evidence kept on the profile:")
		for _, k := range sortedKeys(r.Evidence) {
			fmt.Fprintf(w, "  %-30s %s\n", k, valueText(r.Evidence[k]))
		}
	}
	for _, from := range sortedKeys(r.Merged) {
		fmt.Fprintf(w, "Evidence of merged customer %s, kept aside:\n", from)
		for _, k := range sortedKeys(r.Merged[from]) {
			fmt.Fprintf(w, "  %-30s %s\n", k, valueText(r.Merged[from][k]))
		}
	}
	fmt.Fprintln(w)
	if r.Since != nil {
		fmt.Fprintf(w, "History (from the customer's events in %s, the oldest stored %s):\n", natsbus.EventsStream, r.Since.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "History (from the customer's events in %s):\n", natsbus.EventsStream)
	}
	if len(r.History) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, e := range r.History {
		fmt.Fprintf(w, "  %s  %-9s ", e.At.UTC().Format(time.RFC3339), e.Kind)
		var parts []string
		add := func(k, v string) {
			if v != "" {
				parts = append(parts, k+" "+v)
			}
		}
		add("event", e.Event)
		add("action", e.Action)
		add("value", e.Value)
		add("site", e.Site)
		add("ip", e.IP)
		add("user agent", quoteIf(e.UserAgent))
		add("link", e.Link)
		add("source event", e.Source)
		if e.UUID != "" && e.UUID != doc.Customer {
			add("uuid", e.UUID)
		}
		fmt.Fprintf(w, " %s\n", strings.Join(parts, ", "))
	}
}

func quoteIf(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
