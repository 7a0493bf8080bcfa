package main

import (
	"fmt"
	"github.com/nats-io/nats-server/v2/server"
	"slices"
	"strings"
	"time"
)

// scaleOut writes the scale-out section.
func (r *report) scaleOut() {
	so := r.res.ScaleOut
	if so == nil {
		return
	}
	r.f("## Scale-out\n\n")
	r.f("Several `herald serve` engines (`%s`) share a partitioned events stream on a three-server NATS cluster: "+
		"`nats.partitions: %d`, `nats.replicas: %d`, the shipped defaults otherwise (4 workers per engine, the `.eml` outbox, "+
		"the rules of examples/newsletter-double-opt-in, each effect marked performed in HERALD_EFFECTS). "+
		"The three nats-servers (%s) run **inside benchrun's process**, each with its own store and routes to the others, "+
		"with their default sync (every two minutes; the three replicas are what keeps a write); each engine is a process of its own. "+
		"**Everything runs on this one machine of %d cores, shared with other work**: the three servers and the engines compete for the same cores, "+
		"so more engines cannot make it faster in proportion here, and the figures are ranges, not a capacity plan.\n\n",
		rel(r.o.root, r.o.herald), scalePartitions, scaleReplicas, natsServerVersion(), r.res.Machine.CPUs)
	r.f("**Events/s.** Each run starts the engines, waits until they hold every partition and the router between them, "+
		"then publishes %s double opt-in forms of new customers on their customers' subjects (asynchronous publishes, "+
		"several thousand a second, overlapping the consumption) and times from the first publish until every partition consumer "+
		"has no event pending or unacknowledged; each form sends an email. "+
		"The raw baseline, measured on the same cluster just before each run: 4 clients each publishing 300-byte messages to an R3 stream and "+
		"waiting for each ack (`rawWrites` in bench/cmd/benchrun/scaleout.go), in writes/s. "+
		"An event here takes several such writes: the profile (compare-and-set), the email index, two timers (the reminder and the expiry), a mark for each of the three effects, the ack, besides the `.eml` file.\n\n",
		num(float64(so.Events)))
	n := 0
	for _, row := range so.Engines {
		n = max(n, len(row.Rate))
	}
	r.f("| engines | events/s, %s | min | median | raw R3 writes/s, same runs | CPU of the engines / of the servers (cores, median) |\n|---|%s---|---|---|---|\n", runHeads(n), strings.Repeat("---|", n))
	for _, row := range so.Engines {
		r.f("| %d | %s | %s | %s | %s | %s / %s |\n", row.Engines, cells(row.Rate, n, num), num(row.Rate.Min()), num(row.Rate.Median()),
			joinSamples(row.Raw), dec2(row.Cores.Median()), dec2(row.Servers.Median()))
	}
	r.f("\nThe engines' CPU is what the herald serve processes used over the run; the servers' is benchrun's own process, "+
		"which runs the three servers (and the publishing and polling, a small part). Together they show how much of the %d cores the run had; "+
		"what they did not use went to other work on the machine, or to waiting (disk syncs of the `.eml` files and the servers' stores, round trips).\n\n", r.res.Machine.CPUs)
	if len(so.Failover) > 0 {
		r.f("**Failover.** Three engines run while %d forms a second trickle in; one engine at a time is killed with SIGKILL (no clean leave: "+
			"its connection, pins and key in HERALD_ENGINES go as in a crash). At the kill, a form of a new customer is published on each partition. "+
			"*Partitions consumed again* is the time from the kill until every one of those forms has its email in an engine's outbox: "+
			"the killed engine's partitions are taken over and their new events handled. "+
			"*Every event acknowledged* is the time until every partition's consumer has acknowledged everything published up to the kill, "+
			"including the events the killed engine held: those are delivered again after their ack wait, and a customer whose record lists "+
			"effects under the killed engine's lease waits until that lease runs out (a minute). "+
			"A new engine replaces the one killed, and the next kill waits until the partitions are shared again. "+
			"Timings are serve's defaults: engine key TTL 6 s, ack wait 10 s, pinned TTL 5 s, outbox lease 1 minute.\n\n", scaleTrickle)
		r.f("| kill | partitions consumed again after | partitions that waited over a second | every event acknowledged after |\n|---|---|---|---|\n")
		for i, f := range so.Failover {
			floor := "—"
			if i < len(so.Floor) {
				floor = so.Floor[i].Round(100 * time.Millisecond).String()
			}
			r.f("| %d | %s | %d | %s |\n", i+1, f.Round(100*time.Millisecond), so.Moved[i], floor)
		}
		r.f("\nRange: partitions consumed again %s; every event acknowledged %s; over %d kills.\n\n", durRange(so.Failover), durRange(so.Floor), len(so.Failover))
	}
	r.notes(so.Notes)
}

// joinSamples writes samples as "a / b / c".
func joinSamples(s Samples) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " / "
		}
		out += num(v)
	}
	if out == "" {
		return "—"
	}
	return out
}

// natsServerVersion names the nats-server module benchrun is built with.
func natsServerVersion() string {
	return "nats-server " + server.VERSION
}

// durRange writes the smallest and largest of ds, "—" for none.
func durRange(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s to %s", slices.Min(ds).Round(100*time.Millisecond), slices.Max(ds).Round(100*time.Millisecond))
}
