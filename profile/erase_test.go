package profile

import (
	"strings"
	"testing"
)

// The hash of an address is the same however it is written, differs by
// key, and without a key is the email index's SHA-256.
func TestHasher(t *testing.T) {
	plain, a, b := NewHasher(nil), NewHasher([]byte("key-a")), NewHasher([]byte("key-b"))
	if got := plain.Hash(" Kate@Example.com "); got != "sha256:"+EmailHash("kate@example.com") {
		t.Errorf("plain hash %s", got)
	}
	if a.Hash("Kate@Example.com") != a.Hash("kate@example.com") || !strings.HasPrefix(a.Hash("kate@example.com"), "hmac-sha256:") {
		t.Errorf("keyed hash %s", a.Hash("kate@example.com"))
	}
	if a.Hash("kate@example.com") == b.Hash("kate@example.com") || a.Hash("kate@example.com") == plain.Hash("kate@example.com") {
		t.Error("the key does not change the hash")
	}
	if k := suppressKey(a.Hash("kate@example.com")); strings.Contains(k, ":") || !strings.HasPrefix(k, SuppressKeyPrefix+"hmac-sha256.") {
		t.Errorf("suppression key %s", k)
	}
}
