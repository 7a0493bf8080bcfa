package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EffectsBucket is the key-value bucket in which engines mark the effects
// they performed, one key per effect, so that an engine taking over a
// customer's record from an engine that died does not perform again what
// that engine performed and had not yet cleared from the record. See
// runner.Marks.
const EffectsBucket = "HERALD_EFFECTS"

// EffectsTTL is how long EffectsBucket keeps a mark. A mark is needed only
// while a record may still list its effect: about a second and a half on
// the engine that performed it, which then clears the record; after that
// engine died, until the customer's next event is handled.
const EffectsTTL = 24 * time.Hour

// Effects opens EffectsBucket, creating it if it is missing: file storage,
// history 1, EffectsTTL, as many replicas as EventsStream has. An existing
// bucket is used as it is, so an operator's changes to it are kept.
func Effects(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	for attempt := 0; ; attempt++ {
		kv, err := js.KeyValue(ctx, EffectsBucket)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("look up bucket %s: %w", EffectsBucket, err)
		}
		replicas := 1
		if s, err := js.Stream(ctx, EventsStream); err == nil {
			replicas = max(s.CachedInfo().Config.Replicas, 1)
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      EffectsBucket,
			Description: "Herald: effects performed, marked so that no other engine performs them again",
			History:     1,
			TTL:         EffectsTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) && attempt == 0 {
			continue // another engine created it meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", EffectsBucket, err)
		}
		return kv, nil
	}
}

// EffectMarks keeps marks of performed effects in a key-value bucket
// (EffectsBucket): the key of an effect is its own key hashed (effect keys
// may hold any character a key cannot), the value the engine that
// performed it. It implements runner.Marks.
type EffectMarks struct {
	KV jetstream.KeyValue
	// Engine names this engine in its marks, for whoever reads the bucket.
	Engine string
}

// MarkKey returns the bucket key of the effect with key: "e." and the
// base64url encoding of the first 18 bytes of its SHA-256.
func MarkKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "e." + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Mark records that the effect with key was performed.
func (m *EffectMarks) Mark(ctx context.Context, key string) error {
	if _, err := m.KV.Put(ctx, MarkKey(key), []byte(m.Engine)); err != nil {
		return fmt.Errorf("mark effect %s performed: %w", key, err)
	}
	return nil
}

// Marked reports whether the effect with key was marked performed within
// the bucket's TTL.
func (m *EffectMarks) Marked(ctx context.Context, key string) (bool, error) {
	_, err := m.KV.Get(ctx, MarkKey(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	}
	return false, fmt.Errorf("read mark of effect %s: %w", key, err)
}
