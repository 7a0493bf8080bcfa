package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// mergeRules track visits, greet customers who give an email, and let a
// test event leave an effect.
const mergeRules = `
rules:
  - name: visit
    on: page.visit
    do:
      - set:
          lastPage: ${ params.page ?? "" }
      - tag: visitor
  - name: welcome
    on: form.submit
    if: isEmail(params.email)
    do:
      - emit:
          action: customer.identified
  - name: ping
    on: test.ping
    do:
      - emit:
          action: test.pong
  - name: rename
    on: test.rename
    do:
      - set:
          email: ${ params.to }
  - name: unsubscribe
    on: newsletter.unsubscribe
    do:
      - set:
          newsletterAgreement: disabled
          newsletterDisabledAt: ${ time }
`

// stores are the stores the applier's merge tests run on.
var stores = []struct {
	name string
	new  func(t *testing.T) profile.Store
}{
	{"memory", func(*testing.T) profile.Store { return profile.NewMemory() }},
	{"kv", func(t *testing.T) profile.Store {
		_, js := natstest.Start(t)
		res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return profile.NewKV(res.Profiles)
	}},
}

// performed records the effects performed.
type performed struct {
	mu      sync.Mutex
	keys    []string
	targets map[string]string // emitted event key -> the uuid it is for
}

func (p *performed) Perform(_ context.Context, e *actions.Effect) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, e.Key)
	var em rules.Emitted
	if json.Unmarshal(e.Data, &em) == nil && em.Event != nil {
		if p.targets == nil {
			p.targets = make(map[string]string)
		}
		p.targets[e.Key] = em.Event.UUID
	}
	return false, nil
}

// distinct returns the keys performed, each once, sorted.
func (p *performed) distinct() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := slices.Clone(p.keys)
	slices.Sort(keys)
	return slices.Compact(keys)
}

type mergeFixture struct {
	runner *Runner
	store  profile.Store
	done   *performed
	now    time.Time
}

func newMergeFixture(t *testing.T, store profile.Store) *mergeFixture {
	t.Helper()
	set, err := rules.Loader{}.Parse("merge.yaml", []byte(mergeRules))
	if err != nil {
		t.Fatal(err)
	}
	f := &mergeFixture{store: store, done: &performed{}, now: t0}
	f.runner, err = New(Config{
		Engine: engine.New(set), Store: store, Linker: linker,
		Effectors: actions.Registry{"emit": f.done},
		Now:       func() time.Time { return f.now },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *mergeFixture) handle(t *testing.T, ev *event.Event) {
	t.Helper()
	if err := f.runner.Handle(t.Context(), ev); err != nil {
		t.Fatalf("Handle %s %s: %v", ev.ID, ev.Action, err)
	}
}

func (f *mergeFixture) get(t *testing.T, uuid string) *profile.Record {
	t.Helper()
	rec, _, err := f.store.Get(t.Context(), uuid)
	if err != nil {
		t.Fatalf("Get(%q): %v", uuid, err)
	}
	return rec
}

func (f *mergeFixture) owner(t *testing.T, email string) string {
	t.Helper()
	o, err := f.store.Owner(t.Context(), email)
	if errors.Is(err, profile.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func form(id, uuid, email string, params ...string) *event.Event {
	p := map[string]any{"form_type": "contact", "email": email}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	return &event.Event{ID: id, Action: "form.submit", Time: t0, UUID: uuid, Params: p}
}

func visit(id, uuid, page string) *event.Event {
	return &event.Event{ID: id, Action: "page.visit", Time: t0, UUID: uuid, Params: map[string]any{"page": page}}
}

// setUpKnownAndAnonymous makes anna a known customer and a visitor an
// anonymous one, with an effect of an earlier event still in their outbox.
func (f *mergeFixture) setUpKnownAndAnonymous(t *testing.T) {
	t.Helper()
	f.handle(t, form("k-form", "anna", "anna@example.com", "firstname", "Anna", "city", "Kraków"))
	f.handle(t, visit("k-visit", "anna", "/account"))
	f.handle(t, visit("a-visit-1", "visitor", "/shoes"))
	f.handle(t, visit("a-visit-2", "visitor", "/shoes/red"))
	ctx := t.Context()
	rec, rev, err := f.store.Get(ctx, "visitor")
	if err != nil {
		t.Fatal(err)
	}
	rec.Profile.Lastname = "Nowak"
	rec.Profile.Attributes["cart"] = 2.0
	rec.Outbox = append(rec.Outbox, json.RawMessage(`{"key":"a-ping.ping.0","kind":"emit","event":"a-ping","data":{"event":{"action":"test.pong","uuid":"visitor"}}}`))
	rec.MarkApplied("a-ping")
	if _, err := f.store.Put(ctx, "visitor", rec, rev); err != nil {
		t.Fatal(err)
	}
}

// mergeEvent is the visitor giving anna's address (in other letters).
func mergeEvent() *event.Event {
	return form("a-form", "visitor", "Anna@Example.COM", "firstname", "Ann")
}

// wantAfterMerge is anna's record once the visitor's form was applied.
func wantAfterMerge() *profile.Record {
	return &profile.Record{
		Profile: &profile.Profile{
			UUID: "anna", Email: "Anna@Example.COM", Firstname: "Ann", Lastname: "Nowak", City: "Kraków",
			Attributes: map[string]any{"lastPage": "/account", "cart": 2.0},
			Tags:       []string{"contact", "visitor"},
			Created:    t0, Updated: t0,
		},
		Applied: []string{"a-visit-1", "a-visit-2", "a-ping", "k-form", "k-visit", "a-form"},
		Merges: []profile.Merge{{
			From: "visitor", Event: "a-form", At: t0,
			Unmerged: map[string]any{"lastPage": "/shoes/red"},
		}},
	}
}

func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func assertRecord(t *testing.T, what string, got, want *profile.Record) {
	t.Helper()
	if !reflect.DeepEqual(jsonOf(got), jsonOf(want)) {
		t.Errorf("%s:\n got %s\nwant %s", what, jsonOf(got), jsonOf(want))
	}
}

func TestMergeIntoKnownCustomer(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			f.setUpKnownAndAnonymous(t)
			f.handle(t, mergeEvent())

			assertRecord(t, "anna's record", f.get(t, "anna"), wantAfterMerge())
			assertRecord(t, "the visitor's record", f.get(t, "visitor"), &profile.Record{MergedInto: "anna", MergedBy: "a-form"})
			if o := f.owner(t, "anna@example.com"); o != "anna" {
				t.Errorf("owner of anna@example.com = %q", o)
			}
			// The visitor's effect left in their outbox was carried over and
			// performed; the form's own effect is for anna.
			if got, want := f.done.distinct(), []string{"a-form.welcome.0", "a-ping.ping.0", "k-form.welcome.0"}; !slices.Equal(got, want) {
				t.Errorf("performed %v, want %v", got, want)
			}
			if got := f.done.targets["a-form.welcome.0"]; got != "anna" {
				t.Errorf("the form's emitted event is for %q, want anna", got)
			}
		})
	}
}

func TestEventsOfMergedCustomerApplyToKnownOne(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			f.setUpKnownAndAnonymous(t)
			f.handle(t, mergeEvent())
			f.now = t0.Add(time.Hour)

			f.handle(t, visit("a-visit-3", "visitor", "/checkout"))
			f.handle(t, &event.Event{ID: "a-ping-2", Action: "test.ping", Time: t0, UUID: "visitor"})
			anna := f.get(t, "anna")
			if anna.Profile.Attributes["lastPage"] != "/checkout" || !anna.HasApplied("a-visit-3") || anna.Profile.Updated != f.now {
				t.Errorf("anna after the visitor's visit: %s", jsonOf(anna))
			}
			if got := f.done.targets["a-ping-2.ping.0"]; got != "anna" {
				t.Errorf("emitted for %q, want anna", got)
			}
			assertRecord(t, "the visitor's record", f.get(t, "visitor"), &profile.Record{MergedInto: "anna", MergedBy: "a-form"})

			// Redelivered events of the visitor from before the merge, and
			// the merging form, are recognised as applied.
			n := len(f.done.keys)
			before := f.get(t, "anna")
			for _, ev := range []*event.Event{visit("a-visit-1", "visitor", "/shoes"), mergeEvent(), {ID: "a-ping", Action: "test.ping", Time: t0, UUID: "visitor"}} {
				f.handle(t, ev)
			}
			assertRecord(t, "anna after redeliveries", f.get(t, "anna"), before)
			if len(f.done.keys) != n {
				t.Errorf("redeliveries performed %v", f.done.keys[n:])
			}
		})
	}
}

// A second form of the same customer, or of another visitor with the same
// address, merges each anonymous customer once.
func TestMergeHistory(t *testing.T) {
	f := newMergeFixture(t, profile.NewMemory())
	f.setUpKnownAndAnonymous(t)
	f.handle(t, mergeEvent())
	f.handle(t, form("a-form-2", "visitor", "anna@example.com"))
	f.handle(t, visit("b-visit", "tablet", "/"))
	f.now = t0.Add(time.Hour)
	f.handle(t, form("b-form", "tablet", "anna@example.com"))
	anna := f.get(t, "anna")
	want := []profile.Merge{
		{From: "visitor", Event: "a-form", At: t0, Unmerged: map[string]any{"lastPage": "/shoes/red"}},
		{From: "tablet", Event: "b-form", At: f.now, Unmerged: map[string]any{"lastPage": "/"}},
	}
	if !reflect.DeepEqual(anna.Merges, want) {
		t.Errorf("merges %s, want %s", jsonOf(anna.Merges), jsonOf(want))
	}
}

// A customer giving an address nobody owns claims it; a known customer
// changing address moves the claim.
func TestEmailClaims(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			f.handle(t, visit("v1", "bob", "/"))
			f.handle(t, form("f1", "bob", "Bob@Example.com"))
			if o := f.owner(t, "bob@example.com"); o != "bob" {
				t.Fatalf("owner = %q, want bob", o)
			}
			f.handle(t, &event.Event{ID: "r1", Action: "test.rename", Time: t0, UUID: "bob", Params: map[string]any{"to": "robert@example.com"}})
			if o := f.owner(t, "robert@example.com"); o != "bob" {
				t.Errorf("owner of the new address = %q, want bob", o)
			}
			if o := f.owner(t, "bob@example.com"); o != "" {
				t.Errorf("the old address is still owned by %q", o)
			}
			// Nonsense in the email field is not an address: it makes
			// nobody one customer.
			f.handle(t, form("x1", "x-1", "not an address"))
			f.handle(t, &event.Event{ID: "x2", Action: "test.rename", Time: t0, UUID: "x-2", Params: map[string]any{"to": "not an address"}})
			f.handle(t, &event.Event{ID: "x3", Action: "test.rename", Time: t0, UUID: "x-3", Params: map[string]any{"to": "not an address"}})
			for _, uuid := range []string{"x-2", "x-3"} {
				if rec := f.get(t, uuid); rec.IsAlias() || rec.Profile.Email != "not an address" {
					t.Errorf("%s: %s", uuid, jsonOf(rec))
				}
			}
		})
	}
}

// Two known customers are never merged: the one who takes an address
// another owns keeps it, the index keeps the owner, and a warning is
// logged.
func TestKnownCustomersAreNotMerged(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newMergeFixture(t, st.new(t))
			var logs strings.Builder
			f.runner.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			f.handle(t, form("a1", "anna", "anna@example.com"))
			f.handle(t, form("b1", "bob", "bob@example.com"))
			f.handle(t, form("b2", "bob", "anna@example.com")) // bob types anna's address
			f.handle(t, &event.Event{ID: "a2", Action: "test.rename", Time: t0, UUID: "anna", Params: map[string]any{"to": "bob@example.com"}})
			for uuid, email := range map[string]string{"anna": "bob@example.com", "bob": "anna@example.com"} {
				if rec := f.get(t, uuid); rec.IsAlias() || len(rec.Merges) > 0 || rec.Profile.Email != email {
					t.Errorf("%s: %s", uuid, jsonOf(rec))
				}
			}
			// bob released his old address before anna took it.
			if o := f.owner(t, "anna@example.com"); o != "" {
				t.Errorf("owner of anna@example.com = %q, want none: anna moved to bob@example.com", o)
			}
			if o := f.owner(t, "bob@example.com"); o != "anna" {
				t.Errorf("owner of bob@example.com = %q, want anna", o)
			}
			if !strings.Contains(logs.String(), "two known customers are not merged") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
		})
	}
}

func TestMergeAgreementPrecedence(t *testing.T) {
	confirmed := map[string]any{
		"newsletterAgreement": "enabled", "newsletterConfirmedAt": "2026-11-20T08:00:00Z", "newsletterConfirmedIp": "203.0.113.7",
	}
	tests := []struct {
		name          string
		anonymousAt   time.Time // when the visitor unsubscribed
		wantAgreement string
		wantReplaced  map[string]any
		wantUnmerged  map[string]any
	}{
		{
			name: "the visitor's later withdrawal wins", anonymousAt: t0,
			wantAgreement: "disabled", wantReplaced: confirmed,
		},
		{
			name: "the customer's later consent wins", anonymousAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			wantAgreement: "enabled",
			wantUnmerged:  map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": "2026-11-01T00:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMergeFixture(t, profile.NewMemory())
			f.handle(t, form("a1", "anna", "anna@example.com"))
			rec, rev, _ := f.store.Get(t.Context(), "anna")
			for k, v := range confirmed {
				rec.Profile.Attributes[k] = v
			}
			if _, err := f.store.Put(t.Context(), "anna", rec, rev); err != nil {
				t.Fatal(err)
			}
			f.handle(t, &event.Event{ID: "v1", Action: "newsletter.unsubscribe", Time: tt.anonymousAt, UUID: "visitor"})
			f.handle(t, form("v2", "visitor", "anna@example.com"))
			anna := f.get(t, "anna")
			if got := anna.Profile.Attributes["newsletterAgreement"]; got != tt.wantAgreement {
				t.Errorf("agreement %v, want %s", got, tt.wantAgreement)
			}
			m := anna.Merges[0]
			if !reflect.DeepEqual(m.Replaced, tt.wantReplaced) || !reflect.DeepEqual(m.Unmerged, tt.wantUnmerged) {
				t.Errorf("evidence kept: replaced %v, unmerged %v; want %v and %v", m.Replaced, m.Unmerged, tt.wantReplaced, tt.wantUnmerged)
			}
			for k := range anna.Profile.Attributes {
				if profile.IsNewsletterAttribute(k) && k != "newsletterAgreement" && !strings.HasPrefix(k, map[string]string{"enabled": "newsletterConfirmed", "disabled": "newsletterDisabled"}[tt.wantAgreement]) {
					t.Errorf("the losing side's %s is mixed into the winning agreement", k)
				}
			}
		})
	}
}

// Two merges racing in opposite directions can leave two tombstones
// pointing at each other; the next event of either undoes one, and the
// other completes.
func TestMergeLoopIsUndone(t *testing.T) {
	f := newMergeFixture(t, profile.NewMemory())
	ctx := t.Context()
	for uuid, into := range map[string]string{"a": "b", "b": "a"} {
		p := profile.New(uuid, t0)
		p.Attributes = map[string]any{"from_" + uuid: true}
		if _, err := f.store.Put(ctx, uuid, &profile.Record{Profile: p, Applied: []string{uuid + "-0"}, MergedInto: into, MergedBy: uuid + "-form"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.handle(t, visit("a-1", "a", "/"))
	a, b := f.get(t, "a"), f.get(t, "b")
	if a.IsAlias() || !b.IsAlias() || b.MergedInto != "a" || b.Profile != nil {
		t.Fatalf("a %s\nb %s\nwant b merged into a", jsonOf(a), jsonOf(b))
	}
	if a.Profile.Attributes["from_a"] != true || a.Profile.Attributes["from_b"] != true || a.Profile.Attributes["lastPage"] != "/" || !a.HasMerged("b", "b-form") {
		t.Errorf("a: %s", jsonOf(a))
	}
}

func TestRunnerErrorsAreClassified(t *testing.T) {
	f := newMergeFixture(t, profile.NewMemory())
	ctx := context.Background()
	// A chain of tombstones too long to follow cannot be fixed by retrying.
	next := "end"
	for i := range profile.MaxAliasHops + 1 {
		uuid := fmt.Sprintf("hop-%d", i)
		if _, err := f.store.Put(ctx, uuid, &profile.Record{MergedInto: next, MergedBy: "e"}, 0); err != nil {
			t.Fatal(err)
		}
		next = uuid
	}
	err := f.runner.Handle(ctx, visit("e1", next, "/"))
	var perm *PermanentError
	if !errors.As(err, &perm) || !errors.Is(err, profile.ErrAliasLoop) {
		t.Errorf("Handle through too many aliases = %v, want a PermanentError wrapping ErrAliasLoop", err)
	}
}

// Applied ids beyond MaxApplied are forgotten from the merged customer's
// first: the known customer's latest events stay recognised.
func TestMergeKeepsTheKnownCustomersAppliedIDs(t *testing.T) {
	f := newMergeFixture(t, profile.NewMemory())
	ctx := t.Context()
	known := &profile.Record{Profile: &profile.Profile{UUID: "anna", Email: "anna@example.com", Created: t0, Updated: t0}}
	anon := &profile.Record{Profile: profile.New("visitor", t0)}
	for i := range profile.MaxApplied {
		known.MarkApplied(fmt.Sprintf("k-%d", i))
		anon.MarkApplied(fmt.Sprintf("a-%d", i))
	}
	for uuid, rec := range map[string]*profile.Record{"anna": known, "visitor": anon} {
		if _, err := f.store.Put(ctx, uuid, rec, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.ClaimEmail(ctx, "anna@example.com", "anna"); err != nil {
		t.Fatal(err)
	}
	f.handle(t, form("a-form", "visitor", "anna@example.com"))
	applied := f.get(t, "anna").Applied
	if len(applied) != profile.MaxApplied || applied[0] != "k-1" || applied[len(applied)-2] != "k-63" || applied[len(applied)-1] != "a-form" {
		t.Errorf("applied %v", applied)
	}
}
