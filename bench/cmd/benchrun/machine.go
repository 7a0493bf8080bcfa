package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where and on what the figures were measured.
type Machine struct {
	Date      time.Time
	CPUs      int    // nproc
	CPU       string // model name
	MemoryGB  float64
	Kernel    string
	Go        string // go version
	Herald    string // herald version
	Commit    string // the repository's commit, and whether it had changes
	NATS      string // natscli version
	LoadStart string // /proc/loadavg when benchrun started
	LoadEnd   string // and when it ended
}

func machine(ctx context.Context, o *options) Machine {
	m := Machine{Date: time.Now().UTC(), CPUs: runtime.NumCPU(), LoadStart: loadavg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb float64
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ = strconv.ParseFloat(f[0], 64)
				}
				m.MemoryGB = kb * 1024 / (1 << 30)
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.Go = output(ctx, o.root, goTool(), "version")
	m.Herald = output(ctx, o.root, o.herald, "version")
	m.NATS = "natscli " + output(ctx, o.root, o.nats, "--version")
	m.Commit = output(ctx, o.root, "git", "rev-parse", "--short", "HEAD")
	if m.Commit != "" && output(ctx, o.root, "git", "status", "--porcelain", "--untracked-files=no") != "" {
		m.Commit += " with uncommitted changes"
	}
	return m
}

// output runs a command and returns its trimmed output, or "" on error.
func output(ctx context.Context, dir, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
