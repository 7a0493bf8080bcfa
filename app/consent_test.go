package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
)

// Consent end to end: link-only actions need a link's proof, and
// withdrawal wins over an older confirmation link.

// annaFormWithID is annaForm with an event id, which is the request its
// confirmation link is issued for.
func annaFormWithID(id string) string {
	return strings.Replace(annaForm, `{"action"`, `{"id":"`+id+`","action"`, 1)
}

// disabledForm unticks Anna's box.
const disabledForm = `{"action":"form.submit","label":"Account settings","uuid":"anna-7f3c","site":"shop.example.com","params":{"form_type":"account","newsletter_agreement_enabled":"disabled"}}`

// voidPageText is what the page of a withdrawn or replaced confirmation
// link says.
const voidPageText = "This confirmation link has been replaced or withdrawn"

// deadReasons returns the reasons of the dead letters of events, oldest
// first.
func (h *herald) deadReasons() []string {
	h.t.Helper()
	stream, err := h.js.Stream(context.Background(), natsbus.DeadStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		out = append(out, m.Header.Get(natsbus.HeaderReason))
	}
	return out
}

// assertVoid checks that GET and POST of a confirmation link get the 410
// page and publish nothing.
func (h *herald) assertVoid(u string) {
	h.t.Helper()
	events := h.streamMsgs(natsbus.EventsStream)
	code, page := get(h.t, u)
	if code != http.StatusGone || !strings.Contains(page, voidPageText) || strings.Contains(page, "<form") {
		h.t.Fatalf("GET of a void link: %d\n%s", code, page)
	}
	resp := post(h.t, u, "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), voidPageText) {
		h.t.Fatalf("POST of a void link: %d\n%s", resp.StatusCode, body)
	}
	if n := h.streamMsgs(natsbus.EventsStream); n != events {
		h.t.Fatalf("a void link published %d events", n-events)
	}
}

// settle waits until the events published so far for the customer uuid
// are handled: it sends a form with no agreement and no newsletter type,
// which changes only the customer's tags. A customer's events are handled
// in order, so once the tag is there everything before it was handled.
func (h *herald) settle(uuid string) {
	h.t.Helper()
	tag := "settled-" + time.Now().Format("150405.000000000")
	tag = strings.ReplaceAll(tag, ".", "-")
	h.publish("herald.events.web", `{"action":"form.submit","uuid":"`+uuid+`","params":{"form_type":"`+tag+`"}}`)
	eventually(h.t, "the events handled", func() bool { p := h.profile(uuid); return p != nil && p.HasTag(tag) })
}

// provenEvent returns the JSON of a link event for Anna's request with a
// valid proof, as the link page would publish it: a click that raced a
// withdrawal.
func provenEvent(t *testing.T, id, action, sourceEvent string) string {
	t.Helper()
	signer, err := links.NewSigner(links.Key{ID: "t1", Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: id, Action: action, Time: time.Now().UTC(), UUID: "anna-7f3c", Site: "shop.example.com",
		Params: map[string]any{"link": "confirm", "source_event": sourceEvent, "ip": "203.0.113.7", "user_agent": "Racer/1.0"}}
	proof, err := signer.Proof(ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.Params[links.ProofParam] = proof
	data, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Anyone who can publish to NATS cannot give consent in a customer's
// name: a newsletter.confirm without a link's proof is kept as a dead
// letter with the reason, and the agreement does not change.
func TestServeRefusesForgedLinkEvents(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	const request = "01KC0000000000000000000001"
	h.publish("herald.events.web", annaFormWithID(request))
	confirm := link(t, h.emails(1)[0].text)

	// Even naming the right request, without a proof, with a made-up
	// one, or with a real proof of another event.
	h.publish("herald.events.web", `{"action":"newsletter.confirm","uuid":"anna-7f3c","params":{"ip":"6.6.6.6","user_agent":"forged","source_event":"`+request+`"}}`)
	h.publish("herald.events.web", `{"action":"newsletter.confirm","uuid":"anna-7f3c","params":{"ip":"6.6.6.6","user_agent":"forged","source_event":"`+request+`","link_proof":"v1.t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`)
	changed := strings.Replace(provenEvent(t, "01KC0000000000000000000002", "newsletter.confirm", request), "203.0.113.7", "6.6.6.6", 1)
	h.publish("herald.events.link", changed)
	h.publish("herald.events.web", `{"action":"newsletter.unsubscribe","uuid":"anna-7f3c","params":{"link":"unsubscribe"}}`)
	eventually(t, "four dead letters", func() bool { return h.streamMsgs(natsbus.DeadStream) == 4 })
	reasons := h.deadReasons()
	for i, want := range []string{"no link_proof param", "bad signature", "bad signature", "no link_proof param"} {
		action := "newsletter.confirm"
		if i == 3 {
			action = "newsletter.unsubscribe"
		}
		if !strings.Contains(reasons[i], "link-only action "+action+" without a valid link proof") || !strings.Contains(reasons[i], want) {
			t.Errorf("dead letter %d reason %q, want the action and %q", i, reasons[i], want)
		}
	}
	h.settle("anna-7f3c")
	if got := h.attribute("anna-7f3c", "newsletterAgreement"); got != "confirmation" {
		t.Fatalf("a forged event changed the agreement to %v", got)
	}
	if p := h.profile("anna-7f3c"); p.Attributes["newsletterConfirmedIp"] != nil || p.HasTag("subscriber") {
		t.Fatalf("profile after forged events: %+v", p)
	}
	if n := len(h.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails, want only the request", n)
	}

	// The real link still works: its event carries the page's proof.
	if resp := post(t, confirm, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST of the real link: %d", resp.StatusCode)
	}
	eventually(t, "the agreement enabled", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "enabled" })
	if h.streamMsgs(natsbus.DeadStream) != 4 {
		t.Fatal("the real link's event was dead-lettered")
	}
}

// Withdrawal wins: after unticking the box, the older confirmation link
// is void, on the page and in the rules.
func TestServeConfirmationLinkVoidAfterDisabled(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	const request = "01KC0000000000000000000011"
	h.publish("herald.events.web", annaFormWithID(request))
	confirm := link(t, h.emails(1)[0].text)
	h.publish("herald.events.web", disabledForm)
	eventually(t, "the agreement disabled", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "disabled" })

	h.assertVoid(confirm)

	// A click that raced the withdrawal (its event proven, published
	// after the withdrawal) confirms nothing either: the rules check too.
	h.publish("herald.events.link", provenEvent(t, "01KC0000000000000000000012", "newsletter.confirm", request))
	h.settle("anna-7f3c")
	if got := h.attribute("anna-7f3c", "newsletterAgreement"); got != "disabled" {
		t.Fatalf("agreement %v after the old link, want disabled", got)
	}
	if n := len(h.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails, want only the request", n)
	}
	if h.streamMsgs(natsbus.DeadStream) != 0 {
		t.Fatalf("dead letters: %q", h.deadReasons())
	}
}

// Withdrawal wins after a one-click unsubscribe too, and the evidence of
// the confirmation stays on the profile.
func TestServeConfirmationLinkVoidAfterUnsubscribe(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	h.publish("herald.events.web", annaFormWithID("01KC0000000000000000000021"))
	confirm := link(t, h.emails(1)[0].text)
	if resp := post(t, confirm, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	confirmed := h.emails(2)[1]
	eventually(t, "the agreement enabled", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "enabled" })
	evidence := h.profile("anna-7f3c").Attributes

	// Pressing the button of the link that confirmed is harmless.
	if code, _ := get(t, confirm); code != http.StatusOK {
		t.Fatalf("GET of the link that confirmed, while enabled: %d", code)
	}

	unsub := strings.Trim(confirmed.header.Get("List-Unsubscribe"), "<>")
	if resp := post(t, unsub, "List-Unsubscribe=One-Click"); resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}
	eventually(t, "the unsubscribe", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "disabled" })

	h.assertVoid(confirm)
	h.settle("anna-7f3c")
	p := h.profile("anna-7f3c")
	if p.Attributes["newsletterAgreement"] != "disabled" || p.HasTag("subscriber") || p.Attributes["newsletterDisabledAt"] == nil {
		t.Fatalf("profile after the old link: %+v", p)
	}
	for _, name := range []string{"newsletterConfirmedAt", "newsletterConfirmedIp", "newsletterConfirmedUserAgent", "newsletterConfirmedRequest"} {
		if p.Attributes[name] == nil || p.Attributes[name] != evidence[name] {
			t.Errorf("%s = %v after the withdrawal, want the confirmation's %v", name, p.Attributes[name], evidence[name])
		}
	}
	if n := len(h.smtp.Messages()); n != 2 {
		t.Fatalf("%d emails, want the request and the confirmation", n)
	}
}

// A newer request replaces the older one: the first link is void, the
// second confirms.
func TestServeConfirmationLinkVoidAfterNewerRequest(t *testing.T) {
	h := startHerald(t, "../examples/newsletter-double-opt-in")
	h.publish("herald.events.web", annaFormWithID("01KC0000000000000000000031"))
	first := link(t, h.emails(1)[0].text)
	h.publish("herald.events.web", annaFormWithID("01KC0000000000000000000032"))
	second := link(t, h.emails(2)[1].text)
	if first == second {
		t.Fatal("the two requests have the same link")
	}
	eventually(t, "the newer request", func() bool {
		return h.attribute("anna-7f3c", "newsletterRequestEvent") == "01KC0000000000000000000032"
	})

	h.assertVoid(first)
	// A raced click on the first link confirms nothing.
	h.publish("herald.events.link", provenEvent(t, "01KC0000000000000000000033", "newsletter.confirm", "01KC0000000000000000000031"))
	h.settle("anna-7f3c")
	if got := h.attribute("anna-7f3c", "newsletterAgreement"); got != "confirmation" {
		t.Fatalf("agreement %v after the first link, want confirmation", got)
	}

	if resp := post(t, second, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST of the second link: %d", resp.StatusCode)
	}
	if m := h.emails(3)[2]; m.subject != "Your newsletter subscription is confirmed" {
		t.Fatalf("third email %q", m.subject)
	}
	eventually(t, "the agreement enabled", func() bool { return h.attribute("anna-7f3c", "newsletterAgreement") == "enabled" })
	if got := h.attribute("anna-7f3c", "newsletterConfirmedRequest"); got != "01KC0000000000000000000032" {
		t.Fatalf("confirmed request %v", got)
	}
}
