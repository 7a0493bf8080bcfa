// Package runner applies the plans the engine makes: it stores the profile
// changes, renders and sends the emails and publishes the emitted events,
// exactly once for the profile and at least once, with idempotency keys,
// for everything else.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Emitter publishes an event a rule emitted. It must deduplicate on the
// event's id (NATS does, with Nats-Msg-Id).
type Emitter interface {
	Emit(ctx context.Context, ev *event.Event) error
}

// Linker returns the URL of a signed link that, once confirmed, emits
// link.Emit for the customer of ev. rule names the rule that sent the
// email; the link expires at expires.
type Linker func(link rules.Link, ev *event.Event, rule string, expires time.Time) (string, error)

// Config holds what the runner needs besides the engine.
type Config struct {
	Engine  *engine.Engine
	Store   profile.Store
	Mailer  email.Sender
	Emitter Emitter
	Linker  Linker
	// From and ReplyTo are the emails' From and Reply-To.
	From, ReplyTo string
	// DeadLetter keeps an effect that failed for good (a rejected
	// recipient, a broken template), with the reason, so it is not lost
	// silently; nil only logs it.
	DeadLetter func(ctx context.Context, key string, effect []byte, reason error) error
	// Now is the clock; Logger receives rule errors and dropped effects.
	Now    func() time.Time
	Logger *slog.Logger
}

// Runner applies events. It is safe for concurrent use, provided events of
// one customer are handled one at a time, in order.
type Runner struct {
	cfg    Config
	domain string // for Message-IDs
}

// New returns a runner. From must be set.
func New(cfg Config) (*Runner, error) {
	switch {
	case cfg.Engine == nil || cfg.Store == nil || cfg.Mailer == nil || cfg.Emitter == nil || cfg.Linker == nil:
		return nil, errors.New("runner: engine, store, mailer, emitter and linker are required")
	case cfg.From == "":
		return nil, errors.New("runner: from address is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	domain := "herald.invalid"
	if at := strings.LastIndexByte(cfg.From, '@'); at >= 0 {
		domain = strings.Trim(cfg.From[at+1:], "> ")
	}
	return &Runner{cfg: cfg, domain: domain}, nil
}

// RetryError is a failure worth retrying later (SMTP or NATS down): the
// event should be redelivered after a delay. The profile changes are
// already stored; only effects remain, and the redelivery finishes them.
type RetryError struct{ Err error }

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// maxConflicts bounds the compare-and-set retries of one write.
const maxConflicts = 16

// Handle applies ev: it evaluates the rules against the customer's stored
// profile and, in one compare-and-set, stores the changed profile, the
// event's id and the effects to perform; then it performs the effects. An
// event applied before (a redelivery) is not evaluated again; only the
// effects it left unperformed are. Handle returns nil when the event is
// done, a *RetryError when it should be redelivered later, or another error
// when the store failed.
func (r *Runner) Handle(ctx context.Context, ev *event.Event) error {
	if !r.cfg.Engine.Wants(ev.Action) {
		return nil // no rule: no profile read, nothing to do
	}
	for range maxConflicts {
		rec, rev, err := r.cfg.Store.Get(ctx, ev.UUID)
		switch {
		case errors.Is(err, profile.ErrNotFound):
			rec, rev = &profile.Record{}, 0
		case err != nil:
			return fmt.Errorf("load profile %s: %w", ev.UUID, err)
		}
		if rec.HasApplied(ev.ID) {
			return r.perform(ctx, ev.UUID, rec, rev)
		}
		now := r.cfg.Now()
		plan := r.cfg.Engine.Evaluate(ev, rec.Profile, now)
		for _, e := range plan.Errors {
			r.cfg.Logger.Warn("rule failed", "rule", e.Rule, "event", e.EventID, "err", e.Err)
		}
		entries, err := r.entries(ctx, plan, now)
		if err != nil {
			return err
		}
		changes := plan.Changes()
		if len(changes) == 0 && len(entries) == 0 {
			return nil // nothing fired that leaves a trace
		}
		if len(changes) > 0 {
			rec.Profile = plan.After
		} else if rec.Profile == nil {
			rec.Profile = profile.New(ev.UUID, now)
		}
		rec.MarkApplied(ev.ID)
		for _, e := range entries {
			raw, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode effect %s: %w", e.Key, err)
			}
			rec.Outbox = append(rec.Outbox, raw)
		}
		rev, err = r.cfg.Store.Put(ctx, ev.UUID, rec, rev)
		if errors.Is(err, profile.ErrConflict) {
			continue // someone else wrote the profile: evaluate again
		} else if err != nil {
			return fmt.Errorf("store profile %s: %w", ev.UUID, err)
		}
		r.cfg.Logger.Debug("event applied", "event", ev.ID, "action", ev.Action, "uuid", ev.UUID,
			"rules", len(plan.Fired), "changes", len(changes), "effects", len(entries))
		return r.perform(ctx, ev.UUID, rec, rev)
	}
	return &RetryError{Err: fmt.Errorf("store profile %s: still conflicting after %d tries", ev.UUID, maxConflicts)}
}

// entry is one effect waiting in a customer's outbox.
type entry struct {
	// Key identifies the effect: source event, rule and step.
	Key   string         `json:"key"`
	Event string         `json:"event"`
	Email *email.Message `json:"email,omitempty"`
	Emit  *emitted       `json:"emit,omitempty"`
}

type emitted struct {
	Event *event.Event `json:"event"`
	Depth int          `json:"depth"`
}

// entries renders a plan's emails and lists its emits, in order.
// Suppressed emails are logged and left out.
func (r *Runner) entries(ctx context.Context, plan *engine.Plan, now time.Time) ([]*entry, error) {
	var out []*entry
	ev := plan.Event
	for _, f := range plan.Fired {
		for _, e := range f.Effects {
			key := ev.ID + "." + f.Rule + "." + strconv.Itoa(e.Step)
			switch {
			case e.Email != nil && e.Email.Suppressed != "":
				r.cfg.Logger.Info("email not sent", "rule", f.Rule, "event", ev.ID, "template", e.Email.Template.Name, "reason", e.Email.Suppressed)
			case e.Email != nil:
				m, err := r.render(ev, f.Rule, e.Step, e.Email, now)
				if err != nil {
					// A template that fails to render fails the same way
					// on every retry: keep it as a failed effect and go on.
					raw, _ := json.Marshal(map[string]any{"key": key, "event": ev.ID, "template": e.Email.Template.Name, "to": e.Email.To})
					if err := r.failed(ctx, key, raw, fmt.Errorf("render email: %w", err)); err != nil {
						return nil, err
					}
					continue
				}
				out = append(out, &entry{Key: key, Event: ev.ID, Email: m})
			case e.Emit != nil:
				out = append(out, &entry{Key: key, Event: ev.ID, Emit: &emitted{Event: e.Emit, Depth: e.Emit.Depth}})
			}
		}
	}
	return out, nil
}

// render makes the message of a planned email, signing its links.
func (r *Runner) render(ev *event.Event, rule string, step int, m *engine.Email, now time.Time) (*email.Message, error) {
	out, urls, err := m.Render(ev, func(l rules.Link) (string, error) {
		return r.cfg.Linker(l, ev, rule, now.Add(l.Expires))
	})
	if err != nil {
		return nil, err
	}
	msg := &email.Message{
		ID:      fmt.Sprintf("%s.%s.%d@%s", ev.ID, rule, step, r.domain),
		From:    r.cfg.From,
		ReplyTo: r.cfg.ReplyTo,
		To:      m.To,
		Subject: out.Subject,
		Text:    out.Text,
		HTML:    out.HTML,
		Date:    now,
	}
	if u, ok := urls["unsubscribe"]; ok && m.Marketing {
		// RFC 8058: mail clients offer a one-click unsubscribe that POSTs
		// List-Unsubscribe=One-Click to this URL.
		msg.Headers = map[string]string{
			"List-Unsubscribe":      "<" + u + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}
	}
	return msg, nil
}

// perform carries out the effects in the customer's outbox, oldest first,
// removing each once done. Effects of other events (left by an earlier
// failure) are performed too, so nothing stays behind. A retryable failure
// stops it with a *RetryError; a permanent one is logged and the effect
// dropped, since retrying would fail the same way.
func (r *Runner) perform(ctx context.Context, uuid string, rec *profile.Record, rev uint64) error {
	for len(rec.Outbox) > 0 {
		var e entry
		if err := json.Unmarshal(rec.Outbox[0], &e); err != nil {
			if err := r.failed(ctx, "", rec.Outbox[0], fmt.Errorf("decode effect: %w", err)); err != nil {
				return err
			}
		} else if retry, err := r.do(ctx, &e); err != nil {
			if retry {
				return &RetryError{Err: fmt.Errorf("perform %s: %w", e.Key, err)}
			}
			if err := r.failed(ctx, e.Key, rec.Outbox[0], err); err != nil {
				return err
			}
		}
		rec.Outbox = rec.Outbox[1:]
		if len(rec.Outbox) == 0 {
			rec.Outbox = nil
		}
		var err error
		rev, err = r.cfg.Store.Put(ctx, uuid, rec, rev)
		if errors.Is(err, profile.ErrConflict) {
			// Someone else wrote the record meanwhile: read it again. The
			// effect just performed may still be listed and be performed
			// twice, which its idempotency key absorbs.
			if rec, rev, err = r.cfg.Store.Get(ctx, uuid); err != nil {
				return fmt.Errorf("load profile %s: %w", uuid, err)
			}
		} else if err != nil {
			return fmt.Errorf("store profile %s: %w", uuid, err)
		}
	}
	return nil
}

// failed reports an effect that cannot succeed and keeps it in the
// dead letters. If keeping it fails, the effect stays in the outbox and
// the event is retried.
func (r *Runner) failed(ctx context.Context, key string, effect []byte, reason error) error {
	r.cfg.Logger.Error("effect failed and will not be retried", "key", key, "err", reason)
	if r.cfg.DeadLetter == nil {
		return nil
	}
	if err := r.cfg.DeadLetter(ctx, key, effect, reason); err != nil {
		return &RetryError{Err: fmt.Errorf("keep failed effect %s: %w", key, err)}
	}
	return nil
}

func (r *Runner) do(ctx context.Context, e *entry) (retry bool, err error) {
	switch {
	case e.Email != nil:
		return r.cfg.Mailer.Send(ctx, e.Email)
	case e.Emit != nil:
		ev := e.Emit.Event
		ev.Depth = e.Emit.Depth
		if err := r.cfg.Emitter.Emit(ctx, ev); err != nil {
			return true, err
		}
		return false, nil
	}
	return false, errors.New("empty effect")
}
