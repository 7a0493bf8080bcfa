package runner

import (
	"context"
	"fmt"
)

// Marks records, where every engine sees it, which effects were performed:
// natsbus.EffectMarks keeps them in the key-value bucket HERALD_EFFECTS.
//
// An engine remembers the effects it performed until it has cleared them
// from their records (see performedSet); if it dies before, the records
// still list them, and whoever handles the customer next would perform
// them again. With Marks, each effect is marked once performed, and an
// effect the applier did not list itself in the write just made (listed by
// an earlier write, by this engine before a restart or by another engine)
// is looked up first: one marked is not performed again, only cleared.
//
// The cost is one write per effect performed, made before the event is
// acknowledged, and one read per effect found listed by an earlier write;
// an event that lists and performs its own effects reads nothing.
type Marks interface {
	// Mark records that the effect with key was performed (or kept as a
	// dead letter).
	Mark(ctx context.Context, key string) error
	// Marked reports whether the effect with key was marked.
	Marked(ctx context.Context, key string) (bool, error)
}

// markedBefore reports whether the effect with key, listed by an earlier
// write, was marked performed. Not knowing is a *RetryError: performing it
// could send it twice, and the event is retried later instead.
func (r *Runner) markedBefore(ctx context.Context, key string) (bool, error) {
	if r.cfg.Marks == nil {
		return false, nil
	}
	done, err := r.cfg.Marks.Marked(ctx, key)
	if err != nil {
		return false, &RetryError{Err: fmt.Errorf("effect %s: %w", key, err)}
	}
	if done {
		r.cfg.Metrics.markedElsewhere()
		r.cfg.Logger.Info("effect marked performed before; not performed again", "key", key)
	}
	return done, nil
}

// mark records that the effect with key was performed. A mark that could
// not be written is logged and counted, and the event goes on: the effect
// is done, and this engine still clears it from the record; only if it
// dies before, the effect may be performed again, under its key.
func (r *Runner) mark(ctx context.Context, key string) {
	if r.cfg.Marks == nil {
		return
	}
	if err := r.cfg.Marks.Mark(ctx, key); err != nil {
		r.cfg.Metrics.markFailed()
		r.cfg.Logger.Warn("mark effect performed failed", "key", key, "err", err)
	}
}
