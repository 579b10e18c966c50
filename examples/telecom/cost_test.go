package telecom

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore"
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

// TestSubmitGroupCommit: messages submitted while the writer is busy
// share one commit, each with its own answer: of four submissions of one
// ref exactly one message is stored and all four get its ID; the inbox
// positions of the stored messages follow each other without the gaps
// that the repeated ref's rolled-back writes would leave.
func TestSubmitGroupCommit(t *testing.T) {
	ctx := context.Background()
	tc, p := probedTelecom(t, 0)
	text := "[KECIS Card] 승인 1,000원"

	// Alone, a message is a commit of its own.
	before := p.Counts()
	if _, err := tc.Submit(ctx, bankID, sms.Message{From: bankNumber, To: payeePhone, Text: text, Ref: "alone"}); err != nil {
		t.Fatal(err)
	}
	if c := p.Counts().Sub(before); c.Commits != 1 {
		t.Fatalf("one message: %d commits", c.Commits)
	}

	// Another connection holds the write lock: the writer stops at the
	// first group it takes, and the other messages queue behind it.
	other, err := sqlstore.Open(ctx, "sqlite:"+p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	before = p.Counts()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("group-%d", i)
			if i%4 == 0 {
				ref = "group-dup"
			}
			m, err := tc.Submit(ctx, bankID, sms.Message{From: bankNumber, To: payeePhone, Text: text, Ref: ref})
			ids[i], errs[i] = m.ID, err
		}()
	}
	for k := 0; ; k++ {
		waiting, running := tc.group.Queued()
		if waiting+running == n {
			break
		}
		if k > 10_000_000 {
			t.Fatalf("%d messages queued and %d running, want %d", waiting, running, n)
		}
		runtime.Gosched()
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	// Two commits: the group the writer took, then the queue behind it.
	// A repeated ref commits nothing of its own.
	if c := p.Counts().Sub(before); c.Commits > 2 {
		t.Errorf("%d messages: %d commits, want at most 2", n, c.Commits)
	}
	for i := 4; i < n; i += 4 {
		if ids[i] != ids[0] {
			t.Errorf("message %d of the repeated ref: id %s, want %s", i, ids[i], ids[0])
		}
	}
	inbox, err := tc.Inbox(ctx, payeePhone)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + n - 3; len(inbox) != want {
		t.Fatalf("%d messages in the inbox, want %d", len(inbox), want)
	}
	for i, m := range inbox {
		if want := int64(len(inbox) - i); m.InboxSeq != want {
			t.Errorf("inbox[%d] at position %d, want %d", i, m.InboxSeq, want)
		}
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

// BenchmarkSMSCost reports what one SMS costs the telecom's database as
// the issuer's outbox sends it, over the gateway (POST /api/sms with the
// sender's API key and a ref), with 1 and with 16 senders at once: write
// transactions (txns/op; one WAL fsync each under synchronous=FULL,
// fsyncs/op), writing statements and statements (reads included; the
// BEGIN and COMMIT of a transaction are not statements). With 16 senders
// the messages' writes share commits (sqlstore.Group).
//
//	go test ./examples/telecom -run '^$' -bench SMSCost -benchtime 2000x
func BenchmarkSMSCost(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			tc, p := probedTelecom(b, 0)
			h := tc.Handler()
			var seq atomic.Int64
			send := func() error {
				body := fmt.Sprintf(`{"from":%q,"to":%q,"text":"[KECIS Card] 승인 1,000원","ref":"sms-%d"}`,
					bankNumber, payeePhone, seq.Add(1))
				req := httptest.NewRequest(http.MethodPost, "/api/sms", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(sms.DefaultAPIKeyHeader, bankAPIKey)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					return fmt.Errorf("POST /api/sms: %d %s", rec.Code, rec.Body)
				}
				return nil
			}
			before := p.Counts()
			stop := p.Record()
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			if clients == 1 {
				for b.Loop() {
					if err := send(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := send(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			c, stmts := p.Counts().Sub(before), len(stop())
			n := float64(b.N)
			b.ReportMetric(float64(c.Commits)/n, "txns/op")
			b.ReportMetric(float64(c.Commits)/n, "fsyncs/op")
			b.ReportMetric(float64(c.Writes)/n, "writes/op")
			b.ReportMetric(float64(stmts)/n, "stmts/op")
		})
	}
}
