package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// herald is a running Herald (the app herald serve runs) for the tests of
// the verbs that talk to one: its own data directory, free ports, emails
// into an outbox folder.
type herald struct {
	t       *testing.T
	natsURL string
	kv      *profile.KV
}

func startHerald(t *testing.T, rulesDir string) *herald {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Email.Outbox = t.TempDir()
	cfg.Rules = []string{rulesDir}
	cfg.NATS.Listen = "127.0.0.1:-1"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.BaseURL = ""
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := a.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
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
	return &herald{t: t, natsURL: a.NATSURL(), kv: profile.NewKV(kv)}
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
