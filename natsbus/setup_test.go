package natsbus_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/natsbus"
)

func TestSetupCreatesDocumentedResources(t *testing.T) {
	js, res := setup(t)

	events := res.Events.CachedInfo().Config
	if !slices.Equal(events.Subjects, []string{natsbus.EventsSubjects}) {
		t.Errorf("events subjects = %v, want [%s]", events.Subjects, natsbus.EventsSubjects)
	}
	if events.Duplicates != 10*time.Minute {
		t.Errorf("events duplicate window = %s, want 10m", events.Duplicates)
	}
	if events.Storage != jetstream.FileStorage || events.Discard != jetstream.DiscardOld ||
		events.Retention != jetstream.LimitsPolicy || events.Replicas != 1 {
		t.Errorf("events storage %s, discard %s, retention %s, replicas %d; want file, old, limits, 1",
			events.Storage, events.Discard, events.Retention, events.Replicas)
	}

	dead := res.Dead.CachedInfo().Config
	if !slices.Equal(dead.Subjects, []string{natsbus.DeadSubjects}) {
		t.Errorf("dead subjects = %v, want [%s]", dead.Subjects, natsbus.DeadSubjects)
	}
	if dead.MaxAge != 30*24*time.Hour || dead.Storage != jetstream.FileStorage || dead.Duplicates != 10*time.Minute {
		t.Errorf("dead max age %s, storage %s, duplicates %s; want 720h, file, 10m", dead.MaxAge, dead.Storage, dead.Duplicates)
	}

	c := res.Consumer.CachedInfo().Config
	if c.Durable != natsbus.ConsumerName || c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != 30*time.Second ||
		c.MaxDeliver != -1 || len(c.BackOff) != 0 || c.MaxAckPending != 1024 || c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("consumer config = %+v", c)
	}

	st, err := res.Profiles.Status(t.Context())
	if err != nil {
		t.Fatalf("bucket status: %v", err)
	}
	if st.Bucket() != natsbus.ProfileBucket || st.History() != 1 || st.BackingStore() != "JetStream" {
		t.Errorf("bucket %s, history %d, backing %s", st.Bucket(), st.History(), st.BackingStore())
	}
	if storage := st.Config().Storage; storage != jetstream.FileStorage {
		t.Errorf("bucket storage = %s, want file", storage)
	}
	ks, err := js.Stream(t.Context(), "KV_"+natsbus.ProfileBucket)
	if err != nil {
		t.Fatal(err)
	}
	if ks.CachedInfo().Config.AllowDirect {
		t.Error("the bucket answers direct gets, which a replica may answer with an old record")
	}
}

func TestSetupIsIdempotent(t *testing.T) {
	js, first := setup(t)
	second, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	for name, pair := range map[string][2]any{
		"events":   {first.Events.CachedInfo().Config, second.Events.CachedInfo().Config},
		"dead":     {first.Dead.CachedInfo().Config, second.Dead.CachedInfo().Config},
		"consumer": {first.Consumer.CachedInfo().Config, second.Consumer.CachedInfo().Config},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s changed on the second run:\n%+v\n%+v", name, pair[0], pair[1])
		}
	}
	st1, _ := first.Profiles.Status(t.Context())
	st2, err := second.Profiles.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st1.Config(), st2.Config()) {
		t.Errorf("bucket changed on the second run:\n%+v\n%+v", st1.Config(), st2.Config())
	}
}

func TestSetupConcurrentEngines(t *testing.T) {
	_, js := startServer(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Setup: %v", err)
		}
	}
}

func TestSetupFixesOlderResources(t *testing.T) {
	_, js := startServer(t)
	ctx := t.Context()
	// What an older run, plus an operator, might have left.
	events, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       natsbus.EventsStream,
		Subjects:   []string{"herald.events.web", "legacy.events"},
		Storage:    jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
		MaxAge:     90 * 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       natsbus.ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: "herald.events.web",
		MaxDeliver:    5,
		BackOff:       []time.Duration{time.Second, 5 * time.Second},
		MaxAckPending: 50,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsbus.ProfileBucket, History: 5, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}

	res, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	got := res.Events.CachedInfo().Config
	if !slices.Equal(got.Subjects, []string{"legacy.events", natsbus.EventsSubjects}) {
		t.Errorf("subjects = %v, want [legacy.events %s]", got.Subjects, natsbus.EventsSubjects)
	}
	if got.Duplicates != natsbus.DuplicateWindow {
		t.Errorf("duplicate window = %s, want %s", got.Duplicates, natsbus.DuplicateWindow)
	}
	if got.MaxAge != 90*24*time.Hour {
		t.Errorf("the operator's max age was changed to %s", got.MaxAge)
	}
	c := res.Consumer.CachedInfo().Config
	if c.AckWait != natsbus.AckWait || c.MaxDeliver != -1 || len(c.BackOff) != 0 || c.FilterSubject != "" {
		t.Errorf("consumer ack wait %s, max deliver %d, backoff %v, filter %q; want %s, -1, none, none",
			c.AckWait, c.MaxDeliver, c.BackOff, c.FilterSubject, natsbus.AckWait)
	}
	if c.DeliverPolicy != jetstream.DeliverNewPolicy || c.MaxAckPending != 50 {
		t.Errorf("consumer deliver policy %s, max ack pending %d: want them kept", c.DeliverPolicy, c.MaxAckPending)
	}
	st, err := res.Profiles.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 5 {
		t.Errorf("bucket history = %d, want the existing 5 kept", st.History())
	}
}

func TestSetupRejectsIncompatibleResources(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, js jetstream.JetStream)
		want    []string
	}{
		{
			name: "events in memory",
			prepare: func(t *testing.T, js jetstream.JetStream) {
				_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: natsbus.EventsStream, Subjects: []string{natsbus.EventsSubjects}, Storage: jetstream.MemoryStorage})
				if err != nil {
					t.Fatal(err)
				}
			},
			want: []string{natsbus.EventsStream, "storage is Memory"},
		},
		{
			name: "profiles in memory",
			prepare: func(t *testing.T, js jetstream.JetStream) {
				_, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: natsbus.ProfileBucket, Storage: jetstream.MemoryStorage})
				if err != nil {
					t.Fatal(err)
				}
			},
			want: []string{natsbus.ProfileBucket, "storage is Memory"},
		},
		{
			name: "consumer without explicit acks",
			prepare: func(t *testing.T, js jetstream.JetStream) {
				s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: natsbus.EventsStream, Subjects: []string{natsbus.EventsSubjects}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.CreateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: natsbus.ConsumerName, AckPolicy: jetstream.AckNonePolicy}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"consumer herald", "ack policy cannot be changed", "nats consumer rm HERALD_EVENTS herald"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := startServer(t)
			tt.prepare(t, js)
			_, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
			if err == nil {
				t.Fatal("Setup succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSetupReplicas(t *testing.T) {
	_, js := startServer(t)
	for _, r := range []int{-1, 6} {
		if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Replicas: r}); err == nil || !strings.Contains(err.Error(), "replicas") {
			t.Errorf("Replicas %d: error = %v, want a replicas error", r, err)
		}
	}
	// One server cannot hold three copies: the request reaches the server,
	// which refuses it.
	if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Replicas: 3}); err == nil {
		t.Errorf("Replicas 3 on a single server succeeded")
	}
	if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{Replicas: 1}); err != nil {
		t.Errorf("Replicas 1: %v", err)
	}
}

func TestEventsDedupeByMsgID(t *testing.T) {
	js, res := setup(t)
	ctx := t.Context()
	for i := range 2 {
		ack, err := js.Publish(ctx, "herald.events.web", []byte(`{"action":"page.visit","uuid":"u1"}`), jetstream.WithMsgID("evt-1"))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("publish %d: duplicate = %v", i, ack.Duplicate)
		}
	}
	info, err := res.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	if _, err := js.Publish(ctx, "herald.events.web", []byte(`{}`), jetstream.WithMsgID("evt-2")); err != nil {
		t.Fatal(err)
	}
	if info, err = res.Events.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Errorf("after a second id: %v messages, err %v; want 2", info.State.Msgs, err)
	}
}

func TestSetupRecreatesDeletedConsumer(t *testing.T) {
	_, js := startServer(t)
	ctx := t.Context()
	if _, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	// A deleted consumer is created again.
	if err := js.DeleteConsumer(ctx, natsbus.EventsStream, natsbus.ConsumerName); err != nil {
		t.Fatal(err)
	}
	res, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatalf("Setup after the consumer was deleted: %v", err)
	}
	if _, err := res.Events.Consumer(ctx, natsbus.ConsumerName); errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer not recreated")
	}
}
