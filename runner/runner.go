// Package runner is the applier: it applies the plans the engine makes.
// In one compare-and-set it stores the profile changes, the event's id and
// the plan's rendered effects (the customer's outbox); then it performs
// the effects through the effectors registered for their kinds. Profile
// changes happen exactly once; effects at least once, each with a stable
// idempotency key. The applier knows no concrete action: serve, replay and
// rule tests run it with different stores and effectors.
//
// The applier also makes anonymous customers known: it follows the aliases
// merged customers leave, keeps the email index in step with the profiles,
// and merges an anonymous customer into the known one who owns the address
// they give (see merge.go).
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Linker returns the URL of a signed link that, once confirmed, emits
// link.Emit for the customer of ev. rule names the rule that planned the
// email; the link expires at expires.
type Linker func(link rules.Link, ev *event.Event, rule string, expires time.Time) (string, error)

// DeadLetterFunc keeps an effect that failed for good (a rejected
// recipient, a broken template), with the reason, so it is not lost
// silently.
type DeadLetterFunc func(ctx context.Context, key string, effect []byte, reason error) error

// Config holds what the applier needs.
type Config struct {
	Engine *engine.Engine
	// Store keeps the customers' records and the email index.
	Store profile.Store
	// Effectors perform rendered effects by kind.
	Effectors actions.Registry
	Linker    Linker
	// DeadLetter keeps effects that failed for good; nil only logs them.
	DeadLetter DeadLetterFunc
	// Observe, when set, is called with each plan once it is stored,
	// before its effects are performed (replays print it).
	Observe func(*Applied)
	// Metrics, when set, counts rule evaluations and effects.
	Metrics *Metrics
	// Owner names this engine in the leases it takes on customers'
	// outboxes (see profile.Lease): while an engine's lease on a record
	// lasts, no other engine performs the effects it lists, and events of
	// that customer handled elsewhere are retried later. Engines sharing a
	// store need distinct names; a restarted engine should keep its name,
	// so that it performs at once what it left listed. Empty: no leases
	// are taken or honoured (one engine, replays, tests).
	Owner string
	// LeaseFor is how long a lease lasts after the write that takes it
	// (default 1 minute): longer than performing an event's effects and
	// clearing them takes.
	LeaseFor time.Duration
	// LazyClear leaves performed effects listed in the stored record until
	// the customer's next write or Flush drops them, saving a durable
	// write per event that has effects; whoever sets it calls Flush every
	// so often and once after the last event. Without it, the effects an
	// event performed are cleared by one more write right away.
	LazyClear bool
	// Suppressed, when set, is asked about each effect before it is
	// rendered; a reason it returns withholds the effect as a
	// rules.Suppressor would (serve: an email to an address on the
	// suppression list). An error fails the event, to be retried.
	Suppressed func(ctx context.Context, e rules.Effect) (reason string, err error)
	// Marks, when set, records each effect performed where every engine
	// sees it, and is asked before an effect listed by an earlier write is
	// performed, so that an engine taking over a record from one that died
	// does not perform again what that one performed (see done.go).
	Marks Marks
	// Now is the clock; Logger receives rule errors and dropped effects.
	Now    func() time.Time
	Logger *slog.Logger
}

// Applied is a plan as the applier stored it.
type Applied struct {
	Plan *engine.Plan
	// At is the time the plan was made at: the rules' now.
	At time.Time
	// Rendered holds each effect's wire form by key; an effect that failed
	// to render or was suppressed has none.
	Rendered map[string]any
}

// Runner applies events. It is safe for concurrent use, provided events of
// one customer are handled one at a time, in order.
type Runner struct {
	cfg  Config
	done *performedSet
}

// New returns an applier.
func New(cfg Config) (*Runner, error) {
	if cfg.Engine == nil || cfg.Store == nil || cfg.Effectors == nil || cfg.Linker == nil {
		return nil, errors.New("runner: engine, store, effectors and linker are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseFor <= 0 {
		cfg.LeaseFor = time.Minute
	}
	return &Runner{cfg: cfg, done: newPerformed()}, nil
}

// RetryError is a failure worth retrying later (SMTP or NATS down): the
// event should be redelivered after a delay. The profile changes are
// already stored; only effects remain, and the redelivery finishes them.
type RetryError struct{ Err error }

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// PermanentError is a failure that redelivering the event would meet
// again, such as a profile record too large for the store. The consumer
// keeps the event as a dead letter instead of retrying it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports true: the consumer's classification looks for it.
func (e *PermanentError) Permanent() bool { return true }

// storeError classifies a failed store write.
func storeError(err error) error {
	if errors.Is(err, profile.ErrTooLarge) {
		return &PermanentError{Err: err}
	}
	return err
}

// maxConflicts bounds the compare-and-set retries of one write.
const maxConflicts = 16

// Wants reports whether Handle has anything to do with ev: a rule wants
// its action, or it gives an email that may make its customer known.
// Handle returns at once for any other event, without reading the store.
func (r *Runner) Wants(ev *event.Event) bool {
	return r.cfg.Engine.Wants(ev.Action) || identifyingEmail(ev) != ""
}

// Handle applies ev: it evaluates the rules against the customer's stored
// profile and, in one compare-and-set, stores the changed profile, the
// event's id and the rendered effects; then it performs the effects. An
// event applied before (a redelivery) is not evaluated again; only the
// effects it left unperformed are. Handle returns nil when the event is
// done, a *RetryError when it should be redelivered later, a
// *PermanentError when redelivering cannot help, or another error when the
// store failed.
//
// The customer is the event's uuid with aliases followed: the events of an
// anonymous customer merged into a known one apply to the known customer's
// record. Rules then see the known customer's uuid as the event's uuid,
// and the effects (emitted events, links) are made for it; the event's id,
// and so every idempotency key, stays the one sent. Handle merges
// anonymous customers into known ones and keeps the email index in step;
// see merge.go.
func (r *Runner) Handle(ctx context.Context, ev *event.Event) error {
	identifies := identifyingEmail(ev)
	if identifies == "" && !r.cfg.Engine.Wants(ev.Action) {
		return nil // no rule: no profile read, nothing to do
	}
	var claims []claimed
	for range maxConflicts {
		cur, err := r.load(ctx, ev.UUID)
		if err != nil {
			return err
		}
		uuid, rec, rev := cur.UUID, cur.Record, cur.Rev
		if rec.IsErased() {
			// The customer was erased (herald profile forget): nothing of
			// theirs is kept again, whatever arrives.
			r.releaseClaims(ctx, claims, "", nil)
			r.cfg.Metrics.erasedDropped()
			r.cfg.Logger.Debug("event of an erased customer dropped", "event", ev.ID, "action", ev.Action)
			return nil
		}
		cleared := r.done.strip(rec)
		if err := r.leasedElsewhere(uuid, rec); err != nil {
			r.releaseClaims(ctx, claims, uuid, rec.Profile)
			return err
		}
		if rec.HasApplied(ev.ID) {
			r.releaseClaims(ctx, claims, uuid, rec.Profile)
			if r.takeLease(rec) {
				// Another engine's lease ran out with effects listed:
				// take it over before performing them.
				rev, err = r.cfg.Store.Put(ctx, uuid, rec, rev)
				if errors.Is(err, profile.ErrConflict) {
					continue
				} else if err != nil {
					return storeError(fmt.Errorf("store profile %s: %w", uuid, err))
				}
				r.done.settle(uuid, cleared)
				cleared = nil
			}
			return r.perform(ctx, uuid, rec, rev, len(cleared) > 0, 0)
		}
		if identifies != "" && anonymous(rec.Profile) {
			owner, err := r.owner(ctx, identifies)
			if err != nil {
				return err
			}
			if owner != "" && owner != uuid {
				if err := r.merge(ctx, uuid, rec, rev, owner, ev.ID); err != nil && !errors.Is(err, profile.ErrConflict) {
					return err
				}
				continue // the customer resolves to the owner now
			}
		}
		if !r.cfg.Engine.Wants(ev.Action) {
			r.releaseClaims(ctx, claims, uuid, rec.Profile)
			return nil
		}
		target := ev
		if uuid != ev.UUID {
			resolved := *ev
			resolved.UUID = uuid
			target = &resolved
		}
		now := r.cfg.Now()
		start := time.Now()
		plan := r.cfg.Engine.EvaluateFired(target, rec.Profile, rec.Fired, now)
		r.cfg.Metrics.evaluated(plan, time.Since(start))
		for _, e := range plan.Errors {
			r.cfg.Logger.Warn("rule failed", "rule", e.Rule, "event", e.EventID, "err", e.Err)
		}
		changes := plan.Changes()
		before := emailOf(rec.Profile)
		if after := emailOf(plan.After); len(changes) > 0 && !profile.SameEmail(before, after) && claimable(after) {
			owner, err := r.claim(ctx, after, uuid)
			if err != nil {
				return err
			}
			switch {
			case owner == uuid:
				claims = append(claims, claimed{email: after, uuid: uuid})
			case anonymous(rec.Profile):
				// Made known by this event with an address another
				// customer owns (they won a race to claim it): merge into
				// them and evaluate there.
				if err := r.merge(ctx, uuid, rec, rev, owner, ev.ID); err != nil && !errors.Is(err, profile.ErrConflict) {
					return err
				}
				continue
			default:
				r.cfg.Metrics.emailTaken()
				r.cfg.Logger.Warn("email belongs to another customer; two known customers are not merged",
					"uuid", uuid, "owner", owner, "event", ev.ID)
			}
		}
		entries, applied, err := r.render(ctx, plan, now)
		if err != nil {
			return err
		}
		capped := recordFired(rec, plan, now)
		if len(changes) == 0 && len(entries) == 0 && !capped {
			r.releaseClaims(ctx, claims, uuid, rec.Profile)
			r.observe(applied)
			return nil // nothing fired that leaves a trace
		}
		if len(changes) > 0 {
			rec.Profile = plan.After
		} else if rec.Profile == nil {
			rec.Profile = profile.New(uuid, now)
		}
		rec.MarkApplied(ev.ID)
		if claimable(before) && !profile.SameEmail(before, rec.Profile.Email) {
			// The old address is released once the new one is stored, as
			// an entry of the outbox: at least once, crash or not.
			e, err := releaseEntry(target, uuid, before)
			if err != nil {
				return err
			}
			entries = append([]*actions.Effect{e}, entries...)
		}
		for _, e := range entries {
			raw, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode effect %s: %w", e.Key, err)
			}
			rec.Outbox = append(rec.Outbox, raw)
		}
		r.takeLease(rec)
		rev, err = r.cfg.Store.Put(ctx, uuid, rec, rev)
		if errors.Is(err, profile.ErrConflict) {
			continue // someone else wrote the profile: evaluate again
		} else if err != nil {
			err = storeError(fmt.Errorf("store profile %s: %w", uuid, err))
			if perm := (*PermanentError)(nil); errors.As(err, &perm) {
				r.releaseClaims(ctx, claims, "", nil)
			}
			return err
		}
		r.done.settle(uuid, cleared)
		r.releaseClaims(ctx, claims, uuid, rec.Profile)
		r.cfg.Logger.Debug("event applied", "event", ev.ID, "action", ev.Action, "uuid", uuid,
			"rules", len(plan.Fired), "changes", len(changes), "effects", len(entries))
		r.observe(applied)
		return r.perform(ctx, uuid, rec, rev, false, len(entries))
	}
	return &RetryError{Err: fmt.Errorf("store profile %s: still conflicting after %d tries", ev.UUID, maxConflicts)}
}

func (r *Runner) observe(a *Applied) {
	if r.cfg.Observe != nil {
		r.cfg.Observe(a)
	}
}

// render renders the plan's effects on the world, in order, into outbox
// entries. Suppressed effects are logged and left out; an effect that
// fails to render would fail the same way on every retry, so it is kept as
// a dead letter and the others go on.
func (r *Runner) render(ctx context.Context, plan *engine.Plan, now time.Time) ([]*actions.Effect, *Applied, error) {
	var out []*actions.Effect
	applied := &Applied{Plan: plan, At: now}
	ev := plan.Event
	for _, f := range plan.Fired {
		for _, e := range f.Effects {
			if e.Out == nil {
				continue
			}
			key, kind := engine.Key(ev, f.Rule, e.Step), e.Out.Kind()
			if s, ok := e.Out.(rules.Suppressor); ok && s.Suppressed() != "" {
				r.cfg.Metrics.effect(kind, "suppressed")
				r.cfg.Logger.Info("effect not performed", "kind", kind, "rule", f.Rule, "event", ev.ID, "reason", s.Suppressed())
				continue
			}
			if r.cfg.Suppressed != nil {
				reason, err := r.cfg.Suppressed(ctx, e.Out)
				if err != nil {
					return nil, nil, fmt.Errorf("check suppression of %s: %w", key, err)
				}
				if reason != "" {
					r.cfg.Metrics.effect(kind, "suppressed")
					r.cfg.Logger.Info("effect not performed", "kind", kind, "rule", f.Rule, "event", ev.ID, "reason", reason)
					continue
				}
			}
			rule := f.Rule
			rc := &rules.RenderContext{
				Key: key, Event: ev, Rule: rule, Step: e.Step, Now: now,
				Link: func(l rules.Link) (string, error) { return r.cfg.Linker(l, ev, rule, now.Add(l.Expires)) },
			}
			data, raw, err := renderOne(e.Out, rc)
			if err != nil {
				_, desc := e.Out.Describe(nil)
				detail, _ := json.Marshal(map[string]any{"key": key, "kind": kind, "event": ev.ID, "effect": desc})
				if err := r.failed(ctx, kind, key, detail, err); err != nil {
					return nil, nil, err
				}
				continue
			}
			if applied.Rendered == nil {
				applied.Rendered = make(map[string]any)
			}
			applied.Rendered[key] = data
			out = append(out, &actions.Effect{Key: key, Kind: kind, Event: ev.ID, Data: raw})
		}
	}
	return out, applied, nil
}

// renderOne renders an effect; a panic in rendering (a template gone
// wrong) is an error of that effect, never a crash.
func renderOne(e rules.Effect, rc *rules.RenderContext) (data any, raw []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("render %s: panic: %v", e.Kind(), v)
		}
	}()
	data, err = e.Render(rc)
	if err != nil {
		return nil, nil, err
	}
	raw, err = json.Marshal(data)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", e.Kind(), err)
	}
	return data, raw, nil
}

// perform carries out the effects in the customer's outbox, oldest first.
// Effects of other events (left by an earlier failure) are performed too,
// so nothing stays behind. Each effect done is remembered as performed,
// not cleared from the stored record: the customer's next write or Flush
// drops it (see performed). A retryable failure stops it with a
// *RetryError; a permanent one is kept as a dead letter and the effect
// dropped, since retrying would fail the same way.
//
// stale says the stored record (at rev) lists performed entries that rec
// no longer does; fresh is how many entries, the last ones, the write just
// made listed: the others are looked up in Marks before they are performed.
func (r *Runner) perform(ctx context.Context, uuid string, rec *profile.Record, rev uint64, stale bool, fresh int) error {
	for i, raw := range rec.Outbox {
		if i < len(rec.Outbox)-fresh {
			done, err := r.markedBefore(ctx, entryKey(raw))
			if err != nil {
				return err
			}
			if done {
				r.done.done(uuid, entryKey(raw), time.Now())
				continue
			}
		}
		e, err := decodeEntry(raw)
		var key string
		if err != nil {
			key = entryKey(raw)
			if err := r.failed(ctx, "", "", raw, fmt.Errorf("decode effect: %w", err)); err != nil {
				return err
			}
		} else {
			key = e.Key
			if retry, err := r.do(ctx, e); err != nil {
				if retry {
					return &RetryError{Err: fmt.Errorf("perform %s: %w", e.Key, err)}
				}
				if err := r.failed(ctx, e.Kind, e.Key, raw, err); err != nil {
					return err
				}
			}
		}
		r.mark(ctx, key)
		r.done.done(uuid, key, time.Now())
	}
	if r.cfg.LazyClear || len(rec.Outbox) == 0 && !stale {
		return nil
	}
	cleared := r.done.strip(rec)
	if len(rec.Outbox) == 0 {
		rec.Lease = nil
	}
	_, err := r.cfg.Store.Put(ctx, uuid, rec, rev)
	if errors.Is(err, profile.ErrConflict) {
		// Someone else wrote the record meanwhile, perhaps merging the
		// customer into another: clear it as Flush would.
		err = r.clear(ctx, uuid)
	} else if err != nil {
		err = storeError(fmt.Errorf("store profile %s: %w", uuid, err))
	}
	if err != nil {
		return err
	}
	r.done.settle(uuid, cleared)
	return nil
}

// do performs one effect, recovering a panic in its effector as a
// permanent failure of that effect.
func (r *Runner) do(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			retry, err = false, fmt.Errorf("perform %s: panic: %v", e.Kind, v)
		}
		outcome := "done"
		switch {
		case err != nil && retry:
			outcome = "retry"
		case err != nil:
			outcome = "failed"
		}
		r.cfg.Metrics.performed(e.Kind, outcome, time.Since(start))
	}()
	if e.Kind == releaseKind {
		return r.performRelease(ctx, e)
	}
	return r.cfg.Effectors.Perform(ctx, e)
}

// failed reports an effect that cannot succeed and keeps it in the
// dead letters. If keeping it fails, the effect stays in the outbox and
// the event is retried.
func (r *Runner) failed(ctx context.Context, kind, key string, effect []byte, reason error) error {
	r.cfg.Metrics.effect(kind, "dead_lettered")
	r.cfg.Logger.Error("effect failed and will not be retried", "key", key, "err", reason)
	if r.cfg.DeadLetter == nil {
		return nil
	}
	if err := r.cfg.DeadLetter(ctx, key, effect, reason); err != nil {
		return &RetryError{Err: fmt.Errorf("keep failed effect %s: %w", key, err)}
	}
	return nil
}

// SignedLinks returns a Linker whose links are signed by signer and
// served under baseURL/l/.
func SignedLinks(signer *links.Signer, baseURL string) Linker {
	return func(l rules.Link, ev *event.Event, rule string, expires time.Time) (string, error) {
		token, err := signer.Sign(links.Claims{UUID: ev.UUID, Action: l.Emit, Label: l.Label, Link: l.Name, Event: ev.ID, Rule: rule, Site: ev.Site, Expires: expires})
		if err != nil {
			return "", err
		}
		return links.URL(baseURL, token), nil
	}
}
