package email_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/email/smtptest"
)

// newSMTP builds a sender for srv with cfg's other fields.
func newSMTP(t *testing.T, url string, cfg email.SMTPConfig) *email.SMTP {
	t.Helper()
	cfg.URL = url
	s, err := email.NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP(%v): %v", cfg, err)
	}
	return s
}

func TestSMTPDelivers(t *testing.T) {
	cases := []struct {
		name     string
		server   []smtptest.Option
		url      func(srv *smtptest.Server) string // default srv.URL()
		cfg      email.SMTPConfig
		wantUser string
		wantTLS  bool
	}{
		{
			name: "opportunistic TLS against a server without STARTTLS sends in clear text",
		},
		{
			name:    "opportunistic TLS upgrades when STARTTLS is offered",
			server:  []smtptest.Option{smtptest.WithSTARTTLS()},
			cfg:     email.SMTPConfig{InsecureSkipVerify: true},
			wantTLS: true,
		},
		{
			name:    "mandatory TLS with STARTTLS",
			server:  []smtptest.Option{smtptest.WithSTARTTLS()},
			cfg:     email.SMTPConfig{TLSPolicy: email.TLSMandatory, InsecureSkipVerify: true},
			wantTLS: true,
		},
		{
			name:   "policy none does not upgrade",
			server: []smtptest.Option{smtptest.WithSTARTTLS()},
			cfg:    email.SMTPConfig{TLSPolicy: email.TLSNone},
		},
		{
			name:    "implicit TLS (smtps)",
			server:  []smtptest.Option{smtptest.WithImplicitTLS()},
			cfg:     email.SMTPConfig{InsecureSkipVerify: true},
			wantTLS: true,
		},
		{
			name:     "AUTH PLAIN on localhost without TLS",
			server:   []smtptest.Option{smtptest.WithAuth("shop", "s3cr3t")},
			wantUser: "shop",
		},
		{
			name:     "AUTH LOGIN when the server offers only LOGIN",
			server:   []smtptest.Option{smtptest.WithAuth("shop", "s3cr3t", "LOGIN")},
			wantUser: "shop",
		},
		{
			name:     "AUTH after STARTTLS",
			server:   []smtptest.Option{smtptest.WithAuth("shop", "s3cr3t"), smtptest.WithSTARTTLS()},
			cfg:      email.SMTPConfig{TLSPolicy: email.TLSMandatory, InsecureSkipVerify: true},
			wantUser: "shop",
			wantTLS:  true,
		},
		{
			name:     "AUTH over smtps with special characters in the password",
			server:   []smtptest.Option{smtptest.WithAuth("shop@example", "p@ss/w:rd#?%"), smtptest.WithImplicitTLS()},
			cfg:      email.SMTPConfig{InsecureSkipVerify: true},
			wantUser: "shop@example",
			wantTLS:  true,
		},
		{
			name: "localhost instead of 127.0.0.1 with credentials and no TLS",
			url: func(srv *smtptest.Server) string {
				_, port, _ := net.SplitHostPort(srv.Addr())
				return "smtp://shop:s3cr3t@localhost:" + port
			},
			server:   []smtptest.Option{smtptest.WithAuth("shop", "s3cr3t")},
			cfg:      email.SMTPConfig{TLSPolicy: email.TLSNone},
			wantUser: "shop",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, c.server...)
			url := srv.URL()
			if c.url != nil {
				url = c.url(srv)
			}
			c.cfg.HELO = "herald.test"
			s := newSMTP(t, url, c.cfg)
			m := doiRequest()
			if retry, err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: retry=%t err=%v", retry, err)
			}
			got := srv.WaitFor(t, 1, 5*time.Second)
			if len(got) != 1 {
				t.Fatalf("server got %d messages, want 1", len(got))
			}
			msg := got[0]
			if msg.From != "news@shop.example" {
				t.Errorf("envelope from = %q, want news@shop.example", msg.From)
			}
			if len(msg.To) != 1 || msg.To[0] != "john.doe@example.com" {
				t.Errorf("envelope to = %q, want [john.doe@example.com]", msg.To)
			}
			if msg.Username != c.wantUser {
				t.Errorf("authenticated as %q, want %q", msg.Username, c.wantUser)
			}
			if msg.TLS != c.wantTLS {
				t.Errorf("TLS = %t, want %t", msg.TLS, c.wantTLS)
			}
			if msg.Helo != "herald.test" {
				t.Errorf("HELO = %q, want herald.test", msg.Helo)
			}
			checkDelivered(t, m, msg.Data)
		})
	}
}

func TestSMTPClassifiesFailures(t *testing.T) {
	cases := []struct {
		name      string
		server    []smtptest.Option
		url       func(srv *smtptest.Server) string // default srv.URL()
		cfg       email.SMTPConfig
		down      bool // close the server before sending
		wantRetry bool
		want      string // part of the error message
	}{
		{
			name:      "server down",
			down:      true,
			wantRetry: true,
			want:      "connection refused",
		},
		{
			name:      "451 on RCPT",
			server:    []smtptest.Option{smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 451, Message: "greylisted, try again later"})},
			wantRetry: true,
			want:      "451",
		},
		{
			name:      "451 after DATA",
			server:    []smtptest.Option{smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "local error"})},
			wantRetry: true,
			want:      "451",
		},
		{
			name:      "421 on MAIL",
			server:    []smtptest.Option{smtptest.WithReply(smtptest.Mail, smtptest.Reply{Code: 421, Message: "too busy"})},
			wantRetry: true,
			want:      "421",
		},
		{
			name:   "550 on RCPT: no such user",
			server: []smtptest.Option{smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 550, Message: "no such user"})},
			want:   "550",
		},
		{
			name:   "554 after DATA: rejected as spam",
			server: []smtptest.Option{smtptest.WithReply(smtptest.Data, smtptest.Reply{Code: 554, Message: "spam"})},
			want:   "554",
		},
		{
			name:   "wrong password: 535",
			server: []smtptest.Option{smtptest.WithAuth("shop", "right")},
			url: func(srv *smtptest.Server) string {
				return "smtp://shop:wrong@" + srv.Addr()
			},
			want: "535",
		},
		{
			name:   "server requires AUTH, no credentials configured: 530",
			server: []smtptest.Option{smtptest.WithAuth("shop", "right")},
			url:    func(srv *smtptest.Server) string { return "smtp://" + srv.Addr() },
			want:   "530",
		},
		{
			name: "credentials configured, server offers no AUTH",
			url:  func(srv *smtptest.Server) string { return "smtp://shop:pw@" + srv.Addr() },
			want: "AUTH",
		},
		{
			name: "mandatory TLS, server offers no STARTTLS",
			cfg:  email.SMTPConfig{TLSPolicy: email.TLSMandatory},
			want: "STARTTLS",
		},
		{
			name:   "self-signed certificate not trusted",
			server: []smtptest.Option{smtptest.WithSTARTTLS()},
			cfg:    email.SMTPConfig{TLSPolicy: email.TLSMandatory},
			want:   "certificate",
		},
		{
			name:   "smtps against a server without TLS",
			server: nil,
			url:    func(srv *smtptest.Server) string { return "smtps://" + srv.Addr() },
			cfg:    email.SMTPConfig{InsecureSkipVerify: true},
			want:   "tls",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, c.server...)
			url := srv.URL()
			if c.url != nil {
				url = c.url(srv)
			}
			s := newSMTP(t, url, c.cfg)
			if c.down {
				srv.Close()
			}
			m := doiRequest()
			retry, err := s.Send(context.Background(), m)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			t.Logf("retry=%t err=%v", retry, err)
			if retry != c.wantRetry {
				t.Errorf("retry = %t, want %t for %v", retry, c.wantRetry, err)
			}
			if !strings.HasPrefix(err.Error(), "send email to "+m.To+": ") {
				t.Errorf("error %q does not start with %q", err, "send email to "+m.To)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server accepted %d messages, want none", n)
			}
		})
	}
}

// TestSMTPRetryAfterTemporaryFailure is the retry stage's view: a 451 first,
// then the same message goes through.
func TestSMTPRetryAfterTemporaryFailure(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 451, Times: 1}))
	s := newSMTP(t, srv.URL(), email.SMTPConfig{})
	m := doiRequest()
	if retry, err := s.Send(context.Background(), m); err == nil || !retry {
		t.Fatalf("first Send = %t, %v; want a retryable error", retry, err)
	}
	if retry, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("second Send: retry=%t err=%v", retry, err)
	}
	checkDelivered(t, m, srv.WaitFor(t, 1, 5*time.Second)[0].Data)
}

// silentServer accepts connections and never says a word, like a
// firewalled or hung mail server.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

func TestSMTPTimeoutAndCancel(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		s := newSMTP(t, "smtp://"+silentServer(t), email.SMTPConfig{Timeout: 200 * time.Millisecond})
		start := time.Now()
		retry, err := s.Send(context.Background(), doiRequest())
		if !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %t, %v; want true, context.DeadlineExceeded", retry, err)
		}
		if err != nil && !strings.Contains(err.Error(), "smtp.timeout 200ms") {
			t.Errorf("error %q does not name the timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %s with a 200ms timeout", d)
		}
	})
	t.Run("cancelled while waiting for the server", func(t *testing.T) {
		s := newSMTP(t, "smtp://"+silentServer(t), email.SMTPConfig{Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			retry bool
			err   error
		}
		res := make(chan result, 1)
		go func() {
			retry, err := s.Send(ctx, doiRequest())
			res <- result{retry, err}
		}()
		cancel()
		select {
		case r := <-res:
			if !r.retry || !errors.Is(r.err, context.Canceled) {
				t.Errorf("Send = %t, %v; want true, context.Canceled", r.retry, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Send did not return after cancel")
		}
	})
}

func TestSMTPConcurrentSends(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.WithAuth("shop", "s3cr3t"))
	s := newSMTP(t, srv.URL(), email.SMTPConfig{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := doiRequest()
			m.ID = fmt.Sprintf("msg-%d@herald", i)
			m.To = fmt.Sprintf("user%d@example.com", i)
			if _, err := s.Send(context.Background(), m); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := srv.WaitFor(t, n, 10*time.Second)
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.To[0]] = true
	}
	if len(seen) != n {
		t.Errorf("got recipients %v, want %d distinct", seen, n)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	cases := []struct {
		name string
		cfg  email.SMTPConfig
		want []string // every problem, each naming its field
	}{
		{"no url", email.SMTPConfig{}, []string{"smtp.url: not set"}},
		{"wrong scheme", email.SMTPConfig{URL: "http://mail.example"}, []string{`smtp.url: scheme "http" is not smtp or smtps`}},
		{"no scheme", email.SMTPConfig{URL: "mail.example:25"}, []string{"smtp.url:"}},
		{"no host", email.SMTPConfig{URL: "smtp://"}, []string{"smtp.url: no host"}},
		{"bad port", email.SMTPConfig{URL: "smtp://mail.example:0"}, []string{`smtp.url: port "0"`}},
		{"unparsable port", email.SMTPConfig{URL: "smtp://mail.example:smtp"}, []string{"smtp.url: not a valid URL"}},
		{"path", email.SMTPConfig{URL: "smtp://mail.example/x"}, []string{"without path"}},
		{"user without password", email.SMTPConfig{URL: "smtp://user@mail.example"}, []string{"smtp.url: user name without password"}},
		{"bad policy", email.SMTPConfig{URL: "smtp://mail.example", TLSPolicy: "always"}, []string{`smtp.tls_policy: "always" is not one of`}},
		{"smtps with policy none", email.SMTPConfig{URL: "smtps://mail.example", TLSPolicy: "none"}, []string{"smtp.tls_policy:", "smtps"}},
		{"password in clear text", email.SMTPConfig{URL: "smtp://u:p@mail.example", TLSPolicy: "none"}, []string{"smtp.tls_policy:", "clear text"}},
		{"negative timeout", email.SMTPConfig{URL: "smtp://mail.example", Timeout: -time.Second}, []string{"smtp.timeout:"}},
		{"bad helo", email.SMTPConfig{URL: "smtp://mail.example", HELO: "my host"}, []string{"smtp.helo:"}},
		{
			"all problems at once",
			email.SMTPConfig{URL: "ftp://mail.example", TLSPolicy: "x", Timeout: -1, HELO: "a b"},
			[]string{"smtp.url:", "smtp.tls_policy:", "smtp.timeout:", "smtp.helo:"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := email.NewSMTP(c.cfg)
			if err == nil {
				t.Fatal("NewSMTP succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSMTPString(t *testing.T) {
	cases := []struct{ url, want string }{
		{"smtp://mail.example", "smtp://mail.example:25"},
		{"smtps://mail.example", "smtps://mail.example:465"},
		{"smtp://user:pw@mail.example:587", "smtp://user:<secret>@mail.example:587"},
		{"smtps://news%40shop.example:p%2Fw@mail.example", "smtps://news%40shop.example:<secret>@mail.example:465"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			s, err := email.NewSMTP(email.SMTPConfig{URL: c.url})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != c.want {
				t.Errorf("String() = %q, want %q", got, c.want)
			}
		})
	}
}

// TestSMTPPasswordNeverLeaks checks every way a password could reach a log:
// config errors, printing the config or the sender, and send errors.
func TestSMTPPasswordNeverLeaks(t *testing.T) {
	const secret = "Hunter2-xyzzy"
	urls := []string{
		"smtp://user:" + secret + "@mail.example:587",
		"smtp://user:" + secret + "@mail.example:99999",
		"http://user:" + secret + "@mail.example",
		"smtp://user:" + secret + "@",
		"smtp://user:" + secret + "@mail.example/path?q=1",
		"smtp://:" + secret + "@mail.example",
		// Unescaped special characters make the password part of the host,
		// port, path, query or fragment.
		"smtp://user:" + secret + "/x@mail.example",
		"smtp://user:" + secret + "?x@mail.example",
		"smtp://user:" + secret + "#x@mail.example",
		"smtp://user:x/" + secret + "@mail.example",
		"smtp://user:%zz" + secret + "@mail.example",
		"smtp://user:" + secret + "%zz@mail.example",
		"smtp://user:" + secret + " @mail.example",
		"smtp://user:" + secret + "\n@mail.example",
		"smtp://user:" + secret + "@mail.example:25",
	}
	policies := []string{"", "none", "bogus"}
	for _, u := range urls {
		for _, p := range policies {
			cfg := email.SMTPConfig{URL: u, TLSPolicy: p}
			var (
				out  []string
				logs strings.Builder
			)
			s, err := email.NewSMTP(cfg)
			if err != nil {
				out = append(out, err.Error())
			} else {
				out = append(out, s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s))
				slog.New(slog.NewJSONHandler(&logs, nil)).Info("sender", "smtp", s)
				slog.New(slog.NewTextHandler(&logs, nil)).Info("sender", "smtp", s)
			}
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "smtp", cfg)
			slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "smtp", cfg)
			out = append(out, cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), logs.String())
			for _, o := range out {
				for _, fragment := range []string{secret, "Hunter2", "xyzzy"} {
					if strings.Contains(o, fragment) {
						t.Errorf("URL %q, policy %q: %q leaks the password", u, p, o)
					}
				}
			}
		}
	}

	t.Run("send errors", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithAuth("shop", "right"))
		s := newSMTP(t, "smtp://shop:"+secret+"@"+srv.Addr(), email.SMTPConfig{})
		_, err := s.Send(context.Background(), doiRequest())
		if err == nil {
			t.Fatal("Send with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("send error %q leaks the password", err)
		}
		srv.Close()
		_, err = s.Send(context.Background(), doiRequest())
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("send error %v leaks the password or is missing", err)
		}
	})
}

// TestSMTPIPv6Literal is a regression test: go-mail v0.8.1 formats the
// server address as host:port without brackets.
func TestSMTPIPv6Literal(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("554 5.3.2 not accepting mail\r\n"))
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })

	_, port, _ := net.SplitHostPort(l.Addr().String())
	s := newSMTP(t, "smtp://[::1]:"+port, email.SMTPConfig{})
	if want := "smtp://[::1]:" + port; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
	retry, err := s.Send(context.Background(), doiRequest())
	if err == nil || retry || !strings.Contains(err.Error(), "554") {
		t.Errorf("Send = %t, %v; want the server's 554 greeting, not retryable", retry, err)
	}
}
