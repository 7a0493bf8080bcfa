// Package webhook performs the rule action "webhook": it POSTs a rendered
// JSON body to a URL. Rendering and planning happen elsewhere; this
// package holds the wire form of a rendered call ([Request]) and the
// effector that makes it ([Sender]).
//
// # Every call
//
// A call is a POST with the rendered body, exactly as rendered, and
//
//	Content-Type: application/json
//	Idempotency-Key: <the effect's key>
//	Herald-Event-Id: <the id of the event whose rules planned the call>
//	Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//	User-Agent: Herald-Webhook/1
//
// plus the headers configured in webhook.headers. Herald delivers at
// least once: after a timeout or a lost answer the same effect is
// delivered again with the same Idempotency-Key, which a receiver uses to
// drop the repeat.
//
// # Signature
//
// When a secret is configured (from HERALD_WEBHOOK_SECRET), every call is
// signed the way Stripe signs its webhooks. Herald-Signature holds t, the
// time of the call in Unix seconds, and v1, the hex-encoded
//
//	HMAC-SHA256(key: secret, message: t + "." + body)
//
// over the body's exact bytes. A receiver
//
//  1. reads the raw body before parsing it;
//  2. computes the HMAC itself and compares it in constant time with each
//     v1 value (there may be several while keys rotate);
//  3. refuses the call if t is further than a few minutes from its own
//     clock, so that a recorded call cannot be replayed later; and
//  4. drops a call whose Idempotency-Key it has already handled.
//
// [Verify] does steps 2 and 3 for Go receivers. Without a secret no
// Herald-Signature header is sent, and a receiver cannot tell Herald's
// calls from anyone else's: configure one for anything but a test.
//
// # Where calls may go
//
// A [Policy] lists the hosts webhooks may call and whether private
// addresses are allowed; a URL is checked when rules are loaded and again
// at every call, and the default client checks every address it connects
// to, so a permitted name that resolves to 127.0.0.1 is refused too.
// Redirects are not followed.
//
// # Failures
//
// A Sender only classifies failures; retrying, deduplication and dead
// letters are stages of their own. Answers 408, 425, 429 and 5xx,
// connection failures and timeouts are worth retrying; other 4xx, 3xx,
// refused URLs, TLS certificate problems and undecodable effects are not.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-events/herald/actions"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one call, from dial to the end of the answer.
	DefaultTimeout = 10 * time.Second
	// DefaultUserAgent is the User-Agent of every call.
	DefaultUserAgent = "Herald-Webhook/1"
)

// Request is the wire form of a rendered webhook effect: the Data of an
// actions.Effect of kind "webhook".
type Request struct {
	// URL is the absolute https or http URL to POST to.
	URL string `json:"url"`
	// Body is the JSON body, sent exactly as it is.
	Body json.RawMessage `json:"body"`
}

// Config configures a Sender. Its String, GoString and LogValue methods
// print neither the secret nor header values.
type Config struct {
	// Secret is the HMAC key calls are signed with (HERALD_WEBHOOK_SECRET).
	// Empty means calls are not signed: no Herald-Signature header is sent.
	Secret Secret
	// Headers are sent with every call (webhook.headers), for example an
	// Authorization header the receiver expects. Their values are treated
	// as secrets: Config, Sender and their errors never print them, and
	// values of four characters or more are cut out of receivers' answers
	// quoted in errors, in case a receiver echoes them. Headers the sender
	// sets itself are refused: Content-Type, Content-Length, Host,
	// Idempotency-Key, User-Agent (see UserAgent), hop-by-hop headers and
	// every Herald-*.
	Headers map[string]string
	// Timeout bounds one call from dial to the end of the answer
	// (webhook.timeout); zero means DefaultTimeout.
	Timeout time.Duration
	// Policy says which URLs may be called.
	Policy Policy
	// Client makes the calls. Nil means a client built for webhooks: no
	// proxy, and a dialer that refuses private addresses as Policy says.
	// A custom client is used with redirects turned off; its transport
	// should use Policy.DialControl, since only the URL's host is checked
	// otherwise.
	Client *http.Client
	// Now is the clock signatures are dated with; nil means time.Now.
	Now func() time.Time
	// UserAgent is the User-Agent of every call; empty means
	// DefaultUserAgent.
	UserAgent string
}

// String describes c without the secret or header values.
func (c Config) String() string {
	return fmt.Sprintf("webhook config (hosts: %s; private allowed: %t; headers: %s; timeout: %s; secret: %s)",
		hostList(c.Policy.AllowHosts), c.Policy.AllowPrivate, headerNames(c.Headers), c.Timeout, setOrNot(c.Secret != ""))
}

// GoString is like String, so that %#v prints no secrets either.
func (c Config) GoString() string { return c.String() }

// Format prints String with every verb: fmt would print the fields
// themselves for verbs such as %d.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer without the secret or header values.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("allow_hosts", c.Policy.AllowHosts),
		slog.Bool("allow_private", c.Policy.AllowPrivate),
		slog.String("headers", headerNames(c.Headers)),
		slog.Duration("timeout", c.Timeout),
		slog.String("secret", setOrNot(c.Secret != "")),
		slog.String("user_agent", c.UserAgent),
	)
}

// Sender performs webhook effects. It is safe for concurrent use and
// reuses connections between calls.
type Sender struct {
	secret    Secret
	headers   http.Header
	redact    []string // header values, kept out of error messages
	timeout   time.Duration
	policy    Policy
	client    *http.Client
	now       func() time.Time
	userAgent string
}

// ownedHeaders are set by the sender itself; Config.Headers may not set
// them. Every Herald-* header is reserved as well.
var ownedHeaders = []string{
	"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Host", "Idempotency-Key",
	"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent",
}

// New validates cfg, fills in defaults and returns a Sender. All problems
// are reported at once, each naming its setting; none prints the secret
// or a header value.
func New(cfg Config) (*Sender, error) {
	var errs []error
	s := &Sender{
		secret:    cfg.Secret,
		headers:   make(http.Header, len(cfg.Headers)),
		timeout:   cfg.Timeout,
		policy:    Policy{AllowHosts: slices.Clone(cfg.Policy.AllowHosts), AllowPrivate: cfg.Policy.AllowPrivate},
		now:       cfg.Now,
		userAgent: cfg.UserAgent,
	}
	if err := s.policy.Validate(); err != nil {
		errs = append(errs, err)
	}

	seen := make(map[string]string, len(cfg.Headers))
	for _, name := range slices.Sorted(maps.Keys(cfg.Headers)) {
		value := cfg.Headers[name]
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !validHeaderName(name):
			errs = append(errs, fmt.Errorf("webhook.headers: %q is not a valid header name", name))
		case slices.Contains(ownedHeaders, canonical) || strings.HasPrefix(canonical, "Herald-"):
			errs = append(errs, fmt.Errorf("webhook.headers: %q is set by Herald itself and cannot be configured", name))
		case seen[canonical] != "":
			errs = append(errs, fmt.Errorf("webhook.headers: %q is given twice (also as %q)", name, seen[canonical]))
		case !validHeaderValue(value):
			errs = append(errs, fmt.Errorf("webhook.headers: the value of %q contains a line break or control character", name))
		default:
			s.headers.Set(canonical, value)
			if len(value) >= 4 {
				s.redact = append(s.redact, value)
			}
		}
		seen[canonical] = name
	}

	switch {
	case cfg.Timeout < 0:
		errs = append(errs, fmt.Errorf("webhook.timeout: %s is negative", cfg.Timeout))
	case cfg.Timeout == 0:
		s.timeout = DefaultTimeout
	}
	if s.userAgent == "" {
		s.userAgent = DefaultUserAgent
	} else if !validHeaderValue(s.userAgent) {
		errs = append(errs, errors.New("webhook.user_agent: contains a line break or control character"))
	}
	if !validHeaderValue(string(cfg.Secret)) {
		errs = append(errs, errors.New("webhook secret: contains a line break or control character"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Client != nil {
		c := *cfg.Client
		c.CheckRedirect = noRedirects
		s.client = &c
	} else {
		s.client = newClient(s.policy)
	}
	return s, nil
}

// newClient builds the default client: no proxy (a proxy would connect
// to the receiver in the policy's place), and a dialer that checks every
// address it connects to.
func newClient(p Policy) *http.Client {
	dialer := &net.Dialer{
		Timeout:   DefaultTimeout,
		KeepAlive: 30 * time.Second,
		Control:   p.DialControl,
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   DefaultTimeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: noRedirects,
	}
}

// noRedirects makes the client return a 3xx answer instead of following it.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// String describes the sender without secrets, as
// "webhook (hosts: a.example, *.b.example)".
func (s *Sender) String() string {
	var extra string
	if s.policy.AllowPrivate {
		extra += "; private addresses allowed"
	}
	if s.secret == "" {
		extra += "; unsigned"
	}
	return fmt.Sprintf("webhook (hosts: %s%s)", hostList(s.policy.AllowHosts), extra)
}

// GoString is like String, so that %#v prints no secrets either.
func (s *Sender) GoString() string { return "&webhook.Sender{" + s.String() + "}" }

// Format prints String (GoString for %#v) with every verb: fmt would
// print the fields themselves, the secret among them, for verbs such as %d.
func (s *Sender) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// Perform POSTs the effect's Request. It reports retry as actions.Effector
// describes; errors read "post webhook <host>: ..." and hold at most the
// start of the receiver's answer, never the secret, the request body or a
// configured header value.
func (s *Sender) Perform(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	if e == nil {
		return false, errors.New("perform webhook: no effect")
	}
	req, err := decodeRequest(e.Data)
	if err != nil {
		return false, fmt.Errorf("decode webhook effect %s: %w", e.Key, err)
	}
	host := hostOf(req.URL)
	fail := func(retry bool, err error) (bool, error) {
		return retry, fmt.Errorf("post webhook %s: %w", host, err)
	}
	switch {
	case e.Key == "":
		return fail(false, errors.New("the effect has no key to send as Idempotency-Key"))
	case !validHeaderValue(e.Key):
		return fail(false, errors.New("the effect's key contains a line break or control character"))
	case !validHeaderValue(e.Event):
		return fail(false, errors.New("the effect's event id contains a line break or control character"))
	}
	if err := s.policy.Check(req.URL); err != nil {
		return fail(false, err)
	}
	if ctx.Err() != nil {
		return fail(true, context.Cause(ctx))
	}

	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout,
		fmt.Errorf("no answer within webhook.timeout %s: %w", s.timeout, context.DeadlineExceeded))
	defer cancel()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return fail(false, withoutURL(err))
	}
	for name, values := range s.headers {
		hreq.Header[name] = slices.Clone(values)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", s.userAgent)
	hreq.Header.Set(IdempotencyKeyHeader, e.Key)
	if e.Event != "" {
		hreq.Header.Set(EventIDHeader, e.Event)
	}
	if s.secret != "" {
		hreq.Header.Set(SignatureHeader, Sign(s.secret, s.now(), req.Body))
	}

	resp, err := s.client.Do(hreq)
	if err != nil {
		err = withoutURL(err)
		if ctx.Err() != nil {
			return fail(true, context.Cause(ctx))
		}
		return fail(retryableTransport(err), err)
	}
	defer drain(resp.Body)
	if retry, err := s.answer(resp); err != nil {
		return fail(retry, err)
	}
	return false, nil
}

// answer classifies the receiver's answer: nil for 2xx, otherwise an
// error with the status and the start of the body.
func (s *Sender) answer(resp *http.Response) (retry bool, err error) {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return false, nil
	}
	status := strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		status += " " + text
	}
	if code >= 300 && code < 400 {
		to := "elsewhere"
		if loc, err := resp.Location(); err == nil && loc.Host != "" {
			to = "to " + loc.Host
		}
		return false, fmt.Errorf("%s: the receiver redirected %s; redirects are not followed, so configure the URL it redirects to", status, to)
	}
	if text := snippet(resp.Body, s.redact); text != "" {
		status += ": " + text
	}
	return retryableStatus(code), errors.New(status)
}

// decodeRequest decodes an effect's Data strictly: one JSON object with
// known fields only, a URL and a body.
func decodeRequest(data json.RawMessage) (*Request, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("no data")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("not a webhook request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a webhook request: data after the request object")
	}
	var errs []error
	if r.URL == "" {
		errs = append(errs, errors.New("url: not set"))
	}
	if len(r.Body) == 0 {
		errs = append(errs, errors.New("body: not set"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

// hostOf returns the host[:port] of rawURL for error messages, without
// user, path or query.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(invalid url)"
	}
	return u.Host
}

// withoutURL unwraps a *url.Error, whose message holds the whole URL.
func withoutURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no control characters (tabs
// aside), so it cannot break the header block.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func hostList(hosts []string) string {
	if len(hosts) == 0 {
		return "none"
	}
	return strings.Join(hosts, ", ")
}

func headerNames(h map[string]string) string {
	if len(h) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(h)), ", ")
}

func setOrNot(set bool) string {
	if set {
		return "set"
	}
	return "not set"
}
