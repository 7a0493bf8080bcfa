package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herald-events/herald/profile"
)

// performedSet remembers the effects this applier performed that the stored
// records still list in their outboxes. Clearing a performed effect from
// its record would cost a second durable write per event; instead the
// entry is dropped by the customer's next write, whatever event makes it,
// or by Flush, which writes the records of customers who went quiet.
//
// Until then a redelivery or a later event of the customer skips the
// entry, since it is known here to be done. What is known here is lost if
// the process dies: a record still listing a performed effect then has it
// performed again by the customer's next event, under the same
// idempotency key, as it would be after a crash between performing an
// effect and clearing it.
type performedSet struct {
	mu sync.Mutex
	// keys holds the entries performed: the effect key, or for an entry
	// that could not be decoded, its bytes.
	keys map[string]struct{}
	// pending maps a customer to the entries performed from their record
	// and the time of the latest.
	pending map[string]*pendingClear
}

type pendingClear struct {
	keys []string
	last time.Time
}

func newPerformed() *performedSet {
	return &performedSet{keys: make(map[string]struct{}), pending: make(map[string]*pendingClear)}
}

// entryKey returns the key an outbox entry is remembered by.
func entryKey(raw json.RawMessage) string {
	var e struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Key == "" {
		return string(raw)
	}
	return e.Key
}

// done records that the entry under key of uuid's record was performed
// (or kept as a dead letter) at now.
func (p *performedSet) done(uuid, key string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[key] = struct{}{}
	c := p.pending[uuid]
	if c == nil {
		c = &pendingClear{}
		p.pending[uuid] = c
	}
	c.keys = append(c.keys, key)
	c.last = now
}

// strip drops from rec's outbox the entries known to be performed and
// returns their keys, to be forgotten once rec is stored without them.
func (p *performedSet) strip(rec *profile.Record) []string {
	if len(rec.Outbox) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.keys) == 0 {
		return nil
	}
	var gone []string
	rec.Outbox = slices.DeleteFunc(rec.Outbox, func(raw json.RawMessage) bool {
		k := entryKey(raw)
		if _, ok := p.keys[k]; ok {
			gone = append(gone, k)
			return true
		}
		return false
	})
	if len(rec.Outbox) == 0 {
		rec.Outbox = nil
	}
	return gone
}

// forget lets go of keys once the record that listed them is stored
// without them.
func (p *performedSet) forget(keys []string) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		delete(p.keys, k)
	}
}

// settle records that uuid's record was just stored without the performed
// entries it listed, keys: nothing of the customer's is left to clear.
func (p *performedSet) settle(uuid string, keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		delete(p.keys, k)
	}
	if c := p.pending[uuid]; c != nil {
		for _, k := range c.keys {
			delete(p.keys, k)
		}
		delete(p.pending, uuid)
	}
}

// due returns the customers whose latest performed effect is older than
// quiet, and takes their pending keys.
func (p *performedSet) due(now time.Time, quiet time.Duration) map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string][]string
	for uuid, c := range p.pending {
		if now.Sub(c.last) < quiet {
			continue
		}
		if out == nil {
			out = make(map[string][]string)
		}
		out[uuid] = c.keys
		delete(p.pending, uuid)
	}
	return out
}

// requeue puts back the keys of a customer whose record could not be
// cleared now.
func (p *performedSet) requeue(uuid string, keys []string, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.pending[uuid]
	if c == nil {
		c = &pendingClear{last: last}
		p.pending[uuid] = c
	}
	c.keys = append(c.keys, keys...)
}

// size reports how many performed entries are remembered.
func (p *performedSet) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.keys)
}

// Flush writes the records that still list effects this applier performed,
// of every customer whose latest effect is at least quiet old, without
// those effects. Serve calls it every so often while events flow, and with
// quiet 0 after the last event, so that records do not keep performed
// effects; nothing is lost if it is not called (see Handle). A record
// written by someone else meanwhile is left to the next Flush. It returns
// the first error met; the records it could not clear stay pending.
func (r *Runner) Flush(ctx context.Context, quiet time.Duration) error {
	var errs []error
	now := time.Now()
	for uuid, keys := range r.done.due(now, quiet) {
		if err := r.clear(ctx, uuid); err != nil {
			r.done.requeue(uuid, keys, now)
			errs = append(errs, err)
			continue
		}
		// The record no longer lists them, whether this write or an
		// earlier one of the customer's dropped them.
		r.done.forget(keys)
	}
	return errors.Join(errs...)
}

// clear stores uuid's record without the performed entries it lists,
// reading it again when someone else wrote it meanwhile.
func (r *Runner) clear(ctx context.Context, uuid string) error {
	for range maxConflicts {
		cur, err := r.load(ctx, uuid)
		if errors.Is(err, profile.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if cur.Record == nil || len(r.done.strip(cur.Record)) == 0 {
			return nil
		}
		if len(cur.Record.Outbox) == 0 {
			cur.Record.Lease = nil // nothing left to hold
		}
		_, err = r.cfg.Store.Put(ctx, cur.UUID, cur.Record, cur.Rev)
		if errors.Is(err, profile.ErrConflict) {
			continue
		} else if err != nil {
			return storeError(fmt.Errorf("clear performed effects of %s: %w", cur.UUID, err))
		}
		r.cfg.Metrics.flushed()
		return nil
	}
	return fmt.Errorf("clear performed effects of %s: still conflicting after %d tries", uuid, maxConflicts)
}

// leasedElsewhere returns a *RetryError when another engine's lease on
// rec, the record of uuid, still holds effects to perform: they are that
// engine's to perform, and the customer's events wait until it has
// cleared them or its lease ran out.
func (r *Runner) leasedElsewhere(uuid string, rec *profile.Record) error {
	if r.cfg.Owner == "" || len(rec.Outbox) == 0 || !rec.Lease.HeldByOther(r.cfg.Owner, time.Now()) {
		return nil
	}
	r.cfg.Metrics.leased()
	return &RetryError{Err: fmt.Errorf("customer %s: engine %s is performing their effects (lease until %s)",
		uuid, rec.Lease.Engine, rec.Lease.Until.UTC().Format(time.RFC3339))}
}

// takeLease makes rec's lease this engine's, for LeaseFor from now, when
// rec lists effects to perform, and drops it when it lists none. It
// reports whether rec lists effects under another engine's lease (run
// out, or written before leases), which the caller must store before
// performing them.
func (r *Runner) takeLease(rec *profile.Record) (takenOver bool) {
	if r.cfg.Owner == "" {
		return false
	}
	if len(rec.Outbox) == 0 {
		rec.Lease = nil
		return false
	}
	takenOver = rec.Lease == nil || rec.Lease.Engine != r.cfg.Owner
	rec.Lease = &profile.Lease{Engine: r.cfg.Owner, Until: time.Now().Add(r.cfg.LeaseFor)}
	return takenOver
}
