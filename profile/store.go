package profile

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
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
//
// A record with MergedInto set is a tombstone: the customer was anonymous
// and was merged into the known customer MergedInto, whose record their
// events apply to from then on (see Resolve). A tombstone has no profile
// once the merge is complete; while it is under way it still holds the
// merged profile, applied ids and outbox, frozen, until the known
// customer's record has taken them in.
type Record struct {
	Profile *Profile `json:"profile"`
	// Applied lists the ids of the latest events applied, oldest first.
	Applied []string `json:"applied,omitempty"`
	// Outbox holds effects of applied events not yet performed, in the
	// runner's own encoding.
	Outbox []json.RawMessage `json:"outbox,omitempty"`
	// MergedInto, on a tombstone, is the customer this one was merged
	// into; MergedBy is the id of the event that merged them.
	MergedInto string `json:"merged_into,omitempty"`
	MergedBy   string `json:"merged_by,omitempty"`
	// Merges lists the customers merged into this one, oldest first.
	Merges []Merge `json:"merges,omitempty"`
	// Lease, when set, names the engine that performs the effects in
	// Outbox, and until when no other engine may.
	Lease *Lease `json:"lease,omitempty"`
	// Fired holds, by rule, when the rules with a limit (limit:, once:)
	// fired for the customer, oldest first: as many of the latest times
	// as the limit counts.
	Fired map[string][]time.Time `json:"fired,omitempty"`
}

// Lease is an engine's hold on a customer's outbox: while it lasts, only
// that engine performs the effects listed, so that two engines never both
// send one email.
type Lease struct {
	Engine string    `json:"engine"`
	Until  time.Time `json:"until"`
}

// HeldByOther reports whether the lease is held, at now, by an engine
// other than engine.
func (l *Lease) HeldByOther(engine string, now time.Time) bool {
	return l != nil && l.Engine != engine && now.Before(l.Until)
}

// IsAlias reports whether the record is a tombstone, an alias of the
// customer MergedInto.
func (r *Record) IsAlias() bool { return r.MergedInto != "" }

// MergePending reports whether the record is a tombstone whose merge is
// not complete: it still holds the merged profile.
func (r *Record) MergePending() bool { return r.MergedInto != "" && r.Profile != nil }

// HasMerged reports whether the customer from was merged into this one by
// the event with id event.
func (r *Record) HasMerged(from, event string) bool {
	return slices.ContainsFunc(r.Merges, func(m Merge) bool { return m.From == from && m.Event == event })
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
	c.MergedInto, c.MergedBy = r.MergedInto, r.MergedBy
	if r.Lease != nil {
		lease := *r.Lease
		c.Lease = &lease
	}
	if r.Fired != nil {
		c.Fired = make(map[string][]time.Time, len(r.Fired))
		for k, v := range r.Fired {
			c.Fired[k] = slices.Clone(v)
		}
	}
	if r.Merges != nil {
		c.Merges = make([]Merge, len(r.Merges))
		for i, m := range r.Merges {
			c.Merges[i] = m.clone()
		}
	}
	return c
}

// Store keeps customer records and the email index. Writes are
// compare-and-set on the revision Get returned, so concurrent writers never
// lose each other's changes.
//
// Aliases: a customer merged into another keeps a tombstone record
// (Record.MergedInto). Get returns records as stored, tombstones included,
// so that they too can be written with compare-and-set; Resolve follows
// tombstones to the record a customer's events apply to.
type Store interface {
	// Get returns the customer's record and its revision, or ErrNotFound.
	Get(ctx context.Context, uuid string) (*Record, uint64, error)
	// Put stores r for the customer if the stored revision is still rev
	// (0: nothing stored yet) and returns the new revision, or
	// ErrConflict.
	Put(ctx context.Context, uuid string, r *Record, rev uint64) (uint64, error)
	EmailIndex
}

// EmailIndex maps email addresses to the customers who own them, so that
// finding a customer by email is one lookup, never a scan. Addresses are
// normalised first (NormalizeEmail), and stores keep a hash of them
// (EmailHash), not the address. Each address has at most one owner, and
// claims are create-if-absent, so of customers claiming one address at
// the same time exactly one wins. An owner may be a tombstone: callers
// resolve it (Resolve).
//
// The index is separate from the records: a claim and the profile write
// that puts the address on the profile are two writes, and the applier
// orders them (see package runner).
type EmailIndex interface {
	// Owner returns the customer who owns email, or ErrNotFound.
	Owner(ctx context.Context, email string) (uuid string, err error)
	// ClaimEmail makes uuid the owner of email if it has none, and returns
	// the owner: uuid when the claim succeeded or uuid owned it already,
	// the other customer when someone else owns it (that claim is kept).
	ClaimEmail(ctx context.Context, email, uuid string) (owner string, err error)
	// ReleaseEmail removes email from the index if uuid owns it, as a
	// compare-and-set: an address someone else owns, or that nobody does,
	// is left as it is.
	ReleaseEmail(ctx context.Context, email, uuid string) error
}

// Memory is a Store in memory, for replays and tests. It is safe for
// concurrent use. Revisions count up across all customers, as a JetStream
// key-value bucket's do.
type Memory struct {
	mu      sync.Mutex
	records map[string]memoryEntry
	emails  map[string]string // EmailHash -> owner
	rev     uint64
}

type memoryEntry struct {
	r   *Record
	rev uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{records: make(map[string]memoryEntry), emails: make(map[string]string)}
}

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

// Owner implements EmailIndex.
func (m *Memory) Owner(_ context.Context, email string) (string, error) {
	h, err := emailHash("owner", email)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	owner, ok := m.emails[h]
	if !ok {
		return "", ErrNotFound
	}
	return owner, nil
}

// ClaimEmail implements EmailIndex.
func (m *Memory) ClaimEmail(_ context.Context, email, uuid string) (string, error) {
	h, err := emailHash("claim", email)
	if err != nil {
		return "", err
	}
	if uuid == "" {
		return "", errors.New("claim email: empty customer uuid")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if owner, ok := m.emails[h]; ok {
		return owner, nil
	}
	m.emails[h] = uuid
	return uuid, nil
}

// ReleaseEmail implements EmailIndex.
func (m *Memory) ReleaseEmail(_ context.Context, email, uuid string) error {
	h, err := emailHash("release", email)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.emails[h] == uuid {
		delete(m.emails, h)
	}
	return nil
}
