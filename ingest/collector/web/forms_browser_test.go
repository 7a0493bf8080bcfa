package web

import (
	"reflect"
	"strings"
	"testing"
)

const signupForm = `
<form id="signup" data-herald="newsletter" data-herald-label="Newsletter signup">
  <input name="email" data-herald="email" value="ada@example.com">
  <input name="first_name" data-herald="firstname" value="Ada">
  <input name="phone" data-herald="phone" value="">
  <input name="comment" value="not for Herald">
  <input type="password" name="pw" data-herald="password" value="secret">
  <select name="size" data-herald-attribute="company_size"><option>1-10</option><option selected>11-50</option></select>
  <input type="radio" name="plan" value="basic" data-herald-attribute="plan">
  <input type="radio" name="plan" value="pro" data-herald-attribute="plan" checked>
  <label><input type="checkbox" id="agree" name="newsletter_agreement"
    data-herald="newsletterAgreement" data-herald-value="enabled"> Send me the newsletter</label>
  <button id="send">Send</button>
</form>
<p id="status"></p>
<script>
  let submits = 0;
  document.getElementById("signup").addEventListener("submit", e => {
    e.preventDefault(); // the page stays
    document.getElementById("status").textContent = "sent " + (++submits);
  });
</script>`

func TestBrowserFormSubmit(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/form", testPage("Form", fast, "", signupForm))
	tb := newTab(t)
	tb.navigate(c.url("/form"))
	uuid := tb.evalString(`Herald.uuid()`)

	tb.click("agree")
	tb.click("send")
	checked := c.waitForm(t, "the form with the box checked", func(f wireForm) bool { return true })
	wantData := map[string]any{
		"email": "ada@example.com", "first_name": "Ada", "company_size": "11-50", "plan": "pro",
		"newsletter_agreement": "enabled",
	}
	wantMapping := map[string]string{"email": "email", "firstname": "first_name", "newsletterAgreement": "newsletter_agreement"}
	if checked.FormType != "newsletter" || checked.Label != "Newsletter signup" || checked.UUID != uuid {
		t.Errorf("form = %s %q uuid %s, want newsletter \"Newsletter signup\" uuid %s", checked.FormType, checked.Label, checked.UUID, uuid)
	}
	if !reflect.DeepEqual(checked.Data, wantData) {
		t.Errorf("data = %v\nwant %v", checked.Data, wantData)
	}
	if !reflect.DeepEqual(checked.Mapping, wantMapping) {
		t.Errorf("mapping = %v\nwant %v", checked.Mapping, wantMapping)
	}
	if !reflect.DeepEqual(checked.Attributes, []string{"company_size", "plan"}) {
		t.Errorf("attributes = %v, want [company_size plan]", checked.Attributes)
	}

	// Unchecked, the agreement is not sent at all.
	tb.click("agree")
	tb.click("send")
	waitFor(t, "the second form", func() bool { return len(c.allForms()) == 2 }, c.dump)
	unchecked := c.allForms()[1]
	if _, ok := unchecked.Data["newsletter_agreement"]; ok {
		t.Errorf("unchecked box sent: data = %v", unchecked.Data)
	}
	if _, ok := unchecked.Mapping["newsletterAgreement"]; ok {
		t.Errorf("unchecked box mapped: mapping = %v", unchecked.Mapping)
	}
	if unchecked.ID == checked.ID {
		t.Errorf("two submissions share the id %s", checked.ID)
	}
	if got := tb.evalString(`document.getElementById("status").textContent`); got != "sent 2" {
		t.Errorf("the page's own submit handler saw %q, want \"sent 2\"", got)
	}

	// A form added later is captured after forms.scan(), once however often
	// scan runs.
	tb.eval(`document.body.insertAdjacentHTML("beforeend",
		'<form id="late" data-herald="contact,newsletter"><input name="mail" data-herald="email" value="late@example.com">' +
		'<button id="late-send">Go</button></form>');
		document.getElementById("late").addEventListener("submit", e => e.preventDefault());
		Herald.forms.scan(); Herald.forms.scan();`)
	tb.click("late-send")
	late := c.waitForm(t, "the form added later", func(f wireForm) bool { return f.FormType == "contact,newsletter" })
	if late.Data["mail"] != "late@example.com" || late.Mapping["email"] != "mail" {
		t.Errorf("late form = %v %v", late.Data, late.Mapping)
	}

	// forms.send sends directly and answers the callback.
	tb.eval(`new Promise(resolve => Herald.forms.send("contact", {email: "x@example.com", topic: "mugs"},
		{email: "email"}, ["topic"], (err, res) => { window.answer = {err: String(err), id: res && res.id}; resolve(); }))`)
	direct := c.waitForm(t, "the form sent by forms.send", func(f wireForm) bool { return f.FormType == "contact" })
	if got := tb.evalString(`JSON.stringify(window.answer)`); got != `{"err":"null","id":"`+direct.ID+`"}` {
		t.Errorf("callback got %s, want the collector's answer with id %s", got, direct.ID)
	}
	if !reflect.DeepEqual(direct.Attributes, []string{"topic"}) || direct.Data["topic"] != "mugs" {
		t.Errorf("forms.send sent %+v", direct)
	}
	if n := len(c.eventsWhere(func(e wireEvent) bool { return strings.HasPrefix(e.Action, "form") })); n != 0 {
		t.Errorf("forms were sent as events")
	}
	if n := len(c.allForms()); n != 4 {
		t.Errorf("%d forms, want 4 (the late form once):\n%s", n, c.dump())
	}
}

func TestBrowserFormThatNavigatesAway(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/contact", testPage("Contact", `{flushInterval: 60000}`, "", `
		<form data-herald="contact" action="/thanks" method="get">
		  <input name="email" data-herald="email" value="bea@example.com">
		  <button id="go">Send</button>
		</form>`))
	c.page("/thanks", `<!doctype html><title>Thanks</title><p id="thanks">Thanks</p>`)
	tb := newTab(t)
	tb.navigate(c.url("/contact"))
	tb.click("go")
	f := c.waitForm(t, "the form sent as the page left", func(f wireForm) bool { return true })
	if f.Data["email"] != "bea@example.com" {
		t.Errorf("data = %v", f.Data)
	}
	// The page's events, waiting for a long flush interval, went along.
	c.waitEvent(t, "the visit, sent on leaving", action("page.visit"))
}
