package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest/collector"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/site"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Write keys and origins of the test sites.
const (
	shopKey    = "shop-key-0001"
	blogKey    = "blog-key-0001"
	quietKey   = "quiet-key-0001"
	shopOrigin = "https://shop.example"
	blogOrigin = "https://blog.example"
	subject    = "herald.events.http"
)

// testSites are the sites of the tests: shop denies admin.*, blog allows
// page.* and form.* only, quiet allows page.* only.
func testSites(t testing.TB) *site.Set {
	t.Helper()
	set, err := site.NewSet(
		site.Site{Name: "shop", WriteKey: shopKey, Origins: []string{shopOrigin}, Deny: []string{"admin.*"}},
		site.Site{Name: "blog", WriteKey: blogKey, Origins: []string{blogOrigin}, Allow: []string{"page.*", "form.*"}},
		site.Site{Name: "quiet", WriteKey: quietKey, Allow: []string{"page.*"}},
	)
	if err != nil {
		t.Fatalf("sites: %v", err)
	}
	return set
}

// t0 is the time the tests' clock starts at.
var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a collector publishing into a real, in-process JetStream.
type env struct {
	t      *testing.T
	h      *collector.Handler
	js     jetstream.JetStream
	stream jetstream.Stream
	reg    *prometheus.Registry
	clock  *clock
}

// newEnv starts a JetStream set up as serve sets it up and a collector
// publishing into it; mod changes the collector's configuration.
func newEnv(t *testing.T, mod func(*collector.Config)) *env {
	t.Helper()
	_, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("set up jetstream: %v", err)
	}
	e := &env{t: t, js: js, stream: res.Events, reg: prometheus.NewRegistry(), clock: &clock{t: t0}}
	cfg := collector.Config{
		Sites:     testSites(t),
		Publisher: natsbus.NewPublisher(js, subject),
		Now:       e.clock.Now,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), nil)),
		Metrics:   e.reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	if e.h, err = collector.New(cfg); err != nil {
		t.Fatalf("new collector: %v", err)
	}
	return e
}

// reqOpt changes a request before it is served.
type reqOpt func(*http.Request)

func withOrigin(o string) reqOpt { return func(r *http.Request) { r.Header.Set("Origin", o) } }

func withType(ct string) reqOpt {
	return func(r *http.Request) {
		if ct == "" {
			r.Header.Del("Content-Type")
		} else {
			r.Header.Set("Content-Type", ct)
		}
	}
}

func withAddr(a string) reqOpt { return func(r *http.Request) { r.RemoteAddr = a } }

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Add(k, v) } }

// request serves a request with body to h: path with the write key key in
// the query string (none when empty), application/json, from 192.0.2.1.
func request(h http.Handler, method, path, key, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	target := path
	if key != "" {
		target += "?key=" + key
	}
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:41000"
	r.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func (e *env) post(path, key, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	return request(e.h, http.MethodPost, path, key, body, opts...)
}

// answer is an answer of the collector, any endpoint.
type answer struct {
	Accepted *int     `json:"accepted"`
	IDs      []string `json:"ids"`
	Errors   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
	Error string `json:"error"`
	ID    string `json:"id"`
}

// decode checks the status and content type of an answer and decodes it.
func decode(t *testing.T, w *httptest.ResponseRecorder, status int) answer {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var a answer
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return a
}

// wantError checks that an answer has status and an error containing each
// of parts.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, parts ...string) {
	t.Helper()
	a := decode(t, w, status)
	for _, p := range parts {
		if !strings.Contains(a.Error, p) {
			t.Errorf("error %q does not contain %q", a.Error, p)
		}
	}
}

// stored returns the events the stream holds, in order, checking that
// each was published on the collector's subject for its customer with its
// id as Nats-Msg-Id.
func (e *env) stored() []*event.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := e.stream.Info(ctx)
	if err != nil {
		e.t.Fatalf("stream info: %v", err)
	}
	var evs []*event.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := e.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatalf("get message %d: %v", seq, err)
		}
		ev, err := event.Decode(msg.Data)
		if err != nil {
			e.t.Fatalf("stored message %d is no event: %v", seq, err)
		}
		if want := natsbus.CustomerSubject(subject, ev.UUID); msg.Subject != want {
			e.t.Errorf("message %d on %q, want %q", seq, msg.Subject, want)
		}
		if id := msg.Header.Get(jetstream.MsgIDHeader); id != ev.ID {
			e.t.Errorf("message %d: Nats-Msg-Id %q, want the event id %q", seq, id, ev.ID)
		}
		evs = append(evs, ev)
	}
	return evs
}

// last returns the last event stored.
func (e *env) last() *event.Event {
	e.t.Helper()
	evs := e.stored()
	if len(evs) == 0 {
		e.t.Fatal("no event stored")
	}
	return evs[len(evs)-1]
}

// counter returns the value of the counter name{labels...} (label name and
// value pairs), 0 when it is missing.
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// events counts the events of an outcome.
func (e *env) events(outcome string) float64 {
	e.t.Helper()
	return counter(e.t, e.reg, "herald_collector_events_total", "outcome", outcome)
}

// httptestRequestNoLength returns a POST of body to /v1/events for the
// shop whose length is unknown, as a chunked request's is.
func httptestRequestNoLength(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, collector.EventsPath+"?key="+shopKey, io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serve serves r to h.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
