package kecisadapter_test

// The issuer's adapter store as a guest in the issuer's own database,
// sharing its group commit (storesql.Shared, issuer.Issuer.Group): what
// the demo runs (examples/demo/issuer.go). Here, not in examples/issuer:
// the issuer's own tests link no KECIS code (internal/archtest).

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
)

var (
	ctx       = context.Background()
	atRestKey = []byte("0123456789abcdef0123456789abcdef")
)

// clock is a fixed clock: nothing in these tests waits.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// probed is an issuer on a SQLite file whose statements, commits and
// crashes a sqlprobe.Probe counts and injects, with one credit card.
type probed struct {
	db    *sqlstore.DB
	probe *sqlprobe.Probe
	path  string
	cfg   issuer.Config
	clock *clock
	iss   *issuer.Issuer
	card  *issuer.IssuedCard
	seq   atomic.Int64
}

func newProbed(t testing.TB) *probed {
	t.Helper()
	path := filepath.Join(t.TempDir(), "issuer.db")
	db, probe, err := sqlprobe.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := &probed{db: db, probe: probe, path: path, clock: &clock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	p.cfg = issuer.Config{DataKey: bytes.Repeat([]byte{0x42}, 32), Pepper: bytes.Repeat([]byte{0x17}, 32),
		Notifier: &issuer.Inbox{}, Now: p.clock.Now, Rand: rand.NewChaCha8([32]byte{7}),
		// The 'sent' state of delivered SMS waits for the next write
		// transaction for the whole test (no timer fires in it).
		NotifyTimeout: 8 * time.Hour, SMSRecordDelay: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	if p.iss, err = issuer.OpenDB(ctx, db, p.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.iss.Close() })
	if p.card, err = p.iss.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동",
		HolderPhone: "010-2345-6789", BirthDate: "870312", Password: "4821", Limit: 1 << 50, IdempotencyKey: "card-1"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// approveReq is an approval of amount on c for a fresh order.
func (p *probed) approveReq(c *issuer.IssuedCard, amount int64) issuer.ApproveRequest {
	n := p.seq.Add(1)
	return issuer.ApproveRequest{MerchantID: "M-EXAMPLE", MerchantName: "Example Shop", OrderID: fmt.Sprint("ORD-", n),
		Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		Card:   issuer.CardData{PAN: c.PAN, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear}, IdempotencyKey: fmt.Sprint("approve-", n)}
}

func (p *probed) approve(c *issuer.IssuedCard, amount int64) {
	if _, err := p.iss.Approve(ctx, p.approveReq(c, amount)); err != nil {
		panic(err)
	}
}

// adapterStore opens the issuer's adapter store in p's database: a guest
// in the issuer's group commit (storesql.Shared), or, own, with a group
// of its own on the same file (two writers that take turns).
func (p *probed) adapterStore(t testing.TB, own bool) *storesql.Store {
	t.Helper()
	g := p.iss.Group()
	if own {
		g = nil // a group of its own; the database stays the issuer's
	}
	st, err := storesql.New(ctx, p.db, atRestKey, storesql.Shared(g))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // before the issuer's (cleanups run last first)
	return st
}

// request is one card:approve as the issuer's KECIS side makes it: the
// adapter store takes the key with the message's replay record and the
// order claimed, the issuer approves, the store records the outcome with
// the approval claimed.
func (p *probed) request(st *storesql.Store, n int64) error {
	const caller, owner = "https://hub.test/kecis|https://pg.test", "https://pg.test"
	id := fmt.Sprint(n)
	now := p.clock.Now()
	seen := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_" + id, Expires: now.Add(time.Minute)}}
	res, _, err := st.BeginRemembered(ctx, seen, caller, "k"+id, []byte("fp"), time.Minute, now,
		store.Objects{Owner: owner, Claim: []store.ObjectRef{{Kind: "card:order", ID: "o" + id, PerOwner: true}}})
	if err != nil || res != saml.IdemAcquired {
		return fmt.Errorf("begin: %s, %v", res, err)
	}
	req := p.approveReq(p.card, 1000)
	a, err := p.iss.Approve(ctx, req)
	if err != nil {
		return err
	}
	out := &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}, Payload: []byte("<approved/>")}
	return st.FinishObjects(ctx, caller, "k"+id, out, store.Objects{Owner: owner,
		Claim: []store.ObjectRef{{Kind: "card:approval", ID: a.Number}}}, now)
}

// TestAdapterStoreSharesGroup: the adapter store made Shared with the
// issuer's group writes through it — writes of the store and of the issuer
// that wait for the database's one writer queue in one group and commit
// together — and its Close leaves the issuer's group and database open.
func TestAdapterStoreSharesGroup(t *testing.T) {
	p := newProbed(t)
	st := p.adapterStore(t, false)
	if err := p.request(st, 0); err != nil {
		t.Fatal(err)
	}

	// Another connection holds the write lock: the writer stops at the
	// first group it takes, and the others queue behind it — the
	// store's claims and the issuer's approvals in the same queue.
	other, err := sqlstore.Open(ctx, "sqlite:"+p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	before := p.probe.Counts()
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k%2 == 0 {
				_, errs[k] = p.iss.Approve(ctx, p.approveReq(p.card, 1000))
				return
			}
			id := fmt.Sprint("q", k)
			var res saml.IdemResult
			res, _, errs[k] = st.BeginRemembered(ctx, []store.ReplayEntry{{Issuer: "https://hub.test", ID: id, Expires: p.clock.Now().Add(time.Minute)}},
				"caller", id, []byte("fp"), time.Minute, p.clock.Now(), store.Objects{})
			if errs[k] == nil && res != saml.IdemAcquired {
				errs[k] = fmt.Errorf("begin %s", res)
			}
		}()
	}
	for k := 0; ; k++ {
		waiting, running := p.iss.Group().Queued()
		if waiting+running == n {
			break
		}
		if k > 10_000_000 {
			t.Fatalf("%d writes queued in the issuer's group and %d running, want %d (the store's and the issuer's)", waiting, running, n)
		}
		runtime.Gosched()
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", k, err)
		}
	}
	// Two commits: the group the writer took, then the queue behind it.
	if c := p.probe.Counts().Sub(before); c.Commits > 2 {
		t.Errorf("8 approvals and 8 claims: %d commits, want at most 2", c.Commits)
	}

	// The store's Close leaves the issuer's database and group working.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	p.approve(p.card, 1000)
	var rows int
	if err := p.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM adapter_idempotency`).Scan(&rows); err != nil || rows != 1+n/2 {
		t.Errorf("%d keys in the issuer's database (%v), want %d", rows, err, 1+n/2)
	}
}

// BenchmarkSharedGroup reports the write transactions (= WAL fsyncs under
// synchronous=FULL) and writing statements per approval when 16 clients
// at once make card:approve requests through the adapter store and the
// issuer on one SQLite database: with the store a guest in the issuer's
// group commit (shared), and with a group of its own on the same file
// (own), whose commits and the issuer's take turns at the database's one
// writer and never merge.
//
//	go test ./examples/issuer/kecisadapter -run '^$' -bench SharedGroup -benchtime 2000x
func BenchmarkSharedGroup(b *testing.B) {
	for _, own := range []bool{false, true} {
		name := "shared"
		if own {
			name = "own"
		}
		b.Run(name+"/clients=16", func(b *testing.B) {
			p := newProbed(b)
			st := p.adapterStore(b, own)
			var seq atomic.Int64
			if err := p.request(st, seq.Add(1)); err != nil {
				b.Fatal(err)
			}
			before, cpu := p.probe.Counts(), cpuTime()
			stop := p.probe.Record()
			b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.request(st, seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
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

// TestSharedRequestSurvivesCrashAtEveryWrite kills the database's writer
// at each write of one card:approve request made through the adapter store
// and the issuer sharing one database and one group commit — the key taken
// with the message's replay record and the order claimed, the approval,
// the outcome recorded with the approval claimed — restarts both on the
// file and retries with the same key after the lease: an outcome that was
// recorded is the retry's answer; an approval that was acknowledged is the
// one the retry gets; the order is approved, and its amount taken, once.
func TestSharedRequestSurvivesCrashAtEveryWrite(t *testing.T) {
	const caller, owner, key, lease = "https://hub.test/kecis|https://pg.test", "https://pg.test", "order-1/approve", time.Minute
	fp := []byte("fingerprint")
	order := store.Objects{Owner: owner, Claim: []store.ObjectRef{{Kind: "card:order", ID: "order-1", PerOwner: true}}}
	finish := func(st *storesql.Store, number string, now time.Time) error {
		return st.FinishObjects(ctx, caller, key, &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}, Payload: []byte(number)},
			store.Objects{Owner: owner, Claim: []store.ObjectRef{{Kind: "card:approval", ID: number}}}, now)
	}
	for n := int64(1); ; n++ {
		p := newProbed(t)
		st := p.adapterStore(t, false)
		req := p.approveReq(p.card, 3000)
		p.probe.CrashAt(n)
		now := p.clock.Now()
		var acked, recorded string
		seen := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_msg1", Expires: now.Add(time.Minute)}}
		if res, _, err := st.BeginRemembered(ctx, seen, caller, key, fp, lease, now, order); err == nil && res == saml.IdemAcquired {
			if a, err := p.iss.Approve(ctx, req); err == nil {
				acked = a.Number
				if finish(st, a.Number, now) == nil {
					recorded = a.Number
				}
			}
		}
		crashed := p.probe.Crashed()
		st.Close()
		p.iss.Close()

		cfg := p.cfg
		cfg.DSN = "sqlite:" + p.path
		cfg.Rand = rand.NewChaCha8([32]byte{byte(n)})
		again, err := issuer.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ast, err := storesql.New(ctx, again.DB(), atRestKey, storesql.Shared(again.Group()))
		if err != nil {
			t.Fatal(err)
		}
		later := now.Add(lease + time.Second)
		retry := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_msg2", Expires: later.Add(time.Minute)}}
		res, out, err := ast.BeginRemembered(ctx, retry, caller, key, fp, lease, later, order)
		switch {
		case err != nil:
			t.Fatalf("crash at write %d: retry: %v", n, err)
		case recorded != "":
			if res != saml.IdemDone || out == nil || string(out.Payload) != recorded {
				t.Errorf("crash at write %d: the recorded outcome %s was lost: retry %s %+v", n, recorded, res, out)
			}
		case res != saml.IdemAcquired && res != saml.IdemReacquired:
			t.Errorf("crash at write %d: retry %s, want the key taken again", n, res)
		default:
			a, err := again.Approve(ctx, req)
			if err != nil {
				t.Fatalf("crash at write %d: the retry's approval: %v", n, err)
			}
			if acked != "" && (a.Number != acked || !a.Replayed) {
				t.Errorf("crash at write %d: the retry got approval %s (replayed %t), the first answer was %s", n, a.Number, a.Replayed, acked)
			}
			if err := finish(ast, a.Number, later); err != nil {
				t.Errorf("crash at write %d: finish the retry: %v", n, err)
			}
		}
		var approvals int
		var available int64
		db := again.DB()
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM issuer_approvals WHERE order_id = $1`, req.OrderID).Scan(&approvals); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT available FROM issuer_cards WHERE id = $1`, p.card.ID).Scan(&available); err != nil {
			t.Fatal(err)
		}
		if want := int64(1<<50 - 3000); approvals != 1 || available != want {
			t.Errorf("crash at write %d: %d approvals of the order, available %d; want 1 and %d", n, approvals, available, want)
		}
		ast.Close()
		again.Close()
		if !crashed {
			if n < 6 {
				t.Errorf("only %d writes in a request: nothing was crashed", n-1)
			}
			t.Logf("a request writes %d statements through the shared group; crashed at each", n-1)
			return
		}
	}
}
