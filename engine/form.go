package engine

import (
	"fmt"
	"strings"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// The built-in form step. A form submission (action FormAction) updates
// the profile before any rule sees the event, as the tracking
// documentation's sendFormData defines: the form's standard fields are
// set, each form type becomes a tag, and the fields the form names as
// attributes become custom attributes. Rules then see the updated profile.
const (
	// FormAction is the action of a form submission.
	FormAction = event.ActionFormSubmit
	// FormRule is the name the built-in step has in plans and reports; no
	// rule can have it, since rule names start with a letter or digit.
	FormRule = "@form"
)

// form runs the built-in form step. Standard fields are set from the
// params of the same name when not empty (an empty value never erases);
// form_type's types become tags; the params named in form_attributes
// become attributes (a standard field named there is set as the standard
// field it is). The step is atomic like a rule: if any part is
// invalid (a form type that is not a tag, an attribute that is not a
// name), nothing of it applies and the plan records the error; the rules
// still run.
func (x *evaluation) form() {
	params := x.ev.Params
	if len(params) == 0 {
		return
	}
	start := len(x.effects)
	updated := x.work.Updated
	st := &x.step
	st.rule, st.index = FormRule, 0
	fail := func(step int, kind string, err error) {
		for i := len(x.effects) - 1; i >= start; i-- {
			if c := x.effects[i].Change; c != nil {
				x.work.Revert(c)
			}
		}
		if len(x.effects) > start {
			x.work.Updated = updated
			x.stale = true
		}
		x.effects = x.effects[:start]
		x.plan.Errors = append(x.plan.Errors, &RuleError{Rule: FormRule, EventID: x.ev.ID, Step: step, Kind: kind, Err: err})
	}
	for _, name := range profile.StandardFields {
		v, ok := params[name]
		if !ok {
			continue
		}
		s := strings.TrimSpace(rules.Format(v))
		if s == "" {
			continue
		}
		value := v // the param itself when it needs no trimming: no new box
		if str, ok := v.(string); !ok || str != s {
			value = s
		}
		if err := st.Change(profile.OpSet, name, value); err != nil {
			fail(0, "set", err)
			return
		}
	}
	st.index = 1
	if types, _ := params[event.ParamFormType].(string); types != "" {
		for t := range strings.SplitSeq(types, ",") {
			if !profile.ValidTag(t) {
				fail(1, "tag", fmt.Errorf("%s: form type %q is not a tag; use letters, digits, -, _, . and :, at most 64 characters, types separated by commas without spaces", event.ParamFormType, t))
				return
			}
			if err := st.Change(profile.OpTag, t, nil); err != nil {
				fail(1, "tag", err)
				return
			}
		}
	}
	st.index = 2
	if names, _ := params[event.ParamFormAttributes].(string); names != "" {
		for n := range strings.SplitSeq(names, ",") {
			v, ok := params[n]
			if !ok || v == "" || profile.IsStandardField(n) {
				continue // a standard field was set above
			}
			if !profile.ValidAttribute(n) || isFormParam(n) {
				fail(2, "set", fmt.Errorf("%s: %q is not a custom attribute name; use letters, digits and _, starting with a letter, at most 64 characters", event.ParamFormAttributes, n))
				return
			}
			if err := st.Change(profile.OpSet, n, v); err != nil {
				fail(2, "set", err)
				return
			}
		}
	}
	if len(x.effects) > start {
		x.plan.Fired = append(x.plan.Fired, Fired{Rule: FormRule, Effects: x.effects[start:len(x.effects):len(x.effects)]})
	}
}

// formRoom estimates what the form step adds to a plan with params: a
// change for each param (a standard field or an attribute it may set) and
// each form type.
func formRoom(params map[string]any) room {
	n := room{changes: len(params)}
	if types, _ := params[event.ParamFormType].(string); types != "" {
		k := strings.Count(types, ",") + 1
		n.changes += k
		n.tags += k
	}
	if names, _ := params[event.ParamFormAttributes].(string); names != "" {
		n.attrs += strings.Count(names, ",") + 1
	}
	return n
}

func isFormParam(n string) bool {
	return n == event.ParamFormType || n == event.ParamFormAttributes || n == event.ParamNewsletterAgreement
}
