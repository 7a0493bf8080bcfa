package engine

import "github.com/herald-events/herald/rules"

// held reports whether r's limit holds it back, recording it in the plan
// when it does.
func (x *evaluation) held(r *rules.Rule) bool {
	if r.Limit == nil {
		return false
	}
	reason, held := r.Limit.Held(x.fired[r.Name], x.now)
	if held {
		x.plan.Held = append(x.plan.Held, Held{Rule: r.Name, Reason: reason})
	}
	return held
}
