package web

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// slow keeps events queued: nothing is sent before the page leaves.
const slow = `{flushInterval: 60000, batchSize: 100}`

func TestBrowserLeavingSendsQueuedEvents(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/slow", testPage("Slow", slow, "", ``))
	tb := newTab(t)
	tb.navigate(c.url("/slow"))
	tb.eval(`for (let i = 0; i < 3; i++) Herald.trackCustomEvent("queued.event", {i: i})`)
	if n := len(c.allEvents()); n != 0 {
		t.Fatalf("%d events sent before the page left, want 0 (flushInterval 60 s)", n)
	}
	if q := tb.evalString(`localStorage.getItem("herald_queue")`); strings.Count(q, `"action":"queued.event"`) != 3 {
		t.Errorf("herald_queue = %s, want the 3 events persisted", q)
	}

	tb.navigate("about:blank") // pagehide: sendBeacon
	c.waitEvents(t, "the queued events", 3, action("queued.event"))
	end := c.waitEvent(t, "session.end", action("session.end"))
	if end.Params["reason"] != "pagehide" || end.Label != "Session end" {
		t.Errorf("session.end = %q %v, want reason pagehide", end.Label, end.Params)
	}
	got := actions(c.allEvents())
	want := []string{"session.start", "page.visit", "queued.event", "queued.event", "queued.event", "session.end"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestBrowserClosingTheTabSendsQueuedEvents(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.page("/slow", testPage("Slow", slow, "", ``))
	tb := newTab(t)
	tb.navigate(c.url("/slow"))
	tb.eval(`Herald.trackCustomEvent("closing.tab", {})`)
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	id := chromedp.FromContext(tb.ctx).Target.TargetID
	if _, err := chromedp.CallBrowser(ctx, target.CloseTarget, target.CloseTargetParams{TargetID: id}); err != nil {
		t.Fatalf("close the tab: %v", err)
	}
	c.waitEvent(t, "the event queued in the closed tab", action("closing.tab"))
	c.waitEvent(t, "session.end from the closed tab", action("session.end"))
}

func TestBrowserRetriesUntilTheCollectorRecovers(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.setMode(answerUnavailable) // 503, Retry-After: 1
	c.page("/r", testPage("Retry", fast, "", ``))
	tb := newTab(t)
	tb.navigate(c.url("/r"))
	tb.eval(`Herald.trackCustomEvent("retry.me", {n: 1}); Herald.trackCustomEvent("retry.me", {n: 2})`)

	waitFor(t, "two refused attempts", func() bool {
		n, _ := c.failedAttempts()
		return n >= 2
	}, c.dump)
	if n := len(c.allEvents()); n != 0 {
		t.Fatalf("%d events accepted while the collector refused them", n)
	}
	c.setMode(answerOK)
	accepted := c.waitEvents(t, "the retried events", 2, action("retry.me"))

	_, failed := c.failedAttempts()
	if ids(accepted, "retry.me") != ids(failed, "retry.me") {
		t.Errorf("retried events changed ids: accepted %s, refused %s", ids(accepted, "retry.me"), ids(failed, "retry.me"))
	}
	if n := len(c.eventsWhere(action("retry.me"))); n != 2 {
		t.Errorf("%d retry.me events accepted, want 2", n)
	}
}

func TestBrowserQueueSurvivesReloadWhileUnreachable(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	c.setMode(dropConnection)
	c.page("/u", testPage("Unreachable", fast, "", ``))
	tb := newTab(t)
	tb.navigate(c.url("/u"))
	tb.eval(`Herald.trackCustomEvent("survive.reload", {})`)
	waitFor(t, "a dropped attempt with the event", func() bool {
		_, failed := c.failedAttempts()
		return ids(failed, "survive.reload") != ""
	}, c.dump)

	tb.do(chromedp.Reload()) // the beacon on leaving is dropped too
	c.setMode(answerOK)
	got := c.waitEvent(t, "the event queued before the reload", action("survive.reload"))
	_, failed := c.failedAttempts()
	if !strings.Contains(ids(failed, "survive.reload"), got.ID) {
		t.Errorf("the event came back with a new id %s; dropped ones: %s", got.ID, ids(failed, "survive.reload"))
	}
	c.waitEvents(t, "the visit of the reloaded page", 2, action("page.visit"))
}

func actions(events []wireEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Action)
	}
	return out
}

// ids lists the distinct ids of the events with the action, sorted.
func ids(events []wireEvent, act string) string {
	seen := map[string]bool{}
	var out []string
	for _, e := range events {
		if e.Action == act && !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e.ID)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
