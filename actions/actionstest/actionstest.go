// Package actionstest is the conformance suite every actions.Effector
// passes, in the manner of Watermill's pubsub/tests: an effector's tests
// describe the effector and the real receiver behind it in a [Harness] and
// call [Run].
//
//	func TestSuite(t *testing.T) {
//		srv := newReceiver(t) // an in-process server that records keys
//		actionstest.Run(t, actionstest.Harness{
//			Effector: sender,
//			Effect:   func(t *testing.T, key string) *actions.Effect { ... },
//			Received: func(*testing.T) []string { return srv.keys() },
//		})
//	}
//
// The suite checks what the retry, dedup and dead-letter stages rely on:
// a delivered effect reaches the receiver under its key, a redelivery
// carries the same key, failures are classified as retryable or not, data
// in the wrong form fails for good, and a cancelled context ends a call
// promptly.
package actionstest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
)

// Timing of the suite. Receivers run in-process, so these are generous.
const (
	// waitTimeout bounds how long the suite polls Received for a key.
	waitTimeout = 5 * time.Second
	// pollInterval is the pause between two calls of Received.
	pollInterval = 5 * time.Millisecond
	// performTimeout bounds one Perform; a call that takes longer fails
	// the suite as hanging.
	performTimeout = 15 * time.Second
	// cancelTimeout bounds a Perform with a cancelled context.
	cancelTimeout = 2 * time.Second
)

// Harness connects the suite to one effector and the real receiver behind
// it. The same effector and receiver serve every check; each check uses
// keys of its own, so the receiver need not be reset in between.
type Harness struct {
	// Effector is the effector under test.
	Effector actions.Effector
	// Effect returns a valid effect with the given key that the receiver
	// accepts. Key holds only letters, digits, '-' and '.'.
	Effect func(t *testing.T, key string) *actions.Effect
	// Received returns the idempotency keys the receiver has seen, in
	// order (Message-IDs, Nats-Msg-Ids after dedupe…): one entry per
	// accepted delivery, nothing for rejected ones. The suite polls it
	// with a deadline, so a receiver may record asynchronously.
	Received func(t *testing.T) []string
	// Dedupes says the receiver itself drops a second delivery with the
	// same key (NATS dedupe, outbox file named by key); when false the
	// suite checks every delivery carried the same key.
	Dedupes bool
	// Permanent returns an effect the receiver rejects for good (a
	// webhook receiver answering 400, an SMTP server answering 550), or
	// nil when the receiver cannot be made to; the suite then skips that
	// check and says so.
	Permanent func(t *testing.T, key string) *actions.Effect
	// Retryable returns an effect that fails transiently (a receiver
	// answering 503), or nil like Permanent.
	Retryable func(t *testing.T, key string) *actions.Effect
	// Data that is not the kind's wire form must fail permanently; the
	// suite always checks that, with Effect's effects and their Data
	// replaced.
}

// Run runs the suite against h. Each check is a subtest:
//
//   - Delivered: Perform returns nil and the receiver sees the key;
//     Perform leaves the effect unchanged.
//   - IdempotencyKey: performing the same effect twice (a redelivery)
//     succeeds both times; with Dedupes the receiver holds the key once,
//     otherwise it saw two deliveries, both carrying the key.
//   - Permanent: Harness.Permanent's effect fails with retry=false.
//   - Retryable: Harness.Retryable's effect fails with retry=true.
//   - Undecodable: Data that is not the kind's wire form (not JSON, the
//     wrong JSON type, empty) fails with retry=false and delivers nothing.
//   - CancelledContext: Perform with a cancelled context returns within
//     two seconds with retry=true (the effect is not at fault) and an
//     error matching context.Canceled.
//   - Concurrent: several Performs at once all deliver (run with -race).
//
// No Perform may take longer than 15 seconds.
func Run(t *testing.T, h Harness) {
	t.Helper()
	switch {
	case h.Effector == nil:
		t.Fatal("actionstest: Harness.Effector is nil")
	case h.Effect == nil:
		t.Fatal("actionstest: Harness.Effect is nil")
	case h.Received == nil:
		t.Fatal("actionstest: Harness.Received is nil")
	}
	s := &suite{h: h, run: strings.ToLower(rand.Text()[:8])}
	tests := []struct {
		name string
		test func(t *testing.T)
	}{
		{"Delivered", s.testDelivered},
		{"IdempotencyKey", s.testIdempotencyKey},
		{"Permanent", s.testPermanent},
		{"Retryable", s.testRetryable},
		{"Undecodable", s.testUndecodable},
		{"CancelledContext", s.testCancelledContext},
		{"Concurrent", s.testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.test)
	}
}

// suite holds what the checks share: the harness and a counter for keys
// unique to this run, so that a receiver kept across runs (a NATS stream
// with a dedupe window) never sees a key twice by accident.
type suite struct {
	h   Harness
	run string

	mu sync.Mutex
	n  int
}

// key returns a new key naming the check, as "at-1a2b3c4d-delivered-3".
func (s *suite) key(what string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("at-%s-%s-%d", s.run, what, s.n)
}

// effect calls build and checks that the harness kept the key.
func (s *suite) effect(t *testing.T, build func(*testing.T, string) *actions.Effect, key string) *actions.Effect {
	t.Helper()
	e := build(t, key)
	if e == nil {
		t.Fatalf("harness returned a nil effect for key %q", key)
	}
	if e.Key != key {
		t.Fatalf("harness returned an effect with key %q, want %q", e.Key, key)
	}
	return e
}

// result is what one Perform returned.
type result struct {
	retry bool
	err   error
}

// perform calls Perform and fails the test if it hangs beyond limit.
func (s *suite) perform(t *testing.T, ctx context.Context, e *actions.Effect, limit time.Duration) (bool, error) {
	t.Helper()
	done := make(chan result, 1)
	go func() {
		retry, err := s.h.Effector.Perform(ctx, e)
		done <- result{retry, err}
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.retry, r.err
	case <-timer.C:
		t.Fatalf("Perform(%s) did not return within %s", e.Key, limit)
		return false, nil
	}
}

// deliver performs e and fails the test unless it succeeds.
func (s *suite) deliver(t *testing.T, e *actions.Effect) {
	t.Helper()
	if retry, err := s.perform(t, t.Context(), e, performTimeout); err != nil {
		t.Fatalf("Perform(%s) = retry %t, %v; want success", e.Key, retry, err)
	}
}

// waitFor polls Received until done holds for it, and fails the test when
// it does not within waitTimeout.
func (s *suite) waitFor(t *testing.T, what string, done func(received []string) bool) []string {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		got := s.h.Received(t)
		if done(got) {
			return got
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s; the receiver has %s", what, waitTimeout, summary(got))
			return nil
		case <-tick.C:
		}
	}
}

// count reports how often key occurs in keys.
func count(keys []string, key string) int {
	n := 0
	for _, k := range keys {
		if k == key {
			n++
		}
	}
	return n
}

// summary prints the last keys a receiver holds.
func summary(keys []string) string {
	const show = 10
	if len(keys) <= show {
		return fmt.Sprintf("%d keys %q", len(keys), keys)
	}
	return fmt.Sprintf("%d keys, the last %d %q", len(keys), show, keys[len(keys)-show:])
}

// clone copies e deeply, to check that Perform does not change it.
func clone(e *actions.Effect) *actions.Effect {
	c := *e
	c.Data = slices.Clone(e.Data)
	return &c
}

func (s *suite) testDelivered(t *testing.T) {
	key := s.key("delivered")
	e := s.effect(t, s.h.Effect, key)
	before := clone(e)
	s.deliver(t, e)
	s.waitFor(t, "receiver sees "+key, func(got []string) bool { return count(got, key) > 0 })
	if !reflect.DeepEqual(e, before) {
		t.Errorf("Perform changed the effect:\n got %+v\nwant %+v", e, before)
	}
}

func (s *suite) testIdempotencyKey(t *testing.T) {
	key := s.key("redelivered")
	e := s.effect(t, s.h.Effect, key)
	s.deliver(t, e)
	s.deliver(t, e) // a redelivery: the first ack was lost
	if !s.h.Dedupes {
		got := s.waitFor(t, "receiver sees both deliveries carrying "+key, func(got []string) bool { return count(got, key) >= 2 })
		if n := count(got, key); n != 2 {
			t.Errorf("receiver saw key %s %d times for two deliveries, want 2", key, n)
		}
		return
	}
	// A later effect shows the receiver has caught up; by then a second
	// copy of key would have shown up too.
	marker := s.key("marker")
	s.deliver(t, s.effect(t, s.h.Effect, marker))
	got := s.waitFor(t, "receiver sees "+key+" and the later "+marker, func(got []string) bool {
		return count(got, key) > 0 && count(got, marker) > 0
	})
	if n := count(got, key); n != 1 {
		t.Errorf("receiver holds key %s %d times after a redelivery, want once (Dedupes is set)", key, n)
	}
}

func (s *suite) testPermanent(t *testing.T) {
	if s.h.Permanent == nil {
		t.Skip("Harness.Permanent is nil: this receiver cannot be made to reject an effect for good; permanent failures are not checked")
	}
	key := s.key("permanent")
	retry, err := s.perform(t, t.Context(), s.effect(t, s.h.Permanent, key), performTimeout)
	switch {
	case err == nil:
		t.Errorf("Perform(%s) succeeded, want a permanent failure", key)
	case retry:
		t.Errorf("Perform(%s) = retry true, %v; want retry false for a permanent failure", key, err)
	}
}

func (s *suite) testRetryable(t *testing.T) {
	if s.h.Retryable == nil {
		t.Skip("Harness.Retryable is nil: this receiver cannot be made to fail transiently; retryable failures are not checked")
	}
	key := s.key("retryable")
	retry, err := s.perform(t, t.Context(), s.effect(t, s.h.Retryable, key), performTimeout)
	switch {
	case err == nil:
		t.Errorf("Perform(%s) succeeded, want a transient failure", key)
	case !retry:
		t.Errorf("Perform(%s) = retry false, %v; want retry true for a transient failure", key, err)
	}
}

func (s *suite) testUndecodable(t *testing.T) {
	cases := []struct {
		name string
		data string
	}{
		{"not JSON", `this is not json`},
		{"truncated object", `{"`},
		{"array", `[1, 2, 3]`},
		{"number", `42`},
		{"string", `"hello"`},
		{"empty", ``},
	}
	var keys []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := s.key("garbage")
			keys = append(keys, key)
			e := s.effect(t, s.h.Effect, key)
			e.Data = json.RawMessage(c.data)
			retry, err := s.perform(t, t.Context(), e, performTimeout)
			switch {
			case err == nil:
				t.Errorf("Perform with Data %q succeeded, want a permanent failure", c.data)
			case retry:
				t.Errorf("Perform with Data %q = retry true, %v; want retry false: the same data fails again", c.data, err)
			}
		})
	}
	marker := s.key("marker")
	s.deliver(t, s.effect(t, s.h.Effect, marker))
	got := s.waitFor(t, "receiver sees "+marker, func(got []string) bool { return count(got, marker) > 0 })
	for _, k := range keys {
		if count(got, k) > 0 {
			t.Errorf("receiver saw %s, whose Data was not the kind's wire form", k)
		}
	}
}

func (s *suite) testCancelledContext(t *testing.T) {
	key := s.key("cancelled")
	e := s.effect(t, s.h.Effect, key)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	retry, err := s.perform(t, ctx, e, cancelTimeout)
	if err == nil {
		t.Fatalf("Perform(%s) with a cancelled context succeeded, want an error", key)
	}
	if !retry {
		t.Errorf("Perform(%s) with a cancelled context = retry false, %v; want retry true: the effect is not at fault", key, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Perform(%s) with a cancelled context = %v; want an error matching context.Canceled", key, err)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	const n = 8
	keys := make([]string, n)
	effects := make([]*actions.Effect, n)
	for i := range n {
		keys[i] = s.key("concurrent")
		effects[i] = s.effect(t, s.h.Effect, keys[i])
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i, e := range effects {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), performTimeout)
			defer cancel()
			results[i].retry, results[i].err = s.h.Effector.Perform(ctx, e)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Errorf("concurrent Perform(%s) = retry %t, %v; want success", keys[i], r.retry, r.err)
		}
	}
	if t.Failed() {
		return
	}
	s.waitFor(t, fmt.Sprintf("receiver sees all %d concurrent keys", n), func(got []string) bool {
		for _, k := range keys {
			if count(got, k) == 0 {
				return false
			}
		}
		return true
	})
}
