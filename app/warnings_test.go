package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/internal/syncbuf"
)

// herald serve logs what herald lint warns of when it loads the rules,
// and again when it reloads them.
func TestServeLogsRuleWarnings(t *testing.T) {
	cfg := apptest.Config(t, "../docs/examples/template-params")
	var logs syncbuf.Buffer
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	const want = `level=WARN msg="rule warning (see herald lint)" warning="../docs/examples/template-params/rules.yaml:8:21: warning: rule \"welcome\": email template \"welcome\" prints .Params.firstname`
	if got := strings.Count(logs.String(), want); got != 1 {
		t.Fatalf("the warning logged %d times at start, want once:\n%s", got, logs.String())
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), want); got != 2 {
		t.Errorf("the warning logged %d times after a reload, want twice:\n%s", got, logs.String())
	}
}
