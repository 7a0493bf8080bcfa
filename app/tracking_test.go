package app_test

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/herald-events/herald/app"
	"github.com/herald-events/herald/app/apptest"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/ingest"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go/jetstream"
)

// The tracking half end to end, in a real Chromium: the demo shop page
// served by Herald loads herald.js, which sends a visit, a session, a
// declarative product view and the newsletter form through the collector;
// the double opt-in rules email a confirmation link into the outbox, and
// confirming it in the browser makes a known customer whose agreement is
// enabled and whose activity shows it all.

const chromiumPath = "/usr/bin/chromium"

var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
)

// browser returns a fresh browser context (its own storage) of the one
// Chromium the test binary shares. Without Chromium the test fails and
// says how to install it.
func browser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		if _, err := os.Stat(chromiumPath); err != nil {
			browserErr = fmt.Errorf("the browser tests need Chromium at %s: install it with `apt-get install -y chromium` (%v)", chromiumPath, err)
			return
		}
		dir, err := os.MkdirTemp("", "herald-app-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(dir),
		)
		alloc, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, _ := chromedp.NewContext(alloc)
		if err := chromedp.Do(ctx); err != nil {
			browserErr = fmt.Errorf("start Chromium: %w", err)
			return
		}
		browserCtx = ctx
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action opens the tab, which lives as long as the context
	// it is opened with: this one, not a step's with a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// Listening to the console enables the page's runtime, which
	// evaluating scripts needs; what the page logs goes to the test log.
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			_ = m
		}
	}()
	return ctx
}

// do runs browser steps with a deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// shop is a running Herald with the double opt-in rules and the demo site
// on a known address (the site's origin must be written before start).
type shop struct {
	t      *testing.T
	app    *app.App
	base   string
	outbox string
	js     jetstream.JetStream
	kv     *profile.KV
}

func startShop(t *testing.T) *shop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := apptest.Config(t, "../examples/newsletter-double-opt-in")
	cfg.HTTP.Listen = addr
	cfg.HTTP.BaseURL = "http://" + addr
	cfg.Sites = []config.Site{{Name: "demo", WriteKey: "demo-write-key", Origins: []string{"http://" + addr}}}
	a := apptest.Start(t, cfg)
	c := apptest.Connect(t, a)
	return &shop{t: t, app: a, base: "http://" + addr, outbox: cfg.Email.Outbox, js: c.JS, kv: c.Profiles}
}

func (s *shop) profile(uuid string) *profile.Profile {
	rec, _, err := s.kv.Get(context.Background(), uuid)
	if err != nil || rec == nil {
		return nil
	}
	return rec.Profile
}

// idle waits until the consumer has handled every event.
func (s *shop) idle() {
	s.t.Helper()
	eventually(s.t, "every event handled", func() bool {
		c, err := s.js.Consumer(context.Background(), natsbus.EventsStream, natsbus.ConsumerName)
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

// emailsTo returns the outbox's emails to addr.
func (s *shop) emailsTo(addr string) []*mail.Message {
	s.t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.outbox, "*.eml"))
	var out []*mail.Message
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			s.t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(data)))
		if err != nil {
			s.t.Fatal(err)
		}
		if strings.Contains(m.Header.Get("To"), addr) {
			out = append(out, m)
		}
	}
	return out
}

func (s *shop) activity(uuid string) []string {
	s.t.Helper()
	act, err := ingest.RecentActivity(context.Background(), s.js, uuid, 50, 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, ev := range act.Events {
		out = append(out, ev.Action)
	}
	return out
}

// textPart returns an email's text/plain part, decoded.
func textPart(t *testing.T, m *mail.Message) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			t.Fatalf("no text part: %v", err)
		}
		if strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain") {
			data, err := io.ReadAll(part)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

var confirmRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/l/[A-Za-z0-9._-]+`)

// subscribe fills in the demo shop's newsletter form and sends it; it
// returns the browser's visitor uuid.
func (s *shop) subscribe(ctx context.Context, email string, tick bool) string {
	s.t.Helper()
	do(s.t, ctx, "open the demo shop", chromedp.Navigate(s.base+"/demo"), chromedp.WaitVisible(chromedp.ID("newsletter")))
	do(s.t, ctx, "view the mug", chromedp.Click(chromedp.ID("view-mug")))
	do(s.t, ctx, "fill in the form", chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=firstname]`), "Anna"))
	if tick {
		do(s.t, ctx, "tick the box", chromedp.Click(chromedp.CSS(`input[name=newsletter_agreement]`)))
	}
	do(s.t, ctx, "subscribe", chromedp.Click(chromedp.CSS(`#newsletter button`)), chromedp.WaitVisible(chromedp.ID("thanks")))
	evalCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	uuid, err := chromedp.Run(evalCtx, chromedp.Evaluate[string](`Herald.uuid()`, chromedp.EvalAwaitPromise))
	if err != nil || len(uuid) < 16 {
		s.t.Fatalf("visitor uuid %q: %v", uuid, err)
	}
	return uuid
}

func TestTrackingDemoDoubleOptIn(t *testing.T) {
	s := startShop(t)
	ctx := browser(t)
	uuid := s.subscribe(ctx, "anna@example.com", true)

	// The form made the anonymous visitor a known customer, and the double
	// opt-in rules asked them to confirm.
	eventually(t, "the confirmation request", func() bool { return len(s.emailsTo("anna@example.com")) == 1 })
	p := s.profile(uuid)
	if p == nil || p.Email != "anna@example.com" || p.Firstname != "Anna" || !p.HasTag("signup") || p.Attributes["newsletterAgreement"] != "confirmation" {
		t.Fatalf("profile after the form: %+v", p)
	}
	text := textPart(t, s.emailsTo("anna@example.com")[0])
	link := confirmRE.FindString(text)
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", text)
	}

	// Confirming in the browser: the page's button posts the token.
	do(t, ctx, "confirm page", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`form button`)), chromedp.Click(chromedp.CSS(`form button`)))
	eventually(t, "the agreement enabled", func() bool {
		p := s.profile(uuid)
		return p != nil && p.Attributes["newsletterAgreement"] == "enabled"
	})
	s.idle()
	got := strings.Join(s.activity(uuid), " ")
	for _, want := range []string{"page.visit", "session.start", "product.view", "form.submit", "newsletter.confirm"} {
		if !strings.Contains(got, want) {
			t.Errorf("activity %q lacks %s", got, want)
		}
	}
	if n := len(s.emailsTo("anna@example.com")); n != 2 {
		t.Errorf("%d emails to anna, want the request and the confirmation", n)
	}
}

func TestTrackingDemoFormWithoutTheBoxSendsNoEmail(t *testing.T) {
	s := startShop(t)
	uuid := s.subscribe(browser(t), "bob@example.com", false)
	eventually(t, "the form applied", func() bool {
		p := s.profile(uuid)
		return p != nil && p.Email == "bob@example.com"
	})
	s.idle()
	if n := len(s.emailsTo("bob@example.com")); n != 0 {
		t.Fatalf("%d emails to bob, who did not tick the box", n)
	}
	if p := s.profile(uuid); p.Attributes["newsletterAgreement"] != nil || !p.HasTag("signup") {
		t.Fatalf("profile %+v", p)
	}
}
