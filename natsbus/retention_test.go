package natsbus_test

import (
	"testing"
	"time"

	"github.com/herald-events/herald/natsbus"
)

// Retention: the max ages set create the streams with them and change
// existing streams to them; left at 0, an existing stream's max age,
// perhaps tuned by an operator, is kept.
func TestSetupMaxAges(t *testing.T) {
	js, res := setup(t)
	if got := res.Events.CachedInfo().Config.MaxAge; got != 0 {
		t.Errorf("events max age by default %s, want none", got)
	}
	res, err := natsbus.Setup(t.Context(), js, natsbus.SetupConfig{EventsMaxAge: 90 * 24 * time.Hour, DeadMaxAge: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Events.CachedInfo().Config.MaxAge; got != 90*24*time.Hour {
		t.Errorf("events max age %s, want 2160h", got)
	}
	if got := res.Dead.CachedInfo().Config.MaxAge; got != 7*24*time.Hour {
		t.Errorf("dead letters max age %s, want 168h", got)
	}
	res, err = natsbus.Setup(t.Context(), js, natsbus.SetupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if e, d := res.Events.CachedInfo().Config.MaxAge, res.Dead.CachedInfo().Config.MaxAge; e != 90*24*time.Hour || d != 7*24*time.Hour {
		t.Errorf("max ages %s and %s after a set-up without them: kept as they were, 2160h and 168h", e, d)
	}
}
