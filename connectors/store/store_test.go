package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/sqlstore"
	"github.com/kecis/kecis/internal/sqlstore/sqltest"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// testPAN is a Luhn-valid test card number: it must never reach a row in
// clear.
const testPAN = "4111111111111111"

var atRestKey = bytes.Repeat([]byte{0x42}, 32)

// backend is one database the store runs on.
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return sqltest.TestSQLiteDSN(t) }},
	{"postgres", func(t *testing.T) string {
		sqltest.RequirePostgres(t)
		return sqltest.TestPostgresDSN(t)
	}},
}

// forEachBackend runs fn on a fresh database of every backend; the store
// and a second handle on the same database (to read the rows as an
// attacker with a copy of the database would) are passed in.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store, db *sqlstore.DB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			s, err := store.Open(ctx, dsn, atRestKey)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, s, db)
		})
	}
}

func TestOpenRefusesShortKey(t *testing.T) {
	if _, err := store.Open(context.Background(), sqltest.TestSQLiteDSN(t), atRestKey[:16]); err == nil {
		t.Fatal("a 16-byte at-rest key was accepted")
	}
}

func TestReplayRemember(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store, _ *sqlstore.DB) {
		ctx := context.Background()
		clock := testutil.NewClock(testutil.FixedNow)
		rc := s.Replay(clock.Now)
		exp := clock.Now().Add(3 * time.Minute)

		if err := rc.Remember(ctx, "https://a.test", "_1", exp); err != nil {
			t.Fatal(err)
		}
		if err := rc.Remember(ctx, "https://a.test", "_1", exp); !errors.Is(err, saml.ErrAlreadySeen) {
			t.Fatalf("duplicate: %v, want ErrAlreadySeen", err)
		}
		// IDs are per issuer.
		if err := rc.Remember(ctx, "https://b.test", "_1", exp); err != nil {
			t.Fatalf("same ID from another issuer: %v", err)
		}

		// Atomic: of concurrent calls with one pair exactly one wins.
		const n = 12
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = rc.Remember(ctx, "https://a.test", "_race", exp) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, saml.ErrAlreadySeen):
				t.Fatalf("concurrent Remember: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent Remember calls succeeded, want 1", won, n)
		}

		// Once the entry expired the ID may be used again (the message it
		// belonged to is outside the acceptance window by then).
		clock.Advance(3*time.Minute - time.Second)
		if err := rc.Remember(ctx, "https://a.test", "_1", clock.Now().Add(3*time.Minute)); !errors.Is(err, saml.ErrAlreadySeen) {
			t.Fatalf("before expiry: %v", err)
		}
		clock.Advance(time.Second)
		if err := rc.Remember(ctx, "https://a.test", "_1", clock.Now().Add(3*time.Minute)); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
		if err := rc.Remember(ctx, "https://a.test", "_1", clock.Now().Add(3*time.Minute)); !errors.Is(err, saml.ErrAlreadySeen) {
			t.Fatalf("reused entry: %v", err)
		}
	})
}

func TestIdempotencyStateMachine(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store, _ *sqlstore.DB) {
		ctx := context.Background()
		now := testutil.FixedNow
		lease := time.Minute
		fpA, fpB := []byte("fingerprint-A"), []byte("fingerprint-B")
		const scope = "https://merchant.test/kecis"

		// new → nil: the caller runs the service.
		if o, err := s.Begin(ctx, scope, "k1", fpA, lease, now); err != nil || o != nil {
			t.Fatalf("new key: %v, %v", o, err)
		}
		// in flight → ErrInFlight (same request), ErrMismatch (another one).
		if _, err := s.Begin(ctx, scope, "k1", fpA, lease, now.Add(time.Second)); !errors.Is(err, store.ErrInFlight) {
			t.Fatalf("in flight: %v", err)
		}
		if _, err := s.Begin(ctx, scope, "k1", fpB, lease, now.Add(time.Second)); !errors.Is(err, store.ErrMismatch) {
			t.Fatalf("in flight, other request: %v", err)
		}
		// done → the stored outcome, for the same fingerprint only.
		want := &store.Outcome{
			Status:  saml.Status{Code: saml.StatusSuccess, SubCode: "", Message: "승인 approved"},
			Payload: []byte(`<Ecom><Transaction Amount="15000" Currency="KRW"/></Ecom>`),
		}
		if err := s.Finish(ctx, scope, "k1", want, now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Begin(ctx, scope, "k1", fpA, lease, now.Add(time.Hour))
		if err != nil || got == nil {
			t.Fatalf("done: %v, %v", got, err)
		}
		if got.Status != want.Status || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("stored outcome %+v, want %+v", got, want)
		}
		if _, err := s.Begin(ctx, scope, "k1", fpB, lease, now.Add(time.Hour)); !errors.Is(err, store.ErrMismatch) {
			t.Fatalf("done, other request: %v", err)
		}
		// Keys are scoped: the same key under another scope is new.
		if o, err := s.Begin(ctx, scope+"|https://other.test", "k1", fpB, lease, now); err != nil || o != nil {
			t.Fatalf("other scope: %v, %v", o, err)
		}

		// A crashed attempt: its lease runs out and the key is taken again.
		if o, err := s.Begin(ctx, scope, "k2", fpA, lease, now); err != nil || o != nil {
			t.Fatalf("k2: %v, %v", o, err)
		}
		if _, err := s.Begin(ctx, scope, "k2", fpA, lease, now.Add(lease-time.Millisecond)); !errors.Is(err, store.ErrInFlight) {
			t.Fatalf("k2 before the lease ran out: %v", err)
		}
		if o, err := s.Begin(ctx, scope, "k2", fpA, lease, now.Add(lease)); err != nil || o != nil {
			t.Fatalf("k2 after the lease ran out: %v, %v", o, err)
		}
		if _, err := s.Begin(ctx, scope, "k2", fpA, lease, now.Add(lease+time.Second)); !errors.Is(err, store.ErrInFlight) {
			t.Fatalf("k2 retaken: the new lease must hold: %v", err)
		}

		// Abandon releases an in-flight key at once, and never a done one.
		if o, err := s.Begin(ctx, scope, "k3", fpA, lease, now); err != nil || o != nil {
			t.Fatalf("k3: %v, %v", o, err)
		}
		if err := s.Abandon(ctx, scope, "k3", now); err != nil {
			t.Fatal(err)
		}
		if o, err := s.Begin(ctx, scope, "k3", fpB, lease, now); err != nil || o != nil {
			t.Fatalf("k3 after Abandon (another request may take it): %v, %v", o, err)
		}
		if err := s.Abandon(ctx, scope, "k1", now); err != nil {
			t.Fatal(err)
		}
		if o, err := s.Begin(ctx, scope, "k1", fpA, lease, now); err != nil || o == nil {
			t.Fatalf("Abandon removed a finished key: %v, %v", o, err)
		}

		// Concurrent attempts, on a new key and on the expired lease of a
		// crashed one: exactly one runs the service.
		race := func(key string, at time.Time) {
			t.Helper()
			const n = 8
			var wg sync.WaitGroup
			type res struct {
				o   *store.Outcome
				err error
			}
			results := make([]res, n)
			for i := range n {
				wg.Go(func() {
					o, err := s.Begin(ctx, scope, key, fpA, lease, at)
					results[i] = res{o, err}
				})
			}
			wg.Wait()
			runs := 0
			for _, r := range results {
				switch {
				case r.err == nil && r.o == nil:
					runs++
				case errors.Is(r.err, store.ErrInFlight):
				default:
					t.Fatalf("concurrent Begin: %v, %v", r.o, r.err)
				}
			}
			if runs != 1 {
				t.Fatalf("%s: %d of %d concurrent attempts may run the service, want 1", key, runs, n)
			}
		}
		race("race", now)
		for i := range 5 {
			key := fmt.Sprintf("crashed-%d", i)
			if _, err := s.Begin(ctx, scope, key, fpA, lease, now); err != nil {
				t.Fatal(err)
			}
			race(key, now.Add(lease+time.Second))
		}
	})
}

// TestSealedOutcome: outcomes are sealed under the at-rest key and bound to
// their (scope, key); nothing readable is left in the database.
func TestSealedOutcome(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store, db *sqlstore.DB) {
		ctx := context.Background()
		now := testutil.FixedNow
		fp := []byte("fp")
		secret := &store.Outcome{
			Status:  saml.Status{Code: saml.StatusSuccess, Message: "virtual card issued"},
			Payload: []byte(`<kx:VirtualCard xmlns:kx="urn:kecis:ecml-ext:1.0"><kx:Number>` + testPAN + `</kx:Number></kx:VirtualCard>`),
		}
		for _, k := range []string{"k1", "k2"} {
			if _, err := s.Begin(ctx, "scopeA", k, fp, time.Minute, now); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx, "scopeA", k, secret, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Begin(ctx, "scopeB", "k1", fp, time.Minute, now); err != nil {
			t.Fatal(err)
		}

		// Scan every row and column: no clear card number, no clear text.
		for _, table := range []string{"adapter_idempotency", "adapter_replay"} {
			rows, err := db.QueryContext(ctx, `SELECT * FROM `+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			n := 0
			for rows.Next() {
				n++
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					var text string
					switch x := v.(type) {
					case []byte:
						text = string(x)
					default:
						text = fmt.Sprint(x)
					}
					if strings.Contains(text, testPAN) || ecml.ContainsPAN(text) || strings.Contains(text, "virtual card issued") {
						t.Errorf("%s.%s holds clear outcome data", table, cols[i])
					}
				}
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if table == "adapter_idempotency" && n != 3 {
				t.Fatalf("%d idempotency rows, want 3", n)
			}
		}

		// The sealed outcome of (scopeA, k1) copied onto another record does
		// not open there: the seal is bound to its scope and key.
		for _, dst := range [][2]string{{"scopeA", "k2"}, {"scopeB", "k1"}} {
			if _, err := db.ExecContext(ctx, `UPDATE adapter_idempotency SET state = 'done', outcome = (SELECT outcome FROM adapter_idempotency WHERE scope = 'scopeA' AND idem_key = 'k1') WHERE scope = $1 AND idem_key = $2`, dst[0], dst[1]); err != nil {
				t.Fatal(err)
			}
			if o, err := s.Begin(ctx, dst[0], dst[1], fp, time.Minute, now); err == nil {
				t.Fatalf("the outcome of (scopeA, k1) opened under %v: %+v", dst, o)
			}
		}
		// The original still opens under its own (scope, key)…
		if o, err := s.Begin(ctx, "scopeA", "k1", fp, time.Minute, now); err != nil || o == nil || !bytes.Equal(o.Payload, secret.Payload) {
			t.Fatalf("own record: %v, %v", o, err)
		}
		// …and not under another at-rest key.
		other, err := store.New(ctx, db, bytes.Repeat([]byte{0x43}, 32))
		if err != nil {
			t.Fatal(err)
		}
		if o, err := other.Begin(ctx, "scopeA", "k1", fp, time.Minute, now); err == nil {
			t.Fatalf("opened under another at-rest key: %+v", o)
		}
	})
}

// TestObjects: owners of objects (KECIS §13.3). An order number is the
// owner's own, an approval number one object; another owner's object is
// ErrNotFound like an unknown one; a refusal writes nothing; no ID reaches
// a row in clear.
func TestObjects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *store.Store, db *sqlstore.DB) {
		ctx := context.Background()
		now := testutil.FixedNow
		const a, b = "https://a.test", "https://b.test"
		order := func(id string) store.ObjectRef { return store.ObjectRef{Kind: "card:order", ID: id, PerOwner: true} }
		approval := func(id string) store.ObjectRef { return store.ObjectRef{Kind: "card:approval", ID: id} }
		fp := []byte("fp")

		// A creates its order testPAN (an order number may hold anything)
		// with the key, and its approval N1 with the outcome.
		if o, err := s.BeginObjects(ctx, a, "k1", fp, time.Minute, now, store.Objects{Owner: a, Claim: []store.ObjectRef{order(testPAN)}}); err != nil || o != nil {
			t.Fatalf("BeginObjects: %v, %v", o, err)
		}
		done := &store.Outcome{Status: saml.Status{Code: saml.StatusSuccess}}
		if err := s.FinishObjects(ctx, a, "k1", done, store.Objects{Owner: a, Claim: []store.ObjectRef{approval("N1")}}, now); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			owner string
			ref   store.ObjectRef
			ok    bool
		}{
			{a, order(testPAN), true}, {a, approval("N1"), true},
			{b, order(testPAN), false}, {b, approval("N1"), false},
			{a, order("O-2"), false}, {a, approval("N2"), false},
			{a, store.ObjectRef{Kind: "escrow:deal", ID: "N1"}, false}, // kinds do not mix
		} {
			err := s.Objects(ctx, store.Objects{Owner: c.owner, Check: []store.ObjectRef{c.ref}}, now)
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrNotFound)) {
				t.Errorf("%s checks %+v: %v", c.owner, c.ref, err)
			}
		}

		// B's own order of the same number is B's; A's approval is not.
		if err := s.Objects(ctx, store.Objects{Owner: b, Claim: []store.ObjectRef{order(testPAN)}}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Objects(ctx, store.Objects{Owner: b, Check: []store.ObjectRef{order(testPAN)}}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Objects(ctx, store.Objects{Owner: b, Claim: []store.ObjectRef{approval("N1")}}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("B claimed A's approval: %v", err)
		}

		// A refused Begin leaves the key untaken and claims nothing.
		_, err := s.BeginObjects(ctx, b, "k2", fp, time.Minute, now, store.Objects{Owner: b,
			Claim: []store.ObjectRef{order("O-9")}, Check: []store.ObjectRef{approval("N1")}})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("BeginObjects naming A's approval: %v", err)
		}
		if err := s.Objects(ctx, store.Objects{Owner: b, Check: []store.ObjectRef{order("O-9")}}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused request's order was claimed: %v", err)
		}
		if o, err := s.Begin(ctx, b, "k2", fp, time.Minute, now); err != nil || o != nil {
			t.Fatalf("the refused request's key: %v, %v", o, err)
		}
		// A refused Finish records nothing: the key stays in flight.
		if err := s.FinishObjects(ctx, b, "k2", done, store.Objects{Owner: b, Claim: []store.ObjectRef{approval("N1")}}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("FinishObjects claiming A's approval: %v", err)
		}
		if _, err := s.Begin(ctx, b, "k2", fp, time.Minute, now); !errors.Is(err, store.ErrInFlight) {
			t.Fatalf("after a refused Finish: %v, want in flight", err)
		}

		// No ID in clear.
		rows, err := db.QueryContext(ctx, `SELECT kind, scope, ref, owner FROM adapter_objects`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
			var kind, scope, owner string
			var ref []byte
			if err := rows.Scan(&kind, &scope, &ref, &owner); err != nil {
				t.Fatal(err)
			}
			for _, v := range []string{kind, scope, string(ref), owner} {
				if ecml.ContainsPAN(v) || strings.Contains(v, "N1") {
					t.Errorf("a row holds an object ID in clear: %q", v)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("%d object rows, want 3 (A's order and approval, B's order)", n)
		}
	})
}
