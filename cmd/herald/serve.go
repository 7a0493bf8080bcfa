package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/runner"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects Herald itself publishes events on.
const (
	emitSubject = "herald.events.emitted"
	linkSubject = "herald.events.link"
)

func (c *cli) serve(args []string) int {
	fl := c.flags("serve", "[--config herald.yaml]", `Run Herald: consume events from NATS JetStream, apply the rules, send the
emails, and serve the signed link pages over HTTP. With no configuration it
starts an embedded NATS server on 127.0.0.1:4222 with its store in ./data,
HTTP on 127.0.0.1:8080, writes emails to ./data/outbox and loads the double
opt-in example. Secrets come from the environment: HERALD_LINK_KEYS,
HERALD_SMTP_PASSWORD, HERALD_NATS_PASSWORD, HERALD_NATS_TOKEN.`)
	configPath := fl.String("config", "", "configuration `file` (YAML)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(c.stderr, "herald serve: unexpected argument %q; rule directories go in the config file (rules:)\n", fl.Arg(0))
		return exitUsage
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return exitUsage
	}
	logger := newLogger(c.stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := startServer(ctx, cfg, logger)
	if err != nil {
		var errs rules.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(c.stderr, errs)
		} else {
			fmt.Fprintf(c.stderr, "herald serve: %v\n", err)
		}
		return exitUsage
	}
	s.banner(c.stdout)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case <-hup:
			s.reload()
		case <-s.stopped:
			running = false
		case <-ctx.Done():
			running = false
		}
	}
	stop() // a second signal ends the process at once
	logger.Info("shutting down: finishing the events under way")
	if err := s.shutdown(); err != nil {
		fmt.Fprintf(c.stderr, "herald serve: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// reload loads the rule files again and swaps them in. If any file has an
// error, the rules in use stay as they are.
func (s *server) reload() {
	set, err := rules.Load(s.cfg.Rules...)
	if err != nil {
		s.logger.Error("rules not reloaded; the rules in use stay", "err", err)
		return
	}
	s.engine.SetRules(set)
	s.rules = set
	s.logger.Info("rules reloaded", "rules", set.Len())
}

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is a running Herald.
type server struct {
	cfg      *config.Config
	logger   *slog.Logger
	embedded *natsbus.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	natsURL  string
	rules    *rules.Set
	mailer   email.Sender
	http     *http.Server
	httpAddr string
	baseURL  string

	engine   *engine.Engine
	cancel   context.CancelFunc
	consumer sync.WaitGroup
	stopped  chan struct{} // closed when the consumer stops
	runErr   error

	shutdownOnce sync.Once
}

// startServer starts every part of Herald; on error it stops what it
// started.
func startServer(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			_ = s.shutdown()
		}
	}()
	if s.rules, err = rules.Load(cfg.Rules...); err != nil {
		return nil, err
	}
	if err := s.startNATS(ctx); err != nil {
		return nil, err
	}
	res, err := natsbus.Setup(ctx, s.js, natsbus.SetupConfig{Replicas: cfg.NATS.Replicas})
	if err != nil {
		return nil, fmt.Errorf("set up streams: %w", err)
	}
	if cfg.Email.SMTP.URL != "" {
		s.mailer, err = email.NewSMTP(email.SMTPConfig{URL: cfg.SMTPURL(), TLSPolicy: cfg.Email.SMTP.TLSPolicy, InsecureSkipVerify: cfg.Email.SMTP.InsecureSkipVerify})
	} else {
		s.mailer, err = email.NewOutbox(cfg.Email.Outbox)
	}
	if err != nil {
		return nil, err
	}
	signer, err := linkSigner(cfg.DataDir, logger)
	if err != nil {
		return nil, err
	}
	pub := &publisher{js: s.js}
	s.engine = engine.New(s.rules)
	run, err := runner.New(runner.Config{
		Engine:  s.engine,
		Store:   profile.NewKV(res.Profiles),
		Mailer:  s.mailer,
		Emitter: pub,
		Linker: func(l rules.Link, ev *event.Event, rule string, expires time.Time) (string, error) {
			token, err := signer.Sign(links.Claims{UUID: ev.UUID, Action: l.Emit, Label: l.Label, Link: l.Name, Event: ev.ID, Rule: rule, Site: ev.Site, Expires: expires})
			if err != nil {
				return "", err
			}
			return links.URL(s.baseURL, token), nil
		},
		From: cfg.Email.From, ReplyTo: cfg.Email.ReplyTo,
		DeadLetter: func(ctx context.Context, key string, effect []byte, reason error) error {
			return natsbus.DeadEffect(ctx, s.js, key, effect, reason, time.Now())
		},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	s.httpAddr = ln.Addr().String()
	s.baseURL = cfg.HTTP.BaseURL
	if s.baseURL == "" { // only in tests, which listen on port 0
		s.baseURL = "http://" + s.httpAddr
	}
	mux := http.NewServeMux()
	mux.Handle("/l/", &links.Handler{Signer: signer, Publisher: &publisher{js: s.js, subject: linkSubject}, Logger: logger, SiteName: cfg.HTTP.SiteName, TrustProxy: cfg.HTTP.TrustProxy})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.nc.Status() != nats.CONNECTED {
			http.Error(w, "NATS "+s.nc.Status().String(), http.StatusServiceUnavailable)
			return
		}
		select {
		case <-s.stopped:
			http.Error(w, "not consuming events", http.StatusServiceUnavailable)
			return
		default:
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "err", err)
		}
	}()

	consumer := &ingest.Consumer{
		Consumer: res.Consumer,
		Handle:   run.Handle,
		DeadLetter: func(ctx context.Context, msg jetstream.Msg, reason error) error {
			return natsbus.DeadLetter(ctx, s.js, msg, reason, time.Now())
		},
		Workers: cfg.Workers,
		AckWait: natsbus.AckWait,
		Logger:  logger,
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.stopped = make(chan struct{})
	s.consumer.Go(func() {
		defer close(s.stopped)
		if err := consumer.Run(runCtx); err != nil {
			s.runErr = err
			logger.Error("stopped consuming events", "err", err)
		}
	})
	return s, nil
}

func (s *server) startNATS(ctx context.Context) error {
	cfg := s.cfg.NATS
	url := cfg.URL
	if url == "" {
		host, portText, _ := net.SplitHostPort(cfg.Listen)
		port, err := strconv.Atoi(portText)
		if err != nil {
			return fmt.Errorf("nats.listen: %w", err)
		}
		s.embedded, err = natsbus.StartEmbedded(natsbus.EmbeddedConfig{
			Host: host, Port: port, StoreDir: filepath.Join(s.cfg.DataDir, "nats"),
			SyncAlways: *cfg.Fsync, Logger: s.logger,
		})
		if err != nil {
			return err
		}
		url = s.embedded.ClientURL()
	}
	s.natsURL = url
	nc, err := natsbus.Connect(natsbus.ConnectOptions{
		URL: url, CredsFile: cfg.Creds, NKeyFile: cfg.NKey, User: cfg.User,
		Password: string(cfg.Password), Token: string(cfg.Token),
		CAFile: cfg.TLS.CA, CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key,
		Name: "herald serve", Logger: s.logger,
	})
	if err != nil {
		return err
	}
	s.nc = nc
	s.js, err = jetstream.New(nc)
	return err
}

// linkSigner uses the keys in HERALD_LINK_KEYS, or else a key generated
// once and kept in the data directory, so links keep working across
// restarts.
func linkSigner(dataDir string, logger *slog.Logger) (*links.Signer, error) {
	spec := string(config.LinkKeys())
	if spec == "" {
		path := filepath.Join(dataDir, "link-keys")
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			secret := make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				return nil, err
			}
			data = []byte("k1:" + base64.RawURLEncoding.EncodeToString(secret) + "\n")
			if err := os.MkdirAll(dataDir, 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				return nil, fmt.Errorf("keep link key: %w", err)
			}
			logger.Info("generated a link signing key; set HERALD_LINK_KEYS to manage keys yourself", "file", path)
		} else if err != nil {
			return nil, fmt.Errorf("read link key: %w", err)
		}
		spec = string(data)
	}
	keys, err := links.ParseKeys(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvLinkKeys, err)
	}
	return links.NewSigner(keys...)
}

// publisher publishes events to JetStream, deduplicated by event id.
type publisher struct {
	js      jetstream.JetStream
	subject string // default emitSubject
}

// Emit implements runner.Emitter.
func (p *publisher) Emit(ctx context.Context, ev *event.Event) error { return p.Publish(ctx, ev) }

// Publish implements links.Publisher.
func (p *publisher) Publish(ctx context.Context, ev *event.Event) error {
	data, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	subject := p.subject
	if subject == "" {
		subject = emitSubject
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if ev.Depth > 0 {
		msg.Header.Set(ingest.DepthHeader, strconv.Itoa(ev.Depth))
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	return nil
}

func (s *server) banner(w io.Writer) {
	nats := s.natsURL
	if s.embedded != nil {
		fsync := "off"
		if *s.cfg.NATS.Fsync {
			fsync = "on every write"
		}
		nats += fmt.Sprintf(" (embedded, store %s, fsync %s)", filepath.Join(s.cfg.DataDir, "nats"), fsync)
	}
	mail := fmt.Sprint(s.mailer)
	fmt.Fprintf(w, "Herald is running.\n")
	fmt.Fprintf(w, "  NATS     %s\n", nats)
	fmt.Fprintf(w, "  events   publish JSON events to herald.events.> (nats pub herald.events.web '{...}', or herald publish FILE.jsonl)\n")
	fmt.Fprintf(w, "  HTTP     http://%s (signed links under %s/l/)\n", s.httpAddr, s.baseURL)
	fmt.Fprintf(w, "  email    %s\n", mail)
	fmt.Fprintf(w, "  rules    %d rules from %v\n", s.rules.Len(), s.cfg.Rules)
	fmt.Fprintf(w, "Press Ctrl-C to stop; send SIGHUP to reload the rules.\n")
}

// shutdown stops pulling events, lets the events under way finish, then
// closes HTTP, NATS and the embedded server. Calling it again does nothing.
func (s *server) shutdown() error {
	s.shutdownOnce.Do(s.stop)
	return s.runErr
}

func (s *server) stop() {
	if s.cancel != nil {
		s.cancel()
		s.consumer.Wait()
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.http.Shutdown(ctx)
	}
	if s.nc != nil {
		closed := make(chan struct{})
		s.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := s.nc.Drain(); err != nil {
			s.nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			s.nc.Close()
		}
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}
