package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/event"
)

// Publisher publishes an event into Herald. The serve command passes a
// JetStream publisher, which deduplicates by event id (Nats-Msg-Id).
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) error
}

// Limits of the handler.
const (
	// MaxBodyBytes is the largest request body the handler reads.
	MaxBodyBytes = 4 << 10
	// MaxUserAgentLen is how many bytes of the User-Agent header the
	// evidence keeps.
	MaxUserAgentLen = 512
	// publishTimeout bounds one Publish call.
	publishTimeout = 10 * time.Second
)

// allowedMethods is the Allow header of a 405 answer.
const allowedMethods = "GET, HEAD, POST"

// Handler serves signed links, mounted at /l/: GET /l/{token} shows a page
// whose button POSTs to the same URL, and POST /l/{token} publishes the
// event the token names, with the evidence of consent in its params.
//
// A GET (or HEAD) never changes anything, since mail scanners prefetch
// links. A POST whose form body is List-Unsubscribe=One-Click (RFC 8058) is
// a one-click unsubscribe: it publishes the same event and gets a short
// plain-text answer, never a redirect.
//
// Every event it publishes carries a proof (see Signer.Proof) in the
// parameter ProofParam, so that the consumer can tell it from an event
// anyone with access to NATS could publish.
//
// An invalid or expired token gets a 400 page and publishes nothing; a
// token that Check says is void gets a 410 page and publishes nothing; a
// failed publish gets a 503 page and is logged. No page shows the token or
// its claims.
//
// The fields must not change while the handler serves requests.
type Handler struct {
	// Signer verifies the tokens. Required.
	Signer *Signer
	// Publisher publishes the events of confirmed links. Required.
	Publisher Publisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger logs rejected tokens, published events and failures, never
	// tokens or secrets; nil means slog.Default().
	Logger *slog.Logger
	// SiteName is shown on the pages, e.g. "Example Shop"; empty means
	// "Herald".
	SiteName string
	// TrustProxy takes the client's IP address from the X-Forwarded-For
	// header (its last address, the one the proxy added) instead of the
	// connection. Set it only behind exactly one reverse proxy that sets
	// the header; otherwise clients could forge the evidence.
	TrustProxy bool
	// Check, if set, is asked about every genuine, unexpired token, on GET,
	// HEAD and POST, before the page is shown or anything is published.
	// An error wrapping ErrVoid means the link no longer counts (a
	// confirmation link whose request was withdrawn or replaced by a
	// newer one): the answer is a 410 page that says so, and nothing is
	// published. Any other error is a failure to check (a store that does
	// not answer): the answer is a 503 page, and nothing is published.
	Check func(ctx context.Context, c Claims) error
}

// ErrVoid is what a Handler's Check returns (wrapped) for a genuine link
// that no longer counts.
var ErrVoid = errors.New("link no longer valid")

// checkTimeout bounds one Check call.
const checkTimeout = 10 * time.Second

// URL returns the URL of a link: base (such as "https://shop.example" or
// "http://127.0.0.1:8080", with or without a trailing slash) followed by
// /l/ and the token.
func URL(base, token string) string {
	return strings.TrimRight(base, "/") + "/l/" + token
}

// ServeHTTP serves GET, HEAD and POST /l/{token}; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", allowedMethods)
		h.render(w, http.StatusMethodNotAllowed, methodNotAllowedPage)
		return
	}
	now := h.now()
	claims, err := h.Signer.Verify(tokenOf(r), now)
	if err != nil {
		h.logger().LogAttrs(r.Context(), slog.LevelInfo, "link rejected",
			slog.String("method", r.Method), slog.String("reason", err.Error()))
		if errors.Is(err, ErrExpired) {
			h.render(w, http.StatusBadRequest, expiredPage)
		} else {
			h.render(w, http.StatusBadRequest, invalidPage)
		}
		return
	}
	words := wordingFor(claims.Link)
	if err := h.check(r.Context(), claims); err != nil {
		log := h.logger().With(slog.String("method", r.Method), slog.String("link", claims.Link),
			slog.String("rule", claims.Rule), slog.String("source_event", claims.Event))
		if errors.Is(err, ErrVoid) {
			log.LogAttrs(r.Context(), slog.LevelInfo, "link void", slog.String("reason", err.Error()))
			h.render(w, http.StatusGone, words.void)
			return
		}
		log.LogAttrs(r.Context(), slog.LevelError, "check link", slog.String("err", err.Error()))
		w.Header().Set("Retry-After", "60")
		h.render(w, http.StatusServiceUnavailable, unavailablePage)
		return
	}
	if r.Method != http.MethodPost {
		h.render(w, http.StatusOK, page{
			Title:  words.askTitle,
			Text:   []string{fmt.Sprintf(words.askText, h.siteName())},
			Button: words.button,
		})
		return
	}
	h.post(w, r, claims, words, now)
}

// post publishes the event of a genuine token and answers.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, c Claims, words wording, now time.Time) {
	oneClick, err := readOneClick(w, r)
	if err != nil {
		h.logger().LogAttrs(r.Context(), slog.LevelInfo, "link request body rejected", slog.String("reason", err.Error()))
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.render(w, http.StatusRequestEntityTooLarge, tooLargePage)
		} else {
			h.render(w, http.StatusBadRequest, badRequestPage)
		}
		return
	}

	ev := h.newEvent(r, c, now, oneClick)
	log := h.logger().With(slog.String("event", ev.ID), slog.String("action", ev.Action),
		slog.String("link", c.Link), slog.String("rule", c.Rule))
	proof, err := h.Signer.Proof(ev)
	if err == nil {
		ev.Params[ProofParam] = proof
		err = ev.Validate()
	}
	if err != nil {
		log.LogAttrs(r.Context(), slog.LevelError, "link event is invalid", slog.String("err", err.Error()))
		h.render(w, http.StatusInternalServerError, internalErrorPage)
		return
	}
	if err := h.publish(r.Context(), ev); err != nil {
		log.LogAttrs(r.Context(), slog.LevelError, "publish link event", slog.String("err", err.Error()))
		w.Header().Set("Retry-After", "60")
		h.render(w, http.StatusServiceUnavailable, unavailablePage)
		return
	}
	log.LogAttrs(r.Context(), slog.LevelInfo, "link confirmed", slog.Bool("one_click", oneClick))

	if oneClick {
		if err := writeText(w, http.StatusOK, words.oneClick); err != nil {
			h.logger().Debug("write link answer", slog.String("err", err.Error()))
		}
		return
	}
	h.render(w, http.StatusOK, page{
		Title: words.doneTitle,
		Text:  []string{fmt.Sprintf(words.doneText, h.siteName())},
	})
}

// newEvent builds the event that a confirmed link publishes. Its id depends on
// the token and the minute of the click, so a double submit or a retry of
// the same link publishes the same id and is deduplicated downstream, while
// the same link used again later (unsubscribing again after subscribing
// anew) is a new event.
func (h *Handler) newEvent(r *http.Request, c Claims, now time.Time, oneClick bool) *event.Event {
	params := map[string]any{
		"link":         c.Link,
		"ip":           h.clientIP(r),
		"user_agent":   truncateUTF8(r.UserAgent(), MaxUserAgentLen),
		"consented_at": now.UTC().Format(time.RFC3339Nano),
		"one_click":    oneClick,
	}
	if c.Event != "" {
		params["source_event"] = c.Event
	}
	if c.Rule != "" {
		params["source_rule"] = c.Rule
	}
	return &event.Event{
		ID:     event.DeriveID(now.Truncate(time.Minute), tokenOf(r)),
		Action: c.Action,
		Label:  c.Label,
		Time:   now.UTC(),
		UUID:   c.UUID,
		Site:   c.Site,
		Params: params,
	}
}

// check asks Check about c, with a deadline, turning a panic into an
// error.
func (h *Handler) check(ctx context.Context, c Claims) (err error) {
	if h.Check == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("link check panicked: %v", v)
		}
	}()
	return h.Check(ctx, c)
}

// publish calls the publisher with a deadline, turning a panic into an
// error.
func (h *Handler) publish(ctx context.Context, ev *event.Event) (err error) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("publisher panicked: %v", v)
		}
	}()
	return h.Publisher.Publish(ctx, ev)
}

// readOneClick reads the form body, at most MaxBodyBytes, and reports
// whether it is an RFC 8058 one-click unsubscribe (List-Unsubscribe=One-Click,
// as application/x-www-form-urlencoded or multipart/form-data).
func readOneClick(w http.ResponseWriter, r *http.Request) (bool, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if mediaType == "multipart/form-data" {
		err = r.ParseMultipartForm(MaxBodyBytes)
		if r.MultipartForm != nil {
			r.MultipartForm.RemoveAll()
		}
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		return false, fmt.Errorf("read form: %w", err)
	}
	return r.PostForm.Get("List-Unsubscribe") == "One-Click", nil
}

// tokenOf returns the token of the request: the path value "token" when the
// handler is mounted with a pattern such as "/l/{token}", otherwise what
// follows /l/ (or, with the prefix stripped, the path without its leading
// slash).
func tokenOf(r *http.Request) string {
	if t := r.PathValue("token"); t != "" {
		return t
	}
	if t, ok := strings.CutPrefix(r.URL.Path, "/l/"); ok {
		return t
	}
	return strings.TrimPrefix(r.URL.Path, "/")
}

// clientIP returns the client's IP address, for the evidence.
func (h *Handler) clientIP(r *http.Request) string {
	if h.TrustProxy {
		if ip, ok := forwardedFor(r.Header.Values("X-Forwarded-For")); ok {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return truncateUTF8(host, 64)
}

// forwardedFor returns the last address in X-Forwarded-For header values:
// the one the trusted proxy added.
func forwardedFor(values []string) (string, bool) {
	if len(values) == 0 {
		return "", false
	}
	list := values[len(values)-1]
	last := strings.TrimSpace(list[strings.LastIndexByte(list, ',')+1:])
	a, err := netip.ParseAddr(last)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// truncateUTF8 returns s as valid UTF-8 (invalid bytes replaced by U+FFFD),
// cut to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (h *Handler) render(w http.ResponseWriter, status int, p page) {
	if err := render(w, status, h.siteName(), p); err != nil {
		h.logger().Debug("write link page", slog.String("err", err.Error()))
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) siteName() string {
	if h.SiteName != "" {
		return h.SiteName
	}
	return "Herald"
}
