package profile_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/profile/storetest"
)

// profileBucket starts an embedded nats-server in a temporary directory
// and returns its profile bucket, set up as serve sets it up.
func profileBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Start(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("set up jetstream: %v", err)
	}
	return res.Profiles
}

var storetestTime = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestKV(t *testing.T) {
	storetest.Run(t, func(t *testing.T) profile.Store { return profile.NewKV(profileBucket(t)) })
}

func TestKVDeletedKeyIsNotFound(t *testing.T) {
	kv := profileBucket(t)
	s := profile.NewKV(kv)
	ctx := t.Context()
	r := &profile.Record{Profile: profile.New("a b", storetestTime)}
	rev, err := s.Put(ctx, "a b", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, profile.KeyOf("a b")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "a b"); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("Get of a deleted key = %v, want ErrNotFound", err)
	}
	if _, err := s.Put(ctx, "a b", r, rev); !errors.Is(err, profile.ErrConflict) {
		t.Errorf("Put with the revision before the delete = %v, want ErrConflict", err)
	}
	// As for a missing key, revision 0 creates it again.
	if _, err := s.Put(ctx, "a b", r, 0); err != nil {
		t.Fatalf("Put with revision 0 after a delete: %v", err)
	}
	if _, _, err := s.Get(ctx, "a b"); err != nil {
		t.Errorf("Get after re-creating: %v", err)
	}
}

func TestKVStoresJSONUnderKey(t *testing.T) {
	kv := profileBucket(t)
	s := profile.NewKV(kv)
	ctx := t.Context()
	r := &profile.Record{Profile: profile.New("u-1", storetestTime), Applied: []string{"e1"}}
	if _, err := s.Put(ctx, "u-1", r, 0); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "u-1")
	if err != nil {
		t.Fatalf("key u-1: %v", err)
	}
	want := `{"profile":{"uuid":"u-1","created":"2026-11-28T10:00:00Z","updated":"2026-11-28T10:00:00Z"},"applied":["e1"]}`
	if string(e.Value()) != want {
		t.Errorf("value = %s\nwant   %s", e.Value(), want)
	}
	// A record written by another tool with integer attributes and
	// unsorted tags is normalized when read.
	if _, err := kv.Put(ctx, "u-2", []byte(`{"profile":{"uuid":"u-2","attributes":{"n":3},"tags":["b","a","b"]}}`)); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Get(ctx, "u-2")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := got.Profile.Attributes["n"].(float64); !ok || n != 3 || strings.Join(got.Profile.Tags, ",") != "a,b" {
		t.Errorf("read %#v, %v; want n float64 3 and tags a,b", got.Profile.Attributes["n"], got.Profile.Tags)
	}
	if _, err := kv.Put(ctx, "bad", []byte(`{"profile":`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `get profile "bad": decode revision`) {
		t.Errorf("Get of a corrupt value = %v, want a decode error", err)
	}
}

func TestKVRejectsEmptyUUID(t *testing.T) {
	s := profile.NewKV(profileBucket(t))
	ctx := t.Context()
	if _, _, err := s.Get(ctx, ""); err == nil {
		t.Error("Get of the empty uuid succeeded")
	}
	if _, err := s.Put(ctx, "", &profile.Record{}, 0); err == nil {
		t.Error("Put of the empty uuid succeeded")
	}
	if _, err := s.Put(ctx, "u", nil, 0); err == nil {
		t.Error("Put of a nil record succeeded")
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct{ uuid, key string }{
		{"6f1c2d1e-0000-4000-8000-000000000000", "6f1c2d1e-0000-4000-8000-000000000000"},
		{"Abc_123-x", "Abc_123-x"},
		{"a b/c", "b64.YSBiL2M"},
		{"a.b", "b64.YS5i"},
		{"é", "b64.w6k"},
		{"b64.YQ", "b64.YjY0LllR"},
		{"???", "b64.Pz8_"}, // base64url: "_" where base64 has "/"
	}
	for _, tt := range tests {
		if got := profile.KeyOf(tt.uuid); got != tt.key {
			t.Errorf("KeyOf(%q) = %q, want %q", tt.uuid, got, tt.key)
		}
		got, err := profile.UUIDOf(tt.key)
		if err != nil || got != tt.uuid {
			t.Errorf("UUIDOf(%q) = %q, %v; want %q", tt.key, got, err, tt.uuid)
		}
	}
}

func TestUUIDOfRejectsForeignKeys(t *testing.T) {
	for _, key := range []string{
		"",
		"a.b",          // a dot outside the b64. prefix
		"b64.",         // the empty uuid
		"b64.YWJj",     // "abc" is its own key
		"b64.YSBiL2M=", // padding
		"b64.!!",
		"a/b",
		"b64.YSBiL2", // not canonical base64
	} {
		if uuid, err := profile.UUIDOf(key); err == nil {
			t.Errorf("UUIDOf(%q) = %q, want an error", key, uuid)
		}
	}
}

func FuzzKeyOf(f *testing.F) {
	for _, s := range []string{"", "abc", "a b/c", "b64.YQ", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uuid string) {
		if uuid == "" {
			return
		}
		key := profile.KeyOf(uuid)
		for _, c := range key {
			if !strings.ContainsRune("-/_=.", c) && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				t.Fatalf("KeyOf(%q) = %q: %q is not allowed in a key", uuid, key, c)
			}
		}
		if strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
			t.Fatalf("KeyOf(%q) = %q: not a valid key", uuid, key)
		}
		back, err := profile.UUIDOf(key)
		if err != nil || back != uuid {
			t.Fatalf("UUIDOf(KeyOf(%q)) = %q, %v", uuid, back, err)
		}
	})
}
