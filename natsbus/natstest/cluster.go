package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterReady bounds how long StartCluster and Restart wait for the
// cluster to elect a JetStream meta leader and connect every route.
const clusterReady = 30 * time.Second

// Cluster is a JetStream cluster of nats-servers running in the test
// process, as a production deployment of several machines runs them: each
// server with its own store directory, routes between all of them, one
// JetStream meta leader. Servers can be killed and restarted on the same
// ports and store, so a test can take one away mid-stream.
type Cluster struct {
	t       testing.TB
	name    string
	servers []*ClusterServer
}

// ClusterServer is one server of a Cluster.
type ClusterServer struct {
	c *Cluster

	mu   sync.Mutex
	opts server.Options // ports filled in once known
	srv  *server.Server // nil while killed
}

// StartCluster starts a cluster of n servers (n from 1 to 5) with
// JetStream, each storing in a directory of its own under t.TempDir(), on
// free ports, and waits until it is ready: a meta leader elected and every
// server routed to every other. The servers stop when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 || n > 5 {
		t.Fatalf("start cluster: %d servers; want 1 to 5", n)
	}
	c := &Cluster{t: t, name: "herald-test"}
	// JetStream on a cluster needs routes configured from the start, so
	// each server routes to every other: their cluster ports are picked
	// first. Client ports are picked by the servers.
	ports, err := freePorts(n)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	for i := range n {
		c.servers = append(c.servers, &ClusterServer{c: c, opts: server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: ports[i]},
		}})
	}
	t.Cleanup(c.shutdown)
	for _, s := range c.servers {
		s.opts.Routes = c.routesFor(s)
		if err := s.start(); err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	c.WaitReady()
	return c
}

// Servers returns the cluster's servers.
func (c *Cluster) Servers() []*ClusterServer { return c.servers }

// Server returns the i-th server, from 0.
func (c *Cluster) Server(i int) *ClusterServer { return c.servers[i] }

// URLs returns every server's client URL.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.servers))
	for i, s := range c.servers {
		urls[i] = s.ClientURL()
	}
	return urls
}

// URL returns the servers' client URLs separated by commas, as nats.Connect
// and Herald's nats.url take them: a client fails over to another server
// when the one it uses goes away.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Connect connects to the cluster, reconnecting for as long as the test
// runs, and returns the connection and its JetStream. Both are closed when
// the test ends.
func (c *Cluster) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// WaitReady waits until the servers running have a JetStream meta leader,
// every one of them is current with it, and each is routed to every other
// server running.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(clusterReady)
	for {
		why := c.notReady()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not ready after %s: %s", clusterReady, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// notReady says why the cluster is not ready, "" when it is.
func (c *Cluster) notReady() string {
	var running []*server.Server
	for _, s := range c.servers {
		if srv := s.server(); srv != nil {
			running = append(running, srv)
		}
	}
	leader := false
	for _, srv := range running {
		if srv.NumRoutes() < len(running)-1 {
			return fmt.Sprintf("%s has %d routes, want %d", srv.Name(), srv.NumRoutes(), len(running)-1)
		}
		if srv.JetStreamIsLeader() {
			leader = true
		}
	}
	if !leader {
		return "no JetStream meta leader"
	}
	for _, srv := range running {
		if !srv.JetStreamIsCurrent() {
			return srv.Name() + " is not current with the meta leader"
		}
	}
	return ""
}

func (c *Cluster) shutdown() {
	for _, s := range c.servers {
		s.Kill()
	}
}

// Name returns the server's name (s1, s2, ...).
func (s *ClusterServer) Name() string { return s.opts.ServerName }

// ClientURL returns the URL clients connect to, which stays the same across
// a restart.
func (s *ClusterServer) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// HasClient reports whether a client connection named name is connected
// to the server, so that a test can take away the server a program under
// test uses.
func (s *ClusterServer) HasClient(name string) bool {
	srv := s.server()
	if srv == nil {
		return false
	}
	cz, err := srv.Connz(&server.ConnzOptions{})
	if err != nil {
		return false
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Running reports whether the server runs.
func (s *ClusterServer) Running() bool { return s.server() != nil }

// Kill stops the server: its clients are disconnected and the others
// elect new leaders for what it led. Its store stays for Restart. Killing
// a server that is not running does nothing.
func (s *ClusterServer) Kill() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a killed server again with its name, ports and store,
// routed to every other server, and waits until the cluster is ready.
func (s *ClusterServer) Restart() {
	s.c.t.Helper()
	if s.Running() {
		s.c.t.Fatalf("restart %s: it is running", s.Name())
	}
	routes := s.c.routesFor(s)
	s.mu.Lock()
	s.opts.Routes = routes
	s.mu.Unlock()
	if err := s.start(); err != nil {
		s.c.t.Fatalf("restart %s: %v", s.Name(), err)
	}
	s.c.WaitReady()
}

func (s *ClusterServer) server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// routesFor returns the route URLs of every server but s.
func (c *Cluster) routesFor(s *ClusterServer) []*url.URL {
	var routes []*url.URL
	for _, o := range c.servers {
		if o != s {
			routes = append(routes, o.routeURL())
		}
	}
	return routes
}

// freePorts returns n TCP ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// routeURL is the URL other servers route to this one on.
func (s *ClusterServer) routeURL() *url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(s.opts.Cluster.Host, strconv.Itoa(s.opts.Cluster.Port))}
}

// start starts the server with its options and, on the first start,
// records the ports it picked, so that a restart uses them again.
func (s *ClusterServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := s.opts // the server keeps and changes what it is given
	opts.Routes = append([]*url.URL(nil), s.opts.Routes...)
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("%s: %w", s.opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("%s: not ready for connections", s.opts.ServerName)
	}
	if s.opts.Port == -1 {
		s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	}
	s.srv = srv
	return nil
}
