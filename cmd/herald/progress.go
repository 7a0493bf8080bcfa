package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows how far a long run (a replay, a recording) has come, on
// one line of standard error that it rewrites, and only when standard
// error is a terminal and standard output is not (it goes to a file): logs
// and pipes get the summary alone, and a terminal showing the output
// itself needs no more.
type progress struct {
	w     io.Writer
	what  string
	every time.Duration
	last  time.Time
	shown bool
}

// newProgress returns a progress line for counting what, nil (which
// shows nothing) when standard error is not a terminal.
func (c *cli) newProgress(what string) *progress {
	if !isTerminal(c.stderr) || isTerminal(c.stdout) {
		return nil
	}
	return &progress{w: c.stderr, what: what, every: 200 * time.Millisecond}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// tick shows the count n, at most every p.every.
func (p *progress) tick(n int) {
	if p == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.shown = true
		fmt.Fprintf(p.w, "\r%d %s…", n, p.what)
	}
}

// done clears the line, so the summary stands alone.
func (p *progress) done() {
	if p == nil || !p.shown {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
	p.shown = false
}
