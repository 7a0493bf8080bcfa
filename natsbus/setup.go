package natsbus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SetupConfig configures Setup.
type SetupConfig struct {
	// Replicas is how many copies of each stream and of the bucket a
	// cluster keeps: 1 to 5, typically 3 on a cluster. 0 means 1 for what
	// Setup creates and leaves the replicas of existing resources as they
	// are.
	Replicas int
	// Partitions, when above 0, splits the events stream into that many
	// partitions by customer, each consumed by one engine at a time, in
	// place of the one consumer ConsumerName (see partitions.go; at most
	// MaxPartitions). 0 keeps one consumer shared by every engine.
	Partitions int
	// Partitioned tunes the partitioned consumers and the engines bucket;
	// zero values take the defaults. Used only with Partitions.
	Partitioned PartitionedConfig
}

// Resources are the JetStream resources Herald works with.
type Resources struct {
	// Events is the stream of tracked events, EventsStream.
	Events jetstream.Stream
	// Dead is the dead-letter stream, DeadStream.
	Dead jetstream.Stream
	// Consumer is the durable pull consumer ConsumerName on Events; nil
	// when Events is partitioned.
	Consumer jetstream.Consumer
	// Partitions are the consumers of a partitioned Events
	// (SetupConfig.Partitions) and the engines bucket; nil otherwise.
	Partitions *Partitions
	// Profiles is the customer profile bucket, ProfileBucket.
	Profiles jetstream.KeyValue
	// Timers is the stream of timers, TimersStream (see timers.go).
	Timers jetstream.Stream
}

// Setup creates what Herald needs on a JetStream, or brings what an earlier
// run or an operator created into line with it:
//
//   - EventsStream on EventsSubjects: file storage, limits retention,
//     discard old, a DuplicateWindow for Nats-Msg-Id dedupe;
//   - DeadStream on DeadSubjects: file storage, DeadMaxAge, the same
//     duplicate window;
//   - the durable pull consumer ConsumerName on EventsStream: deliver all,
//     explicit acks, AckWait, unlimited deliveries without a backoff
//     schedule (an event is never dropped; retries are delayed with
//     NakWithDelay), MaxAckPending;
//   - the key-value bucket ProfileBucket: history 1, file storage. It
//     holds the customers' records (merged customers' tombstones among
//     them) and the email index, under keys of its own (see package
//     profile: KeyOf and EmailKeyPrefix);
//   - TimersStream on TimersSubjects, with message schedules, and the
//     durable consumer TimersConsumer of fired timers (see timers.go).
//
// Setup is idempotent and safe to run from several engines at once. On
// existing resources it changes only what Herald depends on: the subjects,
// a duplicate window at least DuplicateWindow, the replicas when
// cfg.Replicas is set, and the consumer's ack wait, delivery limit, backoff
// and filter. Limits an operator tuned (max age, bytes, ack pending, ...)
// are kept. What cannot be changed in place — memory storage, a consumer
// without explicit acks or a push consumer — is an error saying so.
func Setup(ctx context.Context, js jetstream.JetStream, cfg SetupConfig) (*Resources, error) {
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("set up jetstream: replicas %d: want 1 to 5, or 0 for the default", cfg.Replicas)
	}
	replicas := max(cfg.Replicas, 1)
	var (
		res Resources
		err error
	)
	res.Events, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "Herald: tracked customer events",
		Subjects:    []string{EventsSubjects},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
	}, streamNeeds{what: "events", subjects: EventsSubjects, prefix: eventsPrefix, duplicates: DuplicateWindow, replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	res.Dead, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        DeadStream,
		Description: "Herald: events that could not be processed, with the reason",
		Subjects:    []string{DeadSubjects},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      DeadMaxAge,
		Duplicates:  DuplicateWindow,
	}, streamNeeds{what: "dead letters", subjects: DeadSubjects, prefix: deadPrefix, duplicates: DuplicateWindow, replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	if err := ensureConsumers(ctx, js, &res, cfg); err != nil {
		return nil, err
	}
	if res.Profiles, err = ensureProfiles(ctx, js, cfg.Replicas); err != nil {
		return nil, err
	}
	if res.Timers, err = ensureTimers(ctx, js, cfg.Replicas); err != nil {
		return nil, err
	}
	return &res, nil
}

// streamNeeds is what Herald relies on in an existing stream.
type streamNeeds struct {
	what       string        // what the stream keeps, for errors
	subjects   string        // the subject filter it must carry; "" for none
	prefix     string        // subjects under it are replaced by subjects
	duplicates time.Duration // the least duplicate window; 0 for any
	replicas   int           // 0: keep
}

// fix changes c to meet the needs, or says why it cannot.
func (n streamNeeds) fix(c *jetstream.StreamConfig) error {
	if c.Storage != jetstream.FileStorage {
		return fmt.Errorf("storage is %s, but Herald keeps %s in files and a stream's storage cannot be changed: move the data to a new stream with file storage", c.Storage, n.what)
	}
	if n.subjects != "" && !slices.Contains(c.Subjects, n.subjects) {
		// Narrower subjects of an older set-up overlap the filter, which
		// JetStream rejects: the filter replaces them.
		subjects := slices.DeleteFunc(slices.Clone(c.Subjects), func(s string) bool { return strings.HasPrefix(s, n.prefix) })
		c.Subjects = append(subjects, n.subjects)
	}
	if c.Duplicates < n.duplicates {
		c.Duplicates = n.duplicates
	}
	if n.replicas > 0 {
		c.Replicas = n.replicas
	}
	return nil
}

// ensureStream creates the stream want, or fixes the existing one.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, needs streamNeeds) (jetstream.Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // another engine created it meanwhile: fix that one
			}
			if err != nil {
				return nil, fmt.Errorf("create stream %s: %w", want.Name, err)
			}
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up stream %s: %w", want.Name, err)
		}
		s, _, err = fixStream(ctx, js, s, needs)
		return s, err
	}
}

// fixStream updates s if it does not meet the needs and reports whether it
// did.
func fixStream(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, needs streamNeeds) (jetstream.Stream, bool, error) {
	have := s.CachedInfo().Config
	next := have
	if err := needs.fix(&next); err != nil {
		return nil, false, fmt.Errorf("stream %s: %w", have.Name, err)
	}
	if reflect.DeepEqual(next, have) {
		return s, false, nil
	}
	s, err := js.UpdateStream(ctx, next)
	if err != nil {
		return nil, false, fmt.Errorf("update stream %s: %w", have.Name, err)
	}
	return s, true, nil
}

// ensureConsumer creates Herald's consumer on the events stream, or fixes
// the existing one.
func ensureConsumer(ctx context.Context, events jetstream.Stream) (jetstream.Consumer, error) {
	want := jetstream.ConsumerConfig{
		Name:          ConsumerName,
		Durable:       ConsumerName,
		Description:   "Herald engines",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1,
		MaxAckPending: MaxAckPending,
	}
	for attempt := 0; ; attempt++ {
		c, err := events.Consumer(ctx, ConsumerName)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = events.CreateConsumer(ctx, want)
			if errors.Is(err, jetstream.ErrConsumerExists) && attempt == 0 {
				continue // another engine created it meanwhile: fix that one
			}
			if err != nil {
				return nil, fmt.Errorf("create consumer %s on %s: %w", ConsumerName, EventsStream, err)
			}
			return c, nil
		}
		if errors.Is(err, jetstream.ErrNotPullConsumer) {
			return nil, fmt.Errorf("consumer %s on %s is a push consumer, but Herald pulls and a push consumer cannot become a pull consumer: delete it (nats consumer rm %[2]s %[1]s) and start again", ConsumerName, EventsStream)
		}
		if err != nil {
			return nil, fmt.Errorf("look up consumer %s on %s: %w", ConsumerName, EventsStream, err)
		}
		have := c.CachedInfo().Config
		if have.AckPolicy != jetstream.AckExplicitPolicy {
			return nil, fmt.Errorf("consumer %s on %s acks %s, but Herald acks each event explicitly and the ack policy cannot be changed: delete it (nats consumer rm %[2]s %[1]s) and start again", ConsumerName, EventsStream, have.AckPolicy)
		}
		next := have
		next.AckWait = AckWait
		next.MaxDeliver = -1
		next.BackOff = nil
		next.FilterSubject = ""
		next.FilterSubjects = nil
		if reflect.DeepEqual(next, have) {
			return c, nil
		}
		c, err = events.UpdateConsumer(ctx, next)
		if err != nil {
			return nil, fmt.Errorf("update consumer %s on %s: %w", ConsumerName, EventsStream, err)
		}
		return c, nil
	}
}

// ensureProfiles creates the profile bucket, or fixes the existing one.
func ensureProfiles(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	want := jetstream.KeyValueConfig{
		Bucket:      ProfileBucket,
		Description: "Herald: customer profiles",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
	for attempt := 0; ; attempt++ {
		kv, err := js.KeyValue(ctx, ProfileBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, want)
			if errors.Is(err, jetstream.ErrBucketExists) && attempt == 0 {
				continue // another engine created it meanwhile: fix that one
			}
			if err != nil {
				return nil, fmt.Errorf("create bucket %s: %w", ProfileBucket, err)
			}
			return readFromLeader(ctx, js, kv)
		}
		if err != nil {
			return nil, fmt.Errorf("look up bucket %s: %w", ProfileBucket, err)
		}
		s, err := js.Stream(ctx, "KV_"+ProfileBucket)
		if err != nil {
			return nil, fmt.Errorf("look up bucket %s: %w", ProfileBucket, err)
		}
		_, changed, err := fixStream(ctx, js, s, streamNeeds{what: "profiles", replicas: replicas})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", ProfileBucket, err)
		}
		if changed {
			if kv, err = js.KeyValue(ctx, ProfileBucket); err != nil {
				return nil, fmt.Errorf("look up bucket %s: %w", ProfileBucket, err)
			}
		}
		return readFromLeader(ctx, js, kv)
	}
}

// readFromLeader makes the profile bucket answer reads from its stream's
// leader only, and returns kv opened again if that changed anything. A KV
// bucket allows direct gets, which any replica answers, possibly with a
// record older than the last one written; the applier would then evaluate
// an event against an old profile, and an event that changes nothing on
// it writes nothing, so no compare-and-set catches the mistake. A handle
// opened before the change keeps reading from replicas: open it again.
func readFromLeader(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	s, err := js.Stream(ctx, "KV_"+ProfileBucket)
	if err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", ProfileBucket, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return kv, nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("bucket %s: read from the leader: %w", ProfileBucket, err)
	}
	if kv, err = js.KeyValue(ctx, ProfileBucket); err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", ProfileBucket, err)
	}
	return kv, nil
}
