package app_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/natsbus"
)

// serve applies retention: the events stream and the dead letters get
// the max ages configured, and emails older than retention.outbox leave
// the outbox folder while newer ones stay.
func TestServeRetention(t *testing.T) {
	smtp := smtptest.NewServer(t)
	cfg := testConfig(t, "../examples/newsletter-double-opt-in", smtp)
	cfg.Email.SMTP.URL = "" // the .eml outbox
	cfg.Retention = config.Retention{Events: config.Duration(90 * 24 * time.Hour), DeadLetters: config.Duration(14 * 24 * time.Hour), Outbox: config.Duration(30 * 24 * time.Hour)}
	old, recent := filepath.Join(cfg.Email.Outbox, "20250101T000000Z-old.eml"), filepath.Join(cfg.Email.Outbox, "20261101T000000Z-recent.eml")
	for p, age := range map[string]time.Duration{old: 40 * 24 * time.Hour, recent: 24 * time.Hour} {
		if err := os.WriteFile(p, []byte("To: a@example.com\r\n\r\nhi\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	h := startHeraldWith(t, cfg, smtp)
	eventually(t, "the old email swept", func() bool { _, err := os.Stat(old); return os.IsNotExist(err) })
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("the recent email: %v", err)
	}
	for name, want := range map[string]time.Duration{natsbus.EventsStream: 90 * 24 * time.Hour, natsbus.DeadStream: 14 * 24 * time.Hour} {
		s, err := h.js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxAge; got != want {
			t.Errorf("%s max age %s, want %s", name, got, want)
		}
	}
}
