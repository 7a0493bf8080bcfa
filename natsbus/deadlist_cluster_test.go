package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
)

// herald dead list reads the dead letters of a three-server cluster
// whole, in order, while the server leading the dead-letter stream is
// down, and leaves no consumer behind.
func TestDeadLettersListOnCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	_, js := c.Connect(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{Replicas: 3})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("set up the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const n = 200
	for i := range n {
		key := fmt.Sprintf("01KB%022d.rule.0", i)
		if err := natsbus.DeadEffect(t.Context(), js, key, []byte(`{}`), errors.New("refused"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(t.Context(), natsbus.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range c.Servers() {
		if srv.Name() == info.Cluster.Leader {
			srv.Kill()
			t.Cleanup(srv.Restart)
		}
	}

	dl, err := natsbus.OpenDeadLetters(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		list, err := dl.List(t.Context())
		if err != nil {
			t.Fatalf("List with the leader down: %v", err)
		}
		if len(list) != n {
			t.Fatalf("%d dead letters, want %d", len(list), n)
		}
		for i := 1; i < len(list); i++ {
			if list[i].Seq <= list[i-1].Seq {
				t.Fatalf("dead letters out of order at %d: %d after %d", i, list[i].Seq, list[i-1].Seq)
			}
		}
	}
	info, err = s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left on %s, want none", info.State.Consumers, natsbus.DeadStream)
	}
}
