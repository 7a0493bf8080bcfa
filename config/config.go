// Package config reads herald.yaml: strict YAML (unknown fields are
// errors), defaults applied before validation, every problem reported at
// once, and secrets taken from the environment, never from the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Environment variables holding secrets.
const (
	EnvSMTPPassword = "HERALD_SMTP_PASSWORD"
	EnvLinkKeys     = "HERALD_LINK_KEYS"
	EnvNATSPassword = "HERALD_NATS_PASSWORD"
	EnvNATSToken    = "HERALD_NATS_TOKEN"
	// EnvWebhookSecret signs webhook calls (Herald-Signature).
	EnvWebhookSecret = "HERALD_WEBHOOK_SECRET"
	// EnvPrivacyKey keys the hash of the addresses an erased customer
	// had (see docs/privacy.md).
	EnvPrivacyKey = "HERALD_PRIVACY_KEY"
	// EnvAdminToken lets GET /v1/profiles/{uuid} answer.
	EnvAdminToken = "HERALD_ADMIN_TOKEN"
)

// Secret is a value that must not be printed: it formats as <secret>.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalText hides the secret from encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is Herald's configuration.
type Config struct {
	// DataDir holds the embedded NATS store, the outbox and the
	// generated link key. Default ./data.
	DataDir string `yaml:"data_dir"`
	// Rules lists rule files and directories. Default: the double opt-in
	// example.
	Rules   []string `yaml:"rules"`
	NATS    NATS     `yaml:"nats"`
	HTTP    HTTP     `yaml:"http"`
	Email   Email    `yaml:"email"`
	Webhook Webhook  `yaml:"webhook"`
	// Sites are the web sites that send events through the HTTP
	// collector; events naming a site are held to its lists wherever they
	// arrive.
	Sites     []Site    `yaml:"sites"`
	Collector Collector `yaml:"collector"`
	Workers   int       `yaml:"workers"`
	// EngineName names this engine among engines sharing a NATS server;
	// each needs its own. Default: a random name kept in data_dir.
	EngineName string `yaml:"engine_name"`
	// Acks says how events handled are acknowledged: "async" (the
	// default) sends the ack and goes on; "sync" waits for the server to
	// confirm it. Either way an event is acked only once its profile
	// changes are stored and its effects performed; see
	// docs/reliability.md.
	Acks string `yaml:"acks"`
	// MaxDeliveries is how often an event whose handling fails for a
	// reason worth retrying is delivered before it is kept as a dead
	// letter. Default 100: with retries at most 5 minutes apart, about
	// eight hours of retries.
	MaxDeliveries int `yaml:"max_deliveries"`
	// Retention says how long raw events, dead letters and outbox emails
	// are kept; see docs/privacy.md.
	Retention Retention `yaml:"retention"`
	Log       Log       `yaml:"log"`

	baseURLDefaulted bool
}

// MaxPartitions bounds nats.partitions; natsbus.MaxPartitions is the same.
const MaxPartitions = 256

// The ways events handled are acknowledged; see Config.Acks.
const (
	AcksAsync = "async"
	AcksSync  = "sync"
)

// Webhook configures the webhook action.
type Webhook struct {
	// AllowHosts lists the hosts webhooks may call: exact names, or
	// *.example.com for its subdomains. Rules naming another host fail to
	// load. Empty: webhooks are off.
	AllowHosts []string `yaml:"allow_hosts"`
	// AllowPrivate lets webhooks reach loopback and private addresses
	// (refused by default, even for an allowed host name).
	AllowPrivate bool `yaml:"allow_private"`
	// Headers are sent with every call.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one call. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// Secret signs every call; it comes from HERALD_WEBHOOK_SECRET.
	Secret Secret `yaml:"-"`
}

// Site is one web site sending events.
type Site struct {
	// Name is the site's name, stamped on its events as their site.
	Name string `yaml:"name"`
	// WriteKey identifies the site to the collector. It is public: it is
	// written into the site's pages. Required, unique.
	WriteKey string `yaml:"write_key"`
	// Origins are the origins (scheme://host[:port]) whose pages may send
	// events for the site. Empty: requests without an Origin header only
	// (servers, curl).
	Origins []string `yaml:"origins"`
	// Allow lists the actions the site may send, as patterns such as
	// page.* or product.view; empty allows every action. Deny lists actions
	// refused even when allowed.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Collector limits the HTTP collector.
type Collector struct {
	// Rate is how many requests a second one write key, and separately
	// one client address, may make on average; Burst how many at once.
	// Defaults 20 and 100.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Retention says how long Herald keeps what it holds besides profiles.
// Zero keeps the default: see each field.
type Retention struct {
	// Events is the most age of a raw event in HERALD_EVENTS (the
	// stream's MaxAge). 0: events are kept until the stream's own limits,
	// as an operator set them (none by default).
	Events Duration `yaml:"events"`
	// DeadLetters is the most age of a dead letter in HERALD_DEAD. 0: 30
	// days when Herald creates the stream, else its limit as it is.
	DeadLetters Duration `yaml:"dead_letters"`
	// Outbox is the most age of an .eml file in the outbox folder; serve
	// deletes older ones. 0: they are kept.
	Outbox Duration `yaml:"outbox"`
}

// MinRetention is the least retention: JetStream's duplicate window (10
// minutes) must fit in a stream's max age, and an hour is no real limit
// on privacy.
const MinRetention = time.Hour

// Duration is a time.Duration written as in Go ("10s", "1m30s"), or a
// number of days ("30d").
type Duration time.Duration

// UnmarshalYAML reads a duration such as 10s or 30d.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.ParseDuration(n.Value)
	if days, ok := strings.CutSuffix(n.Value, "d"); ok && err != nil {
		var k int
		if _, serr := fmt.Sscanf(days, "%d", &k); serr == nil && fmt.Sprint(k) == days && k >= 0 && k <= 100*365 {
			t, err = time.Duration(k)*24*time.Hour, nil
		}
	}
	if err != nil || t < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 10s or 30d", n.Line, n.Value)
	}
	*d = Duration(t)
	return nil
}

// NATS says which NATS to use: an embedded server (no URL, the default) or
// an existing deployment.
type NATS struct {
	// URL of an existing NATS deployment; empty starts an embedded server.
	URL string `yaml:"url"`
	// Listen is the embedded server's client address. Default
	// 127.0.0.1:4222.
	Listen string `yaml:"listen"`
	// Fsync makes the embedded server sync every write to disk. Default
	// true: an acknowledged event survives a power cut.
	Fsync *bool `yaml:"fsync"`
	// Replicas of Herald's streams and bucket on a cluster. Unset: 1 when
	// Herald creates them, and whatever they have when they exist.
	Replicas int `yaml:"replicas"`
	// Partitions splits the events stream into that many partitions by
	// customer, so that engines sharing it each take some and every
	// customer's events are handled by one engine at a time, in order (see
	// docs/scaling.md). Every engine needs the same value, and it cannot
	// change once set. Unset (0): one consumer shared by every engine.
	Partitions int `yaml:"partitions"`
	// Credentials for an existing deployment; the password and token come
	// from HERALD_NATS_PASSWORD and HERALD_NATS_TOKEN.
	Creds string `yaml:"creds"`
	NKey  string `yaml:"nkey"`
	User  string `yaml:"user"`
	TLS   TLS    `yaml:"tls"`

	Password Secret `yaml:"-"`
	Token    Secret `yaml:"-"`
}

// TLS files for the NATS connection.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// HTTP configures the web server for signed links.
type HTTP struct {
	// Listen address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// BaseURL starts every link in emails. Default http://LISTEN.
	BaseURL string `yaml:"base_url"`
	// SiteName is shown on the link pages. Default "Herald".
	SiteName string `yaml:"site_name"`
	// TrustProxy takes the client address from X-Forwarded-For, for
	// Herald behind a reverse proxy.
	TrustProxy bool `yaml:"trust_proxy"`
}

// Email configures sending.
type Email struct {
	// From and ReplyTo of every email. From defaults to
	// "Herald <herald@localhost>".
	From    string `yaml:"from"`
	ReplyTo string `yaml:"reply_to"`
	SMTP    SMTP   `yaml:"smtp"`
	// Outbox is where emails are written as .eml files when no SMTP URL is
	// set. Default DATA_DIR/outbox.
	Outbox string `yaml:"outbox"`
}

// SMTP configures delivery over SMTP. The password comes from
// HERALD_SMTP_PASSWORD, never from the file.
type SMTP struct {
	// URL such as smtp://user@mail.example.com:587; empty writes emails
	// to the outbox instead.
	URL string `yaml:"url"`
	// TLSPolicy is opportunistic (default: STARTTLS when offered),
	// mandatory or none.
	TLSPolicy          string `yaml:"tls_policy"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`

	Password Secret `yaml:"-"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// LinkKeys are the signing keys for links, from HERALD_LINK_KEYS; empty
// means Herald generates one and keeps it in DATA_DIR.
func LinkKeys() Secret { return Secret(os.Getenv(EnvLinkKeys)) }

// PrivacyKey keys the hashes of erased customers' addresses, from
// HERALD_PRIVACY_KEY; empty means a plain SHA-256.
func PrivacyKey() Secret { return Secret(os.Getenv(EnvPrivacyKey)) }

// AdminToken is the bearer token of the admin API (GET
// /v1/profiles/{uuid}), from HERALD_ADMIN_TOKEN; empty turns it off.
func AdminToken() Secret { return Secret(os.Getenv(EnvAdminToken)) }

// Load reads the file at path (or only defaults and the environment when
// path is ""), applies defaults and validates. It reports every problem
// at once.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
			return nil, yamlError(path, err)
		}
	}
	c.NATS.Password = Secret(os.Getenv(EnvNATSPassword))
	c.NATS.Token = Secret(os.Getenv(EnvNATSToken))
	c.Email.SMTP.Password = Secret(os.Getenv(EnvSMTPPassword))
	c.Webhook.Secret = Secret(os.Getenv(EnvWebhookSecret))
	c.applyDefaults()
	if err := c.validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if len(c.Rules) == 0 {
		c.Rules = []string{filepath.Join("examples", "newsletter-double-opt-in")}
	}
	if c.NATS.URL == "" && c.NATS.Listen == "" {
		c.NATS.Listen = "127.0.0.1:4222"
	}
	if c.NATS.Fsync == nil {
		yes := true
		c.NATS.Fsync = &yes
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.HTTP.BaseURL == "" {
		c.HTTP.BaseURL = "http://" + c.HTTP.Listen
		c.baseURLDefaulted = true
	}
	c.HTTP.BaseURL = strings.TrimRight(c.HTTP.BaseURL, "/")
	if c.HTTP.SiteName == "" {
		c.HTTP.SiteName = "Herald"
	}
	if c.Email.From == "" {
		c.Email.From = "Herald <herald@localhost>"
	}
	if c.Email.Outbox == "" {
		c.Email.Outbox = filepath.Join(c.DataDir, "outbox")
	}
	if c.Email.SMTP.TLSPolicy == "" {
		c.Email.SMTP.TLSPolicy = "opportunistic"
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Acks == "" {
		c.Acks = AcksAsync
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 100
	}
	if c.Collector.Rate == 0 {
		c.Collector.Rate = 20
	}
	if c.Collector.Burst == 0 {
		c.Collector.Burst = 100
	}
	for i := range c.Sites {
		if c.Sites[i].Name == "" {
			c.Sites[i].Name = c.Sites[i].WriteKey
		}
	}
	if c.Webhook.Timeout == 0 {
		c.Webhook.Timeout = Duration(10 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.NATS.URL != "" {
		u, err := url.Parse(c.NATS.URL)
		switch {
		case err != nil || u.Host == "":
			bad("nats.url", "%q is not a URL such as nats://nats.example.com:4222", redact(c.NATS.URL))
		case u.User != nil:
			if _, has := u.User.Password(); has {
				bad("nats.url", "holds a password; set %s instead", EnvNATSPassword)
			}
		}
		if c.NATS.Listen != "" {
			bad("nats.listen", "is for the embedded server; leave it out with nats.url")
		}
	} else if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
		bad("nats.listen", "%q is not host:port", c.NATS.Listen)
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "%d: use 1 to 5", c.NATS.Replicas)
	}
	if c.NATS.Partitions < 0 || c.NATS.Partitions > MaxPartitions {
		bad("nats.partitions", "%d: use 1 to %d, or leave it out for one consumer shared by every engine", c.NATS.Partitions, MaxPartitions)
	}
	if (c.NATS.TLS.Cert == "") != (c.NATS.TLS.Key == "") {
		bad("nats.tls", "cert and key go together")
	}
	if host, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q is not host:port", c.HTTP.Listen)
	} else if ip := net.ParseIP(host); (host == "" || ip != nil && ip.IsUnspecified()) && c.baseURLDefaulted {
		bad("http.base_url", "required when http.listen is %q: links in emails need an address customers can reach", c.HTTP.Listen)
	}
	if u, err := url.Parse(c.HTTP.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("http.base_url", "%q is not an http(s) URL", c.HTTP.BaseURL)
	}
	if _, err := mail.ParseAddress(c.Email.From); err != nil {
		bad("email.from", "%q is not an address such as \"Example Shop <news@shop.example>\"", c.Email.From)
	}
	if c.Email.ReplyTo != "" {
		if _, err := mail.ParseAddress(c.Email.ReplyTo); err != nil {
			bad("email.reply_to", "%q is not an email address", c.Email.ReplyTo)
		}
	}
	if c.Email.SMTP.URL != "" {
		u, err := url.Parse(c.Email.SMTP.URL)
		switch {
		case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "":
			bad("email.smtp.url", "%q is not a URL such as smtp://user@mail.example.com:587", redact(c.Email.SMTP.URL))
		case u.User != nil:
			if _, has := u.User.Password(); has {
				bad("email.smtp.url", "holds a password; set %s instead", EnvSMTPPassword)
			}
		case c.Email.SMTP.Password != "":
			bad("email.smtp.url", "has no user name, but %s is set: write smtp://USER@host:port", EnvSMTPPassword)
		}
	}
	switch c.Email.SMTP.TLSPolicy {
	case "opportunistic", "mandatory", "none":
	default:
		bad("email.smtp.tls_policy", "%q: use opportunistic, mandatory or none", c.Email.SMTP.TLSPolicy)
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers", "%d: use 1 to 256", c.Workers)
	}
	if n := c.EngineName; n != "" && (len(n) > 64 || strings.TrimSpace(n) != n || strings.ContainsFunc(n, unicode.IsControl)) {
		bad("engine_name", "%q: use at most 64 characters, without control characters or surrounding spaces", n)
	}
	if c.Acks != AcksAsync && c.Acks != AcksSync {
		bad("acks", "%q: use %q or %q", c.Acks, AcksAsync, AcksSync)
	}
	if c.MaxDeliveries < 1 {
		bad("max_deliveries", "%d: use 1 or more", c.MaxDeliveries)
	}
	for _, r := range []struct {
		field string
		d     Duration
	}{{"retention.events", c.Retention.Events}, {"retention.dead_letters", c.Retention.DeadLetters}, {"retention.outbox", c.Retention.Outbox}} {
		if r.d != 0 && time.Duration(r.d) < MinRetention {
			bad(r.field, "%s: use at least 1h, or 0 for the default", time.Duration(r.d))
		}
	}
	if c.Collector.Rate < 0 || c.Collector.Burst < 1 {
		bad("collector", "rate %v, burst %d: use a positive rate and a burst of 1 or more", c.Collector.Rate, c.Collector.Burst)
	}
	keys, names := map[string]bool{}, map[string]bool{}
	for i, s := range c.Sites {
		field := fmt.Sprintf("sites[%d]", i)
		switch {
		case s.WriteKey == "":
			bad(field+".write_key", "required: the key the site's pages send")
		case !validKey(s.WriteKey):
			bad(field+".write_key", "%q: use 8 to 128 letters, digits, - and _", s.WriteKey)
		case keys[s.WriteKey]:
			bad(field+".write_key", "%q is used by another site", s.WriteKey)
		}
		keys[s.WriteKey] = true
		if names[s.Name] {
			bad(field+".name", "%q is used by another site", s.Name)
		}
		names[s.Name] = true
		for j, o := range s.Origins {
			if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				bad(fmt.Sprintf("%s.origins[%d]", field, j), "%q is not an origin such as https://shop.example.com", o)
			}
		}
		for _, list := range []struct {
			name     string
			patterns []string
		}{{"allow", s.Allow}, {"deny", s.Deny}} {
			for j, p := range list.patterns {
				if _, err := path.Match(p, ""); err != nil || p == "" || strings.ContainsAny(p, "/ ") {
					bad(fmt.Sprintf("%s.%s[%d]", field, list.name, j), "%q is not an action pattern such as page.* or product.view", p)
				}
			}
		}
	}
	for i, h := range c.Webhook.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/ @") {
			bad(fmt.Sprintf("webhook.allow_hosts[%d]", i), "%q is not a host name such as hooks.example.com or *.example.com", h)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: use text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

func validKey(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SMTPURL returns the SMTP URL with the password from the environment
// added, for the mailer; never print it.
func (c *Config) SMTPURL() string {
	if c.Email.SMTP.URL == "" || c.Email.SMTP.Password == "" {
		return c.Email.SMTP.URL
	}
	u, err := url.Parse(c.Email.SMTP.URL)
	if err != nil || u.User == nil {
		return c.Email.SMTP.URL
	}
	u.User = url.UserPassword(u.User.Username(), string(c.Email.SMTP.Password))
	return u.String()
}

var (
	lineRE         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
)

// yamlError rewrites yaml.v3's errors as path:line: message, one a line;
// an unknown field's message names its section, suggests the closest
// known field and lists them all.
func yamlError(path string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, msg := range msgs {
		m := lineRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "yaml: ")))
			continue
		}
		text := m[2]
		if f := unknownFieldRE.FindStringSubmatch(text); f != nil {
			text = unknownField(f[1], f[2])
		}
		errs = append(errs, fmt.Errorf("%s:%s: %s", path, m[1], text))
	}
	return errors.Join(errs...)
}

// redact removes a password from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)" // it might hold a password
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "<secret>")
		return strings.Replace(u.String(), "%3Csecret%3E", "<secret>", 1)
	}
	return raw
}
