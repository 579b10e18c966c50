package telecom

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/internal/testutil"
)

// probedTelecom opens a telecom on a probed SQLite file with the bank
// sender and the payee's line, and history messages already delivered
// to the payee by SQL.
func probedTelecom(t testing.TB, history int) (*Telecom, *sqlprobe.Probe) {
	t.Helper()
	ctx := context.Background()
	db, probe, err := sqlprobe.Open(ctx, filepath.Join(t.TempDir(), "telecom.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock(testutil.FixedNow)
	tc, err := OpenDB(ctx, db, Config{Now: clock.Now, Logger: slog.New(slog.DiscardHandler), Rand: testutil.NewDetRand(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if err := tc.AddSender(ctx, SenderAccount{ID: bankID, Name: "Bank A", APIKey: bankAPIKey, Numbers: []string{bankNumber}}); err != nil {
		t.Fatal(err)
	}
	if err := tc.AddSubscriber(ctx, Subscriber{Phone: payeePhone, HolderName: payeeName, BirthDate: payeeBirth}); err != nil {
		t.Fatal(err)
	}
	if history > 0 {
		now := clock.Now().UnixMicro()
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
				INSERT INTO telecom_messages (id, sender_id, from_number, to_phone, body, kind, bytes, ref, status,
					created_at, deliver_at, delivered_at, inbox_seq)
				SELECT printf('msg_hist%d', i), $2, $3, $4, 'seed', 'SMS', 4, printf('hist-%d', i), 'delivered',
					$5 - i * 1000000, $5 - i * 1000000, $5 - i * 1000000, i FROM n`,
				history, bankID, bankCaller, payeeE164, now); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE telecom_counters SET value = $1 WHERE name = 'inbox'`, history)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tc, probe
}

// TestSubmitCostIndependentOfHistory: after 100,000 messages to the same
// phone, a message (what the issuer's SMS costs the telecom) runs the same
// statements and commits once, as on a fresh database, and none of its
// statements reads a table whole; so does the phone's inbox listing.
func TestSubmitCostIndependentOfHistory(t *testing.T) {
	ctx := context.Background()
	measure := func(tc *Telecom, p *sqlprobe.Probe, n int) (sqlprobe.Cost, []sqlprobe.Statement) {
		return p.Measure(func() {
			if _, err := tc.Submit(ctx, bankID, sms.Message{From: bankNumber, To: payeePhone, Text: "[KECIS Card] 승인 1,000원",
				Ref: fmt.Sprintf("cost-%d", n)}); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.Inbox(ctx, payeePhone); err != nil {
				t.Fatal(err)
			}
		})
	}
	fresh, fp := probedTelecom(t, 0)
	old, op := probedTelecom(t, 100_000)
	measure(fresh, fp, 1)
	measure(old, op, 1)
	cf, _ := measure(fresh, fp, 2)
	co, stmts := measure(old, op, 2)
	if cf != co || co.Commits != 1 {
		t.Errorf("a message costs %+v after 100,000, %+v fresh; want the same, one commit", co, cf)
	}
	scans, err := sqlprobe.Scans(ctx, old.db.DB, stmts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scans {
		t.Errorf("%s in %s", s.Detail, strings.Join(strings.Fields(s.Query), " "))
	}
}

// BenchmarkSubmitCost reports what one message (the issuer's SMS of an
// approval) costs the telecom's database, on a fresh database and after
// 100,000 messages to the same phone: write transactions (txns/op; one
// WAL fsync each under synchronous=FULL, fsyncs/op), writing statements
// and statements.
//
//	go test ./examples/telecom -run '^$' -bench SubmitCost -benchtime 300x
func BenchmarkSubmitCost(b *testing.B) {
	ctx := context.Background()
	for _, h := range []struct {
		name string
		n    int
	}{{"fresh", 0}, {"after100k", 100_000}} {
		b.Run(h.name, func(b *testing.B) {
			tc, p := probedTelecom(b, h.n)
			before := p.Counts()
			stop := p.Record()
			k := 0
			for b.Loop() {
				k++
				if _, err := tc.Submit(ctx, bankID, sms.Message{From: bankNumber, To: payeePhone, Text: "[KECIS Card] 승인 1,000원",
					Ref: fmt.Sprintf("bench-%d", k)}); err != nil {
					b.Fatal(err)
				}
			}
			c, stmts := p.Counts().Sub(before), len(stop())
			n := float64(b.N)
			b.ReportMetric(float64(c.Commits)/n, "txns/op")
			b.ReportMetric(float64(c.Commits)/n, "fsyncs/op")
			b.ReportMetric(float64(c.Writes)/n, "writes/op")
			b.ReportMetric(float64(stmts)/n, "stmts/op")
		})
	}
}
