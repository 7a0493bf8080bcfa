package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventsSubject is where benchrun publishes events.
const eventsSubject = "herald.events.bench"

// pauseFor is how long a preloaded consumer stays paused unless resumed:
// herald serve starts on the preloaded stream with its consumer paused, so
// that its start-up is not part of what is measured.
const pauseFor = time.Hour

// embedded runs fn against an embedded NATS server on storeDir started as
// herald serve starts it, with JetStream set up as herald serve sets it up
// (natsbus.Setup), then shuts the server down, which flushes the store.
// fsync is off: loading data is not what is measured.
func embedded(ctx context.Context, storeDir string, fn func(*natsbus.Resources, jetstream.JetStream) error) error {
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: -1, StoreDir: storeDir, SyncAlways: false})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	res, err := natsbus.Setup(ctx, js, natsbus.SetupConfig{})
	if err != nil {
		return err
	}
	return fn(res, js)
}

// preload publishes n events, payload(i) for i in [0, n), to the events
// stream in the data directory dataDir (its NATS store is DATA_DIR/nats,
// as herald.yaml documents), and leaves herald serve's consumer paused.
func preload(ctx context.Context, dataDir string, n int, payload func(i int) []byte) error {
	return embedded(ctx, filepath.Join(dataDir, "nats"), func(res *natsbus.Resources, js jetstream.JetStream) error {
		if err := pauseConsumers(ctx, js, res.Events); err != nil {
			return err
		}
		if err := publishAll(ctx, js, n, payload); err != nil {
			return err
		}
		info, err := res.Events.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(n) {
			return fmt.Errorf("preload: stream holds %d events, want %d", info.State.Msgs, n)
		}
		return nil
	})
}

// publishAll publishes payload(i) for i in [0, n) with asynchronous
// JetStream publishes, and waits for every ack. A failed publish shows as
// an event missing from the stream, which the callers check.
func publishAll(ctx context.Context, js jetstream.JetStream, n int, payload func(i int) []byte) error {
	for i := range n {
		if err := publishAsync(ctx, js, eventsSubject, payload(i)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Minute):
		return errors.New("publish: acks still missing after 10 minutes")
	}
}

// publishAsync publishes asynchronously, waiting while too many
// publishes are waiting for their acks.
func publishAsync(ctx context.Context, js jetstream.JetStream, subject string, data []byte) error {
	for {
		_, err := js.PublishAsync(subject, data)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if err != nil {
				return fmt.Errorf("publish to %s: %w", subject, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// client is a connection to a running herald serve's NATS.
type client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	// watched are the consumers herald serve consumes the events through.
	watched []jetstream.Consumer
}

// connect connects to url.
func connect(ctx context.Context, url string) (*client, error) {
	nc, err := nats.Connect(url, nats.Name("benchrun"))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, err
	}
	events, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("look up stream %s: %w", natsbus.EventsStream, err)
	}
	return &client{nc: nc, js: js, events: events}, nil
}

func (c *client) close() { c.nc.Close() }

// start lets herald serve consume the preloaded events and returns when
// it started. If every consumer on the events stream is paused (preload
// paused herald serve's), it resumes them, watches them and returns when
// the first event was delivered (see firstDelivery). If herald
// serve brought consumers of its own (another layout than the one
// preload set up), it watches those, which have been consuming since
// start-up, and returns p's start time with a note saying so.
//
// It also returns the CPU time p had used at that moment.
func (c *client) start(ctx context.Context, p *proc) (time.Time, time.Duration, string, error) {
	var paused, active []string
	infos := c.events.ListConsumers(ctx)
	for info := range infos.Info() {
		if info.Paused {
			paused = append(paused, info.Name)
		} else {
			active = append(active, info.Name)
		}
	}
	if err := infos.Err(); err != nil {
		return time.Time{}, 0, "", fmt.Errorf("list consumers: %w", err)
	}
	watch, t0, note := paused, time.Time{}, ""
	if len(active) > 0 {
		watch, t0 = active, p.started
		note = fmt.Sprintf("herald serve consumed through consumers of its own (%v), not the one preloaded and paused: timed from the process's start, start-up included", active)
	}
	if len(watch) == 0 {
		return time.Time{}, 0, "", fmt.Errorf("no consumer on stream %s", natsbus.EventsStream)
	}
	for _, name := range watch {
		cons, err := c.events.Consumer(ctx, name)
		if err != nil {
			return time.Time{}, 0, "", err
		}
		c.watched = append(c.watched, cons)
	}
	if len(active) > 0 {
		return t0, 0, note, nil
	}
	for _, name := range paused {
		if _, err := c.js.ResumeConsumer(ctx, natsbus.EventsStream, name); err != nil {
			return time.Time{}, 0, "", fmt.Errorf("resume consumer %s: %w", name, err)
		}
	}
	t0, cpu0, err := c.firstDelivery(ctx, p)
	return t0, cpu0, "", err
}

// firstDelivery waits until the watched consumers deliver their first
// event and returns the last moment they had delivered none. herald serve
// asked for events while its consumer was paused, and a pull request made
// then may wait out its expiry before the next one is served: timing from
// the resume would count that wait, which a herald serve starting on a
// backlog does not have.
func (c *client) firstDelivery(ctx context.Context, p *proc) (time.Time, time.Duration, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		cpu, err := p.cpu()
		if err != nil {
			return time.Time{}, 0, err
		}
		sent := time.Now()
		for _, cons := range c.watched {
			info, err := cons.Info(ctx)
			if err != nil {
				return time.Time{}, 0, fmt.Errorf("consumer info: %w", err)
			}
			if info.Delivered.Consumer > 0 {
				return sent, cpu, nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, 0, errors.New("no event delivered a minute after the consumer was resumed")
		}
		select {
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// remaining returns how many events herald serve has not acked yet:
// pending and awaiting their ack, over the consumers it uses.
func (c *client) remaining(ctx context.Context) (uint64, error) {
	var n uint64
	for _, cons := range c.watched {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("consumer info: %w", err)
		}
		n += info.NumPending + uint64(info.NumAckPending)
	}
	return n, nil
}

// pauseConsumers pauses every consumer of the events stream.
func pauseConsumers(ctx context.Context, js jetstream.JetStream, events jetstream.Stream) error {
	names := events.ConsumerNames(ctx)
	for name := range names.Name() {
		if _, err := js.PauseConsumer(ctx, natsbus.EventsStream, name, time.Now().Add(pauseFor)); err != nil {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
	}
	return names.Err()
}

// deadLetters counts the messages in the dead-letter stream.
func (c *client) deadLetters(ctx context.Context) (uint64, error) {
	s, err := c.js.Stream(ctx, natsbus.DeadStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// natsServerMain is `benchrun nats-server`: an embedded NATS server started
// exactly as herald serve starts it (natsbus.StartEmbedded, JetStream in
// DATA_DIR/nats, fsync on every write by default), without Herald, for the
// raw baseline. It runs until SIGTERM or SIGINT.
func natsServerMain(args []string) int {
	fl := flag.NewFlagSet("benchrun nats-server", flag.ContinueOnError)
	store := fl.String("store", "", "JetStream store `dir`")
	port := fl.Int("port", 4222, "client `port` on 127.0.0.1")
	fsync := fl.Bool("fsync", true, "sync every write to disk (herald serve's default)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Port: *port, StoreDir: *store, SyncAlways: *fsync})
	if err != nil {
		log.Print(err)
		return 1
	}
	fmt.Printf("nats-server listening at %s (store %s, fsync %v)\n", srv.ClientURL(), *store, *fsync)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Shutdown()
	return 0
}
