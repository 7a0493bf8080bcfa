package profile

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Erasure marks the record of a customer whose data was erased on request
// (herald profile forget). Such a record keeps no personal data: no
// profile, applied ids, outbox or merge history, only when the erasure
// happened and a keyed hash of the address the customer had (see
// Hasher), so that the erasure can be shown to have happened for an
// address someone names, without the record naming it.
//
// The applier drops every later event of an erased uuid: an event that
// arrives while or after the customer is erased recreates nothing. A form
// from another uuid giving the same address starts a new customer, since
// the email index no longer names the erased one.
type Erasure struct {
	At time.Time `json:"at"`
	// EmailHashes holds Hasher hashes of the addresses the customer had;
	// none for an anonymous customer.
	EmailHashes []string `json:"email_hashes,omitempty"`
	// Suppressed says the addresses were put on the suppression list.
	Suppressed bool `json:"suppressed,omitempty"`
	// With lists the other uuids erased with this one (customers merged
	// into one another are one person), so that erasing again finds them
	// all. Each has a tombstone of its own under its key anyway.
	With []string `json:"with,omitempty"`
}

// IsErased reports whether the record is an erased customer's.
func (r *Record) IsErased() bool { return r != nil && r.Erased != nil }

// Hasher hashes email addresses for what Herald keeps after erasing a
// customer: the tombstone and the suppression list. With a key it is an
// HMAC-SHA256 of the normalised address; without one, a plain SHA-256,
// the same hash the email index uses. The key matters because an address
// is easily guessed: whoever can read the bucket can hash a list of
// addresses and find every plain hash among them, while an HMAC hides the
// address from whoever does not hold the key as well.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher with key; an empty key gives the plain
// SHA-256.
func NewHasher(key []byte) Hasher { return Hasher{key: key} }

// Keyed reports whether the hasher has a key.
func (h Hasher) Keyed() bool { return len(h.key) > 0 }

// Hash returns the hash of the normalised address, prefixed by its kind:
// "hmac-sha256:" or "sha256:".
func (h Hasher) Hash(email string) string {
	if !h.Keyed() {
		return "sha256:" + EmailHash(email)
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(NormalizeEmail(email)))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// SuppressKeyPrefix starts the keys of the suppression list in the profile
// bucket: an address on it is SuppressKeyPrefix followed by its Hasher
// hash with the ":" made a ".", and Herald sends it no email again. Like
// the email index it lives in the profile bucket, so a backup or restore
// of the bucket carries it; its keys hold a dot, so they are never a
// customer's key.
const SuppressKeyPrefix = "suppress."

// Suppression is one address on the suppression list.
type Suppression struct {
	At time.Time `json:"at"`
	// Reason says why, in the operator's words or Herald's.
	Reason string `json:"reason,omitempty"`
}

// Suppressions is the suppression list: addresses Herald sends no email
// to, kept as hashes (see Hasher) so that the list survives erasing the
// customers who had them.
type Suppressions interface {
	// Suppress puts the address with hash on the list.
	Suppress(ctx context.Context, hash string, s Suppression) error
	// Suppressed returns the list's entry for the address with hash, or
	// ErrNotFound.
	Suppressed(ctx context.Context, hash string) (*Suppression, error)
}

func suppressKey(hash string) string {
	b := []byte(hash)
	for i, c := range b {
		if c == ':' {
			b[i] = '.'
		}
	}
	return SuppressKeyPrefix + string(b)
}

var _ Suppressions = (*KV)(nil)

// Suppress implements Suppressions.
func (s *KV) Suppress(ctx context.Context, hash string, entry Suppression) error {
	data, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("suppress address: %w", err)
	}
	if _, err := s.kv.Put(ctx, suppressKey(hash), data); err != nil {
		return fmt.Errorf("suppress address: %w", err)
	}
	return nil
}

// Suppressed implements Suppressions.
func (s *KV) Suppressed(ctx context.Context, hash string) (*Suppression, error) {
	e, err := s.kv.Get(ctx, suppressKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up suppression: %w", err)
	}
	var out Suppression
	if err := json.Unmarshal(e.Value(), &out); err != nil {
		return nil, fmt.Errorf("look up suppression: %w", err)
	}
	return &out, nil
}

var _ Suppressions = (*Memory)(nil)

// Suppress implements Suppressions.
func (m *Memory) Suppress(_ context.Context, hash string, s Suppression) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.suppressed == nil {
		m.suppressed = make(map[string]Suppression)
	}
	m.suppressed[hash] = s
	return nil
}

// Suppressed implements Suppressions.
func (m *Memory) Suppressed(_ context.Context, hash string) (*Suppression, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.suppressed[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return &s, nil
}

// DeleteEmail removes email from the index, whoever owns it: erasing a
// customer removes the entries naming them. It is not part of EmailIndex,
// which never deletes an owner's entry on its own.
func (s *KV) DeleteEmail(ctx context.Context, email string) error {
	key, err := emailKey("delete", email)
	if err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete email %s: %w", key, err)
	}
	return nil
}
