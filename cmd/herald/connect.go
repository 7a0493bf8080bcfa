package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// defaultNATSURL is where herald serve's embedded server listens by
// default.
const defaultNATSURL = "nats://127.0.0.1:4222"

// natsTarget is what the --server and --config flags of a verb that
// connects to NATS say.
type natsTarget struct {
	server string // --server (or --nats); empty when not given
	config string // --config; empty when not given
}

// natsFlags adds --server (and its other name --nats) and --config to fl.
func natsFlags(fl *flag.FlagSet) *natsTarget {
	t := new(natsTarget)
	fl.StringVar(&t.server, "server", "", "NATS server `URL` (several comma separated); wins over the configuration (default: its nats.url or nats.listen; without a configuration file $NATS_URL, else "+defaultNATSURL+")")
	fl.StringVar(&t.server, "nats", "", "the same as --server `URL`")
	fl.StringVar(&t.config, "config", "", "herald serve's configuration `file`, to reach NATS as it does (default: $"+envConfig+", else ./"+defaultConfigFile+" when there is one)")
	return t
}

// natsPlan is how a verb reaches NATS, and why there.
type natsPlan struct {
	opts natsbus.ConnectOptions
	// from says where the URL came from, for messages: "from --server",
	// "from herald.yaml", "from $NATS_URL" or the defaults.
	from string
	// hint says what to do when nothing answers at the URL.
	hint string
}

// natsOptions works out how to reach NATS the way herald serve does: with
// the nats settings of its configuration (see findConfig), and
// HERALD_NATS_PASSWORD or HERALD_NATS_TOKEN from the environment. The
// server is --server; else the configuration file's nats.url, or its
// embedded server's nats.listen; else, without a configuration file,
// $NATS_URL, else defaultNATSURL.
func natsOptions(t natsTarget, name string) (natsPlan, error) {
	f := findConfig(t.config)
	cfg, err := f.load()
	if err != nil {
		return natsPlan{}, err
	}
	var server string
	p := natsPlan{hint: "start herald serve, or pass --server URL"}
	switch {
	case t.server != "":
		server, p.from = t.server, "from --server"
		p.hint = "is NATS running there? Start herald serve, or check --server"
	case f.Path != "" && cfg.NATS.URL != "":
		server, p.from = cfg.NATS.URL, "from "+f.String()
		p.hint = "is NATS running there? Check nats.url in " + f.Path + ", or pass --server URL"
	case f.Path != "":
		server, p.from = "nats://"+clientAddr(cfg.NATS.Listen), "from "+f.String()
	case os.Getenv("NATS_URL") != "":
		server, p.from = os.Getenv("NATS_URL"), "from $NATS_URL"
	default:
		server, p.from = defaultNATSURL, f.String()
		p.hint = "start herald serve, or pass --config FILE or --server URL"
	}
	p.opts = app.ConnectOptions(cfg, server, name, nil)
	if err := p.opts.Validate(); err != nil {
		if f.Path != "" {
			// Each line starts with the file, as in herald serve's errors.
			return p, fmt.Errorf("%s: %w", f.Path, err)
		}
		return p, err
	}
	return p, nil
}

// clientAddr is the address a client on this machine reaches a server
// listening on listen at: the loopback address for a server listening on
// every interface.
func clientAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // config.Load checked it
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// connectNATS connects command cmd to NATS as t says; see natsOptions. On
// failure it has reported the problem on stderr and returns the exit code:
// exitUsage for the flags or the configuration, exitFailed when NATS
// cannot be reached. The message then names the URL tried, where it came
// from and what to do:
//
//	herald publish: cannot reach NATS at nats://127.0.0.1:4333 (from herald.yaml): no servers available for connection; start herald serve, or pass --server URL
func (c *cli) connectNATS(cmd string, t *natsTarget) (*nats.Conn, jetstream.JetStream, int) {
	p, err := natsOptions(*t, "herald "+cmd)
	if err != nil {
		if findConfig(t.config).Path != "" {
			// Each line starts with the file, as in herald serve's errors.
			fmt.Fprintln(c.stderr, err)
		} else {
			fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
		}
		return nil, nil, exitUsage
	}
	nc, err := natsbus.Connect(p.opts)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald %s: %s\n", cmd, unreachable(p, err))
		return nil, nil, exitFailed
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		fmt.Fprintf(c.stderr, "herald %s: %v\n", cmd, err)
		return nil, nil, exitFailed
	}
	return nc, js, exitOK
}

// unreachable describes a failure to connect as planned in p.
func unreachable(p natsPlan, err error) string {
	cause := err
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner // natsbus.Connect's own words name the URL again
	}
	msg := fmt.Sprintf("cannot reach NATS at %s (%s): %s", redactURLs(p.opts.URL), p.from, strings.TrimPrefix(cause.Error(), "nats: "))
	if errors.Is(err, nats.ErrNoServers) {
		msg += "; " + p.hint
	}
	return msg
}

// redactURLs hides the passwords in a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			if strings.Contains(raw, "@") {
				parts[i] = "(a URL that does not parse)" // it might hold a password
			}
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// openProfiles opens the profile bucket of the Herald that nc reaches,
// trying again while the bucket elects a leader; its error says what to
// check.
func openProfiles(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*profile.KV, error) {
	var kv jetstream.KeyValue
	err := natsbus.RetryRead(ctx, func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, natsbus.ProfileBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s (has herald serve run against %s?): %w", natsbus.ProfileBucket, nc.ConnectedUrlRedacted(), err)
	}
	return profile.NewKV(kv), nil
}
