package links

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-events/herald/event"
)

// Claims are what a link token carries.
type Claims struct {
	// UUID is the customer: required, at most event.MaxUUIDLen characters.
	UUID string
	// Action is the event a confirmed click emits, such as
	// newsletter.confirm; it must satisfy event.ValidAction.
	Action string
	// Label is that event's label (optional, at most event.MaxLabelLen
	// characters).
	Label string
	// Link is the link's name in the rule, such as "confirm" or
	// "unsubscribe": required, a name (see MaxNameLen).
	Link string
	// Event is the id of the event whose email carried the link (optional,
	// an event id).
	Event string
	// Rule is the rule that sent the email (optional, a name).
	Rule string
	// Site is the site of the emitted event (optional, at most
	// event.MaxSiteLen characters).
	Site string
	// Expires is when the link stops working, in whole seconds: Sign
	// truncates it, Verify returns it in UTC.
	Expires time.Time
}

// Limits on tokens and claims.
const (
	// MaxTokenLen is the length of the longest token Sign makes and Verify
	// reads. Typical tokens are about 250 characters; claims with long
	// labels, sites or uuids may not fit, and Sign refuses them.
	MaxTokenLen = 2048
	// MaxNameLen is the length of the longest link or rule name: ASCII
	// letters, digits, '_', '-' and '.'.
	MaxNameLen = 64
)

// Errors that Verify wraps; match them with errors.Is.
var (
	// ErrInvalid means the token is malformed, names an unknown key or
	// does not carry a valid signature.
	ErrInvalid = errors.New("invalid link token")
	// ErrExpired means the token is genuine but past its expiry.
	ErrExpired = errors.New("link token expired")
)

// version starts every token; it names the token format.
const version = "v1"

// macLen is the length of a token's MAC in bytes.
const macLen = sha256.Size

// lastSecond is the last whole second of the year 9999, the latest expiry.
const lastSecond = 253402300799

// b64 encodes the payload and MAC: URL-safe, without padding, and strict
// about the unused bits of the last character, so that each token has a
// single spelling.
var b64 = base64.RawURLEncoding.Strict()

// Signer signs and verifies link tokens. It is safe for concurrent use.
type Signer struct {
	signing string            // id of the key that signs
	secrets map[string][]byte // secrets by key id, all of which verify
}

// NewSigner returns a Signer that signs with the first key and verifies with
// all of them, so that keys can rotate: list the new key first and keep the
// old one second until its tokens have expired. It reports every problem
// with the keys at once: a missing key, an id that is not 1 to MaxKeyIDLen
// ASCII letters, digits, '_' or '-', a secret shorter than MinSecretLen
// bytes, an id used twice. The secrets are copied.
func NewSigner(keys ...Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("create link signer: no keys")
	}
	entries := make([]entry, len(keys))
	for i, k := range keys {
		entries[i] = entry{n: i + 1, key: k}
	}
	if problems := checkKeys(entries); len(problems) > 0 {
		return nil, fmt.Errorf("create link signer: %s", describe(problems))
	}
	s := &Signer{signing: keys[0].ID, secrets: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		s.secrets[k.ID] = bytes.Clone(k.Secret)
	}
	return s, nil
}

// Sign returns a token carrying c, signed with the signer's first key:
//
//	v1.<key id>.<base64url(payload)>.<base64url(HMAC-SHA256(secret, "v1.<key id>.<payload part>"))>
//
// The payload is binary: the expiry in Unix seconds as a uvarint, then the
// strings UUID, Action, Label, Link, Event, Rule and Site, each as a uvarint
// length and its bytes. The token holds only URL-safe characters.
// Sign checks the claims (see Claims for what each field may hold; Expires
// must be set, from 1970 to 9999) and reports every problem at once. It does
// not check that Expires is in the future. The same claims and key always
// give the same token.
func (s *Signer) Sign(c Claims) (string, error) {
	c.Expires = c.Expires.Truncate(time.Second)
	if problems := c.check(); len(problems) > 0 {
		return "", fmt.Errorf("sign link token: %s", strings.Join(problems, "; "))
	}
	data := encodePayload(&c)
	signed := version + "." + s.signing + "." + b64.EncodeToString(data)
	token := signed + "." + b64.EncodeToString(mac(s.secrets[s.signing], signed))
	if len(token) > MaxTokenLen {
		return "", fmt.Errorf("sign link token: the token would be %d characters; at most %d (shorten the label, site or uuid)", len(token), MaxTokenLen)
	}
	return token, nil
}

// Verify checks token and returns its claims. The error wraps ErrInvalid
// when the token is malformed, names a key the signer does not have or its
// MAC does not match, and ErrExpired when the token is genuine but now is at
// or after its expiry; the claims are then zero.
//
// The MAC is compared in constant time, before anything in the payload is
// decoded. Error messages never contain secrets, the payload or the MAC.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	if token == "" || len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	ver, kid, body, sig := parts[0], parts[1], parts[2], parts[3]
	if ver != version {
		return Claims{}, fmt.Errorf("%w: unknown format version", ErrInvalid)
	}
	if !validKeyID(kid) {
		return Claims{}, fmt.Errorf("%w: malformed key id", ErrInvalid)
	}
	secret, ok := s.secrets[kid]
	if !ok {
		return Claims{}, fmt.Errorf("%w: unknown key id %q", ErrInvalid, kid)
	}
	// The base64 decoder skips line breaks, even in strict mode: a MAC
	// with one added would verify, and one token would have many
	// spellings.
	got, err := b64.DecodeString(sig)
	if err != nil || len(got) != macLen || !isBase64URL(sig) {
		return Claims{}, fmt.Errorf("%w: malformed signature", ErrInvalid)
	}
	if !hmac.Equal(got, mac(secret, token[:len(token)-len(sig)-1])) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}

	// The payload is genuine from here on; it is still checked, in case
	// of a bug in the signer or a leaked key.
	c, err := decodePayload(body)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	if !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Expires.Format(time.RFC3339))
	}
	return c, nil
}

// mac returns HMAC-SHA256(secret, signed).
func mac(secret []byte, signed string) []byte {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, signed)
	return h.Sum(nil)
}

// encodePayload returns the payload of a token carrying c.
func encodePayload(c *Claims) []byte {
	fields := c.fields()
	n := binary.MaxVarintLen64
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(*f)
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(c.Expires.Unix()))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(*f)))
		b = append(b, *f...)
	}
	return b
}

// fields returns the string fields of c in their payload order.
func (c *Claims) fields() [7]*string {
	return [...]*string{&c.UUID, &c.Action, &c.Label, &c.Link, &c.Event, &c.Rule, &c.Site}
}

// decodePayload decodes and checks the payload part of a token. It accepts
// only what encodePayload produces.
func decodePayload(body string) (Claims, error) {
	data, err := b64.DecodeString(body)
	if err != nil {
		return Claims{}, errors.New("not base64url")
	}
	expires, data, ok := uvarint(data)
	if !ok || expires < 1 || expires > lastSecond {
		return Claims{}, errors.New("bad expiry")
	}
	c := Claims{Expires: time.Unix(int64(expires), 0).UTC()}
	for _, f := range c.fields() {
		var n uint64
		if n, data, ok = uvarint(data); !ok || n > uint64(len(data)) {
			return Claims{}, errors.New("truncated")
		}
		*f, data = string(data[:n]), data[n:]
	}
	if len(data) > 0 {
		return Claims{}, errors.New("data after the claims")
	}
	if problems := c.check(); len(problems) > 0 {
		return Claims{}, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

// uvarint reads a minimally encoded uvarint from the start of b and returns
// it with the rest of b.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		return 0, nil, false
	}
	return v, b[n:], true
}

// check describes every problem with the claims.
func (c *Claims) check() []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	switch {
	case c.UUID == "":
		add("uuid: required")
	case !utf8.ValidString(c.UUID):
		add("uuid: not valid UTF-8")
	case utf8.RuneCountInString(c.UUID) > event.MaxUUIDLen:
		add("uuid: at most %d characters", event.MaxUUIDLen)
	}
	switch {
	case c.Action == "":
		add("action: required")
	case !event.ValidAction(c.Action):
		add("action: %s is not an action of the form context.activity, at most %d characters", quote(c.Action), event.MaxActionLen)
	}
	switch {
	case !utf8.ValidString(c.Label):
		add("label: not valid UTF-8")
	case utf8.RuneCountInString(c.Label) > event.MaxLabelLen:
		add("label: at most %d characters", event.MaxLabelLen)
	}
	switch {
	case c.Link == "":
		add("link: required")
	case !validName(c.Link):
		add("link: %s is not a name (at most %d ASCII letters, digits, _, - and .)", quote(c.Link), MaxNameLen)
	}
	if c.Event != "" && !validEventID(c.Event) {
		add("event: %s is not an event id (at most %d printable ASCII characters, no spaces)", quote(c.Event), event.MaxIDLen)
	}
	if c.Rule != "" && !validName(c.Rule) {
		add("rule: %s is not a name (at most %d ASCII letters, digits, _, - and .)", quote(c.Rule), MaxNameLen)
	}
	switch {
	case !utf8.ValidString(c.Site):
		add("site: not valid UTF-8")
	case utf8.RuneCountInString(c.Site) > event.MaxSiteLen:
		add("site: at most %d characters", event.MaxSiteLen)
	}
	switch {
	case c.Expires.IsZero():
		add("expires: required")
	case c.Expires.Unix() < 1 || c.Expires.Unix() > lastSecond:
		add("expires: %s is out of range; from 1970 to 9999", c.Expires.UTC().Format(time.RFC3339))
	}
	return problems
}

// validName reports whether s is 1 to MaxNameLen ASCII letters, digits,
// '_', '-' or '.'.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !wordByte(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// validEventID reports whether s is a valid event id: 1 to event.MaxIDLen
// printable ASCII characters other than space.
func validEventID(s string) bool {
	if s == "" || len(s) > event.MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// quote returns s quoted for an error message, cut short when long.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		n := 0
		for i := range s {
			if n == limit {
				return fmt.Sprintf("%q…", s[:i])
			}
			n++
		}
	}
	return fmt.Sprintf("%q", s)
}

// isBase64URL reports whether s holds only characters of the unpadded
// base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
