package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AttemptsBucket is the key-value bucket in which the consumer counts, for
// each event delivered more than once, the attempts at handling it that
// started and never finished (the process died or hung), so that an event
// that kills Herald is kept as a dead letter instead of being redelivered
// for ever. See ingest.Attempts.
const AttemptsBucket = "HERALD_ATTEMPTS"

// AttemptsTTL is how long AttemptsBucket keeps a count after it last
// changed. Counts are deleted when their event completes; the TTL only
// clears what a crash left behind.
const AttemptsTTL = 24 * time.Hour

// Attempts opens AttemptsBucket, creating it if it is missing: file
// storage, history 1, AttemptsTTL, as many replicas as EventsStream has.
// An existing bucket is used as it is, so an operator's changes to it are
// kept. Setup does not create the bucket: the consumer opens it the first
// time an event is delivered again.
func Attempts(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	for attempt := 0; ; attempt++ {
		kv, err := js.KeyValue(ctx, AttemptsBucket)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("look up bucket %s: %w", AttemptsBucket, err)
		}
		replicas := 1
		if s, err := js.Stream(ctx, EventsStream); err == nil {
			replicas = max(s.CachedInfo().Config.Replicas, 1)
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      AttemptsBucket,
			Description: "Herald: attempts at handling redelivered events that never finished",
			History:     1,
			TTL:         AttemptsTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) && attempt == 0 {
			continue // another engine created it meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", AttemptsBucket, err)
		}
		return kv, nil
	}
}
