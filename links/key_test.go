package links_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/herald-events/herald/links"
)

// secret returns a deterministic 32-byte test secret named by seed.
func secret(seed string) []byte {
	s := sha256.Sum256([]byte(seed))
	return s[:]
}

// key returns a test key with id and a secret derived from it.
func key(id string) links.Key {
	return links.Key{ID: id, Secret: secret("secret of " + id)}
}

// spellings returns the ways a secret could appear in text: the base64
// forms a user writes, hex, and Go's printing of the byte slice.
func spellings(b []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		fmt.Sprint(b),
		string(b),
	}
}

// assertNoSecret fails when text contains any spelling of any secret.
func assertNoSecret(t *testing.T, what, text string, secrets ...[]byte) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 16 {
			continue // too short to tell apart from other text
		}
		for _, sp := range spellings(s) {
			if sp != "" && strings.Contains(text, sp) {
				t.Errorf("%s contains a secret (%q): %s", what, sp, text)
			}
		}
		// A part of a secret is as bad: check a 12-character window of
		// its base64 too.
		b := base64.RawURLEncoding.EncodeToString(s)
		if strings.Contains(text, b[:12]) || strings.Contains(text, b[len(b)-12:]) {
			t.Errorf("%s contains part of a secret: %s", what, text)
		}
	}
}

func TestParseKeys(t *testing.T) {
	s1, s2 := secret("one"), secret("two")
	tests := []struct {
		name string
		in   string
		want []links.Key
	}{
		{
			name: "URL-safe without padding",
			in:   "k1:" + base64.RawURLEncoding.EncodeToString(s1),
			want: []links.Key{{ID: "k1", Secret: s1}},
		},
		{
			name: "standard padded, two keys, spaces",
			in:   " kid-2:" + base64.StdEncoding.EncodeToString(s2) + " , kid_1 : " + base64.StdEncoding.EncodeToString(s1) + " ",
			want: []links.Key{{ID: "kid-2", Secret: s2}, {ID: "kid_1", Secret: s1}},
		},
		{
			name: "URL-safe padded and standard unpadded",
			in:   "a:" + base64.URLEncoding.EncodeToString(s1) + ",B:" + base64.RawStdEncoding.EncodeToString(s2),
			want: []links.Key{{ID: "a", Secret: s1}, {ID: "B", Secret: s2}},
		},
		{
			name: "longest id",
			in:   "abcdefghijklmnop:" + base64.RawURLEncoding.EncodeToString(s1),
			want: []links.Key{{ID: "abcdefghijklmnop", Secret: s1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := links.ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || !bytes.Equal(got[i].Secret, tt.want[i].Secret) {
					t.Errorf("key %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
			if _, err := links.NewSigner(got...); err != nil {
				t.Errorf("NewSigner: %v", err)
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := secret("good")
	short := secret("short")[:16]
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"no keys"}},
		{"blank", "  ", []string{"no keys"}},
		{"no id", enc(good), []string{"key 1: no id; want id:base64-secret"}},
		{"empty id", ":" + enc(good), []string{"key 1: id must be 1 to 16 characters"}},
		{"id with a space", "my key:" + enc(good), []string{"key 1: id must be"}},
		{"id too long", "abcdefghijklmnopq:" + enc(good), []string{"key 1: id must be"}},
		{"secret and id swapped", enc(good) + ":k1", []string{"key 1: id must be", "key 1: secret is 1 bytes"}},
		{"empty secret", "k1:", []string{`key 1 ("k1"): secret is empty`}},
		{"not base64", "k1:" + enc(good)[:20] + "*!" + enc(good)[20:], []string{`key 1 ("k1"): secret is not base64`}},
		{"short secret", "k1:" + enc(short), []string{`key 1 ("k1"): secret is 16 bytes; at least 32`}},
		{"duplicate id", "k1:" + enc(good) + ",k2:" + enc(good) + ",k1:" + enc(secret("other")), []string{`key 3 ("k1"): id is already used by key 1`}},
		{"empty entry", "k1:" + enc(good) + ",,k2:" + enc(good), []string{"key 2: empty entry"}},
		{"trailing comma", "k1:" + enc(good) + ",", []string{"key 2: empty entry"}},
		{
			"every problem at once",
			"k1:" + enc(short) + "," + enc(good) + ",k1:" + enc(good),
			[]string{`key 1 ("k1"): secret is 16 bytes`, "key 2: no id", `key 3 ("k1"): id is already used by key 1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := links.ParseKeys(tt.in)
			if err == nil {
				t.Fatalf("ParseKeys(%q) = %v, want an error", tt.in, keys)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "parse link keys: ") {
				t.Errorf("error %q does not start with %q", msg, "parse link keys: ")
			}
			at := 0
			for _, w := range tt.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Errorf("error %q does not contain %q after byte %d", msg, w, at)
					continue
				}
				at += i + len(w)
			}
			assertNoSecret(t, "error", msg, good, short, secret("other"))
		})
	}
}

func TestNewSignerErrors(t *testing.T) {
	short := links.Key{ID: "short", Secret: secret("s")[:31]}
	tests := []struct {
		name string
		keys []links.Key
		want []string
	}{
		{"no keys", nil, []string{"create link signer: no keys"}},
		{"short secret", []links.Key{short}, []string{`key 1 ("short"): secret is 31 bytes; at least 32`}},
		{"nil secret", []links.Key{{ID: "k"}}, []string{`key 1 ("k"): secret is 0 bytes`}},
		{"bad id", []links.Key{{ID: "k.1", Secret: secret("x")}}, []string{"key 1: id must be 1 to 16 characters"}},
		{"duplicate", []links.Key{key("a"), key("b"), {ID: "a", Secret: secret("y")}}, []string{`key 3 ("a"): id is already used by key 1`}},
		{"all problems", []links.Key{short, {ID: "", Secret: secret("z")}}, []string{"key 1", "key 2: id must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := links.NewSigner(tt.keys...)
			if err == nil {
				t.Fatal("NewSigner succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, k := range tt.keys {
				assertNoSecret(t, "error", err.Error(), k.Secret)
			}
		})
	}
}

func TestNewSignerCopiesSecrets(t *testing.T) {
	k := key("k1")
	s, err := links.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	k.Secret[0] ^= 0xff // the caller reuses its buffer
	if _, err := s.Verify(tok, now); err != nil {
		t.Errorf("Verify after the caller changed its secret: %v", err)
	}
}

func TestKeyPrintsNoSecret(t *testing.T) {
	k := key("k1")
	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v"} {
		outputs = append(outputs, fmt.Sprintf(format, k), fmt.Sprintf(format, &k), fmt.Sprintf(format, []links.Key{k}))
	}
	outputs = append(outputs, k.String(), fmt.Sprint(k), fmt.Sprintln(struct{ K links.Key }{k}))
	js, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]string
	if err := json.Unmarshal(js, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded["id"] != "k1" || decoded["secret"] != "<secret>" {
		t.Errorf("JSON %s, want id k1 and secret <secret>", js)
	}
	assertNoSecret(t, "JSON", string(js), k.Secret)
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("key", "key", k, "ptr", &k)
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		assertNoSecret(t, "output", out, k.Secret)
		if !strings.Contains(out, "k1") || !strings.Contains(out, "<secret>") {
			t.Errorf("output %q should show the id and <secret>", out)
		}
	}
	if got, want := k.String(), `Key{ID:"k1" Secret:<secret>}`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}
