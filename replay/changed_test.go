package replay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

// A rule on profile.changed runs once per event that changes what it
// watches, sees the old and new values, and does not run again for its
// own changes, even when they touch what it watches.
func TestProfileChangedRunsOncePerChange(t *testing.T) {
	set, err := rules.Parse("rules.yaml", []byte(`rules:
  - name: subscribe
    on: newsletter.subscribe
    do:
      - set: {newsletterAgreement: enabled}
  - name: unsubscribe
    on: newsletter.leave
    do:
      - set: {newsletterAgreement: disabled}
  - name: visit
    on: page.visit
    do:
      - tag: visitor
  - name: agreement-changed
    on: profile.changed
    changed: [newsletterAgreement]
    do:
      - set:
          agreementLog: '${ (profile.attributes.agreementLog ?? "") + (old.newsletterAgreement ?? "none") + ">" + new.newsletterAgreement + ";" }'
          # A change of the watched attribute, which must not loop.
          newsletterAgreement: ${ new.newsletterAgreement }
          changes: ${ (profile.attributes.changes ?? 0) + 1 }
      - emit: {action: agreement.changed, params: {to: "${ new.newsletterAgreement }"}}
  - name: tags-changed
    on: profile.changed
    changed: tags
    if: '"visitor" in new.tags && "tags" in changed'
    do:
      - set: {sawVisitor: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	run := func(id, action string, at time.Duration) []*Result {
		t.Helper()
		res, err := r.Run(context.Background(), &event.Event{ID: id, Action: action, Time: t0.Add(at), UUID: "c-1"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	names := func(res *Result) string {
		var out []string
		for _, f := range res.Plan.Fired {
			out = append(out, f.Rule)
		}
		for _, e := range res.Plan.Errors {
			out = append(out, "error "+e.Error())
		}
		return strings.Join(out, ", ")
	}
	res := run("01KB0000000000000000000001", "newsletter.subscribe", 0)
	if got := names(res[0]); got != "subscribe, agreement-changed" {
		t.Fatalf("subscribe fired %s", got)
	}
	if len(res) != 2 || res[1].Plan.Event.Action != "agreement.changed" || res[1].Plan.Event.Params["to"] != "enabled" {
		t.Fatalf("emitted: %d results", len(res))
	}
	// The same value again: no change, no trigger.
	if got := names(run("01KB0000000000000000000002", "newsletter.subscribe", time.Minute)[0]); got != "subscribe" {
		t.Fatalf("subscribing again fired %q", got)
	}
	if got := names(run("01KB0000000000000000000003", "page.visit", 2*time.Minute)[0]); got != "visit, tags-changed" {
		t.Fatalf("a visit fired %q", got)
	}
	res = run("01KB0000000000000000000004", "newsletter.leave", 3*time.Minute)
	if got := names(res[0]); got != "unsubscribe, agreement-changed" {
		t.Fatalf("unsubscribe fired %q", got)
	}
	attrs := res[0].Plan.After.Attributes
	if attrs["agreementLog"] != "none>enabled;enabled>disabled;" || attrs["changes"] != 2.0 || attrs["sawVisitor"] != true {
		t.Fatalf("attributes %v", attrs)
	}
}
