package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestExplainGolden compares herald explain and herald replay --explain
// with golden files: why each rule of the double opt-in example fired or
// not, with the values of the failing conditions.
func TestExplainGolden(t *testing.T) {
	doi := "../../examples/newsletter-double-opt-in"
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"explain confirm", []string{"explain", "--rules", doi, "--event", "testdata/explain/confirm.json", "--profile", "testdata/explain/anna.json"}, "testdata/explain/confirm.golden"},
		{"explain form", []string{"explain", "--rules", doi, "--event", "testdata/explain/form.json", "--profile", "testdata/explain/anna.json"}, "testdata/explain/form.golden"},
		{"explain no profile", []string{"explain", "--rules", doi, "--event", "testdata/explain/confirm.json"}, "testdata/explain/confirm-none.golden"},
		{"replay explain", []string{"replay", "--explain", "--rules", doi, "--events", doi + "/events.jsonl"}, "testdata/explain/replay-doi.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != exitOK {
				t.Errorf("exit code %d; stderr:\n%s", code, stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}
}

// TestReplayExplainJSON checks --explain in JSON: each plan carries a
// reason per rule, the failed match with the value seen, and the parts
// of a condition that did not hold.
func TestReplayExplainJSON(t *testing.T) {
	doi := "../../examples/newsletter-double-opt-in"
	code, stdout, stderr := run(t, "", "replay", "--explain", "--format", "json", "--rules", doi, "--events", doi+"/events.jsonl")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var line5 struct {
		Line    int               `json:"line"`
		Explain []jsonExplanation `json:"explain"`
	}
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &line5); err != nil {
			t.Fatal(err)
		}
		if line5.Line == 5 {
			break
		}
	}
	if len(line5.Explain) != 2 {
		t.Fatalf("line 5 explains %d rules, want 2: %+v", len(line5.Explain), line5.Explain)
	}
	req, dis := line5.Explain[0], line5.Explain[1]
	if req.Rule != "doi-request" || req.Fired || req.Reason != "if is false" || req.Value != false {
		t.Errorf("doi-request: %+v", req)
	}
	found := false
	for _, p := range req.Parts {
		if p.Src == "profile.attributes.newsletterAgreement" && p.Value == "enabled" {
			found = true
		}
	}
	if !found {
		t.Errorf("doi-request parts do not show the agreement seen: %+v", req.Parts)
	}
	if dis.Rule != "newsletter-disabled" || dis.Match == nil || dis.Match.Param != "newsletter_agreement_enabled" || dis.Match.Got != "enabled" {
		t.Errorf("newsletter-disabled: %+v", dis)
	}
}

// TestExplainLive explains an event against a customer's profile read
// from a running Herald: the confirmation of an old request does not
// confirm, and the explanation shows the request the profile holds.
func TestExplainLive(t *testing.T) {
	h := startHerald(t, "../../examples/newsletter-double-opt-in")
	form := `{"id":"01KB0000000000000000000002","action":"form.submit","time":"2026-11-28T09:01:00Z","uuid":"anna-7f3c","params":{"form_type":"newsletter","email":"anna@example.com","newsletter_agreement_enabled":"enabled"}}`
	if code, _, stderr := run(t, form+"\n", "publish", "--nats", h.natsURL, "-"); code != exitOK {
		t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
	}
	eventually(t, "anna's request", func() bool { return h.attribute("anna-7f3c", "newsletterRequestEvent") != nil })
	code, stdout, stderr := run(t, "", "explain", "--server", h.natsURL, "--uuid", "anna-7f3c",
		"--rules", "../../examples/newsletter-double-opt-in", "--event", "testdata/explain/confirm.json")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"doi-confirmed: if is false",
		`params.source_event == profile.attributes.newsletterRequestEvent = false`,
		`profile.attributes.newsletterRequestEvent = "01KB0000000000000000000002"`,
		`profile.attributes.newsletterAgreement = "confirmation"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}
	// Nothing was stored: the live profile is as it was.
	if got := h.attribute("anna-7f3c", "newsletterAgreement"); got != "confirmation" {
		t.Errorf("agreement after explain: %v", got)
	}
}

// TestReplayCompare runs the double opt-in stream through the example's
// rules and a changed copy, and compares what differs with a golden
// file; the same rules on both sides differ in nothing.
func TestReplayCompare(t *testing.T) {
	doi := "../../examples/newsletter-double-opt-in"
	code, stdout, stderr := run(t, "", "replay", "--rules", doi, "--compare", "../../docs/testdata/doi-changed", "--events", doi+"/events.jsonl")
	if code != exitFailed {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	golden(t, "testdata/explain/compare-doi.golden", stdout)

	code, stdout, stderr = run(t, "", "replay", "--rules", doi, "--compare", doi, "--events", doi+"/events.jsonl")
	if code != exitOK {
		t.Errorf("same rules: exit code %d; stderr:\n%s", code, stderr)
	}
	if want := "21 events (0 invalid): 0 differ; emails 0 added, 0 removed, 0 changed; profile changes 0 added, 0 removed; emits 0 added, 0 removed\n"; stdout != want {
		t.Errorf("same rules:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestReplayCompareAddedRemoved compares rule files that send an email
// and emit an event the other does not.
func TestReplayCompareAddedRemoved(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := dir + "/" + name
		if err := os.MkdirAll(p+"/templates", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+"/rules.yaml", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+"/templates/hi.txt", []byte("{{define \"subject\"}}Hi{{end}}Hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a", "rules:\n  - name: r\n    on: order.paid\n    do:\n      - set: {email: a@example.com}\n      - email: {template: hi}\n")
	b := write("b", "rules:\n  - name: r\n    on: order.paid\n    do:\n      - set: {email: a@example.com}\n      - emit: order.thanked\n")
	ev := `{"id":"01KB0000000000000000000001","action":"order.paid","time":"2026-11-28T09:00:00Z","uuid":"u-1"}` + "\n"
	code, stdout, stderr := run(t, ev, "replay", "--rules", a, "--compare", b, "--events", "-")
	if code != exitFailed {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	want := `line 1  2026-11-28T09:00:00Z  order.paid  uuid u-1
  - email hi to a@example.com subject "Hi"
  + emit order.thanked

1 events (0 invalid): 1 differ; emails 0 added, 1 removed, 0 changed; profile changes 0 added, 0 removed; emits 1 added, 0 removed
`
	if stdout != want {
		t.Errorf("got:\n%s\nwant:\n%s", stdout, want)
	}
}
