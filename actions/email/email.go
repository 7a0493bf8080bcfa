// Package email delivers rendered emails: the effector behind the rule
// action "email".
//
// Rendering happens elsewhere; this package takes a fully rendered [Message]
// and hands it to a [Sender]. Two senders exist: [SMTP] talks to a mail
// server, [Outbox] writes each message as an RFC 5322 .eml file into a folder
// (the default when no mail server is configured). Both produce the same
// bytes for the same message, built with github.com/wneessen/go-mail.
//
// A sender only reports whether a failure is worth retrying; retrying,
// deduplication and dead-lettering are stages of their own.
package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one rendered email, ready to deliver.
type Message struct {
	// ID is the Message-ID without angle brackets, chosen by the caller and
	// deterministic (for example "01JD...-doi-request-2@herald"). It must be
	// set and have the form left@right.
	ID string
	// From is the author, for example "Herald Shop <news@shop.example>".
	From string
	// ReplyTo is an optional Reply-To address.
	ReplyTo string
	// To is the one recipient address; it may have a display name.
	To string
	// Subject is the subject line; non-ASCII text is encoded (RFC 2047).
	Subject string
	// Text is the text/plain part; it is required.
	Text string
	// HTML is the optional text/html part. When it is set the message is
	// multipart/alternative with Text first.
	HTML string
	// Headers holds extra header fields, for example List-Unsubscribe and
	// List-Unsubscribe-Post. Fields that other Message fields or the MIME
	// structure own (From, To, Subject, Content-Type, ...) are refused.
	Headers map[string]string
	// Date is the Date header, from the caller's clock. It must be set.
	Date time.Time
}

// Sender delivers messages. Send reports whether a failure is worth
// retrying: retry is true for transient failures (the server is down, a
// timeout, a 4xx reply) and false when the same message would fail again
// (an invalid address, a 5xx rejection, a wrong password).
type Sender interface {
	Send(ctx context.Context, m *Message) (retry bool, err error)
}

// ErrInvalidMessage is wrapped by every error about a Message that cannot be
// built into an email. Such errors are never worth retrying.
var ErrInvalidMessage = errors.New("invalid message")

// reservedHeaders are header fields that Message fields or the MIME
// structure set; Message.Headers may not override them.
var reservedHeaders = []string{
	"Bcc", "Cc", "Content-Transfer-Encoding", "Content-Type", "Date", "From",
	"Message-Id", "Mime-Version", "Reply-To", "Sender", "Subject", "To",
}

// validate reports every problem of m at once, each naming its field.
func (m *Message) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if err := validateMessageID(m.ID); err != nil {
		add("id: %w", err)
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		add("from %q: %w", m.From, err)
	}
	if m.ReplyTo != "" {
		if _, err := mail.ParseAddress(m.ReplyTo); err != nil {
			add("reply-to %q: %w", m.ReplyTo, err)
		}
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		add("to %q: %w", m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		add("subject: contains a line break")
	}
	if strings.TrimSpace(m.Text) == "" {
		add("text: the text/plain part is empty")
	}
	if m.Date.IsZero() {
		add("date: not set")
	}

	seen := make(map[string]string, len(m.Headers))
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		value := m.Headers[name]
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !validHeaderName(name):
			add("header %q: not a valid header field name", name)
		case slices.Contains(reservedHeaders, canonical):
			add("header %q: set by the message itself, not by extra headers", name)
		case seen[canonical] != "":
			add("header %q: given twice (also as %q)", name, seen[canonical])
		case strings.ContainsAny(value, "\r\n"):
			add("header %q: value contains a line break", name)
		}
		seen[canonical] = name
	}

	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidMessage, errors.Join(errs...))
}

// validateMessageID accepts left@right made of printable ASCII without
// spaces or angle brackets (RFC 5322 msg-id, brackets added on writing).
func validateMessageID(id string) error {
	if id == "" {
		return errors.New("not set")
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return fmt.Errorf("%q: only printable ASCII without spaces or angle brackets", id)
		}
	}
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 {
		return fmt.Errorf("%q: must have the form left@right", id)
	}
	return nil
}

// validHeaderName reports whether name is an RFC 5322 field name: printable
// ASCII except the colon.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// build validates m and turns it into a go-mail message. The multipart
// boundary is derived from the content, so building the same Message twice
// yields the same bytes.
func (m *Message) build() (*gomail.Msg, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	// The addresses parsed in validate; errors cannot happen here.
	from, _ := mail.ParseAddress(m.From)
	to, _ := mail.ParseAddress(m.To)

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithBoundary(boundary(m)))
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	if m.ReplyTo != "" {
		replyTo, _ := mail.ParseAddress(m.ReplyTo)
		msg.ReplyToMailAddress(replyTo)
	}
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDateWithValue(m.Date)
	msg.Subject(m.Subject)
	for name, value := range m.Headers {
		msg.SetGenHeader(gomail.Header(name), value)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// boundary derives a multipart boundary from the message content. A body
// cannot contain the hash of itself, so the boundary never collides.
func boundary(m *Message) string {
	h := sha256.New()
	for _, s := range []string{m.ID, m.Text, m.HTML} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return "herald-" + hex.EncodeToString(h.Sum(nil)[:24])
}
