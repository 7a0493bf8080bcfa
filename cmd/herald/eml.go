package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxMailSize bounds the .eml files herald outbox reads.
const maxMailSize = 16 << 20

// outboxMail is one .eml file, decoded.
type outboxMail struct {
	path    string
	header  mail.Header
	date    time.Time // zero when the email has no valid Date
	subject string    // decoded (RFC 2047)
	text    string    // the text/plain part, decoded; "" when there is none
	html    string    // the text/html part, decoded; "" when there is none
	charset string    // of the text part, when not UTF-8 or US-ASCII
	modTime time.Time // of the file, when listed
}

// readMail reads and decodes the email in the file at path: its headers,
// and its text and HTML parts with their transfer encoding undone.
func readMail(path string) (*outboxMail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(f, maxMailSize)))
	if err != nil {
		return nil, fmt.Errorf("%s: not an email: %w", path, err)
	}
	m := &outboxMail{path: path, header: msg.Header}
	if d, err := msg.Header.Date(); err == nil {
		m.date = d
	}
	m.subject = decodeWords(msg.Header.Get("Subject"))
	if err := m.readBody(msg.Header, msg.Body, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// header is what readBody needs of a header: mail.Header and a
// multipart.Part's Header both have it.
type header interface {
	Get(key string) string
}

// readBody reads a body with header h: the first text/plain and the first
// text/html part, looking into multipart bodies (at most a few levels).
func (m *outboxMail) readBody(h header, body io.Reader, depth int) error {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType, params = "text/plain", nil // RFC 2045's default
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= 4 || params["boundary"] == "" {
			return nil
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart undoes quoted-printable itself, and removes the
			// Content-Transfer-Encoding header when it does.
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read MIME parts: %w", err)
			}
			if err := m.readBody(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	if mediaType == "text/plain" && m.text != "" || mediaType == "text/html" && m.html != "" {
		return nil
	}
	data, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	if mediaType == "text/html" {
		m.html = text
		return nil
	}
	m.text = text
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		m.charset = cs
	}
	return nil
}

// decodeTransfer undoes a Content-Transfer-Encoding.
func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
	}
	return r
}

// skipSpace drops the line breaks and spaces of base64 text.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		kept := p[:0]
		for _, b := range p[:n] {
			if b != '\r' && b != '\n' && b != ' ' && b != '\t' {
				kept = append(kept, b)
			}
		}
		if len(kept) > 0 || err != nil {
			return len(kept), err
		}
	}
}

// decodeWords decodes RFC 2047 encoded words, as in a Subject; text that
// does not decode is kept as it is.
func decodeWords(s string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// addresses returns the addresses of header field key, decoded, as
// "Name <address>" or "address"; the raw value when it does not parse.
func (m *outboxMail) addresses(key string) string {
	raw := m.header.Get(key)
	if raw == "" {
		return ""
	}
	list, err := m.header.AddressList(key)
	if err != nil {
		return decodeWords(raw)
	}
	out := make([]string, len(list))
	for i, a := range list {
		// mail.Address.String would encode a non-ASCII name again.
		if a.Name != "" {
			out[i] = a.Name + " <" + a.Address + ">"
		} else {
			out[i] = a.Address
		}
	}
	return strings.Join(out, ", ")
}

// to is the recipient's address, without the name, for the list.
func (m *outboxMail) to() string {
	list, err := m.header.AddressList("To")
	if err != nil || len(list) == 0 {
		return decodeWords(m.header.Get("To"))
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return strings.Join(out, ", ")
}

// messageKey is the part of the Message-ID before the "@": for Herald's
// emails the effect's key, <event id>.<rule>.<step>.
func (m *outboxMail) messageKey() string {
	id := strings.Trim(strings.TrimSpace(m.header.Get("Message-ID")), "<>")
	if at := strings.LastIndexByte(id, '@'); at > 0 {
		return id[:at]
	}
	return id
}

// rule is the rule that sent the email, read from its Message-ID
// (<event id>.<rule>.<step>@domain); "-" when the Message-ID is not of
// that form. An event id with a dot in it would be read as part of the
// rule's name; the ids Herald gives events have none.
func (m *outboxMail) rule() string {
	key := m.messageKey()
	last := strings.LastIndexByte(key, '.')
	if last < 0 || !isDigits(key[last+1:]) {
		return "-"
	}
	first := strings.IndexByte(key, '.')
	if first <= 0 || first >= last {
		return "-"
	}
	return key[first+1 : last]
}

func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// linkRE finds URLs in text; hrefRE finds the links of HTML.
var (
	linkRE = regexp.MustCompile(`https?://[^\s<>"'()\[\]{}]+`)
	hrefRE = regexp.MustCompile(`(?i)href\s*=\s*"([^"]*)"|href\s*=\s*'([^']*)'`)
)

// links returns the links of the email, each once, in the order they
// appear: those of the text part, then those only the HTML part has, then
// the List-Unsubscribe address.
func (m *outboxMail) links() []string {
	var out []string
	add := func(u string) {
		u = strings.TrimRight(u, ".,;:!?")
		if (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	for _, u := range linkRE.FindAllString(m.text, -1) {
		add(u)
	}
	for _, sub := range hrefRE.FindAllStringSubmatch(m.html, -1) {
		add(html.UnescapeString(sub[1] + sub[2]))
	}
	for _, part := range strings.Split(m.header.Get("List-Unsubscribe"), ",") {
		add(strings.Trim(strings.TrimSpace(part), "<>"))
	}
	return out
}

// print writes the email for people: its main headers, its text and its
// links.
func (m *outboxMail) print(w io.Writer) {
	var b bytes.Buffer
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-12s %s\n", name+":", cell(value))
		}
	}
	field("File", m.path)
	field("Date", m.dateText())
	field("From", m.addresses("From"))
	field("Reply-To", m.addresses("Reply-To"))
	field("To", m.addresses("To"))
	field("Subject", m.subject)
	field("Message-ID", m.header.Get("Message-ID"))
	if rule := m.rule(); rule != "-" {
		field("Rule", rule)
	}
	field("List-Unsubscribe", m.header.Get("List-Unsubscribe"))
	field("List-Unsubscribe-Post", m.header.Get("List-Unsubscribe-Post"))
	b.WriteString("\n")
	switch {
	case m.text == "":
		b.WriteString("(no text part)\n")
	default:
		if m.charset != "" {
			fmt.Fprintf(&b, "(the text is in %s, shown as it is)\n", m.charset)
		}
		b.WriteString(printableBody([]byte(strings.TrimRight(m.text, "\n"))))
		b.WriteString("\n")
	}
	links := m.links()
	if len(links) > 0 {
		b.WriteString("\nLinks:\n")
		for _, l := range links {
			fmt.Fprintf(&b, "  %s\n", cell(l))
		}
	}
	_, _ = w.Write(b.Bytes())
}
