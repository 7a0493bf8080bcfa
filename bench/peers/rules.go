// Package peers measures Herald's in-process pipeline, decoding an event
// and evaluating the rules for it, next to two peers given the same rules
// and the same event: grule-rule-engine, and a naive loop that runs every
// rule's compiled expr condition for every event.
//
// It is a module of its own, so that Herald does not depend on grule. The
// benchmarks in peers_test.go are what `make bench` runs; see
// bench/README.md.
package peers

import (
	"fmt"
	"strings"
)

// Matching is how many rules of every set fire for Event.
const Matching = 10

// Actions is how many actions a rule set's rules trigger on.
const Actions = 100

// Event is a typical form submission, about 300 bytes. Every Matching rule
// fires for it.
var Event = []byte(`{"action":"form.submit","label":"Newsletter form","time":"2026-11-28T10:00:00Z",` +
	`"uuid":"6f1c2d1e-8b1a-4c1e-9d3b-2a6f0c9e7d11","site":"shop.example.com","params":{"form_type":"newsletter",` +
	`"email":"john.doe@example.com","firstname":"John","newsletter_agreement_enabled":"enabled"}}`)

// ruleAction is the action rule i triggers on: the first Matching rules
// trigger on form.submit, the others on one of 99 other actions.
func ruleAction(i int) string {
	if i < Matching {
		return "form.submit"
	}
	return fmt.Sprintf("ctx%d.act", i%(Actions-1))
}

// HeraldRules returns n rules in Herald's YAML, spread over Actions actions,
// Matching of them on form.submit. Each has a match, a condition and
// three profile changes: two attributes and a tag. It is the shape of
// engine's BenchmarkDecodeEvaluate.
func HeraldRules(n int) []byte {
	var src strings.Builder
	src.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&src, `  - name: rule-%d
    on: %s
    match: {form_type: newsletter}
    if: isEmail(params.email) && profile.attributes.newsletterAgreement != "enabled"
    do:
      - set: {email: "${ params.email }", step%d: "${ params.newsletter_agreement_enabled }"}
      - tag: seen-%d
`, i, ruleAction(i), i, i)
	}
	return []byte(src.String())
}

// GruleRules returns the same n rules in grule's GRL. The trigger and the
// match become conditions; the then part makes the same three changes and
// retracts the rule, so that it fires once per event, as Herald's do. Each
// call names its rule: grule runs a call it has seen once in a cycle only
// once, however many rules make it.
func GruleRules(n int) []byte {
	var src strings.Builder
	for i := range n {
		fmt.Fprintf(&src, `rule R%d "rule-%d" {
  when
    Ev.Action == %q && Ev.Param("form_type") == "newsletter" &&
    Fn.IsEmail(Ev.Param("email")) && Prof.Attribute("newsletterAgreement") != "enabled"
  then
    Out.Set("R%d", "email", Ev.Param("email"));
    Out.Set("R%d", "step%d", Ev.Param("newsletter_agreement_enabled"));
    Out.Tag("seen-%d");
    Retract("R%d");
}
`, i, i, ruleAction(i), i, i, i, i, i)
	}
	return []byte(src.String())
}

// NaiveRule is one rule for the naive loop: the trigger, the match and the
// condition in one expr expression, and the values of its changes.
type NaiveRule struct {
	Name      string
	Condition string
	// Set maps attribute names to expr expressions; Tag is a tag to add.
	Set map[string]string
	Tag string
}

// NaiveRules returns the same n rules for the naive loop.
func NaiveRules(n int) []NaiveRule {
	out := make([]NaiveRule, n)
	for i := range out {
		out[i] = NaiveRule{
			Name: fmt.Sprintf("rule-%d", i),
			Condition: fmt.Sprintf(`action == %q && params.form_type == "newsletter" && `+
				`isEmail(params.email) && profile.attributes.newsletterAgreement != "enabled"`, ruleAction(i)),
			Set: map[string]string{"email": "params.email", fmt.Sprintf("step%d", i): "params.newsletter_agreement_enabled"},
			Tag: fmt.Sprintf("seen-%d", i),
		}
	}
	return out
}
