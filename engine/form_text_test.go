package engine

import (
	"strings"
	"testing"

	"github.com/herald-events/herald/event"
)

// TestFormStepRefusesLineBreaks checks that a form field with a line break,
// which the event decoder accepts as a parameter value, cannot reach a
// standard profile field (and so an email's headers or body) through the
// form step or a rule's set: each fails with Apply's error, as a whole, and
// the other rules still run.
func TestFormStepRefusesLineBreaks(t *testing.T) {
	e := New(mustRules(t, `
  - name: copies-firstname
    on: form.submit
    do:
      - tag: copying
      - set: {firstname: "${ params.firstname }"}
  - name: sees-the-form
    on: form.submit
    do:
      - tag: seen
`))
	ev, err := event.Decode([]byte(`{"action":"form.submit","uuid":"c-1","params":{` +
		`"email":"ann@example.com","firstname":"Ann\r\nBcc: x@y.z","form_type":"newsletter"}}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	plan := e.Evaluate(ev, nil, t0)

	if got, want := changesText(plan), "tag seen"; got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
	if got, want := firedNames(plan), "sees-the-form"; got != want {
		t.Errorf("fired %q, want %q", got, want)
	}
	if p := plan.After; p.Firstname != "" || p.Email != "" || p.HasTag("newsletter") || p.HasTag("copying") {
		t.Errorf("after %+v: the failed step and rule left changes", p)
	}
	const why = "set firstname: line break or control character not allowed in a standard field"
	if len(plan.Errors) != 2 {
		t.Fatalf("errors %v, want the form step's and copies-firstname's", plan.Errors)
	}
	for i, want := range []struct {
		rule string
		step int
	}{{FormRule, 0}, {"copies-firstname", 1}} {
		re := plan.Errors[i]
		if re.Rule != want.rule || re.Step != want.step || re.Kind != "set" || !strings.HasSuffix(re.Error(), why) {
			t.Errorf("error %d: %v (rule %q, step %d, kind %q), want rule %q do[%d] set: %s", i, re, re.Rule, re.Step, re.Kind, want.rule, want.step, why)
		}
	}
}

// TestFormStepTrimsThenChecks checks that line breaks at the ends of a
// form field, which the form step trims with the spaces, are no error,
// and that a control character in an event built in code (which Decode
// would have refused) fails the step too.
func TestFormStepTrimsThenChecks(t *testing.T) {
	e := New(mustRules(t, `
  - name: other
    on: page.visit
    do:
      - tag: visited
`))
	plan := e.Evaluate(newEvent("form.submit", map[string]any{"firstname": "\r\nAnn\r\n", "city": "Kra\u0000ków"}), nil, t0)
	if got, want := changesText(plan), ""; got != want {
		t.Errorf("changes %q, want %q", got, want)
	}
	if len(plan.Errors) != 1 || !strings.HasSuffix(plan.Errors[0].Error(), "set city: line break or control character not allowed in a standard field") {
		t.Errorf("errors %v", plan.Errors)
	}
	plan = e.Evaluate(newEvent("form.submit", map[string]any{"firstname": "\r\nAnn\r\n"}), nil, t0)
	if len(plan.Errors) != 0 || plan.After.Firstname != "Ann" {
		t.Errorf("firstname %q, errors %v", plan.After.Firstname, plan.Errors)
	}
}
