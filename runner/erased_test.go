package runner

import (
	"errors"
	"testing"

	"github.com/herald-events/herald/profile"
)

// An erased customer's record stays a tombstone whatever of theirs
// arrives; an address the index still gives them (an erasure stopped half
// way) goes to the next customer giving it, who is not merged into them;
// and an anonymous customer whose merge into them was under way is
// erased too.
func TestErasedCustomer(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			f := newMergeFixture(t, s.new(t))
			ctx := t.Context()
			f.handle(t, form("e1", "kate", "kate@example.com"))
			f.handle(t, visit("e2", "kate", "/home"))
			rec, rev, err := f.store.Get(ctx, "kate")
			if err != nil || rec.Profile.Email != "kate@example.com" {
				t.Fatalf("before the erasure: %+v, %v", rec, err)
			}
			// An anonymous visitor half merged into kate: the tombstone
			// still holds their profile.
			f.handle(t, visit("e3", "kate-phone", "/shop"))
			anon, arev, err := f.store.Get(ctx, "kate-phone")
			if err != nil {
				t.Fatal(err)
			}
			anon.MergedInto, anon.MergedBy = "kate", "e4"
			if _, err := f.store.Put(ctx, "kate-phone", anon, arev); err != nil {
				t.Fatal(err)
			}
			// The erasure, stopped before it removed kate's index entry.
			erased := &profile.Record{Erased: &profile.Erasure{At: t0, EmailHashes: []string{profile.NewHasher(nil).Hash("kate@example.com")}}}
			if _, err := f.store.Put(ctx, "kate", erased, rev); err != nil {
				t.Fatal(err)
			}

			f.handle(t, visit("e5", "kate", "/again"))
			f.handle(t, form("e6", "kate", "kate@example.com", "firstname", "Kate"))
			if rec := f.get(t, "kate"); !rec.IsErased() || rec.Profile != nil || len(rec.Applied) > 0 {
				t.Errorf("events of an erased customer recreated their record: %+v", rec)
			}
			// The visitor's next event finishes the merge: into nothing.
			f.handle(t, visit("e7", "kate-phone", "/cart"))
			if rec := f.get(t, "kate-phone"); !rec.IsErased() || rec.Profile != nil {
				t.Errorf("the visitor merged into an erased customer kept their record: %+v", rec)
			}

			// A new customer giving the address starts afresh.
			f.handle(t, form("e8", "kate-new", "kate@example.com"))
			rec = f.get(t, "kate-new")
			if rec.IsAlias() || rec.Profile == nil || rec.Profile.Email != "kate@example.com" || len(rec.Merges) > 0 {
				t.Errorf("kate-new: %+v", rec)
			}
			if rec.Profile.Attributes["lastPage"] != nil {
				t.Errorf("kate-new has the erased customer's attributes: %v", rec.Profile.Attributes)
			}
			if o := f.owner(t, "kate@example.com"); o != "kate-new" {
				t.Errorf("owner of the address: %q, want kate-new", o)
			}
			if _, _, err := f.store.Get(ctx, "kate"); errors.Is(err, profile.ErrNotFound) {
				t.Error("the erased record is gone; its tombstone should stay")
			}
		})
	}
}
