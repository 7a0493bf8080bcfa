package rules

import (
	"time"

	"github.com/expr-lang/expr/vm"
)

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

// Action is one step of a rule's `do` list: *SetAction, *UnsetAction,
// *TagAction, *UntagAction, *EmailAction or *EmitAction.
type Action interface {
	// Kind is the action's name as written in rules ("set", "email", …).
	Kind() string
}

// Assign is one name: value pair of a `set` or of emitted params.
type Assign struct {
	Name  string
	Value *Value
}

// SetAction sets standard profile fields and custom attributes.
type SetAction struct{ Fields []Assign }

// UnsetAction removes standard profile fields or custom attributes.
type UnsetAction struct{ Names []string }

// TagAction adds tags to the profile.
type TagAction struct{ Tags []*Value }

// UntagAction removes tags from the profile.
type UntagAction struct{ Tags []*Value }

// EmailAction sends an email rendered from a template.
type EmailAction struct {
	Template *Template
	// To is the recipient; by default the profile's email.
	To *Value
	// Subject overrides the template's subject when set.
	Subject *Value
	// Marketing emails go only to customers whose newsletter agreement is
	// enabled, and carry an unsubscribe link and List-Unsubscribe headers.
	Marketing bool
	// Links are the signed links the template may use, by name.
	Links []Link
}

// Link is a signed link an email may carry: following it (and confirming)
// emits the event Emit for the customer.
type Link struct {
	Name    string
	Emit    string
	Label   string
	Expires time.Duration
}

// DefaultLinkExpiry is how long a signed link stays valid unless the rule
// says otherwise.
const DefaultLinkExpiry = 7 * 24 * time.Hour

// EmitAction emits a follow-up event for the customer (or for UUID when
// set).
type EmitAction struct {
	Action string
	Label  *Value
	UUID   *Value
	Params []Assign
}

// Kind implements Action.
func (*SetAction) Kind() string { return "set" }

// Kind implements Action.
func (*UnsetAction) Kind() string { return "unset" }

// Kind implements Action.
func (*TagAction) Kind() string { return "tag" }

// Kind implements Action.
func (*UntagAction) Kind() string { return "untag" }

// Kind implements Action.
func (*EmailAction) Kind() string { return "email" }

// Kind implements Action.
func (*EmitAction) Kind() string { return "emit" }

// actionKinds lists the action names in the order the docs give them.
var actionKinds = []string{"set", "unset", "tag", "untag", "email", "emit"}
