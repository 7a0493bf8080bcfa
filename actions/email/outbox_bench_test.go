package email_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/herald-events/herald/actions/email"
)

// BenchmarkOutboxSend measures durable outbox writes with 1, 8 and 32
// senders at once, each message under an ID of its own. emails/s is the
// throughput of all senders together; ns/op is its inverse. The senders
// are goroutines of their own rather than b.RunParallel's, whose number is
// a multiple of GOMAXPROCS. Set TMPDIR to benchmark another file system.
func BenchmarkOutboxSend(b *testing.B) {
	for _, senders := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			o, err := email.NewOutbox(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range senders {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						m := doiRequest()
						m.ID = fmt.Sprintf("01JD8XQK3W5N7R9T2V4Y6A8C0E-%d@herald", i)
						if _, err := o.Send(ctx, m); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
		})
	}
}
