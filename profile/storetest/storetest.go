// Package storetest is the conformance suite every profile.Store passes.
// A store's tests call Run with a constructor of empty stores:
//
//	func TestMemory(t *testing.T) {
//		storetest.Run(t, func(*testing.T) profile.Store { return profile.NewMemory() })
//	}
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/profile"
)

// Run tests the Store contract, email index and aliases included, on
// stores newStore makes; each subtest gets a new, empty store. Records are compared with reflect.DeepEqual, so
// a store must return exactly what was put, in the normal form Herald
// keeps: attribute numbers as float64, tags sorted, times in UTC.
func Run(t *testing.T, newStore func(t *testing.T) profile.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, s profile.Store)
	}{
		{"GetMissing", testGetMissing},
		{"CreateThenGet", testCreateThenGet},
		{"CreateTwiceConflicts", testCreateTwiceConflicts},
		{"UpdateWithRevision", testUpdateWithRevision},
		{"StaleRevisionConflicts", testStaleRevisionConflicts},
		{"RoundTrip", testRoundTrip},
		{"ReturnsCopies", testReturnsCopies},
		{"ConcurrentReadModifyWrite", testConcurrentReadModifyWrite},
		{"OddUUIDs", testOddUUIDs},
		{"MergeRecordsRoundTrip", testMergeRecordsRoundTrip},
		{"Resolve", testResolve},
		{"ResolveLoops", testResolveLoops},
		{"OwnerMissing", testOwnerMissing},
		{"ClaimEmail", testClaimEmail},
		{"ClaimNormalizes", testClaimNormalizes},
		{"ReleaseEmail", testReleaseEmail},
		{"EmptyEmail", testEmptyEmail},
		{"IndexIsNotRecords", testIndexIsNotRecords},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentClaimRelease", testConcurrentClaimRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, newStore(t))
		})
	}
}

var (
	created = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	updated = time.Date(2026, 11, 29, 18, 30, 15, 123456789, time.UTC)
)

// record returns a record using every part of the format.
func record(uuid string) *profile.Record {
	return &profile.Record{
		Profile: &profile.Profile{
			UUID:      uuid,
			Email:     "john.doe@example.com",
			Firstname: "John",
			Lastname:  "Doe",
			Phone:     "+49 30 1234567",
			Attributes: map[string]any{
				"newsletterAgreement": "enabled",
				"score":               42.5,
				"visits":              3.0,
				"tiny":                1e-300,
				"big":                 1e21,
				"vip":                 true,
				"churned":             false,
			},
			Tags:    []string{"contact", "newsletter", "ünïcode"},
			Created: created,
			Updated: updated,
		},
		Applied: []string{"01JD0000000000000000000001", "01JD0000000000000000000002"},
		Outbox: []json.RawMessage{
			json.RawMessage(`{"kind":"email","rule":"doi-request","step":0,"to":"john.doe@example.com"}`),
			json.RawMessage(`{"kind":"emit","action":"newsletter.confirmed","params":{"n":1.5,"ok":true}}`),
		},
	}
}

// minimal returns a record with nothing but a new profile.
func minimal(uuid string) *profile.Record {
	return &profile.Record{Profile: profile.New(uuid, created)}
}

func get(t *testing.T, s profile.Store, uuid string) (*profile.Record, uint64) {
	t.Helper()
	r, rev, err := s.Get(t.Context(), uuid)
	if err != nil {
		t.Fatalf("Get(%q): %v", uuid, err)
	}
	if rev == 0 {
		t.Fatalf("Get(%q): revision 0", uuid)
	}
	return r, rev
}

func put(t *testing.T, s profile.Store, uuid string, r *profile.Record, rev uint64) uint64 {
	t.Helper()
	next, err := s.Put(t.Context(), uuid, r, rev)
	if err != nil {
		t.Fatalf("Put(%q, rev %d): %v", uuid, rev, err)
	}
	if next == 0 {
		t.Fatalf("Put(%q, rev %d): new revision 0", uuid, rev)
	}
	return next
}

func assertRecord(t *testing.T, what string, got, want *profile.Record) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s\n(go: %#v)", what, g, w, got)
	}
}

func testGetMissing(t *testing.T, s profile.Store) {
	r, rev, err := s.Get(t.Context(), "nobody")
	if !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("Get of a missing customer = %v, %d, %v; want ErrNotFound", r, rev, err)
	}
}

func testCreateThenGet(t *testing.T, s profile.Store) {
	rev := put(t, s, "u1", minimal("u1"), 0)
	got, gotRev := get(t, s, "u1")
	if gotRev != rev {
		t.Errorf("Get revision = %d, want %d from Put", gotRev, rev)
	}
	assertRecord(t, "record", got, minimal("u1"))
	if _, _, err := s.Get(t.Context(), "u2"); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Get of another customer = %v, want ErrNotFound", err)
	}
}

func testCreateTwiceConflicts(t *testing.T, s profile.Store) {
	put(t, s, "u1", minimal("u1"), 0)
	second := record("u1")
	if _, err := s.Put(t.Context(), "u1", second, 0); !errors.Is(err, profile.ErrConflict) {
		t.Fatalf("second Put with revision 0 = %v, want ErrConflict", err)
	}
	got, _ := get(t, s, "u1")
	assertRecord(t, "record after the conflict", got, minimal("u1"))
}

func testUpdateWithRevision(t *testing.T, s profile.Store) {
	first := put(t, s, "u1", minimal("u1"), 0)
	r, rev := get(t, s, "u1")
	r.Profile.Email = "john.doe@example.com"
	r.MarkApplied("e1")
	next := put(t, s, "u1", r, rev)
	if next == rev || next == first {
		t.Errorf("revision after update = %d, want one different from %d", next, rev)
	}
	got, gotRev := get(t, s, "u1")
	if gotRev != next {
		t.Errorf("Get revision = %d, want %d", gotRev, next)
	}
	assertRecord(t, "updated record", got, r)
}

func testStaleRevisionConflicts(t *testing.T, s profile.Store) {
	rev1 := put(t, s, "u1", minimal("u1"), 0)
	newer := record("u1")
	rev2 := put(t, s, "u1", newer, rev1)
	for _, stale := range []uint64{rev1, rev2 + 1000} {
		if _, err := s.Put(t.Context(), "u1", minimal("u1"), stale); !errors.Is(err, profile.ErrConflict) {
			t.Errorf("Put with revision %d (latest %d) = %v, want ErrConflict", stale, rev2, err)
		}
	}
	if _, err := s.Put(t.Context(), "u2", minimal("u2"), rev2); !errors.Is(err, profile.ErrConflict) {
		t.Errorf("Put of a missing customer with revision %d = %v, want ErrConflict", rev2, err)
	}
	got, gotRev := get(t, s, "u1")
	if gotRev != rev2 {
		t.Errorf("revision after conflicts = %d, want %d", gotRev, rev2)
	}
	assertRecord(t, "record after conflicts", got, newer)
}

func testRoundTrip(t *testing.T, s profile.Store) {
	for _, uuid := range []string{"full", "minimal"} {
		want := record(uuid)
		if uuid == "minimal" {
			want = minimal(uuid)
		}
		put(t, s, uuid, want, 0)
		got, _ := get(t, s, uuid)
		assertRecord(t, uuid+" record", got, want)
		if p := got.Profile; p != nil && (p.Created.Location() != time.UTC || p.Updated.Location() != time.UTC) {
			t.Errorf("%s: times in %s and %s, want UTC", uuid, p.Created.Location(), p.Updated.Location())
		}
	}
}

func testReturnsCopies(t *testing.T, s profile.Store) {
	in := record("u1")
	rev := put(t, s, "u1", in, 0)
	// Changing what was put does not change the store.
	in.Profile.Email = "changed@example.com"
	in.Profile.Attributes["score"] = 0.0
	in.Profile.Tags[0] = "changed"
	in.Applied[0] = "changed"
	in.Outbox[0][2] = 'X'

	a, _ := get(t, s, "u1")
	assertRecord(t, "record after changing the one put", a, record("u1"))
	// Nor does changing what was got.
	a.Profile.Email = "changed@example.com"
	a.Profile.Attributes["score"] = 0.0
	a.Profile.Tags[0] = "changed"
	a.Applied[0] = "changed"
	a.Outbox[0][2] = 'X'
	b, brev := get(t, s, "u1")
	assertRecord(t, "record after changing one got", b, record("u1"))
	if brev != rev {
		t.Errorf("revision = %d, want %d", brev, rev)
	}
}

func testConcurrentReadModifyWrite(t *testing.T, s profile.Store) {
	const workers, increments = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < increments; {
				r, rev, err := s.Get(ctx, "counter")
				switch {
				case errors.Is(err, profile.ErrNotFound):
					r, rev = minimal("counter"), 0
				case err != nil:
					t.Errorf("worker %d: Get: %v", w, err)
					return
				}
				n, _ := r.Profile.Attributes["count"].(float64)
				if _, err := r.Profile.Apply(&profile.Change{Op: profile.OpSet, Name: "count", Value: n + 1}, created); err != nil {
					t.Errorf("worker %d: Apply: %v", w, err)
					return
				}
				_, err = s.Put(ctx, "counter", r, rev)
				if errors.Is(err, profile.ErrConflict) {
					continue // another worker came first: read again
				}
				if err != nil {
					t.Errorf("worker %d: Put: %v", w, err)
					return
				}
				i++
			}
		})
	}
	wg.Wait()
	got, _ := get(t, s, "counter")
	if n := got.Profile.Attributes["count"]; n != float64(workers*increments) {
		t.Errorf("count = %v, want %d", n, workers*increments)
	}
}

func testOddUUIDs(t *testing.T, s profile.Store) {
	uuids := []string{
		"a b/c",
		"ünïcödé ✓ 日本",
		strings.Repeat("x", 128),
		strings.Repeat("é", 128),
		strings.Repeat("/", 128),
		"6f1c2d1e-0000-4000-8000-000000000000",
		"with.dots..and*wild>cards",
		"b64.YSBiL2M", // looks like an encoded key
		"YSBiL2M",
		"=",
		"-",
		"tab\tnew\nline\x00nul",
	}
	for i, uuid := range uuids {
		r := minimal(uuid)
		r.MarkApplied(fmt.Sprint(i))
		put(t, s, uuid, r, 0)
	}
	for i, uuid := range uuids {
		got, rev := get(t, s, uuid)
		want := minimal(uuid)
		want.MarkApplied(fmt.Sprint(i))
		assertRecord(t, fmt.Sprintf("record of %q", uuid), got, want)
		got.Profile.Email = "x@example.com"
		put(t, s, uuid, got, rev)
	}
}
