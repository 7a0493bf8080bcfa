package web

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserPageVisitsAndSession(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/start", testPage("Start", fast, "", `<a id="go" href="/shop?x=1">Shop</a>`))
	c.page("/shop", testPage("Shop", fast, "", `<p>shop</p>`))
	tb := newTab(t)

	tb.navigate(c.url("/start"))
	start := c.waitEvent(t, "page.visit of /start", visitOf(c.url("/start")))
	if start.Label != "Visited page Start" {
		t.Errorf("label = %q, want %q", start.Label, "Visited page Start")
	}
	wantParams := map[string]any{"url": c.url("/start"), "title": "Start", "referrer": ""}
	if !reflect.DeepEqual(start.Params, wantParams) {
		t.Errorf("params = %v, want %v", start.Params, wantParams)
	}
	events := c.allEvents()
	if events[0].Action != "session.start" || events[0].Label != "Started session" {
		t.Fatalf("first event = %s %q, want session.start \"Started session\"", events[0].Action, events[0].Label)
	}
	sessionID := events[0].Params["session"]
	if sessionID == nil || sessionID == "" {
		t.Errorf("session.start has no session param: %v", events[0].Params)
	}

	// Following a link: the next page's visit has this page as referrer.
	tb.click("go")
	shop := c.waitEvent(t, "page.visit of /shop", visitOf(c.url("/shop?x=1")))
	if shop.Label != "Visited page Shop" || shop.Params["title"] != "Shop" || shop.Params["referrer"] != c.url("/start") {
		t.Errorf("visit of /shop = %q %v, want label \"Visited page Shop\", title Shop, referrer %s", shop.Label, shop.Params, c.url("/start"))
	}
	// Leaving /start ended the session provisionally; /shop goes on in it.
	end := c.waitEvent(t, "session.end on pagehide", action("session.end"))
	if end.Params["reason"] != "pagehide" || end.Params["session"] != sessionID || end.Label != "Session end" {
		t.Errorf("session.end = %q %v, want reason pagehide for session %v", end.Label, end.Params, sessionID)
	}

	// A reload keeps the visitor: same uuid, no new session.
	tb.do(chromedp.Reload())
	c.waitEvents(t, "a second visit of /shop", 2, visitOf(c.url("/shop?x=1")))
	stored := tb.evalString(`localStorage.getItem("herald_uuid")`)
	if got := tb.evalString(`Herald.uuid()`); got != stored || got == "" {
		t.Errorf("Herald.uuid() = %q, localStorage herald_uuid = %q", got, stored)
	}
	for _, e := range c.allEvents() {
		if e.UUID != stored {
			t.Errorf("%s has uuid %q, want %q", e.Action, e.UUID, stored)
		}
	}
	if n := len(c.eventsWhere(action("session.start"))); n != 1 {
		t.Errorf("%d session.start events, want 1:\n%s", n, c.dump())
	}

	// The visitor comes back after more than sessionTimeout: the old session
	// ends at its last activity, and a new one starts.
	last := time.Now().Add(-31 * time.Minute).UnixMilli()
	tb.eval(`(() => {
		const s = JSON.parse(localStorage.getItem("herald_session"));
		s.last = ` + strconv.FormatInt(last, 10) + `; s.ended = false;
		localStorage.setItem("herald_session", JSON.stringify(s));
		Herald.track("Came back", {});
	})()`)
	back := c.waitEvent(t, "the event after the timeout", func(e wireEvent) bool { return e.Label == "Came back" })
	all := c.allEvents()
	i := indexOf(all, back.ID)
	if i < 2 || all[i-2].Action != "session.end" || all[i-1].Action != "session.start" {
		t.Fatalf("want session.end, session.start before the event:\n%s", c.dump())
	}
	timeout, restart := all[i-2], all[i-1]
	if timeout.Params["reason"] != "timeout" || timeout.Params["session"] != sessionID {
		t.Errorf("timeout session.end params = %v, want reason timeout, session %v", timeout.Params, sessionID)
	}
	if want := time.UnixMilli(last).UTC().Format("2006-01-02T15:04:05.000Z"); timeout.Time != want {
		t.Errorf("timeout session.end time = %s, want the last activity %s", timeout.Time, want)
	}
	if restart.Params["session"] == sessionID {
		t.Errorf("the new session kept the old id %v", sessionID)
	}
	if back.Action != "event.custom" {
		t.Errorf("track sent action %q, want event.custom", back.Action)
	}
}

func TestBrowserSinglePageAppVisits(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/app", testPage("Home", fast, "", `<p>app</p>`))
	tb := newTab(t)
	tb.navigate(c.url("/app"))
	c.waitEvent(t, "the first visit", visitOf(c.url("/app")))

	tb.eval(`history.pushState({}, "", "/app/two"); document.title = "Two"`)
	two := c.waitEvent(t, "the visit of /app/two", visitOf(c.url("/app/two")))
	if two.Label != "Visited page Two" || two.Params["title"] != "Two" || two.Params["referrer"] != c.url("/app") {
		t.Errorf("visit = %q %v, want label \"Visited page Two\", referrer %s", two.Label, two.Params, c.url("/app"))
	}

	// The same URL again is no new visit; going back is.
	tb.eval(`history.replaceState({step: 2}, "", "/app/two")`)
	tb.eval(`history.back()`)
	c.waitEvents(t, "the visit of /app after back", 2, visitOf(c.url("/app")))
	if n := len(c.eventsWhere(visitOf(c.url("/app/two")))); n != 1 {
		t.Errorf("%d visits of /app/two, want 1:\n%s", n, c.dump())
	}

	// A jump to an anchor is no new page.
	tb.eval(`location.hash = "section"`)
	tb.eval(`history.pushState({}, "", "/app/three")`)
	three := c.waitEvent(t, "the visit of /app/three", visitOf(c.url("/app/three")))
	if three.Params["referrer"] != c.url("/app") {
		t.Errorf("referrer = %v, want the last visit %s", three.Params["referrer"], c.url("/app"))
	}
	if n := len(c.eventsWhere(visitOf(c.url("/app#section")))); n != 0 {
		t.Errorf("a #fragment change counted as a visit:\n%s", c.dump())
	}
}

func TestBrowserDeclarativeClicks(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/p", testPage("Product", fast, "", `
		<button id="view" data-herald-event="product.view" data-herald-param-sku="A-12"
			data-herald-param-product-name="Mug" data-herald-label="Viewed A-12"><span id="inner">View</span></button>
		<button id="stopper" data-herald-event="product.compare" data-herald-param-sku="B-7"
			onclick="event.stopPropagation()">Compare</button>
		<button id="plain">Not tracked</button>`))
	tb := newTab(t)
	tb.navigate(c.url("/p"))

	tb.click("inner") // inside the tracked element
	view := c.waitEvent(t, "product.view", action("product.view"))
	want := map[string]any{"sku": "A-12", "product_name": "Mug"}
	if view.Label != "Viewed A-12" || !reflect.DeepEqual(view.Params, want) {
		t.Errorf("product.view = %q %v, want \"Viewed A-12\" %v", view.Label, view.Params, want)
	}

	// The listener captures, so a page that stops propagation is tracked too.
	tb.click("stopper")
	cmp := c.waitEvent(t, "product.compare", action("product.compare"))
	if cmp.Label != "product.compare" || cmp.Params["sku"] != "B-7" {
		t.Errorf("product.compare = %q %v", cmp.Label, cmp.Params)
	}

	// Elements added later are tracked without any call.
	tb.click("plain")
	tb.eval(`document.body.insertAdjacentHTML("beforeend",
		'<a id="late" href="#promo" data-herald-event="promo.click" data-herald-param-id="7">Promo</a>')`)
	tb.click("late")
	late := c.waitEvent(t, "promo.click", action("promo.click"))
	if late.Params["id"] != "7" {
		t.Errorf("promo.click params = %v", late.Params)
	}
	for _, e := range c.allEvents() {
		if !strings.HasPrefix(e.Action, "product.") && !strings.HasPrefix(e.Action, "promo.") &&
			!strings.HasPrefix(e.Action, "session.") && e.Action != "page.visit" {
			t.Errorf("unexpected event %s", e.Action)
		}
	}
}

func TestBrowserCustomEvents(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/c", testPage("Custom", fast, "", ``))
	tb := newTab(t)
	tb.navigate(c.url("/c"))
	c.waitEvent(t, "the visit", action("page.visit"))

	tb.eval(`
		Herald.trackCustomEvent("bad action", {a: 1});
		Herald.trackCustomEvent("cart", {});
		Herald.trackCustomEvent("a.very.long.action.name.that.breaks", {});
		Herald.track();
		Herald.track("Clicked banner", {position: 1, promo: "spring", ok: true, nested: {x: 1}, list: [1]});
		Herald.trackCustomEvent("cart.add", {sku: "A-12", qty: 2}, "Added A-12 to cart");
		Herald.event.trackCustomEvent("cart.remove", {sku: "A-12"});
		Herald.flush()`)
	remove := c.waitEvent(t, "cart.remove", action("cart.remove"))

	banner := c.eventsWhere(action("event.custom"))
	if len(banner) != 1 {
		t.Fatalf("%d event.custom, want 1:\n%s", len(banner), c.dump())
	}
	want := map[string]any{"position": 1.0, "promo": "spring", "ok": true}
	if banner[0].Label != "Clicked banner" || !reflect.DeepEqual(banner[0].Params, want) {
		t.Errorf("track sent %q %v, want \"Clicked banner\" %v", banner[0].Label, banner[0].Params, want)
	}
	add := c.eventsWhere(action("cart.add"))
	if len(add) != 1 || add[0].Label != "Added A-12 to cart" || !reflect.DeepEqual(add[0].Params, map[string]any{"sku": "A-12", "qty": 2.0}) {
		t.Errorf("cart.add = %+v", add)
	}
	if remove.Label != "cart.remove" {
		t.Errorf("cart.remove label = %q, want the action", remove.Label)
	}
	// Events go in order, so an invalid one would have arrived by now.
	for _, e := range c.allEvents() {
		if e.Action == "bad action" || e.Action == "cart" || strings.HasPrefix(e.Action, "a.very") {
			t.Errorf("invalid action %q was sent", e.Action)
		}
	}
	w := tb.waitWarning(`Herald: action "bad action" not sent`)
	if !strings.Contains(w, "dot-separated") || !strings.Contains(w, "32 characters") {
		t.Errorf("warning %q does not name the rule", w)
	}
	tb.waitWarning(`Herald: action "cart" not sent`)
	tb.waitWarning(`Herald: action "a.very.long.action.name.that.breaks" not sent`)
	tb.waitWarning(`Herald: track needs a label`)
	tb.waitWarning(`Herald: param "nested" dropped`)
	if ex := tb.exceptions(); len(ex) > 0 {
		t.Errorf("herald.js threw into the page: %q", ex)
	}
}

func TestBrowserQueueBeforeLoad(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/q", `<!doctype html><html><head><title>Queued</title>
		<script>window.Herald = window.Herald || {q: []};
		Herald.q.push(["init", {writeKey: "`+testWriteKey+`", flushInterval: 50}]);
		Herald.q.push(["trackCustomEvent", "queue.early", {n: 1}, "Early"]);</script>
		<script async src="/herald.js"></script></head><body></body></html>`)
	tb := newTab(t)
	tb.navigate(c.url("/q"))
	e := c.waitEvent(t, "the queued event", action("queue.early"))
	if e.Label != "Early" || e.Params["n"] != 1.0 {
		t.Errorf("queue.early = %q %v", e.Label, e.Params)
	}
	tb.eval(`Herald.q.push(["track", "Late push", {}])`)
	c.waitEvent(t, "an event pushed after load", func(e wireEvent) bool { return e.Label == "Late push" })
}

// TestBrowserOldBrowser runs herald.js without localStorage (the uuid and
// the session go to cookies) and without crypto.randomUUID (ids are 32 hex
// digits), as in a locked-down or insecure-context browser.
func TestBrowserOldBrowser(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	noStorage := `<script>Object.defineProperty(window, "localStorage",
		{get() { throw new DOMException("denied", "SecurityError") }});
		crypto.randomUUID = undefined;</script>`
	c.page("/nols", testPage("No storage", fast, noStorage, ``))
	tb := newTab(t)
	tb.navigate(c.url("/nols"))
	first := c.waitEvent(t, "the visit", action("page.visit"))
	cookie := tb.evalString(`document.cookie`)
	if !strings.Contains(cookie, "herald_uuid="+first.UUID) || !strings.Contains(cookie, "herald_session=") {
		t.Fatalf("cookies = %q, want herald_uuid=%s and herald_session", cookie, first.UUID)
	}
	tb.do(chromedp.Reload())
	visits := c.waitEvents(t, "the visit after reload", 2, action("page.visit"))
	if visits[1].UUID != first.UUID {
		t.Errorf("uuid after reload = %q, want %q", visits[1].UUID, first.UUID)
	}
	if n := len(c.eventsWhere(action("session.start"))); n != 1 {
		t.Errorf("%d session.start, want 1 (the session lives in a cookie)", n)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, e := range c.allEvents() {
		if !hex32.MatchString(e.ID) || !hex32.MatchString(e.UUID) {
			t.Errorf("%s: id %q, uuid %q, want 32 hex digits each", e.Action, e.ID, e.UUID)
		}
	}
}

func indexOf(events []wireEvent, id string) int {
	for i, e := range events {
		if e.ID == id {
			return i
		}
	}
	return -1
}
