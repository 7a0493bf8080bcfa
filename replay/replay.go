// Package replay runs events through the very applier `herald serve` runs,
// with an in-memory profile store and recording effectors: emails are
// built and checked as a mail server would get them but kept in memory,
// emitted events are fed back in, other effects are recorded. What serve
// would refuse (a subject with a line break, a template that fails), a
// replay reports. The clock is virtual: each event's own time, and the
// times of timers, which fire when the clock is advanced past them
// (Advance, Clock).
package replay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/emit"
	"github.com/herald-events/herald/actions/timer"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/runner"
)

// Config says what to replay with.
type Config struct {
	Rules *rules.Set
	// Store holds the profiles; nil starts from none.
	Store profile.Store
	// From is the emails' From address (serve's email.from).
	From string
	// Kinds lists effect kinds, besides email and emit, to record.
	Kinds []string
	// BaseURL is where links point; default https://links.invalid.
	BaseURL string
}

// Replayer runs events one at a time. It is not safe for concurrent use.
type Replayer struct {
	apply   *runner.Runner
	mail    *email.Recorder
	clock   *Clock
	emitted []*event.Event
	results []*Result
	failed  map[string]error
	mu      sync.Mutex
}

// Result is what one event did: its plan, each effect's wire form by key,
// and the effects that failed for good (as serve would dead-letter them).
type Result struct {
	Plan     *engine.Plan
	Rendered map[string]any
	Failed   map[string]error
	// Timer is the timer that fired the event, nil for an event run or
	// emitted.
	Timer *Timer
}

// New returns a replayer.
func New(cfg Config) (*Replayer, error) {
	if cfg.Rules == nil {
		return nil, errors.New("replay: no rules")
	}
	if cfg.Store == nil {
		cfg.Store = profile.NewMemory()
	}
	if cfg.From == "" {
		cfg.From = "Herald <herald@localhost>"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://links.invalid"
	}
	// Links are signed as serve signs them, with a key of the replay's
	// own: a replay's links are never valid anywhere.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	signer, err := links.NewSigner(links.Key{ID: "replay", Secret: secret})
	if err != nil {
		return nil, err
	}
	r := &Replayer{mail: &email.Recorder{}, clock: &Clock{}}
	mail, err := email.NewEffector(r.mail, cfg.From, "")
	if err != nil {
		return nil, err
	}
	reg := actions.Registry{
		"email": mail,
		"emit":  &emit.Effector{Publisher: emit.PublisherFunc(r.queue)},
		// Timers run on the replay's virtual clock.
		"timer":  &timer.Effector{Scheduler: r.clock},
		"cancel": &timer.Effector{Scheduler: r.clock},
	}
	for _, k := range cfg.Kinds {
		if reg[k] == nil {
			reg[k] = actions.EffectorFunc(record)
		}
	}
	r.apply, err = runner.New(runner.Config{
		Engine:     engine.New(cfg.Rules),
		Store:      cfg.Store,
		Effectors:  reg,
		Linker:     runner.SignedLinks(signer, cfg.BaseURL),
		DeadLetter: r.deadLetter,
		Observe:    r.observe,
		Now:        r.clock.Now,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// record performs any other effect by recording it: it is only checked to
// be well formed.
func record(_ context.Context, e *actions.Effect) (bool, error) {
	if len(e.Data) == 0 {
		return false, fmt.Errorf("perform %s: no data", e.Key)
	}
	return false, nil
}

func (r *Replayer) queue(_ context.Context, ev *event.Event) error {
	r.emitted = append(r.emitted, ev)
	return nil
}

func (r *Replayer) deadLetter(_ context.Context, key string, _ []byte, reason error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[key] = reason
	return nil
}

func (r *Replayer) observe(a *runner.Applied) {
	r.results = append(r.results, &Result{Plan: a.Plan, Rendered: a.Rendered})
}

// Run applies ev with the clock set to its time, then each event its
// rules emit, depth first, as serve would through NATS. It returns a
// Result per event evaluated, ev's first. It fires no timer: Advance the
// clock to ev's time first for that. An error means the applier itself
// failed.
func (r *Replayer) Run(ctx context.Context, ev *event.Event) ([]*Result, error) {
	return r.run(ctx, ev, ev.Time)
}

// Advance moves the clock to t, firing on the way each timer due by then,
// soonest first (timers due at the same time in the order they were
// scheduled): each fired event is applied at its timer's time, with the
// events it emits, as Run applies an event. Timers that fired events
// schedule are fired too when due by t. It returns a Result per event
// evaluated. The clock never goes back: t before the clock fires nothing.
func (r *Replayer) Advance(ctx context.Context, t time.Time) ([]*Result, error) {
	var out []*Result
	for {
		tm := r.clock.next(t)
		if tm == nil {
			break
		}
		res, err := r.run(ctx, tm.Event, tm.Due)
		if len(res) > 0 {
			res[0].Timer = tm
		}
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	if t.After(r.clock.Now()) {
		r.clock.Set(t)
	}
	return out, nil
}

// Clock returns the replay's virtual clock, with its pending timers.
func (r *Replayer) Clock() *Clock { return r.clock }

func (r *Replayer) run(ctx context.Context, ev *event.Event, now time.Time) ([]*Result, error) {
	var out []*Result
	queue := []*event.Event{ev}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		r.clock.Set(now)
		r.emitted, r.results, r.failed = nil, nil, make(map[string]error)
		if err := r.apply.Handle(ctx, next); err != nil {
			return out, fmt.Errorf("apply %s: %w", next.ID, err)
		}
		res := &Result{Plan: &engine.Plan{Event: next}}
		if len(r.results) > 0 {
			res = r.results[0]
		}
		res.Failed = r.failed
		out = append(out, res)
		// Emitted events run before the rest of the queue, in order.
		queue = append(r.emitted, queue...)
	}
	return out, nil
}

// Emails returns every email the replay built, in order.
func (r *Replayer) Emails() []*email.Message { return r.mail.Sent() }
