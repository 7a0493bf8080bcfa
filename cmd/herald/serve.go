package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/rules"
)

func (c *cli) serve(args []string) int {
	fl := c.flags("serve", "[--config herald.yaml]", `Run Herald: consume events from NATS JetStream, apply the rules, send the
emails, and serve the signed link pages over HTTP. The configuration is the
--config file, else the file $HERALD_CONFIG names, else ./herald.yaml when
there is one; the other verbs look for it the same way. Without one it
starts an embedded NATS server on 127.0.0.1:4222 with its store in ./data,
HTTP on 127.0.0.1:8080, writes emails to ./data/outbox and loads the double
opt-in example. Secrets come from the environment: HERALD_LINK_KEYS,
HERALD_SMTP_PASSWORD, HERALD_NATS_PASSWORD, HERALD_NATS_TOKEN,
HERALD_WEBHOOK_SECRET.`)
	configPath := fl.String("config", "", "configuration `file` (YAML; default: $"+envConfig+", else ./"+defaultConfigFile+" when there is one)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(c.stderr, "herald serve: unexpected argument %q; rule directories go in the config file (rules:)\n", fl.Arg(0))
		return exitUsage
	}
	cfg, file, ok := c.loadConfig(*configPath)
	if !ok {
		return exitUsage
	}
	logger := newLogger(c.stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(c.context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		var errs rules.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(c.stderr, errs)
		} else {
			fmt.Fprintf(c.stderr, "herald serve: %v\n", err)
		}
		return exitUsage
	}
	a.Banner(c.stdout, configFlagFor(file))
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = a.Reload() // logged; the rules in use stay
		}
	}()
	_ = a.Run(ctx)
	stop() // a second signal ends the process at once
	logger.Info("shutting down: finishing the events under way")
	if err := a.Shutdown(); err != nil {
		fmt.Fprintf(c.stderr, "herald serve: %v\n", err)
		return exitFailed
	}
	return exitOK
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
