// Package conformance is the test suite the adapter store
// (connectors/store/storesql) runs on every database it supports — the
// SQLite store's test (connectors/store/sqlitestore) and the PostgreSQL
// store's (connectors/store/pgstore) —, as the hub's
// store runs federation/store/conformance (after dex storage/conformance):
// RunTests checks each behaviour on a fresh database per subtest,
// RunConcurrencyTests checks that two stores on one database — two
// replicas of a provider's adapter — cannot both win a replay, an
// idempotency key or an object.
//
// A database's test is a few lines:
//
//	func TestSQLite(t *testing.T) {
//		conformance.RunTests(t, func(t *testing.T) string { return sqltest.TestSQLiteDSN(t) })
//	}
//
// Contract details the suite pins down beyond the methods' comments:
//   - Begin speaks the idempotency vocabulary the hub's guard speaks
//     (saml.IdemResult, KECIS §7.1): IdemAcquired for a new key,
//     IdemReacquired for a key whose lease ran out, IdemDone with the
//     stored outcome, IdemInFlight and IdemMismatch as refusals that take
//     nothing, with a nil error;
//   - the fingerprint is compared first: another request under a key is
//     IdemMismatch whether the key is in flight, done or expired;
//   - a lease holds while now < lease end, to the microsecond; a retaken
//     key gets a new lease that holds as the first did;
//   - an outcome round-trips exactly (status, message in any script,
//     payload bytes) and only under its own (scope, key) and at-rest key;
//   - Abandon frees an in-flight key at once and never a finished one;
//   - an object another owner holds is ErrNotFound, exactly as an unknown
//     one; a refusal writes nothing (no claim, no key, no outcome);
//   - no row holds a card number, an object ID or an outcome in clear;
//   - every time comes from the test (fixed instants): the store never
//     reads the clock.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// t0 is the instant the suite runs at; it has a microsecond fraction so
// that a database losing sub-second precision fails the lease tests.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

const lease = time.Minute

// AtRestKey is the key the suite's stores seal with.
var AtRestKey = bytes.Repeat([]byte{0x42}, 32)

// testPAN is a Luhn-valid test card number: it must never reach a row in
// clear.
const testPAN = "4111111111111111"

const (
	scope = "https://pg.test/kecis|https://shop.test"
	key   = "order-1/approve"
	ownA  = "https://a.test"
	ownB  = "https://b.test"
)

var fpA, fpB = []byte("fingerprint-A"), []byte("fingerprint-B")

// RunTests runs the behavioural suite. newDSN must return the DSN of a
// fresh, empty database for each call, which several Opens reach as one
// (a file, a server's schema; not sqlite::memory:). The suite opens and
// closes the stores.
func RunTests(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Migrations", testMigrations},
		{"AtRestKeyLength", testAtRestKeyLength},
		{"ReplayRemember", testReplayRemember},
		{"ReplayExpiry", testReplayExpiry},
		{"ReplayWithKey", testReplayWithKey},
		{"IdemAcquire", testIdemAcquire},
		{"IdemInFlight", testIdemInFlight},
		{"IdemMismatch", testIdemMismatch},
		{"IdemReplay", testIdemReplay},
		{"IdemScopes", testIdemScopes},
		{"IdemLeaseExpiry", testIdemLeaseExpiry},
		{"IdemAbandon", testIdemAbandon},
		{"IdemDoneIgnoresObjects", testIdemDoneIgnoresObjects},
		{"ObjectsOwners", testObjectsOwners},
		{"ObjectsPerOwner", testObjectsPerOwner},
		{"ObjectsBeginRefusal", testObjectsBeginRefusal},
		{"ObjectsFinishRefusal", testObjectsFinishRefusal},
		{"ObjectsWithoutOwner", testObjectsWithoutOwner},
		{"SealedAtRest", testSealedAtRest},
		{"SealBoundToRecord", testSealBoundToRecord},
		{"SealBoundToAtRestKey", testSealBoundToAtRestKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newFixture(t, newDSN(t)))
		})
	}
}

// ---------------------------------------------------------------------------
// helpers

// fixture is one fresh database: the store under test and a second handle
// that reads the rows as someone with a copy of the database would.
type fixture struct {
	ctx context.Context
	dsn string
	s   *storesql.Store
	raw *sqlstore.DB
}

func newFixture(t *testing.T, dsn string) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	f := &fixture{ctx: ctx, dsn: dsn}
	f.s = f.open(t, AtRestKey)
	raw, err := sqlstore.Open(ctx, dsn)
	must(t, err, "open the database")
	t.Cleanup(func() { raw.Close() })
	f.raw = raw
	return f
}

// open opens another store on the fixture's database, closed when the
// test ends.
func (f *fixture) open(t *testing.T, atRestKey []byte) *storesql.Store {
	t.Helper()
	s, err := storesql.Open(f.ctx, f.dsn, atRestKey)
	if err != nil {
		t.Fatalf("Open(%s): %v", sqlstore.RedactDSN(f.dsn), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mustErr fails unless err matches want (errors.Is).
func mustErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// begin calls BeginObjects and fails unless it finds want; it returns the
// outcome.
func begin(t *testing.T, f *fixture, s *storesql.Store, scope, key string, fp []byte, now time.Time, obj store.Objects, want saml.IdemResult) *store.Outcome {
	t.Helper()
	res, o, err := s.BeginObjects(f.ctx, scope, key, fp, lease, now, obj)
	if err != nil {
		t.Fatalf("Begin(%s, %s) at %s: %v", scope, key, now.Sub(t0), err)
	}
	if res != want {
		t.Fatalf("Begin(%s, %s) at %s = %s, want %s", scope, key, now.Sub(t0), res, want)
	}
	if (o != nil) != (res == saml.IdemDone) {
		t.Fatalf("Begin = %s with outcome %+v: an outcome comes with IdemDone and only then", res, o)
	}
	return o
}

// beginKey is begin on the suite's (scope, key) without objects.
func beginKey(t *testing.T, f *fixture, fp []byte, now time.Time, want saml.IdemResult) *store.Outcome {
	t.Helper()
	return begin(t, f, f.s, scope, key, fp, now, store.Objects{}, want)
}

func sameOutcome(t *testing.T, what string, got, want *store.Outcome) {
	t.Helper()
	if got == nil || got.Status != want.Status || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("%s: outcome %+v, want %+v", what, got, want)
	}
}

var approved = &store.Outcome{
	Status:  saml.Status{Code: saml.StatusSuccess, Message: "승인 approved"},
	Payload: []byte(`<Ecom><Transaction Amount="15000" Currency="KRW"/></Ecom>`),
}

func order(id string) store.ObjectRef {
	return store.ObjectRef{Kind: "card:order", ID: id, PerOwner: true}
}

func approval(id string) store.ObjectRef { return store.ObjectRef{Kind: "card:approval", ID: id} }

func claim(owner string, refs ...store.ObjectRef) store.Objects {
	return store.Objects{Owner: owner, Claim: refs}
}

func check(owner string, refs ...store.ObjectRef) store.Objects {
	return store.Objects{Owner: owner, Check: refs}
}

// ---------------------------------------------------------------------------
// Opening

func testMigrations(t *testing.T, f *fixture) {
	vs, err := f.raw.AppliedVersions(f.ctx, storesql.Component)
	must(t, err, "AppliedVersions")
	if len(vs) == 0 || vs[0] != 1 {
		t.Fatalf("AppliedVersions(%s) = %v", storesql.Component, vs)
	}
	// Opening again (a restart, another replica) applies nothing new and
	// keeps what is stored.
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	again := f.open(t, AtRestKey)
	vs2, err := f.raw.AppliedVersions(f.ctx, storesql.Component)
	must(t, err, "AppliedVersions after a second Open")
	if fmt.Sprint(vs2) != fmt.Sprint(vs) {
		t.Fatalf("a second Open applied %v, first %v", vs2, vs)
	}
	begin(t, f, again, scope, key, fpA, at(time.Second), store.Objects{}, saml.IdemInFlight)
}

func testAtRestKeyLength(t *testing.T, f *fixture) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if s, err := storesql.Open(f.ctx, f.dsn, bytes.Repeat([]byte{1}, n)); err == nil {
			s.Close()
			t.Errorf("Open accepted a %d-byte at-rest key", n)
		}
		if _, err := storesql.New(f.ctx, f.raw, bytes.Repeat([]byte{1}, n)); err == nil {
			t.Errorf("New accepted a %d-byte at-rest key", n)
		}
	}
}

// ---------------------------------------------------------------------------
// Replay cache

func testReplayRemember(t *testing.T, f *fixture) {
	rc := f.s.Replay(func() time.Time { return t0 })
	exp := at(3 * time.Minute)
	must(t, rc.Remember(f.ctx, ownA, "_1", exp), "Remember")
	mustErr(t, rc.Remember(f.ctx, ownA, "_1", exp), saml.ErrAlreadySeen, "the same ID again")
	// IDs are per issuer.
	must(t, rc.Remember(f.ctx, ownB, "_1", exp), "the same ID from another issuer")
	must(t, rc.Remember(f.ctx, ownA, "_2", exp), "another ID")
	// Another store on the database sees them.
	mustErr(t, f.open(t, AtRestKey).Replay(func() time.Time { return t0 }).Remember(f.ctx, ownB, "_1", exp), saml.ErrAlreadySeen, "the ID at another replica")
}

func testReplayExpiry(t *testing.T, f *fixture) {
	now := t0
	rc := f.s.Replay(func() time.Time { return now })
	must(t, rc.Remember(f.ctx, ownA, "_1", at(3*time.Minute)), "Remember")
	// Live while now < expires; then the ID may be used again (its message
	// is outside the acceptance window by then).
	now = at(3*time.Minute - time.Microsecond)
	mustErr(t, rc.Remember(f.ctx, ownA, "_1", now.Add(3*time.Minute)), saml.ErrAlreadySeen, "just before expiry")
	now = at(3 * time.Minute)
	must(t, rc.Remember(f.ctx, ownA, "_1", now.Add(3*time.Minute)), "at expiry")
	mustErr(t, rc.Remember(f.ctx, ownA, "_1", now.Add(3*time.Minute)), saml.ErrAlreadySeen, "the renewed entry")
}

// testReplayWithKey: BeginRemembered records the request's message ID in
// the transaction that takes the key; an ID already live refuses the
// request and takes nothing; a refusal records nothing; a retry answered
// from its stored outcome records its own ID.
func testReplayWithKey(t *testing.T, f *fixture) {
	rc := f.s.Replay(func() time.Time { return t0 })
	seen := func(id string) []store.ReplayEntry {
		return []store.ReplayEntry{{Issuer: ownA, ID: id, Expires: at(3 * time.Minute)}}
	}
	res, _, err := f.s.BeginRemembered(f.ctx, seen("_1"), scope, key, fpA, lease, at(0), claim(ownA, order("O-1")))
	if err != nil || res != saml.IdemAcquired {
		t.Fatalf("BeginRemembered = %s, %v", res, err)
	}
	mustErr(t, rc.Remember(f.ctx, ownA, "_1", at(3*time.Minute)), saml.ErrAlreadySeen, "the ID recorded with the key")
	must(t, f.s.Objects(f.ctx, check(ownA, order("O-1")), at(0)), "the order claimed with the key")

	// The same message again: a replay, and the key is untouched.
	res, _, err = f.s.BeginRemembered(f.ctx, seen("_1"), scope, "k2", fpA, lease, at(time.Second), store.Objects{})
	mustErr(t, err, saml.ErrAlreadySeen, "the same message with another key")
	if res != "" {
		t.Fatalf("a replay answered %s", res)
	}
	beginKey(t, f, fpA, at(time.Second), saml.IdemInFlight)
	res, _, _ = f.s.Begin(f.ctx, scope, "k2", fpA, lease, at(time.Second))
	if res != saml.IdemAcquired {
		t.Fatalf("the key a replay named was taken: %s", res)
	}

	// A refusal (the key in flight) records nothing: the message's ID may
	// come again.
	res, _, err = f.s.BeginRemembered(f.ctx, seen("_2"), scope, key, fpA, lease, at(2*time.Second), store.Objects{})
	if err != nil || res != saml.IdemInFlight {
		t.Fatalf("BeginRemembered on a key in flight = %s, %v", res, err)
	}
	must(t, rc.Remember(f.ctx, ownA, "_2", at(3*time.Minute)), "the refused message's ID")

	// A retry answered from the stored outcome records its ID.
	must(t, f.s.FinishObjects(f.ctx, scope, key, approved, store.Objects{}, at(3*time.Second)), "FinishObjects")
	res, o, err := f.s.BeginRemembered(f.ctx, seen("_3"), scope, key, fpA, lease, at(4*time.Second), store.Objects{})
	if err != nil || res != saml.IdemDone {
		t.Fatalf("BeginRemembered on a finished key = %s, %v", res, err)
	}
	sameOutcome(t, "the retry", o, approved)
	mustErr(t, rc.Remember(f.ctx, ownA, "_3", at(3*time.Minute)), saml.ErrAlreadySeen, "the retry's ID")
}

// ---------------------------------------------------------------------------
// Idempotency records (KECIS §7.1)

func testIdemAcquire(t *testing.T, f *fixture) {
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	// Begin without objects is BeginObjects with none.
	res, o, err := f.s.Begin(f.ctx, scope, "k2", fpA, lease, at(0))
	if err != nil || res != saml.IdemAcquired || o != nil {
		t.Fatalf("Begin = %s, %+v, %v", res, o, err)
	}
}

func testIdemInFlight(t *testing.T, f *fixture) {
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	beginKey(t, f, fpA, at(time.Second), saml.IdemInFlight)
	beginKey(t, f, fpA, at(lease-time.Microsecond), saml.IdemInFlight)
	// The refusals took nothing: the first lease still ends where it did.
	beginKey(t, f, fpA, at(lease), saml.IdemReacquired)
	if st, refused := saml.IdemInFlight.Refusal(); !refused || st.SubCode != saml.CodeInFlight {
		t.Fatalf("IdemInFlight refuses with %+v", st)
	}
}

func testIdemMismatch(t *testing.T, f *fixture) {
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	// In flight, expired, done: another request under the key is refused.
	beginKey(t, f, fpB, at(time.Second), saml.IdemMismatch)
	beginKey(t, f, fpB, at(2*lease), saml.IdemMismatch)
	beginKey(t, f, fpA, at(2*lease), saml.IdemReacquired)
	must(t, f.s.Finish(f.ctx, scope, key, approved, at(2*lease+time.Second)), "Finish")
	beginKey(t, f, fpB, at(time.Hour), saml.IdemMismatch)
	sameOutcome(t, "the key after refusals", beginKey(t, f, fpA, at(time.Hour), saml.IdemDone), approved)
	if st, refused := saml.IdemMismatch.Refusal(); !refused || st.SubCode != saml.CodeIdempotencyConflict {
		t.Fatalf("IdemMismatch refuses with %+v", st)
	}
}

func testIdemReplay(t *testing.T, f *fixture) {
	outcomes := []*store.Outcome{
		approved,
		{Status: saml.Status{Code: saml.StatusSuccess}},
		{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "한도 초과 — limit & <reached>"}},
		{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.StatusRequestDenied}, Payload: []byte("<kx:A xmlns:kx=\"urn:x\">\r\n\t가 &amp;</kx:A>")},
	}
	for i, want := range outcomes {
		k := fmt.Sprintf("k%d", i)
		begin(t, f, f.s, scope, k, fpA, at(0), store.Objects{}, saml.IdemAcquired)
		must(t, f.s.Finish(f.ctx, scope, k, want, at(time.Second)), "Finish")
		// Every retry of the same request gets the outcome, long after the
		// lease, from any replica.
		sameOutcome(t, k, begin(t, f, f.s, scope, k, fpA, at(2*time.Second), store.Objects{}, saml.IdemDone), want)
		sameOutcome(t, k+" later", begin(t, f, f.s, scope, k, fpA, at(30*24*time.Hour), store.Objects{}, saml.IdemDone), want)
	}
	other := f.open(t, AtRestKey)
	sameOutcome(t, "at another replica", begin(t, f, other, scope, "k0", fpA, at(time.Hour), store.Objects{}, saml.IdemDone), approved)
}

func testIdemScopes(t *testing.T, f *fixture) {
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	must(t, f.s.Finish(f.ctx, scope, key, approved, at(time.Second)), "Finish")
	// The same key under another scope (another merchant of the same PG,
	// the PG on its own) is another key.
	for _, sc := range []string{saml.IdemScope("https://pg.test/kecis", ""), saml.IdemScope("https://pg.test/kecis", "https://other-shop.test")} {
		begin(t, f, f.s, sc, key, fpB, at(2*time.Second), store.Objects{}, saml.IdemAcquired)
	}
	sameOutcome(t, "the first scope", beginKey(t, f, fpA, at(3*time.Second), saml.IdemDone), approved)
}

func testIdemLeaseExpiry(t *testing.T, f *fixture) {
	// A crashed attempt: its lease runs out and the key is taken again,
	// with a lease of its own.
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	beginKey(t, f, fpA, at(lease-time.Microsecond), saml.IdemInFlight)
	beginKey(t, f, fpA, at(lease), saml.IdemReacquired)
	beginKey(t, f, fpA, at(lease+time.Second), saml.IdemInFlight)
	beginKey(t, f, fpA, at(2*lease-time.Microsecond), saml.IdemInFlight)
	must(t, f.s.Finish(f.ctx, scope, key, approved, at(lease+time.Second)), "Finish by the second attempt")
	sameOutcome(t, "after the second attempt", beginKey(t, f, fpA, at(3*lease), saml.IdemDone), approved)
}

func testIdemAbandon(t *testing.T, f *fixture) {
	// An attempt without an outcome releases the key at once; the next
	// request under it, whatever it is, takes it.
	beginKey(t, f, fpA, at(0), saml.IdemAcquired)
	must(t, f.s.Abandon(f.ctx, scope, key, at(time.Second)), "Abandon")
	beginKey(t, f, fpB, at(time.Second), saml.IdemAcquired)
	// A finished key is never released.
	must(t, f.s.Finish(f.ctx, scope, key, approved, at(2*time.Second)), "Finish")
	must(t, f.s.Abandon(f.ctx, scope, key, at(3*time.Second)), "Abandon of a finished key")
	sameOutcome(t, "after Abandon", beginKey(t, f, fpB, at(3*time.Second), saml.IdemDone), approved)
	// An unknown key: nothing to do.
	must(t, f.s.Abandon(f.ctx, scope, "unknown", at(0)), "Abandon of an unknown key")
}

func testIdemDoneIgnoresObjects(t *testing.T, f *fixture) {
	// A finished key answers its outcome without looking at the objects
	// (here an approval nobody holds): its scope already holds the owner,
	// and the objects of the first attempt are claimed.
	begin(t, f, f.s, scope, key, fpA, at(0), claim(ownA, order("O-1")), saml.IdemAcquired)
	must(t, f.s.FinishObjects(f.ctx, scope, key, approved, claim(ownA, approval("N1")), at(time.Second)), "FinishObjects")
	sameOutcome(t, "retry", begin(t, f, f.s, scope, key, fpA, at(time.Minute), check(ownA, order("O-1"), approval("N-unknown")), saml.IdemDone), approved)
	must(t, f.s.Objects(f.ctx, check(ownA, order("O-1"), approval("N1")), at(time.Minute)), "the first attempt's objects")
}

// ---------------------------------------------------------------------------
// Owners of objects (KECIS §13.3)

func testObjectsOwners(t *testing.T, f *fixture) {
	// A creates its order testPAN (an order number may hold anything)
	// with the key, and its approval N1 with the outcome.
	begin(t, f, f.s, ownA, "k1", fpA, at(0), claim(ownA, order(testPAN)), saml.IdemAcquired)
	must(t, f.s.FinishObjects(f.ctx, ownA, "k1", approved, claim(ownA, approval("N1")), at(time.Second)), "FinishObjects")
	for _, c := range []struct {
		owner string
		ref   store.ObjectRef
		ok    bool
	}{
		{ownA, order(testPAN), true}, {ownA, approval("N1"), true},
		{ownB, order(testPAN), false}, {ownB, approval("N1"), false},
		{ownA, order("O-2"), false}, {ownA, approval("N2"), false},
		{ownA, store.ObjectRef{Kind: "escrow:deal", ID: "N1"}, false}, // kinds do not mix
	} {
		err := f.s.Objects(f.ctx, check(c.owner, c.ref), at(time.Minute))
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("%s checks %+v: %v", c.owner, c.ref, err)
		}
	}
	// Another owner's object and an unknown one are one error.
	errOther := f.s.Objects(f.ctx, check(ownB, approval("N1")), at(time.Minute))
	errUnknown := f.s.Objects(f.ctx, check(ownB, approval("N9")), at(time.Minute))
	if !errors.Is(errOther, store.ErrNotFound) || !errors.Is(errUnknown, store.ErrNotFound) {
		t.Fatalf("another's: %v; unknown: %v", errOther, errUnknown)
	}
	// A claim already recorded for its owner is no refusal (an inquire
	// naming its own approval twice).
	must(t, f.s.Objects(f.ctx, claim(ownA, approval("N1")), at(time.Minute)), "A's own claim again")
}

func testObjectsPerOwner(t *testing.T, f *fixture) {
	must(t, f.s.Objects(f.ctx, claim(ownA, order("O-1"), approval("N1")), at(0)), "A's objects")
	// B's own order of the same number is B's; A's approval is not.
	must(t, f.s.Objects(f.ctx, claim(ownB, order("O-1")), at(0)), "B's order O-1")
	must(t, f.s.Objects(f.ctx, check(ownB, order("O-1")), at(0)), "B checks its order")
	must(t, f.s.Objects(f.ctx, check(ownA, order("O-1")), at(0)), "A checks its order")
	mustErr(t, f.s.Objects(f.ctx, claim(ownB, approval("N1")), at(0)), store.ErrNotFound, "B claims A's approval")
	mustErr(t, f.s.Objects(f.ctx, check(ownB, approval("N1")), at(0)), store.ErrNotFound, "B checks A's approval")
}

func testObjectsBeginRefusal(t *testing.T, f *fixture) {
	must(t, f.s.Objects(f.ctx, claim(ownA, approval("N1")), at(0)), "A's approval")
	// A refused Begin leaves the key untaken and claims nothing.
	res, o, err := f.s.BeginObjects(f.ctx, ownB, "k2", fpA, lease, at(0), store.Objects{Owner: ownB,
		Claim: []store.ObjectRef{order("O-9")}, Check: []store.ObjectRef{approval("N1")}})
	if !errors.Is(err, store.ErrNotFound) || o != nil {
		t.Fatalf("BeginObjects naming A's approval: %s, %+v, %v", res, o, err)
	}
	if _, refused := res.Refusal(); refused || res == saml.IdemAcquired {
		t.Fatalf("BeginObjects refused for an object answers %s", res)
	}
	mustErr(t, f.s.Objects(f.ctx, check(ownB, order("O-9")), at(0)), store.ErrNotFound, "the refused request's order")
	begin(t, f, f.s, ownB, "k2", fpA, at(0), store.Objects{}, saml.IdemAcquired)
	// Refused when the key is retaken after its lease too.
	begin(t, f, f.s, ownB, "k3", fpA, at(0), store.Objects{}, saml.IdemAcquired)
	_, _, err = f.s.BeginObjects(f.ctx, ownB, "k3", fpA, lease, at(lease), check(ownB, approval("N1")))
	mustErr(t, err, store.ErrNotFound, "BeginObjects retaking a key, naming A's approval")
	begin(t, f, f.s, ownB, "k3", fpA, at(lease), store.Objects{}, saml.IdemReacquired)
}

func testObjectsFinishRefusal(t *testing.T, f *fixture) {
	must(t, f.s.Objects(f.ctx, claim(ownA, approval("N1")), at(0)), "A's approval")
	begin(t, f, f.s, ownB, "k", fpA, at(0), claim(ownB, order("O-1")), saml.IdemAcquired)
	// The provider answered with A's approval: nothing is recorded, the key
	// stays in flight.
	mustErr(t, f.s.FinishObjects(f.ctx, ownB, "k", approved, claim(ownB, approval("N1")), at(time.Second)), store.ErrNotFound, "FinishObjects claiming A's approval")
	begin(t, f, f.s, ownB, "k", fpA, at(2*time.Second), store.Objects{}, saml.IdemInFlight)
	mustErr(t, f.s.Objects(f.ctx, check(ownA, order("O-1")), at(0)), store.ErrNotFound, "B's order is not A's")
	// The refusal recorded as the outcome instead.
	refusal := &store.Outcome{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "no such approval"}}
	must(t, f.s.Finish(f.ctx, ownB, "k", refusal, at(3*time.Second)), "Finish")
	sameOutcome(t, "the refusal", begin(t, f, f.s, ownB, "k", fpA, at(4*time.Second), store.Objects{}, saml.IdemDone), refusal)
	mustErr(t, f.s.Objects(f.ctx, check(ownB, approval("N1")), at(0)), store.ErrNotFound, "A's approval stays A's")
}

func testObjectsWithoutOwner(t *testing.T, f *fixture) {
	must(t, f.s.Objects(f.ctx, store.Objects{}, at(0)), "no objects")
	// Objects without an owner are refused, never matched with an
	// unrecorded owner.
	for _, o := range []store.Objects{check("", approval("N9")), claim("", approval("N9"))} {
		if err := f.s.Objects(f.ctx, o, at(0)); err == nil {
			t.Errorf("Objects %+v without an owner: accepted", o)
		}
		if _, _, err := f.s.BeginObjects(f.ctx, scope, "k", fpA, lease, at(0), o); err == nil {
			t.Errorf("BeginObjects %+v without an owner: accepted", o)
		}
	}
	begin(t, f, f.s, scope, "k", fpA, at(0), store.Objects{}, saml.IdemAcquired)
}

// ---------------------------------------------------------------------------
// Sealing at rest

func testSealedAtRest(t *testing.T, f *fixture) {
	secret := &store.Outcome{
		Status:  saml.Status{Code: saml.StatusSuccess, Message: "virtual card issued"},
		Payload: []byte(`<kx:VirtualCard xmlns:kx="urn:kecis:ecml-ext:1.0"><kx:Number>` + testPAN + `</kx:Number></kx:VirtualCard>`),
	}
	for _, k := range []string{"k1", "k2"} {
		begin(t, f, f.s, scope, k, fpA, at(0), claim(ownA, order(testPAN+"-"+k)), saml.IdemAcquired)
		must(t, f.s.FinishObjects(f.ctx, scope, k, secret, claim(ownA, approval("APPROVAL-"+k)), at(time.Second)), "FinishObjects")
	}
	must(t, f.s.Replay(func() time.Time { return t0 }).Remember(f.ctx, ownA, "_1", at(time.Minute)), "Remember")

	// Scan every row and column: no card number, object ID or outcome text
	// in clear.
	counts := map[string]int{}
	for _, table := range []string{"adapter_idempotency", "adapter_replay", "adapter_objects"} {
		rows, err := f.raw.QueryContext(f.ctx, `SELECT * FROM `+table)
		must(t, err, "SELECT "+table)
		cols, err := rows.Columns()
		must(t, err, "columns")
		for rows.Next() {
			counts[table]++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(t, rows.Scan(ptrs...), "Scan")
			for i, v := range vals {
				var text string
				switch x := v.(type) {
				case []byte:
					text = string(x)
				case string:
					text = x
				default:
					continue // times and numbers (a timestamp in microseconds may pass Luhn)
				}
				if strings.Contains(text, testPAN) || ecml.ContainsPAN(text) || strings.Contains(text, "virtual card") || strings.Contains(text, "APPROVAL-") {
					t.Errorf("%s.%s holds clear data", table, cols[i])
				}
			}
		}
		must(t, rows.Close(), "rows")
	}
	if counts["adapter_idempotency"] != 2 || counts["adapter_replay"] != 1 || counts["adapter_objects"] != 4 {
		t.Fatalf("rows: %v, want 2 idempotency records, 1 replay entry, 4 objects", counts)
	}
	sameOutcome(t, "the sealed outcome", begin(t, f, f.s, scope, "k1", fpA, at(time.Hour), store.Objects{}, saml.IdemDone), secret)
}

func testSealBoundToRecord(t *testing.T, f *fixture) {
	for _, k := range [][2]string{{"scopeA", "k1"}, {"scopeA", "k2"}, {"scopeB", "k1"}} {
		begin(t, f, f.s, k[0], k[1], fpA, at(0), store.Objects{}, saml.IdemAcquired)
	}
	must(t, f.s.Finish(f.ctx, "scopeA", "k1", approved, at(time.Second)), "Finish")
	// The sealed outcome of (scopeA, k1) copied onto another record does
	// not open there: the seal is bound to its scope and key.
	for _, dst := range [][2]string{{"scopeA", "k2"}, {"scopeB", "k1"}} {
		_, err := f.raw.ExecContext(f.ctx, `UPDATE adapter_idempotency SET state = 'done',
			outcome = (SELECT outcome FROM adapter_idempotency WHERE scope = 'scopeA' AND idem_key = 'k1')
			WHERE scope = $1 AND idem_key = $2`, dst[0], dst[1])
		must(t, err, "copy the sealed outcome")
		if res, o, err := f.s.Begin(f.ctx, dst[0], dst[1], fpA, lease, at(time.Hour)); err == nil {
			t.Fatalf("the outcome of (scopeA, k1) opened under %v: %s, %+v", dst, res, o)
		}
	}
	// A sealed outcome cut short does not open either.
	_, err := f.raw.ExecContext(f.ctx, `UPDATE adapter_idempotency SET outcome = $1 WHERE scope = 'scopeA' AND idem_key = 'k2'`, []byte{1, 2, 3})
	must(t, err, "truncate a sealed outcome")
	if res, o, err := f.s.Begin(f.ctx, "scopeA", "k2", fpA, lease, at(time.Hour)); err == nil {
		t.Fatalf("a 3-byte sealed outcome opened: %s, %+v", res, o)
	}
	// The original still opens under its own (scope, key).
	sameOutcome(t, "own record", begin(t, f, f.s, "scopeA", "k1", fpA, at(time.Hour), store.Objects{}, saml.IdemDone), approved)
}

func testSealBoundToAtRestKey(t *testing.T, f *fixture) {
	begin(t, f, f.s, scope, key, fpA, at(0), claim(ownA, order("O-1")), saml.IdemAcquired)
	must(t, f.s.FinishObjects(f.ctx, scope, key, approved, claim(ownA, approval("N1")), at(time.Second)), "FinishObjects")
	// Under another at-rest key the outcome does not open and the object
	// references name nothing.
	other := f.open(t, bytes.Repeat([]byte{0x43}, 32))
	if res, o, err := other.Begin(f.ctx, scope, key, fpA, lease, at(time.Hour)); err == nil {
		t.Fatalf("opened under another at-rest key: %s, %+v", res, o)
	}
	mustErr(t, other.Objects(f.ctx, check(ownA, approval("N1")), at(time.Hour)), store.ErrNotFound, "A's approval under another at-rest key")
	must(t, f.s.Objects(f.ctx, check(ownA, order("O-1"), approval("N1")), at(time.Hour)), "A's objects under its key")
}
