package links_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/herald-events/herald/links"
)

// A token for a key id the signer does not have, signed with an empty
// secret (what a lookup of a missing key would hand a careless verifier),
// must be refused for its key id, whatever its MAC.
func TestVerifyRefusesAForgedUnknownKey(t *testing.T) {
	s := newSigner(t, key("k1"))
	genuine := sign(t, s, claims())
	parts := strings.Split(genuine, ".")
	signed := parts[0] + ".k9." + parts[2]
	m := hmac.New(sha256.New, nil) // the empty key
	m.Write([]byte(signed))
	forged := signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	c, err := s.Verify(forged, now)
	if !errors.Is(err, links.ErrInvalid) || !strings.Contains(err.Error(), `unknown key id "k9"`) {
		t.Fatalf("Verify(forged) = %v, want ErrInvalid naming the unknown key id", err)
	}
	if c != (links.Claims{}) {
		t.Fatalf("claims of a forged token: %+v", c)
	}
}
