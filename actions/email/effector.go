package email

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/herald-events/herald/actions"
)

// Rendered is the wire form of an "email" effect as the rules render it
// (rules.Mail): a rendered email without the parts the sender owns. It is
// decoded strictly: a field this version does not know fails the effect.
type Rendered struct {
	Template    string            `json:"template"`
	To          string            `json:"to"`
	Subject     string            `json:"subject"`
	Text        string            `json:"text"`
	HTML        string            `json:"html,omitempty"`
	Marketing   bool              `json:"marketing,omitempty"`
	Unsubscribe string            `json:"unsubscribe,omitempty"`
	Links       map[string]string `json:"links,omitempty"`
	Date        time.Time         `json:"date"`
}

// Effector performs "email" effects: it builds the Message from the
// rendered email (From, Reply-To, a Message-ID made from the effect's key,
// List-Unsubscribe headers for marketing email) and hands it to a Sender.
// The Message-ID makes a second delivery of the same effect recognisable
// as the same email.
type Effector struct {
	Sender Sender
	// From and ReplyTo are the emails' From and Reply-To.
	From, ReplyTo string
}

// NewEffector returns an effector sending through s; from is required.
func NewEffector(s Sender, from, replyTo string) (*Effector, error) {
	if s == nil || from == "" {
		return nil, errors.New("email effector: a sender and a from address are required")
	}
	return &Effector{Sender: s, From: from, ReplyTo: replyTo}, nil
}

// Message builds the email an effect sends.
func (f *Effector) Message(e *actions.Effect) (*Message, error) {
	var r Rendered
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: decode email effect %s: %v", ErrInvalidMessage, e.Key, err)
	}
	m := &Message{
		ID:      e.Key + "@" + domainOf(f.From),
		From:    f.From,
		ReplyTo: f.ReplyTo,
		To:      r.To,
		Subject: r.Subject,
		Text:    r.Text,
		HTML:    r.HTML,
		Date:    r.Date,
	}
	if r.Marketing && r.Unsubscribe != "" {
		// RFC 8058: mail clients offer a one-click unsubscribe that POSTs
		// List-Unsubscribe=One-Click to this URL.
		m.Headers = map[string]string{
			"List-Unsubscribe":      "<" + r.Unsubscribe + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}
	}
	return m, nil
}

// Perform implements actions.Effector.
func (f *Effector) Perform(ctx context.Context, e *actions.Effect) (retry bool, err error) {
	m, err := f.Message(e)
	if err != nil {
		return false, err
	}
	return f.Sender.Send(ctx, m)
}

// String describes where the emails go.
func (f *Effector) String() string { return fmt.Sprint(f.Sender) }

// domainOf is the domain of the From address, for Message-IDs.
func domainOf(from string) string {
	if at := strings.LastIndexByte(from, '@'); at >= 0 {
		if d := strings.Trim(from[at+1:], "> "); d != "" {
			return d
		}
	}
	return "herald.invalid"
}

// Recorder is a Sender that keeps messages in memory instead of sending
// them, after the same checks and the same building as the other senders:
// a message they would refuse, it refuses. Replays and rule tests use it.
type Recorder struct {
	mu   sync.Mutex
	sent []*Message
}

// Send implements Sender.
func (r *Recorder) Send(ctx context.Context, m *Message) (retry bool, err error) {
	if _, err := m.build(); err != nil {
		return false, fmt.Errorf("send email to %s: %w", recipient(m), err)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("send email to %s: %w", m.To, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return false, nil
}

// Sent returns the messages recorded so far.
func (r *Recorder) Sent() []*Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Message(nil), r.sent...)
}

// String describes the recorder.
func (r *Recorder) String() string { return "recorded, not sent" }
