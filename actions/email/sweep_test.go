package email_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email"
)

// Sweep deletes the emails written before the time given and leaves the
// newer ones and other files.
func TestOutboxSweep(t *testing.T) {
	dir := t.TempDir()
	ob, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	files := map[string]time.Time{"old.eml": now.Add(-48 * time.Hour), "new.eml": now, "notes.txt": now.Add(-48 * time.Hour)}
	for name, mod := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	n, err := ob.Sweep(now.Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Sweep: %d, %v; want 1", n, err)
	}
	for name, want := range map[string]bool{"old.eml": false, "new.eml": true, "notes.txt": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s there: %v, want %v", name, err == nil, want)
		}
	}
}
