package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/webhook"
)

// testSecret signs every test call.
const testSecret webhook.Secret = "whsec-7b2f-not-for-production"

// callTime is the fixed clock of every test call.
var callTime = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// call is one request the receiver got.
type call struct {
	method, path string
	header       http.Header
	body         []byte
}

// receiver is an in-process HTTP server on 127.0.0.1 that records every
// request and answers as respond says (204 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	calls   []call
	respond func(w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rc.mu.Lock()
		rc.calls = append(rc.calls, call{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
		rc.mu.Unlock()
		if rc.respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		rc.respond(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) received() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
}

// status answers every request with code and text.
func status(code int, text string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}
}

// localConfig allows the test servers on 127.0.0.1.
func localConfig() webhook.Config {
	return webhook.Config{
		Secret: testSecret,
		Policy: webhook.Policy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true},
		Now:    func() time.Time { return callTime },
	}
}

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// effect renders a webhook effect as the outbox keeps it.
func effect(key, rawURL, body string) *actions.Effect {
	data, err := json.Marshal(webhook.Request{URL: rawURL, Body: json.RawMessage(body)})
	if err != nil {
		panic(err)
	}
	return &actions.Effect{Key: key, Kind: "webhook", Event: "01JD8XQK3W5N7R9T2V4Y6A8C0E", Data: data}
}

const doiBody = `{"email":"john.doe@example.com","agreement":"enabled","name":"Jöhn \"JD\" Doe"}`

func TestDelivers(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := localConfig()
	cfg.Headers = map[string]string{"Authorization": "Bearer tok-123", "x-tenant": "shop"}
	s := newSender(t, cfg)

	e := effect("01JD8XQK3W5N7R9T2V4Y6A8C0E.doi-request.1", rc.URL+"/hooks/herald?list=news", doiBody)
	retry, err := s.Perform(t.Context(), e)
	if err != nil {
		t.Fatalf("Perform = retry %t, %v; want success", retry, err)
	}
	calls := rc.received()
	if len(calls) != 1 {
		t.Fatalf("receiver got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.method != http.MethodPost || c.path != "/hooks/herald?list=news" {
		t.Errorf("request = %s %s, want POST /hooks/herald?list=news", c.method, c.path)
	}
	if string(c.body) != doiBody {
		t.Errorf("body = %s, want %s", c.body, doiBody)
	}
	for name, want := range map[string]string{
		"Content-Type":     "application/json",
		"Idempotency-Key":  e.Key,
		"Herald-Event-Id":  e.Event,
		"User-Agent":       "Herald-Webhook/1",
		"Authorization":    "Bearer tok-123",
		"X-Tenant":         "shop",
		"Herald-Signature": webhook.Sign(testSecret, callTime, []byte(doiBody)),
	} {
		if got := c.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := webhook.Verify(testSecret, c.header.Get(webhook.SignatureHeader), c.body, callTime.Add(time.Minute), 0); err != nil {
		t.Errorf("Verify of the received call: %v", err)
	}
}

func TestSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSender(t, localConfig())
	if _, err := s.Perform(t.Context(), effect("k1", rc.URL, doiBody)); err != nil {
		t.Fatal(err)
	}
	c := rc.received()[0]
	header := c.header.Get(webhook.SignatureHeader)
	if !strings.HasPrefix(header, "t=1795860000,v1=") {
		t.Errorf("Herald-Signature = %q, want t=1795860000,v1=…", header)
	}

	tampered := []byte(strings.Replace(string(c.body), "enabled", "disabled", 1))
	cases := []struct {
		name   string
		secret webhook.Secret
		header string
		body   []byte
		now    time.Time
		want   error // nil for success
	}{
		{"as received", testSecret, header, c.body, callTime, nil},
		{"4 minutes later", testSecret, header, c.body, callTime.Add(4 * time.Minute), nil},
		{"tampered body", testSecret, header, tampered, callTime, webhook.ErrSignature},
		{"body with a trailing newline", testSecret, header, append(slices.Clone(c.body), '\n'), callTime, webhook.ErrSignature},
		{"other secret", "whsec-other", header, c.body, callTime, webhook.ErrSignature},
		{"replayed 6 minutes later", testSecret, header, c.body, callTime.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"from 6 minutes in the future", testSecret, header, c.body, callTime.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"no header", testSecret, "", c.body, callTime, webhook.ErrNoSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("unsigned without a secret", func(t *testing.T) {
		cfg := localConfig()
		cfg.Secret = ""
		s := newSender(t, cfg)
		if _, err := s.Perform(t.Context(), effect("k2", rc.URL, doiBody)); err != nil {
			t.Fatal(err)
		}
		calls := rc.received()
		if h, ok := calls[len(calls)-1].header[webhook.SignatureHeader]; ok {
			t.Errorf("Herald-Signature = %q without a secret, want no such header", h)
		}
	})
}

func TestClassifiesAnswers(t *testing.T) {
	cases := []struct {
		code    int
		body    string
		retry   bool
		wantErr string // "" for success
	}{
		{200, "ok", false, ""},
		{201, "", false, ""},
		{202, "", false, ""},
		{204, "", false, ""},
		{400, `{"error":"email missing"}`, false, `: 400 Bad Request: {"error":"email missing"}`},
		{401, "", false, ": 401 Unauthorized"},
		{404, "no such hook", false, ": 404 Not Found: no such hook"},
		{410, "", false, ": 410 Gone"},
		{422, "", false, ": 422 Unprocessable Entity"},
		{408, "", true, ": 408 Request Timeout"},
		{425, "", true, ": 425 Too Early"},
		{429, "slow down", true, ": 429 Too Many Requests: slow down"},
		{500, "", true, ": 500 Internal Server Error"},
		{502, "", true, ": 502 Bad Gateway"},
		{503, "maintenance\r\nuntil\tnoon", true, ": 503 Service Unavailable: maintenance until noon"},
		{599, "", true, ": 599"},
	}
	for _, c := range cases {
		t.Run(http.StatusText(c.code), func(t *testing.T) {
			rc := newReceiver(t, status(c.code, c.body))
			s := newSender(t, localConfig())
			retry, err := s.Perform(t.Context(), effect("k", rc.URL, doiBody))
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Perform = retry %t, %v; want success", retry, err)
				}
				return
			}
			want := "post webhook " + strings.TrimPrefix(rc.URL, "http://") + c.wantErr
			if err == nil || err.Error() != want {
				t.Errorf("Perform error = %v, want %s", err, want)
			}
			if retry != c.retry {
				t.Errorf("retry = %t, want %t", retry, c.retry)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			target := newReceiver(t, nil)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/new?token=abc", code)
			})
			s := newSender(t, localConfig())
			retry, err := s.Perform(t.Context(), effect("k", rc.URL+"/old", doiBody))
			if err == nil || retry {
				t.Fatalf("Perform = retry %t, %v; want a permanent failure", retry, err)
			}
			targetHost := strings.TrimPrefix(target.URL, "http://")
			for _, want := range []string{"redirected to " + targetHost, "not followed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error %q holds the redirect's query", err)
			}
			if n := len(target.received()); n != 0 {
				t.Errorf("the redirect target got %d calls, want none", n)
			}
		})
	}
}

func TestConnectionFailuresAreRetryable(t *testing.T) {
	rc := newReceiver(t, nil)
	rc.Close() // nothing listens there any more
	s := newSender(t, localConfig())
	retry, err := s.Perform(t.Context(), effect("k", rc.URL, doiBody))
	if err == nil || !retry {
		t.Fatalf("Perform to a closed server = retry %t, %v; want a retryable failure", retry, err)
	}
	if !strings.HasPrefix(err.Error(), "post webhook 127.0.0.1:") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not name the host and the refused connection", err)
	}

	t.Run("connection cut before the answer", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_ = conn.Close()
		})
		retry, err := s.Perform(t.Context(), effect("k", rc.URL, doiBody))
		if err == nil || !retry {
			t.Fatalf("Perform = retry %t, %v; want a retryable failure", retry, err)
		}
	})
}

func TestIdempotencyKeyIsStableAcrossRedeliveries(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := localConfig()
	clock := callTime
	cfg.Now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	s := newSender(t, cfg)
	e := effect("01JD8XQK3W5N7R9T2V4Y6A8C0E.doi-request.1", rc.URL, doiBody)
	for range 2 {
		if _, err := s.Perform(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	calls := rc.received()
	if len(calls) != 2 {
		t.Fatalf("receiver got %d calls, want 2", len(calls))
	}
	for i, c := range calls {
		if got := c.header.Get("Idempotency-Key"); got != e.Key {
			t.Errorf("delivery %d: Idempotency-Key = %q, want %q", i+1, got, e.Key)
		}
		now := callTime.Add(time.Duration(i+1) * time.Minute)
		if err := webhook.Verify(testSecret, c.header.Get(webhook.SignatureHeader), c.body, now, time.Second); err != nil {
			t.Errorf("delivery %d: signature not dated at its own call: %v", i+1, err)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *webhook.Config)
		want   []string
	}{
		{"content type", func(c *webhook.Config) { c.Headers = map[string]string{"content-type": "text/plain"} }, []string{`"content-type" is set by Herald`}},
		{"idempotency key", func(c *webhook.Config) { c.Headers = map[string]string{"Idempotency-Key": "x"} }, []string{`"Idempotency-Key" is set by Herald`}},
		{"signature", func(c *webhook.Config) { c.Headers = map[string]string{"HERALD-SIGNATURE": "x"} }, []string{`"HERALD-SIGNATURE" is set by Herald`}},
		{"any Herald header", func(c *webhook.Config) { c.Headers = map[string]string{"Herald-Depth": "1"} }, []string{`"Herald-Depth" is set by Herald`}},
		{"host", func(c *webhook.Config) { c.Headers = map[string]string{"Host": "evil.example"} }, []string{`"Host" is set by Herald`}},
		{"content length", func(c *webhook.Config) { c.Headers = map[string]string{"Content-Length": "1"} }, []string{`"Content-Length" is set by Herald`}},
		{"user agent", func(c *webhook.Config) { c.Headers = map[string]string{"User-Agent": "x"} }, []string{`"User-Agent" is set by Herald`}},
		{"transfer encoding", func(c *webhook.Config) { c.Headers = map[string]string{"Transfer-Encoding": "chunked"} }, []string{`"Transfer-Encoding" is set by Herald`}},
		{"bad name", func(c *webhook.Config) { c.Headers = map[string]string{"X Tenant": "x"} }, []string{`"X Tenant" is not a valid header name`}},
		{"header injection", func(c *webhook.Config) { c.Headers = map[string]string{"X-Tenant": "shop\r\nX-Evil: 1"} }, []string{`value of "X-Tenant" contains a line break`}},
		{"header twice", func(c *webhook.Config) {
			c.Headers = map[string]string{"X-Tenant": "tenant-one", "x-tenant": "tenant-two"}
		}, []string{"given twice"}},
		{"negative timeout", func(c *webhook.Config) { c.Timeout = -time.Second }, []string{"webhook.timeout: -1s is negative"}},
		{"URL in allow_hosts", func(c *webhook.Config) { c.Policy.AllowHosts = []string{"https://crm.example.com/hooks"} }, []string{`webhook.allow_hosts[0] "https://crm.example.com/hooks": list host names, not URLs`}},
		{"secret with a newline", func(c *webhook.Config) { c.Secret = testSecret + "\n" }, []string{"webhook secret: contains a line break"}},
		{"all at once", func(c *webhook.Config) {
			c.Headers = map[string]string{"Content-Type": "text/plain", "Host": "evil.example"}
			c.Timeout = -1
			c.Policy.AllowHosts = []string{"*"}
		}, []string{`"Content-Type"`, `"Host"`, "webhook.timeout", "webhook.allow_hosts[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := localConfig()
			c.change(&cfg)
			s, err := webhook.New(cfg)
			if err == nil {
				t.Fatalf("New = %v, want an error", s)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, v := range cfg.Headers {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q holds the header value %q", err, v)
				}
			}
		})
	}
}

func TestRefusesPrivateAddressesUnlessAllowed(t *testing.T) {
	rc := newReceiver(t, nil)
	port := rc.URL[strings.LastIndexByte(rc.URL, ':')+1:]
	cases := []struct {
		name  string
		hosts []string
		url   string
		want  []string
	}{
		// The URL names the loopback address: Check refuses it.
		{"IP literal", []string{"127.0.0.1"}, rc.URL, []string{`host "127.0.0.1" is a loopback address`, "webhook.allow_private: true"}},
		// The name is allowed, but resolves to loopback: the dialer refuses it.
		{"name resolving to loopback", []string{"localhost"}, "http://localhost:" + port + "/hook", []string{"post webhook localhost:" + port + ": dial tcp", "is a loopback address", "webhook.allow_private: true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSender(t, webhook.Config{Policy: webhook.Policy{AllowHosts: c.hosts}})
			retry, err := s.Perform(t.Context(), effect("k", c.url, doiBody))
			if err == nil || retry {
				t.Fatalf("Perform = retry %t, %v; want a permanent failure", retry, err)
			}
			if !errors.Is(err, webhook.ErrRefused) {
				t.Errorf("error %v does not match ErrRefused", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := len(rc.received()); n != 0 {
				t.Errorf("receiver got %d calls, want none", n)
			}
		})
	}
}

func TestCustomClient(t *testing.T) {
	target := newReceiver(t, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, target.URL, http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)

	t.Run("default client does not trust an unknown certificate", func(t *testing.T) {
		s := newSender(t, localConfig())
		retry, err := s.Perform(t.Context(), effect("k", srv.URL, doiBody))
		if err == nil || retry {
			t.Fatalf("Perform = retry %t, %v; want a permanent failure", retry, err)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not mention the certificate", err)
		}
	})
	t.Run("custom client is used", func(t *testing.T) {
		cfg := localConfig()
		cfg.Client = srv.Client()
		s := newSender(t, cfg)
		if retry, err := s.Perform(t.Context(), effect("k", srv.URL, doiBody)); err != nil {
			t.Fatalf("Perform = retry %t, %v; want success", retry, err)
		}
	})
	t.Run("custom client does not follow redirects", func(t *testing.T) {
		cfg := localConfig()
		cfg.Client = srv.Client()
		s := newSender(t, cfg)
		retry, err := s.Perform(t.Context(), effect("k", srv.URL+"/old", doiBody))
		if err == nil || retry || !strings.Contains(err.Error(), "302 Found") {
			t.Fatalf("Perform = retry %t, %v; want a permanent 302 failure", retry, err)
		}
		if n := len(target.received()); n != 0 {
			t.Errorf("redirect target got %d calls, want none", n)
		}
	})
}

func TestRefusesUndecodableEffects(t *testing.T) {
	rc := newReceiver(t, nil)
	cases := []struct {
		name string
		e    *actions.Effect
		want string
	}{
		{"not JSON", &actions.Effect{Key: "k", Data: json.RawMessage(`{"url":`)}, "decode webhook effect k: not a webhook request"},
		{"unknown field", &actions.Effect{Key: "k", Data: json.RawMessage(`{"url":"` + rc.URL + `","body":{},"method":"GET"}`)}, `unknown field "method"`},
		{"trailing data", &actions.Effect{Key: "k", Data: json.RawMessage(`{"url":"` + rc.URL + `","body":{}} {}`)}, "data after the request object"},
		{"no url and no body", &actions.Effect{Key: "k", Data: json.RawMessage(`{}`)}, "url: not set\nbody: not set"},
		{"null", &actions.Effect{Key: "k", Data: json.RawMessage(`null`)}, "url: not set"},
		{"no data", &actions.Effect{Key: "k"}, "decode webhook effect k: no data"},
		{"no key", effect("", rc.URL, `{}`), "no key to send as Idempotency-Key"},
		{"key with a line break", effect("k\r\nX-Evil: 1", rc.URL, `{}`), "key contains a line break"},
		{"ftp URL", effect("k", "ftp://127.0.0.1/x", `{}`), `scheme "ftp" is not https or http`},
		{"nil effect", nil, "perform webhook: no effect"},
	}
	s := newSender(t, localConfig())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			retry, err := s.Perform(t.Context(), c.e)
			if err == nil || retry {
				t.Fatalf("Perform = retry %t, %v; want a permanent failure", retry, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
	if n := len(rc.received()); n != 0 {
		t.Errorf("receiver got %d calls, want none", n)
	}
}

// hang is a receiver that answers only when the client goes away or the
// test ends.
func hang(t *testing.T) *receiver {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before rc.Close
	return rc
}

func TestCancellationAndTimeout(t *testing.T) {
	t.Run("cancelled during the call", func(t *testing.T) {
		rc := hang(t)
		s := newSender(t, localConfig())
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		retry, err := s.Perform(ctx, effect("k", rc.URL, doiBody))
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("Perform returned after %s, want promptly after the cancellation", elapsed)
		}
		if !errors.Is(err, context.Canceled) || !retry {
			t.Errorf("Perform = retry %t, %v; want retry true, context.Canceled", retry, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		rc := hang(t)
		cfg := localConfig()
		cfg.Timeout = 100 * time.Millisecond
		s := newSender(t, cfg)
		retry, err := s.Perform(t.Context(), effect("k", rc.URL, doiBody))
		if !errors.Is(err, context.DeadlineExceeded) || !retry {
			t.Fatalf("Perform = retry %t, %v; want retry true, context.DeadlineExceeded", retry, err)
		}
		if !strings.Contains(err.Error(), "no answer within webhook.timeout 100ms") {
			t.Errorf("error %q does not name the timeout", err)
		}
	})
}

func TestReadsOnlyTheStartOfAnErrorAnswer(t *testing.T) {
	huge := strings.Repeat("x", 8<<20)
	rc := newReceiver(t, status(http.StatusBadRequest, "\x00bad\xffrequest "+huge))
	s := newSender(t, localConfig())
	retry, err := s.Perform(t.Context(), effect("k", rc.URL, doiBody))
	if err == nil || retry {
		t.Fatalf("Perform = retry %t, %v; want a permanent failure", retry, err)
	}
	msg := err.Error()
	if len(msg) > 700 {
		t.Errorf("error is %d bytes long, want the answer cut to about 512", len(msg))
	}
	if !strings.Contains(msg, ": 400 Bad Request: bad\uFFFDrequest xxx") || !strings.HasSuffix(msg, "x …") {
		t.Errorf("error %.120q… does not show the cleaned start of the answer, marked as cut", msg)
	}
}
