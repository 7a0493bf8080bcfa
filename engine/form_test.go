package engine

import (
	"strings"
	"testing"

	"github.com/herald-events/herald/profile"
)

func TestFormStep(t *testing.T) {
	e := New(mustRules(t, `
  - name: sees-the-form
    on: form.submit
    if: profile.known && hasTag("newsletter") && profile.attributes.team == "sales"
    do:
      - tag: seen
`))
	tests := []struct {
		name    string
		before  *profile.Profile
		params  map[string]any
		changes string
		fired   string
		errs    string
	}{
		{
			name: "fields, tags and attributes, before the rules",
			params: map[string]any{"email": "ann@example.com", "firstname": " Ann ", "city": "Kraków",
				"form_type": "newsletter,contact", "form_attributes": "team,company", "team": "sales", "company": "ACME",
				"newsletter_agreement_enabled": "enabled"},
			changes: "set email=ann@example.com; set firstname=Ann; set city=Kraków; set company=ACME; tag newsletter; tag contact; set team=sales; tag seen",
			fired:   "@form,sees-the-form",
		},
		{
			name:    "form values overwrite, empty values do not erase",
			before:  &profile.Profile{UUID: "c-1", Email: "old@example.com", Firstname: "Ann", Lastname: "Smith"},
			params:  map[string]any{"email": "new@example.com", "firstname": "", "lastname": "  "},
			changes: "set email=new@example.com",
			fired:   "@form",
		},
		{
			name:   "a form type that is not a tag fails the step whole",
			params: map[string]any{"email": "ann@example.com", "form_type": "news letter"},
			errs:   `rule "@form"`,
		},
		{
			name:   "an attribute that names a form param is refused",
			params: map[string]any{"form_type": "x", "form_attributes": "form_type"},
			errs:   "form_attributes",
		},
		{
			name:    "attributes listed but not sent are left alone",
			params:  map[string]any{"form_type": "contact", "form_attributes": "team,size", "size": 12.0},
			changes: "tag contact; set size=12",
			fired:   "@form",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := e.Evaluate(newEvent("form.submit", tt.params), tt.before, t0)
			if got := changesText(plan); got != tt.changes {
				t.Errorf("changes:\n got %s\nwant %s", got, tt.changes)
			}
			if got := firedNames(plan); got != tt.fired {
				t.Errorf("fired %q, want %q", got, tt.fired)
			}
			var errs []string
			for _, e := range plan.Errors {
				errs = append(errs, e.Error())
			}
			if got := strings.Join(errs, "; "); (tt.errs == "") != (got == "") || !strings.Contains(got, tt.errs) {
				t.Errorf("errors %q, want %q", got, tt.errs)
			}
		})
	}
}

func TestFormStepNeedsTheProfileWithoutRules(t *testing.T) {
	e := New(mustRules(t, `
  - name: other
    on: page.visit
    do:
      - tag: visited
`))
	if !e.Wants("form.submit") {
		t.Fatal("a form submission wants the profile even when no rule triggers on it")
	}
	plan := e.Evaluate(newEvent("form.submit", map[string]any{"email": "ann@example.com"}), nil, t0)
	if plan.After == nil || plan.After.Email != "ann@example.com" {
		t.Fatalf("after %+v", plan.After)
	}
}
