package issuer_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/issuer"
)

// BenchmarkApprove measures one approval end to end on SQLite: the
// idempotency claim, the card look-up, the conditional limit update, the
// ledger and outbox rows, the commit (synchronous=FULL) and the SMS.
func BenchmarkApprove(b *testing.B) {
	for _, keyIn := range []bool{false, true} {
		name := "plain"
		if keyIn {
			name = "keyin"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, sqltest.TestSQLiteDSN, func(c *issuer.Config) {
				c.Logger = slog.New(slog.DiscardHandler)
				c.Notifier = issuer.NotifierFunc(func(context.Context, string, string) error { return nil })
			})
			c := e.issue(issuer.Credit, 1<<50)
			b.ReportAllocs()
			for b.Loop() {
				r := e.approveReq(c, 1000)
				if keyIn {
					r.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: testPrefix, BirthDate: testBirth}
				}
				if _, err := e.iss.Approve(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
