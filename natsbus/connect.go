package natsbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect delays: the first retry waits about minReconnectDelay, each
// further one twice as long, up to maxReconnectDelay.
const (
	minReconnectDelay = 250 * time.Millisecond
	maxReconnectDelay = 10 * time.Second
)

// ConnectOptions says how to reach an existing NATS deployment. Each field
// is named in errors as the configuration key in parentheses. At most one
// way of authenticating may be set: a credentials file, an NKey seed file,
// user and password, or a token.
type ConnectOptions struct {
	// URL lists the servers, comma separated (nats.url); default
	// nats://127.0.0.1:4222.
	URL string
	// CredsFile is a decorated JWT credentials file (nats.creds).
	CredsFile string
	// NKeyFile is a file holding an NKey user seed (nats.nkey).
	NKeyFile string
	// User and Password authenticate with a user name (nats.user,
	// nats.password). The password never appears in errors or logs.
	User, Password string
	// Token authenticates with a token (nats.token). It never appears in
	// errors or logs.
	Token string
	// CAFile is a PEM file of the CAs trusted to sign the servers'
	// certificates (nats.tls.ca). Setting it requires TLS.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and its key for
	// mutual TLS (nats.tls.cert, nats.tls.key); set both or neither.
	CertFile, KeyFile string
	// Name is the connection name servers show; default "herald".
	Name string
	// Logger receives connection events. Nil discards them.
	Logger *slog.Logger
}

// Validate checks the options without connecting: files exist and parse,
// fields that go together are set together, at most one way of
// authenticating is chosen. It reports every problem, each naming its
// field, e.g. "nats.creds: stat /etc/herald.creds: no such file or
// directory".
func (o ConnectOptions) Validate() error {
	_, err := o.options()
	return err
}

// Connect dials NATS with Herald's defaults: the connection is named,
// reconnects forever with a growing, jittered delay, and logs connects,
// disconnects, reconnects and asynchronous errors. The options are
// validated first; see Validate.
func Connect(opts ConnectOptions) (*nats.Conn, error) {
	natsOpts, err := opts.options()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats")
	natsOpts = append(natsOpts,
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // ClosedHandler reports it
			}
			log.Warn("nats disconnected; reconnecting", "error", err)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("nats reconnect attempt failed", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", redactURL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats error", "error", err)
		}),
	)
	url := opts.url()
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", redactURLs(url), err)
	}
	log.Info("nats connected", "url", redactURL(nc.ConnectedUrl()), "server", nc.ConnectedServerName())
	return nc, nil
}

func (o ConnectOptions) url() string {
	if strings.TrimSpace(o.URL) == "" {
		return nats.DefaultURL
	}
	return o.URL
}

// options validates o and turns it into nats.go options.
func (o ConnectOptions) options() ([]nats.Option, error) {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("nats.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	name := o.Name
	if name == "" {
		name = "herald"
	}
	opts := []nats.Option{nats.Name(name)}

	for u := range strings.SplitSeq(o.url(), ",") {
		if err := checkURL(strings.TrimSpace(u)); err != nil {
			fail("url", "%v", err)
		}
	}

	var auth []string
	if o.CredsFile != "" {
		auth = append(auth, "nats.creds")
		if err := checkFile(o.CredsFile); err != nil {
			fail("creds", "%v", err)
		} else {
			opts = append(opts, nats.UserCredentials(o.CredsFile))
		}
	}
	if o.NKeyFile != "" {
		auth = append(auth, "nats.nkey")
		if err := checkFile(o.NKeyFile); err != nil {
			fail("nkey", "%v", err)
		} else if opt, err := nats.NkeyOptionFromSeed(o.NKeyFile); err != nil {
			fail("nkey", "read seed from %s: %v", o.NKeyFile, err)
		} else {
			opts = append(opts, opt)
		}
	}
	if o.User != "" || o.Password != "" {
		auth = append(auth, "nats.user")
		switch {
		case o.User == "":
			fail("user", "required with nats.password")
		case o.Password == "":
			fail("password", "required with nats.user")
		default:
			opts = append(opts, nats.UserInfo(o.User, o.Password))
		}
	}
	if o.Token != "" {
		auth = append(auth, "nats.token")
		opts = append(opts, nats.Token(o.Token))
	}
	for _, a := range auth[min(len(auth), 1):] {
		fail(strings.TrimPrefix(a, "nats."), "cannot be combined with %s: choose one way to authenticate", auth[0])
	}

	var tlsConfig *tls.Config
	if o.CAFile != "" {
		pool, err := loadCAs(o.CAFile)
		if err != nil {
			fail("tls.ca", "%v", err)
		} else {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		}
	}
	switch {
	case o.CertFile != "" && o.KeyFile == "":
		fail("tls.key", "required with nats.tls.cert")
	case o.CertFile == "" && o.KeyFile != "":
		fail("tls.cert", "required with nats.tls.key")
	case o.CertFile != "":
		if err := checkFile(o.CertFile); err != nil {
			fail("tls.cert", "%v", err)
		} else if err := checkFile(o.KeyFile); err != nil {
			fail("tls.key", "%v", err)
		} else if cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			fail("tls.cert", "load certificate and key: %v", err)
		} else {
			if tlsConfig == nil {
				tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tlsConfig.Certificates = []tls.Certificate{cert}
		}
	}
	if tlsConfig != nil {
		opts = append(opts, nats.Secure(tlsConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return opts, nil
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("empty server URL")
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "nats://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may carry a password.
		return fmt.Errorf("%s: not a URL", redactURL(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%s: scheme %q: want nats, tls, ws or wss", redactURL(s), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%s: no host", redactURL(s))
	}
	return nil
}

func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// redactURL hides the user information of a server URL: a password, or a
// token given as the user name.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return s[:start] + "redacted@" + s[at+1:]
}

func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// reconnectDelay doubles from minReconnectDelay up to maxReconnectDelay,
// plus up to a fifth more at random so engines do not reconnect in step.
func reconnectDelay(attempts int) time.Duration {
	d := maxReconnectDelay
	if attempts < 16 {
		d = min(minReconnectDelay<<max(attempts-1, 0), maxReconnectDelay)
	}
	return d + rand.N(d/5+1)
}
