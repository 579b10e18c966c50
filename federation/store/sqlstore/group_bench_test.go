package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
)

// BenchmarkRelayCommits: the two commits of one relay as the router makes
// them (KECIS §12.3) — the request's replay record, the idempotency claim
// and its audit record, then the answer's replay record, the release and
// its audit record — with one client and with 16 at once. On SQLite the
// commits of concurrent relays share transactions (sqlstore.Group), so
// txns/op (one WAL fsync each under synchronous=FULL) falls below 2 as the
// clients wait for the database's one writer.
//
//	go test ./federation/store/sqlstore -run '^$' -bench RelayCommits -benchtime 2000x
func BenchmarkRelayCommits(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			st, p := probe.Open(b, filepath.Join(b.TempDir(), "hub.db"))
			ctx := context.Background()
			msg := []byte(strings.Repeat(`<kecis:ServiceRequest xmlns:kecis="urn:kecis:protocol:1.0">approve</kecis:ServiceRequest>`, 20))
			var seq atomic.Int64
			relay := func() error {
				n := seq.Add(1)
				now := time.Now()
				key, req := fmt.Sprintf("key-%d", n), fmt.Sprintf("_req-%d", n)
				const scope, merchant, owner = "https://shop.test", "https://shop.test", "hub-1"
				if _, err := st.Commit(ctx, &store.Writes{Now: now,
					Remember: []store.ReplayEntry{{Issuer: merchant, ID: req, Expires: now.Add(5 * time.Minute)}},
					Claim:    &store.IdemClaim{Scope: scope, Key: key, Fingerprint: []byte("fp"), Owner: owner, RequestID: req, LeaseUntil: now.Add(time.Minute)},
					Audit: []*store.AuditRecord{{Time: now, Kind: "message.in", Actor: merchant, EntityID: merchant,
						TxID: merchant + "|" + key, RequestID: req, IdempotencyKey: key, Detail: "{}", Message: msg}},
				}); err != nil {
					return err
				}
				_, err := st.Commit(ctx, &store.Writes{Now: now,
					Remember: []store.ReplayEntry{{Issuer: "https://issuer.test", ID: "_res-" + req, Expires: now.Add(5 * time.Minute)}},
					Release:  &store.IdemRelease{Scope: scope, Key: key, Owner: owner, State: store.IdemDone},
					Audit: []*store.AuditRecord{{Time: now, Kind: "message.out", Actor: "https://issuer.test", EntityID: merchant,
						TxID: merchant + "|" + key, RequestID: req, IdempotencyKey: key, Detail: "{}", Message: msg}},
				})
				return err
			}
			if err := relay(); err != nil { // the audit's dictionaries and scopes
				b.Fatal(err)
			}
			before := p.Counts()
			b.ReportAllocs()
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			if clients == 1 {
				for b.Loop() {
					if err := relay(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := relay(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			c := p.Counts().Sub(before)
			b.ReportMetric(float64(c.Commits)/float64(b.N), "txns/op")
			b.ReportMetric(float64(c.Writes)/float64(b.N), "writes/op")
		})
	}
}
