package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/internal/syncbuf"
)

// TestFindConfig: --config, else $HERALD_CONFIG, else ./herald.yaml, else
// the defaults; every verb and herald serve look the same way.
func TestFindConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")
	if got := findConfig(""); got != (configFile{}) {
		t.Errorf("nothing: %+v, want the defaults", got)
	}
	if got, want := findConfig("").String(), "the defaults (no --config, HERALD_CONFIG or ./herald.yaml)"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
	if err := os.WriteFile("herald.yaml", []byte("workers: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := findConfig(""); got != (configFile{Path: "herald.yaml"}) {
		t.Errorf("./herald.yaml: %+v", got)
	}
	t.Setenv(envConfig, "/etc/herald/herald.yaml")
	if got := findConfig(""); got != (configFile{Path: "/etc/herald/herald.yaml", From: envConfig}) {
		t.Errorf("HERALD_CONFIG wins over ./herald.yaml: %+v", got)
	}
	if got, want := findConfig("").String(), "/etc/herald/herald.yaml, named by HERALD_CONFIG"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
	if got := findConfig("other.yaml"); got != (configFile{Path: "other.yaml", From: "--config"}) {
		t.Errorf("--config wins: %+v", got)
	}
	if _, err := findConfig("").load(); err == nil || !strings.HasPrefix(err.Error(), "HERALD_CONFIG: read config: open /etc/herald/herald.yaml") {
		t.Errorf("a missing HERALD_CONFIG file: %v", err)
	}
}

// TestConfigFlagFor: the banner tells the other verbs --config only when
// they would not find serve's configuration by themselves.
func TestConfigFlagFor(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")
	other := filepath.Join(dir, "conf", "my herald.yaml")
	for _, p := range []string{"herald.yaml", other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		env  string
		file configFile
		want string
	}{
		{"defaults", "", configFile{}, ""},
		{"./herald.yaml found", "", configFile{Path: "herald.yaml"}, ""},
		{"--config herald.yaml", "", configFile{Path: "herald.yaml", From: "--config"}, ""},
		{"--config ./herald.yaml by its absolute path", "", configFile{Path: filepath.Join(dir, "herald.yaml"), From: "--config"}, ""},
		{"--config elsewhere", "", configFile{Path: other, From: "--config"}, "--config '" + other + "'"},
		{"HERALD_CONFIG", other, configFile{Path: other, From: envConfig}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envConfig, tt.env)
			if got := configFlagFor(tt.file); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVerbsReadServesConfig: publish, profile, dead and outbox, given no
// --config, reach the NATS of the herald.yaml in the working directory, or
// of the file $HERALD_CONFIG names.
func TestVerbsReadServesConfig(t *testing.T) {
	h := startHerald(t, "../../examples/newsletter-double-opt-in")
	events, err := filepath.Abs(publishFile)
	if err != nil {
		t.Fatal(err)
	}
	_, listen, _ := strings.Cut(h.natsURL, "://")
	yaml := "nats:\n  listen: " + listen + "\nemail:\n  outbox: mail\n"
	t.Setenv("NATS_URL", closedURL(t)) // the configuration wins over it

	t.Run("./herald.yaml", func(t *testing.T) {
		t.Setenv(envConfig, "")
		dir := t.TempDir()
		t.Chdir(dir)
		if err := os.WriteFile("herald.yaml", []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := run(t, "", "publish", events)
		if code != exitFailed || stdout != sentOnce(events) {
			t.Errorf("publish: exit code %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout, exitFailed, sentOnce(events), stderr)
		}
		if code, stdout, stderr := run(t, "", "dead", "list"); code != exitOK || stdout != "No dead letters.\n" {
			t.Errorf("dead list: exit code %d, stdout %q; stderr:\n%s", code, stdout, stderr)
		}
		if code, stdout, _ := run(t, "", "outbox"); code != exitOK || !strings.Contains(stdout, "mail does not exist yet") {
			t.Errorf("outbox: exit code %d, stdout %q, want the folder of herald.yaml", code, stdout)
		}
	})
	t.Run("HERALD_CONFIG", func(t *testing.T) {
		t.Chdir(t.TempDir())
		t.Setenv(envConfig, writeConfig(t, yaml))
		code, stdout, stderr := run(t, "", "publish", events)
		if code != exitFailed || stdout != sentTwice(events) {
			t.Errorf("publish: exit code %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout, exitFailed, sentTwice(events), stderr)
		}
		eventually(t, "the profile", func() bool { return h.attribute("paula-42", "newsletterAgreement") == "confirmation" })
		if code, stdout, stderr := run(t, "", "profile", "paula-42"); code != exitOK || !strings.HasPrefix(stdout, "Profile paula-42\n") {
			t.Errorf("profile: exit code %d, stdout %q; stderr:\n%s", code, stdout, stderr)
		}
	})
}

// TestUnreachableNATS: the error names the URL tried, where it came from,
// and what to do.
func TestUnreachableNATS(t *testing.T) {
	closed := closedURL(t)
	_, addr, _ := strings.Cut(closed, "://")
	dir := t.TempDir()
	t.Chdir(dir)
	envFile := writeConfig(t, "nats:\n  url: "+closed+"\n")
	tests := []struct {
		name     string
		herald   string // ./herald.yaml; none when ""
		env      map[string]string
		args     []string
		wantFrom string
		wantHint string
	}{
		{
			name: "./herald.yaml", herald: "nats:\n  listen: " + addr + "\n", args: []string{"publish", "-"},
			wantFrom: "from herald.yaml", wantHint: "start herald serve, or pass --server URL",
		},
		{
			name: "HERALD_CONFIG with nats.url", herald: "nats:\n  listen: 127.0.0.1:1\n", env: map[string]string{envConfig: envFile}, args: []string{"profile", "anna"},
			wantFrom: "from " + envFile + ", named by HERALD_CONFIG", wantHint: "is NATS running there? Check nats.url in " + envFile + ", or pass --server URL",
		},
		{
			name: "--server", herald: "nats:\n  listen: 127.0.0.1:1\n", args: []string{"dead", "list", "--server", closed},
			wantFrom: "from --server", wantHint: "is NATS running there? Start herald serve, or check --server",
		},
		{
			name: "--nats, the other name of --server", args: []string{"dead", "show", "--nats", closed, "1"},
			wantFrom: "from --server", wantHint: "is NATS running there? Start herald serve, or check --server",
		},
		{
			name: "$NATS_URL without a configuration file", env: map[string]string{"NATS_URL": closed}, args: []string{"publish", "-"},
			wantFrom: "from $NATS_URL", wantHint: "start herald serve, or pass --server URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{envConfig, "NATS_URL"} {
				t.Setenv(name, tt.env[name])
			}
			os.Remove("herald.yaml")
			if tt.herald != "" {
				if err := os.WriteFile("herald.yaml", []byte(tt.herald), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := run(t, "", tt.args...)
			verb := tt.args[0]
			if verb == "dead" {
				verb += " " + tt.args[1]
			}
			want := "herald " + verb + ": cannot reach NATS at " + closed + " (" + tt.wantFrom + "): no servers available for connection; " + tt.wantHint + "\n"
			if code != exitFailed || stdout != "" || stderr != want {
				t.Errorf("exit code %d, stdout %q, stderr\n%s\nwant exit code %d, stderr\n%s", code, stdout, stderr, exitFailed, want)
			}
		})
	}

	t.Run("the defaults", func(t *testing.T) {
		os.Remove("herald.yaml")
		t.Setenv(envConfig, "")
		t.Setenv("NATS_URL", "")
		p, err := natsOptions(natsTarget{}, "herald test")
		if err != nil {
			t.Fatal(err)
		}
		if p.opts.URL != defaultNATSURL || p.from != "the defaults (no --config, HERALD_CONFIG or ./herald.yaml)" || p.hint != "start herald serve, or pass --config FILE or --server URL" {
			t.Errorf("plan %+v", p)
		}
	})
}

// serveInProcess runs herald serve with args in-process until the test
// ends, and returns its banner once it is printed.
func serveInProcess(t *testing.T, args ...string) string {
	t.Helper()
	banner, refused := startServe(t, args...)
	if refused != "" {
		t.Fatalf("herald serve stopped before it was ready:\n%s", refused)
	}
	return banner
}

// startServe runs herald serve with args in-process until the test ends.
// It returns the banner once it is printed or, when herald serve stops
// before that with an error (a configuration it refuses), what it
// printed, as a terminal shows standard output and standard error.
func startServe(t *testing.T, args ...string) (banner, refused string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr, both syncbuf.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: io.MultiWriter(&stdout, &both), stderr: io.MultiWriter(&stderr, &both), ctx: ctx}
	done := make(chan int, 1)
	go func() { done <- c.main(append([]string{"serve"}, args...)) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Press Ctrl-C") {
		select {
		case code := <-done:
			cancel()
			if code == exitOK {
				t.Fatalf("herald serve stopped without an error before it was ready:\n%s", both.String())
			}
			return "", both.String()
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("herald serve: exit code %d; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(time.Minute):
			t.Errorf("herald serve did not stop")
		}
	})
	return stdout.String(), ""
}

// TestServeBanner: the banner's commands reach this Herald: nats pub with
// its server's address, herald publish and herald outbox with --config
// when they would not find the configuration by themselves.
func TestServeBanner(t *testing.T) {
	rules, err := filepath.Abs("../../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")
	cfg := filepath.Join(dir, "conf", "serve.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "data_dir: data\nrules: [" + rules + "]\nnats: {listen: 127.0.0.1:-1, fsync: false}\nhttp: {listen: 127.0.0.1:0, base_url: http://links.example.com}\nlog: {level: error}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	banner := serveInProcess(t, "--config", cfg)
	ports := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	got := ports.ReplaceAllString(banner, "127.0.0.1:PORT")
	want := `Herald is running.
  NATS     nats://127.0.0.1:PORT (embedded, store data/nats, fsync off)
  events   publish JSON events to herald.events.> (nats pub -s nats://127.0.0.1:PORT herald.events.web '{...}', or herald publish --config ` + cfg + ` FILE.jsonl)
  HTTP     http://127.0.0.1:PORT (signed links under http://links.example.com/l/, metrics at /metrics)
  email    outbox data/outbox (read it with herald outbox --config ` + cfg + `)
  rules    7 rules from [` + rules + `]
Press Ctrl-C to stop; send SIGHUP to reload the rules.
`
	if got != want {
		t.Errorf("banner:\n%s\nwant:\n%s", got, want)
	}
}

// TestServeFindsConfig: herald serve without --config reads
// $HERALD_CONFIG's file, else ./herald.yaml; a broken one stops it before
// anything starts.
func TestServeFindsConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(envConfig, "")
	if err := os.WriteFile("herald.yaml", []byte("nats:\n  lissen: 127.0.0.1:4222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "", "serve")
	if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, `herald.yaml:2: unknown field "lissen"`) {
		t.Errorf("./herald.yaml: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Setenv(envConfig, "missing.yaml")
	code, _, stderr = run(t, "", "serve")
	if want := "HERALD_CONFIG: read config: open missing.yaml: no such file or directory\n"; code != exitUsage || stderr != want {
		t.Errorf("HERALD_CONFIG: exit code %d, stderr %q, want %q", code, stderr, want)
	}
}

// TestReplayFindsConfig: herald replay checks webhook hosts against the
// configuration it finds as herald serve does.
func TestReplayFindsConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")
	rules := "rules:\n  - name: crm\n    on: order.paid\n    do:\n      - webhook:\n          url: https://crm.example.com/hooks/herald\n"
	for name, data := range map[string]string{
		"rules.yaml":   rules,
		"events.jsonl": `{"action":"order.paid","time":"2026-11-28T10:00:00Z","uuid":"u1"}` + "\n",
		"allow.yaml":   "webhook:\n  allow_hosts: [crm.example.com]\n",
	} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"replay", "--rules", "rules.yaml", "--events", "events.jsonl"}
	code, _, stderr := run(t, "", args...)
	if code != exitUsage || !strings.Contains(stderr, `host "crm.example.com" is not in webhook.allow_hosts`) {
		t.Errorf("no configuration: exit code %d, stderr %q", code, stderr)
	}
	t.Setenv(envConfig, "allow.yaml")
	if code, stdout, stderr := run(t, "", args...); code != exitOK || !strings.Contains(stdout, "webhook POST https://crm.example.com/hooks/herald") {
		t.Errorf("HERALD_CONFIG: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Setenv(envConfig, "")
	if err := os.Rename("allow.yaml", "herald.yaml"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "", args...); code != exitOK {
		t.Errorf("./herald.yaml: exit code %d, stderr %q", code, stderr)
	}
}
