package natsbus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/herald-events/herald/internal/syncbuf"
	"github.com/herald-events/herald/natsbus"
)

const (
	secretPassword = "s3cret-pw"
	secretToken    = "t0ken-xyz"
)

func TestConnectValidation(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile := writeCert(t, dir)
	creds := write("user.creds", "not checked before connecting")
	garbage := write("garbage.pem", "not pem")
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	nkey := write("user.nk", string(seed))
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name string
		opts natsbus.ConnectOptions
		want []string // substrings of the error; none: valid
	}{
		{"defaults", natsbus.ConnectOptions{}, nil},
		{"user and password", natsbus.ConnectOptions{URL: "nats://a:4222, tls://b:4222", User: "herald", Password: secretPassword}, nil},
		{"token", natsbus.ConnectOptions{Token: secretToken}, nil},
		{"creds", natsbus.ConnectOptions{CredsFile: creds}, nil},
		{"nkey", natsbus.ConnectOptions{NKeyFile: nkey}, nil},
		{"mutual tls", natsbus.ConnectOptions{CAFile: certFile, CertFile: certFile, KeyFile: keyFile}, nil},
		{"creds missing", natsbus.ConnectOptions{CredsFile: missing}, []string{"nats.creds: ", "no such file"}},
		{"creds is a directory", natsbus.ConnectOptions{CredsFile: dir}, []string{"nats.creds: ", "is a directory"}},
		{"nkey missing", natsbus.ConnectOptions{NKeyFile: missing}, []string{"nats.nkey: ", "no such file"}},
		{"nkey not a seed", natsbus.ConnectOptions{NKeyFile: garbage}, []string{"nats.nkey: read seed"}},
		{"password without user", natsbus.ConnectOptions{Password: secretPassword}, []string{"nats.user: required with nats.password"}},
		{"user without password", natsbus.ConnectOptions{User: "herald"}, []string{"nats.password: required with nats.user"}},
		{"two ways to authenticate", natsbus.ConnectOptions{CredsFile: creds, User: "herald", Password: secretPassword, Token: secretToken},
			[]string{"nats.user: cannot be combined with nats.creds", "nats.token: cannot be combined with nats.creds"}},
		{"cert without key", natsbus.ConnectOptions{CertFile: certFile}, []string{"nats.tls.key: required with nats.tls.cert"}},
		{"key without cert", natsbus.ConnectOptions{KeyFile: keyFile}, []string{"nats.tls.cert: required with nats.tls.key"}},
		{"cert is not pem", natsbus.ConnectOptions{CertFile: garbage, KeyFile: keyFile}, []string{"nats.tls.cert: load certificate and key"}},
		{"key missing", natsbus.ConnectOptions{CertFile: certFile, KeyFile: missing}, []string{"nats.tls.key: ", "no such file"}},
		{"ca is not pem", natsbus.ConnectOptions{CAFile: garbage}, []string{"nats.tls.ca: no PEM certificate in " + garbage}},
		{"ca missing", natsbus.ConnectOptions{CAFile: missing}, []string{"nats.tls.ca: ", "no such file"}},
		{"bad scheme", natsbus.ConnectOptions{URL: "http://herald:" + secretPassword + "@localhost:4222"}, []string{`nats.url: http://redacted@localhost:4222: scheme "http"`}},
		{"token in url", natsbus.ConnectOptions{URL: "nats://" + secretToken + "@/"}, []string{"nats.url: nats://redacted@/: no host"}},
		{"several problems at once", natsbus.ConnectOptions{CredsFile: missing, CertFile: certFile, Password: secretPassword},
			[]string{"nats.creds: ", "nats.tls.key: required", "nats.user: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
			assertNoSecret(t, "error", err.Error())
			if _, cerr := natsbus.Connect(tt.opts); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Connect error = %v, want the validation error", cerr)
			}
		})
	}
}

func TestConnectDoesNotLeakPassword(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, Username: "herald", Password: secretPassword, NoLog: true, NoSigs: true}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	u, _ := url.Parse(srv.ClientURL())
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	wrong := strings.Replace(secretPassword, "s3", "x9", 1)
	_, err = natsbus.Connect(natsbus.ConnectOptions{URL: u.String(), User: "herald", Password: wrong, Logger: logger})
	if err == nil {
		t.Fatal("Connect with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = natsbus.Connect(natsbus.ConnectOptions{URL: "nats://herald:" + wrong + "@" + u.Host, Logger: logger})
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "redacted@"+u.Host) {
		t.Errorf("Connect with a wrong password in the URL: %v; want an error with the URL redacted", err)
	}

	for _, o := range []natsbus.ConnectOptions{
		{URL: u.String(), User: "herald", Password: secretPassword, Logger: logger},
		{URL: "nats://herald:" + secretPassword + "@" + u.Host, Logger: logger},
	} {
		nc, err := natsbus.Connect(o)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if got := nc.Opts.Name; got != "herald" {
			t.Errorf("connection name = %q, want herald", got)
		}
		if nc.Opts.MaxReconnect != -1 {
			t.Errorf("max reconnects = %d, want -1 (forever)", nc.Opts.MaxReconnect)
		}
		nc.Close()
	}
	// The closed handler runs on the connection's own goroutine, after
	// Close returns.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "nats connection closed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "nats connected") || !strings.Contains(out, "nats connection closed") {
		t.Errorf("connection events not logged:\n%s", out)
	}
	assertNoSecret(t, "log", out)
	if strings.Contains(out, wrong) {
		t.Errorf("log leaks the password:\n%s", out)
	}
}

func TestConnectReconnectsAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: -1, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.ClientURL())
	logs := &syncbuf.Buffer{}
	nc, err := natsbus.Connect(natsbus.ConnectOptions{URL: u.String(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	defer nc.Close()

	srv.Shutdown()
	waitFor(t, "the disconnect to be logged", func() bool { return strings.Contains(logs.String(), "nats disconnected") })
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	srv, err = natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: port, StoreDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer srv.Shutdown()
	waitFor(t, "the reconnect", func() bool { return nc.IsConnected() && strings.Contains(logs.String(), "nats reconnected") })
}

// waitFor polls cond until it holds, failing the test after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{secretPassword, secretToken} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks a secret: %s", what, s)
		}
	}
}

// writeCert writes a self-signed certificate and its key, PEM encoded.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
