package peers

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sizes are the rule set sizes measured; PEERS_RULES (comma separated)
// picks others.
func sizes(tb testing.TB) []int {
	spec := os.Getenv("PEERS_RULES")
	if spec == "" {
		return []int{10, 1000, 10000}
	}
	var out []int
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < Matching {
			tb.Fatalf("PEERS_RULES: %q: want rule counts of at least %d", f, Matching)
		}
		out = append(out, n)
	}
	return out
}

// pipelines are the pipelines measured; PEERS_PIPELINES (comma separated)
// picks some.
func pipelines() []string {
	if spec := os.Getenv("PEERS_PIPELINES"); spec != "" {
		return strings.Split(spec, ",")
	}
	return []string{"herald", "naive", "grule"}
}

func TestPipelinesAgree(t *testing.T) {
	for _, name := range []string{"herald", "naive", "grule"} {
		for _, n := range []int{10, 100} {
			t.Run(fmt.Sprintf("%s/rules=%d", name, n), func(t *testing.T) {
				p, err := New(name, n)
				if err != nil {
					t.Fatal(err)
				}
				for range 3 { // state left by one event must not change the next
					fired, err := p.Handle(Event)
					if err != nil {
						t.Fatal(err)
					}
					if fired != Matching {
						t.Fatalf("fired %d rules, want %d", fired, Matching)
					}
				}
			})
		}
	}
}

func TestChanges(t *testing.T) {
	n, err := NewNaive(20)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGrule(20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Handle(Event); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Handle(Event); err != nil {
		t.Fatal(err)
	}
	if len(n.changes) != 3*Matching || len(g.out.Changes) != 3*Matching {
		t.Fatalf("naive made %d changes, grule %d, want %d each", len(n.changes), len(g.out.Changes), 3*Matching)
	}
}

// loaded keeps the pipelines BenchmarkPipeline built, so that -count
// loads 10,000 rules once, not once a run.
var loaded = map[string]Pipeline{}

func load(tb testing.TB, name string, n int) Pipeline {
	key := fmt.Sprintf("%s/%d", name, n)
	if p, ok := loaded[key]; ok {
		return p
	}
	p, err := New(name, n)
	if err != nil {
		tb.Fatal(err)
	}
	loaded[key] = p
	return p
}

// BenchmarkPipeline measures decoding Event and evaluating the rules for
// it, one event per op, in each pipeline with each rule set size. Run it
// with -cpu 1: events/s is then per core.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range sizes(b) {
		for _, name := range pipelines() {
			p := load(b, name, n)
			b.Run(fmt.Sprintf("rules=%d/%s", n, name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(Event)))
				for b.Loop() {
					fired, err := p.Handle(Event)
					if err != nil {
						b.Fatal(err)
					}
					if fired != Matching {
						b.Fatalf("fired %d rules, want %d", fired, Matching)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// TestProfile writes a CPU profile of the first of PEERS_PIPELINES with
// the last of PEERS_RULES handling events for PEERS_PROFILE_FOR (default
// 3s) to the file PEERS_CPUPROFILE. Loading the rules is left out of the
// profile. Without PEERS_CPUPROFILE it is skipped.
func TestProfile(t *testing.T) {
	path := os.Getenv("PEERS_CPUPROFILE")
	if path == "" {
		t.Skip("PEERS_CPUPROFILE not set")
	}
	d := 3 * time.Second
	if s := os.Getenv("PEERS_PROFILE_FOR"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("PEERS_PROFILE_FOR: %v", err)
		}
	}
	all := sizes(t)
	p, err := New(pipelines()[0], all[len(all)-1])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
		if _, err := p.Handle(Event); err != nil {
			t.Fatal(err)
		}
	}
	pprof.StopCPUProfile()
	t.Logf("%d events in %s", n, d)
}
