package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The recording collector stands in for ingest/collector in the browser
// tests: it serves test pages and /herald.js (through Handler), and records
// every POST to /v1/events and /v1/forms after checking it against the
// collector's API. It answers 202 as the real one does, or 503 with
// Retry-After, or drops the connection, as a test switches it.

// wireEvent is an event as herald.js sends it.
type wireEvent struct {
	ID     string         `json:"id"`
	Action string         `json:"action"`
	Label  string         `json:"label"`
	UUID   string         `json:"uuid"`
	Time   string         `json:"time"`
	Params map[string]any `json:"params"`
}

// wireForm is a form submission as herald.js sends it.
type wireForm struct {
	ID         string            `json:"id"`
	FormType   string            `json:"formType"`
	UUID       string            `json:"uuid"`
	Time       string            `json:"time"`
	Data       map[string]any    `json:"data"`
	Mapping    map[string]string `json:"mapping"`
	Attributes []string          `json:"attributes"`
	Label      string            `json:"label,omitempty"`
}

type collectorMode int

const (
	answerOK          collectorMode = iota // 202
	answerUnavailable                      // 503, Retry-After: 1
	dropConnection                         // close the connection unanswered
)

const testWriteKey = "test-key"

var actionRule = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)

type collector struct {
	srv *httptest.Server
	key string

	mu       sync.Mutex
	mode     collectorMode
	pages    map[string]string // path -> HTML
	events   []wireEvent       // accepted, in arrival order
	forms    []wireForm        // accepted, in arrival order
	failed   []wireEvent       // events of requests answered 503 or dropped
	attempts int               // requests answered 503 or dropped
	problems []string          // breaches of the collector's API
}

// newCollector starts a recording collector that closes, and reports any
// breach of the API, when the test ends.
func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{key: testWriteKey, pages: map[string]string{}}
	c.srv = httptest.NewServer(c)
	t.Cleanup(func() {
		c.srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.problems {
			t.Errorf("collector API breach: %s", p)
		}
	})
	return c
}

func (c *collector) url(path string) string { return c.srv.URL + path }

func (c *collector) page(path, html string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages[path] = html
}

func (c *collector) setMode(m collectorMode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mode = m
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/herald.js":
		Handler().ServeHTTP(w, r)
	case r.URL.Path == "/v1/events" || r.URL.Path == "/v1/forms":
		c.serveAPI(w, r)
	default:
		c.mu.Lock()
		html, ok := c.pages[r.URL.Path]
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, html)
	}
}

func (c *collector) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *collector) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost {
		c.problem("%s %s: want POST", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/plain;charset=UTF-8" {
		c.problem("%s: Content-Type %q, want text/plain;charset=UTF-8", r.URL.Path, ct)
	}
	if k := r.URL.Query().Get("key"); k != c.key {
		c.problem("%s: key %q, want %q", r.URL.Path, k, c.key)
	}
	var events []wireEvent
	var form wireForm
	if r.URL.Path == "/v1/events" {
		events, err = decodeEvents(body)
	} else {
		err = decodeStrict(body, &form)
	}
	if err != nil {
		c.problem("%s: %v in %s", r.URL.Path, err, body)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	switch c.mode {
	case answerUnavailable:
		c.attempts++
		c.failed = append(c.failed, events...)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	case dropConnection:
		c.attempts++
		c.failed = append(c.failed, events...)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	if r.URL.Path == "/v1/forms" {
		c.checkForm(form)
		c.forms = append(c.forms, form)
		json.NewEncoder(w).Encode(map[string]any{"id": form.ID})
		return
	}
	ids := []string{}
	for i, e := range events {
		c.checkEvent(i, e)
		ids = append(ids, e.ID)
	}
	c.events = append(c.events, events...)
	json.NewEncoder(w).Encode(map[string]any{"accepted": len(events), "ids": ids, "errors": []any{}})
}

// decodeEvents reads one event or a batch of at most 100.
func decodeEvents(body []byte) ([]wireEvent, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var e wireEvent
		err := decodeStrict(body, &e)
		return []wireEvent{e}, err
	}
	var batch []wireEvent
	if err := decodeStrict(body, &batch); err != nil {
		return nil, err
	}
	if len(batch) == 0 || len(batch) > 100 {
		return nil, fmt.Errorf("batch of %d events, want 1 to 100", len(batch))
	}
	return batch, nil
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func (c *collector) checkEvent(i int, e wireEvent) {
	if e.ID == "" || e.UUID == "" || e.Label == "" {
		c.problem("event %d: id, uuid and label are required: %+v", i, e)
	}
	if len(e.Action) > 32 || !actionRule.MatchString(e.Action) {
		c.problem("event %d: invalid action %q", i, e.Action)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		c.problem("event %d: time %q is not RFC 3339", i, e.Time)
	}
	for k, v := range e.Params {
		switch v.(type) {
		case string, float64, bool:
		default:
			c.problem("event %d: param %q is %T, want a scalar", i, k, v)
		}
	}
}

func (c *collector) checkForm(f wireForm) {
	if f.ID == "" || f.UUID == "" || f.FormType == "" {
		c.problem("form: id, uuid and formType are required: %+v", f)
	}
	if _, err := time.Parse(time.RFC3339Nano, f.Time); err != nil {
		c.problem("form: time %q is not RFC 3339", f.Time)
	}
	for std, key := range f.Mapping {
		if _, ok := f.Data[key]; !ok {
			c.problem("form: mapping %s -> %q names no data", std, key)
		}
	}
}

// Accessors, for polling from the tests.

func (c *collector) allEvents() []wireEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wireEvent(nil), c.events...)
}

func (c *collector) allForms() []wireForm {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wireForm(nil), c.forms...)
}

func (c *collector) failedAttempts() (int, []wireEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts, append([]wireEvent(nil), c.failed...)
}

// eventsWhere returns the accepted events that match.
func (c *collector) eventsWhere(match func(wireEvent) bool) []wireEvent {
	var out []wireEvent
	for _, e := range c.allEvents() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

func action(a string) func(wireEvent) bool {
	return func(e wireEvent) bool { return e.Action == a }
}

func visitOf(url string) func(wireEvent) bool {
	return func(e wireEvent) bool { return e.Action == "page.visit" && e.Params["url"] == url }
}

// waitEvents waits until n accepted events match, and returns them.
func (c *collector) waitEvents(t *testing.T, what string, n int, match func(wireEvent) bool) []wireEvent {
	t.Helper()
	var got []wireEvent
	waitFor(t, what, func() bool {
		got = c.eventsWhere(match)
		return len(got) >= n
	}, c.dump)
	return got
}

// waitEvent waits for one accepted event that matches.
func (c *collector) waitEvent(t *testing.T, what string, match func(wireEvent) bool) wireEvent {
	t.Helper()
	return c.waitEvents(t, what, 1, match)[0]
}

func (c *collector) waitForm(t *testing.T, what string, match func(wireForm) bool) wireForm {
	t.Helper()
	var got wireForm
	waitFor(t, what, func() bool {
		for _, f := range c.allForms() {
			if match(f) {
				got = f
				return true
			}
		}
		return false
	}, c.dump)
	return got
}

// dump describes what the collector got, for failure messages.
func (c *collector) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "collector got %d events, %d forms, %d failed attempts:", len(c.events), len(c.forms), c.attempts)
	for _, e := range c.events {
		fmt.Fprintf(&b, "\n  event %s %q %v", e.Action, e.Label, e.Params)
	}
	for _, f := range c.forms {
		fmt.Fprintf(&b, "\n  form %s data=%v mapping=%v attributes=%v", f.FormType, f.Data, f.Mapping, f.Attributes)
	}
	return b.String()
}

// waitFor polls cond until it holds, failing the test after a deadline with
// what it waited for and, if given, more detail.
func waitFor(t *testing.T, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting for " + what
			for _, d := range detail {
				msg += "\n" + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
