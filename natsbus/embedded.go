package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long StartEmbedded waits for the server to accept
// clients.
const readyTimeout = 10 * time.Second

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// Host is the address to listen on; default 127.0.0.1.
	Host string
	// Port is the client port; default 4222. -1 picks a free port (tests).
	Port int
	// StoreDir is the JetStream store directory, e.g. ./data/nats.
	// Required.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before acknowledging
	// it, so an acknowledged event survives a power cut. Without it the
	// server syncs every two minutes.
	SyncAlways bool
	// Logger receives the server's warnings and errors (its notices at
	// debug level). Nil discards them.
	Logger *slog.Logger
}

// Embedded is a nats-server with JetStream running inside the process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a nats-server with JetStream in the process and
// waits until it accepts clients. An occupied port or an unusable store
// directory is reported as an error naming the address.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("start nats-server: store directory is required")
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = 4222
	}
	if port < -1 || port > 65535 {
		return nil, fmt.Errorf("start nats-server: port %d out of range", port)
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(port))
	if port == -1 {
		hostPort = net.JoinHostPort(host, "(any free port)")
	}

	opts := &server.Options{
		ServerName: "herald",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true, // the process owning the server handles signals
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats-server on %s: %w", hostPort, err)
	}
	logger := newServerLogger(cfg.Logger)
	srv.SetLoggerV2(logger, false, false, false)

	// Start runs the listener and JetStream set-up synchronously and
	// reports their failure only through Fatalf, which the logger records.
	srv.Start()
	if msg := logger.fatal(); msg != "" {
		stop(srv)
		return nil, startError(hostPort, msg)
	}
	if !srv.ReadyForConnections(readyTimeout) {
		stop(srv)
		if msg := logger.fatal(); msg != "" {
			return nil, startError(hostPort, msg)
		}
		return nil, fmt.Errorf("start nats-server on %s: not ready for connections after %s", hostPort, readyTimeout)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL returns the URL clients connect to, with the port the server
// actually listens on.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server gracefully: it closes client connections,
// flushes JetStream to the store and returns when the server is down. It
// may be called more than once.
func (e *Embedded) Shutdown() { stop(e.srv) }

func stop(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// startError turns the server's fatal message into Herald's error.
func startError(hostPort, msg string) error {
	if strings.Contains(msg, "address already in use") {
		return fmt.Errorf("start nats-server: listen on %s: address already in use (is another nats-server or Herald running?)", hostPort)
	}
	return fmt.Errorf("start nats-server on %s: %s", hostPort, msg)
}

// serverLogger bridges nats-server's logger to slog and remembers the first
// fatal message, which is how the server reports a failed start.
type serverLogger struct {
	log *slog.Logger

	mu       sync.Mutex
	fatalMsg string
}

var _ server.Logger = (*serverLogger)(nil)

func newServerLogger(l *slog.Logger) *serverLogger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &serverLogger{log: l.With("component", "nats-server")}
}

func (l *serverLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalMsg
}

func (l *serverLogger) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

// Noticef logs the server's notices at debug level: they are start-up
// banners and routine state changes.
func (l *serverLogger) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }

// Warnf logs a warning.
func (l *serverLogger) Warnf(format string, v ...any) { l.emit(slog.LevelWarn, format, v) }

// Errorf logs an error.
func (l *serverLogger) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v) }

// Fatalf logs an error and records it; unlike the server's own logger it
// does not exit the process.
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalMsg == "" {
		l.fatalMsg = msg
	}
	l.mu.Unlock()
	l.log.Error(msg)
}

// Debugf drops debug output, which is never enabled.
func (l *serverLogger) Debugf(string, ...any) {}

// Tracef drops protocol traces, which are never enabled.
func (l *serverLogger) Tracef(string, ...any) {}
