package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// outboxDateFormat is the date prefix of outbox file names (UTC).
const outboxDateFormat = "20060102T150405Z"

// maxIDNameLen bounds the message ID part of a file name; longer IDs are
// cut and suffixed with a hash so that names stay under common limits.
const maxIDNameLen = 160

// Outbox writes each message as an RFC 5322 .eml file into a folder instead
// of sending it, so that a first run needs no mail server. The bytes are
// exactly those SMTP would transmit. It is safe for concurrent use.
//
// A message lands in <date>-<id>.eml, where date is Message.Date in UTC
// (20261128T100000Z) and id is the part of Message.ID before the last "@",
// with bytes other than letters, digits, ".", "_" and "-" percent-encoded.
// Files are written atomically (temporary file, then rename) with mode
// 0644. Writing a message again with the same ID and Date replaces its
// file, so retries never leave duplicates: the [Effector] takes Date from
// the rendered effect, which a retry does not change. The same ID with
// another Date is another file; the older one stays.
//
// Send returns once the file's content and its name are on disk: the file
// is synced before it is renamed into place, and the folder after. Sends
// running at once share the folder syncs: one covers every file renamed
// into place before it began, so a batch of files costs one folder sync.
// When Send fails the file may still be in place; a retry replaces it.
type Outbox struct {
	dir string
	// bufs holds *bytes.Buffer to build messages in, so that each is
	// written with one call.
	bufs sync.Pool
	// synced makes renames in dir durable.
	synced groupSync
}

// NewOutbox returns an outbox writing into dir, creating dir (mode 0755) if
// it is missing.
func NewOutbox(dir string) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("create outbox: no directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create outbox: %w", err)
	}
	return &Outbox{dir: dir, synced: groupSync{sync: func() error { return syncDir(dir) }}}, nil
}

// Dir returns the outbox folder.
func (o *Outbox) Dir() string { return o.dir }

// String describes the outbox for logs.
func (o *Outbox) String() string { return "outbox " + o.dir }

// Path returns the file that Send writes m to. m.ID and m.Date should be
// valid; Send checks them, Path does not.
func (o *Outbox) Path(m *Message) string {
	return filepath.Join(o.dir, m.Date.UTC().Format(outboxDateFormat)+"-"+idName(m.ID)+".eml")
}

// Send writes m into the outbox and returns once the file is on disk. An
// invalid message is not retryable; a failure to write or sync is.
func (o *Outbox) Send(ctx context.Context, m *Message) (retry bool, err error) {
	msg, err := m.build()
	if err != nil {
		return false, fmt.Errorf("send email to %s: %w", recipient(m), err)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("send email to %s: %w", m.To, context.Cause(ctx))
	}
	buf, _ := o.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer o.putBuffer(buf)
	if _, err := msg.WriteTo(buf); err != nil {
		// Writing into memory fails only on the message itself.
		return false, fmt.Errorf("send email to %s: build message: %w", m.To, err)
	}
	if err := o.write(o.Path(m), buf.Bytes()); err != nil {
		return true, fmt.Errorf("send email to %s: write outbox: %w", m.To, err)
	}
	if err := o.synced.wait(ctx); err != nil {
		return true, fmt.Errorf("send email to %s: sync outbox: %w", m.To, err)
	}
	return false, nil
}

// maxPooledBuffer is the largest buffer kept for reuse, so that one huge
// message does not stay in memory.
const maxPooledBuffer = 256 << 10

// putBuffer keeps b for the next message unless it is large.
func (o *Outbox) putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	o.bufs.Put(b)
}

// write puts data into path atomically: a temporary file in the outbox,
// written in one call and synced, then renamed into place.
func (o *Outbox) write(path string, data []byte) error {
	tmp, err := os.CreateTemp(o.dir, ".herald-*.eml.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// syncDir makes the entries of dir durable: the names of files renamed
// into it. Windows cannot sync a folder; there the name is as durable as
// the file system's journal makes it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// groupSync runs one sync for many waiters (group commit). A wait is
// answered by the first sync that begins after it; waits arriving while a
// sync runs share the next one. Syncs run one at a time and are never
// delayed on purpose. A wait that finds no sync running runs its own in
// the caller, so a lone wait costs one sync and no hand-over; the rounds
// that gather meanwhile go to a goroutine that lives while waits arrive.
type groupSync struct {
	sync func() error

	mu sync.Mutex
	// running says a sync is under way or about to be.
	running bool
	// next is the round the next sync answers, nil when no one waits.
	next *syncRound
}

// syncRound is one sync and the waits it answers.
type syncRound struct {
	done    chan struct{} // closed once err is set
	err     error
	waiters int
}

// wait returns the error of a sync that began after wait was called. A
// wait that joins a round returns early with ctx's cause if ctx ends.
func (g *groupSync) wait(ctx context.Context) error {
	g.mu.Lock()
	if !g.running {
		g.running = true
		g.mu.Unlock()
		err := g.sync()
		g.mu.Lock()
		if g.next != nil {
			go g.run()
		} else {
			g.running = false
		}
		g.mu.Unlock()
		return err
	}
	r := g.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		g.next = r
	}
	r.waiters++
	g.mu.Unlock()

	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		select {
		case <-r.done:
			return r.err
		default:
			return context.Cause(ctx)
		}
	}
}

// run syncs round after round until no one waits.
func (g *groupSync) run() {
	g.mu.Lock()
	for g.next != nil {
		r := g.next
		g.next = nil
		g.mu.Unlock()
		r.err = g.sync()
		close(r.done)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
}

// idName turns a message ID into a file name part: the local part (before
// the last "@"), percent-encoding everything but letters, digits, ".", "_"
// and "-" (and a leading "."), cut with a hash suffix when too long.
func idName(id string) string {
	if at := strings.LastIndexByte(id, '@'); at > 0 {
		id = id[:at]
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if isNameByte(c) && (c != '.' || i > 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	name := b.String()
	if len(name) > maxIDNameLen {
		sum := sha256.Sum256([]byte(id))
		name = name[:maxIDNameLen-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// Sweep deletes the emails of the outbox written before before (by the
// file's modification time), for a retention limit, and returns how many
// it deleted. Files other than .eml ones are left alone.
func (o *Outbox) Sweep(before time.Time) (int, error) {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return 0, fmt.Errorf("sweep outbox: %w", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("sweep outbox: %w", err)
		}
		if !info.ModTime().Before(before) {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("sweep outbox: %w", err)
		}
		n++
	}
	return n, nil
}
