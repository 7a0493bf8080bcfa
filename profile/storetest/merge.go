package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/herald-events/herald/profile"
)

// tombstone returns the record of a customer merged into into.
func tombstone(into, event string) *profile.Record {
	return &profile.Record{MergedInto: into, MergedBy: event}
}

func testMergeRecordsRoundTrip(t *testing.T, s profile.Store) {
	known := record("known")
	known.Merges = []profile.Merge{
		{From: "anon-1", Event: "e1", At: created},
		{
			From: "anon-2", Event: "e2", At: updated,
			Unmerged: map[string]any{"firstname": "Jon", "score": 1.5, "vip": false},
			Replaced: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": "2026-11-01T08:00:00Z"},
		},
	}
	pending := minimal("pending") // a merge under way: the profile is still there
	pending.MergedInto, pending.MergedBy = "known", "e3"
	for uuid, want := range map[string]*profile.Record{
		"known":   known,
		"anon-1":  tombstone("known", "e1"),
		"pending": pending,
	} {
		put(t, s, uuid, want, 0)
		got, _ := get(t, s, uuid)
		assertRecord(t, uuid+" record", got, want)
	}
	got, _ := get(t, s, "anon-1")
	if !got.IsAlias() || got.MergePending() || got.Profile != nil {
		t.Errorf("tombstone: alias %v, pending %v, profile %v; want an alias without a profile", got.IsAlias(), got.MergePending(), got.Profile)
	}
	if got, _ := get(t, s, "pending"); !got.MergePending() {
		t.Error("a tombstone with its profile is not a pending merge")
	}
	if got, _ := get(t, s, "known"); !got.HasMerged("anon-2", "e2") || got.HasMerged("anon-2", "e1") {
		t.Errorf("HasMerged on %+v", got.Merges)
	}
}

func testResolve(t *testing.T, s profile.Store) {
	ctx := t.Context()
	rev := put(t, s, "known", record("known"), 0)
	put(t, s, "anon-1", tombstone("known", "e1"), 0)
	put(t, s, "anon-0", tombstone("anon-1", "e0"), 0)

	for _, tt := range []struct {
		uuid string
		via  []string
	}{
		{"known", nil},
		{"anon-1", []string{"anon-1"}},
		{"anon-0", []string{"anon-0", "anon-1"}},
	} {
		res, err := profile.Resolve(ctx, s, tt.uuid)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", tt.uuid, err)
		}
		if res.UUID != "known" || res.Rev != rev {
			t.Errorf("Resolve(%q) = %q at revision %d, want known at %d", tt.uuid, res.UUID, res.Rev, rev)
		}
		assertRecord(t, "resolved record of "+tt.uuid, res.Record, record("known"))
		var via []string
		for _, a := range res.Via {
			via = append(via, a.UUID)
			if !a.Record.IsAlias() || a.Rev == 0 {
				t.Errorf("Resolve(%q): alias %q: record %+v at revision %d", tt.uuid, a.UUID, a.Record, a.Rev)
			}
		}
		if fmt.Sprint(via) != fmt.Sprint(tt.via) {
			t.Errorf("Resolve(%q) went via %v, want %v", tt.uuid, via, tt.via)
		}
	}

	res, err := profile.Resolve(ctx, s, "nobody")
	if !errors.Is(err, profile.ErrNotFound) || res == nil || res.UUID != "nobody" || len(res.Via) != 0 {
		t.Errorf("Resolve of a missing customer = %+v, %v; want nobody and ErrNotFound", res, err)
	}
	// A tombstone whose customer has no record (yet): the customer at the
	// end is named.
	put(t, s, "anon-2", tombstone("gone", "e2"), 0)
	res, err = profile.Resolve(ctx, s, "anon-2")
	if !errors.Is(err, profile.ErrNotFound) || res == nil || res.UUID != "gone" || len(res.Via) != 1 {
		t.Errorf("Resolve through a tombstone to a missing record = %+v, %v; want gone via anon-2 and ErrNotFound", res, err)
	}
}

func testResolveLoops(t *testing.T, s profile.Store) {
	ctx := t.Context()
	put(t, s, "self", tombstone("self", "e"), 0)
	put(t, s, "a", tombstone("b", "e"), 0)
	put(t, s, "b", tombstone("c", "e"), 0)
	put(t, s, "c", tombstone("a", "e"), 0)
	for _, uuid := range []string{"self", "a", "c"} {
		res, err := profile.Resolve(ctx, s, uuid)
		if !errors.Is(err, profile.ErrAliasLoop) {
			t.Errorf("Resolve(%q) = %+v, %v; want ErrAliasLoop", uuid, res, err)
			continue
		}
		if res == nil || res.UUID != uuid {
			t.Errorf("Resolve(%q): the loop is said to return to %+v", uuid, res)
		}
	}
	// MaxAliasHops tombstones are followed, one more is too many.
	put(t, s, "end", minimal("end"), 0)
	next := "end"
	for i := range profile.MaxAliasHops + 1 {
		uuid := fmt.Sprintf("hop-%d", i)
		put(t, s, uuid, tombstone(next, "e"), 0)
		next = uuid
	}
	if res, err := profile.Resolve(ctx, s, "hop-3"); err != nil || res.UUID != "end" || len(res.Via) != profile.MaxAliasHops {
		t.Errorf("Resolve through %d aliases = %+v, %v; want end", profile.MaxAliasHops, res, err)
	}
	if res, err := profile.Resolve(ctx, s, "hop-4"); !errors.Is(err, profile.ErrAliasLoop) {
		t.Errorf("Resolve through %d aliases = %+v, %v; want ErrAliasLoop", profile.MaxAliasHops+1, res, err)
	}
}

func owner(t *testing.T, s profile.Store, email string) string {
	t.Helper()
	o, err := s.Owner(t.Context(), email)
	if errors.Is(err, profile.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("Owner(%q): %v", email, err)
	}
	return o
}

func claim(t *testing.T, s profile.Store, email, uuid string) string {
	t.Helper()
	o, err := s.ClaimEmail(t.Context(), email, uuid)
	if err != nil {
		t.Fatalf("ClaimEmail(%q, %q): %v", email, uuid, err)
	}
	return o
}

func release(t *testing.T, s profile.Store, email, uuid string) {
	t.Helper()
	if err := s.ReleaseEmail(t.Context(), email, uuid); err != nil {
		t.Fatalf("ReleaseEmail(%q, %q): %v", email, uuid, err)
	}
}

func testOwnerMissing(t *testing.T, s profile.Store) {
	if o, err := s.Owner(t.Context(), "nobody@example.com"); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("Owner of an unclaimed address = %q, %v; want ErrNotFound", o, err)
	}
}

func testClaimEmail(t *testing.T, s profile.Store) {
	const email = "anna@example.com"
	if o := claim(t, s, email, "anna"); o != "anna" {
		t.Fatalf("first claim: owner %q, want anna", o)
	}
	if o := owner(t, s, email); o != "anna" {
		t.Errorf("Owner = %q, want anna", o)
	}
	if o := claim(t, s, email, "anna"); o != "anna" {
		t.Errorf("claiming again: owner %q, want anna", o)
	}
	if o := claim(t, s, email, "bob"); o != "anna" {
		t.Errorf("another customer's claim: owner %q, want anna kept", o)
	}
	if o := owner(t, s, email); o != "anna" {
		t.Errorf("Owner after another's claim = %q, want anna", o)
	}
	if o := claim(t, s, "bob@example.com", "bob"); o != "bob" || owner(t, s, email) != "anna" {
		t.Errorf("claim of another address: owner %q, and anna's is %q", o, owner(t, s, email))
	}
	// Any uuid may own an address.
	odd := "a b/c ünï"
	if o := claim(t, s, "odd@example.com", odd); o != odd || owner(t, s, "odd@example.com") != odd {
		t.Errorf("claim by %q: owner %q", odd, o)
	}
}

func testClaimNormalizes(t *testing.T, s profile.Store) {
	claim(t, s, "  John.Doe@Example.COM\n", "john")
	for _, e := range []string{"john.doe@example.com", "JOHN.DOE@EXAMPLE.COM", " john.doe@example.com "} {
		if o := owner(t, s, e); o != "john" {
			t.Errorf("Owner(%q) = %q, want john", e, o)
		}
		if o := claim(t, s, e, "other"); o != "john" {
			t.Errorf("ClaimEmail(%q) by another = %q, want john", e, o)
		}
	}
	release(t, s, "JOHN.doe@example.com", "john")
	if o := owner(t, s, "john.doe@example.com"); o != "" {
		t.Errorf("Owner after release = %q, want none", o)
	}
}

func testReleaseEmail(t *testing.T, s profile.Store) {
	const email = "anna@example.com"
	release(t, s, email, "anna") // nothing to release
	claim(t, s, email, "anna")
	release(t, s, email, "bob") // not bob's
	if o := owner(t, s, email); o != "anna" {
		t.Fatalf("Owner after another customer's release = %q, want anna", o)
	}
	release(t, s, email, "anna")
	if o := owner(t, s, email); o != "" {
		t.Fatalf("Owner after release = %q, want none", o)
	}
	release(t, s, email, "anna") // again: nothing left
	if o := claim(t, s, email, "bob"); o != "bob" {
		t.Fatalf("claim after release: owner %q, want bob", o)
	}
	if o := owner(t, s, email); o != "bob" {
		t.Errorf("Owner = %q, want bob", o)
	}
}

func testEmptyEmail(t *testing.T, s profile.Store) {
	ctx := t.Context()
	for _, e := range []string{"", "  \t"} {
		if _, err := s.Owner(ctx, e); err == nil || errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Owner(%q) = %v, want an error other than ErrNotFound", e, err)
		}
		if _, err := s.ClaimEmail(ctx, e, "u"); err == nil {
			t.Errorf("ClaimEmail(%q) succeeded", e)
		}
		if err := s.ReleaseEmail(ctx, e, "u"); err == nil {
			t.Errorf("ReleaseEmail(%q) succeeded", e)
		}
	}
	if _, err := s.ClaimEmail(ctx, "a@example.com", ""); err == nil {
		t.Error("ClaimEmail for the empty uuid succeeded")
	}
}

// The index and the records are apart: a claim stores no record, and a
// customer whose uuid looks like an address or its hash has a record of
// their own.
func testIndexIsNotRecords(t *testing.T, s profile.Store) {
	ctx := t.Context()
	const email = "anna@example.com"
	claim(t, s, email, "anna")
	for _, uuid := range []string{"anna", email, profile.EmailHash(email), profile.EmailKeyPrefix + profile.EmailHash(email)} {
		if _, _, err := s.Get(ctx, uuid); !errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Get(%q) after a claim = %v, want ErrNotFound", uuid, err)
		}
		put(t, s, uuid, minimal(uuid), 0)
	}
	if o := owner(t, s, email); o != "anna" {
		t.Errorf("Owner after storing records = %q, want anna", o)
	}
}

func testConcurrentClaims(t *testing.T, s profile.Store) {
	const workers = 16
	ctx := t.Context()
	owners := make([]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			o, err := s.ClaimEmail(ctx, "Race@Example.com", fmt.Sprintf("u%d", w))
			if err != nil {
				t.Errorf("worker %d: ClaimEmail: %v", w, err)
			}
			owners[w] = o
		})
	}
	wg.Wait()
	winner := owner(t, s, "race@example.com")
	if !strings.HasPrefix(winner, "u") {
		t.Fatalf("owner after the race = %q", winner)
	}
	for w, o := range owners {
		if o != winner {
			t.Errorf("worker %d was told the owner is %q, want %q", w, o, winner)
		}
	}
}

// Claims and releases racing: a customer's claim stays theirs until they
// release it, whatever the others do.
func testConcurrentClaimRelease(t *testing.T, s profile.Store) {
	const workers, rounds = 6, 15
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		me := fmt.Sprintf("u%d", w)
		wg.Go(func() {
			for range rounds {
				o, err := s.ClaimEmail(ctx, "shared@example.com", me)
				if err != nil {
					t.Errorf("%s: ClaimEmail: %v", me, err)
					return
				}
				if o != me {
					continue
				}
				if o, err := s.Owner(ctx, "shared@example.com"); err != nil || o != me {
					t.Errorf("%s: won the claim, then Owner = %q, %v", me, o, err)
					return
				}
				if err := s.ReleaseEmail(ctx, "shared@example.com", me); err != nil {
					t.Errorf("%s: ReleaseEmail: %v", me, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if o := owner(t, s, "shared@example.com"); o != "" {
		t.Errorf("owner after every claim was released: %q", o)
	}
}
