package main

import (
	"context"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/profile"
)

// herald is a running Herald (the app herald serve runs) for the tests of
// the verbs that talk to one.
type herald struct {
	natsURL string
	kv      *profile.KV
}

func startHerald(t *testing.T, rulesDir string) *herald {
	t.Helper()
	a := apptest.Start(t, apptest.Config(t, rulesDir))
	return &herald{natsURL: a.NATSURL(), kv: apptest.Connect(t, a).Profiles}
}

func (h *herald) attribute(uuid, name string) any {
	rec, _, err := h.kv.Get(context.Background(), uuid)
	if err != nil || rec.Profile == nil {
		return nil
	}
	return rec.Profile.Attributes[name]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
