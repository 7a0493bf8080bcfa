package natsbus_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/natsbus"
)

// Setup with Partitions splits the events stream by customer: an event
// published on its customer's subject is stored under the partition
// PartitionOf computes, as the server's transform does, and each
// partition, and the router, has a pinned consumer.
func TestSetupPartitioned(t *testing.T) {
	_, js := startServer(t)
	const n = 4
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: n})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if res.Consumer != nil {
		t.Error("a partitioned set-up has the one consumer too")
	}
	p := res.Partitions
	if p == nil || len(p.Consumers) != n {
		t.Fatalf("partitions = %+v, want %d consumers", p, n)
	}
	for i, c := range p.Consumers {
		cfg := c.CachedInfo().Config
		if cfg.Durable != natsbus.PartitionConsumerName(i) || cfg.FilterSubject != natsbus.PartitionFilter(i) ||
			cfg.PriorityPolicy != jetstream.PriorityPolicyPinned || len(cfg.PriorityGroups) != 1 || cfg.PriorityGroups[0] != natsbus.PartitionGroup ||
			cfg.PinnedTTL != natsbus.PinnedTTL || cfg.AckWait != natsbus.PartitionAckWait || cfg.MaxDeliver != -1 ||
			cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxAckPending != natsbus.PartitionMaxAckPending {
			t.Errorf("partition %d consumer config = %+v", i, cfg)
		}
	}
	if cfg := p.Router.CachedInfo().Config; cfg.Durable != natsbus.RouterConsumer || cfg.FilterSubject != natsbus.EventsSubjects ||
		cfg.PriorityPolicy != jetstream.PriorityPolicyPinned {
		t.Errorf("router consumer config = %+v", cfg)
	}
	if p.EngineTTL != natsbus.EngineTTL {
		t.Errorf("engine TTL %s, want %s", p.EngineTTL, natsbus.EngineTTL)
	}
	if _, err := res.Events.Consumer(t.Context(), natsbus.ConsumerName); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer %s on a partitioned stream: %v", natsbus.ConsumerName, err)
	}

	pub := natsbus.NewPublisher(js, natsbus.HTTPSubject)
	for _, uuid := range []string{"anna-7f3c", "bob", "a b/c", "carl", "dora", "emil"} {
		ev := &event.Event{ID: "ev-" + natsbus.CustomerToken(uuid), Action: "page.visit", Time: time.Now(), UUID: uuid}
		ack, err := pub.PublishOn(t.Context(), natsbus.HTTPSubject, ev)
		if err != nil {
			t.Fatal(err)
		}
		m, err := res.Events.GetMsg(t.Context(), ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		token := natsbus.CustomerToken(uuid)
		if want := fmt.Sprintf("herald.part.%d.http.%s", natsbus.PartitionOf(token, n), token); m.Subject != want {
			t.Errorf("%q stored on %q, want %q", uuid, m.Subject, want)
		}
	}
	// A plain subject is stored as it was published, for the router.
	ack, err := js.Publish(t.Context(), "herald.events.web", []byte(`{"action":"page.visit","uuid":"anna-7f3c"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := res.Events.GetMsg(t.Context(), ack.Sequence); err != nil || m.Subject != "herald.events.web" {
		t.Errorf("plain subject stored as %v (%v)", m, err)
	}

	// Setting up again changes nothing; another number of partitions, or
	// none, is refused.
	if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: n}); err != nil {
		t.Errorf("Setup again: %v", err)
	}
	for _, tt := range []struct {
		partitions int
		want       string
	}{
		{n + 1, "stream HERALD_EVENTS is split into 4 partitions, not 5: the number of partitions cannot change in place; set nats.partitions: 4"},
		{0, "stream HERALD_EVENTS is split into 4 partitions by customer: set nats.partitions: 4 on every engine"},
		{natsbus.MaxPartitions + 1, "partitions 257: want 1 to 256"},
	} {
		_, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: tt.partitions})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Setup with %d partitions: %v, want %q", tt.partitions, err, tt.want)
		}
	}
}

// A stream consumed by the one consumer until now is partitioned where
// that consumer left off: the router starts after its ack floor, and the
// consumer goes.
func TestSetupPartitionedTakesOverFromTheConsumer(t *testing.T) {
	_, js := startServer(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(t.Context(), "herald.events.web", fmt.Appendf(nil, `{"action":"page.visit","uuid":"c-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := res.Consumer.Fetch(3, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	res, err = natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Partitions.Router.CachedInfo().Config
	if cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != 4 {
		t.Errorf("router starts with %s at %d, want by start sequence at 4", cfg.DeliverPolicy, cfg.OptStartSeq)
	}
	if _, err := res.Events.Consumer(t.Context(), natsbus.ConsumerName); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer %s after partitioning: %v", natsbus.ConsumerName, err)
	}
}

// A partitioned event kept as a dead letter keeps the subject it was
// published on, where a retry publishes it again.
func TestDeadLetterOfAPartitionedEvent(t *testing.T) {
	_, js := startServer(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: "ev-1", Action: "page.visit", Time: time.Now(), UUID: "anna-7f3c"}
	if err := natsbus.NewPublisher(js, natsbus.LinkSubject).Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	c := res.Partitions.Consumers[natsbus.PartitionOf("anna-7f3c", 2)]
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(2*time.Second), jetstream.FetchPriorityGroup(natsbus.PartitionGroup))
	if err != nil {
		t.Fatal(err)
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	if msg == nil {
		t.Fatalf("no message: %v", batch.Error())
	}
	if err := natsbus.DeadLetter(t.Context(), js, msg, errors.New("boom"), time.Now()); err != nil {
		t.Fatal(err)
	}
	dead, err := res.Dead.GetLastMsgForSubject(t.Context(), natsbus.DeadSubjects)
	if err != nil {
		t.Fatal(err)
	}
	if dead.Subject != "herald.dead.link.anna-7f3c" || dead.Header.Get(natsbus.HeaderOriginalSubject) != "herald.events.link.anna-7f3c" {
		t.Errorf("dead letter on %q, original subject %q", dead.Subject, dead.Header.Get(natsbus.HeaderOriginalSubject))
	}
}

// An event published again on its customer's subject keeps its id, depth,
// budget and the app's headers; its Nats-Msg-Id is the stored message's,
// so routing it twice stores it once.
func TestRouteMsg(t *testing.T) {
	_, js := startServer(t)
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: "ev-1", Action: "page.visit", Time: time.Now().UTC().Truncate(time.Millisecond), UUID: "anna-7f3c", Depth: 2, Budget: 5}
	msg, err := natsbus.Msg("herald.events.web", ev)
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.Set("X-App", "shop")
	msg.Header.Set(natsbus.CustomerHeader, "forged")
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	batch, err := res.Partitions.Router.Fetch(1, jetstream.FetchMaxWait(2*time.Second), jetstream.FetchPriorityGroup(natsbus.PartitionGroup))
	if err != nil {
		t.Fatal(err)
	}
	var from jetstream.Msg
	for m := range batch.Messages() {
		from = m
	}
	if from == nil {
		t.Fatalf("no message: %v", batch.Error())
	}
	for _, customer := range []string{"", "bob"} {
		routed, err := natsbus.RouteMsg("herald.events.web.anna-7f3c", ev, from, customer)
		if err != nil {
			t.Fatal(err)
		}
		h := routed.Header
		if routed.Subject != "herald.events.web.anna-7f3c" || h.Get(jetstream.MsgIDHeader) != "herald-route-1" ||
			h.Get(natsbus.RoutedFromHeader) != "herald.events.web" || h.Get("X-App") != "shop" ||
			h.Get(natsbus.DepthHeader) != "2" || h.Get(natsbus.BudgetHeader) != "5" || h.Get(natsbus.CustomerHeader) != customer {
			t.Errorf("routed for %q: %s %v", customer, routed.Subject, h)
		}
	}
	routed, err := natsbus.RouteMsg("herald.events.web.anna-7f3c", ev, from, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ack, err := js.PublishMsg(t.Context(), routed)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("publish %d: duplicate %v", i+1, ack.Duplicate)
		}
	}
}
