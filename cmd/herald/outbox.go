package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const outboxUsage = `Usage: herald outbox [list] [flags]
       herald outbox show [flags] FILE|N

Read the emails herald serve writes as .eml files into its outbox folder
when no SMTP server is configured (email.outbox, default DATA_DIR/outbox).

  list        one line an email, oldest first: its number, date, recipient,
              subject and the rule that sent it (the default)
  show FILE|N one email: its main headers, its text decoded, and its links
              one a line; N is its number in the list

Both read serve's configuration (--config, else $HERALD_CONFIG, else
./herald.yaml) for the folder, or take --dir.
Run herald outbox COMMAND -h for its flags.
Exits 1 when an email cannot be read, and 2 on bad usage or configuration.
`

func (c *cli) outbox(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return c.outboxList(args[1:])
		case "show":
			return c.outboxShow(args[1:])
		case "help":
			fmt.Fprint(c.stdout, outboxUsage)
			return exitOK
		}
		if !strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(c.stderr, "herald outbox: unknown command %q\n\n%s", args[0], outboxUsage)
			return exitUsage
		}
	}
	return c.outboxList(args)
}

// outboxFlags adds --dir and --config to fl.
func outboxFlags(fl *flag.FlagSet) (dir, configPath *string) {
	dir = fl.String("dir", "", "the outbox `folder` (default: email.outbox of the configuration)")
	configPath = fl.String("config", "", "herald serve's configuration `file`, for its email.outbox (default: $"+envConfig+", else ./"+defaultConfigFile+" when there is one)")
	return dir, configPath
}

// outboxDir returns the folder to read: dir, else the configuration's
// outbox. On failure it has reported the problem and returns false.
func (c *cli) outboxDir(cmd, dir, configPath string) (string, bool) {
	if dir != "" {
		return dir, true
	}
	cfg, f, ok := c.loadConfig(configPath)
	if !ok {
		return "", false
	}
	if cfg.Email.SMTP.URL != "" {
		fmt.Fprintf(c.stderr, "herald %s: %s sets email.smtp.url: herald serve sends emails to the mail server, and writes none to %s; give --dir to read a folder anyway\n", cmd, f, cfg.Email.Outbox)
		return "", false
	}
	return cfg.Email.Outbox, true
}

func (c *cli) outboxList(args []string) int {
	fl := c.flags("outbox", "[list] [flags]", `List the emails in the outbox, oldest first, one a line: the number that
herald outbox show takes, the date (UTC), the recipient, the subject and the
rule that sent the email (from its Message-ID, <event id>.<rule>.<step>@…).
herald outbox show FILE|N prints one email; herald outbox help says more.`)
	dir, configPath := outboxFlags(fl)
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() != 0 {
		fl.Usage()
		return exitUsage
	}
	d, ok := c.outboxDir("outbox", *dir, *configPath)
	if !ok {
		return exitUsage
	}
	mails, errs, err := readOutbox(d)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stdout, "No emails: %s does not exist yet; herald serve makes it when it writes the first email.\n", d)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "herald outbox: %v\n", err)
		return exitFailed
	}
	for _, err := range errs {
		fmt.Fprintf(c.stderr, "herald outbox: %v\n", err)
	}
	printOutbox(c.stdout, d, mails)
	if len(errs) > 0 {
		return exitFailed
	}
	return exitOK
}

// printOutbox prints the list of mails in dir.
func printOutbox(w io.Writer, dir string, mails []*outboxMail) {
	if len(mails) == 0 {
		fmt.Fprintf(w, "No emails in %s.\n", dir)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tDATE\tTO\tSUBJECT\tRULE")
	for i, m := range mails {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, m.dateText(), cell(m.to()), cell(m.subject), cell(m.rule()))
	}
	tw.Flush()
	noun := "emails"
	if len(mails) == 1 {
		noun = "email"
	}
	fmt.Fprintf(w, "%d %s in %s; herald outbox show N prints one.\n", len(mails), noun, dir)
}

func (c *cli) outboxShow(args []string) int {
	fl := c.flags("outbox show", "[flags] FILE|N", `Show one email of the outbox: its main headers, its text part decoded
(quoted-printable undone, so links are whole again) and its links, one a
line. FILE is an .eml file, in the outbox or elsewhere; N is the email's
number in herald outbox's list.`)
	dir, configPath := outboxFlags(fl)
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if fl.NArg() != 1 || fl.Arg(0) == "" {
		fl.Usage()
		return exitUsage
	}
	arg := fl.Arg(0)
	var path string
	if n, err := strconv.Atoi(arg); err == nil {
		d, ok := c.outboxDir("outbox show", *dir, *configPath)
		if !ok {
			return exitUsage
		}
		mails, _, err := readOutbox(d)
		if err != nil {
			fmt.Fprintf(c.stderr, "herald outbox show: %v\n", err)
			return exitFailed
		}
		if n < 1 || n > len(mails) {
			fmt.Fprintf(c.stderr, "herald outbox show: no email %d in %s: herald outbox lists %d\n", n, d, len(mails))
			return exitFailed
		}
		path = mails[n-1].path
	} else {
		path = arg
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && filepath.Base(arg) == arg {
			// A file name as herald outbox's folder holds it.
			if d, ok := c.outboxDir("outbox show", *dir, *configPath); ok {
				path = filepath.Join(d, arg)
			} else {
				return exitUsage
			}
		}
	}
	m, err := readMail(path)
	if err != nil {
		fmt.Fprintf(c.stderr, "herald outbox show: %v\n", err)
		return exitFailed
	}
	m.print(c.stdout)
	return exitOK
}

// readOutbox reads the emails in dir, oldest first. errs holds the files
// that could not be read, which are left out; err is set when dir cannot
// be read.
func readOutbox(dir string) (mails []*outboxMail, errs []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		// Dot files are the outbox's temporary files, not yet emails.
		if !strings.HasSuffix(name, ".eml") || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		m, err := readMail(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info, err := e.Info(); err == nil {
			m.modTime = info.ModTime()
		}
		mails = append(mails, m)
	}
	// Dates are whole seconds: within one, the file written first comes
	// first.
	slices.SortStableFunc(mails, func(a, b *outboxMail) int {
		if c := a.date.Compare(b.date); c != 0 {
			return c
		}
		if c := a.modTime.Compare(b.modTime); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	return mails, errs, nil
}

// dateText is the date in UTC, "-" when the email has none.
func (m *outboxMail) dateText() string {
	if m.date.IsZero() {
		return "-"
	}
	return m.date.UTC().Format(time.RFC3339)
}
