package main

import "testing"

// The first hour with Herald: lint reports every problem of every file at
// its place, a value YAML cannot read included; it warns about parameters
// a template prints that the rule does not guarantee; and what lint
// passes runs: a tag given a list tags each element, and a missing
// parameter prints as nothing.
func TestFirstHour(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"lint", []string{"lint", "testdata/first-hour/..."}, exitFailed, "testdata/lint-first-hour.golden"},
		{"replay", []string{"replay", "--rules", "testdata/first-hour/thanks", "--events", "testdata/first-hour/thanks/events.jsonl"}, exitFailed, "testdata/replay-first-hour.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}
}
