package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) {
	// Every verb reads the file $HERALD_CONFIG names; each test sets what
	// it wants.
	os.Unsetenv(envConfig)
	os.Exit(m.Run())
}

// run runs the CLI in-process and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr}
	code := c.main(args)
	return code, stdout.String(), stderr.String()
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test ./cmd/herald -update writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/herald -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden runs the CLI as users do and compares everything it prints,
// with its exit code, with golden files: the examples' replays live beside
// the examples, for marketers to read.
func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		golden string
	}{
		{"lint examples", []string{"lint", "../../examples/..."}, "", 0, "testdata/lint-examples.golden"},
		{"lint bad file", []string{"lint", "../../rules/testdata/typos.bad.yaml"}, "", 1, "testdata/lint-typos.golden"},
		{"replay double opt-in", []string{"replay", "--rules", "../../examples/newsletter-double-opt-in", "--events", "../../examples/newsletter-double-opt-in/events.jsonl"}, "", 0, "../../examples/newsletter-double-opt-in/replay.golden"},
		{"replay single opt-in", []string{"replay", "--rules", "../../examples/newsletter-single-opt-in", "--events", "../../examples/newsletter-single-opt-in/events.jsonl"}, "", 0, "../../examples/newsletter-single-opt-in/replay.golden"},
		{"replay json", []string{"replay", "--format", "json", "--rules", "../../examples/newsletter-double-opt-in", "--events", "../../examples/newsletter-double-opt-in/events.jsonl"}, "", 0, "testdata/replay-double-opt-in.json.golden"},
		{"replay invalid lines from stdin", []string{"replay", "--rules", "../../examples/newsletter-double-opt-in", "--events", "-"}, mustRead(t, "testdata/invalid.jsonl"), 1, "testdata/replay-invalid.golden"},
		{"replay with profiles", []string{"replay", "--rules", "../../examples/newsletter-double-opt-in", "--events", "testdata/campaign.jsonl", "--profiles", "testdata/profiles.jsonl"}, "", 0, "testdata/replay-profiles.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			golden(t, filepath.FromSlash(tt.golden), stdout)
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"lint"}, "Usage: herald lint"},
		{[]string{"lint", "--nope"}, "flag provided but not defined"},
		{[]string{"lint", "does-not-exist.yaml"}, "no such file or directory"},
		{[]string{"replay", "--events", "x.jsonl"}, "--rules is required"},
		{[]string{"replay", "--rules", "../../examples/newsletter-double-opt-in"}, "--events is required"},
		{[]string{"replay", "--rules", "../../examples/newsletter-double-opt-in", "--events", "-", "--format", "xml"}, `--format "xml"`},
		{[]string{"replay", "--rules", "../../rules/testdata/typos.bad.yaml", "--events", "-"}, `typos.bad.yaml:4:5: rule "doi-request": unknown field "iff"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := run(t, "", "version"); code != 0 || !strings.HasPrefix(out, "herald ") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ := run(t, "", "help")
	if code != 0 {
		t.Errorf("help exit code %d", code)
	}
	for _, cmd := range commands() {
		if !strings.Contains(out, fmt.Sprintf("  %-9s %s", cmd.name, cmd.summary)) {
			t.Errorf("help does not list %s", cmd.name)
		}
	}
}
