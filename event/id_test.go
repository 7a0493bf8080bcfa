package event

import (
	"strings"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	seen := make(map[string]bool)
	prev := ""
	for i := range 1000 {
		// Two ids per millisecond: unique, and sorted across milliseconds.
		id := NewID(at.Add(time.Duration(i/2) * time.Millisecond))
		if len(id) != IDLen {
			t.Fatalf("NewID = %q, %d characters, want %d", id, len(id), IDLen)
		}
		if strings.Trim(id, crockford) != "" {
			t.Fatalf("NewID = %q, want only characters of %q", id, crockford)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
		if i%2 == 0 && id <= prev {
			t.Errorf("NewID not sorted by time: %q after %q", id, prev)
		}
		prev = max(prev, id)
	}
}

func TestNewIDTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string // the time part, the first 10 characters
	}{
		{time.UnixMilli(0), "0000000000"},
		{time.UnixMilli(1), "0000000001"},
		{time.UnixMilli(32), "0000000010"},
		{time.UnixMilli(-5), "0000000000"},                           // before 1970
		{time.UnixMilli(1<<48 - 1), "7ZZZZZZZZZ"},                    // the last ULID millisecond
		{time.Date(10890, 1, 1, 0, 0, 0, 0, time.UTC), "7ZZZZZZZZZ"}, // after it
		{time.UnixMilli(1469918176385), "01ARYZ6S41"},                // the example of the ULID specification
	}
	for _, tt := range tests {
		for name, id := range map[string]string{"NewID": NewID(tt.t), "DeriveID": DeriveID(tt.t, "x")} {
			if id[:10] != tt.want {
				t.Errorf("%s(%v) = %q, want time part %q", name, tt.t, id, tt.want)
			}
		}
	}
}

func TestDeriveID(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	id := DeriveID(at, "01JD0000000000000000000000", "doi-request")
	if id != DeriveID(at, "01JD0000000000000000000000", "doi-request") {
		t.Errorf("DeriveID is not deterministic")
	}
	if len(id) != IDLen || strings.Trim(id, crockford) != "" {
		t.Errorf("DeriveID = %q, want a ULID", id)
	}
	if id[:10] != NewID(at)[:10] {
		t.Errorf("DeriveID = %q, want the time part of NewID %q", id, NewID(at))
	}
	differ := [][]string{
		{"01JD0000000000000000000000", "doi-reques"},
		{"01JD0000000000000000000000"},
		{"01JD0000000000000000000000", "doi-request", ""},
		{},
		{""},
		{"ab", "c"},
		{"a", "bc"},
		{"abc"},
	}
	seen := map[string][]string{id: {"01JD0000000000000000000000", "doi-request"}}
	for _, parts := range differ {
		d := DeriveID(at, parts...)
		if other, ok := seen[d]; ok {
			t.Errorf("DeriveID(%q) = DeriveID(%q) = %q", parts, other, d)
		}
		seen[d] = parts
		if d[:10] != id[:10] {
			t.Errorf("DeriveID(%q) = %q, want time part %q", parts, d, id[:10])
		}
	}
	if DeriveID(at.Add(time.Millisecond), "x") <= DeriveID(at, "x") {
		t.Errorf("DeriveID does not sort by time")
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID(receipt)
	}
}
