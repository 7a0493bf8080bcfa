package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
)

// shortDelays copies the double opt-in example with its timers made
// short: the reminder after 2 seconds, the expiry after 5.
func shortDelays(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, "../examples/newsletter-double-opt-in", dir)
	path := filepath.Join(dir, "rules.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for from, to := range map[string]string{"after: 2d": "after: 2s", "after: 7d": "after: 5s"} {
		if !strings.Contains(s, from) {
			t.Fatalf("the example's rules have no %q", from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func subjectsTo(smtp *smtptest.Server, to string) []string {
	var out []string
	for _, m := range smtp.Messages() {
		if m.To[0] == to {
			out = append(out, subjectOf(m.Data))
		}
	}
	return out
}

func subjectOf(data []byte) string {
	for _, line := range strings.Split(string(data), "\r\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			return s
		}
	}
	return ""
}

const (
	requestSubject   = "Please confirm your newsletter subscription"
	reminderSubject  = "Reminder: please confirm your newsletter subscription"
	expiredSubject   = "Your newsletter request has expired"
	confirmedSubject = "Your newsletter subscription is confirmed"
)

// The double opt-in journey on herald serve, with short delays: a
// customer who never confirms is reminded once, then the request
// expires; one who confirms before the reminder, or withdraws, gets
// neither.
func TestServeDoubleOptInRemindsThenExpires(t *testing.T) {
	h := startHerald(t, shortDelays(t))
	form := func(uuid, email, agreement string) string {
		return `{"action":"form.submit","label":"Newsletter form","uuid":"` + uuid + `","params":{"form_type":"newsletter","email":"` + email + `","newsletter_agreement_enabled":"` + agreement + `"}}`
	}
	h.publish("herald.events.web", form("bob-1", "bob@example.com", "enabled"))
	h.publish("herald.events.web", form("anna-1", "anna@example.com", "enabled"))
	h.publish("herald.events.web", form("eve-1", "eve@example.com", "enabled"))
	var bobLink string
	for _, m := range h.emails(3) {
		switch m.to {
		case "anna@example.com":
			// Anna confirms at once.
			if resp := post(t, link(t, m.text), ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("anna's confirmation: %d", resp.StatusCode)
			}
		case "bob@example.com":
			bobLink = link(t, m.text)
		}
	}
	// Eve unticks the box.
	h.publish("herald.events.web", form("eve-1", "eve@example.com", "disabled"))
	eventually(t, "eve's withdrawal", func() bool { return h.attribute("eve-1", "newsletterAgreement") == "disabled" })
	eventually(t, "anna's confirmation", func() bool { return h.attribute("anna-1", "newsletterAgreement") == "enabled" })

	// Bob: the reminder, then the expiry.
	eventually(t, "bob's request to expire", func() bool { return h.attribute("bob-1", "newsletterExpiredAt") != nil })
	eventually(t, "bob's expiry email", func() bool { return len(subjectsTo(h.smtp, "bob@example.com")) == 3 })
	if got := subjectsTo(h.smtp, "bob@example.com"); got[0] != requestSubject || got[1] != reminderSubject || got[2] != expiredSubject {
		t.Fatalf("bob's emails: %q", got)
	}
	requested, reminded, expired := h.timeAttr("bob-1", "newsletterRequestedAt"), h.timeAttr("bob-1", "newsletterRemindedAt"), h.timeAttr("bob-1", "newsletterExpiredAt")
	if reminded.Sub(requested) < 2*time.Second || expired.Sub(requested) < 5*time.Second {
		t.Fatalf("requested %s, reminded %s, expired %s: before their delays", requested, reminded, expired)
	}
	p := h.profile("bob-1")
	if _, ok := p.Attributes["newsletterAgreement"]; ok {
		t.Errorf("bob's agreement after the expiry: %v, want none", p.Attributes["newsletterAgreement"])
	}
	if _, ok := p.Attributes["newsletterRequestEvent"]; ok || p.Attributes["newsletterExpiredRequest"] == nil {
		t.Errorf("bob's request after the expiry: %+v", p.Attributes)
	}
	if code, _ := get(t, bobLink); code != http.StatusGone {
		t.Errorf("bob's expired link: %d, want %d", code, http.StatusGone)
	}

	// Long enough for any timer left to fire.
	time.Sleep(2 * time.Second)
	if got := subjectsTo(h.smtp, "anna@example.com"); len(got) != 2 || got[0] != requestSubject || got[1] != confirmedSubject {
		t.Errorf("anna, who confirmed before the reminder: emails %q", got)
	}
	if got := subjectsTo(h.smtp, "eve@example.com"); len(got) != 1 || got[0] != requestSubject {
		t.Errorf("eve, who withdrew before the reminder: emails %q", got)
	}
	if got := subjectsTo(h.smtp, "bob@example.com"); len(got) != 3 {
		t.Errorf("bob: emails %q", got)
	}
	for _, uuid := range []string{"anna-1", "bob-1", "eve-1"} {
		if n := h.pendingTimers(uuid); n != 0 {
			t.Errorf("%s has %d timers left", uuid, n)
		}
	}
}
