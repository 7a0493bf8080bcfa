package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	for _, path := range []string{"", write(t, ""), write(t, "# only a comment\n")} {
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		if c.DataDir != "data" || c.NATS.URL != "" || c.NATS.Listen != "127.0.0.1:4222" || !*c.NATS.Fsync ||
			c.HTTP.Listen != "127.0.0.1:8080" || c.HTTP.BaseURL != "http://127.0.0.1:8080" ||
			c.Email.Outbox != filepath.Join("data", "outbox") || c.Email.SMTP.TLSPolicy != "opportunistic" ||
			c.Rules[0] != filepath.Join("examples", "newsletter-double-opt-in") || c.Workers != 4 {
			t.Fatalf("defaults = %+v", c)
		}
	}
}

func TestLoadFile(t *testing.T) {
	c, err := Load(write(t, `
data_dir: /var/lib/herald
rules: [/etc/herald/rules]
nats:
  url: nats://nats.example.com:4222
  replicas: 3
  fsync: false
http:
  listen: 0.0.0.0:8080
  base_url: https://news.shop.example/
email:
  from: Example Shop <news@shop.example>
  smtp:
    url: smtp://herald@mail.shop.example:587
    tls_policy: mandatory
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.Listen != "" || c.NATS.Replicas != 3 || *c.NATS.Fsync || c.HTTP.BaseURL != "https://news.shop.example" ||
		c.Email.Outbox != "/var/lib/herald/outbox" || c.Email.SMTP.TLSPolicy != "mandatory" {
		t.Fatalf("config = %+v", c)
	}
}

func TestErrorsAllAtOnce(t *testing.T) {
	_, err := Load(write(t, `
nats:
  listen: nowhere
  replicas: 9
  partitions: 1000
http:
  base_url: ftp://x
email:
  from: nobody
  smtp:
    url: http://mail
    tls_policy: sometimes
  reply_to: also nobody
workers: -1
log: {level: loud}
`))
	if err == nil {
		t.Fatal("Load accepted a broken config")
	}
	for _, want := range []string{"nats.listen", "nats.replicas", "nats.partitions", "http.base_url", "email.from", "email.reply_to", "email.smtp.url", "email.smtp.tls_policy", "workers", "log.level"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestUnknownFieldNamesTheLine(t *testing.T) {
	path := write(t, "http:\n  listne: 1.2.3.4:80\n")
	_, err := Load(path)
	if err == nil || err.Error() != path+`:2: unknown field "listne" in http (did you mean "listen"?); known fields: listen, base_url, site_name, trust_proxy` {
		t.Fatalf("error = %v", err)
	}
}

func TestSecretsComeFromTheEnvironmentAndAreNeverPrinted(t *testing.T) {
	const password = "s3cr3t-Pa55"
	t.Setenv(EnvSMTPPassword, password)
	t.Setenv(EnvNATSPassword, password)
	c, err := Load(write(t, "email:\n  smtp:\n    url: smtp://herald@mail.shop.example:587\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SMTPURL(); !strings.Contains(got, password) {
		t.Fatalf("SMTPURL %q lacks the password from the environment", got)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", c.Email)} {
		if strings.Contains(s, password) {
			t.Fatalf("the password is printed: %s", s)
		}
	}
	// A password written into the file is refused, and not echoed.
	_, err = Load(write(t, "email:\n  smtp:\n    url: smtp://herald:"+password+"@mail.shop.example:587\n"))
	if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), EnvSMTPPassword) {
		t.Fatalf("error = %v", err)
	}
	_, err = Load(write(t, "nats:\n  url: \"nats://u:"+password+"@[::1\"\n"))
	if err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("error = %v", err)
	}
}

func TestBaseURLIsRequiredWhenListeningOnAllAddresses(t *testing.T) {
	_, err := Load(write(t, "http:\n  listen: 0.0.0.0:8080\n"))
	if err == nil || !strings.Contains(err.Error(), "http.base_url: required") {
		t.Fatalf("error = %v", err)
	}
	if _, err := Load(write(t, "http:\n  listen: 0.0.0.0:8080\n  base_url: https://news.shop.example\n")); err != nil {
		t.Fatal(err)
	}
}

func TestSMTPPasswordNeedsAUser(t *testing.T) {
	t.Setenv(EnvSMTPPassword, "pw")
	_, err := Load(write(t, "email:\n  smtp:\n    url: smtp://mail.shop.example:587\n"))
	if err == nil || !strings.Contains(err.Error(), "has no user name") {
		t.Fatalf("error = %v", err)
	}
}

// The repository's herald.yaml, which make run uses, loads, and says
// what the defaults are: loading it gives what no file gives, but for
// its site and collector limits.
func TestRepositoryConfig(t *testing.T) {
	got, err := Load("../herald.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Sites) != 1 || got.Sites[0].WriteKey != "demo-write-key" {
		t.Fatalf("sites %+v", got.Sites)
	}
	// Written out empty, lists and maps decode empty rather than nil.
	got.Sites, got.Webhook.AllowHosts, got.Webhook.Headers = nil, nil, nil
	if !reflect.DeepEqual(got, def) {
		t.Fatalf("herald.yaml differs from the defaults:\n%+v\n%+v", got, def)
	}
}

func TestRetention(t *testing.T) {
	c, err := Load(write(t, "retention:\n  events: 90d\n  dead_letters: 720h\n  outbox: 30d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Events != Duration(90*24*time.Hour) || c.Retention.DeadLetters != Duration(30*24*time.Hour) || c.Retention.Outbox != Duration(30*24*time.Hour) {
		t.Errorf("retention %+v", c.Retention)
	}
	if c, err := Load(""); err != nil || c.Retention != (Retention{}) {
		t.Errorf("default retention %+v, %v: want zeros (the streams' own limits)", c.Retention, err)
	}
	_, err = Load(write(t, "retention:\n  events: 5m\n  outbox: 30m\n"))
	if err == nil || !strings.Contains(err.Error(), "retention.events: 5m0s: use at least 1h") || !strings.Contains(err.Error(), "retention.outbox: 30m0s") {
		t.Errorf("short retention: %v", err)
	}
	_, err = Load(write(t, "retention:\n  events: 3 months\n"))
	if err == nil || !strings.Contains(err.Error(), `"3 months" is not a duration such as 10s or 30d`) {
		t.Errorf("bad duration: %v", err)
	}
}
