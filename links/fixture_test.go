package links_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/internal/syncbuf"
	"github.com/herald-events/herald/links"
)

// clickTime is the handler's clock in these tests: a click an hour and a
// quarter of a second after the link was made.
var clickTime = now.Add(time.Hour + 250*time.Millisecond)

// recorder is a Publisher that keeps the events in memory.
type recorder struct {
	mu     sync.Mutex
	events []*event.Event
	err    error // returned by Publish when set
	panics bool  // Publish panics when set
	// signer, when set, must verify the proof every event carries:
	// Publish fails otherwise.
	signer *links.Signer
}

func (r *recorder) Publish(ctx context.Context, ev *event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panics {
		panic("publisher bug")
	}
	if r.err != nil {
		return r.err
	}
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("publish without a deadline")
	}
	if r.signer != nil {
		proof, _ := ev.Params[links.ProofParam].(string)
		if err := r.signer.VerifyProof(ev, proof); err != nil {
			return fmt.Errorf("test publisher: %w", err)
		}
	}
	r.events = append(r.events, ev.Clone())
	return nil
}

func (r *recorder) published() []*event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*event.Event(nil), r.events...)
}

// fixture is a handler behind a real HTTP server.
type fixture struct {
	key    links.Key
	signer *links.Signer
	pub    *recorder
	logs   *syncbuf.Buffer
	srv    *httptest.Server
	client *http.Client // follows no redirects
}

// newFixture starts a server with the handler mounted at /l/; configure
// may change the handler before it serves.
func newFixture(t *testing.T, configure ...func(*links.Handler)) *fixture {
	t.Helper()
	f := &fixture{key: key("k1"), pub: new(recorder), logs: new(syncbuf.Buffer)}
	f.signer = newSigner(t, f.key)
	f.pub.signer = f.signer
	h := &links.Handler{
		Signer:    f.signer,
		Publisher: f.pub,
		Now:       func() time.Time { return clickTime },
		Logger:    slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SiteName:  "Example Shop",
	}
	for _, c := range configure {
		c(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/l/", h)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.client = f.srv.Client()
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return f
}

// url returns the link URL of token.
func (f *fixture) url(token string) string {
	return links.URL(f.srv.URL, token)
}

// response is what the tests look at in an answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request and reads the whole answer.
func (f *fixture) do(t *testing.T, method, url, contentType, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// get fetches url as a browser would.
func (f *fixture) get(t *testing.T, url string) response {
	t.Helper()
	return f.do(t, http.MethodGet, url, "", "", map[string]string{"User-Agent": "Mozilla/5.0 (test)"})
}

// submit posts the page's form as a browser would: an empty form body.
func (f *fixture) submit(t *testing.T, url string) response {
	t.Helper()
	return f.do(t, http.MethodPost, url, "application/x-www-form-urlencoded", "", map[string]string{"User-Agent": "Mozilla/5.0 (test)"})
}

// oneClick posts an RFC 8058 one-click unsubscribe as a mail provider would.
func (f *fixture) oneClick(t *testing.T, url string) response {
	t.Helper()
	return f.do(t, http.MethodPost, url, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", map[string]string{"User-Agent": "MailProvider/1.0"})
}

// assertHeaders checks the headers every answer carries.
func assertHeaders(t *testing.T, r response) {
	t.Helper()
	for name, want := range map[string]string{
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := r.header.Get("X-Robots-Tag"); !strings.Contains(got, "noindex") {
		t.Errorf("X-Robots-Tag = %q, want noindex", got)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q allows more than it should", csp)
	}
	if loc := r.header.Get("Location"); loc != "" {
		t.Errorf("Location = %q, want none", loc)
	}
}

// assertPage checks an HTML answer's status and that it shows every
// string in want, and none of the token's parts.
func assertPage(t *testing.T, r response, status int, token string, want ...string) {
	t.Helper()
	assertHeaders(t, r)
	if r.status != status {
		t.Errorf("status %d, want %d", r.status, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want HTML", ct)
	}
	for _, w := range want {
		if !strings.Contains(r.body, w) {
			t.Errorf("page lacks %q:\n%s", w, r.body)
		}
	}
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) > 8 && strings.Contains(r.body, part) {
			t.Errorf("page shows the token:\n%s", r.body)
		}
	}
}

// wantEvent returns the event that confirming the link of tok and c
// publishes.
func wantEvent(tok string, c links.Claims, ip, userAgent string, oneClick bool) *event.Event {
	return &event.Event{
		ID:     event.DeriveID(clickTime.Truncate(time.Minute), tok),
		Action: c.Action,
		Label:  c.Label,
		Time:   clickTime,
		UUID:   c.UUID,
		Site:   c.Site,
		Params: map[string]any{
			"link":         c.Link,
			"source_event": c.Event,
			"source_rule":  c.Rule,
			"ip":           ip,
			"user_agent":   userAgent,
			"consented_at": "2026-11-28T11:00:00.25Z",
			"one_click":    oneClick,
		},
	}
}

// assertEvents checks that exactly the events want were published, each
// with a link proof (which the fixture's publisher verified) besides the
// params of want.
func assertEvents(t *testing.T, got []*event.Event, want ...*event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("published %d events, want %d: %v", len(got), len(want), jsonOf(got))
	}
	for i := range got {
		if err := got[i].Validate(); err != nil {
			t.Errorf("event %d is invalid: %v", i, err)
		}
		got[i] = got[i].Clone()
		if proof, _ := got[i].Params[links.ProofParam].(string); !strings.HasPrefix(proof, "v1.k1.") {
			t.Errorf("event %d has no link proof: %s", i, jsonOf(got[i]))
		}
		delete(got[i].Params, links.ProofParam)
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %s\nwant %s", i, jsonOf(got[i]), jsonOf(want[i]))
		}
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
