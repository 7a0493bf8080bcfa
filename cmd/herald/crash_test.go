package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-events/herald/actions/email/smtptest"
	"github.com/herald-events/herald/natsbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The crash test: herald serve as a separate process, killed with SIGKILL
// three times at random points while it works through 5,000 events, 500
// of them double opt-in forms, and restarted on the same data each time.
// Once it has drained the stream, every form has had its confirmation
// request delivered to the SMTP server (nothing lost), and the only
// duplicates are emails sent again with the same Message-ID, at most as
// many as could be in flight at the kills.
func TestServeSurvivesKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs herald serve as a subprocess; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "herald")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build herald: %v", err)
	}
	smtp := smtptest.NewServer(t)
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "herald.yaml")
	rulesDir, err := filepath.Abs("../../examples/newsletter-double-opt-in")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("data_dir: %s\nrules: [%s]\nnats: {listen: %q}\nhttp: {listen: %q}\nemail: {from: Shop <news@shop.example>, smtp: {url: %q, tls_policy: none}}\nlog: {level: warn}\n",
		filepath.Join(dir, "data"), rulesDir, natsAddr, httpAddr, smtp.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	connect := func() (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0))
			if err == nil {
				js, err := jetstream.New(nc)
				if err == nil {
					if _, err = js.Stream(context.Background(), natsbus.EventsStream); err == nil {
						return nc, js
					}
				}
				nc.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("herald serve did not come up: %v\n%s", err, readFile(t, logFile.Name()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	cmd := start()
	nc, js := connect()
	const forms, total = 500, 5000
	ctx := context.Background()
	for i := range total {
		data := fmt.Sprintf(`{"id":"crash-%05d","action":"page.visit","uuid":"visitor-%d","params":{"url":"https://shop.example.com/%d"}}`, i, i%977, i)
		if i%(total/forms) == 0 {
			data = fmt.Sprintf(`{"id":"crash-%05d","action":"form.submit","uuid":"customer-%d","params":{"form_type":"newsletter","email":"c%d@example.com","newsletter_agreement_enabled":"enabled"}}`, i, i, i)
		}
		if _, err := js.PublishAsync("herald.events.crash", []byte(data), jetstream.WithMsgID(fmt.Sprintf("crash-%05d", i)),
			jetstream.WithStallWait(30*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publishing 5,000 events took over a minute")
	}
	nc.Close()

	for kill := range 3 {
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d emails so far", kill+1, len(smtp.Messages()))
		cmd = start()
	}
	nc, js = connect()
	defer nc.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := js.Consumer(ctx, natsbus.EventsStream, natsbus.ConsumerName)
		if err == nil {
			if ci, err := c.Info(ctx); err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && len(smtp.Messages()) >= forms {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream was not drained within 3 minutes: %d emails\n%s", len(smtp.Messages()), readFile(t, logFile.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}

	byID := map[string]int{}
	for _, m := range smtp.Messages() {
		msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatal(err)
		}
		byID[msg.Header.Get("Message-Id")]++
	}
	if len(byID) != forms {
		t.Fatalf("%d distinct emails, want %d: confirmation requests were lost", len(byID), forms)
	}
	dups := len(smtp.Messages()) - forms
	// At a kill, what is redone is the effects performed and not yet
	// cleared or acknowledged: a few per worker (4), not the events merely
	// pulled. 16 a kill leaves room for acks still on their way.
	if dups > 3*16 {
		t.Fatalf("%d duplicate emails after 3 kills, more than the events in flight", dups)
	}
	t.Logf("%d emails, %d distinct, %d duplicates (same Message-ID)", len(smtp.Messages()), len(byID), dups)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readFile(t *testing.T, path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
