package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/actionstest"
	"github.com/herald-events/herald/actions/webhook"
)

// TestSuite runs the shared effector suite against a Sender and an
// in-process receiver that verifies every signature, records the
// Idempotency-Key of each call it accepts, answers 400 to the keys meant
// to fail for good and 503 to those meant to fail transiently.
func TestSuite(t *testing.T) {
	var (
		mu       sync.Mutex
		received []string
		answer   = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(testSecret, r.Header.Get(webhook.SignatureHeader), body, callTime, 0); err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		key := r.Header.Get(webhook.IdempotencyKeyHeader)
		mu.Lock()
		defer mu.Unlock()
		if code, ok := answer[key]; ok {
			http.Error(w, "no", code)
			return
		}
		received = append(received, key)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)

	s := newSender(t, localConfig())
	newEffect := func(_ *testing.T, key string) *actions.Effect {
		body, _ := json.Marshal(map[string]string{"key": key})
		return effect(key, srv.URL+"/hooks/herald", string(body))
	}
	answering := func(code int) func(*testing.T, string) *actions.Effect {
		return func(t *testing.T, key string) *actions.Effect {
			mu.Lock()
			answer[key] = code
			mu.Unlock()
			return newEffect(t, key)
		}
	}
	actionstest.Run(t, actionstest.Harness{
		Effector: s,
		Effect:   newEffect,
		Received: func(*testing.T) []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(received)
		},
		Dedupes:   false,
		Permanent: answering(http.StatusBadRequest),
		Retryable: answering(http.StatusServiceUnavailable),
	})
}
