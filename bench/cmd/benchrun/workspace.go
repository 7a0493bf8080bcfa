package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

// workspace holds the data directories of the runs. A directory done with
// is renamed into the trash, which is deleted only at the very end:
// creating files right after deleting thousands is many times slower on
// the file systems measured here, and would slow the next run.
type workspace struct {
	root  string
	trash string
	n     int
}

// newWorkspace prepares root, moving whatever an earlier run left there
// into the trash.
func newWorkspace(root string) (*workspace, error) {
	w := &workspace{root: root, trash: filepath.Join(root, "trash")}
	if err := os.MkdirAll(w.trash, 0o755); err != nil {
		return nil, fmt.Errorf("prepare work directory: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("prepare work directory: %w", err)
	}
	for _, e := range entries {
		if e.Name() != "trash" {
			w.discard(filepath.Join(root, e.Name()))
		}
	}
	return w, nil
}

// dir returns a new, empty directory for a run called name.
func (w *workspace) dir(name string) (string, error) {
	w.n++
	d := filepath.Join(w.root, fmt.Sprintf("%02d-%s", w.n, name))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return d, nil
}

// discard moves path into the trash.
func (w *workspace) discard(path string) {
	to := filepath.Join(w.trash, fmt.Sprintf("%d-%s", time.Now().UnixNano(), filepath.Base(path)))
	if err := os.Rename(path, to); err != nil {
		log.Printf("move %s aside: %v", path, err)
	}
}

// close deletes the trash.
func (w *workspace) close() {
	start := time.Now()
	if err := os.RemoveAll(w.trash); err != nil {
		log.Printf("delete %s: %v", w.trash, err)
		return
	}
	if d := time.Since(start); d > time.Second {
		log.Printf("deleted the runs' data in %s", d.Round(100*time.Millisecond))
	}
}
