package runner

import (
	"time"

	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/profile"
)

// recordFired records in rec when the plan's rules that have a limit
// fired, so that the limit holds for the customer's later events, after
// a restart too. It reports whether it recorded any.
func recordFired(rec *profile.Record, plan *engine.Plan, now time.Time) bool {
	recorded := false
	for _, f := range plan.Fired {
		if f.Limit == nil {
			continue
		}
		if rec.Fired == nil {
			rec.Fired = make(map[string][]time.Time)
		}
		rec.Fired[f.Rule] = f.Limit.Record(rec.Fired[f.Rule], now)
		recorded = true
	}
	return recorded
}
