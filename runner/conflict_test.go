package runner

import (
	"context"
	"sync"
	"testing"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/emit"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// conflictOnce is a store whose first Put of a customer's record fails
// with a compare-and-set conflict after a concurrent writer changed the
// record, as another engine would.
type conflictOnce struct {
	profile.Store
	mu   sync.Mutex
	done bool
}

func (s *conflictOnce) Put(ctx context.Context, uuid string, r *profile.Record, rev uint64) (uint64, error) {
	s.mu.Lock()
	first := !s.done
	s.done = true
	s.mu.Unlock()
	if first {
		// Someone else writes the record first: a tag of their own.
		other := &profile.Record{Profile: profile.New(uuid, t0)}
		other.Profile.Tags = []string{"other-writer"}
		if _, err := s.Store.Put(ctx, uuid, other, rev); err != nil {
			return 0, err
		}
		return 0, profile.ErrConflict
	}
	return s.Store.Put(ctx, uuid, r, rev)
}

// A conflict is not success: the event is evaluated again against what
// the other writer stored, and applied exactly once on top of it.
func TestHandleAppliesOnceAfterAConflict(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte(`
rules:
  - name: count
    on: order.placed
    do:
      - set: {orders: "${ (profile.attributes.orders ?? 0) + 1 }"}
      - emit: order.counted
`))
	if err != nil {
		t.Fatal(err)
	}
	store := &conflictOnce{Store: profile.NewMemory()}
	pub := &recordingEmitter{}
	r, err := New(Config{Engine: engine.New(set), Store: store, Linker: linker,
		Effectors: actions.Registry{"emit": &emit.Effector{Publisher: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: "01KB0000000000000000000001", Action: "order.placed", Time: t0, UUID: "c-1"}
	if err := r.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	rec, _, err := store.Get(context.Background(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Profile.Attributes["orders"] != 1.0 || !rec.Profile.HasTag("other-writer") || !rec.HasApplied(ev.ID) {
		t.Fatalf("record after a conflict: %+v, applied %v", rec.Profile, rec.Applied)
	}
	if len(pub.events) != 1 {
		t.Fatalf("%d events emitted, want 1", len(pub.events))
	}
	// Delivered again, it changes nothing more.
	if err := r.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	rec, _, _ = store.Get(context.Background(), "c-1")
	if rec.Profile.Attributes["orders"] != 1.0 || len(pub.events) != 1 {
		t.Fatalf("a redelivery applied the event again: %+v, %d emits", rec.Profile, len(pub.events))
	}
}
