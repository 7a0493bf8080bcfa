package natsbus

import (
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"nats://127.0.0.1:4222":           "nats://127.0.0.1:4222",
		"nats://user:pw@host:4222":        "nats://redacted@host:4222",
		"tls://token@host:4222":           "tls://redacted@host:4222",
		"user:p@ss@host:4222":             "redacted@host:4222",
		"nats://a:1, nats://u:p@b:2":      "nats://a:1,nats://redacted@b:2",
		"wss://u:p%40w@host:443/path?x=1": "wss://redacted@host:443/path?x=1",
		// Everything up to the last @ goes, even past the host: better a
		// mangled URL in a message than a leaked password.
		"nats://host:4222/?email=a@example": "nats://redacted@example",
	}
	for in, want := range tests {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReconnectDelay(t *testing.T) {
	tests := []struct {
		attempts int
		base     time.Duration
	}{
		{0, 250 * time.Millisecond},
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{6, 8 * time.Second},
		{7, 10 * time.Second},
		{1000, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 20 {
			if d := reconnectDelay(tt.attempts); d < tt.base || d > tt.base+tt.base/5 {
				t.Errorf("reconnectDelay(%d) = %s, want %s plus up to a fifth", tt.attempts, d, tt.base)
			}
		}
	}
}
