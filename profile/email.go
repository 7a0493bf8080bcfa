package profile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// NormalizeEmail returns the form of an email address the index keys on:
// without surrounding white space, in lower case. Addresses that differ
// only so are one customer's.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// SameEmail reports whether a and b are the same address once normalised.
func SameEmail(a, b string) bool { return NormalizeEmail(a) == NormalizeEmail(b) }

// EmailHash returns the SHA-256 of the normalised address in lower-case
// hex: what the email index keeps instead of the address.
func EmailHash(email string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return hex.EncodeToString(sum[:])
}

// emailHash is EmailHash for a store operation: an address that is empty
// once normalised is an error.
func emailHash(op, email string) (string, error) {
	if NormalizeEmail(email) == "" {
		return "", fmt.Errorf("%s email: empty address", op)
	}
	return EmailHash(email), nil
}

// EmailKeyPrefix starts the keys of the email index in the profile bucket:
// the index entry of an address is EmailKeyPrefix followed by its
// EmailHash, and its value is the owner's uuid.
//
// The index lives in the profile bucket rather than a bucket of its own,
// on purpose: every KV store then has its index, with nothing more to
// create, wire or permit, and a backup, mirror or restore of the bucket
// carries records, aliases and index together, consistent with each other.
// The key spaces cannot collide: a customer's key (KeyOf) has no dot
// except in the prefix "b64.", so UUIDOf rejects every index key.
const EmailKeyPrefix = "email."

func emailKey(op, email string) (string, error) {
	h, err := emailHash(op, email)
	return EmailKeyPrefix + h, err
}

// maxIndexRaces bounds the retries of an index operation that keeps
// meeting a concurrent claim or release of the same address.
const maxIndexRaces = 16

var _ EmailIndex = (*KV)(nil)

// Owner implements EmailIndex.
func (s *KV) Owner(ctx context.Context, email string) (string, error) {
	key, err := emailKey("owner", email)
	if err != nil {
		return "", err
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("owner of email %s: %w", key, err)
	}
	return string(e.Value()), nil
}

// ClaimEmail implements EmailIndex with a create-if-absent write, which
// the server orders: of concurrent claims exactly one creates the key.
func (s *KV) ClaimEmail(ctx context.Context, email, uuid string) (string, error) {
	key, err := emailKey("claim", email)
	if err != nil {
		return "", err
	}
	if uuid == "" {
		return "", errors.New("claim email: empty customer uuid")
	}
	for range maxIndexRaces {
		_, err := s.kv.Create(ctx, key, []byte(uuid))
		if err == nil {
			return uuid, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLastSequence(err) {
			return "", fmt.Errorf("claim email %s: %w", key, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released meanwhile: claim it again
		}
		if err != nil {
			return "", fmt.Errorf("claim email %s: %w", key, err)
		}
		return string(e.Value()), nil
	}
	return "", fmt.Errorf("claim email %s: %w", key, ErrConflict)
}

// ReleaseEmail implements EmailIndex: it deletes the key only at the
// revision it read the owner from.
func (s *KV) ReleaseEmail(ctx context.Context, email, uuid string) error {
	key, err := emailKey("release", email)
	if err != nil {
		return err
	}
	for range maxIndexRaces {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release email %s: %w", key, err)
		}
		if string(e.Value()) != uuid {
			return nil
		}
		err = s.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongLastSequence(err) {
			return fmt.Errorf("release email %s: %w", key, err)
		}
	}
	return fmt.Errorf("release email %s: %w", key, ErrConflict)
}

// isWrongLastSequence reports whether err is the server refusing a
// compare-and-set write: the key changed since it was read.
func isWrongLastSequence(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
