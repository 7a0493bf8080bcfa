// Package apptest runs a real Herald for tests: the app herald serve runs,
// with an embedded NATS server on a free port, its own data directory, and
// HTTP on a free port.
package apptest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is serve's default configuration made fit for a test: its own
// data directory, free ports, emails into an outbox folder in the test's
// temporary directory, and the rules of rulesDir.
func Config(t testing.TB, rulesDir string) *config.Config {
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
	cfg.HTTP.BaseURL = "" // links point at the address HTTP listens on
	return cfg
}

// Start starts Herald with cfg and runs it until the test ends, when it is
// shut down. With go test -v it logs to the test's log.
func Start(t testing.TB, cfg *config.Config) *app.App {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := app.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := a.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Client is a NATS client of a running Herald, as an app or a tool would
// be: its connection, JetStream, and the profile store.
type Client struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Profiles *profile.KV
}

// Connect connects to a's NATS server until the test ends.
func Connect(t testing.TB, a *app.App) *Client {
	t.Helper()
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
	return &Client{Conn: nc, JS: js, Profiles: profile.NewKV(kv)}
}
