package links

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// Limits on a Key.
const (
	MaxKeyIDLen  = 16 // characters of a key id
	MinSecretLen = 32 // bytes of a secret
)

// secretMark replaces a secret wherever a key is printed.
const secretMark = "<secret>"

// Key is one link-signing key. Every token names the key that signed it, so
// that a new key can sign while old ones still verify.
//
// A Key prints (with any fmt verb, with log/slog and as JSON) with its
// secret replaced by <secret>.
type Key struct {
	// ID names the key inside tokens: 1 to MaxKeyIDLen ASCII letters,
	// digits, '_' or '-'. It is not secret.
	ID string
	// Secret is the HMAC-SHA256 key, at least MinSecretLen random bytes.
	Secret []byte
}

// String returns the key with its secret left out, as in
// Key{ID:"k2" Secret:<secret>}.
func (k Key) String() string {
	return "Key{ID:" + strconv.Quote(k.ID) + " Secret:" + secretMark + "}"
}

// Format prints k as String does, whatever the verb, so that no verb
// (%x, %d, %#v, ...) reveals the secret.
func (k Key) Format(f fmt.State, verb rune) {
	io.WriteString(f, k.String())
}

// LogValue returns the key for log/slog, with its secret left out.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("secret", secretMark))
}

// MarshalJSON returns the key as JSON with its secret left out:
// {"id":"k2","secret":"<secret>"}.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}{k.ID, secretMark})
}

// ParseKeys parses a list of keys in the format of the environment variable
// HERALD_LINK_KEYS: comma-separated id:secret pairs, the signing key first,
// each secret in base64 (standard or URL-safe alphabet, padded or not), as
// in "k2:BASE64-SECRET,k1:BASE64-SECRET". Spaces around entries are ignored.
//
// It reports every problem at once, naming entries by position (and by id
// when the id is well formed); no error message contains secret material.
func ParseKeys(s string) ([]Key, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse link keys: no keys; want id:base64-secret pairs separated by commas, the signing key first")
	}
	var (
		entries  []entry
		problems []problem
	)
	for i, text := range strings.Split(s, ",") {
		n := i + 1
		text = strings.TrimSpace(text)
		if text == "" {
			problems = append(problems, problem{n, fmt.Sprintf("key %d: empty entry", n)})
			continue
		}
		id, enc, ok := strings.Cut(text, ":")
		if !ok {
			// The entry may be a bare secret: never repeat it.
			problems = append(problems, problem{n, fmt.Sprintf("key %d: no id; want id:base64-secret", n)})
			continue
		}
		id = strings.TrimSpace(id)
		secret, err := decodeSecret(strings.TrimSpace(enc))
		if err != nil {
			problems = append(problems, problem{n, keyName(n, id) + ": " + err.Error()})
		}
		entries = append(entries, entry{n: n, key: Key{ID: id, Secret: secret}, badSecret: err != nil})
	}
	problems = append(problems, checkKeys(entries)...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse link keys: %s", describe(problems))
	}
	keys := make([]Key, len(entries))
	for i, e := range entries {
		keys[i] = e.key
	}
	return keys, nil
}

// entry is a key to check and its position in the list, counted from 1.
type entry struct {
	n         int
	key       Key
	badSecret bool // the secret could not be decoded; that is reported already
}

// problem is a problem with the key at position n.
type problem struct {
	n   int
	msg string
}

// describe joins the messages of problems in the order of their keys.
func describe(problems []problem) string {
	slices.SortStableFunc(problems, func(a, b problem) int { return cmp.Compare(a.n, b.n) })
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.msg
	}
	return strings.Join(msgs, "; ")
}

// decodeSecret decodes a base64 secret in either alphabet, padded or not.
// Its errors never contain the input.
func decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("secret is empty")
	}
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("secret is not base64 (standard or URL-safe alphabet, padded or not)")
	}
	return b, nil
}

// checkKeys checks ids, secret lengths and duplicate ids, and describes
// every problem.
func checkKeys(entries []entry) []problem {
	var problems []problem
	first := make(map[string]int, len(entries))
	for _, e := range entries {
		n, k := e.n, e.key
		switch prev, dup := first[k.ID]; {
		case !validKeyID(k.ID):
			// An invalid id might be a misplaced secret: never repeat it.
			problems = append(problems, problem{n, fmt.Sprintf("key %d: id must be 1 to %d characters of ASCII letters, digits, _ and -", n, MaxKeyIDLen)})
		case dup:
			problems = append(problems, problem{n, fmt.Sprintf("%s: id is already used by key %d", keyName(n, k.ID), prev)})
		default:
			first[k.ID] = n
		}
		if !e.badSecret && len(k.Secret) < MinSecretLen {
			problems = append(problems, problem{n, fmt.Sprintf("%s: secret is %d bytes; at least %d random bytes are needed", keyName(n, k.ID), len(k.Secret), MinSecretLen)})
		}
	}
	return problems
}

// keyName names key number n in messages, with its id when the id is well
// formed (an ill-formed id might be secret material).
func keyName(n int, id string) string {
	if validKeyID(id) {
		return fmt.Sprintf("key %d (%q)", n, id)
	}
	return fmt.Sprintf("key %d", n)
}

// validKeyID reports whether id is 1 to MaxKeyIDLen ASCII letters, digits,
// '_' or '-'.
func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !wordByte(id[i]) {
			return false
		}
	}
	return true
}

// wordByte reports whether c is an ASCII letter, digit, '_' or '-'.
func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
