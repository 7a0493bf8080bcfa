package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// A replicated stream on the in-process cluster keeps taking messages
// while one server is down, and the server comes back on its own ports
// and store, catching up with what it missed.
func TestClusterSurvivesAServerKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("%d client URLs, want 3", got)
	}
	_, js := c.Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := retry(ctx, func() error {
				// A publish lost with the server waits for no answer: each
				// try waits a little.
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(pctx, "t.x", fmt.Appendf(nil, "%d", i), jetstream.WithMsgID(fmt.Sprint(i)))
				return err
			}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	publish(0, 10)

	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader *natstest.ClusterServer
	for _, srv := range c.Servers() {
		if srv.Name() == info.Cluster.Leader {
			leader = srv
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
	}
	url := leader.ClientURL()
	leader.Kill()
	if leader.Running() {
		t.Fatal("killed server still running")
	}
	publish(10, 20) // a new leader is elected among the other two

	leader.Restart()
	if got := leader.ClientURL(); got != url {
		t.Errorf("restarted on %s, want %s", got, url)
	}
	publish(20, 30)
	if err := retry(ctx, func() error {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := s.Info(ictx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 30 {
			return fmt.Errorf("%d messages, want 30", info.State.Msgs)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// retry calls f until it succeeds or ctx ends: while leaders are elected,
// requests fail for a moment.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
