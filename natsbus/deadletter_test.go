package natsbus_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-events/herald/natsbus"
)

func TestDeadLetterCopiesBodyAndHeaders(t *testing.T) {
	js, res := setup(t)
	ctx := t.Context()

	body := []byte("{\"action\": \"form.submit\",\n \"uuid\": \"u1\", \"bad\": \"\xff\"}")
	in := nats.NewMsg("herald.events.web.shop")
	in.Data = body
	in.Header.Set("Trace-Id", "abc123")
	in.Header.Set(jetstream.MsgIDHeader, "evt-7")
	if _, err := js.PublishMsg(ctx, in); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg := fetchOne(t, res.Consumer)
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}

	reason := errors.New("decode event:\nunknown field \"bad\"\r\n\tat line 3")
	failedAt := time.Date(2026, 11, 28, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	if err := natsbus.DeadLetter(ctx, js, msg, reason, failedAt); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := msg.Term(); err != nil {
		t.Fatalf("term: %v", err)
	}

	dead, err := res.Dead.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("read dead letter: %v", err)
	}
	if dead.Subject != "herald.dead.web.shop" {
		t.Errorf("subject = %q, want herald.dead.web.shop", dead.Subject)
	}
	if !bytes.Equal(dead.Data, body) {
		t.Errorf("body = %q, want %q", dead.Data, body)
	}
	want := nats.Header{
		"Trace-Id":                   {"abc123"},
		"Herald-Reason":              {`decode event: unknown field "bad"   at line 3`},
		"Herald-Original-Subject":    {"herald.events.web.shop"},
		"Herald-Original-Stream":     {"HERALD_EVENTS"},
		"Herald-Original-Stream-Seq": {"1"},
		"Herald-Original-Time":       {meta.Timestamp.UTC().Format(time.RFC3339Nano)},
		"Herald-Failed-At":           {"2026-11-28T10:00:00Z"},
		"Nats-Msg-Id":                {"dead-1"},
	}
	if !reflect.DeepEqual(dead.Header, want) {
		t.Errorf("headers:\n got %v\nwant %v", dead.Header, want)
	}

	// Copying the same message again, as a retry would, stores nothing new.
	if err := natsbus.DeadLetter(ctx, js, msg, reason, failedAt.Add(time.Second)); err != nil {
		t.Fatalf("second DeadLetter: %v", err)
	}
	info, err := res.Dead.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("dead stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestDeadLetterLongReason(t *testing.T) {
	js, res := setup(t)
	ctx := t.Context()
	if _, err := js.Publish(ctx, "herald.events.app", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	msg := fetchOne(t, res.Consumer)
	reason := errors.New(strings.Repeat("é", 2000))
	if err := natsbus.DeadLetter(ctx, js, msg, reason, time.Unix(0, 0)); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	dead, err := res.Dead.GetLastMsgForSubject(ctx, "herald.dead.app")
	if err != nil {
		t.Fatal(err)
	}
	got := dead.Header.Get(natsbus.HeaderReason)
	if len(got) > natsbus.MaxReasonLen || !strings.HasSuffix(got, "é…") {
		t.Errorf("reason of %d bytes ending %q; want at most %d bytes, cut at a character, ending with …",
			len(got), got[max(len(got)-8, 0):], natsbus.MaxReasonLen)
	}
}

func TestDeadLetterNeedsJetStreamMessage(t *testing.T) {
	js, _ := setup(t)
	err := natsbus.DeadLetter(t.Context(), js, plainMsg{}, errors.New("x"), time.Now())
	if err == nil {
		t.Fatal("DeadLetter of a message without JetStream metadata succeeded")
	}
}

// fetchOne fetches the next message from c, waiting up to five seconds.
func fetchOne(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for msg := range batch.Messages() {
		return msg
	}
	t.Fatalf("no message within 5s: %v", batch.Error())
	return nil
}

// plainMsg is a message that did not come from a JetStream consumer.
type plainMsg struct{ jetstream.Msg }

func (plainMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, jetstream.ErrNotJSMessage
}
func (plainMsg) Subject() string { return "herald.events.web" }
