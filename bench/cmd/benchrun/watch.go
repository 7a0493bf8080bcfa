package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// seen is an email file and when it became visible in the outbox.
type seen struct {
	name string
	at   time.Time
}

// watcher notes, with inotify, each .eml file that becomes visible in an
// outbox folder: renamed into it (how the outbox publishes a message) or
// written and closed in it. Hidden files (the outbox's temporary files)
// are left out. Each name counts once.
type watcher struct {
	dir  string
	file *os.File

	mu       sync.Mutex
	names    map[string]bool
	files    []seen
	overflow bool
	changed  chan struct{} // closed and replaced on every new file
	done     chan struct{}
}

// watch starts watching dir, which must exist.
func watch(dir string) (*watcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MOVED_TO|syscall.IN_CLOSE_WRITE); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w := &watcher{dir: dir, file: os.NewFile(uintptr(fd), "inotify"), names: map[string]bool{}, changed: make(chan struct{}), done: make(chan struct{})}
	go w.read()
	return w, nil
}

func (w *watcher) read() {
	defer close(w.done)
	buf := make([]byte, 256<<10)
	for {
		n, err := w.file.Read(buf)
		if err != nil {
			return // closed
		}
		at := time.Now()
		w.mu.Lock()
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&syscall.IN_Q_OVERFLOW != 0 {
				w.overflow = true
				continue
			}
			name := strings.TrimRight(string(nameBytes), "\x00")
			if name == "" || name[0] == '.' || !strings.HasSuffix(name, ".eml") || w.names[name] {
				continue
			}
			w.names[name] = true
			w.files = append(w.files, seen{name: name, at: at})
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// count returns how many files were seen, and a channel closed when more
// are.
func (w *watcher) count() (int, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.files), w.changed
}

// nth returns when the n-th file (from 1) became visible.
func (w *watcher) nth(n int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < 1 || n > len(w.files) {
		return time.Time{}, false
	}
	return w.files[n-1].at, true
}

// seen returns every file seen so far, in order.
func (w *watcher) seen() []seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seen(nil), w.files...)
}

// waitFor waits until n files were seen or the deadline passes.
func (w *watcher) waitFor(n int, deadline time.Time) error {
	for {
		have, more := w.count()
		if have >= n {
			return nil
		}
		if w.overflowed() {
			return errors.New("inotify queue overflowed: emails were missed")
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%s of %s emails in the outbox", num(float64(have)), num(float64(n)))
		}
		select {
		case <-more:
		case <-time.After(min(wait, 100*time.Millisecond)):
		}
	}
}

func (w *watcher) overflowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.overflow
}

// close stops watching.
func (w *watcher) close() {
	w.file.Close()
	<-w.done
}

// countEmails counts the .eml files in dir.
func countEmails(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); name[0] != '.' && strings.HasSuffix(name, ".eml") {
			n++
		}
	}
	return n
}
