package router_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
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
//   - bytes/op: growth of the database's used pages after a checkpoint
//     (after history it is near zero: each approval's commit also prunes
//     seeded rows that expired, freeing about what it adds);
//
//   - audit-bytes/op: what the audit log stores for the messages (and,
//     compressed with them, their details).
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

// seedHistory writes n past approvals' rows, each table with one
// statement (SQLite): per approval an idempotency entry (done), two replay
// records (request and response; half of them expired), and the four
// audit records of a facade and a SOAP approval (their transaction IDs
// derived from their scope's prefix and idempotency key), their messages
// stored as they are.
func seedHistory(tb testing.TB, st *sqlstore.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	t0 := time.Now().Add(-48 * time.Hour).UnixMicro()
	live := time.Now().Add(time.Hour).UnixMicro()
	msg := []byte(strings.Repeat("<x>past message</x>", 20))
	const series = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1) `
	// One connection with a page cache that holds the new indexes, and
	// keys that sort in the order they are written.
	conn, err := st.DB().Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA cache_size = -262144`); err != nil {
		tb.Fatal(err)
	}
	defer conn.ExecContext(ctx, `PRAGMA cache_size = -2000`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	err = func() error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_idempotency (scope, idem_key, fingerprint, state, lease_owner,
			lease_expires, request_id, attempts, created_at, updated_at) `+series+`
			SELECT $2, printf('past-%06d', i), X'6670', 'done', '', $3 + i * 1000000, printf('_reqpast-%06d', i), 1, $3 + i * 1000000, $3 + i * 1000000 FROM n`,
			n, merchantID, t0); err != nil {
			return err
		}
		// Replay records are keyed by a digest (any 32 bytes here: SQLite
		// has no SHA-256 in SQL).
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_replay (digest, expires) `+series+`
			SELECT randomblob(32), CASE (i / 2) % 2 WHEN 0 THEN $3 ELSE $2 + (i / 2) * 1000000 + 360000000 END FROM n`,
			2*n, t0, live); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_audit_scopes (kind, actor, entity_id, tx_prefix)
			VALUES ('facade.request', $1, $2, $1), ('message.in', $1, $2, $1), ('message.out', $1, $2, $1)
			ON CONFLICT DO NOTHING`, merchantID, issuerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO hub_audit (time, scope_id, tx_id, request_id,
			idempotency_key, detail, message, codec) `+series+`
			SELECT $2 + (i / 4) * 1000000, (SELECT id FROM hub_audit_scopes WHERE actor = $3 AND entity_id = $4 AND tx_prefix = $3
				AND kind = CASE i % 4 WHEN 0 THEN 'facade.request' WHEN 2 THEN 'message.in' ELSE 'message.out' END),
				'', printf('_reqpast-%06d', i / 4), printf('past-%06d', i / 4), '{}', $5, 0 FROM n`,
			4*n, t0, merchantID, issuerID, msg)
		return err
	}()
	if err != nil {
		_ = tx.Rollback()
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
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

// TestApprovalCostAfterHistory: 100,000 past approvals in the store change
// nothing of what an approval costs (KECIS §12.3) — the same write
// transactions and statements as on a fresh store — and no statement an
// approval runs reads the whole of a table that grows with them (SQLite's
// query plans: every one searches by an index).
func TestApprovalCostAfterHistory(t *testing.T) {
	t.Parallel() // seeding waits on the disk, or on PostgreSQL
	ctx := context.Background()
	paths := []string{"soap", "facade"}
	c := newCostFixture(t, filepath.Join(t.TempDir(), "hub.db"))
	fresh := map[string]probe.Counts{}
	for _, path := range paths {
		c.approve(t, path, "warm-up-"+path)
		before := c.probe.Counts()
		c.approve(t, path, "fresh-"+path)
		fresh[path] = c.probe.Counts().Sub(before)
	}
	start := time.Now()
	seedHistory(t, c.st, 100_000)
	t.Logf("100,000 past approvals seeded in %v", time.Since(start).Round(time.Millisecond))
	for _, path := range paths {
		stop := c.probe.Record()
		before := c.probe.Counts()
		c.approve(t, path, "after-history-"+path)
		after := c.probe.Counts().Sub(before)
		stmts := stop()
		if after != fresh[path] {
			t.Errorf("%s: an approval costs %+v after 100,000 past approvals, %+v on a fresh store", path, after, fresh[path])
		}
		if len(stmts) < int(after.Writes) {
			t.Fatalf("%s: %d statements recorded, fewer than the %d an approval writes", path, len(stmts), after.Writes)
		}
		scans, err := sqlprobe.Scans(ctx, c.st.DB().DB, stmts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range scans {
			if f := strings.Fields(s.Detail); len(f) > 1 && strings.HasPrefix(f[1], "hub_") {
				t.Errorf("%s: %s\nreads a whole table: %s", path, s.Query, s.Detail)
			}
		}
	}
}
