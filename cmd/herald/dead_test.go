package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// failedAt is when the dead letters the test keeps itself failed.
var failedAt = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// annaDoubleOptIn is a valid newsletter form with the double opt-in
// agreement: the rules send a confirmation request and change the profile.
const annaDoubleOptIn = `{"id":"dead-test-anna","action":"form.submit","label":"Newsletter form","time":"2026-11-28T11:00:00Z","uuid":"anna-7f3c","site":"shop.example.com","params":{"form_type":"newsletter","email":"anna@example.com","firstname":"Anna","newsletter_agreement_enabled":"enabled"}}`

// storedMsg stands for a message of the events stream, for
// natsbus.DeadLetter to keep as a dead letter without Herald seeing it.
type storedMsg struct {
	jetstream.Msg
	subject string
	data    string
	seq     uint64
}

func (m storedMsg) Subject() string      { return m.subject }
func (m storedMsg) Data() []byte         { return []byte(m.data) }
func (m storedMsg) Headers() nats.Header { return nats.Header{"Trace-Id": {"t-1"}} }
func (m storedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Stream: natsbus.EventsStream, Consumer: natsbus.ConsumerName, NumDelivered: 100,
		Sequence: jetstream.SequencePair{Stream: m.seq}, Timestamp: failedAt.Add(-time.Hour),
	}, nil
}

// emailsTo counts the outbox's emails to addr.
func emailsTo(t *testing.T, outbox, addr string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), addr) {
			n++
		}
	}
	return n
}

// anyOtherTime matches the times in herald dead list but failedAt.
var anyOtherTime = regexp.MustCompile(`\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ\b`)

func TestDead(t *testing.T) {
	cfg := apptest.Config(t, "../../examples/newsletter-double-opt-in")
	a := apptest.Start(t, cfg)
	url := a.NATSURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	deadStream, err := js.Stream(ctx, natsbus.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	deadCount := func() uint64 {
		info, err := deadStream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	dead := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, "", append([]string{"dead", args[0], "--nats", url}, args[1:]...)...)
	}
	kv, err := js.KeyValue(ctx, natsbus.ProfileBucket)
	if err != nil {
		t.Fatal(err)
	}
	profiles := profile.NewKV(kv)
	anna := func() *profile.Record {
		rec, _, err := profiles.Get(ctx, "anna-7f3c")
		if err != nil {
			return nil
		}
		return rec
	}

	// 1: an invalid event, which Herald keeps; 2: a valid event kept as if
	// its retries ran out; 3: a failed effect.
	if _, err := js.Publish(ctx, "herald.events.web", []byte(`{"id":"dead-test-bad","action":"form.submit","uuid":"bad-1","params":{"cart":{"items":2}}}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the invalid event kept", func() bool { return deadCount() == 1 })
	keepAnna := func(seq uint64) {
		t.Helper()
		msg := storedMsg{subject: "herald.events.web", data: annaDoubleOptIn, seq: seq}
		if err := natsbus.DeadLetter(ctx, js, msg, errors.New("gave up after 100 deliveries: smtp server unavailable"), failedAt); err != nil {
			t.Fatal(err)
		}
	}
	keepAnna(1001)
	effect := `{"key":"dead-test-ann.doi-request.1","kind":"email","event":"dead-test-ann","data":{}}`
	if err := natsbus.DeadEffect(ctx, js, "dead-test-ann.doi-request.1", []byte(effect), errors.New("550 no such mailbox: ann@example.com"), failedAt); err != nil {
		t.Fatal(err)
	}

	t.Run("list", func(t *testing.T) {
		code, stdout, stderr := dead("list")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		// The invalid event failed just now.
		stdout = anyOtherTime.ReplaceAllStringFunc(stdout, func(s string) string {
			if s == failedAt.Format(time.RFC3339) {
				return s
			}
			return "YYYY-MM-DDTHH:MM:SSZ"
		})
		golden(t, "testdata/dead-list.golden", stdout)
	})

	t.Run("list --reason --json", func(t *testing.T) {
		code, stdout, stderr := dead("list", "--reason", "^gave up", "--json")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		var rows []deadRow
		if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		want := deadRow{ID: 2, FailedAt: failedAt, Kind: "event", Subject: "herald.events.web", Event: "dead-test-anna", UUID: "anna-7f3c", Reason: "gave up after 100 deliveries: smtp server unavailable"}
		if len(rows) != 1 || rows[0] != want {
			t.Errorf("rows %+v, want [%+v]", rows, want)
		}
		_, stdout, _ = dead("list", "--reason", "nothing like this", "--json")
		if strings.TrimSpace(stdout) != "[]" {
			t.Errorf("no match: %q, want []", stdout)
		}
		_, stdout, _ = dead("list", "--reason", "nothing like this")
		if stdout != "None of the 3 dead letters matches.\n" {
			t.Errorf("no match: %q", stdout)
		}
		if code, _, stderr := dead("list", "--reason", "(("); code != exitUsage || !strings.Contains(stderr, "--reason") {
			t.Errorf("bad --reason: exit code %d, stderr %q", code, stderr)
		}
	})

	t.Run("show", func(t *testing.T) {
		code, stdout, stderr := dead("show", "1")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"Dead letter 1 (event) on herald.dead.web, stored ",
			"\nHerald-Original-Subject: herald.events.web\n",
			"\nHerald-Reason: params.cart: objects are not allowed",
			"\n\n" + `{"id":"dead-test-bad","action":"form.submit","uuid":"bad-1","params":{"cart":{"items":2}}}` + "\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if code, _, stderr := dead("show", "99"); code != exitFailed || !strings.Contains(stderr, "dead letter 99: no such dead letter") {
			t.Errorf("show 99: exit code %d, stderr %q", code, stderr)
		}
		if code, _, _ := dead("show", "x"); code != exitUsage {
			t.Errorf("show x: exit code %d, want %d", code, exitUsage)
		}
	})

	t.Run("retry what cannot be retried", func(t *testing.T) {
		code, stdout, stderr := dead("retry", "1", "3")
		if code != exitFailed {
			t.Errorf("exit code %d, want %d", code, exitFailed)
		}
		for _, want := range []string{
			"dead letter 1 not retried: not a valid event: params.cart: objects are not allowed",
			"dead letter 3 not retried: a failed effect, not an event: effects cannot be retried as events (key dead-test-ann.doi-request.1); herald dead purge 3 deletes it\n",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if stdout != "0 retried, 2 not retried\n" {
			t.Errorf("stdout %q", stdout)
		}
		if n := deadCount(); n != 3 {
			t.Errorf("%d dead letters, want all 3 kept", n)
		}
		if code, _, _ := dead("retry"); code != exitUsage {
			t.Errorf("retry with neither IDs nor --all: exit code %d, want %d", code, exitUsage)
		}
	})

	t.Run("retry", func(t *testing.T) {
		code, stdout, stderr := dead("retry", "2")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		if want := "dead letter 2: event dead-test-anna of anna-7f3c published again on herald.events.web\n1 retried, 0 not retried\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		eventually(t, "the rules applied", func() bool {
			rec := anna()
			return rec != nil && rec.Profile.Attributes["newsletterAgreement"] == "confirmation" && len(rec.Outbox) == 0
		})
		if !anna().HasApplied("dead-test-anna") {
			t.Errorf("applied %v: the retried event lost its id", anna().Applied)
		}
		if n := emailsTo(t, cfg.Email.Outbox, "anna@example.com"); n != 1 {
			t.Errorf("%d emails to anna, want the confirmation request", n)
		}
		if n := deadCount(); n != 2 {
			t.Errorf("%d dead letters, want 2 left", n)
		}
		if code, _, stderr := dead("retry", "2"); code != exitFailed || !strings.Contains(stderr, "dead letter 2: no such dead letter") {
			t.Errorf("retrying a deleted dead letter: exit code %d, stderr %q", code, stderr)
		}
	})

	t.Run("retry again", func(t *testing.T) {
		requested := anna().Profile.Attributes["newsletterRequestedAt"]
		events, err := js.Stream(ctx, natsbus.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		before, err := events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The same event kept again, as another engine might have, and
		// retried with --all: it is stored again, and the applier knows
		// its id.
		keepAnna(1002)
		code, stdout, stderr := dead("retry", "--all", "--reason", "smtp")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		if want := "dead letter 4: event dead-test-anna of anna-7f3c published again on herald.events.web\n1 retried, 0 not retried\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		after, err := events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.State.Msgs != before.State.Msgs+1 {
			t.Fatalf("events stream went from %d to %d messages: the retry was not stored", before.State.Msgs, after.State.Msgs)
		}
		cons, err := js.Consumer(ctx, natsbus.EventsStream, natsbus.ConsumerName)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the retried event handled", func() bool {
			info, err := cons.Info(ctx)
			return err == nil && info.AckFloor.Stream >= after.State.LastSeq && info.NumAckPending == 0
		})
		if got := anna().Profile.Attributes["newsletterRequestedAt"]; got != requested {
			t.Errorf("the rules applied again: requested at %v, then %v", requested, got)
		}
		if n := emailsTo(t, cfg.Email.Outbox, "anna@example.com"); n != 1 {
			t.Errorf("%d emails to anna, want still 1", n)
		}
		_, stdout, _ = dead("retry", "--all")
		if want := "1 not retried"; !strings.Contains(stdout, want) || !strings.Contains(stdout, "1 failed effects left out") {
			t.Errorf("retry --all of what is left: %q", stdout)
		}
	})

	t.Run("purge", func(t *testing.T) {
		code, stdout, _ := run(t, "n\n", "dead", "purge", "--nats", url, "--reason", "550")
		if code != exitFailed || stdout != "Delete 1 dead letters for good? [y/N] Nothing deleted.\n" {
			t.Errorf("purge answered no: exit code %d, stdout %q", code, stdout)
		}
		if code, stdout, _ := run(t, "y\n", "dead", "purge", "--nats", url, "--reason", "550"); code != exitOK || !strings.HasSuffix(stdout, "1 dead letters deleted.\n") {
			t.Errorf("purge answered yes: exit code %d, stdout %q", code, stdout)
		}
		if code, stdout, _ := dead("purge", "--yes"); code != exitOK || stdout != "1 dead letters deleted.\n" {
			t.Errorf("purge --yes: exit code %d, stdout %q", code, stdout)
		}
		if _, stdout, _ := dead("list"); stdout != "No dead letters.\n" {
			t.Errorf("list after purge: %q", stdout)
		}
	})
}
