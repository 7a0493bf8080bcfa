package links_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/links"
)

// now is the fixed time of the tests.
var now = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// claims returns typical claims of a confirmation link, valid for 7 days.
func claims() links.Claims {
	return links.Claims{
		UUID:    "6f1c2d1e-8a3b-4c5d-9e6f-7a8b9c0d1e2f",
		Action:  "newsletter.confirm",
		Label:   "Newsletter subscription confirmed",
		Link:    "confirm",
		Event:   "01KB0000000000000000000002",
		Rule:    "doi-request",
		Site:    "shop.example.com",
		Expires: now.Add(7 * 24 * time.Hour),
	}
}

// newSigner returns a signer of the given keys or fails the test.
func newSigner(t testing.TB, keys ...links.Key) *links.Signer {
	t.Helper()
	s, err := links.NewSigner(keys...)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// sign signs c or fails the test.
func sign(t testing.TB, s *links.Signer, c links.Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func TestSignVerify(t *testing.T) {
	s := newSigner(t, key("k1"))
	tests := []struct {
		name string
		c    links.Claims
	}{
		{"typical", claims()},
		{"only required fields", links.Claims{UUID: "u1", Action: "newsletter.unsubscribe", Link: "unsubscribe", Expires: now.Add(time.Hour)}},
		{"unicode and markup", links.Claims{
			UUID: "kund<1>&\"ü\"", Action: "shop.cart-add_1", Label: "Bestätigt <b>&</b> ✓", Link: "x.y-z_1",
			Event: "id:with/punctuation!", Rule: "r.1", Site: "bäckerei.example", Expires: now.Add(time.Second),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, s, tt.c)
			if !strings.HasPrefix(tok, "v1.k1.") {
				t.Errorf("token %q does not start with v1.k1.", tok)
			}
			if i := strings.IndexFunc(tok, func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_.", r))
			}); i >= 0 {
				t.Errorf("token %q has a character that is not URL-safe at %d", tok, i)
			}
			got, err := s.Verify(tok, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.c {
				t.Errorf("Verify = %+v\nwant     %+v", got, tt.c)
			}
			if again := sign(t, s, tt.c); again != tok {
				t.Errorf("Sign is not deterministic: %q then %q", tok, again)
			}
		})
	}
}

func TestTokenLength(t *testing.T) {
	tok := sign(t, newSigner(t, key("k1")), claims())
	if len(tok) >= 300 {
		t.Errorf("a typical token is %d characters, want fewer than 300: %s", len(tok), tok)
	}
	t.Logf("%d characters: %s", len(tok), tok)
}

func TestSignTruncatesExpiry(t *testing.T) {
	s := newSigner(t, key("k1"))
	c := claims()
	c.Expires = time.Date(2026, 12, 5, 10, 0, 0, 999_999_999, time.FixedZone("CET", 3600))
	got, err := s.Verify(sign(t, s, c), now)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	if !got.Expires.Equal(want) || got.Expires.Location() != time.UTC {
		t.Errorf("Expires = %v, want %v", got.Expires, want)
	}
}

func TestSignRejectsClaims(t *testing.T) {
	s := newSigner(t, key("k1"))
	tests := []struct {
		name   string
		change func(*links.Claims)
		want   []string
	}{
		{"no uuid", func(c *links.Claims) { c.UUID = "" }, []string{"uuid: required"}},
		{"long uuid", func(c *links.Claims) { c.UUID = strings.Repeat("u", 129) }, []string{"uuid: at most 128 characters"}},
		{"uuid not UTF-8", func(c *links.Claims) { c.UUID = "a\xffb" }, []string{"uuid: not valid UTF-8"}},
		{"no action", func(c *links.Claims) { c.Action = "" }, []string{"action: required"}},
		{"bad action", func(c *links.Claims) { c.Action = "confirm" }, []string{`action: "confirm" is not an action`}},
		{"long action", func(c *links.Claims) { c.Action = "a." + strings.Repeat("b", 31) }, []string{"action:"}},
		{"long label", func(c *links.Claims) { c.Label = strings.Repeat("é", 513) }, []string{"label: at most 512 characters"}},
		{"no link", func(c *links.Claims) { c.Link = "" }, []string{"link: required"}},
		{"bad link", func(c *links.Claims) { c.Link = "un subscribe" }, []string{`link: "un subscribe" is not a name`}},
		{"bad event", func(c *links.Claims) { c.Event = "a b" }, []string{`event: "a b" is not an event id`}},
		{"bad rule", func(c *links.Claims) { c.Rule = "rule/1" }, []string{`rule: "rule/1" is not a name`}},
		{"long site", func(c *links.Claims) { c.Site = strings.Repeat("s", 257) }, []string{"site: at most 256 characters"}},
		{"no expiry", func(c *links.Claims) { c.Expires = time.Time{} }, []string{"expires: required"}},
		{"expiry before 1970", func(c *links.Claims) { c.Expires = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"expires: 1969-01-01T00:00:00Z is out of range"}},
		{"too long a token", func(c *links.Claims) { c.Label = strings.Repeat("€", 500) }, []string{"the token would be", "at most 2048"}},
		{"every problem", func(c *links.Claims) { *c = links.Claims{} }, []string{"uuid: required", "action: required", "link: required", "expires: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims()
			tt.change(&c)
			tok, err := s.Sign(c)
			if err == nil {
				t.Fatalf("Sign = %q, want an error", tok)
			}
			if !strings.HasPrefix(err.Error(), "sign link token: ") {
				t.Errorf("error %q does not start with %q", err, "sign link token: ")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// flip returns s with the character at i replaced by another base64url
// character.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestVerifyRejectsTampering(t *testing.T) {
	k1, k2 := key("k1"), key("k2")
	s := newSigner(t, k1, k2)
	tok := sign(t, s, claims())
	parts := strings.Split(tok, ".")
	payloadStart := len(parts[0]) + len(parts[1]) + 2
	macStart := len(tok) - len(parts[3])

	other := newSigner(t, links.Key{ID: "k1", Secret: secret("another secret")})
	// The last MAC character holds 4 significant bits and 2 unused ones;
	// changing only the unused bits decodes to the same MAC under a lax
	// decoder.
	last := tok[len(tok)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sameMAC := tok[:len(tok)-1] + string(alphabet[strings.IndexByte(alphabet, last)^1])

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"payload first byte", flip(tok, payloadStart), "bad signature"},
		{"payload middle byte", flip(tok, (payloadStart+macStart)/2), "bad signature"},
		{"payload last byte", flip(tok, macStart-2), "bad signature"},
		{"MAC first byte", flip(tok, macStart), "bad signature"},
		{"MAC middle byte", flip(tok, (macStart+len(tok))/2), "bad signature"},
		{"MAC unused bits", sameMAC, "malformed signature"},
		{"MAC cut short", tok[:len(tok)-1], "malformed signature"},
		{"MAC longer", tok + "A", "malformed signature"},
		{"MAC of another secret with the same key id", sign(t, other, claims()), "bad signature"},
		{"kid changed to another known key", strings.Replace(tok, "v1.k1.", "v1.k2.", 1), "bad signature"},
		{"kid changed to an unknown key", strings.Replace(tok, "v1.k1.", "v1.k3.", 1), `unknown key id "k3"`},
		{"kid malformed", strings.Replace(tok, "v1.k1.", "v1.k!.", 1), "malformed key id"},
		{"version changed", "v2" + tok[2:], "unknown format version"},
		{"payload replaced", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("\x01\x01x")) + "." + parts[3], "bad signature"},
		{"part missing", parts[0] + "." + parts[2] + "." + parts[3], "malformed"},
		{"part added", tok + ".x", "malformed"},
		{"empty", "", "malformed"},
		{"dots", "...", "unknown format version"},
		{"empty key id", "v1..x.y", "malformed key id"},
		{"too long", tok + strings.Repeat("A", links.MaxTokenLen), "malformed"},
		{"padded MAC", tok + "=", "malformed signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.token == tok {
				t.Fatal("the tampered token equals the original")
			}
			c, err := s.Verify(tt.token, now)
			if !errors.Is(err, links.ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalid", c, err)
			}
			if errors.Is(err, links.ErrExpired) {
				t.Errorf("error %v is also ErrExpired", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if c != (links.Claims{}) {
				t.Errorf("claims %+v returned with an error", c)
			}
			assertNoSecret(t, "error", err.Error(), k1.Secret, k2.Secret)
			if strings.Contains(err.Error(), parts[2]) || strings.Contains(err.Error(), parts[3]) {
				t.Errorf("error %q repeats the token", err)
			}
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	s := newSigner(t, key("k1"))
	c := claims()
	tok := sign(t, s, c)
	tests := []struct {
		name    string
		at      time.Time
		expired bool
	}{
		{"long before", now, false},
		{"a second before", c.Expires.Add(-time.Second), false},
		{"a nanosecond before", c.Expires.Add(-1), false},
		{"at the expiry", c.Expires, true},
		{"after", c.Expires.Add(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Verify(tok, tt.at)
			if !tt.expired {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, links.ErrExpired) || errors.Is(err, links.ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrExpired only", got, err)
			}
			if want := "link token expired at 2026-12-05T10:00:00Z"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if got != (links.Claims{}) {
				t.Errorf("claims %+v returned with an error", got)
			}
		})
	}
}

func TestVerifyTamperedExpiredIsInvalid(t *testing.T) {
	// A token both tampered with and expired is invalid: the signature is
	// checked first.
	s := newSigner(t, key("k1"))
	tok := sign(t, s, claims())
	_, err := s.Verify(flip(tok, len(tok)-5), now.Add(30*24*time.Hour))
	if !errors.Is(err, links.ErrInvalid) {
		t.Errorf("Verify: %v, want ErrInvalid", err)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := key("2025"), key("2026")
	tok := sign(t, newSigner(t, oldKey), claims())

	tests := []struct {
		name  string
		keys  []links.Key
		valid bool
	}{
		{"old key only", []links.Key{oldKey}, true},
		{"new key first, old key second", []links.Key{newKey, oldKey}, true},
		{"old key removed", []links.Key{newKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigner(t, tt.keys...)
			_, err := s.Verify(tok, now)
			if tt.valid && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tt.valid && !errors.Is(err, links.ErrInvalid) {
				t.Errorf("Verify: %v, want ErrInvalid", err)
			}
		})
	}

	t.Run("the first key signs", func(t *testing.T) {
		s := newSigner(t, newKey, oldKey)
		tok := sign(t, s, claims())
		if !strings.HasPrefix(tok, "v1.2026.") {
			t.Errorf("token %q is not signed by key 2026", tok)
		}
		if _, err := newSigner(t, newKey).Verify(tok, now); err != nil {
			t.Errorf("Verify with the new key alone: %v", err)
		}
		if _, err := newSigner(t, oldKey).Verify(tok, now); !errors.Is(err, links.ErrInvalid) {
			t.Errorf("Verify with the old key alone: %v, want ErrInvalid", err)
		}
	})
}
