// Command herald is the Herald CLI: it serves automations, checks rule
// files, and replays recorded event streams through the rules.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Exit codes, as documented in the CLI reference.
const (
	exitOK     = 0
	exitFailed = 1 // failed checks or tests
	exitUsage  = 2 // bad usage or configuration
)

type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) int
}

// cli holds the process's standard streams so commands can be tested.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// ctx, when set, ends herald serve as SIGINT does; tests run it so.
	ctx context.Context
}

// context returns the context commands run in.
func (c *cli) context() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	return context.Background()
}

func commands() []command {
	return []command{
		{"serve", "run Herald: consume events, apply rules, send emails, serve links", (*cli).serve},
		{"lint", "check rule files and the templates they name", (*cli).lint},
		{"replay", "run rules over a recorded JSONL event stream, recording effects", (*cli).replay},
		{"test", "run rule unit tests (*_test.yaml)", (*cli).test},
		{"explain", "say why each rule did or did not fire for one event", (*cli).explain},
		{"record", "capture events from HERALD_EVENTS into JSONL for replays", (*cli).record},
		{"publish", "send JSONL events to Herald through NATS", (*cli).publish},
		{"profile", "show a customer's profile and recent activity", (*cli).profile},
		{"dead", "list, show, retry and purge dead letters", (*cli).dead},
		{"outbox", "list and read the emails written to the outbox folder", (*cli).outbox},
		{"version", "print the version", (*cli).version},
	}
}

func main() {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(c.main(os.Args[1:]))
}

func (c *cli) main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.usage(c.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "herald: unknown command %q\n\n", args[0])
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Herald reacts to tracked customer events with rules written in YAML.")
	fmt.Fprintln(w, "\nUsage: herald COMMAND [flags]\n\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, "\nThe commands read herald serve's configuration: --config FILE, else the file")
	fmt.Fprintln(w, "$"+envConfig+" names, else ./"+defaultConfigFile+" when there is one.")
	fmt.Fprintln(w, "Run herald COMMAND -h for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 failed checks, 2 bad usage or configuration.")
}

// flags returns a flag set that writes its usage to stderr and does not
// exit the process.
func (c *cli) flags(name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: herald %s %s\n\n%s\n", name, args, about)
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(c.stderr)
		if b.Len() > 0 {
			fmt.Fprintf(c.stderr, "\nFlags:\n%s", b.String())
		}
	}
	return fs
}

// parse parses flags given before, after or between the arguments
// (herald profile UUID --config FILE); -- ends the flags, and what follows
// it is arguments. fs.Args() then holds the arguments, in order. parse
// returns an exit code and false when the command should stop (help asked
// for, or bad flags).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK, false
			}
			return exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// Parse stops at the first argument, or just after a "--" it
		// consumed: then everything left is arguments.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse once more so that fs.Args() returns the arguments.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return exitUsage, false
	}
	return 0, true
}

func (c *cli) version(args []string) int {
	fs := c.flags("version", "", "Print Herald's version.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fmt.Fprintln(c.stdout, "herald", version())
	return exitOK
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
