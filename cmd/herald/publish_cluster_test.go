package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/natsbus/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// herald publish against a three-server cluster with the events stream
// kept on every server: the server the command is connected to, made the
// stream's leader, is killed mid-file. Every line is stored exactly once,
// those without an id too, the output says what became of each line, and
// sending the file again stores nothing.
func TestPublishClusterServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	nc, js := c.Connect(t)
	setupCluster(t, js)
	const lines = 1500
	var file strings.Builder
	for i := range lines {
		id := ""
		if i%2 == 0 { // every other line has no id: herald publish makes one from the line
			id = fmt.Sprintf(`"id":"pub-%04d",`, i)
		}
		fmt.Fprintf(&file, `{%s"action":"page.visit","label":"visit %d","time":"2026-11-28T10:00:00Z","uuid":"cust-%02d"}`+"\n", id, i, i%40)
	}
	// The same line twice, without an id: two events, each stored once.
	twice := `{"action":"page.visit","label":"twice","time":"2026-11-28T11:00:00Z","uuid":"cust-00"}` + "\n"
	file.WriteString(twice + twice)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	total := lines + 2

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := run(t, "", "publish", "--nats", c.URL(), path)
		done <- result{code, stdout, stderr}
	}()

	// A third of the way, find the server the command uses, make it the
	// stream's leader, and kill it.
	s, err := js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := s.Info(t.Context())
		if err == nil && info.State.Msgs >= lines/3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not reach %d events: %v", lines/3, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var victim *natstest.ClusterServer
	for _, srv := range c.Servers() {
		if srv.HasClient("herald publish") {
			victim = srv
		}
	}
	if victim == nil {
		t.Fatal("no server has the connection of herald publish")
	}
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": victim.Name()}})
	if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+natsbus.EventsStream, req, 5*time.Second); err != nil {
		t.Logf("leader step-down to %s: %v", victim.Name(), err) // the kill is the test; the move helps
	}
	victim.Kill()

	var r result
	select {
	case r = <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("herald publish did not finish")
	}
	if r.code != exitOK {
		t.Errorf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "herald serve") {
		t.Errorf("the output suggests Herald is not running:\n%s\n%s", r.stdout, r.stderr)
	}
	// One outcome per line, each stored.
	outcome := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:(\d+): stored as HERALD_EVENTS #\d+ \(id (\S+)\)`)
	said := map[int]string{}
	outLines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for _, l := range outLines[:len(outLines)-1] {
		m := outcome.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected output line %q", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if _, dup := said[n]; dup {
			t.Errorf("line %d reported twice", n)
		}
		said[n] = m[2]
	}
	for n := 1; n <= total; n++ {
		if said[n] == "" {
			t.Errorf("nothing said of line %d", n)
		}
	}
	if want := fmt.Sprintf("%d lines: %d stored, 0 duplicates (already stored within the duplicate window), 0 invalid, 0 failed", total, total); outLines[len(outLines)-1] != want {
		t.Errorf("summary %q, want %q", outLines[len(outLines)-1], want)
	}
	t.Logf("retried lines:\n%s", grepLines(r.stdout, "attempt"))

	victim.Restart()
	ids := storedIDs(t, js)
	if len(ids) != total {
		t.Errorf("%d distinct ids stored, want %d", len(ids), total)
	}
	for n, id := range said {
		if ids[id] != 1 {
			t.Errorf("line %d, id %s: stored %d times", n, id, ids[id])
		}
	}

	// Sent again: every line a duplicate, with the same ids.
	code, stdout, stderr := run(t, "", "publish", "--nats", c.URL(), path)
	if want := fmt.Sprintf("%d lines: 0 stored, %d duplicates (already stored within the duplicate window), 0 invalid, 0 failed\n", total, total); code != exitOK || !strings.HasSuffix(stdout, want) {
		t.Errorf("sent again: exit code %d, stdout ends %q, want %q; stderr:\n%s", code, lastLine(stdout), want, stderr)
	}
	if again := storedIDs(t, js); len(again) != total {
		t.Errorf("after sending again, %d distinct ids stored, want %d", len(again), total)
	}
}

// storedIDs counts the events stream's messages by Nats-Msg-Id, read
// without a consumer.
func storedIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	if err := natsbus.StoredEvents(ctx, s, []string{">"}, natsbus.HistoryRange{}, func(m *jetstream.RawStreamMsg) error {
		ids[m.Header.Get(jetstream.MsgIDHeader)]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func grepLines(s, word string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// On a NATS without Herald's stream, herald publish fails the first line
// at once, saying so, and accounts for the lines it did not send.
func TestPublishNoStream(t *testing.T) {
	srv, _ := natstest.Start(t)
	in := `{"id":"a-1","action":"page.visit","uuid":"ann"}` + "\n\n" +
		`{"action":"page.visit","uuid":"ann"}` + "\n" +
		`{"action":"page.visit","uuid":"bob"}` + "\n"
	start := time.Now()
	code, stdout, stderr := run(t, in, "publish", "--nats", srv.ClientURL(), "-")
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s: a missing stream is not a reason to retry", time.Since(start))
	}
	for _, want := range []string{
		"stdin:1: not stored (id a-1): no stream HERALD_EVENTS on this NATS takes herald.events.cli",
		"stdin:3-4: 2 lines not sent: stopped after line 1 could not be stored\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if want := "3 lines: 0 stored, 0 duplicates (already stored within the duplicate window), 0 invalid, 1 failed, 2 not sent\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

// When the only server goes away mid-input, herald publish tries the line
// for --retry, then says the servers did not answer (not that Herald is
// not running) and accounts for the lines it did not send.
func TestPublishServerGone(t *testing.T) {
	srv, js := natstest.Start(t)
	if _, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: pr, stdout: &stdout, stderr: &stderr}
	done := make(chan int, 1)
	go func() { done <- c.main([]string{"publish", "--nats", srv.ClientURL(), "--retry", "1s", "-"}) }()
	fmt.Fprintln(pw, `{"id":"gone-1","action":"page.visit","uuid":"ann"}`)
	s, err := js.Stream(t.Context(), natsbus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if info, err := s.Info(t.Context()); err == nil && info.State.Msgs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first line was not stored")
		}
	}
	srv.Shutdown()
	fmt.Fprintln(pw, `{"id":"gone-2","action":"page.visit","uuid":"ann"}`)
	fmt.Fprintln(pw, `{"id":"gone-3","action":"page.visit","uuid":"ann"}`)
	pw.Close()
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("herald publish did not finish")
	}
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	if want := "stdin:1: stored as HERALD_EVENTS #1 (id gone-1)\n3 lines: 1 stored, 0 duplicates (already stored within the duplicate window), 0 invalid, 1 failed, 1 not sent\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	for _, want := range []string{
		"stdin:2: not stored (id gone-2): the stream did not acknowledge it within --retry 1s (",
		"); the servers, or the stream's leader, did not answer\n",
		"stdin:3: 1 lines not sent: stopped after line 2 could not be stored\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "herald serve") {
		t.Errorf("stderr suggests Herald is not running:\n%s", stderr.String())
	}
}
