package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
// 0644. Writing a message ID again replaces its file, also when the date
// changed, so retries never leave duplicates.
type Outbox struct {
	dir string
	// mu serialises rename and clean-up, so that two writes of one ID under
	// different dates cannot delete each other's file.
	mu sync.Mutex
	// files maps "-<id>.eml" to the file holding that message, so that
	// replacing an older copy costs no directory scan per message. It is
	// read from the folder on the first write.
	files map[string][]string
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
	return &Outbox{dir: dir}, nil
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

// Send writes m into the outbox. An invalid message is not retryable; a
// failure to write is.
func (o *Outbox) Send(ctx context.Context, m *Message) (retry bool, err error) {
	msg, err := m.build()
	if err != nil {
		return false, fmt.Errorf("send email to %s: %w", recipient(m), err)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("send email to %s: %w", m.To, context.Cause(ctx))
	}

	path := o.Path(m)
	tmp, err := os.CreateTemp(o.dir, ".herald-*.eml.tmp")
	if err != nil {
		return true, fmt.Errorf("send email to %s: write outbox: %w", m.To, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = msg.WriteTo(tmp); err != nil {
		return true, fmt.Errorf("send email to %s: write %s: %w", m.To, tmp.Name(), err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return true, fmt.Errorf("send email to %s: write %s: %w", m.To, tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return true, fmt.Errorf("send email to %s: write %s: %w", m.To, tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return true, fmt.Errorf("send email to %s: write %s: %w", m.To, tmp.Name(), err)
	}
	if err = o.publish(tmp.Name(), path); err != nil {
		return true, fmt.Errorf("send email to %s: %w", m.To, err)
	}
	return false, nil
}

// publish renames the written temporary file into place and removes copies
// of the same message under other dates.
func (o *Outbox) publish(tmp, path string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.files == nil {
		if err := o.index(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	keep := filepath.Base(path)
	suffix := keep[len(outboxDateFormat):] // "-<id>.eml"
	var errs []error
	for _, name := range o.files[suffix] {
		if name == keep {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("replace older copy: %w", err))
		}
	}
	o.files[suffix] = []string{keep}
	return errors.Join(errs...)
}

// index reads the names of the messages already in the folder.
func (o *Outbox) index() error {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	o.files = make(map[string][]string, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || len(name) <= len(outboxDateFormat) || !isOutboxDate(name[:len(outboxDateFormat)]) || !strings.HasSuffix(name, ".eml") {
			continue
		}
		suffix := name[len(outboxDateFormat):]
		o.files[suffix] = append(o.files[suffix], name)
	}
	return nil
}

// isOutboxDate reports whether s looks like 20261128T100000Z.
func isOutboxDate(s string) bool {
	if len(s) != len(outboxDateFormat) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; i {
		case 8:
			if c != 'T' {
				return false
			}
		case 15:
			if c != 'Z' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
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
