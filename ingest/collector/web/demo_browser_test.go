package web

import (
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserDemoPage(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	w := httptest.NewRecorder()
	Demo(testWriteKey).ServeHTTP(w, httptest.NewRequest("GET", "/demo", nil))
	c.page("/demo", w.Body.String())
	tb := newTab(t)
	tb.navigate(c.url("/demo"))

	visit := c.waitEvent(t, "the demo's page.visit", action("page.visit"))
	if visit.Label != "Visited page Herald demo shop" {
		t.Errorf("label = %q", visit.Label)
	}
	if got := tb.evalString(`document.getElementById("visitor").textContent`); got != visit.UUID {
		t.Errorf("the page shows visitor %q, events carry %q", got, visit.UUID)
	}

	tb.click("view-mug")
	view := c.waitEvent(t, "product.view", action("product.view"))
	if view.Params["sku"] != "MUG-LH-350" || view.Label != "Viewed Lighthouse mug" {
		t.Errorf("product.view = %q %v", view.Label, view.Params)
	}

	tb.do(
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name=firstname]`), "Ada"),
		chromedp.Click(chromedp.CSS(`input[name=newsletter_agreement]`)),
		chromedp.Click(chromedp.CSS(`#newsletter button`)),
		chromedp.WaitVisible(chromedp.ID("thanks")),
	)
	f := c.waitForm(t, "the sign-up form", func(f wireForm) bool { return f.FormType == "signup" })
	wantData := map[string]any{"email": "ada@example.com", "firstname": "Ada", "newsletter_agreement": "enabled"}
	wantMapping := map[string]string{"email": "email", "firstname": "firstname", "newsletterAgreement": "newsletter_agreement"}
	if !reflect.DeepEqual(f.Data, wantData) || !reflect.DeepEqual(f.Mapping, wantMapping) {
		t.Errorf("form = data %v mapping %v\nwant data %v mapping %v", f.Data, f.Mapping, wantData, wantMapping)
	}
	if ex := tb.exceptions(); len(ex) > 0 {
		t.Errorf("the demo page threw: %q", ex)
	}
}
