package ingest

import (
	"fmt"
	"testing"
	"time"
)

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		n    uint64
		want time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{5, 16 * time.Second},
		{9, 256 * time.Second},
		{10, 5 * time.Minute},
		{1000, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("delivery ", tt.n), func(t *testing.T) {
			if got := defaultBackoff(tt.n); got != tt.want {
				t.Errorf("defaultBackoff(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{"short", "abc", 5, "abc"},
		{"cut", "abcdef", 3, "abc"},
		{"at a character boundary", "aé", 2, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := truncate(tt.s, tt.n); got != tt.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}
