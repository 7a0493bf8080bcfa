package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// publishFile holds two valid events, with ids, around an invalid one.
const publishFile = "testdata/publish-one-invalid.jsonl"

// sentOnce and sentTwice are what herald publish prints for publishFile,
// named file, sent once and then again.
func sentOnce(file string) string {
	return file + ":1: stored as HERALD_EVENTS #1 (id publish-test-0001)\n" +
		file + ":4: stored as HERALD_EVENTS #2 (id publish-test-0003)\n" +
		"3 lines: 2 stored, 0 duplicates (already stored within the duplicate window), 1 invalid, 0 failed\n"
}

func sentTwice(file string) string {
	return file + ":1: duplicate of HERALD_EVENTS #1 (id publish-test-0001), not stored again\n" +
		file + ":4: duplicate of HERALD_EVENTS #2 (id publish-test-0003), not stored again\n" +
		"3 lines: 0 stored, 2 duplicates (already stored within the duplicate window), 1 invalid, 0 failed\n"
}

// profileJSON is what herald profile --json prints.
type profileJSON struct {
	Record   *profile.Record `json:"record"`
	Activity []struct {
		ID     string `json:"id"`
		Action string `json:"action"`
	} `json:"activity"`
}

func TestPublishAndProfile(t *testing.T) {
	h := startHerald(t, "../../examples/newsletter-double-opt-in")
	url := h.natsURL

	code, stdout, stderr := run(t, "", "publish", "--nats", url, publishFile)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d (an invalid line); stderr:\n%s", code, exitFailed, stderr)
	}
	if want := publishFile + ":2: params.cart: objects are not allowed"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
	if stdout != sentOnce(publishFile) {
		t.Errorf("stdout %q, want %q", stdout, sentOnce(publishFile))
	}

	// The same ids again, within the duplicate window: NATS drops them,
	// and the summary says so.
	code, stdout, _ = run(t, "", "publish", "--nats", url, publishFile)
	if code != exitFailed || stdout != sentTwice(publishFile) {
		t.Errorf("publishing again: exit code %d, stdout %q, want %d and %q", code, stdout, exitFailed, sentTwice(publishFile))
	}

	eventually(t, "the profile", func() bool { return h.attribute("paula-42", "newsletterAgreement") == "confirmation" })

	t.Run("profile --json", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "--json", "paula-42")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		var got profileJSON
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		if got.Record == nil || got.Record.Profile == nil || got.Record.Profile.Email != "paula@example.com" || got.Record.Profile.Firstname != "Paula" {
			t.Fatalf("record %+v", got.Record)
		}
		if !got.Record.HasApplied("publish-test-0001") {
			t.Errorf("applied %v, want publish-test-0001 among them", got.Record.Applied)
		}
		// Stored once each, in order: the duplicates were not.
		var ids []string
		for _, ev := range got.Activity {
			ids = append(ids, ev.ID)
		}
		if want := []string{"publish-test-0001", "publish-test-0003"}; fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("activity %v, want %v", ids, want)
		}
	})

	t.Run("profile", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "paula-42")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"Profile paula-42\n",
			"  email      paula@example.com\n",
			"Recent activity (latest 2 in HERALD_EVENTS):\n",
			"  form.submit              Newsletter form\n",
			"  page.visit               Home\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout does not contain %q:\n%s", want, stdout)
			}
		}
	})

	// Regression: --json printed "No profile for …" before the JSON.
	t.Run("profile --json unknown", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "--json", "nobody-1")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		if string(got["record"]) != "null" || string(got["activity"]) != "[]" {
			t.Errorf("record %s, activity %s; want null and []", got["record"], got["activity"])
		}
		if !strings.HasPrefix(stdout, "{\n  \"record\": null,\n") {
			t.Errorf("stdout:\n%s", stdout)
		}
	})

	t.Run("profile unknown", func(t *testing.T) {
		code, stdout, _ := run(t, "", "profile", "--nats", url, "nobody-1")
		want := "No profile for nobody-1: no rule has changed it yet.\n\nRecent activity (latest 0 in HERALD_EVENTS):\n  none\n"
		if code != exitOK || stdout != want {
			t.Errorf("exit code %d, stdout:\n%s\nwant:\n%s", code, stdout, want)
		}
	})

	// --config reaches NATS as herald serve does; --nats wins over it, and
	// either wins over $NATS_URL.
	closed := closedURL(t)
	_, listen, _ := strings.Cut(url, "://")
	withURL := writeConfig(t, "nats:\n  url: "+url+"\n")
	withListen := writeConfig(t, "nats:\n  listen: "+listen+"\n")
	tests := []struct {
		name    string
		natsURL string // $NATS_URL
		args    []string
		reached bool // the test server, not the closed port
	}{
		{"nats.url wins over NATS_URL", closed, []string{"--config", withURL}, true},
		{"nats.listen wins over NATS_URL", closed, []string{"--config", withListen}, true},
		{"--nats wins over --config", url, []string{"--config", withURL, "--nats", closed}, false},
		{"NATS_URL without flags", url, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NATS_URL", tt.natsURL)
			args := append(append([]string{"publish"}, tt.args...), publishFile)
			code, stdout, stderr := run(t, "", args...)
			if code != exitFailed { // an invalid line, or no NATS
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
			}
			want := sentTwice(publishFile)
			if !tt.reached {
				want = ""
				if !strings.Contains(stderr, "cannot reach NATS at "+closed+" (from --server)") {
					t.Errorf("stderr %q, want a connection error for %s", stderr, closed)
				}
			}
			if stdout != want {
				t.Errorf("stdout %q, want %q; stderr:\n%s", stdout, want, stderr)
			}
		})
	}
}

func TestCheckSubject(t *testing.T) {
	tests := []struct {
		subject string
		want    string // the error, or "" for a good subject
	}{
		{"herald.events.cli", ""},
		{"herald.events.import.2026-11", "has more than the source after herald.events.: Herald adds each event's customer to the subject itself, and would read the next token as the customer of every event; name the source alone, such as herald.events.import"},
		{"herald.events.", "needs a token after herald.events."},
		{"herald.events", "not under herald.events."},
		{"herald.eventsx.web", "not under herald.events."},
		{"other.events.web", "not under herald.events."},
		{"", "not under herald.events."},
		{"herald.events.*", "has a wildcard"},
		{"herald.events.>", "has a wildcard"},
		{"herald.events.web.*", "has a wildcard"},
		{"herald.events.web.anna-7f3c", "has more than the source"},
		{"herald.events.we*b", "has a wildcard"},
		{"herald.events.a..b", "has an empty token"},
		{"herald.events.web.", "has an empty token"},
		{"herald.events.my web", "has a space"},
		{"herald.events.web\t", "has a space"},
		{"herald.events.web\n", "has a space"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			err := checkSubject(tt.subject)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %q, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPublishAndProfileUsageErrors(t *testing.T) {
	t.Setenv("NATS_URL", "")
	t.Setenv(config.EnvNATSPassword, "")
	t.Setenv(config.EnvNATSToken, "")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	unknownField := writeConfig(t, "nats:\n  url: nats://127.0.0.1:4222\n  bogus: 1\n")
	noCreds := writeConfig(t, "nats:\n  url: nats://127.0.0.1:4222\n  creds: "+filepath.Join(t.TempDir(), "none.creds")+"\n")
	closed := closedURL(t) // nothing is reached: these fail before connecting
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"publish", "--nats", closed, "--subject", "herald.events."}, `--subject "herald.events.": needs a token after herald.events.`},
		{[]string{"publish", "--nats", closed, "--subject", "herald.events.*"}, `--subject "herald.events.*": has a wildcard`},
		{[]string{"publish", "--nats", closed, "--subject", "herald.events.>"}, `--subject "herald.events.>": has a wildcard`},
		{[]string{"publish", "--nats", closed, "--subject", "herald.dead.x"}, `--subject "herald.dead.x": not under herald.events.`},
		{[]string{"publish", "--nats", closed, "a.jsonl", "b.jsonl"}, "Usage: herald publish"},
		{[]string{"publish", "--nats", closed, "testdata/publish-missing.jsonl"}, "no such file or directory"},
		{[]string{"publish", "--nope"}, "flag provided but not defined"},
		{[]string{"publish", "--nats", closed, "--retry", "0s", "-"}, "--retry 0s: must be more than 0"},
		{[]string{"publish", "--config", missing}, "read config"},
		{[]string{"publish", "--config", unknownField, "-"}, unknownField + `:3: unknown field "bogus"`},
		{[]string{"publish", "--config", noCreds, "-"}, noCreds + ": nats.creds: stat "},
		{[]string{"publish", "--nats", "http://127.0.0.1:4222"}, `herald publish: nats.url: http://127.0.0.1:4222: scheme "http"`},
		{[]string{"profile", "--nats", closed}, "Usage: herald profile"},
		{[]string{"profile", "--nats", closed, ""}, "Usage: herald profile"},
		{[]string{"profile", "--nats", closed, "a", "b"}, "Usage: herald profile"},
		{[]string{"profile", "--nats", closed, "--recent", "0", "anna"}, "--recent 0, --scan 1000: both must be at least 1"},
		{[]string{"profile", "--nats", closed, "--scan", "-1", "anna"}, "--recent 10, --scan -1: both must be at least 1"},
		{[]string{"profile", "--config", unknownField, "anna"}, unknownField + `:3: unknown field "bogus"`},
		{[]string{"profile", "--config", noCreds, "anna"}, noCreds + ": nats.creds: stat "},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want none", stdout)
			}
		})
	}
}

// Regression: an unreachable NATS was reported as bad usage (exit 2).
func TestPublishAndProfileNATSUnreachable(t *testing.T) {
	closed := closedURL(t)
	withPassword := strings.Replace(closed, "nats://", "nats://herald:pw-s3cret@", 1)
	for _, args := range [][]string{
		{"publish", "--nats", closed, "-"},
		{"publish", "--nats", withPassword, "-"},
		{"profile", "--nats", closed, "anna"},
		{"profile", "--config", writeConfig(t, "nats:\n  url: "+closed+"\n"), "anna"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, "", args...)
			if code != exitFailed {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
			}
			if want := "herald " + args[0] + ": cannot reach NATS at nats://"; !strings.Contains(stderr, want) {
				t.Errorf("stderr %q does not contain %q", stderr, want)
			}
			if strings.Contains(stderr, "pw-s3cret") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want none", stdout)
			}
		})
	}
}

func TestNATSOptions(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "herald.creds")
	if err := os.WriteFile(creds, []byte("not checked before connecting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := writeTLSFiles(t, dir)
	tests := []struct {
		name     string
		env      map[string]string
		url      string // --nats
		config   string // the file's contents; "" for no --config
		want     natsbus.ConnectOptions
		wantErrs []string
	}{
		{name: "defaults", want: natsbus.ConnectOptions{URL: defaultNATSURL}},
		{name: "NATS_URL", env: map[string]string{"NATS_URL": "nats://env:4222"}, want: natsbus.ConnectOptions{URL: "nats://env:4222"}},
		{name: "--nats wins over NATS_URL", env: map[string]string{"NATS_URL": "nats://env:4222"}, url: "nats://flag:4222", want: natsbus.ConnectOptions{URL: "nats://flag:4222"}},
		{
			name: "token from the environment without --config", env: map[string]string{config.EnvNATSToken: "tok"},
			want: natsbus.ConnectOptions{URL: defaultNATSURL, Token: "tok"},
		},
		{
			name: "nats.url wins over NATS_URL", env: map[string]string{"NATS_URL": "nats://env:4222"},
			config: "nats:\n  url: nats://config:4222\n",
			want:   natsbus.ConnectOptions{URL: "nats://config:4222"},
		},
		{
			name: "--nats wins over nats.url, the credentials stay", env: map[string]string{config.EnvNATSPassword: "pw"},
			url:    "nats://flag:4222",
			config: "nats:\n  url: nats://config:4222\n  user: herald\n",
			want:   natsbus.ConnectOptions{URL: "nats://flag:4222", User: "herald", Password: "pw"},
		},
		{name: "default nats.listen", config: "data_dir: x\n", want: natsbus.ConnectOptions{URL: "nats://127.0.0.1:4222"}},
		{name: "nats.listen", config: "nats:\n  listen: 127.0.0.2:4333\n", want: natsbus.ConnectOptions{URL: "nats://127.0.0.2:4333"}},
		{name: "nats.listen on every interface", config: "nats:\n  listen: 0.0.0.0:4333\n", want: natsbus.ConnectOptions{URL: "nats://127.0.0.1:4333"}},
		{name: "nats.listen on every IPv6 interface", config: "nats:\n  listen: \"[::]:4333\"\n", want: natsbus.ConnectOptions{URL: "nats://127.0.0.1:4333"}},
		{name: "nats.listen IPv6", config: "nats:\n  listen: \"[::1]:4333\"\n", want: natsbus.ConnectOptions{URL: "nats://[::1]:4333"}},
		{
			name:   "creds and TLS",
			config: fmt.Sprintf("nats:\n  url: tls://nats.example.com:4222\n  creds: %s\n  tls:\n    ca: %s\n    cert: %s\n    key: %s\n", creds, ca, cert, key),
			want:   natsbus.ConnectOptions{URL: "tls://nats.example.com:4222", CredsFile: creds, CAFile: ca, CertFile: cert, KeyFile: key},
		},
		{
			name: "token", env: map[string]string{config.EnvNATSToken: "tok"},
			config: "nats:\n  url: nats://config:4222\n",
			want:   natsbus.ConnectOptions{URL: "nats://config:4222", Token: "tok"},
		},
		{
			name: "token and user", env: map[string]string{config.EnvNATSToken: "tok-s3cret", config.EnvNATSPassword: "pw-s3cret"},
			config:   "nats:\n  url: nats://config:4222\n  user: herald\n",
			wantErrs: []string{"herald.yaml: nats.token: cannot be combined with nats.user"},
		},
		{
			name: "user without password", config: "nats:\n  url: nats://config:4222\n  user: herald\n",
			wantErrs: []string{"herald.yaml: nats.password: required with nats.user"},
		},
		{
			name: "every problem", config: "nats:\n  url: nats://config:4222\n  user: herald\n  creds: " + filepath.Join(dir, "none.creds") + "\n  tls:\n    ca: " + creds + "\n",
			wantErrs: []string{"nats.creds: stat ", "nats.password: required with nats.user", "nats.tls.ca: no PEM certificate in " + creds},
		},
		{name: "bad --nats", url: "ftp://flag", wantErrs: []string{`nats.url: ftp://flag: scheme "ftp"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"NATS_URL", config.EnvNATSPassword, config.EnvNATSToken} {
				t.Setenv(name, tt.env[name])
			}
			target := natsTarget{server: tt.url}
			if tt.config != "" {
				target.config = filepath.Join(t.TempDir(), "herald.yaml")
				if err := os.WriteFile(target.config, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			plan, err := natsOptions(target, "herald test")
			got := plan.opts
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErrs)
				}
				for _, want := range tt.wantErrs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error shows a secret: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = "herald test"
			if got != tt.want {
				t.Errorf("options\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}

// TestConnectNATSWithPassword connects to a server that wants a user and
// password, the user from --config and the password from the environment.
func TestConnectNATSWithPassword(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, Username: "herald", Password: "pw-s3cret", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	cfg := writeConfig(t, "nats:\n  url: "+srv.ClientURL()+"\n  user: herald\n")
	for _, tt := range []struct {
		password string
		code     int
	}{
		{"pw-s3cret", exitOK},
		{"wrong", exitFailed},
		{"", exitUsage},
	} {
		t.Run(tt.password, func(t *testing.T) {
			t.Setenv(config.EnvNATSPassword, tt.password)
			var stderr bytes.Buffer
			c := &cli{stdout: &bytes.Buffer{}, stderr: &stderr}
			nc, _, code := c.connectNATS("publish", &natsTarget{config: cfg})
			if nc != nil {
				defer nc.Close()
			}
			if code != tt.code || (code == exitOK) != (nc != nil) {
				t.Errorf("exit code %d, connected %v; want %d; stderr:\n%s", code, nc != nil, tt.code, &stderr)
			}
			if strings.Contains(stderr.String(), "s3cret") {
				t.Errorf("stderr shows the password: %q", &stderr)
			}
		})
	}
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "nats://" + addr
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTLSFiles writes a self-signed certificate, as the CA and as the
// client certificate, and its key.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, cert, key
}
