package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// herald profile --explain shows why the rules did or did not fire on the
// customer's latest events, as the running engine kept them; for a
// customer it never handled, it says none are kept.
func TestProfileExplain(t *testing.T) {
	h := startHerald(t, "../../examples/newsletter-double-opt-in")
	url := h.natsURL
	lines := `{"id":"explain-test-1","action":"form.submit","label":"Contact form","time":"2026-11-28T10:00:00Z","uuid":"lena-01","params":{"form_type":"contact","email":"lena@example.com","newsletter_agreement_enabled":"disabled"}}
{"id":"explain-test-2","action":"form.submit","label":"Newsletter form","time":"2026-11-28T10:05:00Z","uuid":"lena-01","params":{"form_type":"newsletter","email":"lena@example.com","newsletter_agreement_enabled":"enabled"}}
`
	if code, _, stderr := run(t, lines, "publish", "--nats", url, "-"); code != exitOK {
		t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
	}
	eventually(t, "lena's request", func() bool {
		rec, _, err := h.kv.Get(context.Background(), "lena-01")
		return err == nil && rec.Profile.Attributes["newsletterAgreement"] == "confirmation"
	})

	code, stdout, stderr := run(t, "", "profile", "--nats", url, "--explain", "lena-01")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	_, why, ok := strings.Cut(stdout, "\nWhy the rules did or did not fire (the engines' latest evaluations of this customer):\n")
	if !ok {
		t.Fatalf("no explanations:\n%s", stdout)
	}
	first, second, ok := strings.Cut(why, "(event explain-test-2)")
	if !ok || !strings.Contains(first, "form.submit              Contact form  (event explain-test-1)\n  why:\n") {
		t.Fatalf("the two events are not explained in order:\n%s", why)
	}
	if !strings.Contains(first, "    doi-request: ") || strings.Contains(first, "    doi-request: fired") {
		t.Errorf("the contact form's explanation does not say why doi-request did not fire:\n%s", first)
	}
	if !strings.Contains(first, "    newsletter-disabled: fired") {
		t.Errorf("the contact form's explanation does not show newsletter-disabled firing:\n%s", first)
	}
	if !strings.Contains(second, "    doi-request: fired") {
		t.Errorf("the newsletter form's explanation does not show doi-request firing:\n%s", second)
	}

	code, stdout, _ = run(t, "", "profile", "--nats", url, "--explain", "--json", "lena-01")
	var got struct {
		Explanations []struct {
			Explanation struct {
				Rules []struct{ Rule string }
			}
		}
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &got) != nil || len(got.Explanations) != 2 || len(got.Explanations[1].Explanation.Rules) == 0 {
		t.Errorf("--json: exit code %d, %d explanations:\n%s", code, len(got.Explanations), stdout)
	}

	_, stdout, _ = run(t, "", "profile", "--nats", url, "--explain", "nobody-01")
	if !strings.Contains(stdout, "  none kept: no running engine has evaluated an event of this customer since it started\n") {
		t.Errorf("a customer never handled:\n%s", stdout)
	}
}
