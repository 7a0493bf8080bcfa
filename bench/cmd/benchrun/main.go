// Command benchrun measures Herald and writes bench/RESULTS.md: the
// in-process pipeline next to two peers on the same rules, herald serve
// end to end on JetStream next to the NATS project's own `nats bench` on
// the same server settings, latency at a fixed offered load, memory with
// a million profiles, and engines scaled out on a three-server cluster
// (events/s with 1, 2 and 3 engines, failover after a kill). `make bench` builds herald and natscli and runs
// it; bench/README.md says what each figure measures and how to read it.
//
// Usage:
//
//	benchrun [-quick] [-only LIST] [-runs N] [-herald bin/herald] [-nats bench/bin/nats]
//
// benchrun also has two modes it starts itself in a child process:
// `benchrun nats-server` (an embedded NATS server as herald serve starts
// it, for the raw baseline) and `benchrun serve` (herald serve's app under
// the CPU and block profilers, for "What limits it").
//
// It exits 1 when a figure could not be measured (RESULTS.md says why),
// and 0 otherwise, targets met or not.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// figures lists what -only may name, in the order they run.
var figures = []string{"inproc", "visits", "forms", "hot", "latency", "rss", "profile", "scaleout"}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("benchrun: ")
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "nats-server":
			os.Exit(natsServerMain(os.Args[2:]))
		case "serve":
			os.Exit(serveMain(os.Args[2:]))
		}
	}
	os.Exit(run())
}

// options are benchrun's flags.
type options struct {
	quick bool
	// profiles and rssEvents override the scale's, when set.
	profiles, rssEvents int
	only                []string
	runs                int
	root                string // the repository
	herald              string // the herald binary
	nats                string // the natscli binary
	work                string // scratch data, bench/.work
	out                 string // RESULTS.md
	self                string // this binary, for its child modes
}

func (o *options) wants(figure string) bool { return slices.Contains(o.only, figure) }

func run() int {
	var o options
	only := flag.String("only", strings.Join(figures, ","), "comma-separated `figures` to measure: "+strings.Join(figures, ", "))
	flag.BoolVar(&o.quick, "quick", false, "small counts, for trying the harness: a run takes about 2 minutes instead of 10")
	flag.IntVar(&o.profiles, "profiles", 0, "profiles to load for rss (default: 1,000,000; 5,000 with -quick)")
	flag.IntVar(&o.rssEvents, "rss-events", 0, "events for rss (default: 1,000,000; 5,000 with -quick)")
	flag.IntVar(&o.runs, "runs", 3, "runs of each end-to-end figure, reported side by side")
	flag.StringVar(&o.root, "root", ".", "the Herald repository")
	flag.StringVar(&o.herald, "herald", "bin/herald", "the herald `binary` to measure")
	flag.StringVar(&o.nats, "nats", "bench/bin/nats", "the natscli `binary` (v0.5.0) for the raw baseline")
	flag.StringVar(&o.work, "work", "bench/.work", "scratch `dir` for data directories")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "results `file`")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Printf("unexpected argument %q", flag.Arg(0))
		return 2
	}
	for f := range strings.SplitSeq(*only, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(figures, f) {
			log.Printf("-only: unknown figure %q; known: %s", f, strings.Join(figures, ", "))
			return 2
		}
		o.only = append(o.only, f)
	}
	if o.runs < 1 {
		log.Printf("-runs %d: want 1 or more", o.runs)
		return 2
	}
	var err error
	if o.root, err = filepath.Abs(o.root); err != nil {
		log.Print(err)
		return 2
	}
	if _, err := os.Stat(filepath.Join(o.root, "go.mod")); err != nil {
		log.Printf("-root %s: not the Herald repository: %v", o.root, err)
		return 2
	}
	for _, p := range []*string{&o.herald, &o.nats, &o.work, &o.out} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(o.root, *p)
		}
	}
	if o.self, err = os.Executable(); err != nil {
		log.Print(err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := measure(ctx, &o)
	if err != nil {
		log.Print(err)
	}
	if res != nil {
		res.Took = time.Since(start)
		if werr := writeResults(&o, res); werr != nil {
			log.Print(werr)
			return 1
		}
		log.Printf("wrote %s in %s", o.out, res.Took.Round(time.Second))
	}
	if err != nil || res == nil || len(res.Failures) > 0 {
		return 1
	}
	return 0
}

// measure runs the figures o asks for. What was measured before an error
// is returned with it.
func measure(ctx context.Context, o *options) (*Results, error) {
	sc := fullScale
	if o.quick {
		sc = quickScale
	}
	if o.profiles > 0 {
		sc.Profiles = o.profiles
	}
	if o.rssEvents > 0 {
		sc.RSSEvents = o.rssEvents
	}
	res := &Results{Scale: sc, Quick: o.quick, Runs: o.runs, Machine: machine(ctx, o), FigureTook: map[string]time.Duration{}}
	w, err := newWorkspace(o.work)
	if err != nil {
		return nil, err
	}
	defer w.close()
	h := &harness{o: o, sc: sc, w: w}
	if o.wants("inproc") || o.wants("profile") {
		// The in-process figure and its profile need the peers module.
		if err := h.checkPeers(ctx); err != nil {
			res.Failures = append(res.Failures, "inproc: "+err.Error())
			log.Print(err)
			h.noPeers = true
		}
	}
	steps := []struct {
		figure string
		do     func(context.Context, *Results) error
	}{
		{"inproc", h.inProcess},
		{"visits", h.visits},
		{"forms", h.forms},
		{"hot", h.hot},
		{"latency", h.latency},
		{"rss", h.rss},
		{"profile", h.profile},
		{"scaleout", h.scaleOut},
	}
	for _, s := range steps {
		if !o.wants(s.figure) || s.figure == "inproc" && h.noPeers {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		log.Printf("measuring %s", s.figure)
		t := time.Now()
		if err := s.do(ctx, res); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s: %v", s.figure, err))
			log.Printf("%s: %v", s.figure, err)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		}
		res.FigureTook[s.figure] = time.Since(t)
		log.Printf("%s took %s", s.figure, time.Since(t).Round(time.Second))
	}
	return res, nil
}
