package main

import (
	"bytes"
	"testing"
)

// The progress line shows counts, rewriting itself, and clears itself;
// without a terminal there is none.
func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, what: "events"}
	p.tick(1)
	p.tick(2)
	p.done()
	if got, want := b.String(), "\r1 events…\r2 events…\r\033[K"; got != want {
		t.Errorf("progress wrote %q, want %q", got, want)
	}
	c := &cli{stderr: &b}
	if c.newProgress("events") != nil {
		t.Error("a progress line on a buffer, which is no terminal")
	}
	var none *progress
	none.tick(3) // a nil progress shows nothing and does not panic
	none.done()
}
