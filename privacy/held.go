package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// naming is what identifies a customer in dead letters and emails: their
// uuids and subject tokens, their addresses, the ids of their events.
type naming struct {
	uuids, tokens, emails []string
	events                map[string]bool
	// others reports whether an address belongs to another customer (the
	// email index names someone else): an email to it is not this
	// customer's, even when it was caused by an event with one of their
	// ids (ids are the senders', and two senders may use the same one).
	others func(addr string) bool
}

func (c *Config) naming(ctx context.Context, cu *customer, events []*StoredEvent) *naming {
	n := &naming{uuids: cu.uuids, tokens: cu.tokens(), events: map[string]bool{}}
	owners := map[string]bool{}
	n.others = func(addr string) bool {
		addr = profile.NormalizeEmail(addr)
		if other, ok := owners[addr]; ok {
			return other
		}
		o, err := c.Profiles.Owner(ctx, addr)
		// When the index cannot say, the email is taken as another's:
		// better kept than someone else's erased.
		other := err == nil && !slices.Contains(cu.uuids, o) || err != nil && !errors.Is(err, profile.ErrNotFound)
		owners[addr] = other
		return other
	}
	for _, id := range cu.applied {
		n.events[id] = true
	}
	for _, e := range events {
		if e.ID != "" {
			n.events[e.ID] = true
		}
		// An address the customer typed names them too, claimed or not.
		if s, ok := e.Params[profile.FieldEmail].(string); ok {
			cu.addEmail(s)
		}
	}
	n.emails = cu.emails
	return n
}

func (n *naming) email(addr string) bool {
	return addr != "" && slices.Contains(n.emails, profile.NormalizeEmail(addr))
}

// caused reports whether an email to addr caused by the event id is the
// customer's.
func (n *naming) caused(id, addr string) bool {
	if n.email(addr) {
		return true
	}
	return id != "" && n.events[id] && (n.others == nil || !n.others(addr))
}

// DeadLetter is one dead letter naming the customer.
type DeadLetter struct {
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Stored  time.Time         `json:"stored"`
	Reason  string            `json:"reason"`
	Header  map[string]string `json:"header,omitempty"`
	Data    json.RawMessage   `json:"data"`
}

// names reports whether the dead letter d names the customer: an event of
// theirs (by its uuid, subject or id), or a failed effect of one of their
// events or to one of their addresses.
func (n *naming) names(d *natsbus.Dead) bool {
	if !d.IsEffect() {
		if u := d.UUID(); u != "" {
			return slices.Contains(n.uuids, u)
		}
		if t := natsbus.SplitStored(d.OriginalSubject()).Customer; t != "" && slices.Contains(n.tokens, t) {
			return true
		}
		return n.events[d.EventID()]
	}
	var e struct {
		Event string `json:"event"`
		Data  struct {
			To   string `json:"to"`
			UUID string `json:"uuid"`
		} `json:"data"`
	}
	_ = json.Unmarshal(d.Data, &e)
	switch {
	case e.Data.To != "":
		return n.caused(e.Event, e.Data.To)
	case e.Data.UUID != "":
		return slices.Contains(n.uuids, e.Data.UUID)
	}
	return n.events[e.Event]
}

// readDead returns the dead letters naming the customer; none when there
// is no dead-letter stream. They are read with get-message requests
// (natsbus.StoredEvents): no consumer is made.
func readDead(ctx context.Context, js jetstream.JetStream, n *naming) (*natsbus.DeadLetters, []*natsbus.Dead, error) {
	dl, err := natsbus.OpenDeadLetters(ctx, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := js.Stream(ctx, natsbus.DeadStream)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", natsbus.DeadStream, err)
	}
	var out []*natsbus.Dead
	err = natsbus.StoredEvents(ctx, s, []string{natsbus.DeadSubjects}, natsbus.HistoryRange{}, func(m *jetstream.RawStreamMsg) error {
		d := &natsbus.Dead{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data, Stored: m.Time}
		if d.Header == nil {
			d.Header = nats.Header{}
		}
		if n.names(d) {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return dl, out, nil
}

func deadLetterOf(d *natsbus.Dead) *DeadLetter {
	out := &DeadLetter{Seq: d.Seq, Subject: d.Subject, Stored: d.Stored.UTC(), Reason: d.Reason(), Data: rawJSON(d.Data)}
	for k := range d.Header {
		if out.Header == nil {
			out.Header = map[string]string{}
		}
		out.Header[k] = d.Header.Get(k)
	}
	return out
}

// Email is one email of the outbox folder naming the customer.
type Email struct {
	File      string `json:"file"`
	To        string `json:"to"`
	Subject   string `json:"subject"`
	Date      string `json:"date,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Message is the whole email as written, headers and body.
	Message string `json:"message"`
}

// maxEmailSize bounds the .eml files read.
const maxEmailSize = 16 << 20

// readOutbox returns the emails of the folder dir that name the customer:
// sent to one of their addresses, or caused by one of their events (the
// Message-ID starts with the event's id). A missing folder holds none.
func readOutbox(dir string, n *naming) ([]*Email, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var out []*Email
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		m, err := readEmail(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if m == nil {
			continue
		}
		if slices.ContainsFunc(addresses(m.To), func(a string) bool { return n.caused(eventOfMessageID(m.MessageID), a) }) {
			out = append(out, m)
		}
	}
	return out, nil
}

// readEmail reads the .eml file at path; nil when it is not an email.
func readEmail(path string) (*Email, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxEmailSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	msg, err := mail.ReadMessage(bufio.NewReader(strings.NewReader(string(raw))))
	if err != nil {
		return nil, nil
	}
	dec := new(mimeWordDecoder)
	return &Email{
		File: path, To: msg.Header.Get("To"), Subject: dec.decode(msg.Header.Get("Subject")),
		Date: msg.Header.Get("Date"), MessageID: msg.Header.Get("Message-ID"), Message: string(raw),
	}, nil
}

// addresses returns the bare addresses of an address list header.
func addresses(field string) []string {
	list, err := mail.ParseAddressList(field)
	if err != nil {
		return []string{strings.Trim(strings.TrimSpace(field), "<>")}
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// eventOfMessageID returns the event id a Message-ID of Herald's starts
// with: <event id>.<rule>.<step>@domain.
func eventOfMessageID(id string) string {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	if i := strings.IndexByte(id, '.'); i > 0 {
		return id[:i]
	}
	return ""
}

type mimeWordDecoder struct{ d mime.WordDecoder }

// decode undoes RFC 2047 encoded words; the text as it is when that fails.
func (m *mimeWordDecoder) decode(s string) string {
	out, err := m.d.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}
