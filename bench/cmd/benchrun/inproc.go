package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goTool is the go command: $GO, or go.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func (h *harness) peersDir() string { return filepath.Join(h.o.root, "bench", "peers") }

// peersGo returns a go command run in the peers module. -mod=mod lets go
// bring the module's requirements in step with Herald's go.mod (which the
// replace directive points at) when they change: the change then shows in
// bench/peers/go.mod and go.sum, to be committed.
func (h *harness) peersGo(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = h.peersDir()
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod"), env...)
	return cmd
}

// checkPeers checks that the peers module builds and agrees with itself
// (each pipeline fires the same rules) before anything is measured.
func (h *harness) checkPeers(ctx context.Context) error {
	cmd := h.peersGo(ctx, nil, "test", "-count=1", "-run", "^TestPipelinesAgree$", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench/peers: %w\n%s", err, out)
	}
	return nil
}

// inProcessCommand is the go test command line of figure 1.
func (h *harness) inProcessCommand() []string {
	return []string{"test", "-run", "^$", "-bench", "^BenchmarkPipeline$", "-cpu", "1",
		"-benchtime", h.sc.BenchTime, "-count", strconv.Itoa(h.sc.BenchCount), "-timeout", "30m", "."}
}

// inProcess is figure 1: decoding and evaluating one event in Herald and
// its two peers, with each rule set size, on one core.
func (h *harness) inProcess(ctx context.Context, res *Results) error {
	args := h.inProcessCommand()
	res.InProcCommand = "cd bench/peers && PEERS_RULES=" + h.sc.PeerRules + " go " + shellJoin(args)
	out, err := h.peersGo(ctx, []string{"PEERS_RULES=" + h.sc.PeerRules}, args...).CombinedOutput()
	if err := os.WriteFile(filepath.Join(h.o.work, "inproc.txt"), out, 0o644); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", res.InProcCommand, err, out)
	}
	rows, err := parseBench(string(out))
	if err != nil {
		return err
	}
	res.InProc = rows
	return nil
}

// benchLine matches a line of BenchmarkPipeline's output.
var benchLine = regexp.MustCompile(`^BenchmarkPipeline/rules=(\d+)/(\w+)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// parseBench turns go test's benchmark output into rows, one per rule set
// size, each with a sample per -count.
func parseBench(out string) ([]InProcRow, error) {
	var rows []InProcRow
	index := map[int]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		ns, err := strconv.ParseFloat(m[3], 64)
		if err != nil || ns <= 0 {
			return nil, fmt.Errorf("benchmark output: %q", sc.Text())
		}
		i, ok := index[n]
		if !ok {
			i = len(rows)
			index[n] = i
			rows = append(rows, InProcRow{Rules: n})
		}
		rate := 1e9 / ns
		switch m[2] {
		case "herald":
			rows[i].Herald = append(rows[i].Herald, rate)
		case "naive":
			rows[i].Naive = append(rows[i].Naive, rate)
		case "grule":
			rows[i].Grule = append(rows[i].Grule, rate)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no BenchmarkPipeline results in:\n%s", out)
	}
	return rows, nil
}

// profile gathers what "What limits it" shows: CPU and block profiles of
// herald serve's app (the same code, run by benchrun serve) during a form
// run like figure 2b, and a CPU profile of Herald's in-process pipeline
// with the largest rule set.
func (h *harness) profile(ctx context.Context, res *Results) error {
	profDir := filepath.Join(h.o.work, "profiles")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return err
	}
	err := h.profileForms(ctx, res, profDir)
	if !h.noPeers {
		err = errors.Join(err, h.profileInProcess(ctx, res, profDir))
	}
	return err
}

func (h *harness) profileForms(ctx context.Context, res *Results, profDir string) error {
	cpu := filepath.Join(profDir, "forms.cpu")
	block := filepath.Join(profDir, "forms.block")
	spec := serveSpec{argv: []string{h.o.self, "serve", "-cpuprofile", cpu, "-blockprofile", block}, rules: h.rulesDir()}
	start := time.Now()
	r, err := h.consume(ctx, "profile-forms", spec, h.sc.Forms, formEvent, h.sc.Forms)
	if err != nil {
		return fmt.Errorf("profile a form run: %w", err)
	}
	res.FormProfile.Command = fmt.Sprintf("benchrun serve -cpuprofile %s -blockprofile %s --config herald.yaml  # %s double opt-in forms, %s events/s, %s",
		rel(h.o.root, cpu), rel(h.o.root, block), num(float64(h.sc.Forms)), num(r.rate), roundDur(time.Since(start)))
	if res.FormProfile.Top, err = pprofTop(ctx, cpu, []pprofView{byCum, byFlat}); err != nil {
		return err
	}
	res.BlockProfile.Command = fmt.Sprintf("go tool pprof -top -cum -focus=%s %s  # the same run; Herald's own goroutines only", heraldFocus, rel(h.o.root, block))
	if res.BlockProfile.Top, err = pprofTop(ctx, block, []pprofView{byCum}, "-focus="+heraldFocus); err != nil {
		return err
	}
	return nil
}

func (h *harness) profileInProcess(ctx context.Context, res *Results, profDir string) error {
	sizes := strings.Split(h.sc.PeerRules, ",")
	rules := sizes[len(sizes)-1]
	cpu := filepath.Join(profDir, "inproc.cpu")
	args := []string{"test", "-count=1", "-run", "^TestProfile$", "."}
	env := []string{"PEERS_RULES=" + rules, "PEERS_PIPELINES=herald", "PEERS_CPUPROFILE=" + cpu}
	if out, err := h.peersGo(ctx, env, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("profile the pipeline: %w\n%s", err, out)
	}
	res.InProcProfile.Command = "cd bench/peers && " + strings.Join(env[:2], " ") + " PEERS_CPUPROFILE=inproc.cpu go " + shellJoin(args)
	top, err := pprofTop(ctx, cpu, []pprofView{byCum, byFlat})
	if err != nil {
		return err
	}
	res.InProcProfile.Top = top
	return nil
}

// pprofView is one listing of a profile.
type pprofView struct {
	title string
	args  []string
}

var (
	byCum  = pprofView{"by time in and below each function (-cum)", []string{"-cum", "-nodecount=20"}}
	byFlat = pprofView{"by time in each function itself", []string{"-nodecount=12"}}
)

// pprofTop returns the top of a profile in each view, with pprof's extra
// args (a -focus, say).
func pprofTop(ctx context.Context, path string, views []pprofView, extra ...string) (string, error) {
	var parts []string
	for _, view := range views {
		args := append(append([]string{"tool", "pprof", "-top"}, view.args...), extra...)
		out, err := exec.CommandContext(ctx, goTool(), append(args, path)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go tool pprof %s: %w\n%s", path, err, out)
		}
		var keep []string
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			switch {
			case strings.HasPrefix(line, "File:"), strings.HasPrefix(line, "Build ID:"), strings.HasPrefix(line, "Time:"),
				strings.HasPrefix(line, "Type:"), strings.HasPrefix(line, "Main binary"):
				continue
			}
			keep = append(keep, line)
		}
		parts = append(parts, "# "+view.title+"\n"+strings.Join(keep, "\n"))
	}
	return strings.Join(parts, "\n\n"), nil
}

// heraldFocus selects the stacks of Herald's own goroutines in a profile,
// leaving out the embedded NATS server's.
const heraldFocus = "github.com/herald-events/herald/"

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$ *") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}
