package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serveConfig is the configuration herald serve runs with in every
// end-to-end figure: the shipped defaults (fsync on every write, 4
// workers, the .eml outbox in the data directory, the double opt-in
// example's rules), with only the data directory and the listening ports
// of this run.
const serveConfig = `# Written by benchrun: the defaults, with this run's directory and ports.
data_dir: %q
rules:
  - %q
nats:
  listen: %q
http:
  listen: %q
`

// proc is a running herald serve, or another server benchrun started.
type proc struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	natsURL  string
	httpAddr string
	dataDir  string
	started  time.Time
	exited   chan struct{}
	waitErr  error
}

// serveSpec says how to start a herald serve: the command line before
// "--config FILE" and the rules it loads.
type serveSpec struct {
	argv  []string
	rules string
}

// heraldServe runs the built binary, as `herald serve --config FILE`.
func (h *harness) heraldServe() serveSpec {
	return serveSpec{argv: []string{h.o.herald, "serve"}, rules: h.rulesDir()}
}

func (h *harness) rulesDir() string {
	return filepath.Join(h.o.root, "examples", "newsletter-double-opt-in")
}

// startServe writes the configuration of a herald serve whose data
// directory is dir/data into dir/herald.yaml, starts it and waits until it
// is ready (/readyz answers 200).
func startServe(ctx context.Context, spec serveSpec, dir string) (*proc, error) {
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &proc{name: filepath.Base(spec.argv[0]), natsURL: "nats://" + natsAddr, httpAddr: httpAddr, dataDir: filepath.Join(dir, "data")}
	cfgPath := filepath.Join(dir, "herald.yaml")
	cfg := fmt.Sprintf(serveConfig, p.dataDir, spec.rules, natsAddr, httpAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := append(append([]string{}, spec.argv[1:]...), "--config", cfgPath)
	if err := p.start(filepath.Join(dir, "herald.log"), spec.argv[0], args...); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, 5*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// start runs the command with its output going to logPath.
func (p *proc) start(logPath, name string, args ...string) error {
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	p.logPath = logPath
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.exited = make(chan struct{})
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return nil
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log ends:\n%s", p.name, p.waitErr, p.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + p.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; its log ends:\n%s", p.name, limit, p.logTail(20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPort waits until addr accepts connections.
func (p *proc) waitPort(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it listened (%v); its log ends:\n%s", p.name, p.waitErr, p.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %s", p.name, addr, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM, as an operator would, and after a
// minute with SIGKILL.
func (p *proc) stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return "  " + strings.Join(lines[max(len(lines)-n, 0):], "\n  ")
}

// memory reads VmRSS and VmHWM of the process, in MB (10^6 bytes).
func (p *proc) memory() (rss, hwm float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read %s: %q: %w", k, v, err)
		}
		if k == "VmRSS" {
			rss = kb * 1024 / 1e6
		} else {
			hwm = kb * 1024 / 1e6
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, errors.New("no VmRSS or VmHWM in /proc status")
	}
	return rss, hwm, nil
}

// metrics reads the named metrics from the process's /metrics page
// (Prometheus text format); names missing from it are left out.
func (p *proc) metrics(names ...string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// clockTicks is the unit of /proc/PID/stat times (USER_HZ), 100 on Linux.
const clockTicks = 100

// cpu reads the CPU time the process has used, user and system.
func (p *proc) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after it. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("read /proc stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("read /proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// dirSize adds up the sizes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
