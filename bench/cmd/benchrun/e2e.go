package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

// harness runs the figures.
type harness struct {
	o       *options
	sc      scale
	w       *workspace
	noPeers bool // the peers module does not build or disagrees
}

// The events of the end-to-end figures. Each customer's uuid and address
// are made from i.
func visitEvent(i int) []byte {
	return fmt.Appendf(nil, `{"action":"page.visit","label":"Home","uuid":"v-%d","params":{"url":"https://shop.example.com/"}}`, i)
}

func formEvent(i int) []byte {
	return fmt.Appendf(nil, `{"action":"form.submit","label":"Newsletter form","uuid":"f-%d","params":{"form_type":"newsletter","email":"f%d@example.com","newsletter_agreement_enabled":"enabled"}}`, i, i)
}

func hotEvent(int) []byte {
	return []byte(`{"action":"form.submit","label":"Newsletter form","uuid":"hot-1","params":{"form_type":"newsletter","email":"hot@example.com","newsletter_agreement_enabled":"enabled"}}`)
}

// visits is figure 2a: page visits no rule wants, against nats bench
// consuming with acks; the runs alternate.
func (h *harness) visits(ctx context.Context, res *Results) error {
	res.Visits.Events = h.sc.Visits
	for run := 1; run <= h.o.runs; run++ {
		raw, err := h.rawConsume(ctx, h.sc.Visits)
		if err != nil {
			return fmt.Errorf("nats bench consume: %w", err)
		}
		res.RawConsume = append(res.RawConsume, raw)
		r, err := h.consume(ctx, "visits", h.heraldServe(), h.sc.Visits, visitEvent, 0)
		if err != nil {
			return err
		}
		res.Visits.add(r)
		log.Printf("visits run %d: herald %.0f events/s, nats bench %.0f msgs/s", run, r.rate, raw)
	}
	return nil
}

// forms is figure 2b: double opt-in form submissions of distinct
// customers, each ending in an email; the runs alternate with nats bench
// publishing with fsync on, the rate of durable writes.
func (h *harness) forms(ctx context.Context, res *Results) error {
	res.Forms.Events = h.sc.Forms
	for run := 1; run <= h.o.runs; run++ {
		raw, err := h.rawPublish(ctx, h.sc.RawPublish)
		if err != nil {
			return fmt.Errorf("nats bench pub: %w", err)
		}
		res.RawPublish = append(res.RawPublish, raw)
		r, err := h.consume(ctx, "forms", h.heraldServe(), h.sc.Forms, formEvent, h.sc.Forms)
		if err != nil {
			return err
		}
		res.Forms.add(r)
		log.Printf("forms run %d: herald %.0f events/s, nats bench pub %.0f msgs/s", run, r.rate, raw)
	}
	return nil
}

// hot is figure 2c: the same form submissions, all of one customer.
func (h *harness) hot(ctx context.Context, res *Results) error {
	res.Hot.Events = h.sc.Forms
	for run := 1; run <= h.o.runs; run++ {
		r, err := h.consume(ctx, "hot", h.heraldServe(), h.sc.Forms, hotEvent, h.sc.Forms)
		if err != nil {
			return err
		}
		res.Hot.add(r)
		log.Printf("hot run %d: herald %.0f events/s", run, r.rate)
	}
	return nil
}

// runResult is one consumption run.
type runResult struct {
	rate  float64 // events/s
	cores float64 // CPU used by the server process, in cores
	notes []string
}

func (t *Throughput) add(r runResult) {
	t.Rate = append(t.Rate, r.rate)
	t.Cores = append(t.Cores, r.cores)
	for _, n := range r.notes {
		t.Notes = append(t.Notes, fmt.Sprintf("run %d: %s", len(t.Rate), n))
	}
}

// consume preloads n events into a new data directory, starts herald serve
// on it with its consumer paused, resumes the consumer and measures until
// every event is acked and, when emails > 0, that many emails are in the
// outbox. The rate is n over the time from the first delivery to the last
// of those (see client.start). A run longer than the scale's cap is cut
// short and reports the rate it reached.
func (h *harness) consume(ctx context.Context, name string, spec serveSpec, n int, payload func(int) []byte, emails int) (runResult, error) {
	var r runResult
	dir, err := h.w.dir(name)
	if err != nil {
		return r, err
	}
	defer h.w.discard(dir)
	dataDir := filepath.Join(dir, "data")
	if err := preload(ctx, dataDir, n, payload); err != nil {
		return r, fmt.Errorf("preload: %w", err)
	}
	outbox := filepath.Join(dataDir, "outbox")
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		return r, err
	}
	wt, err := watch(outbox)
	if err != nil {
		return r, err
	}
	defer wt.close()
	p, err := startServe(ctx, spec, dir)
	if err != nil {
		return r, err
	}
	defer p.stop()
	c, err := connect(ctx, p.natsURL)
	if err != nil {
		return r, err
	}
	defer c.close()

	t0, cpu0, note, err := c.start(ctx, p)
	if err != nil {
		return r, err
	}
	if note != "" {
		r.notes = append(r.notes, note)
	}
	deadline := t0.Add(h.sc.Cap)
	done, end, cut := 0, time.Time{}, false
	for {
		left, err := c.remaining(ctx)
		if err != nil {
			return r, err
		}
		now := time.Now()
		if left == 0 {
			done, end = n, now
			break
		}
		if now.After(deadline) {
			done, end, cut = max(n-int(left), 0), now, true
			r.notes = append(r.notes, fmt.Sprintf("cut short after %s: %s of %s events acked", h.sc.Cap, num(float64(done)), num(float64(n))))
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-p.exited:
			return r, fmt.Errorf("herald serve exited (%v); its log ends:\n%s", p.waitErr, p.logTail(20))
		case <-time.After(5 * time.Millisecond):
		}
	}
	if emails > 0 {
		want := emails * done / n
		wait := deadline
		if grace := end.Add(5 * time.Second); grace.After(wait) {
			wait = grace
		}
		if err := wt.waitFor(want, wait); err != nil {
			r.notes = append(r.notes, err.Error())
		}
		have, _ := wt.count()
		if at, ok := wt.nth(min(want, have)); ok && at.After(end) {
			end = at
		}
		done = min(done, have*n/emails)
	}
	cpu1, err := p.cpu()
	if err != nil {
		return r, err
	}
	elapsed := end.Sub(t0)
	r.rate = float64(done) / elapsed.Seconds()
	r.cores = (cpu1 - cpu0).Seconds() / time.Since(t0).Seconds()
	if dead, err := c.deadLetters(ctx); err != nil {
		r.notes = append(r.notes, "dead letters: "+err.Error())
	} else if dead > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d dead letters", dead))
	}
	if got := countEmails(outbox); !cut && got != emails {
		r.notes = append(r.notes, fmt.Sprintf("%s emails in the outbox, want %s", num(float64(got)), num(float64(emails))))
	}
	return r, nil
}
