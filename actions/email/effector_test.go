package email_test

import (
	"encoding/json"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/actionstest"
	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/email/smtptest"
)

var date = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func emailEffect(t *testing.T, key, to string) *actions.Effect {
	t.Helper()
	data, err := json.Marshal(&email.Rendered{Template: "t", To: to, Subject: "Hello", Text: "Hi.\n", Date: date,
		Marketing: true, Unsubscribe: "https://shop.example/l/x"})
	if err != nil {
		t.Fatal(err)
	}
	return &actions.Effect{Key: key, Kind: "email", Event: "ev", Data: data}
}

// keyOf is the effect key in a Message-ID: <KEY@domain>.
func keyOf(messageID string) string {
	id := strings.Trim(messageID, "<>")
	if at := strings.LastIndexByte(id, '@'); at >= 0 {
		id = id[:at]
	}
	return id
}

func TestEffectorSuiteSMTP(t *testing.T) {
	srv := smtptest.NewServer(t)
	sender, err := email.NewSMTP(email.SMTPConfig{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := email.NewEffector(sender, "Shop <news@shop.example>", "")
	if err != nil {
		t.Fatal(err)
	}
	actionstest.Run(t, actionstest.Harness{
		Effector: eff,
		Effect:   func(t *testing.T, key string) *actions.Effect { return emailEffect(t, key, "ann@example.com") },
		Received: func(t *testing.T) []string {
			var keys []string
			for _, m := range srv.Messages() {
				msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, keyOf(msg.Header.Get("Message-Id")))
			}
			return keys
		},
		Permanent: func(t *testing.T, key string) *actions.Effect {
			srv.SetReply(smtptest.Rcpt, smtptest.Reply{Code: 550, Message: "no such mailbox", Times: 1})
			return emailEffect(t, key, "gone@example.com")
		},
		Retryable: func(t *testing.T, key string) *actions.Effect {
			srv.SetReply(smtptest.Data, smtptest.Reply{Code: 451, Message: "try later", Times: 1})
			return emailEffect(t, key, "ann@example.com")
		},
	})
}

func TestEffectorSuiteOutbox(t *testing.T) {
	dir := t.TempDir()
	outbox, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	eff, err := email.NewEffector(outbox, "Shop <news@shop.example>", "")
	if err != nil {
		t.Fatal(err)
	}
	actionstest.Run(t, actionstest.Harness{
		Effector: eff,
		Effect:   func(t *testing.T, key string) *actions.Effect { return emailEffect(t, key, "ann@example.com") },
		Received: func(t *testing.T) []string {
			files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				msg, err := mail.ReadMessage(strings.NewReader(string(data)))
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, keyOf(msg.Header.Get("Message-Id")))
			}
			return keys
		},
		Dedupes: true, // one file per Message-ID
		Permanent: func(t *testing.T, key string) *actions.Effect {
			return emailEffect(t, key, "not an address")
		},
	})
}

// The effector builds what the sender owns: From, the Message-ID from the
// key, and RFC 8058 headers for marketing email.
func TestEffectorBuildsTheMessage(t *testing.T) {
	rec := &email.Recorder{}
	eff, err := email.NewEffector(rec, "Shop <news@shop.example>", "help@shop.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eff.Perform(t.Context(), emailEffect(t, "01KB.doi-confirmed.3", "ann@example.com")); err != nil {
		t.Fatal(err)
	}
	m := rec.Sent()[0]
	if m.ID != "01KB.doi-confirmed.3@shop.example" || m.From != "Shop <news@shop.example>" || m.ReplyTo != "help@shop.example" {
		t.Errorf("message %+v", m)
	}
	if m.Headers["List-Unsubscribe"] != "<https://shop.example/l/x>" || m.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Errorf("headers %v", m.Headers)
	}
}
