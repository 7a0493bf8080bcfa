package actionstest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/actionstest"
)

// note is the wire form of the in-memory effector's kind.
type note struct {
	Text string `json:"text"`
}

// memory is an in-memory receiver and the effector in front of it, the
// smallest thing that passes the suite.
type memory struct {
	dedupes bool

	mu       sync.Mutex
	received []string
	reject   map[string]int // key -> 0 for good, 1 transiently
}

var errRejected = errors.New("rejected")

func (m *memory) Perform(ctx context.Context, e *actions.Effect) (bool, error) {
	var n note
	if err := json.Unmarshal(e.Data, &n); err != nil {
		return false, fmt.Errorf("decode note %s: %w", e.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("deliver note %s: %w", e.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if how, ok := m.reject[e.Key]; ok {
		return how == 1, fmt.Errorf("deliver note %s: %w", e.Key, errRejected)
	}
	if m.dedupes && slices.Contains(m.received, e.Key) {
		return false, nil
	}
	m.received = append(m.received, e.Key)
	return false, nil
}

func (m *memory) harness() actionstest.Harness {
	effect := func(_ *testing.T, key string) *actions.Effect {
		data, _ := json.Marshal(note{Text: "hello " + key})
		return &actions.Effect{Key: key, Kind: "note", Event: "ev-" + key, Data: data}
	}
	rejecting := func(how int) func(*testing.T, string) *actions.Effect {
		return func(t *testing.T, key string) *actions.Effect {
			m.mu.Lock()
			m.reject[key] = how
			m.mu.Unlock()
			return effect(t, key)
		}
	}
	return actionstest.Harness{
		Effector: m,
		Effect:   effect,
		Received: func(*testing.T) []string {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.Clone(m.received)
		},
		Dedupes:   m.dedupes,
		Permanent: rejecting(0),
		Retryable: rejecting(1),
	}
}

func TestMemoryEffectorPassesTheSuite(t *testing.T) {
	for _, dedupes := range []bool{false, true} {
		t.Run(fmt.Sprintf("dedupes=%t", dedupes), func(t *testing.T) {
			m := &memory{dedupes: dedupes, reject: map[string]int{}}
			actionstest.Run(t, m.harness())
		})
	}
}

// TestSkipsUnsupportedChecksVisibly runs the suite without Permanent and
// Retryable: those checks are skipped with a reason, not passed silently.
func TestSkipsUnsupportedChecksVisibly(t *testing.T) {
	m := &memory{reject: map[string]int{}}
	h := m.harness()
	h.Permanent, h.Retryable = nil, nil
	actionstest.Run(t, h)
}
