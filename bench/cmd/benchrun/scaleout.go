package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The scale-out figure: herald serve engines sharing a partitioned events
// stream (nats.partitions 12, nats.replicas 3) on a three-server NATS
// cluster. The servers run in benchrun's own process (nats-server's
// server package, each with its own store and routes to the others, as
// three machines would run them), the engines as herald serve processes
// of their own. See bench/README.md.

const (
	scalePartitions = 12
	scaleReplicas   = 3
	// scaleSource is the source token of the events published: they go on
	// herald.events.bench.<customer>, their customer's subject, as the
	// collector publishes them.
	scaleSource = "bench"
	// scaleTrickle is the events/s published while engines are killed.
	scaleTrickle = 30
)

// scaleConfig is an engine's configuration: the shipped defaults, with
// the cluster, the partitions and this engine's name, directory and port.
const scaleConfig = `# Written by benchrun: an engine of the scale-out figure.
data_dir: %q
engine_name: %q
rules:
  - %q
nats:
  url: %q
  replicas: 3
  partitions: 12
http:
  listen: %q
`

// ScaleOut is the scale-out figure.
type ScaleOut struct {
	Events int // events per run
	// Engines holds, for 1, 2 and 3 engines, the events/s of each run and
	// the raw baseline measured just before it.
	Engines []ScaleRow
	// Failover is, per engine killed, the time from the kill until every
	// partition had handled an event of a new customer published at the
	// kill (its email in an outbox); Moved counts the partitions that took
	// more than a second (those the engine held). Floor is the time until
	// every partition had acknowledged every event published up to the
	// kill, those the killed engine held included.
	Failover, Floor []time.Duration
	Moved           []int
	Notes           []string
}

// ScaleRow is one number of engines.
type ScaleRow struct {
	Engines int
	Rate    Samples // events/s, one per run
	Raw     Samples // raw R3 writes/s on the same cluster, one per run
	Cores   Samples // CPU all engines used during the run, in cores
	Servers Samples // CPU benchrun's process (the three servers) used, in cores
}

// cluster is three nats-servers in this process.
type cluster struct {
	servers []*server.Server
	urls    []string
}

// startCluster starts three clustered servers with JetStream, storing
// under dir, and waits until they have a meta leader.
func startCluster(ctx context.Context, dir string) (*cluster, error) {
	var ports []int
	for range scaleReplicas {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	c := &cluster{}
	for i := range scaleReplicas {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
			}
		}
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("s%d", i+1)),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		})
		if err != nil {
			c.shutdown()
			return nil, err
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			c.shutdown()
			return nil, fmt.Errorf("server s%d not ready for connections", i+1)
		}
		c.servers = append(c.servers, srv)
		c.urls = append(c.urls, srv.ClientURL())
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ready := true
		for _, s := range c.servers {
			if !s.JetStreamIsCurrent() || s.NumRoutes() < scaleReplicas-1 {
				ready = false
			}
		}
		if ready {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.shutdown()
			return nil, errors.New("the cluster elected no JetStream leader within a minute")
		}
		select {
		case <-ctx.Done():
			c.shutdown()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *cluster) url() string {
	out := ""
	for i, u := range c.urls {
		if i > 0 {
			out += ","
		}
		out += u
	}
	return out
}

func (c *cluster) shutdown() {
	for _, s := range c.servers {
		s.Shutdown()
	}
	for _, s := range c.servers {
		s.WaitForShutdown()
	}
}

// scaleOut measures the scale-out figure: events/s with 1, 2 and 3
// engines, beside raw R3 writes on the same cluster, then the failover
// time of engines killed.
func (h *harness) scaleOut(ctx context.Context, res *Results) error {
	so := &ScaleOut{Events: h.sc.ScaleEvents}
	res.ScaleOut = so
	dir, err := h.w.dir("scaleout")
	if err != nil {
		return err
	}
	defer h.w.discard(dir)
	cl, err := startCluster(ctx, filepath.Join(dir, "cluster"))
	if err != nil {
		return err
	}
	defer cl.shutdown()
	nc, err := nats.Connect(cl.url(), nats.Name("benchrun"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	var setupErr error
	for range 60 {
		if _, setupErr = natsbus.Setup(ctx, js, natsbus.SetupConfig{Replicas: scaleReplicas, Partitions: scalePartitions}); setupErr == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if setupErr != nil {
		return fmt.Errorf("set up the cluster: %w", setupErr)
	}
	s := &scaleRun{h: h, dir: dir, url: cl.url(), js: js}
	for k := 1; k <= 3; k++ {
		row := ScaleRow{Engines: k}
		for run := 1; run <= h.sc.ScaleRuns; run++ {
			raw, err := rawWrites(ctx, js, h.sc.ScaleRawFor)
			if err != nil {
				return fmt.Errorf("raw R3 writes: %w", err)
			}
			rate, cores, servers, notes, err := s.throughput(ctx, k, run)
			if err != nil {
				return fmt.Errorf("%d engines, run %d: %w", k, run, err)
			}
			row.Raw = append(row.Raw, raw)
			row.Rate = append(row.Rate, rate)
			row.Cores = append(row.Cores, cores)
			row.Servers = append(row.Servers, servers)
			for _, n := range notes {
				so.Notes = append(so.Notes, fmt.Sprintf("%d engines, run %d: %s", k, run, n))
			}
			log.Printf("scaleout: %d engines, run %d: %.0f events/s (raw R3 writes %.0f/s)", k, run, rate, raw)
		}
		so.Engines = append(so.Engines, row)
	}
	return s.failover(ctx, so)
}

// scaleRun is the state of one scale-out figure.
type scaleRun struct {
	h       *harness
	dir     string
	url     string
	js      jetstream.JetStream
	engines int // engines started so far, for their names
	events  int // events published so far, for their customers
}

// engine starts an engine and waits until it is ready.
func (s *scaleRun) engine(ctx context.Context) (*proc, error) {
	s.engines++
	name := fmt.Sprintf("e%d", s.engines)
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &proc{name: "herald serve " + name, httpAddr: httpAddr, dataDir: filepath.Join(dir, "data")}
	cfgPath := filepath.Join(dir, "herald.yaml")
	cfg := fmt.Sprintf(scaleConfig, p.dataDir, name, s.h.rulesDir(), s.url, httpAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := p.start(filepath.Join(dir, "herald.log"), s.h.o.herald, "serve", "--config", cfgPath); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, 2*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// settled waits until the engines hold every partition and the router
// between them, each some.
func settled(ctx context.Context, engines []*proc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		sum, each := 0.0, true
		for _, p := range engines {
			m, err := p.metrics("herald_partitions_owned")
			if err != nil {
				return err
			}
			sum += m["herald_partitions_owned"]
			if m["herald_partitions_owned"] == 0 {
				each = false
			}
		}
		if sum == scalePartitions+1 && each {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engines hold %v of %d partitions and the router after %s", sum, scalePartitions, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scaleEvent is a form submission of a new customer: a double opt-in
// request, so an email each.
func scaleEvent(uuid string) []byte {
	return fmt.Appendf(nil, `{"action":"form.submit","label":"Newsletter form","uuid":%q,"params":{"form_type":"newsletter","email":"%s@example.com","newsletter_agreement_enabled":"enabled"}}`, uuid, uuid)
}

// publish publishes a form of a new customer on their subject,
// asynchronously.
func (s *scaleRun) publish(ctx context.Context) error {
	s.events++
	uuid := fmt.Sprintf("s%d", s.events)
	return publishAsync(ctx, s.js, natsbus.CustomerSubject(natsbus.SourceSubject(scaleSource), uuid), scaleEvent(uuid))
}

// consumers returns the partition consumers, in partition order.
func (s *scaleRun) consumers(ctx context.Context) ([]jetstream.Consumer, error) {
	var out []jetstream.Consumer
	for i := range scalePartitions {
		c, err := s.js.Consumer(ctx, natsbus.EventsStream, natsbus.PartitionConsumerName(i))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// throughput starts k engines, waits until they share the partitions,
// publishes the run's events and measures until every one is acked: the
// events published over the time from the first publish to the last ack.
// Publishing (several thousand a second) overlaps consuming.
func (s *scaleRun) throughput(ctx context.Context, k, run int) (rate, cores, servers float64, notes []string, err error) {
	var engines []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range engines {
			wg.Go(p.stop)
		}
		wg.Wait()
	}()
	for range k {
		p, err := s.engine(ctx)
		if err != nil {
			return 0, 0, 0, nil, err
		}
		engines = append(engines, p)
	}
	if err := settled(ctx, engines, time.Minute); err != nil {
		return 0, 0, 0, nil, err
	}
	cons, err := s.consumers(ctx)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	n := s.h.sc.ScaleEvents
	cpu0 := make([]time.Duration, len(engines))
	for i, p := range engines {
		if cpu0[i], err = p.cpu(); err != nil {
			return 0, 0, 0, nil, err
		}
	}
	self := &proc{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}}
	own0, err := self.cpu()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	t0 := time.Now()
	for range n {
		if err := s.publish(ctx); err != nil {
			return 0, 0, 0, nil, err
		}
	}
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, 0, 0, nil, errors.New("publish: acks still missing after a minute")
	}
	published := time.Since(t0)
	deadline := t0.Add(s.h.sc.ScaleCap)
	var end time.Time
	for {
		left := uint64(0)
		for _, c := range cons {
			info, err := c.Info(ctx)
			if err != nil {
				return 0, 0, 0, nil, err
			}
			left += info.NumPending + uint64(info.NumAckPending)
		}
		now := time.Now()
		if left == 0 {
			end = now
			break
		}
		if now.After(deadline) {
			end = now
			n -= int(left)
			notes = append(notes, fmt.Sprintf("cut short after %s with %d events left", s.h.sc.ScaleCap, left))
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, 0, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := end.Sub(t0)
	var used time.Duration
	for i, p := range engines {
		c, err := p.cpu()
		if err != nil {
			return 0, 0, 0, nil, err
		}
		used += c - cpu0[i]
	}
	own1, err := self.cpu()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	if published > elapsed/4 {
		notes = append(notes, fmt.Sprintf("publishing took %s of the %s", published.Round(time.Millisecond), elapsed.Round(time.Millisecond)))
	}
	emails := 0
	for _, p := range engines {
		emails += countEmails(filepath.Join(p.dataDir, "outbox"))
	}
	if emails < n {
		notes = append(notes, fmt.Sprintf("%d emails in the engines' outboxes, want %d", emails, n))
	}
	return float64(n) / elapsed.Seconds(), used.Seconds() / elapsed.Seconds(), (own1 - own0).Seconds() / elapsed.Seconds(), notes, nil
}

// rawWrites measures raw replicated writes on the cluster: 4 writers (as
// an engine's 4 workers) each publishing to an R3 file stream and waiting
// for its ack, for d. Each event Herald handles here takes several such
// writes (the profile, the email index, the effect's mark, the ack).
func rawWrites(ctx context.Context, js jetstream.JetStream, d time.Duration) (float64, error) {
	const stream = "BENCH_RAW"
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"bench.raw.>"}, Replicas: scaleReplicas, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), stream) }()
	_ = st
	payload := make([]byte, 300)
	var mu sync.Mutex
	total := 0
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			n := 0
			for time.Since(start) < d && ctx.Err() == nil {
				if _, err := js.Publish(ctx, fmt.Sprintf("bench.raw.%d", w), payload); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				n++
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// failover starts three engines and, while events trickle in, kills one
// at a time with SIGKILL, measuring from the kill until every partition
// has consumed an event published at the kill; a new engine replaces the
// one killed before the next kill.
func (s *scaleRun) failover(ctx context.Context, so *ScaleOut) error {
	var engines []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range engines {
			wg.Go(p.stop)
		}
		wg.Wait()
	}()
	for range 3 {
		p, err := s.engine(ctx)
		if err != nil {
			return err
		}
		engines = append(engines, p)
	}
	if err := settled(ctx, engines, time.Minute); err != nil {
		return err
	}
	cons, err := s.consumers(ctx)
	if err != nil {
		return err
	}
	tctx, stopTrickle := context.WithCancel(ctx)
	defer stopTrickle()
	var trickle sync.WaitGroup
	trickle.Go(func() {
		t := time.NewTicker(time.Second / scaleTrickle)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
				_ = s.publish(tctx)
			}
		}
	})
	defer trickle.Wait()
	defer stopTrickle()
	for kill := range s.h.sc.ScaleKills {
		time.Sleep(3 * time.Second) // events under way on every engine
		victim := engines[kill%len(engines)]
		_ = victim.cmd.Process.Kill()
		killed := time.Now()
		<-victim.exited
		// One event of a new customer for each partition, published at
		// the kill; its email in an outbox shows it handled.
		probes := make([]uint64, scalePartitions)
		for p := range scalePartitions {
			uuid := probeCustomer(kill, p)
			ack, err := s.js.Publish(ctx, natsbus.CustomerSubject(natsbus.SourceSubject(scaleSource), uuid), scaleProbe(uuid))
			if err != nil {
				return fmt.Errorf("publish probe: %w", err)
			}
			probes[p] = ack.Sequence
		}
		took := make([]time.Duration, scalePartitions)
		floor := make([]time.Duration, scalePartitions)
		left, floorLeft := scalePartitions, scalePartitions
		deadline := killed.Add(3 * time.Minute)
		for left > 0 || floorLeft > 0 {
			if left > 0 {
				handled := probesHandled(kill, engines)
				for p := range scalePartitions {
					if took[p] == 0 && handled[p] {
						took[p] = time.Since(killed)
						left--
					}
				}
			}
			for p, c := range cons {
				if floor[p] > 0 {
					continue
				}
				info, err := c.Info(ctx)
				if err != nil {
					continue // a leader election; asked again
				}
				if info.AckFloor.Stream >= probes[p] {
					floor[p] = time.Since(killed)
					floorLeft--
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("kill %d: %d partitions did not handle a new event, %d did not acknowledge every event, 3 minutes after the kill", kill+1, left, floorLeft)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		moved := 0
		for _, d := range took {
			if d > time.Second {
				moved++
			}
		}
		so.Failover = append(so.Failover, slices.Max(took))
		so.Floor = append(so.Floor, slices.Max(floor))
		so.Moved = append(so.Moved, moved)
		log.Printf("scaleout: kill %d: every partition handled a new event %s after the kill (%d partitions waited over a second), acknowledged every event after %s",
			kill+1, slices.Max(took).Round(10*time.Millisecond), moved, slices.Max(floor).Round(10*time.Millisecond))
		p, err := s.engine(ctx)
		if err != nil {
			return err
		}
		engines[kill%len(engines)] = p
		if err := settled(ctx, engines, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// scaleProbe is the form of a probe customer, with an id its email's
// file name shows (see probesHandled).
func scaleProbe(uuid string) []byte {
	return fmt.Appendf(nil, `{"id":"probe-%s","action":"form.submit","label":"Newsletter form","uuid":%q,"params":{"form_type":"newsletter","email":"%s@example.com","newsletter_agreement_enabled":"enabled"}}`, uuid, uuid, uuid)
}

// probesHandled reports, for each partition, whether the probe of kill
// has its email in an engine's outbox: its file name holds the email's
// Message-ID, which starts with the event's id.
func probesHandled(kill int, engines []*proc) []bool {
	out := make([]bool, scalePartitions)
	prefix := fmt.Sprintf("-probe-k%dp", kill)
	for _, e := range engines {
		entries, err := os.ReadDir(filepath.Join(e.dataDir, "outbox"))
		if err != nil {
			continue
		}
		for _, d := range entries {
			_, rest, ok := strings.Cut(d.Name(), prefix)
			if !ok {
				continue
			}
			var p int
			if _, err := fmt.Sscanf(rest, "%dn", &p); err == nil && p >= 0 && p < scalePartitions {
				out[p] = true
			}
		}
	}
	return out
}

// probeCustomer returns a new customer whose events go to partition p.
func probeCustomer(kill, p int) string {
	for i := 0; ; i++ {
		uuid := fmt.Sprintf("k%dp%dn%d", kill, p, i)
		if natsbus.PartitionOf(natsbus.CustomerToken(uuid), scalePartitions) == p {
			return uuid
		}
	}
}
