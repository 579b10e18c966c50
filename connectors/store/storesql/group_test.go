package storesql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/saml"
)

var (
	ctx     = context.Background()
	testKey = bytes.Repeat([]byte{0x42}, 32)
	t0      = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

const (
	caller = "https://hub.test/kecis|https://shop.test"
	owner  = "https://shop.test"
)

// probed opens the store on a probed SQLite file.
func probed(t *testing.T) (*Store, *sqlprobe.Probe, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kecis.db")
	db, p, err := sqlprobe.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, db, testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p, path
}

// reopen opens the file again with a plain store (the restart).
func reopen(t *testing.T, path string) *Store {
	t.Helper()
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, db, testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGroupCommit: writes that wait while the writer is busy share one
// commit, each with its own result: of four Remembers of one message ID
// exactly one wins, whichever group they share; the others all succeed.
func TestGroupCommit(t *testing.T) {
	s, p, path := probed(t)
	rc := s.Replay(func() time.Time { return t0 })

	// Alone, a write is a commit of its own.
	before := p.Counts()
	if err := rc.Remember(ctx, owner, "_alone", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if c := p.Counts().Sub(before); c.Commits != 1 {
		t.Fatalf("one Remember: %d commits", c.Commits)
	}

	// Another connection holds the write lock: the writer stops at the
	// first group it takes, and the other writes queue behind it.
	other, err := sqlstore.Open(ctx, "sqlite:"+path)
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
	before = p.Counts()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("_%d", i)
			if i%4 == 0 {
				id = "_dup"
			}
			errs[i] = rc.Remember(ctx, owner, id, t0.Add(time.Minute))
		}()
	}
	for k := 0; ; k++ {
		waiting, running := s.group.Queued()
		if waiting+running == n {
			break
		}
		if k > 10_000_000 {
			t.Fatalf("%d writes queued and %d running, want %d", waiting, running, n)
		}
		runtime.Gosched()
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Two commits: the group the writer took, then the queue behind it.
	if c := p.Counts().Sub(before); c.Commits > 2 || c.Writes != n {
		t.Errorf("%d Remembers: %d commits, %d writes; want at most 2 commits, %d writes", n, c.Commits, c.Writes, n)
	}
	won := 0
	for i, err := range errs {
		switch {
		case i%4 == 0 && err == nil:
			won++
		case i%4 == 0 && errors.Is(err, saml.ErrAlreadySeen):
		case err != nil:
			t.Errorf("Remember %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d Remembers of one message ID won, want 1", won)
	}
	var rows int
	if err := other.QueryRowContext(ctx, `SELECT COUNT(*) FROM adapter_replay`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := 1 + n - 3; rows != want {
		t.Errorf("%d replay records, want %d", rows, want)
	}
}

// TestRequestSurvivesCrashAtEveryWrite kills the writer at each write of
// one request as the SDK's Handler makes it — the key taken with the
// message's replay record and the order claimed, then the outcome recorded
// with the approval claimed — restarts on the same file and retries with the same key: an
// outcome that was recorded is the retry's answer, unchanged; one that
// was not leaves the key to exactly one new attempt (at once, or after the
// lease of a key taken before the crash); never two outcomes.
func TestRequestSurvivesCrashAtEveryWrite(t *testing.T) {
	const key, lease = "order-7/approve", time.Minute
	fp := []byte("fingerprint")
	order := store.ObjectRef{Kind: "card:order", ID: "order-7", PerOwner: true}
	approval := store.ObjectRef{Kind: "card:approval", ID: "12345678"}
	first := &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}, Payload: []byte("<approved n='1'/>")}
	for n := int64(1); ; n++ {
		s, p, path := probed(t)
		p.CrashAt(n)
		seen := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_msg1", Expires: t0.Add(time.Minute)}}
		recorded := func() bool {
			res, _, err := s.BeginRemembered(ctx, seen, caller, key, fp, lease, t0, store.Objects{Owner: owner, Claim: []store.ObjectRef{order}})
			if err != nil || res != saml.IdemAcquired {
				return false
			}
			return s.FinishObjects(ctx, caller, key, first, store.Objects{Owner: owner, Claim: []store.ObjectRef{approval}}, t0) == nil
		}()
		crashed := p.Crashed()
		s.Close()

		again := reopen(t, path)
		now := t0.Add(time.Second)
		// The retry is a new message with the same key.
		retry := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_msg2", Expires: t0.Add(time.Minute)}}
		res, out, err := again.BeginRemembered(ctx, retry, caller, key, fp, lease, now, store.Objects{Owner: owner, Claim: []store.ObjectRef{order}})
		if err != nil {
			t.Fatalf("crash at write %d: retry: %v", n, err)
		}
		switch {
		case recorded:
			if res != saml.IdemDone || out == nil || !bytes.Equal(out.Payload, first.Payload) {
				t.Errorf("crash at write %d: the recorded outcome was lost: retry %s %+v", n, res, out)
			}
		case res == saml.IdemInFlight:
			// The key was taken before the crash: the retry after the
			// lease takes it again.
			now = t0.Add(lease + time.Second)
			if res, _, err = again.BeginObjects(ctx, caller, key, fp, lease, now, store.Objects{Owner: owner, Claim: []store.ObjectRef{order}}); err != nil || res != saml.IdemReacquired {
				t.Errorf("crash at write %d: after the lease: %s, %v; want reacquired", n, res, err)
			}
		case res != saml.IdemAcquired:
			t.Errorf("crash at write %d: retry %s", n, res)
		}
		if res == saml.IdemAcquired || res == saml.IdemReacquired {
			second := &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}, Payload: []byte("<approved n='2'/>")}
			if err := again.FinishObjects(ctx, caller, key, second, store.Objects{Owner: owner, Claim: []store.ObjectRef{approval}}, now); err != nil {
				t.Errorf("crash at write %d: finish the retry: %v", n, err)
			}
			// One outcome: every later retry answers the retry's.
			if res, out, _ := again.BeginObjects(ctx, caller, key, fp, lease, now, store.Objects{}); res != saml.IdemDone || !bytes.Equal(out.Payload, second.Payload) {
				t.Errorf("crash at write %d: after the retry: %s %+v", n, res, out)
			}
		}
		again.Close()
		if !crashed {
			if n < 4 {
				t.Errorf("only %d writes in a request: nothing was crashed", n-1)
			}
			return
		}
	}
}

// BenchmarkRequestCost reports what one keyed request (a card:approve)
// costs the adapter store as the SDK's Handler makes it — the key taken
// with the message's replay record and the order claimed, then the
// outcome recorded with the approval claimed — with
// one client and with 16 at once: write transactions (txns/op; one WAL
// fsync each under synchronous=FULL, fsyncs/op), writing statements,
// statements (the group's SAVEPOINTs included) and the process's CPU time.
// With 16 clients the requests' writes share commits (group).
//
//	go test ./connectors/store/storesql -run '^$' -bench RequestCost -benchtime 2000x
func BenchmarkRequestCost(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "kecis.db")
			db, p, err := sqlprobe.Open(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(ctx, db, testKey)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var seq atomic.Int64
			out := &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}, Payload: []byte("<approved/>")}
			request := func() error {
				n := seq.Add(1)
				id := fmt.Sprint(n)
				seen := []store.ReplayEntry{{Issuer: "https://hub.test", ID: "_" + id, Expires: t0.Add(time.Minute)}}
				res, _, err := s.BeginRemembered(ctx, seen, caller, "k"+id, []byte("fp"), time.Minute, t0,
					store.Objects{Owner: owner, Claim: []store.ObjectRef{{Kind: "card:order", ID: "o" + id, PerOwner: true}}})
				if err != nil || res != saml.IdemAcquired {
					return fmt.Errorf("begin: %s, %v", res, err)
				}
				return s.FinishObjects(ctx, caller, "k"+id, out, store.Objects{Owner: owner,
					Claim: []store.ObjectRef{{Kind: "card:approval", ID: fmt.Sprintf("%08d", n)}}}, t0)
			}
			before, cpu := p.Counts(), cpuTime()
			stop := p.Record()
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			if clients == 1 {
				for b.Loop() {
					if err := request(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := request(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			c, stmts, used := p.Counts().Sub(before), len(stop()), cpuTime()-cpu
			n := float64(b.N)
			b.ReportMetric(float64(c.Commits)/n, "txns/op")
			b.ReportMetric(float64(c.Commits)/n, "fsyncs/op")
			b.ReportMetric(float64(c.Writes)/n, "writes/op")
			b.ReportMetric(float64(stmts)/n, "stmts/op")
			b.ReportMetric(float64(used.Microseconds())/n, "cpu-µs/op")
		})
	}
}
