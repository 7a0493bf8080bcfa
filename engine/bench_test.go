package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// benchEvent is a typical form submission, about 300 bytes.
var benchEvent = []byte(`{"action":"form.submit","label":"Newsletter form","time":"2026-11-28T10:00:00Z",` +
	`"uuid":"6f1c2d1e-8b1a-4c1e-9d3b-2a6f0c9e7d11","site":"shop.example.com","params":{"form_type":"newsletter",` +
	`"email":"john.doe@example.com","firstname":"John","newsletter_agreement_enabled":"enabled"}}`)

// benchRules returns n rules spread over 100 actions; exactly 10 of them
// trigger on form.submit, and all 10 fire for benchEvent. Each has a
// match, a condition and two actions setting two attributes and a tag, as
// the example rules do: three profile changes a rule.
func benchRules(b *testing.B, n int) *rules.Set {
	b.Helper()
	var src strings.Builder
	src.WriteString("rules:\n")
	for i := range n {
		action := "form.submit"
		if i >= 10 {
			action = fmt.Sprintf("ctx%d.act", i%99)
		}
		fmt.Fprintf(&src, `  - name: rule-%d
    on: %s
    match: {form_type: newsletter}
    if: isEmail(params.email) && profile.attributes.newsletterAgreement != "enabled"
    do:
      - set: {email: "${ params.email }", step%d: "${ params.newsletter_agreement_enabled }"}
      - tag: seen-%d
`, i, action, i, i)
	}
	set, err := rules.Parse("bench.yaml", []byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkDecodeEvaluate measures what serving costs per event before any
// I/O: decode and validate the JSON, then evaluate 10 matching rules, with
// 10, 1,000 and 10,000 rules loaded.
func BenchmarkDecodeEvaluate(b *testing.B) {
	p := profile.New("6f1c2d1e-8b1a-4c1e-9d3b-2a6f0c9e7d11", t0)
	for _, n := range []int{10, 1000, 10000} {
		e := New(benchRules(b, n))
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchEvent)))
			for b.Loop() {
				ev, err := event.Decode(benchEvent)
				if err != nil {
					b.Fatal(err)
				}
				plan := e.Evaluate(ev, p, t0)
				// The built-in form step fires first, then the 10 rules.
				if len(plan.Fired) != 11 || plan.Fired[0].Rule != FormRule || len(plan.Errors) != 0 {
					b.Fatalf("fired %d rules, errors %v", len(plan.Fired), plan.Errors)
				}
			}
		})
	}
}

// BenchmarkEvaluate measures evaluation alone, with 1,000 rules loaded and
// 10 matching: rules that change the profile three times each ("changes"),
// and rules whose condition holds only for some customers, so that a
// matching rule tags the customer and the rest do nothing ("conditions").
func BenchmarkEvaluate(b *testing.B) {
	ev, err := event.Decode(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	p := profile.New(ev.UUID, t0)
	b.Run("changes", func(b *testing.B) {
		e := New(benchRules(b, 1000))
		b.ReportAllocs()
		for b.Loop() {
			e.Evaluate(ev, p, t0)
		}
	})
	b.Run("conditions", func(b *testing.B) {
		var src strings.Builder
		src.WriteString("rules:\n")
		for i := range 1000 {
			action := "form.submit"
			if i >= 10 {
				action = fmt.Sprintf("ctx%d.act", i%99)
			}
			fmt.Fprintf(&src, "  - {name: r%d, on: %s, match: {form_type: newsletter}, if: 'isEmail(params.email) && params.firstname == \"John%d\"', do: [{tag: t%d}]}\n", i, action, i%5, i)
		}
		set, err := rules.Parse("bench.yaml", []byte(src.String()))
		if err != nil {
			b.Fatal(err)
		}
		e := New(set)
		b.ReportAllocs()
		for b.Loop() {
			e.Evaluate(ev, p, t0)
		}
	})
}
