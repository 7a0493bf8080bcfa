package main

// The docs check: every command shown with its output in the
// documentation is run, and its output compared with the one shown.
//
// What is checked is marked in the Markdown: a fenced block with the
// language "console", holding commands, each on a line starting with "$ ",
// each followed by the output it prints:
//
//	```console
//	$ herald dead list
//	No dead letters.
//	```
//
// The blocks of one file run in order, in one session: a scratch working
// directory that holds a copy of the repository's directories (examples/,
// rules/testdata/, …; not their Go files) and a herald.yaml made from the
// repository's, so that the commands run as
// they would from the repository's root. A session starts no server by
// itself; a "$ herald serve" (or bin/herald serve) line starts one, which
// runs until the end of the file, and its output is the banner it prints
// on standard output (a herald serve that refuses its configuration starts
// nothing, and its output is the error it prints). The output of other
// commands is what they print on standard output and standard error, as a
// terminal shows it.
//
// Commands are herald, bin/herald or go run ./cmd/herald, run in the test
// process, and may read standard input from echo or cat in a pipe:
// echo '{…}' | herald publish -. Other programs (nats, curl) are not
// checked; show them in other blocks (```sh).
//
// Before the comparison, what legitimately varies from run to run is made
// equal on both sides:
//
//   - times: every RFC 3339 time (2026-11-30T19:46:59Z, with a fraction
//     or an offset) and every outbox file date (20261130T194659Z) match any
//     other;
//   - ports: the session's server listens on free ports, which its output
//     shows as the defaults, 4222 for NATS and 8080 for HTTP;
//   - spacing: runs of spaces count as one, and spaces at the end of a
//     line are dropped, so that table columns as wide as their values
//     match;
//   - "…": in a line, it matches any text (an id, a signed link, a user
//     agent); a line that is only "…" matches any number of lines,
//     none included.
//
// The session's herald serve differs from the repository's herald.yaml in
// its ports (free ones), its links' base URL (http://127.0.0.1:8080, as
// documented) and its workers (one, so that the order of what events
// cause, emails and dead letters among it, is the same on every run).
// After each command the session waits until herald serve has handled
// every event in the stream.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"
)

// repoRoot is the repository, from this package's directory.
const repoRoot = "../.."

// docFiles returns the Markdown files the check covers: README.md, every
// file in docs/ and the examples' READMEs.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	return files
}

// docCommand is one command of a console block and the output shown for
// it.
type docCommand struct {
	line int    // of the command in the file
	cmd  string // after "$ ", continuation lines joined
	want []string
}

// fence matches the opening or closing line of a fenced block; indented
// blocks (in lists) count.
var fence = regexp.MustCompile("^( *)(```+)(\\S*)\\s*$")

// parseDoc returns the commands of the console blocks of a Markdown file,
// in order, and the problems found: commands shown in blocks that are not
// console blocks, which would go unchecked.
func parseDoc(name string, data []byte) (cmds []docCommand, problems []string) {
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, ticks, lang := m[1], m[2], m[3]
		start := i
		var body []string
		for i++; i < len(lines); i++ {
			if c := fence.FindStringSubmatch(lines[i]); c != nil && c[2] == ticks && c[3] == "" {
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if lang != "console" {
			for j, l := range body {
				if isHeraldCommand(strings.TrimPrefix(l, "$ ")) && strings.HasPrefix(l, "$ ") {
					problems = append(problems, fmt.Sprintf("%s:%d: a herald command with a prompt in a %q block: make it a console block, so that its output is checked", name, start+2+j, lang))
				}
			}
			continue
		}
		for j := 0; j < len(body); j++ {
			l := body[j]
			if !strings.HasPrefix(l, "$ ") {
				if len(cmds) == 0 || cmds[len(cmds)-1].line < start {
					problems = append(problems, fmt.Sprintf("%s:%d: output before any command in a console block", name, start+2+j))
					continue
				}
				c := &cmds[len(cmds)-1]
				c.want = append(c.want, l)
				continue
			}
			c := docCommand{line: start + 2 + j, cmd: strings.TrimPrefix(l, "$ ")}
			for strings.HasSuffix(c.cmd, "\\") && j+1 < len(body) {
				j++
				c.cmd = strings.TrimSuffix(c.cmd, "\\") + " " + strings.TrimSpace(body[j])
			}
			cmds = append(cmds, c)
		}
	}
	return cmds, problems
}

// isHeraldCommand reports whether a command line runs herald.
func isHeraldCommand(line string) bool {
	for _, prefix := range []string{"herald ", "bin/herald ", "./bin/herald ", "go run ./cmd/herald "} {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// TestDocs runs the commands of the documentation's console blocks and
// compares their output with the documented one. See the comment at the
// top of this file.
func TestDocs(t *testing.T) {
	for _, name := range docFiles(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		cmds, problems := parseDoc(name, data)
		for _, p := range problems {
			t.Error(p)
		}
		if len(cmds) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			s := newDocSession(t)
			for _, c := range cmds {
				got := s.run(t, name, c)
				if err := matchOutput(c.want, s.normalize(got)); err != nil {
					t.Errorf("%s:%d: $ %s\n%v\n--- the documentation shows:\n%s\n--- the command printed:\n%s", name, c.line, c.cmd, err, strings.Join(c.want, "\n"), got)
				}
			}
		})
	}
}

// TestParseDoc checks the marking the docs check reads.
func TestParseDoc(t *testing.T) {
	doc := "text\n" +
		"```console\n$ herald version\nherald x\n$ echo '{}' | herald publish \\\n    -\n1 events sent\n```\n" +
		"1. a list\n\n   ```console\n   $ herald dead list\n   No dead letters.\n   ```\n" +
		"```sh\n$ herald lint x\n```\n" +
		"```\nherald lint x   # no prompt: not a command shown with its output\n```\n" +
		"```console\noutput first\n```\n"
	cmds, problems := parseDoc("d.md", []byte(doc))
	want := []docCommand{
		{3, "herald version", []string{"herald x"}},
		{5, "echo '{}' | herald publish  -", []string{"1 events sent"}},
		{12, "herald dead list", []string{"No dead letters."}},
	}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Errorf("commands\n%v\nwant\n%v", cmds, want)
	}
	wantProblems := []string{
		`d.md:16: a herald command with a prompt in a "sh" block: make it a console block, so that its output is checked`,
		"d.md:22: output before any command in a console block",
	}
	if !slices.Equal(problems, wantProblems) {
		t.Errorf("problems\n%q\nwant\n%q", problems, wantProblems)
	}
}

// docSession is the working directory, environment and server the
// commands of one file share.
type docSession struct {
	dir       string
	natsPort  string // of the session's herald serve, once started
	httpPort  string
	js        jetstream.JetStream
	serverCfg map[string]any // the session's herald.yaml
}

// newDocSession makes a scratch directory holding the repository's files
// and a herald.yaml for the session, and makes it the working directory.
func newDocSession(t *testing.T) *docSession {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	s := &docSession{dir: t.TempDir()}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// The directories, as they are: commands walk them (lint DIR/...).
		if !e.IsDir() || e.Name() == "data" || e.Name() == "bin" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := copyTree(filepath.Join(s.dir, e.Name()), filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "herald.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &s.serverCfg); err != nil {
		t.Fatalf("herald.yaml: %v", err)
	}
	s.set(t, "nats", "listen", "127.0.0.1:-1")
	s.set(t, "http", "listen", "127.0.0.1:0")
	s.set(t, "http", "base_url", "http://127.0.0.1:8080")
	s.serverCfg["workers"] = 1
	s.writeConfig(t)
	t.Chdir(s.dir)
	t.Setenv(envConfig, "")
	t.Setenv("NATS_URL", "")
	return s
}

// copyTree copies the directory src to dst, but for Go source files and
// hidden files, which no documented command reads.
func copyTree(dst, src string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while the tree is copied
			}
			return err
		}
		if path != src && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular() || strings.HasSuffix(d.Name(), ".go"):
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// set sets a field of a section of the session's herald.yaml.
func (s *docSession) set(t *testing.T, section, field string, value any) {
	t.Helper()
	m, ok := s.serverCfg[section].(map[string]any)
	if !ok {
		t.Fatalf("herald.yaml has no %s section", section)
	}
	m[field] = value
}

func (s *docSession) writeConfig(t *testing.T) {
	t.Helper()
	out, err := yaml.Marshal(s.serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "herald.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs one command and returns what it printed.
func (s *docSession) run(t *testing.T, file string, c docCommand) string {
	t.Helper()
	stdin, args, err := s.parseCommand(c.cmd)
	if err != nil {
		t.Fatalf("%s:%d: $ %s: %v", file, c.line, c.cmd, err)
	}
	if len(args) > 0 && args[0] == "serve" {
		banner, refused := startServe(t, args[1:]...)
		if refused != "" {
			return refused // a configuration it refuses: no server runs
		}
		if s.natsPort != "" {
			t.Fatalf("%s:%d: a second herald serve in one file", file, c.line)
		}
		s.started(t, banner)
		return banner
	}
	var out bytes.Buffer
	cl := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
	cl.main(args)
	s.waitIdle(t)
	return out.String()
}

var (
	bannerNATS = regexp.MustCompile(`(?m)^  NATS     nats://127\.0\.0\.1:(\d+)`)
	bannerHTTP = regexp.MustCompile(`(?m)^  HTTP     http://127\.0\.0\.1:(\d+)`)
)

// started records the ports of the session's herald serve, from its
// banner, and points the session's herald.yaml at them, so that the other
// verbs reach it as they would reach a herald serve on fixed ports.
func (s *docSession) started(t *testing.T, banner string) {
	t.Helper()
	n, h := bannerNATS.FindStringSubmatch(banner), bannerHTTP.FindStringSubmatch(banner)
	if n == nil || h == nil {
		t.Fatalf("no NATS or HTTP address in the banner:\n%s", banner)
	}
	s.natsPort, s.httpPort = n[1], h[1]
	s.set(t, "nats", "listen", "127.0.0.1:"+s.natsPort)
	s.set(t, "http", "listen", "127.0.0.1:"+s.httpPort)
	s.writeConfig(t)
	nc, err := nats.Connect("nats://127.0.0.1:" + s.natsPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if s.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
}

// waitIdle waits until the session's herald serve, if any, has handled
// every event in the stream: acknowledged (or kept as a dead letter) every
// message up to the stream's last.
func (s *docSession) waitIdle(t *testing.T) {
	t.Helper()
	if s.js == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !s.idle(ctx) {
		select {
		case <-ctx.Done():
			t.Fatalf("herald serve did not handle every event in time")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *docSession) idle(ctx context.Context) bool {
	stream, err := s.js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		return false
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return false
	}
	c, err := stream.Consumer(ctx, natsbus.ConsumerName)
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	return err == nil && ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0 && ci.NumPending == 0
}

// parseCommand splits a command line into herald's arguments and the
// standard input an echo or cat in front of it gives.
func (s *docSession) parseCommand(line string) (stdin string, args []string, err error) {
	words, err := shellWords(line)
	if err != nil {
		return "", nil, err
	}
	var stages [][]string
	stage := []string{}
	for _, w := range words {
		if w == "|" {
			stages = append(stages, stage)
			stage = []string{}
			continue
		}
		stage = append(stage, w)
	}
	stages = append(stages, stage)
	if len(stages) > 2 {
		return "", nil, fmt.Errorf("one pipe at most")
	}
	if len(stages) == 2 {
		in := stages[0]
		switch {
		case len(in) > 0 && in[0] == "echo":
			stdin = strings.Join(in[1:], " ") + "\n"
		case len(in) == 2 && in[0] == "cat":
			data, err := os.ReadFile(in[1])
			if err != nil {
				return "", nil, err
			}
			stdin = string(data)
		default:
			return "", nil, fmt.Errorf("only echo or cat may feed herald")
		}
	}
	cmd := stages[len(stages)-1]
	switch {
	case len(cmd) > 0 && (cmd[0] == "herald" || cmd[0] == "bin/herald" || cmd[0] == "./bin/herald"):
		return stdin, cmd[1:], nil
	case len(cmd) > 2 && cmd[0] == "go" && cmd[1] == "run" && cmd[2] == "./cmd/herald":
		return stdin, cmd[3:], nil
	}
	return "", nil, fmt.Errorf("not a herald command: only herald commands are checked; show others in a sh block")
}

// shellWords splits a command line as a POSIX shell does for the simple
// commands of the docs: words, '…' and "…" quoting, \ escapes, and |.
func shellWords(line string) ([]string, error) {
	var (
		words []string
		b     strings.Builder
		in    bool // a word has started
	)
	r := bufio.NewReader(strings.NewReader(line))
	for {
		c, _, err := r.ReadRune()
		if err != nil {
			break
		}
		switch {
		case c == ' ' || c == '\t':
			if in {
				words, in = append(words, b.String()), false
				b.Reset()
			}
		case c == '|' && !in:
			words = append(words, "|")
		case c == '\'':
			in = true
			s, err := r.ReadString('\'')
			if err != nil {
				return nil, fmt.Errorf("unterminated '")
			}
			b.WriteString(strings.TrimSuffix(s, "'"))
		case c == '"':
			in = true
			for {
				d, _, err := r.ReadRune()
				if err != nil {
					return nil, fmt.Errorf("unterminated \"")
				}
				if d == '"' {
					break
				}
				if d == '\\' {
					e, _, err := r.ReadRune()
					if err != nil {
						return nil, fmt.Errorf("unterminated \"")
					}
					if !strings.ContainsRune(`"\$`+"`", e) {
						b.WriteRune('\\')
					}
					d = e
				}
				b.WriteRune(d)
			}
		case c == '\\':
			in = true
			if e, _, err := r.ReadRune(); err == nil {
				b.WriteRune(e)
			}
		case strings.ContainsRune("$`;&<>*?", c):
			return nil, fmt.Errorf("%q: only plain words, quotes and one | are understood", c)
		default:
			in = true
			b.WriteRune(c)
		}
	}
	if in {
		words = append(words, b.String())
	}
	return words, nil
}

var (
	rfc3339Time = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	outboxDate  = regexp.MustCompile(`\b\d{8}T\d{6}Z\b`)
	spaces      = regexp.MustCompile(` {2,}`)
	// loopbackPort matches an address on the loopback interface, its port
	// whole.
	loopbackPort = regexp.MustCompile(`127\.0\.0\.1:\d+\b`)
)

// normalize makes equal what legitimately varies between runs (see the
// comment at the top of this file), on output of the session.
func (s *docSession) normalize(out string) string {
	if s.natsPort == "" {
		return out
	}
	return loopbackPort.ReplaceAllStringFunc(out, func(addr string) string {
		switch strings.TrimPrefix(addr, "127.0.0.1:") {
		case s.natsPort:
			return "127.0.0.1:4222"
		case s.httpPort:
			return "127.0.0.1:8080"
		}
		return addr
	})
}

// normalizeLine makes equal the times and spacing of one line.
func normalizeLine(l string) string {
	l = rfc3339Time.ReplaceAllString(l, "<time>")
	l = outboxDate.ReplaceAllString(l, "<time>")
	return strings.TrimRight(spaces.ReplaceAllString(l, " "), " ")
}

// matchOutput compares the output shown, want, with the output got.
func matchOutput(want []string, got string) error {
	gotLines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if got == "" {
		gotLines = nil
	}
	for i := range gotLines {
		gotLines[i] = normalizeLine(gotLines[i])
	}
	pats := make([]*regexp.Regexp, len(want))
	for i, w := range want {
		if strings.TrimSpace(w) == "…" {
			continue // any lines
		}
		parts := strings.Split(normalizeLine(w), "…")
		for j := range parts {
			parts[j] = regexp.QuoteMeta(parts[j])
		}
		pats[i] = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	}
	if matchLines(pats, gotLines, map[[2]int]bool{}) {
		return nil
	}
	// Say where they part, for the message: the first line that differs.
	for i := range min(len(pats), len(gotLines)) {
		if pats[i] == nil {
			break
		}
		if !pats[i].MatchString(gotLines[i]) {
			return fmt.Errorf("line %d differs:\n shown: %s\nprinted: %s", i+1, want[i], gotLines[i])
		}
	}
	return fmt.Errorf("the output differs (%d lines shown, %d printed)", len(want), len(gotLines))
}

// matchLines matches lines against patterns, a nil pattern matching any
// number of lines. seen remembers the positions that did not match.
func matchLines(pats []*regexp.Regexp, lines []string, seen map[[2]int]bool) bool {
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(pats) {
			return j == len(lines)
		}
		if seen[[2]int{i, j}] {
			return false
		}
		ok := false
		if pats[i] == nil {
			for k := j; k <= len(lines) && !ok; k++ {
				ok = match(i+1, k)
			}
		} else {
			ok = j < len(lines) && pats[i].MatchString(lines[j]) && match(i+1, j+1)
		}
		if !ok {
			seen[[2]int{i, j}] = true
		}
		return ok
	}
	return match(0, 0)
}

// TestMatchOutput checks the placeholders of the docs check.
func TestMatchOutput(t *testing.T) {
	tests := []struct {
		want []string
		got  string
		ok   bool
	}{
		{[]string{"a  b"}, "a b   \n", true},
		{[]string{"at 2026-11-30T19:46:59Z"}, "at 2027-01-01T00:00:00.123+01:00\n", true},
		{[]string{"20261130T194659Z-x.eml"}, "20270101T000000Z-x.eml\n", true},
		{[]string{"link http://h/l/v1.k1.…"}, "link http://h/l/v1.k1.abc.def\n", true},
		{[]string{"link http://h/l/v1.k1.…"}, "link http://h/x\n", false},
		{[]string{"first", "…", "last"}, "first\nlast\n", true},
		{[]string{"first", "…", "last"}, "first\n2\n3\nlast\n", true},
		{[]string{"first", "…"}, "first\n", true},
		{[]string{"first", "…", "last"}, "first\n2\n", false},
		{[]string{"a"}, "a\nb\n", false},
		{[]string{"a.b"}, "axb\n", false},
		{nil, "", true},
	}
	for _, tt := range tests {
		if err := matchOutput(tt.want, tt.got); (err == nil) != tt.ok {
			t.Errorf("matchOutput(%q, %q) = %v, want a match: %v", tt.want, tt.got, err, tt.ok)
		}
	}
}

func TestShellWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`herald publish -`, []string{"herald", "publish", "-"}},
		{`echo '{"a":"b c"}' | herald publish -`, []string{"echo", `{"a":"b c"}`, "|", "herald", "publish", "-"}},
		{`herald dead list --reason "link\ proof \"x\""`, []string{"herald", "dead", "list", "--reason", `link\ proof "x"`}},
		{`a\ b  c`, []string{"a b", "c"}},
	}
	for _, tt := range tests {
		got, err := shellWords(tt.line)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{`echo 'x`, `herald $(x)`, `herald x > y`, `herald *`} {
		if _, err := shellWords(bad); err == nil {
			t.Errorf("shellWords(%q): no error", bad)
		}
	}
}
