package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
)

// confirmLink is long enough for quoted-printable to wrap it in the .eml
// file; herald outbox show prints it whole.
const confirmLink = "https://links.shop.example/l/v1.k1.lrLc2AYJYW5uYS03ZjNjEm5ld3NsZXR0ZXIuY29uZmlybSFOZXdzbGV0dGVyIHN1YnNjcmlwdGlvbiBjb25maXJtZWQHY29uZmlybRowMUtC.Wsrtjorcu7EK3OK-FLYTgNrA4Xp7P7KqpH2GBfU6YEI"

const unsubscribeLink = "https://links.shop.example/l/v1.k1.c3Vic2NyaWJlcgp6b2UtMQpuZXdzbGV0dGVyLnVuc3Vic2NyaWJlCnVuc3Vic2NyaWJlCjAxS0IwMDAwMDAwMDAwMDAwMDAwMDAwMDBC.sig-9Yx2"

// writeOutbox writes emails into a new outbox folder with the outbox
// herald serve uses, and returns the folder. They are written newest
// first; herald outbox lists them oldest first.
func writeOutbox(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outbox")
	ob, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC) }
	for _, m := range []*email.Message{
		{
			// A marketing email: List-Unsubscribe, a name and a subject
			// that are not ASCII.
			ID: "01KB000000000000000000000B.newsletter-issue.1@shop.example", From: "Example Shop <news@shop.example>",
			To: "Zoë Müller <zoe@example.com>", Subject: "Dezember bei Example Shop – 10 % auf alles",
			Text: "Hallo Zoë,\n\nim Dezember gibt es 10 % auf alles.\n\nAbmelden: " + unsubscribeLink + "\n",
			HTML: `<p>Hallo Zoë,</p><p><a href="` + unsubscribeLink + `">Abmelden</a></p>`,
			Headers: map[string]string{
				"List-Unsubscribe":      "<" + unsubscribeLink + ">",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			},
			Date: at(30, 7, 0),
		},
		{
			// Text and HTML, with a link quoted-printable wraps.
			ID: "01KB0000000000000000000002.doi-request.1@shop.example", From: "Example Shop <news@shop.example>",
			ReplyTo: "help@shop.example", To: "anna@example.com", Subject: "Please confirm your newsletter subscription",
			Text: "Hello Anna,\n\nplease confirm by opening this link:\n\n" + confirmLink + "\n\nExample Shop\n",
			HTML: `<p>Hello Anna,</p><p><a href="` + confirmLink + `" style="color: #fff">Confirm</a></p>` +
				`<p><a href="https://shop.example/privacy?from=email&amp;lang=en">Privacy</a></p>`,
			Date: at(28, 9, 1),
		},
		{
			// Text only, the oldest.
			ID: "01KB0000000000000000000001.welcome.2@shop.example", From: "Example Shop <news@shop.example>",
			To: "anna@example.com", Subject: "Welcome", Text: "Welcome, Anna.\n",
			Date: at(28, 9, 0),
		},
	} {
		if _, err := ob.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOutbox reads emails the outbox wrote, as herald serve writes them.
func TestOutbox(t *testing.T) {
	t.Setenv(envConfig, "")
	dir := writeOutbox(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 3 {
		t.Fatalf("outbox files %v, %v", files, err)
	}
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"list", []string{"outbox", "--dir", dir}, "testdata/outbox-list.golden"},
		{"list by name", []string{"outbox", "list", "--dir", dir}, "testdata/outbox-list.golden"},
		{"show by number", []string{"outbox", "show", "--dir", dir, "2"}, "testdata/outbox-show-2.golden"},
		{"show marketing email", []string{"outbox", "show", "3", "--dir", dir}, "testdata/outbox-show-3.golden"},
		{"show file in the outbox", []string{"outbox", "show", "--dir", dir, "20261128T090000Z-01KB0000000000000000000001.welcome.2.eml"}, "testdata/outbox-show-1.golden"},
		{"show file by its path", []string{"outbox", "show", filepath.Join(dir, "20261128T090000Z-01KB0000000000000000000001.welcome.2.eml")}, "testdata/outbox-show-1.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != exitOK {
				t.Errorf("exit code %d; stderr:\n%s", code, stderr)
			}
			golden(t, tt.golden, strings.ReplaceAll(stdout, dir, "OUTBOX"))
		})
	}
	raw, err := os.ReadFile(filepath.Join(dir, "20261128T090100Z-01KB0000000000000000000002.doi-request.1.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), confirmLink) {
		t.Errorf("the .eml file holds the link unwrapped: this test no longer shows that outbox show joins it")
	}
}

func TestOutboxFolders(t *testing.T) {
	goldenFile, err := filepath.Abs("testdata/outbox-list-config.golden")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")

	// The folder comes from the configuration: ./herald.yaml, else the
	// defaults' data/outbox.
	code, stdout, _ := run(t, "", "outbox")
	if want := "No emails: data/outbox does not exist yet; herald serve makes it when it writes the first email.\n"; code != exitOK || stdout != want {
		t.Errorf("no folder: exit code %d, stdout %q, want %q", code, stdout, want)
	}
	if err := os.MkdirAll("mail", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("herald.yaml", []byte("email:\n  outbox: mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run(t, "", "outbox")
	if want := "No emails in mail.\n"; code != exitOK || stdout != want {
		t.Errorf("empty folder: exit code %d, stdout %q, want %q", code, stdout, want)
	}

	// A file that is not an email is reported; the others are listed.
	src := writeOutbox(t)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("mail", e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"broken.eml":                "this is not\x00an email\n",
		".herald-123.eml.tmp":       "a temporary file, not yet an email",
		".herald-456.eml":           "a dot file",
		"notes.txt":                 "not an .eml file",
		"20261201T000000Z-x.eml.gz": "compressed",
	} {
		if err := os.WriteFile(filepath.Join("mail", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := run(t, "", "outbox")
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	if want := "herald outbox: mail/broken.eml: not an email: "; !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", stderr, want)
	}
	golden(t, goldenFile, stdout)

	// HERALD_CONFIG wins over ./herald.yaml; --dir over both.
	t.Setenv(envConfig, writeConfig(t, "email:\n  outbox: elsewhere\n"))
	if code, stdout, _ := run(t, "", "outbox"); code != exitOK || !strings.Contains(stdout, "elsewhere does not exist yet") {
		t.Errorf("HERALD_CONFIG: exit code %d, stdout %q", code, stdout)
	}
	if code, stdout, _ := run(t, "", "outbox", "show", "--dir", "mail", "1"); code != exitOK || !strings.Contains(stdout, "Subject:     Welcome\n") {
		t.Errorf("--dir: exit code %d, stdout %q", code, stdout)
	}
}

func TestOutboxErrors(t *testing.T) {
	t.Setenv(envConfig, "")
	dir := writeOutbox(t)
	smtp := writeConfig(t, "email:\n  smtp:\n    url: smtp://mail.example.com:587\n")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outbox", "show", "--dir", dir, "4"}, exitFailed, "herald outbox show: no email 4 in " + dir + ": herald outbox lists 3\n"},
		{[]string{"outbox", "show", "--dir", dir, "0"}, exitFailed, "herald outbox show: no email 0 in " + dir + ": herald outbox lists 3\n"},
		{[]string{"outbox", "show", "--dir", dir, "missing.eml"}, exitFailed, "herald outbox show: open " + filepath.Join(dir, "missing.eml") + ": no such file or directory\n"},
		{[]string{"outbox", "show", "--dir", dir}, exitUsage, "Usage: herald outbox show [flags] FILE|N"},
		{[]string{"outbox", "show", "--dir", dir, "1", "2"}, exitUsage, "Usage: herald outbox show [flags] FILE|N"},
		{[]string{"outbox", "--dir", dir, "extra"}, exitUsage, "Usage: herald outbox [list] [flags]"},
		{[]string{"outbox", "read"}, exitUsage, `herald outbox: unknown command "read"`},
		{[]string{"outbox", "--config", smtp}, exitUsage, "herald outbox: " + smtp + " sets email.smtp.url: herald serve sends emails to the mail server, and writes none to data/outbox; give --dir to read a folder anyway\n"},
		{[]string{"outbox", "--config", writeConfig(t, "email:\n  outbx: x\n")}, exitUsage, `unknown field "outbx"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, "", tt.args...)
			if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
	if code, stdout, _ := run(t, "", "outbox", "help"); code != exitOK || stdout != outboxUsage {
		t.Errorf("help: exit code %d, stdout %q", code, stdout)
	}
}

// TestReadMailEncodings reads what other mail programs write: a base64
// text part, a single-part quoted-printable body, another charset.
func TestReadMailEncodings(t *testing.T) {
	tests := []struct {
		name, eml, text, charset string
		links                    []string
	}{
		{
			name: "base64 part",
			eml: "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGFsbG8gaHR0cHM6\r\nLy9leGFtcGxlLmNvbS9h\r\n--b--\r\n",
			text: "Hallo https://example.com/a", links: []string{"https://example.com/a"},
		},
		{
			name: "single part, quoted-printable",
			eml:  "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsee http://a.example/very=\r\nlong, then stop.\r\n",
			text: "see http://a.example/verylong, then stop.\n", charset: "iso-8859-1", links: []string{"http://a.example/verylong"},
		},
		{
			name: "no content type",
			eml:  "Subject: x\r\n\r\nplain (https://b.example/x).\r\n",
			text: "plain (https://b.example/x).\n", links: []string{"https://b.example/x"},
		},
		{
			name:  "HTML only",
			eml:   "Subject: x\r\nContent-Type: text/html\r\n\r\n<a href='https://c.example/?a=1&amp;b=2'>c</a> <a href=\"mailto:x@example.com\">m</a>\r\n",
			links: []string{"https://c.example/?a=1&b=2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.eml")
			if err := os.WriteFile(path, []byte(tt.eml), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := readMail(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.text != tt.text || m.charset != tt.charset {
				t.Errorf("text %q (charset %q), want %q (%q)", m.text, m.charset, tt.text, tt.charset)
			}
			if got := m.links(); strings.Join(got, " ") != strings.Join(tt.links, " ") {
				t.Errorf("links %q, want %q", got, tt.links)
			}
		})
	}
}

func TestMailRule(t *testing.T) {
	for id, want := range map[string]string{
		"<01KB0000000000000000000002.doi-request.1@shop.example>": "doi-request",
		"<01KB0000000000000000000002.shop.welcome.12@x>":          "shop.welcome",
		"<01KB0000000000000000000002.doi-request@x>":              "-",
		"<abc@x>":  "-",
		"":         "-",
		"<.a.1@x>": "-",
	} {
		m := &outboxMail{header: map[string][]string{"Message-Id": {id}}}
		if got := m.rule(); got != want {
			t.Errorf("rule of %q = %q, want %q", id, got, want)
		}
	}
}
