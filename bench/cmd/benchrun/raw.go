package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The raw baseline: the NATS project's own benchmark tool, natscli's
// `nats bench`, against an embedded NATS server started exactly as herald
// serve starts its own (`benchrun nats-server`: natsbus.StartEmbedded,
// JetStream store on disk, fsync on every write), in a process of its own
// as herald serve is.

// rawConsumeArgs and rawPublishArgs are the nats bench command lines after
// `nats -s URL`; %d is the message count, %s the payload file.
const (
	rawFillArgs    = "bench js pub async --create --storage file --msgs %d --payload %s --no-progress herald.bench"
	rawConsumeArgs = "bench js consume --msgs %d --acks explicit --no-progress --csv %s"
	rawPublishArgs = "bench js pub async --create --storage file --msgs %d --payload %s --no-progress --csv %s herald.bench"
)

// RawConsumeCommand and RawPublishCommand describe the baseline commands
// for RESULTS.md.
func rawConsumeCommand(n int) string {
	return "nats bench js pub async --create --storage file --msgs " + strconv.Itoa(n) + " --payload visit.json herald.bench  # fsync off, to fill the stream\n" +
		"nats bench js consume --msgs " + strconv.Itoa(n) + " --acks explicit  # fsync on, measured"
}

func rawPublishCommand(n int) string {
	return "nats bench js pub async --create --storage file --msgs " + strconv.Itoa(n) + " --payload form.json herald.bench  # fsync on"
}

// rawConsume fills a stream with n page visits (fsync off), restarts the
// server with fsync on and measures nats bench consuming them with an
// explicit ack each. It returns messages/s.
func (h *harness) rawConsume(ctx context.Context, n int) (float64, error) {
	dir, err := h.w.dir("raw-consume")
	if err != nil {
		return 0, err
	}
	defer h.w.discard(dir)
	payload := filepath.Join(dir, "visit.json")
	if err := os.WriteFile(payload, visitEvent(1), 0o644); err != nil {
		return 0, err
	}
	store := filepath.Join(dir, "nats")
	fill, err := h.startNATS(ctx, dir, store, false)
	if err != nil {
		return 0, err
	}
	_, err = h.natsBench(ctx, dir, fill.natsURL, fmt.Sprintf(rawFillArgs, n, payload))
	fill.stop()
	if err != nil {
		return 0, err
	}
	srv, err := h.startNATS(ctx, dir, store, true)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	out := filepath.Join(dir, "consume.csv")
	if _, err := h.natsBench(ctx, dir, srv.natsURL, fmt.Sprintf(rawConsumeArgs, n, out)); err != nil {
		return 0, err
	}
	return benchRate(out)
}

// rawPublish measures nats bench publishing n form submissions
// asynchronously to a stream on a server with fsync on. It returns
// messages/s.
func (h *harness) rawPublish(ctx context.Context, n int) (float64, error) {
	dir, err := h.w.dir("raw-publish")
	if err != nil {
		return 0, err
	}
	defer h.w.discard(dir)
	payload := filepath.Join(dir, "form.json")
	if err := os.WriteFile(payload, formEvent(1), 0o644); err != nil {
		return 0, err
	}
	srv, err := h.startNATS(ctx, dir, filepath.Join(dir, "nats"), true)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	out := filepath.Join(dir, "publish.csv")
	if _, err := h.natsBench(ctx, dir, srv.natsURL, fmt.Sprintf(rawPublishArgs, n, payload, out)); err != nil {
		return 0, err
	}
	return benchRate(out)
}

// startNATS starts `benchrun nats-server` on store.
func (h *harness) startNATS(ctx context.Context, dir, store string, fsync bool) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	p := &proc{name: "benchrun nats-server", natsURL: "nats://" + addr}
	logPath := filepath.Join(dir, fmt.Sprintf("nats-server-%d.log", time.Now().UnixNano()))
	if err := p.start(logPath, h.o.self, "nats-server", "-store", store, "-port", port, "-fsync="+strconv.FormatBool(fsync)); err != nil {
		return nil, err
	}
	if err := p.waitPort(ctx, addr, time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// natsBench runs nats with args against url and returns its output.
func (h *harness) natsBench(ctx context.Context, dir, url, args string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.o.nats, append([]string{"-s", url}, strings.Fields(args)...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nats %s: %w\n%s", args, err, out)
	}
	return string(out), nil
}

// benchRate reads the messages/s nats bench wrote to its CSV file: the
// first client's row (there is one client).
func benchRate(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(rows) < 2 {
		return 0, fmt.Errorf("read %s: no results", path)
	}
	col := -1
	for i, name := range rows[0] {
		if strings.TrimPrefix(name, "#") == "MsgsPerSec" {
			col = i
		}
	}
	if col < 0 || col >= len(rows[1]) {
		return 0, fmt.Errorf("read %s: no MsgsPerSec column", path)
	}
	v, err := strconv.ParseFloat(rows[1][col], 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}
