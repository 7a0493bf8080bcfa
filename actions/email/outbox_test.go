package email_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
)

// outboxFiles lists the names in dir, hidden temporary files included.
func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutboxWritesOneFilePerMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "outbox") // created on demand
	o, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("outbox dir: %v, %v; want a 0755 directory", fi, err)
	}

	m := doiRequest()
	if retry, err := o.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: retry=%t err=%v", retry, err)
	}
	want := "20261128T100000Z-01JD8XQK3W5N7R9T2V4Y6A8C0E-doi-request-2.eml"
	if got := outboxFiles(t, dir); !slices.Equal(got, []string{want}) {
		t.Fatalf("outbox holds %q, want [%s]", got, want)
	}
	if o.Path(m) != filepath.Join(dir, want) {
		t.Errorf("Path = %q, want %q", o.Path(m), filepath.Join(dir, want))
	}
	fi, err := os.Stat(filepath.Join(dir, want))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode = %v, want 0644", fi.Mode().Perm())
	}
	first, err := os.ReadFile(filepath.Join(dir, want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, m, first)

	t.Run("same message again overwrites the same file with the same bytes", func(t *testing.T) {
		if _, err := o.Send(context.Background(), doiRequest()); err != nil {
			t.Fatal(err)
		}
		if got := outboxFiles(t, dir); !slices.Equal(got, []string{want}) {
			t.Fatalf("outbox holds %q, want [%s]", got, want)
		}
		again, err := os.ReadFile(filepath.Join(dir, want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Errorf("rewrite changed the file:\n%s\n---\n%s", first, again)
		}
	})

	t.Run("same ID with another date is a file of its own", func(t *testing.T) {
		// Retries keep the date the email was rendered with; only a new
		// rendering changes it, and that is written next to the old one.
		m := doiRequest()
		m.Date = sendDate.Add(time.Hour)
		m.Subject = "re-rendered"
		if _, err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		later := "20261128T110000Z-01JD8XQK3W5N7R9T2V4Y6A8C0E-doi-request-2.eml"
		if got := outboxFiles(t, dir); !slices.Equal(got, []string{want, later}) {
			t.Fatalf("outbox holds %q, want [%s %s]", got, want, later)
		}
		b, err := os.ReadFile(filepath.Join(dir, later))
		if err != nil {
			t.Fatal(err)
		}
		checkDelivered(t, m, b)
		if b, err := os.ReadFile(filepath.Join(dir, want)); err != nil || !bytes.Equal(b, first) {
			t.Errorf("the earlier file changed (%v)", err)
		}
	})

	t.Run("other messages stay", func(t *testing.T) {
		m := doiRequest()
		// Same suffix after a dash: must not be mistaken for the same ID.
		m.ID = "x-01JD8XQK3W5N7R9T2V4Y6A8C0E-doi-request-2@herald"
		if _, err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		m = doiRequest()
		m.ID = "other@herald"
		if _, err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if got := outboxFiles(t, dir); len(got) != 4 || !slices.Contains(got, want) {
			t.Errorf("outbox holds %q, want 4 files, %s among them", got, want)
		}
	})
}

func TestOutboxFileNames(t *testing.T) {
	cases := []struct{ id, want string }{
		{"01JD-doi-request-2@herald", "20261128T100000Z-01JD-doi-request-2.eml"},
		{"a.b_c-d@x@y", "20261128T100000Z-a.b_c-d%40x.eml"},
		{"../../etc/passwd@herald", "20261128T100000Z-%2E.%2F..%2Fetc%2Fpasswd.eml"},
		{"a/b?c*d@herald", "20261128T100000Z-a%2Fb%3Fc%2Ad.eml"},
		{strings.Repeat("x", 300) + "@herald", ""}, // shortened, checked below
	}
	o, err := email.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			m := doiRequest()
			m.ID = c.id
			if _, err := o.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			got := filepath.Base(o.Path(m))
			if filepath.Dir(o.Path(m)) != o.Dir() {
				t.Fatalf("Path %q escapes the outbox %q", o.Path(m), o.Dir())
			}
			if _, err := os.Stat(o.Path(m)); err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if len(got) > 200 {
					t.Errorf("name %q has %d bytes, want at most 200", got, len(got))
				}
				return
			}
			if got != c.want {
				t.Errorf("file name = %q, want %q", got, c.want)
			}
		})
	}
}

// Many Sends at once, each message sent twice by different senders (a
// retry racing the first attempt): every message lands once, with the
// bytes a lone Send writes, and no temporary file stays.
func TestOutboxConcurrentSends(t *testing.T) {
	const senders, messages = 32, 48 // message i goes out from senders i%32 and (i+16)%32
	message := func(i int) *email.Message {
		m := doiRequest()
		m.ID = fmt.Sprintf("msg-%d@herald", i)
		m.Text = fmt.Sprintf("Hallo Nummer %d,\n\nbitte bestätigen Sie Ihr Abo.\n", i)
		m.Date = sendDate.Add(time.Duration(i) * time.Second)
		return m
	}

	// The bytes each message should have, written one at a time.
	ref, err := email.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string][]byte, messages)
	for i := range messages {
		m := message(i)
		if _, err := ref.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ref.Path(m))
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.Base(ref.Path(m))] = b
	}

	o, err := email.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := s; i < 2*messages; i += senders {
				if retry, err := o.Send(context.Background(), message(i%messages)); err != nil {
					t.Errorf("Send = %t, %v", retry, err)
				}
			}
		})
	}
	wg.Wait()

	files := outboxFiles(t, o.Dir())
	if len(files) != messages {
		t.Errorf("outbox holds %d files, want one per message (%d)", len(files), messages)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(o.Dir(), f))
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[f]; !ok {
			t.Errorf("unexpected file %q", f)
		} else if !bytes.Equal(got, w) {
			t.Errorf("%s differs from a lone Send's:\n%s\n---\n%s", f, got, w)
		}
	}
}

func TestOutboxWriteFailureIsRetryable(t *testing.T) {
	dir := t.TempDir()
	o, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The folder vanished (say, cleaned up by hand) and a file took its place.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	retry, err := o.Send(context.Background(), doiRequest())
	if err == nil || !retry {
		t.Fatalf("Send = %t, %v; want a retryable error", retry, err)
	}
	if !strings.HasPrefix(err.Error(), "send email to ") {
		t.Errorf("error %q does not start with %q", err, "send email to")
	}
}

func TestNewOutboxFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", filepath.Join(file, "outbox")} {
		if _, err := email.NewOutbox(dir); err == nil {
			t.Errorf("NewOutbox(%q) succeeded, want an error", dir)
		}
	}
}

func ExampleOutbox() {
	dir, err := os.MkdirTemp("", "outbox")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	outbox, err := email.NewOutbox(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := &email.Message{
		ID:      "01JD8XQK3W-doi-request-2@herald",
		From:    "Herald Shop <news@shop.example>",
		To:      "john.doe@example.com",
		Subject: "Bestätigen Sie Ihr Abo",
		Text:    "Bitte bestätigen Sie Ihr Abo: https://shop.example/confirm?t=abc\n",
		Date:    time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	}
	if _, err := outbox.Send(context.Background(), msg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(outbox.Path(msg)))
	// Output: 20261128T100000Z-01JD8XQK3W-doi-request-2.eml
}
