package engine

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/herald-events/herald/profile"
)

// The plan's After shares nothing with the profile it was evaluated
// against: the runner stores After, and a change to either must not show
// in the other.
func TestAfterSharesNothingWithBefore(t *testing.T) {
	e := New(mustRules(t, `
  - name: r
    on: a.b
    do:
      - set: {plan: pro}
      - tag: vip
  - name: only-tags
    on: c.d
    do: [{tag: vip}]
  - name: only-fields
    on: e.f
    do: [{set: {firstname: Ann}}]
`))
	for _, action := range []string{"a.b", "c.d", "e.f"} {
		t.Run(action, func(t *testing.T) {
			before := &profile.Profile{UUID: "c-1", Attributes: map[string]any{"score": 1.0}, Tags: []string{"a", "z"}}
			want := before.Clone()
			plan := e.Evaluate(newEvent(action, nil), before, t0)
			if len(plan.Errors) > 0 || len(plan.Changes()) == 0 {
				t.Fatalf("errors %v, changes %s", plan.Errors, changesText(plan))
			}
			if !reflect.DeepEqual(before, want) {
				t.Fatalf("Evaluate changed the caller's profile: %+v", before)
			}
			after := plan.After.Clone()
			before.Attributes["score"] = 2.0
			before.Attributes["new"] = true
			before.Tags[0] = "changed"
			before.Tags = append(before.Tags[:1], "b", "c", "d")
			if !reflect.DeepEqual(plan.After, after) {
				t.Fatalf("a change to Before showed in After: %+v", plan.After)
			}
			plan.After.Attributes["score"] = 3.0
			plan.After.Tags[0] = "again"
			if before.Attributes["score"] != 2.0 || before.Tags[0] != "changed" {
				t.Fatalf("a change to After showed in Before: %+v", before)
			}
		})
	}
}

// A plan that changes nothing leaves the profile as it is, and does not
// copy it.
func TestUnchangedProfileIsNotCopied(t *testing.T) {
	e := New(mustRules(t, `
  - name: same
    on: a.b
    do:
      - set: {plan: pro, email: "ann@example.com"}
      - unset: [phone, gone]
      - tag: vip
      - untag: never
`))
	before := &profile.Profile{UUID: "c-1", Email: "ann@example.com", Attributes: map[string]any{"plan": "pro"}, Tags: []string{"vip"}}
	plan := e.Evaluate(newEvent("a.b", nil), before, t0)
	if len(plan.Errors) > 0 || firedNames(plan) != "same" || len(plan.Changes()) != 0 {
		t.Fatalf("fired %s, errors %v, changes %s", firedNames(plan), plan.Errors, changesText(plan))
	}
	if plan.After != before {
		t.Fatal("a plan without changes copied the profile")
	}
}

// Evaluations reuse their state; none may see another's. Concurrent
// evaluations of one profile, and evaluations one after another, give
// the same plans as a fresh engine.
func TestEvaluationsShareNothing(t *testing.T) {
	src := `
  - name: count
    on: a.b
    if: profile.attributes.n == nil || profile.attributes.n < 3
    do:
      - set: {n: "${ (profile.attributes.n ?? 0) + 1 }", who: "${ params.who }"}
      - tag: "seen-${ params.who }"
  - name: long
    on: a.b
    if: params.long != nil
    do:
      - set: {length: "${ len(map(1..10, {params.long + \"y\"})) }"}
`
	e := New(mustRules(t, src))
	before := &profile.Profile{UUID: "c-1", Attributes: map[string]any{"n": 1.0}}
	want := map[string]*Plan{}
	for i := range 3 {
		who := fmt.Sprintf("w%d", i)
		want[who] = New(mustRules(t, src)).Evaluate(newEvent("a.b", map[string]any{"who": who}), before, t0)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				who := fmt.Sprintf("w%d", (i+j)%3)
				got := e.Evaluate(newEvent("a.b", map[string]any{"who": who}), before, t0)
				if !reflect.DeepEqual(got, want[who]) {
					t.Errorf("%s: plan %s differs from a fresh engine's", who, changesText(got))
					return
				}
			}
		})
	}
	wg.Wait()
	if before.Attributes["n"] != 1.0 || len(before.Attributes) != 1 || before.Tags != nil {
		t.Fatalf("the profile changed: %+v", before)
	}
	// Each evaluation has the whole MaxConcatBytes for itself: 600 kB a
	// time, 3 MB in all.
	long := map[string]any{"who": "x", "long": strings.Repeat("x", 60_000)}
	for i := range 5 {
		if plan := e.Evaluate(newEvent("a.b", long), before, t0); len(plan.Errors) > 0 || plan.After.Attributes["length"] != 10.0 {
			t.Fatalf("evaluation %d: errors %v, length %v", i, plan.Errors, plan.After.Attributes["length"])
		}
	}
}
