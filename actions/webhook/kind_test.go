package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/webhook"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/rules"
)

var policy = webhook.Policy{AllowHosts: []string{"crm.example.com"}}

func load(t *testing.T, src string) (*rules.Set, error) {
	t.Helper()
	return rules.Loader{Kinds: append(rules.Builtin(), webhook.Kind(policy))}.Parse("hooks.yaml", []byte(src))
}

func TestKindRefusesAtLoad(t *testing.T) {
	tests := []struct {
		name, action, want string
	}{
		{"host not allowed", `webhook: https://evil.example/x`, `hooks.yaml:6:18: rule "r": webhook url:`},
		{"no url", `webhook: {body: {a: 1}}`, `webhook has no url`},
		{"host from an expression", `webhook: "https://${ params.host }/x"`, "write the scheme and host out"},
		{"unknown field", `webhook: {url: "https://crm.example.com/", methd: PUT}`, `unknown field "methd"`},
		{"bad expression in the body", `webhook: {url: "https://crm.example.com/", body: {a: "${ params. }"}}`, "webhook body.a"},
		{"loopback", `webhook: http://127.0.0.1/x`, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, "rules:\n  - name: r\n    on: form.submit\n    do:\n      - tag: x\n      - "+tt.action+"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func plan(t *testing.T, src string, ev *event.Event) *webhook.Request {
	t.Helper()
	set, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	p := engine.New(set).Evaluate(ev, nil, ev.Time)
	if len(p.Errors) > 0 {
		t.Fatal(p.Errors)
	}
	outs := p.Outs()
	if len(outs) != 1 || outs[0].Kind() != "webhook" {
		t.Fatalf("effects %v", outs)
	}
	r, err := outs[0].Render(&rules.RenderContext{Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*webhook.Request)
}

var form = &event.Event{ID: "01KB0000000000000000000001", Action: "form.submit", Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	UUID: "c-1", Params: map[string]any{"email": "ann@example.com", "order": "42"}}

func TestKindBody(t *testing.T) {
	r := plan(t, `rules:
  - name: r
    on: form.submit
    do:
      - webhook:
          url: https://crm.example.com/orders/${ params.order }
          body:
            email: ${ params.email }
            tags: [web, "${ action }"]
            nested: {at: "${ time }", none: null}
`, form)
	if r.URL != "https://crm.example.com/orders/42" {
		t.Errorf("url %q", r.URL)
	}
	want := `{"email":"ann@example.com","nested":{"at":"2026-11-28T10:00:00Z","none":null},"tags":["web","form.submit"]}`
	if string(r.Body) != want {
		t.Errorf("body\n %s\nwant\n %s", r.Body, want)
	}
}

func TestKindDefaultBody(t *testing.T) {
	r := plan(t, `rules:
  - name: r
    on: form.submit
    do:
      - set: {email: "${ params.email }"}
      - webhook: https://crm.example.com/hook
`, form)
	var body struct {
		Event   event.Event      `json:"event"`
		Changes []map[string]any `json:"changes"`
		Profile map[string]any   `json:"profile"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	if body.Event.ID != form.ID || len(body.Changes) != 1 || body.Changes[0]["name"] != "email" || body.Profile["email"] != "ann@example.com" {
		t.Fatalf("body %s", r.Body)
	}
}
