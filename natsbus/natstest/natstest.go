// Package natstest starts an embedded nats-server with JetStream for tests:
// a real server, in-process, on a free port, with its store in the test's
// temporary directory.
package natstest

import (
	"testing"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start starts an embedded server (fsync on every write, as serve runs it)
// and connects to its JetStream. Both are closed when the test ends.
func Start(t testing.TB) (*natsbus.Embedded, jetstream.JetStream) {
	t.Helper()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: -1, StoreDir: t.TempDir(), SyncAlways: true})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return srv, js
}
