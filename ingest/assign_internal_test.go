package ingest

import (
	"fmt"
	"slices"
	"testing"
)

// Every engine computes the same assignment from the same engines, in any
// order; the load is even; and an engine joining or leaving moves few
// slots.
func TestAssign(t *testing.T) {
	const slots = 13 // 12 partitions and the router
	load := func(owners []string) map[string]int {
		m := map[string]int{}
		for _, o := range owners {
			m[o]++
		}
		return m
	}
	for n := 1; n <= 6; n++ {
		var engines []string
		for i := range n {
			engines = append(engines, fmt.Sprintf("herald-%02x", i*37))
		}
		got := assign(engines, slots)
		rev := slices.Clone(engines)
		slices.Reverse(rev)
		if again := assign(rev, slots); !slices.Equal(got, again) {
			t.Errorf("%d engines: assignment depends on their order:\n%v\n%v", n, got, again)
		}
		room := (slots + n - 1) / n
		for e, l := range load(got) {
			if !slices.Contains(engines, e) {
				t.Errorf("%d engines: slot assigned to %q, not an engine", n, e)
			}
			if l > room {
				t.Errorf("%d engines: %s takes %d slots, more than %d", n, e, l, room)
			}
		}
		if n == 1 {
			continue
		}
		// The last engine leaves: only its slots, and at most a few
		// others to even the load out, move.
		fewer := assign(engines[:n-1], slots)
		moved := 0
		for i := range got {
			if got[i] != fewer[i] && got[i] != engines[n-1] {
				moved++
			}
		}
		if moved > room {
			t.Errorf("%d engines, one leaving: %d slots of the others moved, want at most %d\n%v\n%v", n, moved, room, got, fewer)
		}
	}
	if got := assign(nil, 3); !slices.Equal(got, []string{"", "", ""}) {
		t.Errorf("no engines: %q", got)
	}
}

func TestEngineKey(t *testing.T) {
	for name, want := range map[string]string{
		"herald-1a2b": "herald-1a2b",
		"web 1":       "b64.d2ViIDE",
		"eu.web":      "b64.ZXUud2Vi",
	} {
		if got := engineKey(name); got != want {
			t.Errorf("engineKey(%q) = %q, want %q", name, got, want)
		}
	}
}
