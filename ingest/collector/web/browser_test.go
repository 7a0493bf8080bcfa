package web

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive herald.js in a real headless Chromium against the
// recording collector. One browser serves the whole test binary; each test
// has its own tab in its own browser context (so its own storage) and its
// own collector.

const chromiumPath = "/usr/bin/chromium"

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	browserCancel = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// startBrowser starts the shared Chromium on first use, so tests that need
// no browser never start one.
func startBrowser() {
	if _, err := os.Stat(chromiumPath); err != nil {
		browserErr = fmt.Errorf("the browser tests need Chromium at %s (%v): install it with `apt-get install -y chromium`", chromiumPath, err)
		return
	}
	dir, err := os.MkdirTemp("", "herald-chromium-")
	if err != nil {
		browserErr = fmt.Errorf("make Chromium's user data dir: %w", err)
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	browserCancel = func() {
		cancelBrowser()
		cancelAlloc()
		os.RemoveAll(dir)
	}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		browserErr = fmt.Errorf("start Chromium at %s: %w (is it installed? `apt-get install -y chromium`)", chromiumPath, err)
		return
	}
	browserCtx = ctx
}

// tab is one test's browser tab, with the console messages it logged.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab opens a tab in a fresh browser context. It fails the test, never
// skips it, when Chromium is missing.
func newTab(t *testing.T) *tab {
	t.Helper()
	browserOnce.Do(startBrowser)
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("open a tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	return tb
}

// do runs actions with a deadline.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

func (tb *tab) navigate(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
}

// eval runs a script in the page and waits for it, and for its promise if
// it returns one.
func (tb *tab) eval(js string) {
	tb.t.Helper()
	tb.do(chromedp.Evaluate[chromedp.Void](js, chromedp.EvalAwaitPromise))
}

// evalString runs a script that returns a string.
func (tb *tab) evalString(js string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

func (tb *tab) click(id string) {
	tb.t.Helper()
	tb.do(chromedp.Click(chromedp.ID(id)))
}

// warnings returns the texts of console.warn calls so far.
func (tb *tab) warnings() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.console {
		if m.Type == chromedp.ConsoleWarning {
			out = append(out, m.Text)
		}
	}
	return out
}

// exceptions returns the uncaught exceptions so far.
func (tb *tab) exceptions() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.console {
		if m.IsException() {
			out = append(out, m.Text)
		}
	}
	return out
}

func (tb *tab) waitWarning(contains string) string {
	tb.t.Helper()
	var got string
	waitFor(tb.t, fmt.Sprintf("a console warning containing %q", contains), func() bool {
		for _, w := range tb.warnings() {
			if strings.Contains(w, contains) {
				got = w
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("warnings: %q", tb.warnings()) })
	return got
}

// testPage is a page that loads herald.js and starts it with the options
// (a JS object literal, writeKey added); head goes before the script.
func testPage(title, options, head, body string) string {
	if options == "" {
		options = "{}"
	}
	return `<!doctype html><html><head><meta charset="utf-8"><title>` + title + `</title>` + head +
		`<script src="/herald.js"></script>` +
		`<script>Herald.init(Object.assign({writeKey: "` + testWriteKey + `"}, ` + options + `))</script>` +
		`</head><body>` + body + `</body></html>`
}

// fast sends every event 50 ms after it was tracked.
const fast = `{flushInterval: 50}`
