// Package collector is Herald's HTTP collector: the endpoints web pages
// (herald.js) send events and forms to. It authenticates a request by the
// site's public write key, checks the page's origin, answers CORS, limits
// the request rate per write key and per client address, decodes and
// validates events exactly as events arriving on NATS are, holds them to
// the site's allow and deny lists, refuses the actions only link pages may
// publish, and publishes the rest into JetStream.
//
// The handler serves:
//
//   - POST /v1/events: one event or a batch (a JSON array) of them;
//   - POST /v1/forms: a form submission, sendFormData(formType, data,
//     mapping, attributes), turned into one form.submit event;
//   - OPTIONS on both: the CORS preflight.
//
// Every answer is JSON. Events published get their ids in the answer, and
// each is published with its id as Nats-Msg-Id, so a batch retried with
// the same ids is stored once.
package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/site"
	"github.com/prometheus/client_golang/prometheus"
)

// Publisher publishes an event into Herald. The app passes a
// natsbus.Publisher on the subject herald.events.http, which publishes
// each event on its customer's subject (herald.events.http.<customer>)
// with the event's id as Nats-Msg-Id.
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) error
}

// Defaults and limits of the collector.
const (
	// DefaultRate is the requests a second a write key, and separately a
	// client address, may make on average when Config.Rate is 0.
	DefaultRate = 20
	// DefaultBurst is how many requests a write key, and separately a
	// client address, may make at once when Config.Burst is 0.
	DefaultBurst = 100
	// MaxBodyBytes is the largest request body the collector reads.
	MaxBodyBytes = 512 << 10
	// MaxBatch is the most events one request may carry.
	MaxBatch = 100
	// WriteKeyHeader is the request header that may carry the write key;
	// the query parameter "key" may carry it too (navigator.sendBeacon
	// cannot set headers).
	WriteKeyHeader = "Herald-Write-Key"
	// publishTimeout bounds one Publish call.
	publishTimeout = 10 * time.Second
	// retryAfterUnavailable is the Retry-After, in seconds, of a 503.
	retryAfterUnavailable = "5"
)

// Paths the handler serves.
const (
	EventsPath = "/v1/events"
	FormsPath  = "/v1/forms"
)

// linkOnly are the actions only the link pages may publish, whatever
// Config.Reserved says.
var linkOnly = [...]string{"newsletter.confirm", "newsletter.unsubscribe"}

// Config configures a Handler.
type Config struct {
	// Sites are the sites that may send events, found by write key. Nil
	// means none: every request is refused with 401.
	Sites *site.Set
	// Publisher publishes accepted events. Required.
	Publisher Publisher
	// Reserved reports actions only the link pages may publish (every
	// action a rule's links emit): the collector refuses them, naming the
	// action. newsletter.confirm and newsletter.unsubscribe are always
	// reserved; nil means only those two.
	Reserved func(action string) bool
	// Timed reports actions only Herald's timers publish (every action a
	// rule schedules with emit after: or at:): the collector refuses
	// them, so that a web page cannot send a customer's reminder or
	// expire their request ahead of time. Nil means none.
	Timed func(action string) bool
	// Rate is how many requests a second one write key and, separately,
	// one client address may make on average (token buckets); 0 means
	// DefaultRate.
	Rate float64
	// Burst is how many requests one write key and, separately, one
	// client address may make at once; 0 means DefaultBurst.
	Burst int
	// TrustProxy takes the client address (for rate limits) from the last
	// address of the X-Forwarded-For header instead of the connection, as
	// links.Handler does. Set it only behind exactly one reverse proxy
	// that sets the header; otherwise clients choose their own address.
	TrustProxy bool
	// Now is the clock: the time of receipt of events without a time, and
	// the time of the rate limits. Nil means time.Now.
	Now func() time.Time
	// Logger logs failures and recovered panics (never write keys); nil
	// means slog.Default().
	Logger *slog.Logger
	// Metrics registers the collector's metrics (see New); nil registers
	// none.
	Metrics prometheus.Registerer
}

// Handler is the HTTP collector. Make one with New; it is safe for
// concurrent use.
type Handler struct {
	sites     *site.Set
	publisher Publisher
	reserved  func(string) bool
	timed     func(string) bool
	trust     bool
	now       func() time.Time
	log       *slog.Logger
	limits    *limits
	metrics   *metrics
}

// New checks cfg, applies its defaults and returns the handler.
//
// It registers these metrics with cfg.Metrics, and fails if the registry
// holds metrics of the same names already:
//
//   - herald_collector_requests_total{path,code}: requests answered, by
//     path (/v1/events, /v1/forms or "other") and status code;
//   - herald_collector_events_total{outcome}: events by outcome:
//     "accepted" (published), "invalid" (not a valid event or form),
//     "denied" and "not_allowed" (refused by the site's lists, see
//     site.Site.Allows), "reserved" (an action only link pages may
//     publish), and "rate_limited", which counts requests refused with
//     429, whose events are not read.
func New(cfg Config) (*Handler, error) {
	if cfg.Publisher == nil {
		return nil, errors.New("new collector: publisher: required")
	}
	if math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Rate < 0 {
		return nil, fmt.Errorf("new collector: rate: %v: use a positive number of requests a second, or 0 for %d", cfg.Rate, DefaultRate)
	}
	if cfg.Burst < 0 {
		return nil, fmt.Errorf("new collector: burst: %d: use 1 or more, or 0 for %d", cfg.Burst, DefaultBurst)
	}
	h := &Handler{
		sites:     cfg.Sites,
		publisher: cfg.Publisher,
		reserved:  cfg.Reserved,
		timed:     cfg.Timed,
		trust:     cfg.TrustProxy,
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	r, b := cfg.Rate, cfg.Burst
	if r == 0 {
		r = DefaultRate
	}
	if b == 0 {
		b = DefaultBurst
	}
	h.limits = newLimits(r, b)
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new collector: %w", err)
	}
	h.metrics = m
	return h, nil
}

// ServeHTTP serves POST and OPTIONS on /v1/events and /v1/forms (the app
// mounts the handler at "/v1/"; a handler mounted with the /v1 prefix
// stripped serves /events and /forms). Other paths get 404, other methods
// 405. A panic is recovered, logged and answered with 500.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	path := pathLabel(r.URL.Path)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.LogAttrs(r.Context(), slog.LevelError, "collector panicked",
				slog.String("path", path), slog.Any("panic", v))
			if !rec.wrote {
				writeError(rec, http.StatusInternalServerError, "internal error")
			}
		}
		h.metrics.request(path, rec.status())
	}()
	h.serve(rec, r, path)
}

// serve routes a request, checks its write key, origin and rate, and
// hands it to the endpoint.
func (h *Handler) serve(w *recorder, r *http.Request, path string) {
	w.Header().Set("Vary", "Origin")
	if path == pathOther {
		writeError(w, http.StatusNotFound, "not found; the collector serves POST /v1/events and POST /v1/forms")
		return
	}
	switch r.Method {
	case http.MethodOptions:
		h.preflight(w, r)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "OPTIONS, POST")
		writeError(w, http.StatusMethodNotAllowed, "method "+strconv.Quote(shorten(r.Method))+" is not allowed; use POST")
		return
	}
	s := h.sites.ByKey(writeKey(r))
	if s == nil {
		writeError(w, http.StatusUnauthorized, "key: unknown or missing write key; pass the site's write key in the query parameter key or the "+WriteKeyHeader+" header")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.AllowsOrigin(origin) {
			writeError(w, http.StatusForbidden, "origin: "+strconv.Quote(shorten(origin))+" is not an allowed origin of the site")
			return
		}
		allowOrigin(w.Header(), origin)
	}
	now := h.now()
	if wait := h.limits.take(s.WriteKey, clientAddr(r, h.trust), now); wait > 0 {
		h.metrics.event(outcomeRateLimited)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		writeError(w, http.StatusTooManyRequests, "too many requests; retry later")
		return
	}
	body, status, msg := readBody(w.ResponseWriter, r)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	if path == EventsPath {
		h.events(w, r, s, body, now)
	} else {
		h.form(w, r, s, body, now)
	}
}

// pathOther is the path label of paths the handler does not serve.
const pathOther = "other"

// pathLabel returns the endpoint of a request path, EventsPath or
// FormsPath, or pathOther.
func pathLabel(p string) string {
	switch strings.TrimPrefix(p, "/v1") {
	case "/events":
		return EventsPath
	case "/forms":
		return FormsPath
	}
	return pathOther
}

// writeKey returns the write key of a request: the query parameter key,
// else the header.
func writeKey(r *http.Request) string {
	if k := r.URL.Query().Get("key"); k != "" {
		return k
	}
	return r.Header.Get(WriteKeyHeader)
}

// retryAfter returns a wait as whole seconds for Retry-After, at least 1.
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// reservedAction reports whether only link pages may publish action.
func (h *Handler) reservedAction(action string) bool {
	for _, a := range linkOnly {
		if a == action {
			return true
		}
	}
	return h.reserved != nil && h.reserved(action)
}

// check holds a decoded event to the site: it stamps the site on it and
// returns the outcome and, for a refused event, the error. An event naming
// another site is invalid.
func (h *Handler) check(s *site.Site, ev *event.Event) (outcome string, err error) {
	if ev.Site != "" && ev.Site != s.Name {
		return outcomeInvalid, fmt.Errorf("site: %s is not the site of the write key (%s); leave site out", strconv.Quote(shorten(ev.Site)), strconv.Quote(s.Name))
	}
	ev.Site = s.Name
	if h.reservedAction(ev.Action) {
		return outcomeReserved, fmt.Errorf("action: %s is reserved for link pages; the collector does not take it", strconv.Quote(ev.Action))
	}
	if h.timed != nil && h.timed(ev.Action) {
		return outcomeReserved, fmt.Errorf("action: %s is published by Herald's timers (a rule emits it after a delay); the collector does not take it", strconv.Quote(ev.Action))
	}
	if ok, reason := s.Allows(ev.Action); !ok {
		if reason == outcomeDenied {
			return outcomeDenied, fmt.Errorf("action: %s is denied for site %s", strconv.Quote(ev.Action), strconv.Quote(s.Name))
		}
		return outcomeNotAllowed, fmt.Errorf("action: %s is not allowed for site %s", strconv.Quote(ev.Action), strconv.Quote(s.Name))
	}
	return outcomeAccepted, nil
}

// refused logs, at debug level, why an event was not published. The
// message names the field; it may quote (shortened) client input.
func (h *Handler) refused(r *http.Request, s *site.Site, outcome string, err error) {
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "collected event refused",
		slog.String("site", s.Name), slog.String("outcome", outcome), slog.String("err", err.Error()))
}

// decoder returns the event decoder of a request received at now.
func decoder(now time.Time) *event.Decoder {
	return &event.Decoder{
		Now:   func() time.Time { return now },
		NewID: event.NewID,
	}
}

// publish publishes ev with a deadline. The request's cancellation does
// not stop it: a client gone mid-batch leaves no event half done, and a
// retry is deduplicated by id.
func (h *Handler) publish(r *http.Request, ev *event.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeout)
	defer cancel()
	return h.publisher.Publish(ctx, ev)
}

// unavailable answers a failed publish with 503 and logs it.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, ev *event.Event, err error) {
	h.log.LogAttrs(r.Context(), slog.LevelError, "publish collected event",
		slog.String("event", ev.ID), slog.String("action", ev.Action),
		slog.String("site", ev.Site), slog.String("err", err.Error()))
	w.Header().Set("Retry-After", retryAfterUnavailable)
	writeError(w, http.StatusServiceUnavailable, "events cannot be stored now; retry later with the same ids")
}

// recorder remembers the status code a handler wrote.
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.code, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.code
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // an error means the client is gone
}

// writeError answers with status and {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// errorBody is the answer to a refused request.
type errorBody struct {
	Error string `json:"error"`
}
