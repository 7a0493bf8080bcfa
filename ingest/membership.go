package ingest

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// membership announces this engine in the engines bucket
// (natsbus.EnginesBucket) and follows the others. Each engine has a key it
// puts every beat; the bucket's TTL makes the server remove the key of an
// engine that stopped beating, with a marker the watch sees, so no engine
// judges another by its own clock. An engine stopping cleanly deletes its
// key at once.
type membership struct {
	kv   jetstream.KeyValue
	name string
	beat time.Duration
	log  *slog.Logger
}

// engineKey returns the bucket key of an engine name: the name itself when
// it is made of [A-Za-z0-9_-], else "b64." and its base64url encoding.
func engineKey(name string) string {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "b64." + base64.RawURLEncoding.EncodeToString([]byte(name))
		}
	}
	return name
}

// run beats and sends the engines known on views each time the set
// changes, sorted, this engine always among them, until ctx ends. views
// holds the latest set only: an older one not yet received is replaced.
//
// An engine that left cleanly (its key deleted) leaves the set at once. One
// whose key ran out stays for two more beats, and for as long as this
// engine's own beats fail and two beats after: when the bucket's leader
// changes, or this engine cannot reach it, keys run out for want of beats
// that could not be written, and their engines beat again within a beat.
func (m *membership) run(ctx context.Context, views chan []string) {
	t := time.NewTicker(m.beat)
	defer t.Stop()
	var failedAt time.Time // the latest beat that failed
	beat := func() {
		_, err := m.kv.Put(ctx, engineKey(m.name), []byte(m.name))
		switch {
		case err != nil && ctx.Err() == nil:
			if failedAt.IsZero() {
				m.log.Warn("announce engine failed; other engines may take its partitions until it works again", "engine", m.name, "err", err)
			}
			failedAt = time.Now()
		case err == nil && !failedAt.IsZero() && time.Since(failedAt) > 2*m.beat:
			failedAt = time.Time{}
			m.log.Info("announcing engine again", "engine", m.name)
		}
	}
	beat()
	for ctx.Err() == nil {
		w, err := m.kv.WatchAll(ctx)
		if err != nil {
			m.log.Debug("watch engines", "err", err)
			select {
			case <-ctx.Done():
			case <-t.C:
				beat()
			}
			continue
		}
		m.follow(ctx, w, t.C, func() bool {
			beat()
			return failedAt.IsZero()
		}, views)
		_ = w.Stop()
	}
}

// follow keeps the set of engines from w's updates, beating on every tick,
// until ctx ends or w stops. beat reports whether this engine's beats work.
func (m *membership) follow(ctx context.Context, w jetstream.KeyWatcher, tick <-chan time.Time, beat func() bool, views chan []string) {
	live := make(map[string]string) // key -> engine name
	type gone struct {
		name string
		at   time.Time
	}
	expired := make(map[string]gone) // keys that ran out, not yet confirmed
	confirm := 2 * m.beat
	ready := false
	var last []string
	send := func() {
		v := []string{m.name}
		for _, name := range live {
			v = append(v, name)
		}
		for _, g := range expired {
			v = append(v, g.name)
		}
		slices.Sort(v)
		v = slices.Compact(v)
		if slices.Equal(v, last) {
			return
		}
		last = v
		for {
			select {
			case views <- v:
				return
			default:
				select {
				case <-views: // replace the older set not yet taken
				default:
				}
			}
		}
	}
	working := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			now := time.Now()
			if !beat() {
				working = now
			}
			for k, g := range expired {
				if now.Sub(g.at) >= confirm && now.Sub(working) >= confirm {
					delete(expired, k)
				}
			}
			if ready {
				send()
			}
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the bucket's keys so far have all come
				ready = true
				send()
				continue
			}
			switch k := e.Key(); e.Operation() {
			case jetstream.KeyValuePut:
				live[k] = string(e.Value())
				delete(expired, k)
			case jetstream.KeyValueDelete:
				delete(live, k) // left
				delete(expired, k)
			default: // ran out
				if name, ok := live[k]; ok {
					expired[k] = gone{name: name, at: time.Now()}
					delete(live, k)
				}
			}
			if ready {
				send()
			}
		}
	}
}

// leave deletes this engine's key, so that the others take over its
// partitions without waiting for the key to run out.
func (m *membership) leave(ctx context.Context) {
	if err := m.kv.Delete(ctx, engineKey(m.name)); err != nil {
		m.log.Warn("leave engines; the others take over once this engine's key runs out", "engine", m.name, "err", err)
	}
}

// assign returns, for each of n slots (the partitions, then the router),
// the engine among engines that takes it, "" for none when there are no
// engines. Every engine computes the same answer from the same set.
//
// Each slot goes to the engine ranking highest for it (rendezvous
// hashing) among those with room left, room being at most ceil(n /
// engines) slots each: the load is even, and when an engine joins or
// leaves, mostly the slots it takes or gives move.
func assign(engines []string, n int) []string {
	out := make([]string, n)
	if len(engines) == 0 {
		return out
	}
	room := (n + len(engines) - 1) / len(engines)
	load := make(map[string]int, len(engines))
	for slot := range n {
		best, bestScore := "", uint64(0)
		for _, e := range engines {
			if load[e] >= room {
				continue
			}
			s := rank(e, slot)
			if best == "" || s > bestScore || s == bestScore && e < best {
				best, bestScore = e, s
			}
		}
		out[slot] = best
		load[best]++
	}
	return out
}

// rank scores engine for slot.
func rank(engine string, slot int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(engine))
	var b [9]byte
	binary.BigEndian.PutUint64(b[1:], uint64(slot))
	_, _ = h.Write(b[:])
	// FNV spreads similar inputs poorly; a finalizer (splitmix64) mixes
	// its bits.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
