package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/profile"
)

// explainText renders an explanation compactly for the tests: a line per
// rule with its reason, then a line per part.
func explainText(ex *Explanation) string {
	var b strings.Builder
	for _, r := range ex.Rules {
		b.WriteString(r.Rule + ": " + r.Reason() + "\n")
		for _, p := range r.Parts {
			v := ShowValue(p.Value)
			if p.Err != "" {
				v = "error: " + p.Err
			}
			b.WriteString(strings.Repeat("  ", p.Depth+1) + p.Src + " = " + v + "\n")
		}
	}
	return b.String()
}

func TestExplain(t *testing.T) {
	e := New(mustRules(t, `
  - name: request
    on: form.submit
    match:
      form_type: newsletter
    if: isEmail(params.email) && profile.attributes.agreement != "enabled"
    do:
      - set: {agreement: confirmation}
  - name: sees-request
    on: form.submit
    if: profile.attributes.agreement == "confirmation" || params.vip == true
    do:
      - tag: asked
  - name: other-type
    on: form.submit
    match:
      form_type: [contact, order]
    do:
      - tag: x
  - name: needs-param
    on: "form.*"
    match:
      campaign: spring
    do:
      - tag: x
  - name: off
    enabled: false
    on: form.submit
    do:
      - tag: x
  - name: fails
    on: form.submit
    if: params.email > 3
    do:
      - tag: x
  - name: total-too-small
    on: form.submit
    if: not (params.total >= 500) && hasTag("vip")
    do:
      - tag: x
  - name: elsewhere
    on: page.visit
    do:
      - tag: x
`))
	ev := newEvent("form.submit", map[string]any{"form_type": "newsletter", "email": "anna@example.com", "total": 12})
	plan, ex := e.Explain(ev, nil, t0)
	if got := firedNames(plan); got != "@form,request,sees-request" {
		t.Fatalf("fired %s", got)
	}
	want := `request: fired
  isEmail(params.email) = true
  profile.attributes.agreement != "enabled" = true
    profile.attributes.agreement = nil
sees-request: fired
  profile.attributes.agreement == "confirmation" = true
    profile.attributes.agreement = "confirmation"
  params.vip == true = false
    params.vip = nil
other-type: match form_type: "newsletter" is not any of "contact", "order"
needs-param: match campaign: the event has no campaign
off: disabled (enabled: false)
fails: error: invalid operation: string > int (1:14)
  params.email > 3 = error: invalid operation: string > int (1:14)
    params.email = "anna@example.com"
total-too-small: if is false
  not (params.total >= 500) = true
    params.total = 12
  hasTag("vip") = false
`
	if got := explainText(ex); got != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", got, want)
	}

	// The profile each rule saw: with an enabled agreement, request's
	// condition fails on its second part.
	p := &profile.Profile{UUID: "c-1", Attributes: map[string]any{"agreement": "enabled"}}
	_, ex = e.Explain(ev, p, t0)
	if r := ex.Rules[0]; r.Fired || r.Reason() != "if is false" || len(r.Parts) != 3 || r.Parts[1].Value != false || r.Parts[2].Value != "enabled" {
		t.Errorf("request with agreement enabled: %s", explainText(&Explanation{Rules: []*RuleExplanation{r}}))
	}
}

// A rule its limit holds back is explained as such.
func TestExplainHeld(t *testing.T) {
	set := mustRules(t, `
  - name: welcome-once
    on: page.visit
    once: true
    do:
      - tag: visitor
`)
	e := New(set)
	ev := newEvent("page.visit", nil)
	plan := e.EvaluateFired(ev, nil, map[string][]time.Time{"welcome-once": {t0.Add(-time.Hour)}}, t0)
	ex := ExplainPlan(set, plan, nil, t0)
	if len(ex.Rules) != 1 || ex.Rules[0].Fired || !strings.HasPrefix(ex.Rules[0].Reason(), "held back by its limit: ") {
		t.Fatalf("explanation: %s", explainText(ex))
	}
	_, ex = e.Explain(ev, nil, t0)
	if r := ex.Rules[0]; !r.Fired || r.Reason() != "fired" {
		t.Errorf("first time: %s", explainText(ex))
	}
}
