package email

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outboxMessage is a valid message with the given ID.
func outboxMessage(id string) *Message {
	return &Message{
		ID:      id + "@herald",
		From:    "Herald Shop <news@shop.example>",
		To:      "john.doe@example.com",
		Subject: "Bestätigen Sie Ihr Abo",
		Text:    "Bitte bestätigen Sie Ihr Abo: https://shop.example/confirm?t=" + id + "\n",
		HTML:    "<p>Bitte <a href=\"https://shop.example/confirm?t=" + id + "\">bestätigen</a> Sie Ihr Abo.</p>\n",
		Date:    time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	}
}

// waitUntil polls cond until it holds, failing the test after ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive takes a value from c, failing the test after ten seconds.
func receive[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		var zero T
		return zero
	}
}

// waiting is how many Sends wait for the next sync of o.
func (o *Outbox) waiting() int {
	o.synced.mu.Lock()
	defer o.synced.mu.Unlock()
	if o.synced.next == nil {
		return 0
	}
	return o.synced.next.waiters
}

// idle reports whether o has no sync running and none to run.
func (o *Outbox) idle() bool {
	o.synced.mu.Lock()
	defer o.synced.mu.Unlock()
	return !o.synced.running && o.synced.next == nil
}

type sendResult struct {
	retry bool
	err   error
}

// The Sends that arrive while a sync runs share the next one, and when it
// fails, every one of them fails, retryably.
func TestOutboxSyncErrorFailsEveryWaitingSend(t *testing.T) {
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("disk on fire")
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	o.synced.sync = func() error {
		switch calls.Add(1) {
		case 1:
			close(entered)
			<-release
			return nil
		case 2:
			return errDisk
		default:
			return nil
		}
	}

	first := make(chan sendResult, 1)
	go func() {
		retry, err := o.Send(t.Context(), outboxMessage("first"))
		first <- sendResult{retry, err}
	}()
	receive(t, entered)

	const n = 8
	results := make(chan sendResult, n)
	for i := range n {
		go func() {
			retry, err := o.Send(t.Context(), outboxMessage(fmt.Sprintf("batch-%d", i)))
			results <- sendResult{retry, err}
		}()
	}
	waitUntil(t, fmt.Sprintf("%d Sends wait for the next sync", n), func() bool { return o.waiting() == n })
	close(release)

	if r := receive(t, first); r.err != nil {
		t.Errorf("first Send = %t, %v; want success", r.retry, r.err)
	}
	for range n {
		r := receive(t, results)
		if !errors.Is(r.err, errDisk) || !r.retry {
			t.Errorf("Send in the failed batch = %t, %v; want a retryable error wrapping %q", r.retry, r.err, errDisk)
		}
		if r.err != nil && !strings.HasPrefix(r.err.Error(), "send email to ") {
			t.Errorf("error %q does not start with %q", r.err, "send email to ")
		}
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("synced %d times for two batches, want 2", got)
	}

	// A retry replaces the file the failed Send left.
	if _, err := o.Send(t.Context(), outboxMessage("batch-0")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	entries, err := os.ReadDir(o.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n+1 {
		t.Errorf("outbox holds %d files after a retry, want %d", len(entries), n+1)
	}
}

// Send returns only after a folder sync that began once its file was in
// place: the rename is durable, not just the content.
func TestOutboxSyncsFolderAfterRename(t *testing.T) {
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	synced := map[string]bool{} // files in place when a sync began
	o.synced.sync = func() error {
		entries, err := os.ReadDir(o.Dir())
		if err != nil {
			return err
		}
		mu.Lock()
		for _, e := range entries {
			synced[e.Name()] = true
		}
		mu.Unlock()
		return syncDir(o.Dir())
	}

	const senders, each = 16, 4
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range each {
				m := outboxMessage(fmt.Sprintf("msg-%d-%d", i, j))
				if _, err := o.Send(t.Context(), m); err != nil {
					t.Error(err)
					return
				}
				name := strings.TrimPrefix(o.Path(m), o.Dir()+string(os.PathSeparator))
				mu.Lock()
				ok := synced[name]
				mu.Unlock()
				if !ok {
					t.Errorf("Send(%s) returned before a sync saw %s in place", m.ID, name)
				}
			}
		})
	}
	wg.Wait()
}

// A Send whose context ends while it waits for a sync returns at once,
// retryably; the sync goes on for the others.
func TestOutboxSendCancelledWhileWaitingForSync(t *testing.T) {
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	o.synced.sync = func() error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}

	first := make(chan sendResult, 1)
	go func() {
		retry, err := o.Send(t.Context(), outboxMessage("first"))
		first <- sendResult{retry, err}
	}()
	receive(t, entered)

	ctx, cancel := context.WithCancel(t.Context())
	cancelled := make(chan sendResult, 1)
	go func() {
		retry, err := o.Send(ctx, outboxMessage("cancelled"))
		cancelled <- sendResult{retry, err}
	}()
	waitUntil(t, "a Send waits for the next sync", func() bool { return o.waiting() == 1 })
	cancel()
	if r := receive(t, cancelled); !r.retry || !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled Send = %t, %v; want a retryable error matching context.Canceled", r.retry, r.err)
	}

	close(release)
	if r := receive(t, first); r.err != nil {
		t.Errorf("first Send = %t, %v; want success", r.retry, r.err)
	}
	waitUntil(t, "outbox idle", o.idle)
}

// liveHeap returns the bytes of live heap objects.
func liveHeap() uint64 {
	var ms runtime.MemStats
	for range 2 { // sync.Pool keeps objects for one more cycle
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Regression: the outbox kept the name of every message it ever wrote
// (about 170 bytes each, more for long IDs). What it holds must not grow
// with the messages sent.
func TestOutboxMemoryDoesNotGrowWithMessages(t *testing.T) {
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Long IDs, so that anything kept per message shows clearly.
	long := strings.Repeat("x", 120)
	send := func(from, to int) {
		t.Helper()
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(to); i = next.Add(1) {
					if _, err := o.Send(t.Context(), outboxMessage(fmt.Sprintf("%s-%d", long, i))); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		waitUntil(t, "outbox idle", o.idle)
	}

	const warm, n = 100, 300
	send(0, warm)
	before := liveHeap()
	send(warm, warm+n)
	after := liveHeap()
	// Kept per message, the names would take some 350 bytes each; the
	// runtime's own bookkeeping varies by a few kilobytes.
	if grown := int64(after) - int64(before); grown > n*100 {
		t.Errorf("live heap grew by %d bytes over %d messages (%d per message), want it not to grow with messages",
			grown, n, grown/n)
	}
	entries, err := os.ReadDir(o.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != warm+n || slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") }) {
		t.Errorf("outbox holds %d files, want %d and no temporary files", len(entries), warm+n)
	}
}
