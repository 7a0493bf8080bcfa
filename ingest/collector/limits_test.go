package collector_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-events/herald/ingest/collector"
)

// limited is a collector allowing 1 request a second, 2 at once, per
// write key and per client address.
func limited(t *testing.T, trustProxy bool) *env {
	return newEnv(t, func(c *collector.Config) {
		c.Rate, c.Burst, c.TrustProxy = 1, 2, trustProxy
	})
}

// want checks the status of an answer; for 429 its Retry-After too.
func want(t *testing.T, w interface {
	Result() *http.Response
}, status int, what string) {
	t.Helper()
	resp := w.Result()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, status)
	}
	if status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
		t.Errorf("%s: Retry-After %q, want 1", what, resp.Header.Get("Retry-After"))
	}
}

func TestRateLimit(t *testing.T) {
	e := limited(t, false)
	a, b, c := withAddr("192.0.2.1:1000"), withAddr("192.0.2.2:1000"), withAddr("192.0.2.3:1000")
	// Client a spends its burst on two sites, one token of each.
	want(t, e.post(collector.EventsPath, shopKey, visit, a), http.StatusAccepted, "a to shop")
	want(t, e.post(collector.EventsPath, blogKey, visit, a), http.StatusAccepted, "a to blog")
	w := e.post(collector.EventsPath, shopKey, visit, a, withOrigin(shopOrigin))
	want(t, w, http.StatusTooManyRequests, "a again")
	wantError(t, w, http.StatusTooManyRequests, "too many requests")
	if w.Header().Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Error("429 to an allowed origin without CORS headers: the page cannot read Retry-After")
	}
	want(t, e.post(collector.FormsPath, shopKey, `{}`, a), http.StatusTooManyRequests, "a's form")
	// a's refused requests took nothing from shop: client b gets its last
	// token, then shop is spent for everyone.
	want(t, e.post(collector.EventsPath, shopKey, visit, b), http.StatusAccepted, "b to shop")
	want(t, e.post(collector.EventsPath, shopKey, visit, c), http.StatusTooManyRequests, "c to shop")
	// A busy shop does not affect blog.
	want(t, e.post(collector.EventsPath, blogKey, visit, c), http.StatusAccepted, "c to blog")
	// A second later each bucket has a token again.
	e.clock.Add(time.Second)
	want(t, e.post(collector.EventsPath, shopKey, visit, a), http.StatusAccepted, "a to shop a second later")
	want(t, e.post(collector.EventsPath, shopKey, visit, b), http.StatusTooManyRequests, "b to shop a second later")

	if n := len(e.stored()); n != 5 {
		t.Errorf("%d events stored, want 5", n)
	}
	if got := e.events("rate_limited"); got != 4 {
		t.Errorf("rate_limited %v, want 4", got)
	}
	if got := counter(t, e.reg, "herald_collector_requests_total", "path", "/v1/events", "code", "429"); got != 3 {
		t.Errorf("requests{/v1/events,429} %v, want 3", got)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *collector.Config) { c.Rate, c.Burst = 0.1, 1 })
	want(t, e.post(collector.EventsPath, shopKey, visit), http.StatusAccepted, "first")
	w := e.post(collector.EventsPath, shopKey, visit)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Errorf("status %d, Retry-After %q, want 429 and 10 seconds", w.Code, w.Header().Get("Retry-After"))
	}
	e.clock.Add(4 * time.Second)
	if w := e.post(collector.EventsPath, shopKey, visit); w.Header().Get("Retry-After") != "6" {
		t.Errorf("Retry-After %q 4s later, want 6", w.Header().Get("Retry-After"))
	}
}

func TestClientAddress(t *testing.T) {
	proxy := withAddr("10.0.0.1:5000")
	from := func(a string) reqOpt { return withHeader("X-Forwarded-For", a) }
	t.Run("without TrustProxy", func(t *testing.T) {
		e := limited(t, false)
		// The proxy's address is the client's: the header is ignored.
		want(t, e.post(collector.EventsPath, shopKey, visit, proxy, from("198.51.100.1")), http.StatusAccepted, "1")
		want(t, e.post(collector.EventsPath, blogKey, visit, proxy, from("198.51.100.2")), http.StatusAccepted, "2")
		want(t, e.post(collector.EventsPath, blogKey, visit, proxy, from("198.51.100.3")), http.StatusTooManyRequests, "3")
	})
	t.Run("with TrustProxy", func(t *testing.T) {
		e := limited(t, true)
		want(t, e.post(collector.EventsPath, shopKey, visit, proxy, from("198.51.100.1")), http.StatusAccepted, "1")
		want(t, e.post(collector.EventsPath, blogKey, visit, proxy, from("203.0.113.9, 198.51.100.1")), http.StatusAccepted, "1 via two proxies")
		want(t, e.post(collector.EventsPath, blogKey, visit, proxy, from("198.51.100.1")), http.StatusTooManyRequests, "1 again")
		// Another client behind the same proxy has its own bucket.
		want(t, e.post(collector.EventsPath, shopKey, visit, proxy, from("198.51.100.2")), http.StatusAccepted, "2")
		// A header that is no address counts as the proxy.
		want(t, e.post(collector.EventsPath, blogKey, visit, proxy, from("unknown")), http.StatusAccepted, "proxy")
	})
}
