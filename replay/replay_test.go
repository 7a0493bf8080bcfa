package replay

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func newReplayer(t *testing.T, set *rules.Set) *Replayer {
	t.Helper()
	r, err := New(Config{Rules: set, From: "Example Shop <news@shop.example>"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func order(id, number string) *event.Event {
	return &event.Event{ID: id, Action: "order.placed", Time: t0, UUID: "c-1",
		Params: map[string]any{"email": "ann@example.com", "order": number}}
}

// A subject with a line break is refused by replay exactly as serve's
// sender refuses it: the email fails for good and is reported, the
// profile change is kept, and the next event goes on.
func TestReplayRejectsASubjectWithALineBreakAsServeDoes(t *testing.T) {
	set, err := rules.Load("testdata/subject")
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	res, err := r.Run(context.Background(), order("01KB0000000000000000000001", "42\r\nBcc: victim@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	key := "01KB0000000000000000000001.thanks.1"
	if len(res) != 1 || res[0].Failed[key] == nil {
		t.Fatalf("results %+v: want the email %s failed", res, key)
	}
	if msg := res[0].Failed[key].Error(); !strings.Contains(msg, "Subject") && !strings.Contains(msg, "subject") {
		t.Errorf("reason %q does not name the subject", msg)
	}
	if n := len(r.Emails()); n != 0 {
		t.Fatalf("%d emails built, want none", n)
	}
	res, err = r.Run(context.Background(), order("01KB0000000000000000000002", "43"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Failed) != 0 || len(r.Emails()) != 1 || r.Emails()[0].Subject != "Thanks for order 43" {
		t.Fatalf("a good order after a bad one: failed %v, emails %+v", res[0].Failed, r.Emails())
	}
	if got := r.Emails()[0].ID; got != "01KB0000000000000000000002.thanks.1@shop.example" {
		t.Errorf("Message-ID %q, want the effect key at the sender's domain", got)
	}
}

// Emitted events are fed back in, depth first, until the chain is too
// deep; the rule that would go deeper fails and changes nothing.
func TestReplayChainStopsAtMaxDepth(t *testing.T) {
	set, err := rules.Parse("loop.yaml", []byte(`
rules:
  - name: loop
    on: loop.step
    do:
      - set: {steps: "${ (profile.attributes.steps ?? 0) + 1 }"}
      - emit: loop.step
`))
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	res, err := r.Run(context.Background(), &event.Event{ID: "01KB0000000000000000000001", Action: "loop.step", Time: t0, UUID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != rules.MaxDepth+1 {
		t.Fatalf("%d plans, want %d", len(res), rules.MaxDepth+1)
	}
	last := res[len(res)-1].Plan
	if len(last.Errors) != 1 || !strings.Contains(last.Errors[0].Error(), "emitted events chain deeper than 8") {
		t.Fatalf("last plan errors = %v", last.Errors)
	}
	if got := last.After.Attributes["steps"]; got != float64(rules.MaxDepth) {
		t.Fatalf("steps = %v, want %d (the rule at depth %d had no effect)", got, rules.MaxDepth, rules.MaxDepth)
	}
}

// Links are signed as serve signs them, and land in the email.
func TestReplaySignsLinks(t *testing.T) {
	set, err := rules.Load("../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	r := newReplayer(t, set)
	ev := &event.Event{ID: "01KB0000000000000000000001", Action: "form.submit", Time: t0, UUID: "anna",
		Params: map[string]any{"form_type": "newsletter", "email": "anna@example.com", "newsletter_agreement_enabled": "enabled"}}
	res, err := r.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := res[0].Rendered["01KB0000000000000000000001.doi-request.1"].(*rules.Mail)
	if !ok {
		t.Fatalf("rendered %+v", res[0].Rendered)
	}
	u := m.Links["confirm"]
	if !strings.HasPrefix(u, "https://links.invalid/l/") || !strings.Contains(m.Text, u) {
		t.Fatalf("confirm link %q, text:\n%s", u, m.Text)
	}
}

// The rules render an email as rules.Mail and the email effector decodes
// it as email.Rendered: the two must name the same JSON fields, or
// every email fails (the effector decodes strictly).
func TestMailWireFormMatchesTheEffector(t *testing.T) {
	tags := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			out = append(out, rt.Field(i).Tag.Get("json"))
		}
		return out
	}
	if a, b := tags(rules.Mail{}), tags(email.Rendered{}); !reflect.DeepEqual(a, b) {
		t.Fatalf("rules.Mail fields %v\nemail.Rendered fields %v", a, b)
	}
}
