package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/config"
)

// serveMain is `benchrun serve`: herald serve's app (app.New, Run,
// Shutdown) with the configuration file given, writing a CPU profile of
// the whole process, embedded NATS server included, to -cpuprofile. herald
// serve itself does not serve profiles; this is the same code under a
// profiler. It runs until SIGTERM or SIGINT.
func serveMain(args []string) int {
	fl := flag.NewFlagSet("benchrun serve", flag.ContinueOnError)
	path := fl.String("config", "", "configuration `file` (YAML), as herald serve --config")
	prof := fl.String("cpuprofile", "", "write a CPU profile to `file`")
	blockProf := fl.String("blockprofile", "", "write a profile of where goroutines wait to `file` when stopped")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun serve: %v\n", err)
		return 2
	}
	if *blockProf != "" {
		// After New: the embedded NATS server sets the rate when it
		// starts (to its prof_block_rate, 0 by default).
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		defer func() {
			if err := writeProfile("block", *blockProf); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
	}
	a.Banner(os.Stdout, "")
	_ = a.Run(ctx)
	if err := a.Shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun serve: %v\n", err)
		return 1
	}
	return 0
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
