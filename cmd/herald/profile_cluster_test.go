package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// largeStream is the shape of the stream the herald profile tests read: 10,000
// events of 200 customers, 50 each, interleaved.
const (
	largeEvents    = 10000
	largeCustomers = 200
	profileCalls   = 100
)

// largeUUID is the i-th customer of the large stream; every tenth has a
// uuid that is not its own subject token.
func largeUUID(i int) string {
	if i%10 == 3 {
		return fmt.Sprintf("cust %03d/x", i)
	}
	return fmt.Sprintf("cust-%03d", i)
}

// fillLargeStream publishes the large stream's events and returns each
// customer's event ids in the order published. With plain, every fifth
// round of events (one event of each customer) goes on the plain subject
// herald.events.web, without the customer in the subject.
func fillLargeStream(t *testing.T, js jetstream.JetStream, plain bool) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	want := map[string][]string{}
	base := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var futures []jetstream.PubAckFuture
	for i := range largeEvents {
		if i%500 == 0 {
			select { // a window of acks at a time
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("publishing the large stream did not complete")
			}
		}
		uuid := largeUUID(i % largeCustomers)
		ev := &event.Event{ID: fmt.Sprintf("large-%05d", i), Action: "page.visit", Label: fmt.Sprintf("visit %d", i), Time: base.Add(time.Duration(i) * time.Second), UUID: uuid}
		subject := natsbus.CustomerSubject("herald.events.app", uuid)
		if plain && plainEvent(i) {
			subject = "herald.events.web"
		}
		msg, err := natsbus.Msg(subject, ev)
		if err != nil {
			t.Fatal(err)
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
		want[uuid] = append(want[uuid], ev.ID)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing the large stream did not complete")
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	return want
}

// consumerNames lists the consumers of the events stream.
func consumerNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := s.ConsumerNames(t.Context())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// profileCallsAgainst runs herald profile --json for profileCalls
// customers of the large stream (filled with plain as given), as a user
// would, and checks each shows the customer's latest 10 events; halfway through it calls midway. It
// returns how many calls failed.
func profileCallsAgainst(t *testing.T, url string, want map[string][]string, plain bool, midway func()) int {
	t.Helper()
	failed := 0
	for call := range profileCalls {
		if call == profileCalls/2 && midway != nil {
			midway()
		}
		uuid := largeUUID(call * 7 % largeCustomers)
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "--json", uuid)
		if code != exitOK {
			failed++
			t.Errorf("call %d, profile %q: exit code %d; stderr:\n%s", call, uuid, code, stderr)
			continue
		}
		var got profileJSON
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			failed++
			t.Errorf("call %d: stdout is not JSON: %v\n%s", call, err, stdout)
			continue
		}
		var ids []string
		for _, ev := range got.Activity {
			ids = append(ids, ev.ID)
		}
		if latest := latest10(want[uuid], plain); !slices.Equal(ids, latest) {
			failed++
			t.Errorf("call %d, profile %q: activity %v, want %v", call, uuid, ids, latest)
		}
	}
	return failed
}

// latest10 returns the last 10 of ids that herald profile finds with the
// default --scan: every event on its customer's subject, and, when some
// went on the plain subject, those among the stream's last 1000.
func latest10(ids []string, plain bool) []string {
	var found []string
	for _, id := range ids {
		var i int
		if _, err := fmt.Sscanf(id, "large-%d", &i); err != nil {
			panic(err)
		}
		if !plain || !plainEvent(i) || i >= largeEvents-1000 {
			found = append(found, id)
		}
	}
	return found[len(found)-10:]
}

// plainEvent reports whether the i-th event of the large stream goes on
// the plain subject, when some do: every fifth round of events, one event
// of each customer.
func plainEvent(i int) bool { return i/largeCustomers%5 == 0 }

// herald profile on a stream of 10,000 events: 100 calls, each showing the
// customer's latest events, those sent on a plain subject among the last
// --scan (1000) of the stream among them, and no consumer left behind.
func TestProfileLargeStream(t *testing.T) {
	srv, js := natstest.Start(t)
	if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	want := fillLargeStream(t, js, true)
	before := consumerNames(t, js)
	if failed := profileCallsAgainst(t, srv.ClientURL(), want, true, nil); failed != 0 {
		t.Errorf("%d of %d calls failed", failed, profileCalls)
	}
	if after := consumerNames(t, js); !slices.Equal(after, before) {
		t.Errorf("consumers after the calls %v, before %v", after, before)
	}
	// The plain subjects are looked through among the last --scan events
	// only, and the output says so.
	code, stdout, stderr := run(t, "", "profile", "--nats", srv.ClientURL(), largeUUID(0))
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	// cust-000's events are 0, 200, 400, ...: those divisible by 1000 went
	// on the plain subject, and the last such within the last 1000 events
	// is 9000; 8000 is older.
	for _, line := range []string{
		"Recent activity (latest 10 in HERALD_EVENTS; of events sent on a plain subject, those among its last 1000):\n",
		"visit 9000\n", "visit 9800\n",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("stdout does not contain %q:\n%s", line, stdout)
		}
	}
	if strings.Contains(stdout, "visit 8000\n") {
		t.Errorf("a plain event older than --scan shown:\n%s", stdout)
	}
}

// The same on a three-server cluster with a partitioned stream kept on
// every server, the server leading the events stream and the profile
// bucket killed halfway through the calls.
func TestProfileLargeStreamCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	nc, js := c.Connect(t)
	setupCluster(t, js)
	want := fillLargeStream(t, js, false)
	before := consumerNames(t, js)
	killed := 0
	failed := profileCallsAgainst(t, c.URL(), want, false, func() {
		s, err := js.Stream(t.Context(), natsbus.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		leader := s.CachedInfo().Cluster.Leader
		// The profile bucket's leader moves there too, so that both are
		// elected anew while the calls go on.
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": leader}})
		if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN.KV_"+natsbus.ProfileBucket, req, 5*time.Second); err != nil {
			t.Logf("bucket leader step-down to %s: %v", leader, err)
		}
		for i, srv := range c.Servers() {
			if srv.Name() == leader {
				srv.Kill()
				killed = i
				return
			}
		}
		t.Fatalf("stream leader %q is none of the servers", leader)
	})
	if failed != 0 {
		t.Errorf("%d of %d calls failed", failed, profileCalls)
	}
	c.Server(killed).Restart()
	var after []string
	for range 50 { // the consumer list is asked of the leader, elected anew
		if after = consumerNamesOrNil(js); after != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(after, before) {
		t.Errorf("consumers after the calls %v, before %v", after, before)
	}
}

func consumerNamesOrNil(js jetstream.JetStream) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		return nil
	}
	var names []string
	l := s.ConsumerNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		return nil
	}
	slices.Sort(names)
	return names
}

// setupCluster sets up Herald's streams on a three-server cluster, kept on
// every server and split into 4 partitions, as an engine does, trying
// again while the servers still elect their leaders.
func setupCluster(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{Replicas: 3, Partitions: 4})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("set up the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
