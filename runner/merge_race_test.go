package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
)

var errCrash = errors.New("injected crash")

// flakyStore fails the failAt-th write (Put, ClaimEmail or ReleaseEmail)
// once, as if the engine crashed just before it or, with after, just after
// it: the write is done, the caller never learns it.
type flakyStore struct {
	profile.Store
	mu      sync.Mutex
	writes  int
	failAt  int // 0: never
	after   bool
	crashed bool
}

func (f *flakyStore) arm(n int, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes, f.failAt, f.after, f.crashed = 0, n, after, false
}

func (f *flakyStore) crash() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.writes == f.failAt {
		f.crashed = true
		return true
	}
	return false
}

func (f *flakyStore) Put(ctx context.Context, uuid string, r *profile.Record, rev uint64) (uint64, error) {
	if !f.crash() {
		return f.Store.Put(ctx, uuid, r, rev)
	}
	if f.after {
		_, _ = f.Store.Put(ctx, uuid, r, rev)
	}
	return 0, fmt.Errorf("put %s: %w", uuid, errCrash)
}

func (f *flakyStore) ClaimEmail(ctx context.Context, email, uuid string) (string, error) {
	if !f.crash() {
		return f.Store.ClaimEmail(ctx, email, uuid)
	}
	if f.after {
		_, _ = f.Store.ClaimEmail(ctx, email, uuid)
	}
	return "", fmt.Errorf("claim: %w", errCrash)
}

func (f *flakyStore) ReleaseEmail(ctx context.Context, email, uuid string) error {
	if !f.crash() {
		return f.Store.ReleaseEmail(ctx, email, uuid)
	}
	if f.after {
		_ = f.Store.ReleaseEmail(ctx, email, uuid)
	}
	return fmt.Errorf("release: %w", errCrash)
}

// deliver hands ev to the applier until it is done, as the consumer
// redelivers an event that failed.
func (f *mergeFixture) deliver(t *testing.T, ev *event.Event) {
	t.Helper()
	for range 20 {
		if err := f.runner.Handle(t.Context(), ev); err == nil {
			return
		} else if !errors.Is(err, errCrash) && !errors.As(err, new(*RetryError)) {
			t.Fatalf("Handle %s: %v", ev.ID, err)
		}
	}
	t.Fatalf("Handle %s: still failing after 20 deliveries", ev.ID)
}

// crashScenarios are event sequences whose outcome must not depend on
// where the applier crashes.
var crashScenarios = []struct {
	name   string
	setup  func(t *testing.T, f *mergeFixture)
	events []*event.Event
	uuids  []string // records compared
	emails []string // owners compared
}{
	{
		name:   "merge into a known customer",
		setup:  func(t *testing.T, f *mergeFixture) { f.setUpKnownAndAnonymous(t) },
		events: []*event.Event{mergeEvent(), visit("a-visit-3", "visitor", "/checkout")},
		uuids:  []string{"anna", "visitor"},
		emails: []string{"anna@example.com"},
	},
	{
		name: "a new address",
		setup: func(t *testing.T, f *mergeFixture) {
			f.handle(t, visit("v0", "visitor", "/"))
		},
		events: []*event.Event{form("f1", "visitor", "new@example.com")},
		uuids:  []string{"visitor"},
		emails: []string{"new@example.com"},
	},
	{
		name: "an anonymous customer losing the claim merges into the owner",
		setup: func(t *testing.T, f *mergeFixture) {
			f.setUpKnownAndAnonymous(t)
		},
		events: []*event.Event{{ID: "r1", Action: "test.rename", Time: t0, UUID: "visitor", Params: map[string]any{"to": "anna@example.com"}}},
		uuids:  []string{"anna", "visitor"},
		emails: []string{"anna@example.com"},
	},
	{
		name: "a known customer changing address",
		setup: func(t *testing.T, f *mergeFixture) {
			f.handle(t, form("f0", "bob", "bob@example.com"))
		},
		events: []*event.Event{{ID: "r1", Action: "test.rename", Time: t0, UUID: "bob", Params: map[string]any{"to": "robert@example.com"}}},
		uuids:  []string{"bob"},
		emails: []string{"bob@example.com", "robert@example.com"},
	},
}

// outcome is what a scenario leaves: records, owners, effects performed.
func (f *mergeFixture) outcome(t *testing.T, uuids, emails []string) string {
	t.Helper()
	out := map[string]any{"performed": f.done.distinct()}
	for _, uuid := range uuids {
		out["record "+uuid] = f.get(t, uuid)
	}
	for _, e := range emails {
		out["owner "+e] = f.owner(t, e)
	}
	return jsonOf(out)
}

// A crash before or after any write of a merge, then the redelivery, ends
// as if nothing had happened: no merge twice, no effect lost.
func TestMergeSurvivesCrashes(t *testing.T) {
	for _, st := range stores {
		for _, sc := range crashScenarios {
			t.Run(st.name+"/"+sc.name, func(t *testing.T) {
				run := func(failAt int, after bool) (string, bool) {
					flaky := &flakyStore{Store: st.new(t)}
					f := newMergeFixture(t, flaky)
					sc.setup(t, f)
					flaky.arm(failAt, after)
					for _, ev := range sc.events {
						f.deliver(t, ev)
					}
					return f.outcome(t, sc.uuids, sc.emails), flaky.crashed
				}
				want, _ := run(0, false)
				for _, after := range []bool{false, true} {
					for n := 1; ; n++ {
						got, crashed := run(n, after)
						if !crashed {
							if n < 3 {
								t.Errorf("only %d writes", n-1)
							}
							break
						}
						if got != want {
							t.Errorf("crash %s write %d:\n got %s\nwant %s", map[bool]string{false: "before", true: "after"}[after], n, got, want)
						}
					}
				}
			})
		}
	}
}

// Anonymous customers merging into one owner at once, while the owner's
// own events are applied: every merge and every event is applied once.
func TestConcurrentMergesIntoOneOwner(t *testing.T) {
	const visitors, ownVisits = 6, 8
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			f.handle(t, form("k-form", "anna", "anna@example.com"))
			for i := range visitors {
				f.handle(t, visit(fmt.Sprintf("v%d-visit", i), fmt.Sprintf("visitor-%d", i), "/"))
			}
			var wg sync.WaitGroup
			for i := range visitors {
				wg.Go(func() {
					f.deliver(t, form(fmt.Sprintf("v%d-form", i), fmt.Sprintf("visitor-%d", i), "anna@example.com"))
				})
			}
			wg.Go(func() {
				for i := range ownVisits {
					f.deliver(t, visit(fmt.Sprintf("k-visit-%d", i), "anna", fmt.Sprintf("/account/%d", i)))
				}
			})
			wg.Wait()

			anna := f.get(t, "anna")
			var from []string
			for _, m := range anna.Merges {
				from = append(from, m.From)
			}
			slices.Sort(from)
			if want := []string{"visitor-0", "visitor-1", "visitor-2", "visitor-3", "visitor-4", "visitor-5"}; !slices.Equal(from, want) {
				t.Errorf("merged %v, want each of %v once", from, want)
			}
			for i := range visitors {
				uuid := fmt.Sprintf("visitor-%d", i)
				if rec := f.get(t, uuid); rec.MergedInto != "anna" || rec.Profile != nil {
					t.Errorf("%s: %s", uuid, jsonOf(rec))
				}
				for _, id := range []string{fmt.Sprintf("v%d-visit", i), fmt.Sprintf("v%d-form", i)} {
					if !anna.HasApplied(id) {
						t.Errorf("anna has not applied %s", id)
					}
				}
			}
			for i := range ownVisits {
				if id := fmt.Sprintf("k-visit-%d", i); !anna.HasApplied(id) {
					t.Errorf("anna has not applied %s", id)
				}
			}
			if len(anna.Outbox) != 0 {
				t.Errorf("outbox left: %d", len(anna.Outbox))
			}
			if n := len(f.done.distinct()); n != visitors+1 {
				t.Errorf("%d distinct effects performed, want %d welcomes", n, visitors+1)
			}
		})
	}
}

// Anonymous customers giving one new address at once: exactly one claims
// it; the others lose, merge into the winner and are applied there.
func TestConcurrentClaimsOfNewAddress(t *testing.T) {
	const rounds, racers = 4, 3
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			for round := range rounds {
				email := fmt.Sprintf("new-%d@example.com", round)
				uuids := make([]string, racers)
				for i := range racers {
					uuids[i] = fmt.Sprintf("r%d-c%d", round, i)
					f.handle(t, visit(uuids[i]+"-visit", uuids[i], "/"))
				}
				var wg sync.WaitGroup
				for i := range racers {
					wg.Go(func() { f.deliver(t, form(uuids[i]+"-form", uuids[i], email)) })
				}
				wg.Wait()

				winner := f.owner(t, email)
				if !slices.Contains(uuids, winner) {
					t.Fatalf("round %d: owner %q, want one of %v", round, winner, uuids)
				}
				w := f.get(t, winner)
				if w.IsAlias() || !profile.SameEmail(w.Profile.Email, email) {
					t.Errorf("round %d: winner %s: %s", round, winner, jsonOf(w))
				}
				for _, uuid := range uuids {
					if !w.HasApplied(uuid+"-form") || !w.HasApplied(uuid+"-visit") {
						t.Errorf("round %d: the winner has not applied %s's events: %v", round, uuid, w.Applied)
					}
					if uuid == winner {
						continue
					}
					if rec := f.get(t, uuid); rec.MergedInto != winner || rec.Profile != nil {
						t.Errorf("round %d: loser %s: %s", round, uuid, jsonOf(rec))
					}
					if !slices.ContainsFunc(w.Merges, func(m profile.Merge) bool { return m.From == uuid }) {
						t.Errorf("round %d: the winner's history lacks %s: %s", round, uuid, jsonOf(w.Merges))
					}
				}
				if len(w.Merges) != racers-1 {
					t.Errorf("round %d: %d merges, want %d", round, len(w.Merges), racers-1)
				}
			}
		})
	}
}
