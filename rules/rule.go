package rules

import "github.com/expr-lang/expr/vm"

// Rule is one compiled automation: when an event whose action matches On
// arrives, whose params satisfy Match and for which If holds, the actions in
// Do run in order.
type Rule struct {
	Name        string
	Description string
	Enabled     bool
	// On lists the actions the rule triggers on; an entry may be a glob
	// such as `newsletter.*`.
	On    []string
	Match []Match
	// If is the condition, nil when the rule has none.
	If *Condition
	Do []Action
	// Limit caps how often the rule fires for a customer (limit:,
	// once:); nil when it does not.
	Limit *Limit

	// Where the rule is written.
	File string
	Line int

	order int // position in the set, for a stable firing order
}

// Match requires the event parameter Param to equal one of Values, compared
// as text (so `qty: 3` matches both 3 and "3").
type Match struct {
	Param  string
	Values []string
}

// Matches reports whether params satisfy every Match of the rule.
func (r *Rule) Matches(params map[string]any) bool {
	for _, m := range r.Match {
		v, ok := params[m.Param]
		if !ok {
			return false
		}
		s, isString := v.(string)
		if !isString {
			s = Format(v)
		}
		found := false
		for _, want := range m.Values {
			if s == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Condition is a compiled boolean `if` expression.
type Condition struct {
	Src     string
	Program *vm.Program
}

// Assign is one name: value pair of a `set` or of emitted params.
type Assign struct {
	Name  string
	Value *Value
}
