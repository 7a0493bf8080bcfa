package collector

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxBuckets bounds the token buckets one table holds. A table that is
// full drops an arbitrary bucket for a new one: that client starts afresh,
// which weakens its limit but never refuses anyone.
const maxBuckets = 1 << 16

// limits holds the token buckets of the write keys and, separately, of
// the client addresses.
type limits struct {
	keys, clients *buckets
}

func newLimits(r float64, burst int) *limits {
	return &limits{keys: newBuckets(r, burst), clients: newBuckets(r, burst)}
}

// take takes a token for a request of the write key from the client at
// now, and returns 0, or how long to wait when either bucket is empty;
// then it takes nothing. A client refused by its own bucket thus does not
// use up its site's.
func (l *limits) take(key, client string, now time.Time) time.Duration {
	c := l.clients.reserve(client, now)
	if d := c.DelayFrom(now); d > 0 {
		c.CancelAt(now)
		return d
	}
	k := l.keys.reserve(key, now)
	if d := k.DelayFrom(now); d > 0 {
		k.CancelAt(now)
		c.CancelAt(now)
		return d
	}
	return 0
}

// buckets is a table of token buckets by name. Full buckets, which are
// just like new ones, are dropped from time to time, so the table holds
// only the buckets of names seen lately.
type buckets struct {
	limit rate.Limit
	burst int
	every time.Duration // how often full buckets are dropped

	mu        sync.Mutex
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

func newBuckets(r float64, burst int) *buckets {
	// An empty bucket is full again after burst/r seconds.
	every := max(time.Duration(float64(burst)/r*float64(time.Second)), time.Second)
	return &buckets{limit: rate.Limit(r), burst: burst, every: every, m: make(map[string]*rate.Limiter)}
}

// reserve reserves a token of the bucket name at now, making the bucket
// when missing.
func (b *buckets) reserve(name string, now time.Time) *rate.Reservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) >= b.every || now.Before(b.lastSweep) {
		b.sweep(now)
	}
	lim := b.m[name]
	if lim == nil {
		if len(b.m) >= maxBuckets {
			for k := range b.m {
				delete(b.m, k)
				break
			}
		}
		lim = rate.NewLimiter(b.limit, b.burst)
		b.m[name] = lim
	}
	// Under b.mu, so that a sweep cannot drop the bucket in between.
	return lim.ReserveN(now, 1)
}

// sweep drops the full buckets.
func (b *buckets) sweep(now time.Time) {
	b.lastSweep = now
	full := float64(b.burst)
	for k, lim := range b.m {
		if lim.TokensAt(now) >= full {
			delete(b.m, k)
		}
	}
}

// len returns how many buckets the table holds.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// clientAddr returns the address a request's client is limited by: its
// IP address, from the last X-Forwarded-For address when trustProxy is
// set and it holds one, else from the connection. IPv6 addresses count by
// their /64 network, which one customer usually holds whole.
func clientAddr(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if a, ok := forwardedFor(r.Header.Values("X-Forwarded-For")); ok {
			return limitAddr(a)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return limitAddr(a)
	}
	return shorten(host)
}

// limitAddr returns the name of an address's bucket.
func limitAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// forwardedFor returns the last address in X-Forwarded-For header values:
// the one the trusted proxy added.
func forwardedFor(values []string) (netip.Addr, bool) {
	if len(values) == 0 {
		return netip.Addr{}, false
	}
	list := values[len(values)-1]
	last := strings.TrimSpace(list[strings.LastIndexByte(list, ',')+1:])
	a, err := netip.ParseAddr(last)
	if err != nil {
		return netip.Addr{}, false
	}
	return a, true
}
