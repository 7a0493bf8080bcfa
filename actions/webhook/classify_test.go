package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestRetryableTransport covers failures the in-process server cannot
// easily produce; the common ones are covered end to end.
func TestRetryableTransport(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"no such host", &net.DNSError{Err: "no such host", Name: "crm.example.com", IsNotFound: true}, true},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"server hung up", fmt.Errorf("read response: %w", io.EOF), true},
		{"cut answer", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), true},
		{"refused at dial", &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: 10.0.0.1 is a private address", ErrRefused)}, false},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{"wrong host name", x509.HostnameError{Host: "crm.example.com"}, false},
		{"tls alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, false},
		{"http answer to https", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false},
		{"malformed answer", errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "hello"`), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retryableTransport(c.err); got != c.want {
				t.Errorf("retryableTransport(%v) = %t, want %t", c.err, got, c.want)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		redact []string
		want   string
	}{
		{"empty", "", nil, ""},
		{"one line", `{"error":"bad"}`, nil, `{"error":"bad"}`},
		{"whitespace and controls folded", "a\r\n\tb\x00\x1bc  ", nil, "a b c"},
		{"invalid UTF-8", "a\xffb", nil, "a\uFFFDb"},
		{"echoed header redacted", "got Authorization: Bearer tok-1234", []string{"Bearer tok-1234"}, "got Authorization: <redacted>"},
		{"cut", strings.Repeat("ab", 400), nil, strings.Repeat("ab", 256) + " …"},
		{"cut inside a rune", strings.Repeat("x", 511) + "ü" + strings.Repeat("x", 10), nil, strings.Repeat("x", 511) + " …"},
		{"value at the edge redacted", strings.Repeat("x", 508) + "tok-1234", []string{"tok-1234"}, strings.Repeat("x", 508) + "<red …"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := snippet(strings.NewReader(c.body), c.redact)
			if got != c.want {
				t.Errorf("snippet = %q, want %q", got, c.want)
			}
			if strings.Contains(got, "tok-") {
				t.Errorf("snippet %q holds a redacted value", got)
			}
		})
	}
}
