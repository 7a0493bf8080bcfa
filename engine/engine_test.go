package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func mustRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("testdata/test.yaml", []byte("rules:\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func newEvent(action string, params map[string]any) *event.Event {
	return &event.Event{ID: "01KB0000000000000000000001", Action: action, Time: t0, UUID: "c-1", Params: params}
}

func changesText(p *Plan) string {
	var out []string
	for _, c := range p.Changes() {
		s := c.Op.String() + " " + c.Name
		if c.Op == profile.OpSet {
			s += "=" + rules.Format(c.Value)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func firedNames(p *Plan) string {
	var out []string
	for _, f := range p.Fired {
		out = append(out, f.Rule)
	}
	return strings.Join(out, ",")
}

func TestEvaluateOrderAndVisibility(t *testing.T) {
	e := New(mustRules(t, `
  - name: first
    on: signup.done
    do:
      - set: {email: "${ params.email }"}
      - set: {greeting: "hello ${ profile.email }"}   # sees the set above
  - name: second
    on: signup.done
    if: profile.known && profile.attributes.greeting != nil  # sees the rule above
    do:
      - tag: known
  - name: third
    on: signup.done
    if: hasTag("known")
    do:
      - set: {tagged: true}
`))
	before := profile.New("c-1", t0.Add(-time.Hour))
	plan := e.Evaluate(newEvent("signup.done", map[string]any{"email": "ann@example.com"}), before, t0)
	if len(plan.Errors) > 0 {
		t.Fatal(plan.Errors)
	}
	if got := firedNames(plan); got != "first,second,third" {
		t.Fatalf("fired %s", got)
	}
	if got, want := changesText(plan), "set email=ann@example.com; set greeting=hello ann@example.com; tag known; set tagged=true"; got != want {
		t.Fatalf("changes:\n got %s\nwant %s", got, want)
	}
	if before.Email != "" || len(before.Tags) != 0 || before.Attributes != nil {
		t.Fatalf("Evaluate changed the caller's profile: %+v", before)
	}
	if plan.After.Email != "ann@example.com" || !plan.After.HasTag("known") || !plan.After.Updated.Equal(t0) {
		t.Fatalf("after = %+v", plan.After)
	}
}

func TestEvaluateRuntimeErrorIsolated(t *testing.T) {
	e := New(mustRules(t, `
  - name: ok-before
    on: form.submit
    do: [{tag: before}]
  - name: breaks
    on: form.submit
    do:
      - set: {step: one}
      - set: {email: "${ params.count }"}   # a number, not text: fails at run time
  - name: bad-condition
    on: form.submit
    if: params.count > "x"
    do: [{tag: never}]
  - name: not-bool
    on: form.submit
    if: params.flag
    do: [{tag: never}]
  - name: ok-after
    on: form.submit
    if: profile.attributes.step == nil   # the failed rule left nothing behind
    do: [{tag: after}]
`))
	ev := newEvent("form.submit", map[string]any{"count": 3.0, "flag": "yes"})
	plan := e.Evaluate(ev, nil, t0)
	if got := firedNames(plan); got != "ok-before,ok-after" {
		t.Fatalf("fired %q", got)
	}
	if got := changesText(plan); got != "tag before; tag after" {
		t.Fatalf("changes %q", got)
	}
	if len(plan.Errors) != 3 {
		t.Fatalf("errors = %v, want 3", plan.Errors)
	}
	wants := []string{
		`rule "breaks" on event 01KB0000000000000000000001: do[1] set: email holds text, not a number`,
		`rule "bad-condition" on event 01KB0000000000000000000001: if: `,
		`rule "not-bool" on event 01KB0000000000000000000001: if: `,
	}
	for i, want := range wants {
		if got := plan.Errors[i].Error(); !strings.HasPrefix(got, want) {
			t.Errorf("error %d = %q, want prefix %q", i, got, want)
		}
		if plan.Errors[i].EventID != ev.ID {
			t.Errorf("error %d has event id %q", i, plan.Errors[i].EventID)
		}
	}
	if _, ok := plan.After.Attributes["step"]; ok {
		t.Fatal("the failed rule's first set stayed on the profile")
	}
}

func TestEvaluateMatch(t *testing.T) {
	e := New(mustRules(t, `
  - name: m
    on: form.submit
    match: {newsletter_agreement_enabled: [enabled, confirmation], qty: 2}
    do: [{tag: x}]
`))
	tests := []struct {
		params map[string]any
		fires  bool
	}{
		{map[string]any{"newsletter_agreement_enabled": "enabled", "qty": 2.0}, true},
		{map[string]any{"newsletter_agreement_enabled": "confirmation", "qty": "2"}, true},
		{map[string]any{"newsletter_agreement_enabled": "disabled", "qty": 2.0}, false},
		{map[string]any{"newsletter_agreement_enabled": "enabled"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		plan := e.Evaluate(newEvent("form.submit", tt.params), nil, t0)
		if fired := len(plan.Fired) == 1; fired != tt.fires {
			t.Errorf("params %v: fired %v, want %v", tt.params, fired, tt.fires)
		}
	}
}

func TestEvaluateEmail(t *testing.T) {
	e := New(mustRules(t, `
  - name: news
    on: campaign.send
    do:
      - email:
          template: news
          marketing: true
          links: {unsubscribe: newsletter.unsubscribe}
  - name: direct
    on: campaign.send
    if: params.to != nil
    do:
      - email: {template: news, to: "${ params.to }", subject: "Hi ${ profile.firstname }", links: {unsubscribe: newsletter.unsubscribe}}
`))
	subscribed := &profile.Profile{UUID: "c-1", Email: "ann@example.com", Firstname: "Ann", Attributes: map[string]any{AgreementAttribute: "enabled"}}
	unsubscribed := &profile.Profile{UUID: "c-1", Email: "ann@example.com", Attributes: map[string]any{AgreementAttribute: "disabled"}}
	tests := []struct {
		name       string
		p          *profile.Profile
		params     map[string]any
		suppressed string
		wantErr    string
		emails     int
	}{
		{"subscribed", subscribed, nil, "", "", 1},
		{"unsubscribed", unsubscribed, nil, `the newsletter agreement is "disabled"`, "", 1},
		{"no agreement", &profile.Profile{UUID: "c-1", Email: "a@example.com"}, nil, "no newsletter agreement", "", 1},
		{"anonymous", nil, nil, "no newsletter agreement", "", 1},
		{"explicit to", subscribed, map[string]any{"to": "bob@example.com"}, "", "", 2},
		{"bad to", subscribed, map[string]any{"to": "not an address"}, "", `"not an address" is not an email address`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := e.Evaluate(newEvent("campaign.send", tt.params), tt.p, t0)
			emails := emails(plan)
			if len(emails) != tt.emails {
				t.Fatalf("%d emails, want %d (errors %v)", len(emails), tt.emails, plan.Errors)
			}
			if tt.wantErr != "" {
				if len(plan.Errors) != 1 || !strings.Contains(plan.Errors[0].Error(), tt.wantErr) {
					t.Fatalf("errors = %v, want %q", plan.Errors, tt.wantErr)
				}
			}
			if len(emails) == 0 {
				return
			}
			m := emails[0]
			if m.Template.Name != "news" || m.Links[0].Emit != "newsletter.unsubscribe" || tt.p != nil && m.To != tt.p.Email {
				t.Fatalf("email = %+v", m)
			}
			if !strings.Contains(m.Suppress, tt.suppressed) || (tt.suppressed == "") != (m.Suppress == "") {
				t.Fatalf("suppressed = %q, want %q", m.Suppress, tt.suppressed)
			}
			if tt.emails == 2 && (emails[1].To != "bob@example.com" || emails[1].Subject != "Hi Ann" || emails[1].Suppress != "") {
				t.Fatalf("direct email = %+v", emails[1])
			}
		})
	}
}

// Regression: `${ profile.firstname ?? "friend" }` rendered "Welcome, "
// for a customer without a first name: an unset standard field is "",
// and ?? only defaulted nil.
func TestEvaluateStandardFieldDefault(t *testing.T) {
	e := New(mustRules(t, `
  - name: welcome
    on: form.submit
    do:
      - email:
          template: news
          to: ann@example.com
          subject: Welcome, ${ profile.firstname ?? "friend" }
          links: {unsubscribe: newsletter.unsubscribe}
      - set: {greeting: "Hi ${ params.nick ?? profile.firstname ?? \"there\" }", hasEmail: "${ profile.email != nil }"}
`))
	tests := []struct {
		name     string
		p        *profile.Profile
		params   map[string]any
		subject  string
		greeting string
		hasEmail bool
	}{
		{"no profile", nil, nil, "Welcome, friend", "Hi there", false},
		{"no first name", &profile.Profile{UUID: "c-1", Email: "ann@example.com"}, nil, "Welcome, friend", "Hi there", true},
		{"first name", &profile.Profile{UUID: "c-1", Firstname: "Ann"}, nil, "Welcome, Ann", "Hi Ann", false},
		{"set by the form", nil, map[string]any{"firstname": "Bob"}, "Welcome, Bob", "Hi Bob", false},
		{"nick", &profile.Profile{UUID: "c-1", Firstname: "Ann"}, map[string]any{"nick": "Annie"}, "Welcome, Ann", "Hi Annie", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := e.Evaluate(newEvent("form.submit", tt.params), tt.p, t0)
			if len(plan.Errors) > 0 {
				t.Fatal(plan.Errors)
			}
			if m := emails(plan); len(m) != 1 || m[0].Subject != tt.subject {
				t.Fatalf("emails %+v, want subject %q", m, tt.subject)
			}
			if a := plan.After.Attributes; a["greeting"] != tt.greeting || a["hasEmail"] != tt.hasEmail {
				t.Fatalf("attributes %v, want greeting %q, hasEmail %v", a, tt.greeting, tt.hasEmail)
			}
		})
	}
}

func TestEvaluateEmailWithoutRecipient(t *testing.T) {
	e := New(mustRules(t, `
  - name: receipt
    on: order.complete
    do:
      - set: {ordered: true}
      - email: {template: news, subject: Receipt, links: {unsubscribe: newsletter.unsubscribe}}
`))
	plan := e.Evaluate(newEvent("order.complete", nil), nil, t0)
	if len(plan.Errors) != 1 || !strings.Contains(plan.Errors[0].Error(), "do[1] email: no recipient") {
		t.Fatalf("errors = %v, want no recipient", plan.Errors)
	}
	if len(plan.Fired) != 0 || plan.After.Attributes["ordered"] != nil {
		t.Fatalf("the failed rule left effects: %+v", plan)
	}
}

func TestEvaluateEmailSeesProfileAtItsStep(t *testing.T) {
	e := New(mustRules(t, `
  - name: welcome
    on: form.submit
    do:
      - set: {firstname: Ann}
      - email: {template: news, to: ann@example.com, links: {unsubscribe: newsletter.unsubscribe}}
      - set: {firstname: Changed}
`))
	plan := e.Evaluate(newEvent("form.submit", nil), nil, t0)
	if m := emails(plan); len(m) != 1 || m[0].Profile.Firstname != "Ann" {
		t.Fatalf("email profile = %+v", m[0].Profile)
	}
}

func TestEvaluateNumbers(t *testing.T) {
	e := New(mustRules(t, `
  - name: n
    on: a.b
    do:
      - set: {unix: "${ time.Unix() }", n: "${ 2 }", f: "${ 1.5 }"}
      - emit: {action: a.c, params: {unix: "${ time.Unix() }", none: "${ params.none }"}}
`))
	plan := e.Evaluate(newEvent("a.b", nil), nil, t0)
	if len(plan.Errors) > 0 {
		t.Fatal(plan.Errors)
	}
	unix := float64(t0.Unix())
	if a := plan.After.Attributes; a["unix"] != unix || a["n"] != 2.0 || a["f"] != 1.5 {
		t.Fatalf("attributes = %v", a)
	}
	if p := emits(plan)[0].Params; len(p) != 1 || p["unix"] != unix {
		t.Fatalf("emitted params = %v", p)
	}
}

func TestEvaluateEmit(t *testing.T) {
	e := New(mustRules(t, `
  - name: confirm
    on: newsletter.confirm
    do:
      - tag: newsletter
      - emit:
          action: newsletter.subscribed
          label: "Subscribed ${ params.via }"
          params: {via: "${ params.via }", count: "${ 1 + 1 }", missing: "${ params.nope }"}
`))
	ev := newEvent("newsletter.confirm", map[string]any{"via": "link"})
	ev.Site = "shop.example.com"
	ev.Depth, ev.Budget = 2, 5
	plan := e.Evaluate(ev, nil, t0.Add(time.Minute))
	emitted := emits(plan)
	if len(emitted) != 1 || len(plan.Errors) != 0 {
		t.Fatalf("emits %v errors %v", emitted, plan.Errors)
	}
	out := emitted[0]
	want := &event.Event{
		ID:     event.DeriveID(ev.Time, ev.ID, "confirm", "1"),
		Action: "newsletter.subscribed", Label: "Subscribed link",
		Time: t0.Add(time.Minute), UUID: "c-1", Site: "shop.example.com",
		Params: map[string]any{"via": "link", "count": 2.0},
		Depth:  3, Budget: 4, // all but the one emitted
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("emitted\n %+v\nwant\n %+v", out, want)
	}
	// Evaluating the same event later (a redelivery) emits the same id.
	again := emits(e.Evaluate(ev, nil, t0.Add(time.Hour)))[0]
	if again.ID != out.ID {
		t.Fatalf("redelivery emitted id %s, first %s", again.ID, out.ID)
	}
}

func TestEvaluateWithoutRulesNeedsNoProfile(t *testing.T) {
	e := New(mustRules(t, "  - {name: r, on: form.submit, do: [{tag: x}]}\n"))
	if e.Wants("page.visit") || !e.Wants("form.submit") {
		t.Fatal("Wants disagrees with the rules")
	}
	plan := e.Evaluate(newEvent("page.visit", nil), nil, t0)
	if plan.After != nil || len(plan.Fired) != 0 {
		t.Fatalf("plan for an action without rules = %+v", plan)
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	set, err := rules.Load("../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	e := New(set)
	ev := newEvent("form.submit", map[string]any{"form_type": "newsletter", "email": "ann@example.com", "newsletter_agreement_enabled": "enabled"})
	a, b := e.Evaluate(ev, nil, t0), e.Evaluate(ev, nil, t0)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two evaluations of the same input differ")
	}
	if firedNames(a) != "@form,doi-request" {
		t.Fatalf("fired %s", firedNames(a))
	}
}

func TestSetRulesSwapsAtomically(t *testing.T) {
	e := New(mustRules(t, "  - {name: old, on: a.b, do: [{tag: x}]}\n"))
	e.SetRules(mustRules(t, "  - {name: new, on: a.b, do: [{tag: x}]}\n"))
	if got := firedNames(e.Evaluate(newEvent("a.b", nil), nil, t0)); got != "new" {
		t.Fatalf("fired %s after SetRules", got)
	}
}

func TestRuleErrorUnwraps(t *testing.T) {
	base := errors.New("boom")
	var err error = &RuleError{Rule: "r", EventID: "e", Step: 0, Kind: "set", Err: base}
	if !errors.Is(err, base) {
		t.Fatal("RuleError does not unwrap")
	}
}

// emails returns the emails a plan sends, suppressed ones included.
func emails(p *Plan) []*rules.Email {
	var out []*rules.Email
	for _, e := range p.Outs() {
		if m, ok := e.(*rules.Email); ok {
			out = append(out, m)
		}
	}
	return out
}

// emits returns the events a plan emits.
func emits(p *Plan) []*event.Event {
	var out []*event.Event
	for _, e := range p.Outs() {
		if m, ok := e.(*rules.Emit); ok {
			out = append(out, m.Event)
		}
	}
	return out
}
