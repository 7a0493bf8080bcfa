package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Events without a time take the previous event's time; those before the
// first event with a time take --start, by default that first time.
func TestReplayEventsWithoutTime(t *testing.T) {
	const rules = "../../examples/newsletter-double-opt-in"
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"default start", nil, "testdata/replay-untimed.golden"},
		{"given start", []string{"--start", "2026-11-28T08:00:00Z"}, "testdata/replay-untimed-start.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"replay", "--rules", rules, "--events", "testdata/untimed.jsonl"}, tt.args...)
			code, stdout, stderr := run(t, "", args...)
			if code != exitOK {
				t.Errorf("exit code %d; stderr:\n%s", code, stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}

	// From standard input, which cannot be read twice, the clock starts at
	// the current time.
	before := time.Now().UTC().Truncate(time.Second)
	in := `{"id":"01KB2000000000000000000001","action":"page.visit","label":"Home","uuid":"lea-0001"}` + "\n"
	code, stdout, stderr := run(t, in, "replay", "--format", "json", "--rules", rules, "--events", "-")
	if code != exitOK {
		t.Fatalf("stdin: exit code %d; stderr:\n%s", code, stderr)
	}
	var first struct {
		Event struct{ Time time.Time } `json:"event"`
	}
	if err := json.NewDecoder(strings.NewReader(stdout)).Decode(&first); err != nil {
		t.Fatal(err)
	}
	if got := first.Event.Time; got.Before(before) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("stdin: an event without a time replays at %v, want the current time", got)
	}

	if code, _, stderr := run(t, "", "replay", "--rules", rules, "--events", "-", "--start", "yesterday"); code != exitUsage || !strings.Contains(stderr, `--start "yesterday" is not an RFC 3339 time`) {
		t.Errorf("bad --start: exit code %d; stderr:\n%s", code, stderr)
	}
}
