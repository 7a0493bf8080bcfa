package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A visitor who gives the address of a known customer is merged into them;
// herald profile, given the visitor's uuid, follows the alias to the known
// customer and shows the merge.
func TestProfileFollowsMerges(t *testing.T) {
	h := startHerald(t, "../../examples/newsletter-double-opt-in")
	url := h.natsURL
	publish := func(lines ...string) {
		t.Helper()
		if code, _, stderr := run(t, strings.Join(lines, "\n")+"\n", "publish", "--nats", url, "-"); code != exitOK {
			t.Fatalf("publish: exit code %d; stderr:\n%s", code, stderr)
		}
	}
	publish(`{"id":"merge-test-0001","action":"form.submit","label":"Contact form","time":"2026-11-28T10:00:00Z","uuid":"kate-01","params":{"form_type":"contact","email":"kate@example.com","firstname":"Kate"}}`)
	eventually(t, "kate's profile", func() bool {
		rec, _, err := h.kv.Get(context.Background(), "kate-01")
		return err == nil && rec.Profile.Email == "kate@example.com"
	})
	publish(
		`{"id":"merge-test-0002","action":"page.visit","label":"Home","time":"2026-11-28T11:00:00Z","uuid":"kate-phone"}`,
		`{"id":"merge-test-0003","action":"form.submit","label":"Contact form","time":"2026-11-28T11:05:00Z","uuid":"kate-phone","params":{"form_type":"callback","email":"Kate@Example.com","phone":"+48 600 000 000"}}`,
	)
	eventually(t, "the merge", func() bool {
		rec, _, err := h.kv.Get(context.Background(), "kate-phone")
		return err == nil && rec.MergedInto == "kate-01" && rec.Profile == nil
	})

	t.Run("profile", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "kate-phone")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		if !strings.HasPrefix(stdout, "uuid kate-phone was merged into kate-01 (event merge-test-0003, ") {
			t.Errorf("stdout does not start by saying where kate-phone went:\n%s", stdout)
		}
		for _, want := range []string{
			"\n\nProfile kate-01\n",
			"  email      Kate@Example.com\n",
			"  phone      +48 600 000 000\n",
			"  tags       [callback contact]\n",
			"  merged (oldest first)\n",
			"  kate-phone  by event merge-test-0003\n",
			"Recent activity (latest 3 in HERALD_EVENTS):\n",
			"  2026-11-28T10:00:00Z  form.submit              Contact form\n" +
				"  2026-11-28T11:00:00Z  page.visit               Home\n" +
				"  2026-11-28T11:05:00Z  form.submit              Contact form\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout does not contain %q:\n%s", want, stdout)
			}
		}
		// The known customer's own uuid shows the same, without the alias.
		_, own, _ := run(t, "", "profile", "--nats", url, "kate-01")
		if !strings.HasPrefix(own, "Profile kate-01\n") || !strings.Contains(own, "kate-phone  by event merge-test-0003") {
			t.Errorf("profile kate-01:\n%s", own)
		}
	})

	t.Run("profile --json", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "profile", "--nats", url, "--json", "kate-phone")
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
		var got struct {
			profileJSON
			ResolvedUUID string   `json:"resolved_uuid"`
			Via          []string `json:"via"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		if got.ResolvedUUID != "kate-01" || len(got.Via) != 1 || got.Via[0] != "kate-phone" {
			t.Errorf("resolved_uuid %q via %v, want kate-01 via [kate-phone]", got.ResolvedUUID, got.Via)
		}
		if got.Record == nil || got.Record.Profile.UUID != "kate-01" || len(got.Record.Merges) != 1 {
			t.Fatalf("record %s", stdout)
		}
		if m := got.Record.Merges[0]; m.From != "kate-phone" || m.Event != "merge-test-0003" || m.At.IsZero() {
			t.Errorf("merge %+v", m)
		}
		if len(got.Activity) != 3 {
			t.Errorf("activity %+v, want the 3 events of both uuids", got.Activity)
		}
		owner, err := h.kv.Owner(context.Background(), "kate@example.com")
		if err != nil || owner != "kate-01" {
			t.Errorf("owner of kate@example.com = %q, %v", owner, err)
		}
	})

	t.Run("profile --json of a customer never merged", func(t *testing.T) {
		_, stdout, _ := run(t, "", "profile", "--nats", url, "--json", "nobody-2")
		var got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if string(got["resolved_uuid"]) != `"nobody-2"` || got["via"] != nil {
			t.Errorf("resolved_uuid %s, via %s", got["resolved_uuid"], got["via"])
		}
	})

	t.Run("activity of an event stored without id or time", func(t *testing.T) {
		// As an app publishes it on NATS: herald publish would give it
		// an id and a time.
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(context.Background(), "herald.events.app", []byte(`{"action":"page.visit","uuid":"lena-9"}`)); err != nil {
			t.Fatal(err)
		}
		read := func() []*event.Event {
			t.Helper()
			var got struct {
				Activity []*event.Event `json:"activity"`
			}
			_, stdout, _ := run(t, "", "profile", "--nats", url, "--json", "lena-9")
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			return got.Activity
		}
		first := read()
		time.Sleep(20 * time.Millisecond) // a new time would differ
		second := read()
		if len(first) != 1 || len(second) != 1 {
			t.Fatalf("activity %v then %v, want the one event", first, second)
		}
		// The id and time the stream gave it, the same on every call.
		if first[0].ID != second[0].ID || !first[0].Time.Equal(second[0].Time) {
			t.Errorf("the event shows as %s at %s, then %s at %s", first[0].ID, first[0].Time, second[0].ID, second[0].Time)
		}
	})
}
