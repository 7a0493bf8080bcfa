package main

import (
	"encoding/json"
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
