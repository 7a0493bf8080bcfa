package privacy

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Retries of a request to JetStream that may fail for a moment on a
// cluster (no responder while a leader is elected, a timeout): at most
// retryAttempts, waiting from retryMin, doubling, each attempt given at
// most retryTimeout. Only requests that are safe to repeat (reads,
// purges, deletes) are retried.
const (
	retryAttempts = 6
	retryMin      = 50 * time.Millisecond
	retryTimeout  = 10 * time.Second
)

func retry(ctx context.Context, f func(context.Context) error) error {
	wait := retryMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, retryTimeout)
		err := f(actx)
		cancel()
		if err == nil || !transient(err) || attempt == retryAttempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// transient reports whether a failed request may succeed if sent again.
func transient(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	case errors.As(err, &api):
		return api.Code == 503
	}
	return false
}
