package router_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
	"github.com/kecis/kecis/saml"
)

// What one card approval costs the hub's store (KECIS §12.3), through the
// two paths of the router: the SOAP endpoint (a participant's signed
// request, ServeHTTP) and Relay as the JSON facade calls it (with its
// audit record of the merchant's authentication, router.WithAudit). The store is
// SQLite through a probe (federation/store/sqlstore/probe), the provider a
// fake that answers Success. Reported per approval:
//
//   - txns/op: write transactions committed;
//
//   - fsyncs/op: the commits that sync under the database's PRAGMA
//     synchronous — in WAL mode FULL (the default, connectors/sqlstore)
//     syncs the WAL at every commit, NORMAL and OFF at none; SQLite's
//     automatic checkpoints (two syncs per 1000 WAL pages) are not in it;
//
//   - writes/op: statements that write;
//
//   - bytes/op: growth of the database's used pages after a checkpoint;
//
//   - audit-bytes/op: what the audit log stores for the messages.
//
//     go test ./federation/router -run '^$' -bench ApprovalCost -benchtime 300x
func BenchmarkApprovalCost(b *testing.B) {
	for _, path := range []string{"soap", "facade"} {
		b.Run(path, func(b *testing.B) {
			c := newCostFixture(b, filepath.Join(b.TempDir(), "hub.db"))
			c.approve(b, path, "warm-up") // the metadata snapshots, once per participant
			c.measure(b, path, b.N)
		})
	}
}

// BenchmarkApprovalCostAfterHistory is BenchmarkApprovalCost on a store
// that already holds 100,000 past approvals' rows (idempotency entries,
// audit records, replay records — live and expired): the figures must be
// those of a fresh store, since no query the hub runs per approval may
// cost more as history grows.
func BenchmarkApprovalCostAfterHistory(b *testing.B) {
	for _, path := range []string{"soap", "facade"} {
		b.Run(path, func(b *testing.B) {
			c := newCostFixture(b, filepath.Join(b.TempDir(), "hub.db"))
			c.approve(b, path, "warm-up")
			seedHistory(b, c.st, 100_000)
			c.measure(b, path, b.N)
		})
	}
}

type costFixture struct {
	*fixture
	st    *sqlstore.Store
	probe *probe.Probe
	p     *provider
	dest  string
	n     int
}

func newCostFixture(tb testing.TB, path string) *costFixture {
	return newCostFixtureClock(tb, path, nil)
}

// newCostFixtureClock is newCostFixture with the router's clock now.
func newCostFixtureClock(tb testing.TB, path string, now func() time.Time) *costFixture {
	tb.Helper()
	st, pr := probe.Open(tb, path)
	f := newFixtureClock(tb, st, 5*time.Second, now)
	p := newProvider(tb, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(tb, issuerID, p.url)
	return &costFixture{fixture: f, st: st, probe: pr, p: p, dest: p.url}
}

// approve runs one approval through path and fails unless the provider's
// Success is passed on.
func (c *costFixture) approve(tb testing.TB, path, key string) {
	tb.Helper()
	req, msg := c.request(tb, key, "15000", c.dest)
	switch path {
	case "soap":
		w := c.serve(msg, c.merchantTLS)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "APV-") {
			tb.Fatalf("approval %s: %d %s", key, w.Code, w.Body.String())
		}
	case "facade":
		ctx := context.Background()
		dest, err := c.dir.ByID(ctx, issuerID)
		if err != nil {
			tb.Fatal(err)
		}
		res := c.rt.Relay(ctx, req, dest, saml.WrapSOAP(msg), router.WithAudit(facadeAudit(req, msg)))
		if res.Outcome != router.OutcomeAnswered || !res.Status.OK() {
			tb.Fatalf("approval %s: %+v", key, res.Status)
		}
	}
}

func (c *costFixture) measure(b *testing.B, path string, n int) {
	ctx := context.Background()
	db := c.st.DB()
	var sync int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		b.Fatal(err)
	}
	bytes0, err := probe.FileBytes(ctx, db.DB)
	if err != nil {
		b.Fatal(err)
	}
	audit0 := auditBytes(b, c.st)
	c0 := c.probe.Counts()
	b.ResetTimer()
	for i := range n {
		c.approve(b, path, fmt.Sprintf("k-%s-%d-%d", path, c.n, i))
	}
	b.StopTimer()
	c.n++
	c1 := c.probe.Counts()
	bytes1, err := probe.FileBytes(ctx, db.DB)
	if err != nil {
		b.Fatal(err)
	}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	txns := per(c1.Commits - c0.Commits)
	fsyncs := 0.0
	if sync >= 2 { // FULL (2) or EXTRA (3): every commit syncs the WAL
		fsyncs = txns
	}
	b.ReportMetric(txns, "txns/op")
	b.ReportMetric(fsyncs, "fsyncs/op")
	b.ReportMetric(per(c1.Writes-c0.Writes), "writes/op")
	b.ReportMetric(per(bytes1-bytes0), "bytes/op")
	b.ReportMetric(per(auditBytes(b, c.st)-audit0), "audit-bytes/op")
}

// auditBytes is what the audit log's rows hold for messages.
func auditBytes(tb testing.TB, st *sqlstore.Store) int64 {
	tb.Helper()
	var n int64
	if err := st.DB().QueryRowContext(context.Background(),
		`SELECT COALESCE(SUM(LENGTH(message)), 0) FROM hub_audit`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// seedHistory writes n past approvals' rows, in batches: per approval an
// idempotency entry (done), two replay records (request and response; half
// of them expired), and the four audit records of a facade and a SOAP
// approval.
func seedHistory(tb testing.TB, st *sqlstore.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	t0 := time.Now().Add(-48 * time.Hour)
	msg := []byte(strings.Repeat("<x>past message</x>", 20))
	const batch = 2000
	for start := 0; start < n; start += batch {
		err := st.DB().WriteTx(ctx, func(tx *sql.Tx) error {
			for i := start; i < min(n, start+batch); i++ {
				at := t0.Add(time.Duration(i) * time.Second)
				exp := at.Add(6 * time.Minute)
				if i%2 == 0 {
					exp = time.Now().Add(time.Hour)
				}
				key := fmt.Sprintf("past-%d", i)
				if _, err := tx.ExecContext(ctx, `INSERT INTO hub_idempotency (scope, idem_key, fingerprint, state, lease_owner,
					lease_expires, request_id, attempts, created_at, updated_at) VALUES ($1, $2, $3, 'done', '', $4, $5, 1, $4, $4)`,
					merchantID, key, []byte("fp"), at.UnixMicro(), "_req"+key); err != nil {
					return err
				}
				for _, id := range []string{"_req" + key, "_resp" + key} {
					if _, err := tx.ExecContext(ctx, `INSERT INTO hub_replay (issuer, message_id, expires) VALUES ($1, $2, $3)`,
						merchantID, id, exp.UnixMicro()); err != nil {
						return err
					}
				}
				for _, kind := range []string{"facade.request", "message.out", "message.in", "message.out"} {
					if _, err := tx.ExecContext(ctx, `INSERT INTO hub_audit (time, kind, actor, entity_id, tx_id, request_id,
						idempotency_key, detail, message) VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', $8)`,
						at.UnixMicro(), kind, merchantID, issuerID, merchantID+"|"+key, "_req"+key, key, msg); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// facadeAudit is the facade's record of how the hub authenticated the
// merchant, with the request it signed, which it hands to Relay's first
// commit (router.WithAudit).
func facadeAudit(req *saml.ServiceRequest, msg []byte) *store.AuditRecord {
	return &store.AuditRecord{Time: time.Now(), Kind: "facade.request", Actor: req.Issuer, EntityID: req.Issuer,
		TxID: req.Issuer + "|" + req.IdempotencyKey, RequestID: req.ID, IdempotencyKey: req.IdempotencyKey,
		Detail: `{"auth_method":"api-key"}`, Message: msg}
}
