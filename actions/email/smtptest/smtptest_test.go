package smtptest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/herald-events/herald/actions/email/smtptest"
)

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

// send delivers raw over one plain connection, authenticating with auth
// unless it is nil.
func send(srv *smtptest.Server, auth sasl.Client) error {
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func TestServerRecords(t *testing.T) {
	srv := smtptest.NewServer(t)
	if err := send(srv, nil); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].From != "a@example.com" || len(got[0].To) != 1 || got[0].To[0] != "b@example.com" {
		t.Fatalf("got %+v", got)
	}
	msg, err := got[0].Parse()
	if err != nil || msg.Header.Get("Subject") != "hi" {
		t.Errorf("Parse = %v, %v; want Subject hi", msg, err)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("Messages() = %d, want 1", len(srv.Messages()))
	}
}

func TestServerReplies(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.WithReply(smtptest.Rcpt, smtptest.Reply{Code: 451, Message: "later", Times: 2}))
	for i := range 2 {
		var smtpErr *smtp.SMTPError
		if err := send(srv, nil); !errors.As(err, &smtpErr) || smtpErr.Code != 451 {
			t.Fatalf("attempt %d: %v, want 451", i+1, err)
		}
	}
	if err := send(srv, nil); err != nil {
		t.Fatalf("third attempt: %v", err)
	}

	srv.SetReply(smtptest.Data, smtptest.Reply{Code: 550})
	var smtpErr *smtp.SMTPError
	if err := send(srv, nil); !errors.As(err, &smtpErr) || smtpErr.Code != 550 {
		t.Fatalf("with DATA reply: %v, want 550", err)
	}
	srv.SetReply(smtptest.Data, smtptest.Reply{})
	if err := send(srv, nil); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	if n := len(srv.WaitFor(t, 2, 5*time.Second)); n != 2 {
		t.Errorf("got %d messages, want 2", n)
	}
}

func TestServerAuth(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.WithAuth("user", "pass"))
	if !strings.HasPrefix(srv.URL(), "smtp://user:pass@127.0.0.1:") {
		t.Errorf("URL() = %q", srv.URL())
	}
	var smtpErr *smtp.SMTPError
	if err := send(srv, nil); !errors.As(err, &smtpErr) || smtpErr.Code != 530 {
		t.Errorf("without auth: %v, want 530", err)
	}
	if err := send(srv, sasl.NewPlainClient("", "user", "wrong")); !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	if err := send(srv, sasl.NewPlainClient("", "user", "pass")); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got := srv.WaitFor(t, 1, 5*time.Second); got[0].Username != "user" {
		t.Errorf("Username = %q, want user", got[0].Username)
	}
}

func TestServerClose(t *testing.T) {
	srv := smtptest.NewServer(t)
	srv.Close()
	srv.Close() // twice is fine
	if err := send(srv, nil); err == nil {
		t.Error("send to a closed server succeeded")
	}
}
