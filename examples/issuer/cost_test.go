package issuer_test

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// probed is an issuer on a SQLite file watched by sqlprobe, with one
// credit card.
type probed struct {
	*env
	db    *sqlstore.DB
	probe *sqlprobe.Probe
	path  string
	card  *issuer.IssuedCard
	cfg   issuer.Config
}

// quietSMS keeps the 'sent' state of delivered SMS for the next write
// transaction for the whole test (no timer fires in it) and logs nothing.
func quietSMS(c *issuer.Config) {
	c.NotifyTimeout = 8 * time.Hour
	c.SMSRecordDelay = time.Hour
	c.Logger = slog.New(slog.DiscardHandler)
}

// newProbed opens an issuer on a probed SQLite file, issues a card and
// stores history past approvals on it by SQL (one in ten cancelled, each
// with its idempotency record and SMS, one decline in ten).
func newProbed(t testing.TB, history int, opts ...func(*issuer.Config)) *probed {
	t.Helper()
	path := filepath.Join(t.TempDir(), "issuer.db")
	db, probe, err := sqlprobe.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: testutil.NewClock(testutil.FixedNow), phone: &phone{}, logs: &syncBuffer{}, dsn: "sqlite:" + path}
	cfg := issuer.Config{DataKey: testDataKey, Pepper: testPepper, Notifier: e.phone, Now: e.clock.Now,
		Rand: testutil.NewDetRand(t.Name())}
	quietSMS(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	iss, err := issuer.OpenDB(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	e.iss = iss
	p := &probed{env: e, db: db, probe: probe, path: path, cfg: cfg}
	p.card = e.issue(issuer.Credit, 1<<50)
	if history > 0 {
		p.seedHistory(t, history)
	}
	return p
}

func (p *probed) seedHistory(t testing.TB, n int) {
	t.Helper()
	now := p.clock.Now()
	err := p.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
			INSERT INTO issuer_approvals (approval_number, card_id, merchant_id, merchant_name, order_id, amount, currency,
				installments, cardholder_auth, refunded_amount, status, approved_at, cutoff_at, cancelled_at)
			SELECT printf('%08d', i * 7), $2, $3, 'Example Shop', printf('HIST-%d', i), 1000 + i % 7, 'KRW', 0, 'none', 0,
				CASE WHEN i % 10 = 0 THEN 'cancelled' ELSE 'approved' END, $4 - i * 1000000, $4 - i * 1000000 + 3600000000,
				CASE WHEN i % 10 = 0 THEN $4 - i * 1000000 + 60000000 END
			FROM n`, n, p.card.ID, merchant, now.UnixMicro()); err != nil {
			return fmt.Errorf("seed approvals: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_idempotency (scope, idem_key, operation, fingerprint, ref, created_at)
			SELECT 'merchant:' || merchant_id, 'hist-' || order_id, 'approve', x'00', approval_number, approved_at FROM issuer_approvals
			WHERE order_id LIKE 'HIST-%'`); err != nil {
			return fmt.Errorf("seed idempotency: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_outbox (kind, ref, phone, body, state, attempts, next_attempt_at, created_at, sent_at)
			SELECT 'approval', approval_number, $1, 'seed', 'sent', 1, approved_at, approved_at, approved_at FROM issuer_approvals
			WHERE order_id LIKE 'HIST-%'`, testPhoneD); err != nil {
			return fmt.Errorf("seed outbox: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_declines (merchant_id, order_id, card_id, code, reason, amount, currency, created_at)
			SELECT merchant_id, 'D' || order_id, card_id, 'LIMIT_EXCEEDED', 'seed', amount, currency, approved_at FROM issuer_approvals
			WHERE order_id LIKE 'HIST-%' AND CAST(substr(order_id, 6) AS INTEGER) % 10 = 1`); err != nil {
			return fmt.Errorf("seed declines: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type cost = sqlprobe.Cost

func (p *probed) measure(f func()) (cost, []sqlprobe.Statement) { return p.probe.Measure(f) }

// TestApprovalCostIndependentOfHistory: after 100,000 past approvals on
// the card, an approval, a cancel, a refund and an inquiry run the same
// statements, writes and write transactions as on a fresh database, and
// none of their statements reads a table whole (EXPLAIN QUERY PLAN), nor
// do those of the SMS retry run and the settlement job: the available
// limit is a column of the card, the ledger and the idempotency records
// are read by key, the outbox by due time, a batch by its index. An approval commits once: its
// SMS's lease is taken in its transaction and the SMS's 'sent' state rides
// in the next one.
func TestApprovalCostIndependentOfHistory(t *testing.T) {
	fresh := newProbed(t, 0)
	old := newProbed(t, 100_000)
	type step struct {
		name string
		run  func(p *probed) func()
	}
	var last = map[*probed]*issuer.Approval{}
	steps := []step{
		{"approve", func(p *probed) func() { return func() { last[p] = p.approve(p.card, 1000) } }},
		{"inquire", func(p *probed) func() { return func() { p.inquire(last[p].Number) } }},
		{"cancel", func(p *probed) func() {
			return func() {
				if _, err := p.cancel(last[p]); err != nil {
					p.t.Fatal(err)
				}
			}
		}},
		{"approve", func(p *probed) func() { return func() { last[p] = p.approve(p.card, 5000) } }},
		{"refund", func(p *probed) func() {
			return func() {
				p.pastCutOff()
				if _, err := p.refund(last[p], 2000); err != nil {
					p.t.Fatal(err)
				}
			}
		}},
	}
	fresh.approve(fresh.card, 1000) // the first request writes the first rows of its kind
	old.approve(old.card, 1000)
	var stmts []sqlprobe.Statement
	for _, s := range steps {
		cf, _ := fresh.measure(s.run(fresh))
		co, st := old.measure(s.run(old))
		if cf != co {
			t.Errorf("%s costs %+v after 100,000 approvals, %+v on a fresh database", s.name, co, cf)
		}
		if s.name != "inquire" && co.Commits != 1 {
			t.Errorf("%s commits %d write transactions, want 1", s.name, co.Commits)
		}
		stmts = append(stmts, st...)
	}
	// The jobs that run every minute (SMS retries) and every day
	// (settlement, which also deletes an empty batch) read by index too.
	stop := old.probe.Record()
	if _, err := old.iss.DeliverNotifications(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run settles nothing: its empty batch is deleted
		if _, err := old.iss.Settle(ctx, old.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	stmts = append(stmts, stop()...)
	scans, err := sqlprobe.Scans(ctx, old.db.DB, stmts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scans {
		t.Errorf("%s in %s", s.Detail, strings.Join(strings.Fields(s.Query), " "))
	}
	// Every SMS is recorded sent once the outbox is read.
	ns, err := old.iss.Notifications(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.State != "sent" || n.Attempts != 1 {
			t.Errorf("SMS %d %s after %d attempts, want sent after 1", n.ID, n.State, n.Attempts)
		}
	}
}

// TestApprovalSurvivesCrashAtEveryWrite kills the issuer's writer at each
// write of an approval in turn — the approval B that also carries the
// 'sent' state of the approval A before it — then restarts the issuer on
// the same file and retries B with the same idempotency key: A and its SMS
// are never lost, B is in the ledger exactly once and took the limit
// once, its answer, if it was given before the crash, is the one the
// retry gives, and every SMS is delivered (a lost 'sent' state sends A's
// again after its lease: at least once).
func TestApprovalSurvivesCrashAtEveryWrite(t *testing.T) {
	for n := int64(1); ; n++ {
		p := newProbed(t, 0)
		a := p.approve(p.card, 1000)
		req := p.approveReq(p.card, 3000)
		p.probe.CrashAt(n)
		first, err := p.iss.Approve(ctx, req)
		acked := err == nil
		if err != nil && !errors.Is(err, sqlprobe.ErrCrashed) {
			t.Fatalf("crash at write %d: %v, want the crash", n, err)
		}
		crashed := p.probe.Crashed()
		p.iss.Close()

		cfg := p.cfg
		cfg.DSN = "sqlite:" + p.path
		cfg.Rand = testutil.NewDetRand(fmt.Sprint(t.Name(), n))
		again, err := issuer.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		retry, err := again.Approve(ctx, req)
		if err != nil {
			t.Fatalf("crash at write %d: the retry: %v", n, err)
		}
		if acked && retry.Number != first.Number {
			t.Errorf("crash at write %d: the retry answers approval %s, the first answer was %s", n, retry.Number, first.Number)
		}
		if acked && !retry.Replayed {
			t.Errorf("crash at write %d: an acknowledged approval was lost and made again", n)
		}
		var approvals, smsA, smsB int
		var available int64
		db := again.DB()
		for q, v := range map[string]any{
			`SELECT COUNT(*) FROM issuer_approvals WHERE order_id = '` + req.OrderID + `'`: &approvals,
			`SELECT COUNT(*) FROM issuer_outbox WHERE ref = '` + a.Number + `'`:            &smsA,
			`SELECT COUNT(*) FROM issuer_outbox WHERE ref = '` + retry.Number + `'`:        &smsB,
			`SELECT available FROM issuer_cards WHERE id = '` + p.card.ID + `'`:            &available,
		} {
			if err := db.QueryRowContext(ctx, q).Scan(v); err != nil {
				t.Fatal(err)
			}
		}
		if approvals != 1 || smsA != 1 || smsB != 1 {
			t.Errorf("crash at write %d: %d approvals of the order, %d SMS of A, %d of B; want one each", n, approvals, smsA, smsB)
		}
		if want := int64(1<<50 - 1000 - 3000); available != want {
			t.Errorf("crash at write %d: available %d, want %d", n, available, want)
		}
		if _, err := again.Inquire(ctx, issuer.InquireRequest{MerchantID: merchant, ApprovalNumber: a.Number}); err != nil {
			t.Errorf("crash at write %d: approval A: %v", n, err)
		}
		// After the leases every SMS ends sent.
		p.clock.Advance(17 * time.Hour)
		if _, err := again.DeliverNotifications(ctx); err != nil {
			t.Fatal(err)
		}
		ns, err := again.Notifications(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ns {
			if m.State != "sent" {
				t.Errorf("crash at write %d: SMS of %s is %s", n, m.Ref, m.State)
			}
		}
		again.Close()
		if !crashed {
			if n < 3 {
				t.Errorf("only %d writes per approval: the test crashed nothing", n-1)
			}
			t.Logf("an approval (with the previous SMS's record) writes %d statements; crashed at each", n-1)
			return
		}
	}
}

// BenchmarkApprovalCost reports what one approval costs the issuer's
// database, on a fresh database and after 100,000 past approvals on the
// card: write transactions (txns/op; under WAL with synchronous=FULL each
// is one fsync, fsyncs/op, checkpoints aside), writing statements and
// statements — the SMS's 'sent' records included, the last one written
// when the loop ends — and the process's CPU time (cpu-µs/op, the SMS's
// delivery and logging included).
//
//	go test ./examples/issuer -run '^$' -bench ApprovalCost -benchtime 300x
func BenchmarkApprovalCost(b *testing.B) {
	for _, h := range []struct {
		name string
		n    int
	}{{"fresh", 0}, {"after100k", 100_000}} {
		b.Run(h.name, func(b *testing.B) {
			p := newProbed(b, h.n)
			p.approve(p.card, 1000)
			if _, err := p.iss.Notifications(ctx, 1); err != nil {
				b.Fatal(err)
			}
			before, cpu := p.probe.Counts(), cpuTime()
			stop := p.probe.Record()
			b.ResetTimer()
			for b.Loop() {
				p.approve(p.card, 1000)
			}
			if _, err := p.iss.Notifications(ctx, 1); err != nil { // writes the last SMS's record
				b.Fatal(err)
			}
			b.StopTimer()
			c, stmts, used := p.probe.Counts().Sub(before), len(stop()), cpuTime()-cpu
			n := float64(b.N)
			b.ReportMetric(float64(c.Commits)/n, "txns/op")
			b.ReportMetric(float64(c.Commits)/n, "fsyncs/op")
			b.ReportMetric(float64(c.Writes)/n, "writes/op")
			b.ReportMetric(float64(stmts)/n, "stmts/op")
			b.ReportMetric(float64(used.Microseconds())/n, "cpu-µs/op")
		})
	}
}
