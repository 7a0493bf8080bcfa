package natsbus_test

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/internal/syncbuf"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
)

// startServer starts an embedded server on a free port with its store in a
// temporary directory, and connects to its JetStream.
func startServer(t *testing.T) (*natsbus.Embedded, jetstream.JetStream) {
	t.Helper()
	return natstest.Start(t)
}

// setup runs natsbus.Setup on a fresh server.
func setup(t *testing.T) (jetstream.JetStream, *natsbus.Resources) {
	t.Helper()
	_, js := startServer(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return js, res
}

func TestEmbeddedStartsWithJetStreamAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: -1, StoreDir: dir, SyncAlways: true})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	url := srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") || strings.HasSuffix(url, ":4222") {
		t.Fatalf("ClientURL() = %q, want nats://127.0.0.1:<free port>", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}

	srv.Shutdown()
	srv.Shutdown() // a second call is harmless
	if nc2, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		nc2.Close()
		t.Fatalf("connect after Shutdown succeeded")
	}
}

func TestEmbeddedKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := natsbus.EmbeddedConfig{Port: -1, StoreDir: dir, SyncAlways: true}
	for run := range 2 {
		srv, err := natsbus.StartEmbedded(cfg)
		if err != nil {
			t.Fatalf("run %d: StartEmbedded: %v", run, err)
		}
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatalf("run %d: connect: %v", run, err)
		}
		js, _ := jetstream.New(nc)
		res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
		if err != nil {
			t.Fatalf("run %d: Setup: %v", run, err)
		}
		if run == 0 {
			if _, err := js.Publish(t.Context(), "herald.events.web", []byte(`{}`)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		info, err := res.Events.Info(t.Context())
		if err != nil {
			t.Fatalf("run %d: stream info: %v", run, err)
		}
		if info.State.Msgs != 1 {
			t.Errorf("run %d: %d messages, want 1", run, info.State.Msgs)
		}
		nc.Close()
		srv.Shutdown()
	}
}

func TestEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	logs := &syncbuf.Buffer{}

	start := time.Now()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{
		Port:     port,
		StoreDir: t.TempDir(),
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err == nil {
		srv.Shutdown()
		t.Fatalf("StartEmbedded on a taken port succeeded")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if msg := err.Error(); !strings.Contains(msg, addr) || !strings.Contains(msg, "already in use") {
		t.Errorf("error = %q, want it to name %s and say the port is in use", msg, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StartEmbedded took %s to fail; want an immediate error", d)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the server's error was not logged:\n%s", logs)
	}
}

func TestEmbeddedConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsbus.EmbeddedConfig
		want string
	}{
		{"no store dir", natsbus.EmbeddedConfig{Port: -1}, "store directory is required"},
		{"port out of range", natsbus.EmbeddedConfig{Port: 70000, StoreDir: t.TempDir()}, "port 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := natsbus.StartEmbedded(tt.cfg)
			if err == nil {
				srv.Shutdown()
				t.Fatal("StartEmbedded succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedLogsWarningsOnly(t *testing.T) {
	logs := &syncbuf.Buffer{}
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{
		Port:     -1,
		StoreDir: t.TempDir(),
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	srv.Shutdown()
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("notices reached the log at info level:\n%s", logs)
	}
}
