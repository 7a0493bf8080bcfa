package collector

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestBucketsEvictFull(t *testing.T) {
	b := newBuckets(1, 2) // full again 2s after it was empty
	for i := range 1000 {
		if d := b.reserve("client-"+strconv.Itoa(i), t0).DelayFrom(t0); d != 0 {
			t.Fatalf("first request of a client waits %v", d)
		}
	}
	b.reserve("busy", t0)
	b.reserve("busy", t0)
	if n := b.len(); n != 1001 {
		t.Fatalf("%d buckets, want 1001", n)
	}
	// 1.5s later no bucket is full yet; busy takes another token.
	b.reserve("busy", t0.Add(1500*time.Millisecond))
	if n := b.len(); n != 1001 {
		t.Fatalf("%d buckets after 1.5s, want 1001", n)
	}
	// 2.5s later the clients' buckets are full again and dropped; busy's
	// (1.5 tokens) is not.
	at := t0.Add(2500 * time.Millisecond)
	b.reserve("other", at)
	if n := b.len(); n != 2 {
		t.Fatalf("%d buckets after 2.5s, want 2 (busy, other)", n)
	}
	// busy is still limited: one token at once, the next in 0.5s. A new
	// bucket would have given two.
	if d := b.reserve("busy", at).DelayFrom(at); d != 0 {
		t.Fatalf("busy waits %v", d)
	}
	if d := b.reserve("busy", at).DelayFrom(at); d != 500*time.Millisecond {
		t.Fatalf("busy waits %v for its second token, want 500ms", d)
	}
}

func TestBucketsBounded(t *testing.T) {
	b := newBuckets(1, 1)
	for i := range maxBuckets + 100 {
		b.reserve(strconv.Itoa(i), t0)
	}
	if n := b.len(); n != maxBuckets {
		t.Fatalf("%d buckets, want at most %d", n, maxBuckets)
	}
}

func TestTakeRefusesWithoutTaking(t *testing.T) {
	l := newLimits(1, 1)
	if d := l.take("k", "a", t0); d != 0 {
		t.Fatalf("first request waits %v", d)
	}
	// a is refused by its own bucket: k's bucket is untouched, but it is
	// empty too, so b is refused by k's; and b's bucket stays full.
	if d := l.take("k", "a", t0); d != time.Second {
		t.Fatalf("a waits %v, want 1s", d)
	}
	if d := l.take("k", "b", t0); d != time.Second {
		t.Fatalf("b waits %v, want 1s (the key's bucket)", d)
	}
	if d := l.take("k2", "b", t0); d != 0 {
		t.Fatalf("b to another key waits %v: its refused request took a token", d)
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		remote string
		xff    []string
		trust  bool
		want   string
	}{
		{"192.0.2.1:1234", nil, false, "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", nil, false, "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1234", nil, false, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:1234", nil, false, "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1234", nil, false, "fe80::/64"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, false, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, true, "198.51.100.7"},
		{"192.0.2.1:1234", []string{"203.0.113.1, 198.51.100.7"}, true, "198.51.100.7"},
		{"192.0.2.1:1234", []string{"203.0.113.1", "198.51.100.8 "}, true, "198.51.100.8"},
		{"192.0.2.1:1234", []string{"2001:db8::1"}, true, "2001:db8::/64"},
		{"192.0.2.1:1234", []string{"not an address"}, true, "192.0.2.1"},
		{"192.0.2.1:1234", []string{""}, true, "192.0.2.1"},
		{"pipe", nil, false, "pipe"},
	} {
		r := httptest.NewRequest("POST", "/v1/events", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, tc.trust); got != tc.want {
			t.Errorf("clientAddr(%q, %q, trust %v) = %q, want %q", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}
