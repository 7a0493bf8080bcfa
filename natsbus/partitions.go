package natsbus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Partitioned consumption.
//
// On a partitioned events stream, the stream's subject transform stores
// each event published on herald.events.<source>.<customer> under
// herald.part.<partition>.<source>.<customer>, the partition being a hash
// of the customer token (PartitionOf). Each partition has a durable pull
// consumer of its own, ConsumerName-p<partition>, in the priority group
// PartitionGroup with the pinned-client policy: of all the engines pulling
// a partition, the server delivers to one only, the pinned one, until it
// stops pulling for PinnedTTL or lets go (Stream.UnpinConsumer). So one
// engine at a time handles a customer's events, in stream order. Which
// engine pulls which partitions is agreed through the engines bucket
// (package ingest).
//
// Events on any other subject under herald.events. (a plain source
// subject such as herald.events.web, or a subject of five tokens or more)
// are left as they were published by the transform; the router consumer
// RouterConsumer takes them, and an engine publishes each again on its
// customer's subject.

// Names of the partitioned set-up.
const (
	// PartitionGroup is the priority group of the partition and router
	// consumers.
	PartitionGroup = "herald"
	// RouterConsumer takes the events published on subjects without a
	// customer.
	RouterConsumer = ConsumerName + "-router"
	// EnginesBucket is the key-value bucket engines announce themselves
	// in: one key per engine, kept alive by the engine's heartbeats and
	// removed by the server (with a marker watchers see) once the engine
	// stops beating for the bucket's TTL.
	EnginesBucket = "HERALD_ENGINES"
	// MaxPartitions bounds SetupConfig.Partitions: each partition is a
	// consumer, a replicated group of its own on a cluster.
	MaxPartitions = 256
)

// Defaults of PartitionedConfig.
const (
	// PartitionAckWait is how long a partition consumer waits for an ack
	// before it delivers a message again. After an engine dies, its events
	// under way are delivered again within it, which bounds how long a
	// partition's new owner holds back new events to let them come first.
	PartitionAckWait = 10 * time.Second
	// PinnedTTL is how long a partition stays pinned to an engine that
	// stopped pulling it.
	PinnedTTL = 5 * time.Second
	// PartitionMaxAckPending bounds the events of one partition delivered
	// and not yet acked.
	PartitionMaxAckPending = 256
	// EngineTTL is how long an engine's key lasts in EnginesBucket after
	// its last heartbeat.
	EngineTTL = 6 * time.Second
)

// PartitionedConfig tunes a partitioned set-up. Zero values take the
// defaults above. The consumers' settings apply when Setup creates or
// fixes them; EngineTTL only when it creates the bucket.
type PartitionedConfig struct {
	// AckWait is the partition and router consumers' ack wait (default
	// PartitionAckWait).
	AckWait time.Duration
	// PinnedTTL is how long a consumer stays pinned to an engine that
	// stopped pulling it (default PinnedTTL).
	PinnedTTL time.Duration
	// MaxAckPending bounds the events of a partition delivered and not
	// acknowledged (default PartitionMaxAckPending).
	MaxAckPending int
	// EngineTTL is how long an engine's key lasts in EnginesBucket after
	// its last heartbeat (default EngineTTL).
	EngineTTL time.Duration
}

func (c PartitionedConfig) defaulted() PartitionedConfig {
	if c.AckWait <= 0 {
		c.AckWait = PartitionAckWait
	}
	if c.PinnedTTL <= 0 {
		c.PinnedTTL = PinnedTTL
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = PartitionMaxAckPending
	}
	if c.EngineTTL <= 0 {
		c.EngineTTL = EngineTTL
	}
	return c
}

// Partitions are the consumers of a partitioned events stream.
type Partitions struct {
	// Consumers holds the partition consumers, Consumers[p] taking
	// partition p. len(Consumers) is the number of partitions.
	Consumers []jetstream.Consumer
	// Router takes the events on subjects without a customer.
	Router jetstream.Consumer
	// Engines is EnginesBucket.
	Engines jetstream.KeyValue
	// Stream is the events stream.
	Stream jetstream.Stream
	// JS publishes the events engines route to their customers' subjects.
	JS jetstream.JetStream
	// AckWait and PinnedTTL are the consumers' settings; EngineTTL is the
	// engines bucket's.
	AckWait, PinnedTTL, EngineTTL time.Duration
}

// Unpin lets go of the pin the calling engine holds on consumer c, so that
// another engine pulling it gets it at once rather than after PinnedTTL.
func (p *Partitions) Unpin(ctx context.Context, c jetstream.Consumer) error {
	name := c.CachedInfo().Name
	if err := p.Stream.UnpinConsumer(ctx, name, PartitionGroup); err != nil {
		return fmt.Errorf("unpin consumer %s: %w", name, err)
	}
	return nil
}

// PartitionConsumerName names the consumer of partition p.
func PartitionConsumerName(p int) string { return ConsumerName + "-p" + strconv.Itoa(p) }

// partitionSource is what the events stream's transform partitions:
// subjects with a source and a customer token.
const partitionSource = eventsPrefix + "*.*"

// partitionTransform returns the events stream's subject transform for n
// partitions.
func partitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      partitionSource,
		Destination: fmt.Sprintf("%s{{partition(%d,2)}}.{{wildcard(1)}}.{{wildcard(2)}}", partitionPrefix, n),
	}
}

var partitionCount = regexp.MustCompile(`^herald\.part\.\{\{\s*[pP]artition\s*\(\s*([0-9]+)\s*,\s*2\s*\)\s*\}\}\.`)

// streamPartitions returns the number of partitions the stream's transform
// makes, 0 for a stream without a transform, or -1 for a transform Herald
// did not set.
func streamPartitions(cfg jetstream.StreamConfig) int {
	t := cfg.SubjectTransform
	if t == nil || t.Source == "" && t.Destination == "" {
		return 0
	}
	m := partitionCount.FindStringSubmatch(t.Destination)
	if t.Source != partitionSource || m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// ensureConsumers sets up the consumers of the events stream: the one
// consumer ConsumerName, or the partitioned ones.
func ensureConsumers(ctx context.Context, js jetstream.JetStream, res *Resources, cfg SetupConfig) error {
	if cfg.Partitions > 0 {
		p, events, err := setupPartitioned(ctx, js, res.Events, cfg)
		if err != nil {
			return err
		}
		res.Events, res.Partitions = events, p
		return nil
	}
	switch n := streamPartitions(res.Events.CachedInfo().Config); {
	case n > 0:
		return fmt.Errorf("stream %s is split into %d partitions by customer: set nats.partitions: %d on every engine", EventsStream, n, n)
	case n < 0:
		return fmt.Errorf("stream %s has a subject transform Herald did not set (%s); remove it", EventsStream, transformText(res.Events.CachedInfo().Config))
	}
	c, err := ensureConsumer(ctx, res.Events)
	res.Consumer = c
	return err
}

func transformText(cfg jetstream.StreamConfig) string {
	t := cfg.SubjectTransform
	return t.Source + " -> " + t.Destination
}

// setupPartitioned splits the events stream into cfg.Partitions partitions
// and creates, or fixes, what partitioned consumption needs:
//
//   - the events stream's subject transform from herald.events.*.* to
//     herald.part.{{partition(N,2)}}.{{wildcard(1)}}.{{wildcard(2)}};
//   - a durable pull consumer per partition, PartitionConsumerName(p),
//     filtered on PartitionFilter(p): deliver all, explicit acks, the
//     ack wait, unlimited deliveries, max ack pending, the priority group
//     PartitionGroup with the pinned-client policy and PinnedTTL;
//   - the router consumer RouterConsumer on herald.events.>, set up alike;
//   - the key-value bucket EnginesBucket: history 1, a TTL of EngineTTL,
//     with markers for keys that ran out.
//
// A stream partitioned into another number of partitions is an error: the
// partition of a stored event is in its subject, so the number cannot
// change in place. A stream consumed until now by the one consumer
// ConsumerName goes on where that consumer left off: the router starts at
// its ack floor (every event after it is routed to its partition, events
// already handled are recognised by their ids), and the consumer is
// deleted, so that no engine consumes both ways.
func setupPartitioned(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, cfg SetupConfig) (*Partitions, jetstream.Stream, error) {
	n := cfg.Partitions
	if n > MaxPartitions {
		return nil, nil, fmt.Errorf("set up jetstream: partitions %d: want 1 to %d", n, MaxPartitions)
	}
	pc := cfg.Partitioned.defaulted()
	have := events.CachedInfo().Config
	switch m := streamPartitions(have); {
	case m == 0:
		next := have
		next.SubjectTransform = partitionTransform(n)
		s, err := js.UpdateStream(ctx, next)
		if err != nil {
			return nil, nil, fmt.Errorf("partition stream %s: %w", EventsStream, err)
		}
		events = s
	case m < 0:
		return nil, nil, fmt.Errorf("stream %s has a subject transform Herald did not set (%s); remove it", EventsStream, transformText(have))
	case m != n:
		return nil, nil, fmt.Errorf("stream %s is split into %d partitions, not %d: the number of partitions cannot change in place; set nats.partitions: %d", EventsStream, m, n, m)
	}

	p := &Partitions{Stream: events, JS: js, AckWait: pc.AckWait, PinnedTTL: pc.PinnedTTL}
	for i := range n {
		c, err := ensurePinned(ctx, events, pinnedConfig(PartitionConsumerName(i), fmt.Sprintf("Herald engines: partition %d of %d", i, n), PartitionFilter(i), pc))
		if err != nil {
			return nil, nil, err
		}
		p.Consumers = append(p.Consumers, c)
	}
	router, err := ensureRouter(ctx, events, pc)
	if err != nil {
		return nil, nil, err
	}
	p.Router = router
	if p.Engines, p.EngineTTL, err = ensureEngines(ctx, js, pc, max(cfg.Replicas, 1)); err != nil {
		return nil, nil, err
	}
	return p, events, nil
}

// pinnedConfig is the configuration of a partition or router consumer.
func pinnedConfig(name, description, filter string, pc PartitionedConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Name:           name,
		Durable:        name,
		Description:    description,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        pc.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  pc.MaxAckPending,
		FilterSubject:  filter,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PartitionGroup},
		PinnedTTL:      pc.PinnedTTL,
	}
}

// ensurePinned creates the consumer want on events, or fixes the existing
// one: its ack wait, delivery limit, backoff, filter, priority group and
// pinned TTL. Its deliver policy and max ack pending are kept.
func ensurePinned(ctx context.Context, events jetstream.Stream, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for attempt := 0; ; attempt++ {
		c, err := events.Consumer(ctx, want.Name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = events.CreateConsumer(ctx, want)
			if errors.Is(err, jetstream.ErrConsumerExists) && attempt == 0 {
				continue // another engine created it meanwhile: fix that one
			}
			if err != nil {
				return nil, fmt.Errorf("create consumer %s on %s: %w", want.Name, EventsStream, err)
			}
			return c, nil
		}
		if errors.Is(err, jetstream.ErrNotPullConsumer) {
			return nil, fmt.Errorf("consumer %s on %s is a push consumer, but Herald pulls: delete it (nats consumer rm %s %[1]s) and start again", want.Name, EventsStream, EventsStream)
		}
		if err != nil {
			return nil, fmt.Errorf("look up consumer %s on %s: %w", want.Name, EventsStream, err)
		}
		have := c.CachedInfo().Config
		if have.AckPolicy != jetstream.AckExplicitPolicy || have.PriorityPolicy != jetstream.PriorityPolicyPinned {
			return nil, fmt.Errorf("consumer %s on %s is not an explicitly acked consumer with pinned clients, which Herald needs and which cannot be changed in place: delete it (nats consumer rm %s %[1]s) and start again", want.Name, EventsStream, EventsStream)
		}
		next := have
		next.AckWait = want.AckWait
		next.MaxDeliver = -1
		next.BackOff = nil
		next.FilterSubject = want.FilterSubject
		next.FilterSubjects = nil
		next.PriorityGroups = want.PriorityGroups
		next.PinnedTTL = want.PinnedTTL
		if reflect.DeepEqual(next, have) {
			return c, nil
		}
		c, err = events.UpdateConsumer(ctx, next)
		if err != nil {
			return nil, fmt.Errorf("update consumer %s on %s: %w", want.Name, EventsStream, err)
		}
		return c, nil
	}
}

// ensureRouter sets up the router consumer. When the one consumer
// ConsumerName exists, the events were consumed by it until now: the
// router starts where it left off, and it is deleted.
func ensureRouter(ctx context.Context, events jetstream.Stream, pc PartitionedConfig) (jetstream.Consumer, error) {
	want := pinnedConfig(RouterConsumer, "Herald engines: events published without a customer in the subject", EventsSubjects, pc)
	old, err := events.Consumer(ctx, ConsumerName)
	exists := err == nil || errors.Is(err, jetstream.ErrNotPullConsumer)
	if err != nil && !exists && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("look up consumer %s on %s: %w", ConsumerName, EventsStream, err)
	}
	if old != nil {
		if info := old.CachedInfo(); info != nil && info.AckFloor.Stream > 0 {
			want.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			want.OptStartSeq = info.AckFloor.Stream + 1
		}
	}
	router, err := ensurePinned(ctx, events, want)
	if err != nil {
		return nil, err
	}
	if exists {
		if err := events.DeleteConsumer(ctx, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s on %s, which partitioned consumption replaces: %w", ConsumerName, EventsStream, err)
		}
	}
	return router, nil
}

// ensureEngines creates the engines bucket, or opens the existing one, and
// returns it with its TTL.
func ensureEngines(ctx context.Context, js jetstream.JetStream, pc PartitionedConfig, replicas int) (jetstream.KeyValue, time.Duration, error) {
	kv, err := js.KeyValue(ctx, EnginesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         EnginesBucket,
			Description:    "Herald: the engines running, each kept alive by its heartbeats",
			History:        1,
			TTL:            pc.EngineTTL,
			LimitMarkerTTL: pc.EngineTTL,
			Storage:        jetstream.FileStorage,
			Replicas:       replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, EnginesBucket)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("set up bucket %s: %w", EnginesBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("set up bucket %s: %w", EnginesBucket, err)
	}
	ttl := st.TTL()
	if ttl <= 0 {
		return nil, 0, fmt.Errorf("bucket %s has no TTL, so engines that died would never leave it: delete it (nats kv rm %[1]s) and start again", EnginesBucket)
	}
	return kv, ttl, nil
}
