package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// latencyGrace is how long a latency run waits, after its last event,
// for emails still to come.
const latencyGrace = 5 * time.Second

// latencyEvent is a double opt-in form submission of a new customer whose
// event id, uuid and address carry the run and the sequence number, so
// that its email can be told apart in the outbox.
func latencyEvent(run, i int) []byte {
	tok := latencyToken(run, i)
	return fmt.Appendf(nil, `{"id":%q,"action":"form.submit","label":"Newsletter form","uuid":%q,"params":{"form_type":"newsletter","email":"%s@example.com","newsletter_agreement_enabled":"enabled"}}`, tok, tok, tok)
}

func latencyToken(run, i int) string { return fmt.Sprintf("lat%dn%07d", run, i) }

var latencyTokenRE = regexp.MustCompile(`lat(\d+)n(\d{7})`)

// latency is figure 2d: herald serve on a fresh data directory gets
// double opt-in form submissions at a fixed rate, published as an app
// would; each event's latency runs from the moment it was due to be
// published to the moment its email is visible in the outbox. Each run
// first sends WarmUp worth of events, not counted. Before the load starts
// the idle process's memory is read (IdleRSS).
func (h *harness) latency(ctx context.Context, res *Results) error {
	runNo := 0
	for _, rate := range h.sc.LatencyRates {
		l := Latency{Rate: rate, Events: int(float64(rate) * h.sc.LatencyFor.Seconds())}
		for run := 1; run <= h.o.runs; run++ {
			runNo++
			lat, missing, idle, err := h.latencyRun(ctx, runNo, rate)
			if err != nil {
				if len(l.P99) > 0 {
					res.Latency = append(res.Latency, l)
				}
				return err
			}
			if len(lat) > 0 {
				l.P50 = append(l.P50, ms(percentile(lat, 50)))
				l.P99 = append(l.P99, ms(percentile(lat, 99)))
				l.Max = append(l.Max, ms(lat[len(lat)-1]))
				log.Printf("latency at %d/s run %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d missing",
					rate, run, ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]), missing)
			}
			l.Missing = append(l.Missing, missing)
			if rate == h.sc.LatencyRates[0] {
				res.IdleRSS = append(res.IdleRSS, idle)
			}
		}
		res.Latency = append(res.Latency, l)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencyRun is one run at rate events/s. It returns the latencies of the
// measured events, sorted, with those whose email never showed counted as
// missing (their latency is the time waited, a lower bound), and the idle
// RSS in MB.
func (h *harness) latencyRun(ctx context.Context, runNo, rate int) ([]time.Duration, int, float64, error) {
	dir, err := h.w.dir(fmt.Sprintf("latency-%d", rate))
	if err != nil {
		return nil, 0, 0, err
	}
	defer h.w.discard(dir)
	outbox := filepath.Join(dir, "data", "outbox")
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		return nil, 0, 0, err
	}
	wt, err := watch(outbox)
	if err != nil {
		return nil, 0, 0, err
	}
	defer wt.close()
	p, err := startServe(ctx, h.heraldServe(), dir)
	if err != nil {
		return nil, 0, 0, err
	}
	defer p.stop()
	c, err := connect(ctx, p.natsURL)
	if err != nil {
		return nil, 0, 0, err
	}
	defer c.close()
	time.Sleep(time.Second) // idle
	idle, _, err := p.memory()
	if err != nil {
		return nil, 0, 0, err
	}

	warm := int(float64(rate) * h.sc.WarmUp.Seconds())
	n := int(float64(rate) * h.sc.LatencyFor.Seconds())
	due, err := offer(ctx, c.js, rate, warm+n, func(i int) []byte { return latencyEvent(runNo, i) })
	if err != nil {
		return nil, 0, 0, err
	}
	_ = wt.waitFor(warm+n, time.Now().Add(latencyGrace))
	waited := time.Now()

	visible := make(map[int]time.Time, warm+n)
	for _, s := range wt.seen() {
		i, ok := latencyIndex(runNo, s.name, outbox)
		if ok {
			if t, dup := visible[i]; !dup || s.at.Before(t) {
				visible[i] = s.at
			}
		}
	}
	lat := make([]time.Duration, 0, n)
	missing := 0
	for i := warm; i < warm+n; i++ {
		at, ok := visible[i]
		if !ok {
			missing++
			at = waited
		}
		lat = append(lat, at.Sub(due[i]))
	}
	slices.Sort(lat)
	return lat, missing, idle, nil
}

// latencyIndex finds the sequence number of the event an email in the
// outbox was sent for: in its file name, or else in its content (the
// recipient's address).
func latencyIndex(runNo int, name, dir string) (int, bool) {
	m := latencyTokenRE.FindStringSubmatch(name)
	if m == nil {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, false
		}
		if m = latencyTokenRE.FindStringSubmatch(string(data)); m == nil {
			return 0, false
		}
	}
	if r, _ := strconv.Atoi(m[1]); r != runNo {
		return 0, false
	}
	i, err := strconv.Atoi(m[2])
	return i, err == nil
}

// offer publishes n events at rate events/s, open loop: event i is due at
// start + i/rate, whether or not earlier ones were answered. It returns
// when each was due.
func offer(ctx context.Context, js jetstream.JetStream, rate, n int, payload func(i int) []byte) ([]time.Time, error) {
	due := make([]time.Time, n)
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(10 * time.Millisecond)
	for i := range n {
		due[i] = start.Add(time.Duration(i) * interval)
		if d := time.Until(due[i]); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := publishAsync(ctx, js, eventsSubject, payload(i)); err != nil {
			return nil, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(latencyGrace):
	}
	return due, nil
}
