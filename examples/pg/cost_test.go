package pg_test

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/testutil"
)

// costMID is the merchant of the cost tests, stored by SQL before the PG
// opens the database (as in a database an older PG wrote).
const costMID = "MCOST0001"

// probed is a PG on a SQLite file watched by sqlprobe.
type probed struct {
	*env
	db    *sqlstore.DB
	probe *sqlprobe.Probe
	path  string
	cfg   pg.Config
}

// newProbed opens a PG on a probed SQLite file at schema version 1 (the
// PG before the running daily total), with costMID and history past
// transactions of it already stored — half of them on today's business
// day, the rest over the 49 days before, one in ten cancelled and one in
// ten declined, each with its approve operation and idempotency record —
// and lets pg.OpenDB migrate it, which fills the running totals once.
func newProbed(t testing.TB, history int) *probed {
	t.Helper()
	e := &env{t: t, gw: newFakeGateway(t), clock: testutil.NewClock(testutil.FixedNow), logs: &syncBuffer{}}
	srv := httptest.NewServer(e.gw)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "pg.db")
	db, probe, err := sqlprobe.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqlstore.LoadMigrations(os.DirFS("migrations"), "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, pg.Component, ms[:1]); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	seedMerchant(t, db, now)
	if history > 0 {
		seedHistory(t, db, history, now)
	}
	cfg := pg.Config{
		IssuerGatewayURL: srv.URL, HTTPClient: srv.Client(), GatewayTimeout: 5 * time.Second, DataKey: testDataKey,
		AdminToken: adminToken, Now: e.clock.Now, Rand: testutil.NewDetRand(t.Name()),
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	p, err := pg.OpenDB(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.pg = p
	e.m = &pg.CreatedMerchant{Merchant: pg.Merchant{MID: costMID}}
	return &probed{env: e, db: db, probe: probe, path: path, cfg: cfg}
}

func seedMerchant(t testing.TB, db *sqlstore.DB, now time.Time) {
	t.Helper()
	at := now.UnixMicro()
	if _, err := db.ExecContext(ctx, `INSERT INTO pgw_merchants (mid, name, status, api_key_hash, api_key_hint, created_at, updated_at)
		VALUES ($1, 'Cost Shop', 'ACTIVE', x'00', 'none', $2, $2)`, costMID, at); err != nil {
		t.Fatal(err)
	}
	// A daily limit high enough for the history: the check runs on every
	// payment.
	if _, err := db.ExecContext(ctx, `INSERT INTO pgw_contracts (mid, bin_prefixes, fee_bps, max_amount, daily_limit, updated_at)
		VALUES ($1, '949010', 250, 0, 1000000000000, $2)`, costMID, at); err != nil {
		t.Fatal(err)
	}
}

// seedHistory stores n past transactions of costMID in one transaction.
func seedHistory(t testing.TB, db *sqlstore.DB, n int, now time.Time) {
	t.Helper()
	today := now.In(pg.KST)
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
			INSERT INTO pgw_transactions (tid, mid, order_no, product_name, amount, cancelled_amount, currency, status,
				result_code, approval_no, masked_card, fee_bps, biz_date, created_at, approved_at, updated_at)
			SELECT printf('H%011d', i), $2, printf('HIST-%d', i), 'seed', 1000 + i % 7,
				CASE WHEN i % 10 = 0 THEN 1000 + i % 7 ELSE 0 END, 'KRW',
				CASE i % 10 WHEN 0 THEN 'CANCELLED' WHEN 1 THEN 'DECLINED' ELSE 'APPROVED' END,
				CASE i % 10 WHEN 1 THEN '3011' ELSE '0000' END, printf('%08d', i), '949010******0000', 250,
				CASE WHEN i % 2 = 0 THEN $3 ELSE strftime('%Y%m%d', $4, printf('-%d days', 1 + i % 49)) END,
				$5 - i * 1000000, $5 - i * 1000000, $5 - i * 1000000
			FROM n`, n, costMID, today.Format("20060102"), today.Format("2006-01-02"), now.UnixMicro()); err != nil {
			return fmt.Errorf("seed transactions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_operations (op_id, tid, kind, amount, gateway_key, status,
				result_code, attempts, created_at, done_at)
			SELECT tid || '-01', tid, 'approve', amount, 'pg-' || tid || '-01-seed', CASE status WHEN 'DECLINED' THEN 'REFUSED' ELSE 'DONE' END,
				result_code, 1, created_at, created_at FROM pgw_transactions WHERE tid LIKE 'H%'`); err != nil {
			return fmt.Errorf("seed operations: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_idempotency (mid, idem_key, operation, fingerprint, tid, op_id, created_at)
			SELECT mid, 'hist-' || tid, 'pay', x'00', tid, tid || '-01', created_at FROM pgw_transactions WHERE tid LIKE 'H%'`); err != nil {
			return fmt.Errorf("seed idempotency: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type cost = sqlprobe.Cost

func (p *probed) measure(f func()) (cost, []sqlprobe.Statement) { return p.probe.Measure(f) }

// approveOnce pays with the good card and requires the approval.
func (p *probed) approveOnce(t testing.TB) (cost, []sqlprobe.Statement) {
	t.Helper()
	return p.measure(func() { p.approved(1000) })
}

// checkDailyTotals requires the running totals to be exactly what the
// transactions add up to.
func checkDailyTotals(t testing.TB, q sqlstore.Queryer) {
	t.Helper()
	var bad int
	if err := q.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM (SELECT mid, biz_date, SUM(amount - cancelled_amount) AS s FROM pgw_transactions
			WHERE status NOT IN ('DECLINED', 'FAILED') GROUP BY mid, biz_date) x
			LEFT JOIN pgw_daily_totals d ON d.mid = x.mid AND d.biz_date = x.biz_date WHERE d.used IS NULL OR d.used <> x.s)
		+ (SELECT COUNT(*) FROM pgw_daily_totals d WHERE d.used <> COALESCE((SELECT SUM(t.amount - t.cancelled_amount)
			FROM pgw_transactions t WHERE t.mid = d.mid AND t.biz_date = d.biz_date
			AND t.status NOT IN ('DECLINED', 'FAILED')), 0))`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d business days whose running total is not the sum of their transactions", bad)
	}
}

// TestApprovalCostIndependentOfHistory: after 100,000 past transactions
// (half of them today's), an approval runs the same statements, writes
// and write transactions as on a fresh database, and none of its
// statements — nor a cancel's, a refund's, a lookup's or the resolver's —
// reads a table whole (EXPLAIN QUERY PLAN); the daily limit reads its
// running total, which the migration filled from the stored transactions.
func TestApprovalCostIndependentOfHistory(t *testing.T) {
	fresh := newProbed(t, 0)
	old := newProbed(t, 100_000)
	checkDailyTotals(t, old.db)
	// The migrations kept every idempotency record (0004 copies them).
	var kept int
	if err := old.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pgw_idempotency WHERE mid = $1 AND idem_key LIKE 'hist-%'
		AND tid <> '' AND op_id = tid || '-01'`, costMID).Scan(&kept); err != nil || kept != 100_000 {
		t.Errorf("%d idempotency records after the migrations, want 100000 (%v)", kept, err)
	}
	// And every operation (0005 copies them).
	if err := old.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pgw_operations o JOIN pgw_transactions t ON t.tid = o.tid
		WHERE o.op_id = t.tid || '-01' AND o.gateway_key = 'pg-' || t.tid || '-01-seed' AND o.status <> 'PENDING'`).
		Scan(&kept); err != nil || kept != 100_000 {
		t.Errorf("%d operations after the migrations, want 100000 (%v)", kept, err)
	}

	fresh.approveOnce(t) // the first payment of the day creates its rows
	old.approveOnce(t)
	cf, _ := fresh.approveOnce(t)
	co, stmts := old.approveOnce(t)
	if cf != co {
		t.Errorf("an approval costs %+v after 100,000 transactions, %+v on a fresh database", co, cf)
	}
	if co.Commits != 2 {
		t.Errorf("an approval commits %d write transactions, want 2 (the pending record before the issuer is asked, its answer after)", co.Commits)
	}
	// A cancel, a refund, a lookup and the resolver's run read by index
	// too.
	stop := old.probe.Record()
	a := old.approved(5000)
	if _, err := old.cancel(a.TID); err != nil {
		t.Fatal(err)
	}
	b := old.approved(5000)
	old.gw.settleAll()
	if _, err := old.refund(b.TID, 2000); err != nil {
		t.Fatal(err)
	}
	if _, err := old.pg.Lookup(ctx, costMID, b.TID); err != nil {
		t.Fatal(err)
	}
	old.resolve()
	more := stop()
	scans, err := sqlprobe.Scans(ctx, old.db.DB, append(append([]sqlprobe.Statement{}, stmts...), more...))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scans {
		if strings.Contains(s.Detail, "INDEX pgw_operations_pending") {
			continue // the pending operations only: a partial index (covering since 0005)
		}
		t.Errorf("%s in %s", s.Detail, strings.Join(strings.Fields(s.Query), " "))
	}
	for _, s := range stmts {
		if q := strings.ToUpper(s.Query); strings.Contains(q, "SUM(") || strings.Contains(q, "COUNT(") && strings.Contains(q, "PGW_TRANSACTIONS") {
			t.Errorf("an approval aggregates history: %s", strings.Join(strings.Fields(s.Query), " "))
		}
	}
	checkDailyTotals(t, old.db)
}

// TestDailyTotalsFollowEveryChange: the running total follows every
// change of a transaction — approval, decline, failure, cancel, partial
// and full refund — on both databases.
func TestDailyTotalsFollowEveryChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		db := e.pg.DB()
		a := e.approved(100_000)
		checkDailyTotals(t, db)
		e.pay(e.gw.declineCard(1, "InsufficientFunds"), 50_000)
		checkDailyTotals(t, db)
		e.gw.setMode("approve", noRoute)
		e.pay(cardGood, 7_000)
		e.gw.setMode("approve", normal)
		checkDailyTotals(t, db)
		if _, err := e.cancel(a.TID); err != nil {
			t.Fatal(err)
		}
		checkDailyTotals(t, db)
		b := e.approved(90_000)
		e.gw.settleAll()
		if _, err := e.refund(b.TID, 30_000); err != nil {
			t.Fatal(err)
		}
		checkDailyTotals(t, db)
		if _, err := e.refund(b.TID, 60_000); err != nil {
			t.Fatal(err)
		}
		checkDailyTotals(t, db)
		var used int64
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(used), 0) FROM pgw_daily_totals`).Scan(&used); err != nil {
			t.Fatal(err)
		}
		if used != 0 {
			t.Errorf("the day uses %d won after everything was cancelled, refunded or refused", used)
		}
	})
}

// BenchmarkApprovalCost reports what one approval costs the PG's
// database, on a fresh database and after 100,000 past transactions (half
// of them the same day): write transactions (txns/op; under WAL with
// synchronous=FULL each is one fsync of the WAL, fsyncs/op, checkpoints
// aside), writing statements and statements.
//
//	go test ./examples/pg -run '^$' -bench ApprovalCost -benchtime 300x
func BenchmarkApprovalCost(b *testing.B) {
	for _, h := range []struct {
		name string
		n    int
	}{{"fresh", 0}, {"after100k", 100_000}} {
		b.Run(h.name, func(b *testing.B) {
			p := newProbed(b, h.n)
			p.approved(1000)
			before := p.probe.Counts()
			stop := p.probe.Record()
			b.ResetTimer()
			for b.Loop() {
				p.approved(1000)
			}
			b.StopTimer()
			reportCost(b, p.probe.Counts().Sub(before), len(stop()))
		})
	}
}

func reportCost(b *testing.B, c sqlprobe.Counts, stmts int) {
	n := float64(b.N)
	b.ReportMetric(float64(c.Commits)/n, "txns/op")
	b.ReportMetric(float64(c.Commits)/n, "fsyncs/op")
	b.ReportMetric(float64(c.Writes)/n, "writes/op")
	b.ReportMetric(float64(stmts)/n, "stmts/op")
}

// BenchmarkDailyLimitCheck compares the daily limit's read before this
// PG kept a running total (the sum of the day's transactions) with the
// running total's row, on a fresh database (one transaction today) and
// after 100,000 past transactions (50,000 of them today).
//
//	go test ./examples/pg -run '^$' -bench DailyLimitCheck
func BenchmarkDailyLimitCheck(b *testing.B) {
	queries := []struct{ name, q string }{
		{"sum", `SELECT COALESCE(SUM(amount - cancelled_amount), 0) FROM pgw_transactions
			WHERE mid = $1 AND biz_date = $2 AND status NOT IN ('DECLINED', 'FAILED')`},
		{"total", `SELECT used FROM pgw_daily_totals WHERE mid = $1 AND biz_date = $2`},
	}
	for _, h := range []struct {
		name string
		n    int
	}{{"fresh", 0}, {"after100k", 100_000}} {
		p := newProbed(b, h.n)
		p.approved(1000)
		day := p.clock.Now().In(pg.KST).Format("20060102")
		for _, q := range queries {
			b.Run(q.name+"/"+h.name, func(b *testing.B) {
				for b.Loop() {
					var used int64
					if err := p.db.QueryRowContext(ctx, q.q, costMID, day).Scan(&used); err != nil || used == 0 {
						b.Fatalf("%d, %v", used, err)
					}
				}
			})
		}
	}
}

// TestPaymentSurvivesCrashAtEveryWrite kills the PG's writer at each
// write of a payment in turn — the pending record before the issuer is
// asked, then its answer — restarts the PG on the same file and retries
// with the same Idempotency-Key: the order has exactly one transaction,
// approved once at the issuer (an approval whose answer was lost is found
// by the inquiry once the gateway timeout has passed), an acknowledged
// payment keeps its TID, the earlier payment is intact, and the daily
// total matches the transactions.
func TestPaymentSurvivesCrashAtEveryWrite(t *testing.T) {
	for n := int64(1); ; n++ {
		p := newProbed(t, 0)
		earlier := p.approved(1000)
		req := p.payReq(cardGood, 3000)
		p.probe.CrashAt(n)
		first, err := p.pg.Pay(ctx, req)
		acked := err == nil
		if err != nil && !errors.Is(err, sqlprobe.ErrCrashed) {
			t.Fatalf("crash at write %d: %v, want the crash", n, err)
		}
		crashed := p.probe.Crashed()
		p.pg.Close()

		cfg := p.cfg
		cfg.DSN = "sqlite:" + p.path
		cfg.Rand = testutil.NewDetRand(fmt.Sprint(t.Name(), n))
		again, err := pg.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		retry, err := again.Pay(ctx, req)
		if err == nil && retry.Status == pg.StatusPending {
			// The approval's answer was lost: the inquiry settles it once
			// the original call can no longer be in flight.
			p.clock.Advance(6 * time.Second)
			retry, err = again.Pay(ctx, req)
		}
		if err != nil || retry.Status != pg.StatusApproved {
			t.Fatalf("crash at write %d: the retry: %v %+v", n, err, retry)
		}
		if acked && retry.TID != first.TID {
			t.Errorf("crash at write %d: the retry answers %s, the acknowledged payment was %s", n, retry.TID, first.TID)
		}
		var live int
		if err := again.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pgw_transactions WHERE mid = $1 AND order_no = $2`,
			costMID, req.OrderNo).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live != 1 {
			t.Errorf("crash at write %d: %d transactions for the order, want 1", n, live)
		}
		if a := p.gw.approvalOf(retry.TID); a == nil || a.amount != 3000 {
			t.Errorf("crash at write %d: the issuer's approval of %s: %+v", n, retry.TID, a)
		}
		if got, err := again.Get(ctx, costMID, earlier.TID); err != nil || got.Status != pg.StatusApproved {
			t.Errorf("crash at write %d: the earlier payment: %v %+v", n, err, got)
		}
		checkDailyTotals(t, again.DB())
		again.Close()
		if !crashed {
			if n < 4 {
				t.Errorf("only %d writes in a payment: nothing was crashed", n-1)
			}
			t.Logf("a payment writes %d statements; crashed at each", n-1)
			return
		}
	}
}

// TestPayAnswersWhatIsStored: the payment Pay returns, which it builds
// from the rows its last write returned rather than reading them again,
// is the transaction as Get reads it afterwards, with the approval's
// outcome as its result — approved, declined, failed and left pending.
func TestPayAnswersWhatIsStored(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		for _, c := range []struct {
			name, card string
			mode       mode
		}{
			{"approved", cardGood, normal},
			{"declined", e.gw.declineCard(1, "InsufficientFunds"), normal},
			{"failed", cardGood, noRoute},
			{"pending", cardGood, pendingUnseen},
		} {
			e.gw.setMode("approve", c.mode)
			req := e.payReq(c.card, 12_000)
			req.Buyer = pg.Buyer{Name: "김철수", Tel: "01012345678", Email: "kim@example.com"}
			got, err := e.pg.Pay(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want, err := e.pg.Get(ctx, e.m.MID, got.TID)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Operations) != 1 {
				t.Fatalf("%s: %d operations", c.name, len(want.Operations))
			}
			want.ResultCode, want.ResultDetail = want.Operations[0].ResultCode, want.Operations[0].ResultDetail
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: Pay answers\n%+v\nGet reads\n%+v", c.name, got, want)
			}
		}
		e.gw.setMode("approve", normal)
	})
}
