package profile

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KV is a Store on a JetStream key-value bucket (HERALD_PROFILES in
// serve). Each customer is one key, see KeyOf; its value is the JSON of
// the Record. The email index shares the bucket under its own keys, see
// EmailKeyPrefix. Revisions are the bucket's, so Put is a compare-and-set
// enforced by the server and safe across engines. It is safe for
// concurrent use.
//
// A record comes back as JSON decodes it: numbers as float64, times in
// the location their offset names (UTC when written in UTC), nil rather
// than empty slices and maps, and Outbox entries compacted.
type KV struct {
	kv jetstream.KeyValue
}

// NewKV returns a Store keeping records in kv.
func NewKV(kv jetstream.KeyValue) *KV { return &KV{kv: kv} }

var _ Store = (*KV)(nil)

// Get implements Store. A missing or deleted key is ErrNotFound.
func (s *KV) Get(ctx context.Context, uuid string) (*Record, uint64, error) {
	if uuid == "" {
		return nil, 0, errors.New("get profile: empty customer uuid")
	}
	e, err := s.kv.Get(ctx, KeyOf(uuid))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get profile %q: %w", uuid, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("get profile %q: decode revision %d: %w", uuid, e.Revision(), err)
	}
	if r.Profile != nil {
		r.Profile.Normalize()
	}
	return &r, e.Revision(), nil
}

// Put implements Store: revision 0 creates the key (a deleted key counts
// as missing), any other revision updates it only if it is still the
// key's latest. Either fails with ErrConflict when another writer came
// first.
func (s *KV) Put(ctx context.Context, uuid string, r *Record, rev uint64) (uint64, error) {
	if uuid == "" {
		return 0, errors.New("put profile: empty customer uuid")
	}
	if r == nil {
		return 0, fmt.Errorf("put profile %q: nil record", uuid)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("put profile %q: encode: %w", uuid, err)
	}
	key := KeyOf(uuid)
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
			return 0, ErrConflict
		}
	} else {
		next, err = s.kv.Update(ctx, key, data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, ErrConflict
		}
	}
	if errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) || errors.Is(err, nats.ErrMaxPayload) {
		return 0, fmt.Errorf("put profile %q: %d bytes: %w (%w)", uuid, len(data), ErrTooLarge, err)
	}
	if err != nil {
		return 0, fmt.Errorf("put profile %q: %w", uuid, err)
	}
	return next, nil
}

// keyPrefixB64 marks a key holding a base64url-encoded uuid. Plain keys
// never contain a dot, so the two forms cannot collide.
const keyPrefixB64 = "b64."

// KeyOf returns the bucket key of the customer uuid. Keys allow only
// [-/_=.a-zA-Z0-9], while a uuid may hold any character, so a uuid made
// only of [A-Za-z0-9_-] — every usual id, and the uuids herald.js makes —
// is its own key, and any other is "b64." followed by the unpadded
// base64url encoding of its bytes: "a b/c" is "b64.YSBiL2M". Each uuid has
// exactly one key and UUIDOf reverses KeyOf. The empty uuid has no valid
// key.
func KeyOf(uuid string) string {
	if isPlainKey(uuid) {
		return uuid
	}
	return keyPrefixB64 + base64.RawURLEncoding.EncodeToString([]byte(uuid))
}

// UUIDOf returns the customer uuid a bucket key stands for, the reverse of
// KeyOf. A key KeyOf cannot produce is an error.
func UUIDOf(key string) (string, error) {
	enc, ok := strings.CutPrefix(key, keyPrefixB64)
	if !ok {
		if !isPlainKey(key) {
			return "", fmt.Errorf("profile key %q: not a customer key", key)
		}
		return key, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("profile key %q: %w", key, err)
	}
	uuid := string(b)
	if uuid == "" {
		return "", fmt.Errorf("profile key %q: empty customer uuid", key)
	}
	if isPlainKey(uuid) {
		// KeyOf keeps such a uuid as it is: this spelling is not its key.
		return "", fmt.Errorf("profile key %q: not a customer key: the uuid %q is its own key", key, uuid)
	}
	return uuid, nil
}

// isPlainKey reports whether s is non-empty and made only of
// [A-Za-z0-9_-].
func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
