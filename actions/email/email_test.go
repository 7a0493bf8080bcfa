package email_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/email/smtptest"
)

// sendDate is the fixed clock of every test message.
var sendDate = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// doiRequest is a double opt-in confirmation request as the runner would
// hand it over: German subject, both parts, unsubscribe headers.
func doiRequest() *email.Message {
	return &email.Message{
		ID:      "01JD8XQK3W5N7R9T2V4Y6A8C0E-doi-request-2@herald",
		From:    "Herald Shop <news@shop.example>",
		ReplyTo: "Kundenservice <service@shop.example>",
		To:      "John Doe <john.doe@example.com>",
		Subject: "Bestätigen Sie Ihr Abo",
		Text:    "Hallo John,\n\nbitte bestätigen Sie Ihr Abo:\nhttps://shop.example/confirm?t=abc\n",
		HTML:    "<p>Hallo John,</p>\n<p>bitte <a href=\"https://shop.example/confirm?t=abc\">bestätigen</a> Sie Ihr Abo.</p>\n",
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://shop.example/unsubscribe?t=abc>, <mailto:unsubscribe@shop.example>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
		Date: sendDate,
	}
}

// received is what a mail client shows of a message.
type received struct {
	header mail.Header
	text   string
	html   string
}

// parseEmail reads raw like a mail client: headers decoded, parts split
// and their transfer encoding undone, line ends normalised to \n.
func parseEmail(t *testing.T, raw []byte) received {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	got := received{header: msg.Header}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("parse Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		got.text = decodePart(t, mediaType, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return got
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", mediaType)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		partType, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		body := decodePart(t, partType, part.Header.Get("Content-Transfer-Encoding"), part)
		switch partType {
		case "text/plain":
			if got.html != "" {
				t.Errorf("text/plain part after text/html: clients show the last part they understand")
			}
			got.text = body
		case "text/html":
			got.html = body
		default:
			t.Errorf("unexpected part %q", partType)
		}
	}
	return got
}

func decodePart(t *testing.T, mediaType, cte string, r io.Reader) string {
	t.Helper()
	if !strings.HasPrefix(mediaType, "text/") {
		t.Fatalf("part type %q, want text/*", mediaType)
	}
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s part: %v", mediaType, err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// decodeHeader decodes RFC 2047 encoded words like a mail client.
func decodeHeader(t *testing.T, h mail.Header, name string) string {
	t.Helper()
	v, err := new(mime.WordDecoder).DecodeHeader(h.Get(name))
	if err != nil {
		t.Fatalf("decode %s %q: %v", name, h.Get(name), err)
	}
	return v
}

// checkDelivered asserts what the recipient of want sees in raw.
func checkDelivered(t *testing.T, want *email.Message, raw []byte) {
	t.Helper()
	got := parseEmail(t, raw)
	h := got.header

	if s := decodeHeader(t, h, "Subject"); s != want.Subject {
		t.Errorf("Subject = %q, want %q", s, want.Subject)
	}
	if id := h.Get("Message-ID"); id != "<"+want.ID+">" {
		t.Errorf("Message-ID = %q, want <%s>", id, want.ID)
	}
	for _, c := range []struct{ name, want string }{
		{"From", want.From}, {"To", want.To}, {"Reply-To", want.ReplyTo},
	} {
		if c.want == "" {
			if v := h.Get(c.name); v != "" {
				t.Errorf("%s = %q, want none", c.name, v)
			}
			continue
		}
		gotAddr, err := h.AddressList(c.name)
		wantAddr, _ := mail.ParseAddress(c.want)
		if err != nil || len(gotAddr) != 1 || gotAddr[0].String() != wantAddr.String() {
			t.Errorf("%s = %q (%v), want %q", c.name, h.Get(c.name), err, c.want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(want.Date) {
		t.Errorf("Date = %q (%v), want %s", h.Get("Date"), err, want.Date)
	}
	for name, value := range want.Headers {
		if v := h.Get(name); v != value {
			t.Errorf("%s = %q, want %q", name, v, value)
		}
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q, want 1.0", h.Get("MIME-Version"))
	}
	for _, leak := range []string{"User-Agent", "X-Mailer"} {
		if v := h.Get(leak); v != "" {
			t.Errorf("%s = %q, want none (no library fingerprint)", leak, v)
		}
	}
	if got.text != want.Text {
		t.Errorf("text part = %q, want %q", got.text, want.Text)
	}
	if got.html != want.HTML {
		t.Errorf("html part = %q, want %q", got.html, want.HTML)
	}
}

// backend is one Sender plus a way to read back what it delivered: the
// shared suite every Sender passes.
type backend struct {
	name string
	new  func(t *testing.T) (email.Sender, func(t *testing.T, m *email.Message) []byte)
}

var backends = []backend{
	{"smtp", func(t *testing.T) (email.Sender, func(*testing.T, *email.Message) []byte) {
		srv := smtptest.NewServer(t)
		s, err := email.NewSMTP(email.SMTPConfig{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		return s, func(t *testing.T, m *email.Message) []byte {
			msgs := srv.WaitFor(t, 1, 5*time.Second)
			last := msgs[len(msgs)-1]
			to, _ := mail.ParseAddress(m.To)
			if len(last.To) != 1 || last.To[0] != to.Address {
				t.Errorf("envelope recipients = %q, want [%s]", last.To, to.Address)
			}
			return last.Data
		}
	}},
	{"outbox", func(t *testing.T) (email.Sender, func(*testing.T, *email.Message) []byte) {
		o, err := email.NewOutbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return o, func(t *testing.T, m *email.Message) []byte {
			b, err := os.ReadFile(o.Path(m))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}},
}

func TestSenders(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *email.Message)
	}{
		{"text and html with unsubscribe headers", func(*email.Message) {}},
		{"text only", func(m *email.Message) { m.HTML = "" }},
		{"no reply-to, no extra headers", func(m *email.Message) { m.ReplyTo = ""; m.Headers = nil }},
		{"plain address, non-ASCII display name", func(m *email.Message) {
			m.To = "jane@example.com"
			m.From = "Größter Laden <news@shop.example>"
		}},
		{"date in another zone", func(m *email.Message) { m.Date = sendDate.In(time.FixedZone("CET", 3600)) }},
		{"long subject and lines", func(m *email.Message) {
			m.Subject = strings.Repeat("Ihre Bestätigung für den Newsletter ", 4)
			m.Text = strings.Repeat("ä", 200) + "\n" + strings.Repeat("x", 300) + "\n"
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					sender, delivered := b.new(t)
					m := doiRequest()
					c.change(m)
					retry, err := sender.Send(context.Background(), m)
					if err != nil {
						t.Fatalf("Send: retry=%t err=%v", retry, err)
					}
					checkDelivered(t, m, delivered(t, m))
				})
			}
		})
	}
}

func TestSendersRefuseInvalidMessages(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *email.Message)
		want   []string // parts of the error message
	}{
		{"no id", func(m *email.Message) { m.ID = "" }, []string{"id: not set"}},
		{"id in brackets", func(m *email.Message) { m.ID = "<a@b>" }, []string{"id:", "angle brackets"}},
		{"id without domain", func(m *email.Message) { m.ID = "abc" }, []string{"left@right"}},
		{"bad recipient", func(m *email.Message) { m.To = "john.doe" }, []string{`to "john.doe"`}},
		{"two recipients", func(m *email.Message) { m.To = "a@example.com, b@example.com" }, []string{"to "}},
		{"bad sender", func(m *email.Message) { m.From = "" }, []string{"from"}},
		{"bad reply-to", func(m *email.Message) { m.ReplyTo = "nobody" }, []string{"reply-to"}},
		{"subject with line break", func(m *email.Message) { m.Subject = "Hi\r\nBcc: all@example.com" }, []string{"subject: contains a line break"}},
		{"subject with a bare LF", func(m *email.Message) { m.Subject = "Hi\nBcc: all@example.com" }, []string{"subject: contains a line break"}},
		{"subject with a bare CR", func(m *email.Message) { m.Subject = "Hi\rBcc: all@example.com" }, []string{"subject: contains a line break"}},
		{"no text", func(m *email.Message) { m.Text = " \n" }, []string{"text:"}},
		{"no date", func(m *email.Message) { m.Date = time.Time{} }, []string{"date: not set"}},
		{"header injection", func(m *email.Message) { m.Headers["X-Campaign"] = "a\nBcc: x@example.com" }, []string{`header "X-Campaign"`, "line break"}},
		{"reserved header", func(m *email.Message) { m.Headers["subject"] = "other" }, []string{`header "subject"`}},
		{"bad header name", func(m *email.Message) { m.Headers["X Campaign"] = "a" }, []string{`header "X Campaign"`}},
		{"header twice", func(m *email.Message) { m.Headers["list-unsubscribe"] = "<x>" }, []string{"given twice"}},
		{"all problems at once", func(m *email.Message) { m.To = "x"; m.From = "y"; m.Date = time.Time{} }, []string{"to ", "from ", "date:"}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					sender, _ := b.new(t)
					m := doiRequest()
					c.change(m)
					retry, err := sender.Send(context.Background(), m)
					if err == nil {
						t.Fatal("Send succeeded, want an error")
					}
					if retry {
						t.Errorf("retry = true, want false for %v", err)
					}
					if !errors.Is(err, email.ErrInvalidMessage) {
						t.Errorf("error %v does not match ErrInvalidMessage", err)
					}
					if !strings.HasPrefix(err.Error(), "send email to "+m.To+": ") {
						t.Errorf("error %q does not start with %q", err, "send email to "+m.To)
					}
					for _, w := range c.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not mention %q", err, w)
						}
					}
				})
			}
		})
	}
	t.Run("nil message", func(t *testing.T) {
		o, err := email.NewOutbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if retry, err := o.Send(context.Background(), nil); !errors.Is(err, email.ErrInvalidMessage) || retry {
			t.Errorf("Send(nil) = %t, %v; want false, ErrInvalidMessage", retry, err)
		}
	})
}

// TestSMTPAndOutboxWriteTheSameBytes makes sure the outbox shows exactly what
// a mail server would get.
func TestSMTPAndOutboxWriteTheSameBytes(t *testing.T) {
	srv := smtptest.NewServer(t)
	s, err := email.NewSMTP(email.SMTPConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	o, err := email.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := doiRequest()
	for _, sender := range []email.Sender{s, o} {
		if _, err := sender.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	viaSMTP := srv.WaitFor(t, 1, 5*time.Second)[0].Data
	inOutbox, err := os.ReadFile(o.Path(m))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaSMTP, inOutbox) {
		t.Errorf("SMTP got\n%s\noutbox has\n%s", viaSMTP, inOutbox)
	}
}

func TestSendersHonourCancelledContext(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			sender, _ := b.new(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			retry, err := sender.Send(ctx, doiRequest())
			if !errors.Is(err, context.Canceled) || !retry {
				t.Errorf("Send = %t, %v; want true, context.Canceled", retry, err)
			}
		})
	}
}
