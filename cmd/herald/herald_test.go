package main

import (
	"context"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	nc, err := nats.Connect(a.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), natsbus.ProfileBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &herald{natsURL: a.NATSURL(), kv: profile.NewKV(kv)}
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
