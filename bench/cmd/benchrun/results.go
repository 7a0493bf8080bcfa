package main

import (
	"math"
	"slices"
	"time"
)

// scale is how much work each figure does.
type scale struct {
	Visits     int // page.visit events preloaded for "visits"
	Forms      int // form.submit events preloaded for "forms" and "hot"
	RawPublish int // messages nats bench publishes with fsync on
	// LatencyRates are the offered loads, events/s; the first is the one
	// with a target. Each runs WarmUp, then LatencyFor measured.
	LatencyRates       []int
	LatencyFor, WarmUp time.Duration
	Profiles           int // profiles bulk-loaded for "rss"
	RSSEvents          int // events herald serve consumes for "rss"
	// PeerRules are the rule set sizes of the in-process figure;
	// BenchTime and BenchCount go to go test.
	PeerRules  string
	BenchTime  string
	BenchCount int
	// Cap bounds one consumption run, RSSCap the rss run's consumption;
	// a run cut short reports the rate it reached. They keep a whole run
	// near 10 minutes however slow Herald is.
	Cap, RSSCap time.Duration
	// The scale-out figure: ScaleEvents per run, ScaleRuns runs of each
	// number of engines, each cut short after ScaleCap, raw writes for
	// ScaleRawFor before each, and ScaleKills engines killed.
	ScaleEvents, ScaleRuns, ScaleKills int
	ScaleCap, ScaleRawFor              time.Duration
}

var fullScale = scale{
	Visits: 50_000, Forms: 10_000, RawPublish: 3_000,
	LatencyRates: []int{1000, 200}, LatencyFor: 10 * time.Second, WarmUp: time.Second,
	Profiles: 1_000_000, RSSEvents: 1_000_000,
	PeerRules: "10,1000,10000", BenchTime: "500ms", BenchCount: 3,
	Cap: 15 * time.Second, RSSCap: 90 * time.Second,
	ScaleEvents: 3_000, ScaleRuns: 2, ScaleKills: 4, ScaleCap: 40 * time.Second, ScaleRawFor: 3 * time.Second,
}

var quickScale = scale{
	Visits: 10_000, Forms: 300, RawPublish: 300,
	LatencyRates: []int{1000, 200}, LatencyFor: 2 * time.Second, WarmUp: 500 * time.Millisecond,
	Profiles: 5_000, RSSEvents: 5_000,
	PeerRules: "10,1000", BenchTime: "200ms", BenchCount: 1,
	Cap: 15 * time.Second, RSSCap: 30 * time.Second,
	ScaleEvents: 300, ScaleRuns: 1, ScaleKills: 2, ScaleCap: 30 * time.Second, ScaleRawFor: time.Second,
}

// Results is everything one benchrun measured.
type Results struct {
	Machine  Machine
	Scale    scale
	Quick    bool
	Runs     int
	Took     time.Duration
	Failures []string

	// InProc holds events/s per rule set size and pipeline.
	InProc        []InProcRow
	InProcCommand string
	InProcProfile Profile

	// RawPublish and RawConsume are nats bench's msgs/s, one per run.
	RawPublish, RawConsume Samples
	Visits, Forms, Hot     Throughput
	Latency                []Latency
	IdleRSS                Samples // MB, herald serve on a fresh data directory
	RSS                    *RSS
	FormProfile            Profile
	BlockProfile           Profile
	ScaleOut               *ScaleOut
	// FigureTook is how long each figure took.
	FigureTook map[string]time.Duration
}

// InProcRow is one rule set size of the in-process figure.
type InProcRow struct {
	Rules                int
	Herald, Naive, Grule Samples // events/s on one core
}

// Throughput is an end-to-end consumption figure, one entry per run.
type Throughput struct {
	Events int
	Rate   Samples // events/s
	Cores  Samples // CPU herald used during the run, in cores
	Notes  []string
}

// Latency is the latency figure at one offered load, one entry per run.
type Latency struct {
	Rate          int // offered, events/s
	Events        int // measured per run
	P50, P99, Max Samples
	Missing       []int // events whose email never showed, per run
}

// RSS is the memory figure.
type RSS struct {
	Profiles, Events  int
	Consumed          int
	LoadTook, RunTook time.Duration
	Rate              float64 // events/s herald serve consumed
	StartRSS          float64 // MB once herald serve is up on the loaded data
	AfterRSS, PeakRSS float64 // MB: VmRSS after the events, VmHWM
	StoreMB           float64 // the data directory's size
	// HeapMB and SysMB are the Go heap in use and the memory the Go
	// runtime obtained from the system, from /metrics after the events.
	HeapMB, SysMB float64
	Notes         []string
}

// Profile is the top of a CPU profile.
type Profile struct {
	Command string
	Top     string
}

// Samples are the values of repeated runs, in run order.
type Samples []float64

// Min returns the smallest sample, NaN for none.
func (s Samples) Min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

// Max returns the largest sample, NaN for none.
func (s Samples) Max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// Median returns the median sample, NaN for none.
func (s Samples) Median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted values
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
