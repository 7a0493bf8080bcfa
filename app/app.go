// Package app is the running Herald server: it wires NATS (embedded or an
// existing deployment), the rules, the applier with its effectors, the
// JetStream consumer with its handler chain, and the HTTP server (signed
// link pages, /healthz, /readyz, /metrics). The CLI builds one from the
// configuration with New and drives it with Run, Reload and Shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/engine"
	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/ingest/collector"
	"github.com/herald-events/herald/ingest/collector/web"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/privacy"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/runner"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// App is a running Herald.
type App struct {
	cfg      *config.Config
	logger   *slog.Logger
	registry *prometheus.Registry

	embedded *natsbus.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	natsURL  string
	mailer   email.Sender
	engine   *engine.Engine
	consumer *ingest.Consumer
	apply    *runner.Runner
	timers   *natsbus.Timers

	http     *http.Server
	httpAddr string
	baseURL  string

	mu      sync.Mutex
	rules   *rules.Set
	started bool // Run was called
	closing bool // Shutdown was called

	life    context.Context // ends at Shutdown
	cancel  context.CancelFunc
	stopped chan struct{} // closed when Run returns
	runErr  error

	shutdownOnce sync.Once
}

// New starts every part of Herald but the consumer, which Run starts; on
// error it stops what it started. A *rules.Errors error means the rule
// files are broken.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, logger: logger, registry: prometheus.NewRegistry(), stopped: make(chan struct{})}
	a.life, a.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = a.Shutdown()
		}
	}()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.rules, err = LoadRules(cfg); err != nil {
		return nil, err
	}
	logWarnings(logger, a.rules)
	// What the configuration gets wrong is refused before anything starts.
	if _, err := Webhook(cfg); err != nil {
		return nil, err
	}
	if a.mailer, err = Mailer(cfg); err != nil {
		return nil, err
	}
	if err := a.startNATS(); err != nil {
		return nil, err
	}
	res, err := natsbus.Setup(ctx, a.js, natsbus.SetupConfig{Replicas: cfg.NATS.Replicas, Partitions: cfg.NATS.Partitions,
		EventsMaxAge: time.Duration(cfg.Retention.Events), DeadMaxAge: time.Duration(cfg.Retention.DeadLetters)})
	if err != nil {
		return nil, fmt.Errorf("set up streams: %w", err)
	}
	signer, err := LinkSigner(cfg.DataDir, logger)
	if err != nil {
		return nil, err
	}
	a.timers = natsbus.NewTimers(a.js)
	effectors, err := Effectors(cfg, a.mailer, natsbus.NewPublisher(a.js, natsbus.EmitSubject), a.timers)
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	a.httpAddr = ln.Addr().String()
	a.baseURL = cfg.HTTP.BaseURL
	if a.baseURL == "" { // only in tests, which listen on port 0
		a.baseURL = "http://" + a.httpAddr
	}

	name, err := EngineName(cfg)
	if err != nil {
		return nil, err
	}
	a.engine = engine.New(a.rules)
	recent := newRecentPlans()
	profiles := profile.NewKV(res.Profiles)
	priv := Privacy(cfg, privacy.Config{JS: a.js, Profiles: profiles})
	// Effects performed are marked where every engine sees them, so that
	// whoever handles a customer next, after this engine died, does not
	// perform them again (runner.Marks).
	marks, err := natsbus.Effects(ctx, a.js)
	if err != nil {
		return nil, err
	}
	apply, err := runner.New(runner.Config{
		Engine:    a.engine,
		Store:     profiles,
		Effectors: effectors,
		Linker:    runner.SignedLinks(signer, a.baseURL),
		DeadLetter: func(ctx context.Context, key string, effect []byte, reason error) error {
			return natsbus.DeadEffect(ctx, a.js, key, effect, reason, time.Now())
		},
		Metrics:    runner.NewMetrics(a.registry),
		Suppressed: suppressedEmail(profiles, priv.Hasher),
		LazyClear:  true,
		Owner:      name,
		Marks:      &natsbus.EffectMarks{KV: marks, Engine: name},
		// The latest plans of recent customers, explained on request
		// (herald profile UUID --explain; see explain.go).
		Observe: func(ap *runner.Applied) { recent.add(a.engine.Rules(), ap) },
		Logger:  logger,
	})
	if err != nil {
		return nil, err
	}
	a.apply = apply
	if _, err := answerExplain(a.nc, recent, name, logger); err != nil {
		return nil, fmt.Errorf("answer explanation requests: %w", err)
	}
	sites, err := Sites(cfg)
	if err != nil {
		return nil, err
	}
	metrics := ingest.NewMetrics(a.registry)
	a.consumer = &ingest.Consumer{
		Consumer: res.Consumer,
		// Recover comes after logging and metrics, so they see a panic as
		// the permanent error it becomes.
		// LinkProof dead-letters link-only actions (newsletter.confirm, …)
		// that no link page published. Replays do not run this chain.
		Handle: ingest.Chain(apply.Handle, ingest.Log(logger), ingest.Instrument(metrics), ingest.Recover(logger),
			ingest.LinkProof(func(action string) bool { return a.engine.Rules().IsLinkAction(action) }, signer.VerifyProof),
			ingest.SiteLists(sites, func(action string) bool { return a.engine.Rules().IsLinkAction(action) }, a.registry, logger)),
		DeadLetter: func(ctx context.Context, msg jetstream.Msg, reason error) error {
			return natsbus.DeadLetter(ctx, a.js, msg, reason, time.Now())
		},
		// Events no rule wants (page views, mostly) are acked as they
		// are pulled; link-only actions still go through LinkProof.
		Wants: func(ev *event.Event) bool {
			return apply.Wants(ev) || a.engine.Rules().IsLinkAction(ev.Action)
		},
		AckSync:       cfg.Acks == config.AcksSync,
		Workers:       cfg.Workers,
		MaxDeliveries: cfg.MaxDeliveries,
		Attempts:      ingest.NewAttempts(a.js),
		AckWait:       natsbus.AckWait,
		Metrics:       metrics,
		Logger:        logger,
		// With nats.partitions, the engines share the partitions; see
		// docs/scaling.md.
		Partitions: res.Partitions,
		Engine:     name,
		Canonical:  canonicalCustomer(profiles),
		Released:   func(ctx context.Context) error { return apply.Flush(ctx, 0) },
	}

	collect, err := collector.New(collector.Config{
		Sites:      sites,
		Publisher:  natsbus.NewPublisher(a.js, natsbus.HTTPSubject),
		Reserved:   func(action string) bool { return a.engine.Rules().IsLinkAction(action) },
		Timed:      func(action string) bool { return a.engine.Rules().IsTimedAction(action) },
		Rate:       cfg.Collector.Rate,
		Burst:      cfg.Collector.Burst,
		TrustProxy: cfg.HTTP.TrustProxy,
		Logger:     logger,
		Metrics:    a.registry,
	})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", collect)
	mux.Handle("GET /herald.js", web.Handler())
	if len(cfg.Sites) > 0 {
		// The demo shop sends its events as the first site.
		mux.Handle("GET /demo", web.Demo(cfg.Sites[0].WriteKey))
	}
	mux.Handle("/l/", &links.Handler{Signer: signer, Publisher: natsbus.NewPublisher(a.js, natsbus.LinkSubject), Logger: logger, SiteName: cfg.HTTP.SiteName, TrustProxy: cfg.HTTP.TrustProxy,
		// Withdrawal wins: a confirmation link confirms only the request
		// the customer's profile still has open.
		Check: links.ConfirmationCheck("newsletter.confirm", func(ctx context.Context, uuid string) (links.Request, error) {
			res, err := profile.Resolve(ctx, profiles, uuid)
			if errors.Is(err, profile.ErrNotFound) || err == nil && res.Record.Profile == nil {
				return links.Request{}, nil
			}
			if err != nil {
				return links.Request{}, err
			}
			attr := res.Record.Profile.Attributes
			event, _ := attr[links.RequestEventAttribute].(string)
			agreement, _ := attr[links.AgreementAttribute].(string)
			return links.Request{Event: event, Agreement: agreement}, nil
		}),
	})
	mux.Handle("GET /v1/profiles/{uuid}", exportHandler(priv, config.AdminToken()))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "err", err)
		}
	}()
	return a, nil
}

// Run consumes events until ctx ends or consuming fails for good, then
// stops consuming, letting the events under way finish. It returns the
// error that stopped consuming, nil after ctx ended.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.started || a.closing {
		a.mu.Unlock()
		return errors.New("app: Run called twice, or after Shutdown")
	}
	a.started = true
	a.mu.Unlock()
	defer close(a.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(a.life, cancel)()
	stop := make(chan struct{})
	flushed := a.flushPerformed(context.WithoutCancel(ctx), stop)
	forwarded := make(chan struct{})
	go func() {
		// Fired timers go to the events stream as their customers' events.
		defer close(forwarded)
		if err := a.timers.Forward(ctx, natsbus.NewPublisher(a.js, natsbus.TimerSubject), a.logger); err != nil {
			a.logger.Error("fired timers are not forwarded", "err", err)
		}
	}()
	var swept <-chan struct{}
	if o, ok := a.mailer.(*email.Outbox); ok && a.cfg.Retention.Outbox > 0 {
		swept = a.sweepOutbox(o, time.Duration(a.cfg.Retention.Outbox), stop)
	}
	err := a.consumer.Run(ctx)
	cancel()
	<-forwarded
	close(stop)
	<-flushed
	if swept != nil {
		<-swept
	}
	if err != nil {
		a.runErr = err
		a.logger.Error("stopped consuming events", "err", err)
		return err
	}
	return nil
}

// flushInterval is how often the records of customers quiet for
// flushQuiet are written without the effects they list as performed
// (see runner.Config.LazyClear).
const (
	flushInterval = 500 * time.Millisecond
	flushQuiet    = time.Second
)

// flushPerformed clears performed effects from quiet customers' records
// every flushInterval until stop is closed, which it is once consuming
// stopped, then clears the rest. The channel returned is closed when it
// is done.
func (a *App) flushPerformed(ctx context.Context, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(flushInterval)
		defer t.Stop()
		for running := true; running; {
			select {
			case <-t.C:
				if err := a.apply.Flush(ctx, flushQuiet); err != nil {
					a.logger.Warn("clear performed effects; trying again later", "err", err)
				}
			case <-stop:
				running = false
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.apply.Flush(fctx, 0); err != nil {
			a.logger.Warn("clear performed effects at shutdown; the customers' next events will", "err", err)
		}
	}()
	return done
}

// Reload loads the rule files again and swaps them in. If any file has an
// error, the rules in use stay as they are and the error is returned.
func (a *App) Reload() error {
	set, err := LoadRules(a.cfg)
	if err != nil {
		a.logger.Error("rules not reloaded; the rules in use stay", "err", err)
		return err
	}
	a.engine.SetRules(set)
	a.mu.Lock()
	a.rules = set
	a.mu.Unlock()
	a.logger.Info("rules reloaded", "rules", set.Len())
	logWarnings(a.logger, set)
	return nil
}

// logWarnings logs what herald lint warns of in set: the rules load and
// run, but may not do what their author meant.
func logWarnings(logger *slog.Logger, set *rules.Set) {
	for _, w := range set.Warnings() {
		logger.Warn("rule warning (see herald lint)", "warning", w.Error())
	}
}

// Rules returns the rules in use.
func (a *App) Rules() *rules.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rules
}

// HTTPAddr is the address the HTTP server listens on; BaseURL is the
// address links in emails point at.
func (a *App) HTTPAddr() string { return a.httpAddr }

// BaseURL is the address links in emails point at.
func (a *App) BaseURL() string { return a.baseURL }

// NATSURL is the URL of the NATS server in use.
func (a *App) NATSURL() string { return a.natsURL }

// JetStream is the JetStream context the app uses.
func (a *App) JetStream() jetstream.JetStream { return a.js }

// Registry is the app's metrics registry, served at /metrics.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Stopped is closed when consuming has stopped.
func (a *App) Stopped() <-chan struct{} { return a.stopped }

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-a.stopped:
		http.Error(w, "not consuming events", http.StatusServiceUnavailable)
		return
	default:
	}
	_, _ = io.WriteString(w, "ok\n")
}

// readyz says whether the app can take work now: NATS connected and the
// consumer running, its pulls going through.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	if a.nc.Status() != nats.CONNECTED {
		http.Error(w, "NATS "+a.nc.Status().String(), http.StatusServiceUnavailable)
		return
	}
	if !a.consumer.Pulling() {
		select {
		case <-a.stopped:
		default:
			http.Error(w, "not pulling events: pulls from the events stream fail (see the log)", http.StatusServiceUnavailable)
			return
		}
	}
	a.healthz(w, r)
}

func (a *App) startNATS() error {
	cfg := a.cfg.NATS
	url := cfg.URL
	if url == "" {
		host, portText, _ := net.SplitHostPort(cfg.Listen)
		port, err := strconv.Atoi(portText)
		if err != nil {
			return fmt.Errorf("nats.listen: %w", err)
		}
		a.embedded, err = natsbus.StartEmbedded(natsbus.EmbeddedConfig{
			Host: host, Port: port, StoreDir: filepath.Join(a.cfg.DataDir, "nats"),
			SyncAlways: *cfg.Fsync, Logger: a.logger,
		})
		if err != nil {
			return err
		}
		url = a.embedded.ClientURL()
	}
	a.natsURL = url
	nc, err := natsbus.Connect(ConnectOptions(a.cfg, url, "herald serve", a.logger))
	if err != nil {
		return err
	}
	a.nc = nc
	a.js, err = jetstream.New(nc)
	return err
}

// Banner writes what is running where, for the person who started it,
// with commands to try that reach this Herald: a nats pub to its NATS
// server, herald publish and herald outbox. configFlag is what those verbs
// need to read this configuration ("--config /etc/herald/herald.yaml"),
// or "" when they find it by themselves.
func (a *App) Banner(w io.Writer, configFlag string) {
	nats := a.natsURL
	if a.embedded != nil {
		fsync := "off"
		if *a.cfg.NATS.Fsync {
			fsync = "on every write"
		}
		nats += fmt.Sprintf(" (embedded, store %s, fsync %s)", filepath.Join(a.cfg.DataDir, "nats"), fsync)
	}
	verb := func(name string) string {
		if configFlag == "" {
			return "herald " + name
		}
		return "herald " + name + " " + configFlag
	}
	fmt.Fprintf(w, "Herald is running.\n")
	fmt.Fprintf(w, "  NATS     %s\n", nats)
	fmt.Fprintf(w, "  events   publish JSON events to herald.events.> (nats pub -s %s herald.events.web '{...}', or %s FILE.jsonl)\n", a.natsURL, verb("publish"))
	fmt.Fprintf(w, "  HTTP     http://%s (signed links under %s/l/, metrics at /metrics)\n", a.httpAddr, a.baseURL)
	if n := len(a.cfg.Sites); n > 0 {
		fmt.Fprintf(w, "  web      %d site(s): herald.js at http://%s/herald.js, collector at /v1/events and /v1/forms, demo shop at http://%s/demo\n", n, a.httpAddr, a.httpAddr)
	}
	if _, ok := a.mailer.(*email.Outbox); ok {
		fmt.Fprintf(w, "  email    %s (read it with %s)\n", a.mailer, verb("outbox"))
	} else {
		fmt.Fprintf(w, "  email    %s\n", a.mailer)
	}
	fmt.Fprintf(w, "  rules    %d rules from %v\n", a.Rules().Len(), a.cfg.Rules)
	fmt.Fprintf(w, "Press Ctrl-C to stop; send SIGHUP to reload the rules.\n")
}

// Shutdown stops consuming, lets the events under way finish, then closes
// HTTP, NATS and the embedded server. It returns the error that stopped
// consuming, if any. Calling it again does nothing.
func (a *App) Shutdown() error {
	a.shutdownOnce.Do(a.stop)
	return a.runErr
}

func (a *App) stop() {
	a.mu.Lock()
	a.closing = true
	started := a.started
	a.mu.Unlock()
	a.cancel()
	if started {
		<-a.stopped
	}
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.http.Shutdown(ctx)
	}
	if a.nc != nil {
		closed := make(chan struct{})
		a.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := a.nc.Drain(); err != nil {
			a.nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			a.nc.Close()
		}
	}
	if a.embedded != nil {
		a.embedded.Shutdown()
	}
}
