package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS policies for SMTPConfig.TLSPolicy.
const (
	// TLSOpportunistic upgrades with STARTTLS when the server offers it and
	// sends in clear text otherwise. It is the default.
	TLSOpportunistic = "opportunistic"
	// TLSMandatory refuses to send unless the server offers STARTTLS.
	TLSMandatory = "mandatory"
	// TLSNone never uses STARTTLS.
	TLSNone = "none"
)

// DefaultSMTPTimeout bounds one Send (dial, TLS, AUTH and transfer) when
// SMTPConfig.Timeout is zero.
const DefaultSMTPTimeout = 30 * time.Second

// secretMark replaces the password wherever a URL is printed.
const secretMark = "<secret>"

// SMTPConfig configures an SMTP sender.
//
// Its String, GoString and LogValue methods print the URL with the password
// replaced by <secret>.
type SMTPConfig struct {
	// URL is smtp://[user:password@]host[:port] (port 25 by default, STARTTLS
	// as TLSPolicy says) or smtps://[user:password@]host[:port] (implicit
	// TLS, port 465 by default). With a user name and password the sender
	// authenticates with SMTP AUTH PLAIN or LOGIN, whichever the server
	// offers. Special characters in the user name or password must be
	// percent-encoded.
	URL string
	// TLSPolicy is "opportunistic" (the default: STARTTLS when the server
	// offers it), "mandatory" (STARTTLS or fail) or "none" (never STARTTLS).
	// With smtps:// the connection is always TLS and "none" is refused.
	TLSPolicy string
	// InsecureSkipVerify accepts any server certificate. Only for test
	// servers with self-signed certificates.
	InsecureSkipVerify bool
	// Timeout bounds one Send from dial to the last reply; zero means
	// DefaultSMTPTimeout.
	Timeout time.Duration
	// HELO is the name sent with EHLO/HELO; empty means the host name of
	// this machine.
	HELO string
}

// String returns the URL with the password redacted.
func (c SMTPConfig) String() string {
	return redactURL(c.URL)
}

// GoString is like String, so that %#v does not print the password either.
func (c SMTPConfig) GoString() string {
	return fmt.Sprintf("email.SMTPConfig{URL:%q, TLSPolicy:%q, InsecureSkipVerify:%t, Timeout:%s, HELO:%q}",
		c.String(), c.TLSPolicy, c.InsecureSkipVerify, c.Timeout, c.HELO)
}

// LogValue implements slog.LogValuer without the password.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.String()),
		slog.String("tls_policy", c.TLSPolicy),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
		slog.Duration("timeout", c.Timeout),
		slog.String("helo", c.HELO),
	)
}

// SMTP delivers messages to an SMTP server. It is safe for concurrent use.
//
// Each Send opens its own connection and closes it afterwards: simple and
// robust for the volumes of event-triggered mail, at the cost of one
// handshake per message. Pool connections here if that ever matters.
type SMTP struct {
	implicitTLS bool
	host        string
	port        int
	user        string
	password    string
	policy      gomail.TLSPolicy
	tlsConfig   *tls.Config
	timeout     time.Duration
	helo        string
}

// NewSMTP validates cfg, fills in defaults and returns a sender. All
// problems are reported at once, each naming its field; no error contains
// the password.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	var errs []error
	s := &SMTP{timeout: cfg.Timeout, helo: cfg.HELO}

	errs = append(errs, s.parseURL(cfg.URL)...)

	switch cfg.TLSPolicy {
	case "", TLSOpportunistic:
		s.policy = gomail.TLSOpportunistic
	case TLSMandatory:
		s.policy = gomail.TLSMandatory
	case TLSNone:
		s.policy = gomail.NoTLS
		if s.implicitTLS {
			errs = append(errs, errors.New(`smtp.tls_policy: "none" contradicts smtps:// (implicit TLS); use smtp:// or another policy`))
		}
		if s.user != "" && !isLoopback(s.host) {
			errs = append(errs, errors.New(`smtp.tls_policy: "none" would send the password in clear text; credentials go only over TLS or to localhost`))
		}
	default:
		errs = append(errs, fmt.Errorf("smtp.tls_policy: %q is not one of %s, %s, %s",
			cfg.TLSPolicy, TLSOpportunistic, TLSMandatory, TLSNone))
	}

	switch {
	case cfg.Timeout < 0:
		errs = append(errs, fmt.Errorf("smtp.timeout: %s is negative", cfg.Timeout))
	case cfg.Timeout == 0:
		s.timeout = DefaultSMTPTimeout
	}

	if cfg.HELO != "" && strings.ContainsFunc(cfg.HELO, func(r rune) bool { return r <= ' ' || r > '~' }) {
		errs = append(errs, fmt.Errorf("smtp.helo: %q is not a host name (spaces, line breaks or non-ASCII)", cfg.HELO))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.tlsConfig = &tls.Config{
		ServerName:         s.host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
	}
	return s, nil
}

// parseURL fills scheme, host, port and credentials from raw. Its errors
// never quote raw, which may hold a password.
func (s *SMTP) parseURL(raw string) []error {
	if raw == "" {
		return []error{errors.New("smtp.url: not set")}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes parts of its input; that may be the password.
		if strings.Contains(raw, "@") {
			return []error{errors.New(`smtp.url: not a valid URL (percent-encode special characters such as "/", "?", "#", "%" and "@" in the user name and password)`)}
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return []error{fmt.Errorf("smtp.url: not a valid URL: %w", err)}
	}

	var errs []error
	switch u.Scheme {
	case "smtp":
		s.port = gomail.DefaultPort
	case "smtps":
		s.implicitTLS = true
		s.port = gomail.DefaultPortSSL
	case "":
		errs = append(errs, errors.New(`smtp.url: no scheme; use smtp:// or smtps://`))
	default:
		errs = append(errs, fmt.Errorf("smtp.url: scheme %q is not smtp or smtps", u.Scheme))
	}

	s.host = u.Hostname()
	if s.host == "" {
		errs = append(errs, errors.New("smtp.url: no host"))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("smtp.url: port %q is not between 1 and 65535", p))
		} else {
			s.port = n
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		errs = append(errs, errors.New("smtp.url: must be scheme://[user:password@]host[:port] without path, query or fragment"))
	}

	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
		switch {
		case s.user == "" && s.password != "":
			errs = append(errs, errors.New("smtp.url: password without user name"))
		case s.user != "" && s.password == "":
			errs = append(errs, errors.New("smtp.url: user name without password"))
		}
	}
	return errs
}

// String returns the effective URL with the password redacted, for example
// smtp://user:<secret>@mail.example:587.
func (s *SMTP) String() string {
	scheme := "smtp"
	if s.implicitTLS {
		scheme = "smtps"
	}
	return formatURL(scheme, s.user, s.password != "", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
}

// GoString is like String, so that %#v does not print the password either.
func (s *SMTP) GoString() string {
	return fmt.Sprintf("&email.SMTP{%s}", s.String())
}

// Send delivers m over a new connection, bounded by the configured timeout
// and by ctx. It reports retry as Sender describes; errors read
// "send email to <to>: ...".
func (s *SMTP) Send(ctx context.Context, m *Message) (retry bool, err error) {
	msg, err := m.build()
	if err != nil {
		return false, fmt.Errorf("send email to %s: %w", recipient(m), err)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("send email to %s: %w", m.To, context.Cause(ctx))
	}

	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, s.timeoutError())
	defer cancel()

	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))

	// The dial function keeps the raw connection so that the context can
	// cut it: go-mail honours the context only while dialling. It dials
	// addr itself because go-mail v0.8.1 joins host and port without
	// brackets, which breaks IPv6 literals.
	var conn net.Conn
	stop := func() bool { return false }
	defer func() {
		stop()
		if conn != nil {
			_ = conn.Close()
		}
	}()
	dial := func(dctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = raw
		stop = context.AfterFunc(ctx, func() { _ = raw.Close() })
		if !s.implicitTLS {
			return raw, nil
		}
		tc := tls.Client(raw, s.tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, err
		}
		return tc, nil
	}

	client, err := gomail.NewClient(s.host, s.clientOptions(dial)...)
	if err != nil {
		return false, fmt.Errorf("send email to %s: configure smtp client: %w", m.To, err)
	}

	smtpClient, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.fail(ctx, m, fmt.Errorf("connect to %s: %w", addr, err))
	}
	// QUIT is a courtesy: once the server accepted the data the message is
	// delivered, whatever happens to QUIT.
	defer func() { _ = client.CloseWithSMTPClient(smtpClient) }()

	err = client.SendWithSMTPClient(smtpClient, msg)
	if msg.IsDelivered() {
		return false, nil
	}
	if err == nil {
		err = errors.New("server did not confirm delivery")
	}
	return s.fail(ctx, m, fmt.Errorf("via %s: %w", addr, err))
}

// fail wraps and classifies err. A cancelled or timed out context wins over
// whatever error the cut connection produced. go-mail applies the same
// timeout to each command, so its deadline may strike first; that is the
// configured timeout too.
func (s *SMTP) fail(ctx context.Context, m *Message, err error) (bool, error) {
	switch {
	case ctx.Err() != nil:
		return true, fmt.Errorf("send email to %s: %w: %w", m.To, context.Cause(ctx), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return true, fmt.Errorf("send email to %s: %w: %w", m.To, s.timeoutError(), err)
	}
	return retryable(err), fmt.Errorf("send email to %s: %w", m.To, err)
}

// timeoutError says that the server did not answer within the timeout; it
// matches context.DeadlineExceeded.
func (s *SMTP) timeoutError() error {
	return fmt.Errorf("no answer within smtp.timeout %s: %w", s.timeout, context.DeadlineExceeded)
}

func (s *SMTP) clientOptions(dial gomail.DialContextFunc) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithDialContextFunc(dial),
		// A fresh connection needs no NOOP probe, and RSET after the only
		// message could only turn a delivered message into an error.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	if s.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.policy))
	}
	if s.helo != "" {
		opts = append(opts, gomail.WithHELO(s.helo))
	}
	if s.user != "" {
		// PLAIN or LOGIN, whichever the server offers first in this order;
		// go-mail falls back to its autodiscovery (SCRAM, CRAM-MD5) when
		// neither is offered. PLAIN and LOGIN go only over TLS or to
		// localhost.
		opts = append(opts,
			gomail.WithUsername(s.user),
			gomail.WithPassword(s.password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
		)
	}
	return opts
}

// redactURL prints raw with its password replaced by <secret>. Unparsable
// input is not echoed at all, since it may hold a password.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid smtp url>"
	}
	user := ""
	hasPassword := false
	if u.User != nil {
		user = u.User.Username()
		_, hasPassword = u.User.Password()
	}
	out := formatURL(u.Scheme, user, hasPassword, u.Host)
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		// Not a valid SMTP URL anyway; the rest might hold a mistyped password.
		out += "/..."
	}
	return out
}

func formatURL(scheme, user string, hasPassword bool, hostport string) string {
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if user != "" || hasPassword {
		b.WriteString(url.User(user).String())
		if hasPassword {
			b.WriteString(":" + secretMark)
		}
		b.WriteString("@")
	}
	b.WriteString(hostport)
	return b.String()
}

// isLoopback mirrors go-mail's rule for sending PLAIN/LOGIN without TLS.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// recipient is m.To for error messages, also for a nil message.
func recipient(m *Message) string {
	if m == nil {
		return "<nil>"
	}
	return m.To
}
