package links_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/links"
)

// FuzzVerify checks that Verify never panics, fails only with ErrInvalid or
// ErrExpired, and accepts only tokens that Sign makes: re-signing the claims
// of an accepted token gives the token back, byte for byte.
func FuzzVerify(f *testing.F) {
	signer := newSigner(f, key("k1"))
	other := newSigner(f, key("k2"))
	sameKid := newSigner(f, links.Key{ID: "k1", Secret: secret("not k1")})

	short := links.Claims{UUID: "u", Action: "a.b", Link: "l", Expires: now.Add(time.Minute)}
	unicode := claims()
	unicode.Label, unicode.Site = "Bestätigt ✓ <b>", "bäckerei.example"
	expired := claims()
	expired.Expires = now
	for _, c := range []links.Claims{claims(), short, unicode, expired} {
		tok := sign(f, signer, c)
		f.Add(tok)
		f.Add(sign(f, other, c))
		f.Add(sign(f, sameKid, c))
		f.Add(strings.Replace(tok, "v1.k1.", "v1.k2.", 1))
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
		f.Add(flip(tok, 12))
	}
	for _, s := range []string{"", ".", "...", "v1...", "v1.k1..", "v1.k1.AA.AA", "v1.k1.=.=", "v1.k1.\x00.\xff", strings.Repeat("A", links.MaxTokenLen+1)} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		c, err := signer.Verify(token, now)
		if err != nil {
			if !errors.Is(err, links.ErrInvalid) && !errors.Is(err, links.ErrExpired) {
				t.Fatalf("Verify(%q): %v is neither ErrInvalid nor ErrExpired", token, err)
			}
			if c != (links.Claims{}) {
				t.Fatalf("Verify(%q) returned claims %+v with error %v", token, c, err)
			}
			return
		}
		again, err := signer.Sign(c)
		if err != nil {
			t.Fatalf("Verify(%q) accepted claims that Sign refuses: %v", token, err)
		}
		if again != token {
			t.Fatalf("Verify accepted %q, which Sign did not make (Sign gives %q)", token, again)
		}
	})
}
