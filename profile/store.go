package profile

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
)

// Sentinel errors of every Store.
var (
	// ErrNotFound means no record is stored for the customer.
	ErrNotFound = errors.New("profile not found")
	// ErrConflict means the record changed since it was read; read it
	// again and retry.
	ErrConflict = errors.New("profile changed since it was read")
	// ErrTooLarge means the record is larger than the store keeps; writing
	// it again fails the same way.
	ErrTooLarge = errors.New("profile record too large to store")
)

// MaxApplied is how many event ids a Record remembers.
const MaxApplied = 64

// Record is what a Store keeps for one customer: the profile, and the
// bookkeeping that makes applying events idempotent. Applying an event
// writes, in one compare-and-set, the changed profile, the event's id in
// Applied and the effects still to perform in Outbox; the effects are
// removed once performed. A redelivered event is then recognised, and
// effects interrupted by a crash are found and finished.
type Record struct {
	Profile *Profile `json:"profile"`
	// Applied lists the ids of the latest events applied, oldest first.
	Applied []string `json:"applied,omitempty"`
	// Outbox holds effects of applied events not yet performed, in the
	// runner's own encoding.
	Outbox []json.RawMessage `json:"outbox,omitempty"`
}

// HasApplied reports whether the event with id was applied.
func (r *Record) HasApplied(id string) bool { return slices.Contains(r.Applied, id) }

// MarkApplied records that the event id was applied, forgetting the oldest
// ids beyond MaxApplied.
func (r *Record) MarkApplied(id string) {
	r.Applied = append(r.Applied, id)
	if n := len(r.Applied) - MaxApplied; n > 0 {
		r.Applied = slices.Delete(r.Applied, 0, n)
	}
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := &Record{Profile: r.Profile.Clone(), Applied: slices.Clone(r.Applied), Outbox: make([]json.RawMessage, len(r.Outbox))}
	for i, e := range r.Outbox {
		c.Outbox[i] = slices.Clone(e)
	}
	if len(c.Outbox) == 0 {
		c.Outbox = nil
	}
	return c
}

// Store keeps customer records. Writes are compare-and-set on the revision
// Get returned, so concurrent writers never lose each other's changes.
type Store interface {
	// Get returns the customer's record and its revision, or ErrNotFound.
	Get(ctx context.Context, uuid string) (*Record, uint64, error)
	// Put stores r for the customer if the stored revision is still rev
	// (0: nothing stored yet) and returns the new revision, or
	// ErrConflict.
	Put(ctx context.Context, uuid string, r *Record, rev uint64) (uint64, error)
}

// Memory is a Store in memory, for replays and tests. It is safe for
// concurrent use. Revisions count up across all customers, as a JetStream
// key-value bucket's do.
type Memory struct {
	mu      sync.Mutex
	records map[string]memoryEntry
	rev     uint64
}

type memoryEntry struct {
	r   *Record
	rev uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{records: make(map[string]memoryEntry)} }

// Get implements Store. The record returned is a copy.
func (m *Memory) Get(_ context.Context, uuid string) (*Record, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.records[uuid]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return e.r.Clone(), e.rev, nil
}

// Put implements Store. It keeps a copy of r.
func (m *Memory) Put(_ context.Context, uuid string, r *Record, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records[uuid].rev != rev {
		return 0, ErrConflict
	}
	m.rev++
	m.records[uuid] = memoryEntry{r: r.Clone(), rev: m.rev}
	return m.rev, nil
}
