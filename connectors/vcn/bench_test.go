package vcn

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
)

// BenchmarkIssue: virtual numbers issued per second with durable
// uniqueness (each a committed transaction: the day's counter and the
// number's row), on SQLite and on PostgreSQL, from 4 goroutines.
func BenchmarkIssue(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be.dsn(b), nil)
			var cards atomic.Int64
			b.SetParallelism(2) // 2 × GOMAXPROCS goroutines
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ref := fmt.Sprint("card-", cards.Add(1))
					if _, err := e.svc.Issue(ctx, ref, realCard, ecml.VirtualCardCredit, Controls{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "numbers/s")
		})
	}
}
