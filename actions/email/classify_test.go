package email

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"testing"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TestRetryable covers failures the in-process server cannot easily
// produce; the common ones are covered end to end in smtp_test.go.
func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"421 at greeting", &textproto.Error{Code: 421, Msg: "try later"}, true},
		{"454 temporary auth failure", fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 454, Msg: "x"}), true},
		{"535 bad credentials", fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "x"}), false},
		{"554 at greeting", &textproto.Error{Code: 554, Msg: "go away"}, false},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"no such host", &net.DNSError{Err: "no such host", Name: "mail.example", IsNotFound: true}, true},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"server hung up", fmt.Errorf("smtp: %w", io.EOF), true},
		{"connection dropped during RCPT", &gomail.SendError{Reason: gomail.ErrSMTPRcptTo}, true},
		{"cannot get sender", &gomail.SendError{Reason: gomail.ErrGetSender}, false},
		{"unknown authority", x509.UnknownAuthorityError{}, false},
		{"tls alert wrapped in OpError", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, false},
		{"plain auth refused without TLS", fmt.Errorf("SMTP AUTH failed: %w", smtp.ErrUnencrypted), false},
		{"no auth mechanism", gomail.ErrNoSupportedAuthDiscovered, false},
		{"unknown error", errors.New("STARTTLS mode set to: \"TLSMandatory\", but target host does not support STARTTLS"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retryable(c.err); got != c.want {
				t.Errorf("retryable(%v) = %t, want %t", c.err, got, c.want)
			}
		})
	}
}
