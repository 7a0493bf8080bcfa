package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Targets, from the issue that asked for this harness.
const (
	targetInProc      = 200_000 // events/s/core, at least
	targetVisits      = 0.7     // × nats bench consume, at least
	targetForms       = 5_000   // events/s with fsync on, at least
	targetHot         = 0.8     // × forms, at least
	targetP99         = 10.0    // ms at the first latency rate, at most
	targetRSSMB       = 200.0   // MB with a million profiles, at most
	targetLatencyRate = 1000    // the latency rate the p99 target is for
)

// report builds RESULTS.md.
type report struct {
	b       strings.Builder
	o       *options
	res     *Results
	missed  []string
	summary [][]string
}

func writeResults(o *options, res *Results) error {
	res.Machine.LoadEnd = loadavg()
	r := &report{o: o, res: res}
	body := r.body()
	var out strings.Builder
	r.header(&out)
	out.WriteString(body)
	return os.WriteFile(o.out, []byte(out.String()), 0o644)
}

func (r *report) f(format string, args ...any) { fmt.Fprintf(&r.b, format, args...) }

// command is the benchrun command line that measures figure alone.
func (r *report) command(figure string) string {
	c := "bench/bin/benchrun -only " + figure
	if r.res.Quick {
		c += " -quick"
	}
	return "`" + c + "`"
}

// row adds a line to the summary and, for a missed target, to the list
// of targets missed.
func (r *report) row(figure, measure, herald, baseline, ratio, target string, met verdict, cmd string) {
	shown := string(met)
	if met == missed {
		shown = "**missed**"
	}
	r.summary = append(r.summary, []string{figure, measure, herald, baseline, ratio, target, shown, cmd})
	if met == missed {
		m := fmt.Sprintf("%s, %s: Herald %s", figure, measure, herald)
		if baseline != "—" {
			m += fmt.Sprintf(", baseline %s, ratio %s", baseline, ratio)
		}
		r.missed = append(r.missed, m+"; target "+target)
	}
}

type verdict string

const (
	met         verdict = "met"
	missed      verdict = "missed"
	notMeasured verdict = "not measured"
	noTarget    verdict = "—"
)

func atLeast(v, t float64) verdict {
	switch {
	case math.IsNaN(v):
		return notMeasured
	case v >= t:
		return met
	}
	return missed
}

func atMost(v, t float64) verdict {
	switch {
	case math.IsNaN(v):
		return notMeasured
	case v <= t:
		return met
	}
	return missed
}

func (r *report) header(out *strings.Builder) {
	res, m := r.res, r.res.Machine
	fmt.Fprintf(out, "# Herald benchmark results\n\n")
	fmt.Fprintf(out, "Written by `make bench` (bench/cmd/benchrun) on %s; the run took %s. "+
		"[README.md](README.md) explains what each figure measures and how to run it.\n\n",
		m.Date.Format("2006-01-02 15:04 MST"), res.Took.Round(time.Second))
	if res.Quick {
		fmt.Fprintf(out, "> **Quick run** (`make bench BENCH_FLAGS=-quick`): small counts, to try the harness. "+
			"Its figures are not the ones the targets are about; `make bench` measures those.\n\n")
	}
	fmt.Fprintf(out, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(out, "| date | %s |\n", m.Date.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(out, "| CPUs (`nproc`) | %d |\n", m.CPUs)
	fmt.Fprintf(out, "| CPU model | %s |\n", orUnknown(m.CPU))
	fmt.Fprintf(out, "| memory | %.1f GiB |\n", m.MemoryGB)
	fmt.Fprintf(out, "| kernel | Linux %s |\n", orUnknown(m.Kernel))
	fmt.Fprintf(out, "| Go | %s |\n", orUnknown(m.Go))
	fmt.Fprintf(out, "| Herald | %s, commit %s |\n", orUnknown(m.Herald), orUnknown(m.Commit))
	fmt.Fprintf(out, "| baseline tool | %s (`nats bench`) |\n", orUnknown(m.NATS))
	fmt.Fprintf(out, "| load average (1, 5, 15 min) | %s at the start, %s at the end |\n", m.LoadStart, m.LoadEnd)
	var took []string
	for _, f := range figures {
		if d, ok := res.FigureTook[f]; ok {
			took = append(took, fmt.Sprintf("%s %s", f, roundDur(d)))
		}
	}
	fmt.Fprintf(out, "| time per figure | %s |\n\n", strings.Join(took, ", "))
	fmt.Fprintf(out, "The machine may be shared with other work, so every end-to-end figure is measured %s, "+
		"runs of Herald and of its baseline taking turns; the tables show each run, the minimum and the median, "+
		"and targets are judged on the median.\n\n", times(res.Runs))
	fmt.Fprintf(out, "## Summary\n\n")
	fmt.Fprintf(out, "| figure | measure | Herald (median) | baseline, same run (median) | Herald / baseline | target | met? | command |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.summary {
		fmt.Fprintf(out, "| %s |\n", strings.Join(row, " | "))
	}
	out.WriteString("\n")
	if len(r.missed) > 0 {
		fmt.Fprintf(out, "**Targets missed:** %d of %d; see [What limits it](#what-limits-it).\n\n", len(r.missed), r.targets())
	} else if r.targets() > 0 {
		fmt.Fprintf(out, "Every target measured was met.\n\n")
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(out, "**Figures that failed to run:**\n\n")
		for _, f := range res.Failures {
			fmt.Fprintf(out, "- %s\n", firstLine(f))
		}
		out.WriteString("\n")
	}
}

func (r *report) targets() int {
	n := 0
	for _, row := range r.summary {
		if v := row[6]; v == string(met) || v == "**missed**" {
			n++
		}
	}
	return n
}

func (r *report) body() string {
	r.inProcess()
	r.endToEnd()
	r.memory()
	r.scaleOut()
	r.limits()
	if len(r.res.Failures) > 0 {
		r.f("## Failures\n\n")
		for _, f := range r.res.Failures {
			r.f("```\n%s\n```\n\n", strings.TrimSpace(f))
		}
	}
	return r.b.String()
}

func (r *report) inProcess() {
	res := r.res
	if len(res.InProc) == 0 {
		return
	}
	r.f("## 1. In-process pipeline\n\n")
	r.f("One goroutine on one core (`-cpu 1`) decodes a ~300-byte `form.submit` event (`event.Decode`) and evaluates the rules for it "+
		"(`engine.Evaluate`, against a new customer's empty profile); nothing is stored. The rules are spread over %d actions, "+
		"%d of them trigger on `form.submit` and fire, each with a match, a condition and three profile changes "+
		"(two attributes and a tag): the shape of engine's BenchmarkDecodeEvaluate. Herald also runs its built-in form step. "+
		"The peers get the same event, decoded by the same `event.Decode`, and the same rules: "+
		"[grule-rule-engine](https://github.com/hyperjumptech/grule-rule-engine) v1.20.4 with the rules in GRL "+
		"(trigger, match and condition in `when`; the three changes and a `Retract` in `then`, so each rule fires once), "+
		"and a naive loop that runs every rule's compiled [expr](https://expr-lang.org) condition for every event, "+
		"then the value expressions of those that hold. The code is in [peers/](peers/).\n\n", 100, 10)
	r.f("Command: `%s`\n\n", res.InProcCommand)
	r.f("| rules | pipeline | %s | min | median | target |\n|---|---|%s---|---|---|\n", runHeads(r.inProcRuns()), strings.Repeat("---|", r.inProcRuns()))
	for _, row := range res.InProc {
		for _, p := range []struct {
			name string
			s    Samples
		}{{"Herald", row.Herald}, {"naive expr loop", row.Naive}, {"grule", row.Grule}} {
			if len(p.s) == 0 {
				continue
			}
			target := ""
			if p.name == "Herald" {
				target = fmt.Sprintf("≥ %s events/s/core: %s", num(targetInProc), atLeast(p.s.Median(), targetInProc))
			}
			r.f("| %s | %s | %s | %s | %s | %s |\n", num(float64(row.Rules)), p.name, cells(p.s, r.inProcRuns(), num), num(p.s.Min()), num(p.s.Median()), target)
		}
		r.row("1", fmt.Sprintf("in-process, %s rules (events/s/core)", num(float64(row.Rules))), num(row.Herald.Median()),
			fmt.Sprintf("naive %s; grule %s", num(row.Naive.Median()), num(row.Grule.Median())),
			fmt.Sprintf("%s naive; %s grule", ratio(row.Herald.Median(), row.Naive.Median()), ratio(row.Herald.Median(), row.Grule.Median())),
			"≥ "+num(targetInProc), atLeast(row.Herald.Median(), targetInProc), r.command("inproc"))
	}
	r.f("\nAll figures are events/s on one core.")
	if res.Quick {
		var sizes []string
		for f := range strings.SplitSeq(res.Scale.PeerRules, ",") {
			n, _ := strconv.ParseFloat(f, 64)
			sizes = append(sizes, num(n))
		}
		r.f(" A quick run measures %s rules only.", strings.Join(sizes, " and "))
	}
	r.f("\n\n")
}

func (r *report) inProcRuns() int {
	n := 0
	for _, row := range r.res.InProc {
		n = max(n, len(row.Herald), len(row.Naive), len(row.Grule))
	}
	return n
}

func (r *report) endToEnd() {
	res, sc := r.res, r.res.Scale
	if len(res.Visits.Rate)+len(res.Forms.Rate)+len(res.Hot.Rate)+len(res.Latency) == 0 {
		return
	}
	r.f("## 2. herald serve end to end, and 3. the raw baseline\n\n")
	r.f("Each run starts from a new data directory with the built `herald serve` (%s) and a configuration with the shipped defaults: "+
		"embedded NATS server with JetStream on disk and **fsync on every write**, 4 workers, the `.eml` outbox, "+
		"the rules of examples/newsletter-double-opt-in; only the data directory and the ports are the run's own:\n\n", "`"+rel(r.o.root, r.o.herald)+"`")
	r.f("```yaml\n%s```\n\n", fmt.Sprintf(serveConfig, "bench/.work/NN-name/data", "examples/newsletter-double-opt-in", "127.0.0.1:PORT", "127.0.0.1:PORT"))
	r.f("The throughput figures measure **consumption alone**. benchrun first preloads the events: it starts the embedded NATS server "+
		"on the data directory as herald serve does (`natsbus.StartEmbedded`, fsync off while loading), sets up the streams and "+
		"herald's consumer as herald serve does (`natsbus.Setup`), pauses the consumer, publishes the events with asynchronous "+
		"JetStream publishes and stops the server. Then it starts `herald serve --config herald.yaml` on that data directory, waits "+
		"until `/readyz` answers 200, and resumes the consumer. The clock starts at the consumer's first delivery (polled every millisecond: "+
		"a pull request herald serve made while the consumer was paused may wait out its expiry first, which a herald serve starting on a "+
		"backlog does not). It stops when no event is left pending or "+
		"awaiting its ack (consumer info, polled every 5 ms) and, for form submissions, when the last email is visible in the outbox "+
		"(inotify on the outbox folder). Rate = events / that time. A run is cut short after %s and then reports the rate it reached. "+
		"\"CPU\" is the user and system time herald serve used over the same time, in cores (of %d).\n\n", sc.Cap, res.Machine.CPUs)
	r.f("The raw baseline is the NATS project's own benchmark, natscli's `nats bench` (v0.5.0), against an embedded NATS server started " +
		"exactly as herald serve starts its own (`benchrun nats-server`: `natsbus.StartEmbedded`, store on disk, fsync on every write), " +
		"in a process of its own as herald serve is. Its runs take turns with Herald's.\n\n")

	if len(res.Visits.Rate) > 0 {
		t := res.Visits
		r.f("### 2a. Page visits no rule wants, %s preloaded\n\n", num(float64(t.Events)))
		r.f("Each event is a `page.visit` of a distinct customer; no rule of the double opt-in example triggers on it, so Herald has nothing to do but read it and ack it. " +
			"The baseline, `nats bench js consume`, pulls the same number of messages of the same size (a `page.visit` event) with an explicit ack each, " +
			"from a stream filled beforehand with fsync off and served with fsync on.\n\n")
		r.throughputTable(t, "herald serve, events/s", "nats bench js consume, msgs/s", res.RawConsume)
		rt := perRunRatio(t.Rate, res.RawConsume)
		r.f("Target: Herald ≥ %.1f× nats bench consuming: median ratio %s, **%s**.\n\n", targetVisits, ratio(rt.Median(), 1), atLeast(rt.Median(), targetVisits))
		r.f("Commands: `herald serve --config herald.yaml` on the preloaded data directory; baseline:\n\n```sh\n%s\n```\n\n", rawConsumeCommand(t.Events))
		r.notes(t.Notes)
		r.row("2a", "visits consumed, no rule (events/s)", num(t.Rate.Median()), num(res.RawConsume.Median())+" (nats bench consume)",
			ratio(rt.Median(), 1), fmt.Sprintf("≥ %.1f× raw", targetVisits), atLeast(rt.Median(), targetVisits), r.command("visits"))
	}
	if len(res.Forms.Rate) > 0 {
		t := res.Forms
		r.f("### 2b. Double opt-in form submissions, %s distinct customers\n\n", num(float64(t.Events)))
		r.f("Each event is a newsletter `form.submit` with `newsletter_agreement_enabled: enabled` of a new customer: Herald runs the built-in form step, "+
			"the `doi-request` rule fires, the new customer's profile is stored and the confirmation request, with its signed link, "+
			"is rendered and written to the outbox as an `.eml` file, and the request's reminder and expiry are scheduled as two timers "+
			"(JetStream scheduled messages); each of the three effects is marked performed in HERALD_EFFECTS. Measured until all %s emails are in the outbox. "+
			"The baseline column is `nats bench js pub async` publishing %s form events to a stream with fsync on: the rate of durable writes "+
			"the same server settings allow one client; each form submission needs at least one.\n\n", num(float64(t.Events)), num(float64(sc.RawPublish)))
		r.throughputTable(t, "herald serve, events/s", "nats bench js pub, msgs/s", res.RawPublish)
		r.f("Target: ≥ %s events/s durable (fsync on): median %s, **%s**.\n\n", num(targetForms), num(t.Rate.Median()), atLeast(t.Rate.Median(), targetForms))
		r.f("Commands: `herald serve --config herald.yaml` on the preloaded data directory; baseline:\n\n```sh\n%s\n```\n\n", rawPublishCommand(sc.RawPublish))
		r.notes(t.Notes)
		r.row("2b", "double opt-in forms, distinct customers, until every email is out (events/s)", num(t.Rate.Median()),
			num(res.RawPublish.Median())+" (nats bench pub, fsync on)", ratio(perRunRatio(t.Rate, res.RawPublish).Median(), 1),
			"≥ "+num(targetForms)+"/s", atLeast(t.Rate.Median(), targetForms), r.command("forms"))
	}
	if len(res.Hot.Rate) > 0 {
		t := res.Hot
		r.f("### 2c. The same, one hot customer\n\n")
		r.f("%s double opt-in form submissions, all of one customer with one address; the request is sent again for each (the customer is still waiting), "+
			"so each ends in an email. Events of one customer are handled one at a time, in order. Compared with 2b's median.\n\n", num(float64(t.Events)))
		r.throughputTable(t, "herald serve, events/s", "", nil)
		rt := ratio(t.Rate.Median(), res.Forms.Rate.Median())
		v := atLeast(t.Rate.Median()/res.Forms.Rate.Median(), targetHot)
		r.f("Target: ≥ %.1f× distinct customers (2b): %s, **%s**.\n\n", targetHot, rt, v)
		r.notes(t.Notes)
		r.row("2c", "the same, one hot customer (events/s)", num(t.Rate.Median()), num(res.Forms.Rate.Median())+" (2b)",
			rt, fmt.Sprintf("≥ %.1f× 2b", targetHot), v, r.command("hot"))
	}
	if len(res.Latency) > 0 {
		r.latency()
	}
}

func (r *report) throughputTable(t Throughput, herald, base string, baseline Samples) {
	n := max(len(t.Rate), len(baseline))
	r.f("| | %s | min | median |\n|---|%s---|---|\n", runHeads(n), strings.Repeat("---|", n))
	r.f("| %s | %s | %s | %s |\n", herald, cells(t.Rate, n, num), num(t.Rate.Min()), num(t.Rate.Median()))
	r.f("| CPU used by herald serve, cores | %s | %s | %s |\n", cells(t.Cores, n, dec2), dec2(t.Cores.Min()), dec2(t.Cores.Median()))
	if base != "" {
		r.f("| %s | %s | %s | %s |\n", base, cells(baseline, n, num), num(baseline.Min()), num(baseline.Median()))
		rt := perRunRatio(t.Rate, baseline)
		r.f("| Herald / baseline | %s | %s | %s |\n", cells(rt, n, func(v float64) string { return ratio(v, 1) }), ratio(rt.Min(), 1), ratio(rt.Median(), 1))
	}
	r.f("\n")
}

func (r *report) latency() {
	res, sc := r.res, r.res.Scale
	r.f("### 2d. Latency at a fixed offered load\n\n")
	r.f("herald serve starts on a new data directory and, once ready and idle for a second, gets double opt-in form submissions of new customers "+
		"at a fixed rate, published with asynchronous JetStream publishes as an app would, open loop (event *i* is due at start + *i*/rate "+
		"whether or not earlier ones are done). An event's latency runs from the moment it was due to the moment its email is visible in the "+
		"outbox (inotify). Each run sends %s of events first that are not counted, then %s measured. An email not there %s after the last event "+
		"counts as missing, with that wait as its latency.\n\n", sc.WarmUp, sc.LatencyFor, latencyGrace)
	n := 0
	for _, l := range res.Latency {
		n = max(n, len(l.P99), len(l.Missing))
	}
	r.f("| offered load | | %s | min | median |\n|---|---|%s---|---|\n", runHeads(n), strings.Repeat("---|", n))
	for _, l := range res.Latency {
		load := fmt.Sprintf("%s/s (%s events a run)", num(float64(l.Rate)), num(float64(l.Events)))
		r.f("| %s | p50, ms | %s | %s | %s |\n", load, cells(l.P50, n, millis), millis(l.P50.Min()), millis(l.P50.Median()))
		r.f("| | p99, ms | %s | %s | %s |\n", cells(l.P99, n, millis), millis(l.P99.Min()), millis(l.P99.Median()))
		r.f("| | max, ms | %s | %s | %s |\n", cells(l.Max, n, millis), millis(l.Max.Min()), millis(l.Max.Median()))
		miss := make(Samples, len(l.Missing))
		for i, m := range l.Missing {
			miss[i] = float64(m)
		}
		r.f("| | emails missing | %s | | |\n", cells(miss, n, num))
	}
	r.f("\n")
	for _, l := range res.Latency {
		if l.Rate == targetLatencyRate {
			v := atMost(l.P99.Median(), targetP99)
			r.f("Target: p99 ≤ %.0f ms at %s events/s: median p99 %s ms, **%s**.\n\n", targetP99, num(targetLatencyRate), millis(l.P99.Median()), v)
			r.row("2d", fmt.Sprintf("latency publish → email in outbox at %s/s, p99 (ms)", num(float64(l.Rate))), millis(l.P99.Median()),
				"—", "—", fmt.Sprintf("≤ %.0f ms", targetP99), v, r.command("latency"))
		} else {
			r.row("2d", fmt.Sprintf("latency at %s/s, p50 / p99 / max (ms)", num(float64(l.Rate))),
				fmt.Sprintf("%s / %s / %s", millis(l.P50.Median()), millis(l.P99.Median()), millis(l.Max.Median())), "—", "—", "none", noTarget, r.command("latency"))
		}
	}
	r.f("Command: `herald serve --config herald.yaml` on a new data directory; the load comes from benchrun.\n\n")
}

func (r *report) memory() {
	res := r.res
	if len(res.IdleRSS) > 0 {
		r.row("5", "idle RSS of herald serve, new data directory (MB)", dec1(res.IdleRSS.Median()), "—", "—", "none", noTarget, r.command("latency"))
	}
	m := res.RSS
	if m == nil && len(res.IdleRSS) == 0 {
		return
	}
	r.f("## 5. Memory\n\n")
	r.f("Resident memory of the `herald serve` process (VmRSS and VmHWM from /proc/PID/status; MB = 10⁶ bytes). " +
		"It includes the embedded NATS server, which runs inside the process.\n\n")
	if len(res.IdleRSS) > 0 {
		n := len(res.IdleRSS)
		r.f("Idle: on a new data directory, one second after `/readyz` answered, before any event (read in each latency run at %s/s):\n\n", num(float64(res.Scale.LatencyRates[0])))
		r.f("| | %s | min | median |\n|---|%s---|---|\n| idle RSS, MB | %s | %s | %s |\n\n", runHeads(n), strings.Repeat("---|", n), cells(res.IdleRSS, n, dec1), dec1(res.IdleRSS.Min()), dec1(res.IdleRSS.Median()))
	}
	if m == nil {
		return
	}
	r.f("With %s profiles and %s events (one run: it takes minutes). What was done:\n\n", num(float64(m.Profiles)), num(float64(m.Events)))
	r.f("1. On a new data directory benchrun started the embedded NATS server as herald serve does, with **fsync off** " +
		"(loading is not measured), and set up JetStream as herald serve does (`natsbus.Setup`).\n")
	r.f("2. It wrote %s customer records into the profile bucket, each as the JSON Herald's profile store writes (`profile.Record`) under "+
		"the customer's key (`profile.KeyOf`), and each one's address into the email index (`profile.EmailKeyPrefix` + `profile.EmailHash`), "+
		"with asynchronous publishes to the bucket's subjects (%s writes one round trip at a time would take minutes), then read 50 of them back "+
		"through the profile store (`profile.KV.Get`, `Owner`). They are known customers (`p-N`, `pN@example.com`) with a name, a city, "+
		"a country, two attributes, the tags `contact` and `newsletter`, and one applied event id.\n", num(float64(m.Profiles)), num(float64(2*m.Profiles)))
	r.f("3. It paused herald's consumer and published %s `form.submit` events of a contact form (`form_type: contact`, no other field) "+
		"to the events stream, customer *i* mod %s each, and stopped the server. Loading took %s.\n", num(float64(m.Events)), num(float64(m.Profiles)), roundDur(m.LoadTook))
	r.f("4. It started `herald serve` with the default settings (**fsync on**) on that data directory, read its memory one second after it was ready " +
		"(\"at start\"), resumed the consumer and waited until every event was acked. For each event Herald reads the customer's profile " +
		"for the built-in form step and the rules on `form.submit`; nothing changes (the customer has the tag already and no rule fires), " +
		"so nothing is written. It read the memory again one second after the last ack (\"after\"; VmHWM is the peak).\n\n")
	r.f("| | value |\n|---|---|\n")
	r.f("| RSS at start, MB | %s |\n", mb(m.StartRSS))
	r.f("| RSS after the events, MB | %s |\n", mb(m.AfterRSS))
	r.f("| peak RSS (VmHWM), MB | %s |\n", mb(m.PeakRSS))
	r.f("| events consumed | %s of %s in %s (%s events/s) |\n", num(float64(m.Consumed)), num(float64(m.Events)), roundDur(m.RunTook), num(m.Rate))
	if m.SysMB > 0 {
		r.f("| Go heap in use after the events (`go_memstats_heap_inuse_bytes` at /metrics), MB | %s |\n", mb(m.HeapMB))
		r.f("| memory the Go runtime holds from the system (`go_memstats_sys_bytes`), MB | %s |\n", mb(m.SysMB))
	}
	r.f("| NATS store on disk, MB | %s |\n\n", mb(m.StoreMB))
	r.f("Herald and the embedded NATS server share the process, its Go heap and these figures.\n\n")
	v := atMost(m.AfterRSS, targetRSSMB)
	peak := atMost(m.PeakRSS, targetRSSMB)
	if m.Profiles < 1_000_000 {
		v, peak = noTarget, noTarget
	}
	if m.Profiles < 1_000_000 {
		r.f("Target: ≤ %.0f MB at 1,000,000 profiles; this run loaded %s, so it is not judged.\n\n", targetRSSMB, num(float64(m.Profiles)))
	} else {
		r.f("Target: ≤ %.0f MB at 1,000,000 profiles: after the events %s MB, **%s**; peak %s MB, **%s**.\n\n", targetRSSMB, mb(m.AfterRSS), v, mb(m.PeakRSS), peak)
	}
	r.notes(m.Notes)
	what := fmt.Sprintf("RSS after %s profiles and %s events (MB)", num(float64(m.Profiles)), num(float64(m.Consumed)))
	r.row("5", what, mb(m.AfterRSS), "—", "—", fmt.Sprintf("≤ %.0f MB", targetRSSMB), v, r.command("rss"))
	r.row("5", "peak RSS (VmHWM) of the same run (MB)", mb(m.PeakRSS), "—", "—", fmt.Sprintf("≤ %.0f MB", targetRSSMB), peak, r.command("rss"))
}

func (r *report) limits() {
	res := r.res
	r.f("## What limits it\n\n")
	if len(r.missed) == 0 {
		r.f("No target measured was missed.")
	} else {
		r.f("Targets missed in this run:\n\n")
		for _, m := range r.missed {
			r.f("- %s\n", m)
		}
	}
	r.f("\n\nWhat benchrun gathers by itself to explain the figures:\n\n")
	if c := res.Forms.Cores; len(c) > 0 {
		r.f("- During the form runs (2b) herald serve used %s of %d cores (median): ", dec2(c.Median()), res.Machine.CPUs)
		if c.Median() < 0.5*float64(res.Machine.CPUs) {
			r.f("much of the time it was not running but waiting (on disk syncs, on NATS round trips, on the other work).\n")
		} else {
			r.f("it was mostly running.\n")
		}
	}
	if len(res.RawPublish) > 0 {
		r.f("- One client publishing asynchronously to a stream with fsync on every write reached %s msgs/s on this machine "+
			"(`nats bench js pub`, median): how fast these server settings make messages durable when each is a write of its own.\n", num(res.RawPublish.Median()))
	}
	if c := res.Visits.Cores; len(c) > 0 {
		r.f("- During the visit runs (2a) herald serve used %s cores (median).\n", dec2(c.Median()))
	}
	if res.FormProfile.Top != "" {
		r.f("- herald serve does not serve `/debug/pprof`, so the process measured above cannot be profiled from outside. " +
			"Instead benchrun runs the same app (`app.New`, `Run`, `Shutdown`) under the CPU and block profilers (`benchrun serve -cpuprofile -blockprofile`) " +
			"through one more form run like 2b; the embedded NATS server, in the same process, is in the profile.\n")
	}
	r.f("\n")
	for _, p := range []struct {
		title string
		prof  Profile
	}{
		{"Form run: CPU of herald serve's app with its embedded NATS server", res.FormProfile},
		{"Form run: where Herald's goroutines wait (block profile)", res.BlockProfile},
		{"In-process pipeline (figure 1): CPU", res.InProcProfile},
	} {
		if p.prof.Top == "" {
			continue
		}
		r.f("### %s\n\n```sh\n%s\n```\n\n```\n%s\n```\n\n", p.title, p.prof.Command, p.prof.Top)
	}
	if res.FormProfile.Top != "" || res.InProcProfile.Top != "" {
		r.f("The profiles are kept in bench/.work/profiles/ until the next run: `go tool pprof -http : bench/.work/profiles/forms.cpu`.\n\n")
	}
}

func (r *report) notes(notes []string) {
	if len(notes) == 0 {
		return
	}
	r.f("Notes:\n\n")
	for _, n := range notes {
		r.f("- %s\n", n)
	}
	r.f("\n")
}

// roundDur rounds d to a tenth of a second below 10s, to seconds above.
func roundDur(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func runHeads(n int) string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("run %d", i+1)
	}
	return strings.Join(h, " | ")
}

// cells formats n samples as table cells, blank where a run is missing.
func cells(s Samples, n int, format func(float64) string) string {
	c := make([]string, n)
	for i := range c {
		if i < len(s) {
			c[i] = format(s[i])
		}
	}
	return strings.Join(c, " | ")
}

func perRunRatio(a, b Samples) Samples {
	var out Samples
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// num formats v rounded, with thousands separators.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// millis formats milliseconds: one decimal below 100, whole above.
func millis(v float64) string {
	if v >= 100 {
		return num(v)
	}
	return dec1(v)
}

// mb formats megabytes as millis does milliseconds.
func mb(v float64) string { return millis(v) }

func dec1(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.1f", v)
}

func dec2(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
