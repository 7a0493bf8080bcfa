package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
)

// TestRecordReplayRoundTrip records the stream of a running Herald and
// replays it: the replay has the live run's effects (one email, one
// emitted event, counted once), and the emitted event recorded beside its
// cause is not emitted twice.
func TestRecordReplayRoundTrip(t *testing.T) {
	rulesDir := "testdata/record"
	cfg := apptest.Config(t, rulesDir)
	a := apptest.Start(t, cfg)
	h := &herald{natsURL: a.NATSURL(), kv: apptest.Connect(t, a).Profiles}
	events := `{"action":"page.visit","uuid":"rita-1","params":{"url":"https://shop.example.com/"}}
{"id":"01KB0000000000000000000010","action":"form.submit","time":"2026-11-28T09:01:00Z","uuid":"rita-1","params":{"form_type":"newsletter","email":"rita@example.com"}}
{"id":"01KB0000000000000000000011","action":"order.paid","time":"2026-11-28T09:30:00Z","uuid":"sam-2","params":{"total":12}}
`
	if code, _, stderr := run(t, events, "publish", "--nats", h.natsURL, "-"); code != exitOK {
		t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
	}
	eventually(t, "the emitted event counted", func() bool { return h.attribute("rita-1", "welcomes") == 1.0 })
	eventually(t, "the live email", func() bool {
		files, _ := filepath.Glob(filepath.Join(cfg.Email.Outbox, "*.eml"))
		return len(files) == 1
	})

	out := filepath.Join(t.TempDir(), "recording.jsonl")
	code, _, stderr := run(t, "", "record", "--server", h.natsURL, "--out", out)
	if code != exitOK {
		t.Fatalf("record: exit code %d; stderr:\n%s", code, stderr)
	}
	if !strings.HasPrefix(stderr, "recorded 4 events (1 emitted by rules, which replays skip), stream sequences 1 to 4") {
		t.Errorf("record said: %s", stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), data)
	}
	// The page visit was published without id or time: the recording
	// holds those the stream gave it, the same on every recording.
	if !strings.Contains(lines[0], `"id":"`) || !strings.Contains(lines[0], `"time":"`) {
		t.Errorf("first line has no stored id and time: %s", lines[0])
	}
	// The emitted event was stored after the events published with its
	// cause.
	if !strings.HasPrefix(lines[3], `{"emitted":{"depth":1,"event":{`) || !strings.Contains(lines[3], `"action":"customer.welcomed"`) {
		t.Errorf("the emitted event is not marked: %s", lines[3])
	}
	code, again, _ := run(t, "", "record", "--server", h.natsURL)
	if code != exitOK || again != string(data) {
		t.Errorf("a second recording differs:\n%s\nfirst:\n%s", again, data)
	}

	code, stdout, stderr := run(t, "", "replay", "--rules", rulesDir, "--events", out)
	if code != exitOK {
		t.Fatalf("replay: exit code %d; stderr:\n%s%s", code, stderr, stdout)
	}
	if n := strings.Count(stdout, "set welcomes = 1"); n != 1 || strings.Contains(stdout, "set welcomes = 2") {
		t.Errorf("the emitted event ran %d times:\n%s", n, stdout)
	}
	if !strings.Contains(stdout, "4 events (0 invalid, 1 emitted): 3 rules fired, 3 profile changes, 1 emails (0 not sent), 0 rule errors; 1 recorded emitted events skipped (the rules emitted them again)") {
		t.Errorf("replay summary:\n%s", stdout)
	}

	// Filters: an action glob, and a limit.
	code, stdout, _ = run(t, "", "record", "--server", h.natsURL, "--action", "customer.*")
	if code != exitOK || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, "customer.welcomed") {
		t.Errorf("--action customer.*: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, "", "record", "--server", h.natsURL, "--limit", "2", "--from-seq", "2")
	if code != exitOK || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"id":"01KB0000000000000000000010"`) {
		t.Errorf("--limit 2 --from-seq 2: exit %d\n%s", code, stdout)
	}
}

// TestRecordLive records only the events that arrive once it runs, and
// stops at its limit.
func TestRecordLive(t *testing.T) {
	h := startHerald(t, "testdata/record")
	old := `{"id":"01KB0000000000000000000020","action":"order.paid","time":"2026-11-28T09:00:00Z","uuid":"old-1"}`
	if code, _, stderr := run(t, old+"\n", "publish", "--nats", h.natsURL, "-"); code != exitOK {
		t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, ctx: ctx}
	done := make(chan int, 1)
	go func() {
		done <- c.main([]string{"record", "--server", h.natsURL, "--live", "--limit", "1", "--action", "page.*"})
	}()
	// Publish until the recorder, which starts at the stream's end, has
	// seen one.
	for i := 0; ; i++ {
		ev := fmt.Sprintf(`{"action":"page.visit","uuid":"new-%d"}`, i)
		if code, _, stderr := run(t, ev+"\n", "publish", "--nats", h.natsURL, "-"); code != exitOK {
			t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
		}
		select {
		case code := <-done:
			if code != exitOK {
				t.Fatalf("record: exit code %d; stderr:\n%s", code, stderr.String())
			}
			if strings.Count(stdout.String(), "\n") != 1 || !strings.Contains(stdout.String(), `"action":"page.visit"`) || strings.Contains(stdout.String(), "old-1") {
				t.Errorf("recorded:\n%s", stdout.String())
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("record --live did not stop at its limit")
		}
	}
}
