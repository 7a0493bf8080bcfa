package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/herald-events/herald/event"
	"github.com/herald-events/herald/ingest"
)

// panicLine is set by the panicking functions below to the line before
// the one that panics.
var panicLine int

func panicWithString() {
	_, _, panicLine, _ = runtime.Caller(0)
	panic("boom")
}

func panicWithError() {
	_, _, panicLine, _ = runtime.Caller(0)
	panic(fmt.Errorf("open template: %w", fs.ErrNotExist))
}

func writeNilMap(m map[string]int) {
	_, _, panicLine, _ = runtime.Caller(0)
	m["x"] = 1
}

func indexOutOfRange(s []int) int {
	_, _, panicLine, _ = runtime.Caller(0)
	return s[len(s)]
}

func TestRecoverNamesWherePanicked(t *testing.T) {
	const pkg = "github.com/herald-events/herald/ingest_test."
	tests := []struct {
		name      string
		panics    func()
		wantValue string
		wantFunc  string
	}{
		{"string", panicWithString, "boom", pkg + "panicWithString"},
		{"error", panicWithError, "open template: file does not exist", pkg + "panicWithError"},
		{"nil map in the runtime", func() { writeNilMap(nil) }, "assignment to entry in nil map", pkg + "writeNilMap"},
		{"index out of range", func() { indexOutOfRange([]int{1}) }, "runtime error: index out of range [1] with length 1", pkg + "indexOutOfRange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ingest.Chain(func(context.Context, *event.Event) error {
				tt.panics()
				return nil
			}, ingest.Recover(nil))
			err := h(t.Context(), &event.Event{ID: "e1", UUID: "ann", Action: "page.visit"})
			pe, ok := errors.AsType[*ingest.PanicError](err)
			if !ok {
				t.Fatalf("handler error %v, want a *PanicError", err)
			}
			if !ingest.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
			if pe.Func != tt.wantFunc || filepath.Base(pe.File) != "middleware_test.go" || pe.Line != panicLine+1 {
				t.Errorf("panic located at %s (%s:%d), want %s (middleware_test.go:%d)", pe.Func, pe.File, pe.Line, tt.wantFunc, panicLine+1)
			}
			want := fmt.Sprintf("panic: %s at %s (%s:%d)", tt.wantValue, tt.wantFunc, pe.File, panicLine+1)
			if err.Error() != want {
				t.Errorf("reason %q, want %q", err, want)
			}
		})
	}
	t.Run("an error panicked with is wrapped", func(t *testing.T) {
		err := ingest.Chain(func(context.Context, *event.Event) error { panicWithError(); return nil }, ingest.Recover(nil))(t.Context(), &event.Event{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", err)
		}
	})
	t.Run("no panic", func(t *testing.T) {
		errBusy := errors.New("busy")
		for _, want := range []error{nil, errBusy} {
			err := ingest.Chain(func(context.Context, *event.Event) error { return want }, ingest.Recover(nil))(t.Context(), &event.Event{})
			if err != want {
				t.Errorf("handler error %v, want %v", err, want)
			}
		}
	})
}

func TestRecoverLogsTheStack(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := ingest.Chain(func(context.Context, *event.Event) error { panicWithString(); return nil }, ingest.Recover(logger))
	_ = h(t.Context(), &event.Event{ID: "e1", UUID: "ann", Action: "page.visit"})
	var rec struct {
		Level, Msg, Event, Stack string
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if rec.Level != "ERROR" || rec.Event != "e1" || !strings.Contains(rec.Stack, "panicWithString") {
		t.Errorf("logged %s, want an error for event e1 with the stack", buf.String())
	}
}

func TestChainRunsStagesFirstOutermost(t *testing.T) {
	var trace []string
	stage := func(name string) ingest.Middleware {
		return func(next ingest.HandlerFunc) ingest.HandlerFunc {
			return func(ctx context.Context, ev *event.Event) error {
				trace = append(trace, name+" in")
				err := next(ctx, ev)
				trace = append(trace, name+" out")
				return err
			}
		}
	}
	h := ingest.Chain(func(context.Context, *event.Event) error {
		trace = append(trace, "handler")
		return nil
	}, stage("a"), nil, stage("b"))
	if err := h(t.Context(), &event.Event{}); err != nil {
		t.Fatalf("handle: %v", err)
	}
	if want := []string{"a in", "b in", "handler", "b out", "a out"}; !slices.Equal(trace, want) {
		t.Errorf("ran %v, want %v", trace, want)
	}
}

func TestLog(t *testing.T) {
	ev := &event.Event{ID: "e1", UUID: "ann", Action: "form.submit"}
	tests := []struct {
		name      string
		err       error
		wantLevel string
		wantErr   string
		wantPerm  bool
	}{
		{"success at debug", nil, "DEBUG", "", false},
		{"failure at warn", errors.New("smtp server unavailable"), "WARN", "smtp server unavailable", false},
		{"permanent failure at warn", ingest.Permanent(errors.New("address rejected")), "WARN", "address rejected", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := ingest.Chain(func(context.Context, *event.Event) error { return tt.err }, ingest.Log(logger))
			if err := h(t.Context(), ev); err != tt.err {
				t.Errorf("handler error %v, want %v passed on", err, tt.err)
			}
			var rec struct {
				Level, Event, UUID, Action, Err string
				Permanent                       bool
			}
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log %q: %v", buf.String(), err)
			}
			if rec.Level != tt.wantLevel || rec.Event != "e1" || rec.UUID != "ann" || rec.Action != "form.submit" || rec.Err != tt.wantErr || rec.Permanent != tt.wantPerm {
				t.Errorf("logged %s, want level %s, event e1, uuid ann, action form.submit, err %q, permanent %v", buf.String(), tt.wantLevel, tt.wantErr, tt.wantPerm)
			}
		})
	}
}

// unavailable is an error of another package that says whether it is
// permanent.
type unavailable struct{ permanent bool }

func (e unavailable) Error() string   { return "unavailable" }
func (e unavailable) Permanent() bool { return e.permanent }

func TestPermanent(t *testing.T) {
	base := errors.New("address rejected")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", ingest.Permanent(base), true},
		{"marked then wrapped", fmt.Errorf("send email: %w", ingest.Permanent(base)), true},
		{"another package's, permanent", fmt.Errorf("send: %w", unavailable{permanent: true}), true},
		{"another package's, not permanent", unavailable{permanent: false}, false},
		{"joined", errors.Join(base, ingest.Permanent(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ingest.IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	t.Run("keeps the error", func(t *testing.T) {
		err := ingest.Permanent(base)
		if err.Error() != base.Error() || !errors.Is(err, base) {
			t.Errorf("Permanent(%v) = %v, want the same message, wrapping it", base, err)
		}
		if ingest.Permanent(nil) != nil {
			t.Error("Permanent(nil) is not nil")
		}
	})
}
