package profile

import (
	"context"
	"errors"
	"sync"
)

// Sentinel errors of every Store.
var (
	// ErrNotFound means no profile is stored for the customer.
	ErrNotFound = errors.New("profile not found")
	// ErrConflict means the profile changed since it was read; read it
	// again and retry.
	ErrConflict = errors.New("profile changed since it was read")
)

// Store keeps profiles. Updates are compare-and-set on the revision Get
// returned, so concurrent writers never lose each other's changes.
type Store interface {
	// Get returns the customer's profile and its revision, or ErrNotFound.
	Get(ctx context.Context, uuid string) (*Profile, uint64, error)
	// Put stores p if the stored revision is still rev (0: no profile
	// stored yet) and returns the new revision, or ErrConflict.
	Put(ctx context.Context, p *Profile, rev uint64) (uint64, error)
}

// Memory is a Store in memory, for replays and tests. It is safe for
// concurrent use.
type Memory struct {
	mu       sync.Mutex
	profiles map[string]memoryEntry
}

type memoryEntry struct {
	p   *Profile
	rev uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{profiles: make(map[string]memoryEntry)} }

// Get implements Store. The profile returned is a copy.
func (m *Memory) Get(_ context.Context, uuid string) (*Profile, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.profiles[uuid]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return e.p.Clone(), e.rev, nil
}

// Put implements Store. It keeps a copy of p.
func (m *Memory) Put(_ context.Context, p *Profile, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.profiles[p.UUID].rev != rev {
		return 0, ErrConflict
	}
	rev++
	m.profiles[p.UUID] = memoryEntry{p: p.Clone(), rev: rev}
	return rev, nil
}

// All returns a copy of every stored profile, in no particular order.
func (m *Memory) All() []*Profile {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Profile, 0, len(m.profiles))
	for _, e := range m.profiles {
		out = append(out, e.p.Clone())
	}
	return out
}
