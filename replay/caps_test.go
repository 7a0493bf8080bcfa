package replay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

// A rule with a limit fires as often as its sliding window allows, and is
// reported held back, with the reason, when it does not.
func TestLimitHoldsARuleBackInItsWindow(t *testing.T) {
	set, err := rules.Parse("rules.yaml", []byte(`rules:
  - name: daily
    on: page.visit
    limit: {count: 1, per: 24h}
    do:
      - set: {visits: "${ (profile.attributes.visits ?? 0) + 1 }"}
  - name: welcome
    on: page.visit
    once: true
    do:
      - tag: welcomed
`))
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	visit := func(id string, at time.Duration) *Result {
		t.Helper()
		res, err := r.Run(context.Background(), &event.Event{ID: id, Action: "page.visit", Time: t0.Add(at), UUID: "c-1"})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	fired := func(res *Result) string {
		var names []string
		for _, f := range res.Plan.Fired {
			names = append(names, f.Rule)
		}
		for _, h := range res.Plan.Held {
			names = append(names, "held "+h.Rule+": "+h.Reason)
		}
		return strings.Join(names, "; ")
	}
	for _, c := range []struct {
		id   string
		at   time.Duration
		want string
	}{
		{"01KB0000000000000000000001", 0, "daily; welcome"},
		{"01KB0000000000000000000002", 23 * time.Hour, "held daily: at most 1 per 1d, last fired 2026-11-28T10:00:00Z; held welcome: once per customer, last fired 2026-11-28T10:00:00Z"},
		// The window slides: 24 hours after the first fire, the next may.
		{"01KB0000000000000000000003", 24*time.Hour + time.Second, "daily; held welcome: once per customer, last fired 2026-11-28T10:00:00Z"},
		{"01KB0000000000000000000004", 30 * time.Hour, "held daily: at most 1 per 1d, last fired 2026-11-29T10:00:01Z; held welcome: once per customer, last fired 2026-11-28T10:00:00Z"},
	} {
		if got := fired(visit(c.id, c.at)); got != c.want {
			t.Errorf("visit at +%s: %s\nwant %s", c.at, got, c.want)
		}
	}
}
