package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// Flags may come before, after or between a command's arguments; -- ends
// them.
func TestParseInterleavesFlagsAndArguments(t *testing.T) {
	tests := []struct {
		args     []string
		config   string
		verbose  bool
		wantArgs []string
	}{
		{[]string{"--config", "c.yaml", "a", "b"}, "c.yaml", false, []string{"a", "b"}},
		{[]string{"a", "--config", "c.yaml", "b"}, "c.yaml", false, []string{"a", "b"}},
		{[]string{"a", "b", "-v", "--config=c.yaml"}, "c.yaml", true, []string{"a", "b"}},
		{[]string{"a", "-", "-v"}, "", true, []string{"a", "-"}},
		{[]string{"a", "--", "--config", "c.yaml", "-v"}, "", false, []string{"a", "--config", "c.yaml", "-v"}},
		{[]string{"-v", "--", "-a"}, "", true, []string{"-a"}},
		{[]string{"a", "--"}, "", false, []string{"a"}},
		{nil, "", false, []string{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			config := fs.String("config", "", "")
			verbose := fs.Bool("v", false, "")
			if code, ok := parse(fs, tt.args); !ok {
				t.Fatalf("parse stopped with exit code %d", code)
			}
			if *config != tt.config || *verbose != tt.verbose || !slices.Equal(fs.Args(), tt.wantArgs) {
				t.Errorf("config %q, v %v, args %q; want %q, %v, %q", *config, *verbose, fs.Args(), tt.config, tt.verbose, tt.wantArgs)
			}
		})
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if code, ok := parse(fs, []string{"a", "--nope"}); ok || code != exitUsage {
		t.Errorf("an unknown flag after an argument: %d %v, want %d false", code, ok, exitUsage)
	}
	if code, ok := parse(fs, []string{"a", "-h"}); ok || code != exitOK {
		t.Errorf("-h after an argument: %d %v, want %d false", code, ok, exitOK)
	}
}

// Every command reads flags given after its arguments.
func TestFlagsAfterArguments(t *testing.T) {
	// lint PATH --config FILE prints what lint --config FILE PATH does.
	code, stdout, stderr := run(t, "", "lint", "../../examples/...", "--config", "../../herald.yaml")
	if code != exitOK {
		t.Errorf("lint PATH --config FILE: exit code %d; stderr:\n%s", code, stderr)
	}
	golden(t, "testdata/lint-examples.golden", stdout)

	// The configuration named after the path is read: its typos are
	// reported (and the golden file shows how).
	code, stdout, stderr = run(t, "", "lint", "../../examples/newsletter-double-opt-in", "--config", "testdata/config-typos.yaml")
	if code != exitUsage || stdout != "" {
		t.Errorf("lint PATH --config BAD: exit code %d, stdout %q", code, stdout)
	}
	golden(t, "testdata/config-typos.golden", stderr)

	closed := closedURL(t)
	unknownField := writeConfig(t, "nats:\n  url: nats://127.0.0.1:4222\n  bogus: 1\n")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"profile", "anna", "--nats", closed, "--recent", "0"}, exitUsage, "--recent 0, --scan 1000: both must be at least 1"},
		{[]string{"profile", "anna", "--config", unknownField}, exitUsage, unknownField + `:3: unknown field "bogus" in nats; known fields: `},
		{[]string{"profile", "anna", "--nats", closed}, exitFailed, "herald profile: "},
		{[]string{"profile", "anna", "--nats", closed, "extra"}, exitUsage, "Usage: herald profile"},
		{[]string{"publish", "-", "--config", unknownField}, exitUsage, unknownField + `:3: unknown field "bogus"`},
		{[]string{"dead", "list", "--config", unknownField}, exitUsage, unknownField + `:3: unknown field "bogus"`},
		{[]string{"lint", "--", "--config"}, exitUsage, "--config: no such file or directory"},
		{[]string{"replay", "extra", "--events", "-"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"serve", "extra", "--config", unknownField}, exitUsage, `herald serve: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
		})
	}
}
