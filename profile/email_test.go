package profile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/profile"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"john.doe@example.com":        "john.doe@example.com",
		"  John.Doe@Example.COM \n":   "john.doe@example.com",
		"\tANNA+news@Shop.Example.PL": "anna+news@shop.example.pl",
		"   ":                         "",
	} {
		if got := profile.NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
	if !profile.SameEmail("A@Example.com ", "a@example.com") || profile.SameEmail("a@example.com", "b@example.com") {
		t.Error("SameEmail")
	}
	// echo -n john.doe@example.com | sha256sum
	if got, want := profile.EmailHash(" John.Doe@example.com"), "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"; got != want {
		t.Errorf("EmailHash = %s, want %s", got, want)
	}
}

// The index keeps no address: its keys hold the hash, its values the
// owner, and no key of the index is a customer's.
func TestKVEmailIndexKeepsHashes(t *testing.T) {
	kv := profileBucket(t)
	s := profile.NewKV(kv)
	ctx := t.Context()
	if o, err := s.ClaimEmail(ctx, " John.Doe@Example.com", "u-1"); err != nil || o != "u-1" {
		t.Fatalf("ClaimEmail = %q, %v", o, err)
	}
	key := profile.EmailKeyPrefix + profile.EmailHash("john.doe@example.com")
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatalf("index key %s: %v", key, err)
	}
	if string(e.Value()) != "u-1" {
		t.Errorf("index value %q, want the owner u-1", e.Value())
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		n++
		if strings.Contains(strings.ToLower(k), "john") || strings.Contains(strings.ToLower(k), "example") {
			t.Errorf("key %q holds the address", k)
		}
		if uuid, err := profile.UUIDOf(k); err == nil {
			t.Errorf("index key %q reads as the customer %q", k, uuid)
		}
	}
	if n != 1 {
		t.Errorf("%d keys in the bucket, want the one index key", n)
	}
	// Released, the key is deleted; a new claim creates it again.
	if err := s.ReleaseEmail(ctx, "john.doe@example.com", "u-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Errorf("index key after release: %v, want it deleted", err)
	}
	if o, err := s.ClaimEmail(ctx, "john.doe@example.com", "u-2"); err != nil || o != "u-2" {
		t.Errorf("ClaimEmail after release = %q, %v; want u-2", o, err)
	}
}
