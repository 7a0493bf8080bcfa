package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/herald-events/herald/event"
)

// Middleware wraps a handler in a stage: recovering panics, logging,
// timing. A stage calls next to go on, and may look at or change what
// next returns.
type Middleware func(next HandlerFunc) HandlerFunc

// Chain wraps h in the stages m, the first listed outermost: Chain(h, a,
// b) handles an event as a(b(h)) does. Nil stages are skipped.
func Chain(h HandlerFunc, m ...Middleware) HandlerFunc {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i] != nil {
			h = m[i](h)
		}
	}
	return h
}

// PanicError is the error Recover makes of a panic in a handler. It is
// permanent: the same event would most likely panic again.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Func, File and Line locate the code that panicked: the innermost
	// frame outside the Go runtime. Func is "" when it is not known.
	Func string
	File string
	Line int
}

// Error reads "panic: <value> at <function> (<file>:<line>)".
func (e *PanicError) Error() string {
	if e.Func == "" {
		return fmt.Sprintf("panic: %v at an unknown place", e.Value)
	}
	return fmt.Sprintf("panic: %v at %s (%s:%d)", e.Value, e.Func, e.File, e.Line)
}

// Permanent reports true: see IsPermanent.
func (e *PanicError) Permanent() bool { return true }

// Unwrap returns Value when it is an error (runtime errors included), so
// errors.Is and errors.As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recover turns a panic in the handler into a *PanicError, a permanent
// error, so one bad event never brings the engine down. It logs the panic
// with its stack at Error. Place it inside Log and Instrument (after them
// in Chain) for them to see the panic as an error.
func Recover(logger *slog.Logger) Middleware {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, ev *event.Event) (err error) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				pe := &PanicError{Value: v}
				if f, ok := panicFrame(); ok {
					pe.Func, pe.File, pe.Line = f.Function, f.File, f.Line
				}
				logger.Error("handler panicked", "event", ev.ID, "uuid", ev.UUID, "action", ev.Action, "err", pe, "stack", string(debug.Stack()))
				err = pe
			}()
			return next(ctx, ev)
		}
	}
}

// panicFrame finds, from a deferred call during a panic, the frame that
// panicked: the first one below runtime.gopanic that is not the runtime's
// own (a nil map write panics in runtime.mapassign, say, on behalf of the
// code that called it).
func panicFrame() (runtime.Frame, bool) {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			return f, true
		}
		if !more {
			return runtime.Frame{}, false
		}
	}
}

// Log logs the outcome of each event: a failure at Warn, success at Debug,
// each with the event's id, customer (uuid) and action, and a failure with
// the error and whether it is permanent.
func Log(logger *slog.Logger) Middleware {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, ev *event.Event) error {
			err := next(ctx, ev)
			if err != nil {
				logger.WarnContext(ctx, "handle event", "event", ev.ID, "uuid", ev.UUID, "action", ev.Action, "permanent", IsPermanent(err), "err", err)
				return err
			}
			logger.DebugContext(ctx, "handled event", "event", ev.ID, "uuid", ev.UUID, "action", ev.Action)
			return nil
		}
	}
}
