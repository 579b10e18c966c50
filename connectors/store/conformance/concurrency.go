package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// Racers is how many goroutines per store take part in each race.
const Racers = 8

// raceRounds is how many times each race is run (on fresh keys).
const raceRounds = 4

// RunConcurrencyTests checks what two replicas of an adapter sharing one
// database must never both do. newDSN is as for RunTests; the suite opens
// two stores on each database through separate connection pools. In
// every race Racers goroutines per store start together behind a barrier.
func RunConcurrencyTests(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture, a, b *storesql.Store)
	}{
		{"SharedDatabase", testSharedDatabase},
		{"ReplayRace", testReplayRace},
		{"ReplayWithKeyRace", testReplayWithKeyRace},
		{"IdemAcquireRace", testIdemAcquireRace},
		{"IdemFingerprintRace", testIdemFingerprintRace},
		{"IdemReacquireRace", testIdemReacquireRace},
		{"ObjectClaimRace", testObjectClaimRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newDSN(t))
			tc.fn(t, f, f.s, f.open(t, AtRestKey))
		})
	}
}

// race runs fn(i, s) on Racers goroutines per store, all released at
// once (testutil.Race).
func race(a, b *storesql.Store, fn func(i int, s *storesql.Store)) { testutil.Race(Racers, a, b, fn) }

type beginOutcome struct {
	res saml.IdemResult
	o   *store.Outcome
	err error
}

// tally counts the racers' results, reports errors and returns the racer
// that took the key (-1 if none).
func tally(t *testing.T, what string, outs []beginOutcome) (map[saml.IdemResult]int, int) {
	t.Helper()
	counts := map[saml.IdemResult]int{}
	winner := -1
	for i, o := range outs {
		if o.err != nil {
			t.Errorf("%s: racer %d: Begin: %v", what, i, o.err)
			continue
		}
		counts[o.res]++
		if o.res == saml.IdemAcquired || o.res == saml.IdemReacquired {
			winner = i
		}
	}
	return counts, winner
}

func testSharedDatabase(t *testing.T, f *fixture, a, b *storesql.Store) {
	begin(t, f, a, scope, key, fpA, at(0), claim(ownA, order("O-1")), saml.IdemAcquired)
	begin(t, f, b, scope, key, fpA, at(time.Second), store.Objects{}, saml.IdemInFlight)
	must(t, b.FinishObjects(f.ctx, scope, key, approved, claim(ownA, approval("N1")), at(2*time.Second)), "FinishObjects on b")
	sameOutcome(t, "a after b finished", begin(t, f, a, scope, key, fpA, at(time.Hour), store.Objects{}, saml.IdemDone), approved)
	must(t, a.Objects(f.ctx, check(ownA, order("O-1"), approval("N1")), at(time.Hour)), "a checks the objects")
	mustErr(t, b.Objects(f.ctx, check(ownB, approval("N1")), at(time.Hour)), store.ErrNotFound, "b checks for another owner")
	must(t, b.Replay(func() time.Time { return t0 }).Remember(f.ctx, ownA, "_shared", at(time.Minute)), "Remember on b")
	mustErr(t, a.Replay(func() time.Time { return t0 }).Remember(f.ctx, ownA, "_shared", at(time.Minute)), saml.ErrAlreadySeen, "Remember on a")
}

func testReplayRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	for round := range raceRounds {
		id := fmt.Sprintf("_race%d", round)
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			errs[i] = s.Replay(func() time.Time { return t0 }).Remember(f.ctx, ownA, id, at(5*time.Minute))
		})
		testutil.OneWins(t, errs, saml.ErrAlreadySeen, fmt.Sprintf("round %d: Remember", round))
	}
}

// testReplayWithKeyRace: racers on two replicas deliver one message, each
// under a key of its own (the worst case: the key cannot settle it), and
// exactly one of them goes on.
func testReplayWithKeyRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	for round := range raceRounds {
		seen := []store.ReplayEntry{{Issuer: ownA, ID: fmt.Sprintf("_krace%d", round), Expires: at(5 * time.Minute)}}
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			var res saml.IdemResult
			res, _, errs[i] = s.BeginRemembered(f.ctx, seen, scope, fmt.Sprintf("kr%d-%d", round, i), fpA, lease, at(0), store.Objects{})
			if errs[i] == nil && res != saml.IdemAcquired {
				errs[i] = fmt.Errorf("answered %s", res)
			}
		})
		testutil.OneWins(t, errs, saml.ErrAlreadySeen, fmt.Sprintf("round %d: BeginRemembered of one message", round))
	}
}

func testIdemAcquireRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	for round := range raceRounds {
		k := fmt.Sprintf("race-%d", round)
		outs := make([]beginOutcome, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			o := &outs[i]
			o.res, o.o, o.err = s.Begin(f.ctx, scope, k, fpA, lease, at(0))
		})
		counts, _ := tally(t, k, outs)
		if counts[saml.IdemAcquired] != 1 || counts[saml.IdemInFlight] != 2*Racers-1 {
			t.Errorf("%s: %v, want exactly one acquired and the rest in flight", k, counts)
		}
	}
}

func testIdemFingerprintRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	fps := func(i int) []byte { return fmt.Appendf(nil, "fingerprint-%d", i%3) }
	for round := range raceRounds {
		k := fmt.Sprintf("fp-race-%d", round)
		outs := make([]beginOutcome, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			o := &outs[i]
			o.res, o.o, o.err = s.Begin(f.ctx, scope, k, fps(i), lease, at(0))
		})
		counts, winner := tally(t, k, outs)
		if counts[saml.IdemAcquired] != 1 || winner < 0 {
			t.Fatalf("%s: %v, want exactly one acquired", k, counts)
		}
		// A racer with another request may have lost before the winner's
		// row was visible (in flight), never taken the key.
		for i, o := range outs {
			if i == winner || o.err != nil {
				continue
			}
			want := saml.IdemInFlight
			if string(fps(i)) != string(fps(winner)) && o.res != saml.IdemInFlight {
				want = saml.IdemMismatch
			}
			if o.res != want {
				t.Errorf("%s: racer %d (winner %d) = %s, want %s", k, i, winner, o.res, want)
			}
		}
		// The winner's request holds the key.
		begin(t, f, b, scope, k, fps(winner), at(time.Second), store.Objects{}, saml.IdemInFlight)
		begin(t, f, a, scope, k, fps(winner+1), at(time.Second), store.Objects{}, saml.IdemMismatch)
	}
}

func testIdemReacquireRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	for round := range raceRounds {
		k := fmt.Sprintf("crashed-%d", round)
		begin(t, f, a, scope, k, fpA, at(0), store.Objects{}, saml.IdemAcquired)
		// The attempt crashed; its lease has run out when the retries race.
		outs := make([]beginOutcome, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			o := &outs[i]
			o.res, o.o, o.err = s.Begin(f.ctx, scope, k, fpA, lease, at(lease+time.Second))
		})
		counts, _ := tally(t, k, outs)
		if counts[saml.IdemReacquired] != 1 || counts[saml.IdemInFlight] != 2*Racers-1 {
			t.Errorf("%s: %v, want exactly one reacquired and the rest in flight", k, counts)
		}
	}
}

func testObjectClaimRace(t *testing.T, f *fixture, a, b *storesql.Store) {
	// Owners race to claim one approval number (a provider answering two
	// merchants with one number): one gets it, the others are refused.
	owner := func(i int) string { return fmt.Sprintf("https://merchant-%d.test", i) }
	for round := range raceRounds {
		n := approval(fmt.Sprintf("N-%d", round))
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s *storesql.Store) {
			errs[i] = s.Objects(f.ctx, claim(owner(i), n), at(0))
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both claimed %s", round, winner, i, n.ID)
				}
				winner = i
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("round %d racer %d: Objects: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed %s", round, n.ID)
		}
		for i := range 2 * Racers {
			err := b.Objects(f.ctx, check(owner(i), n), at(time.Second))
			if (i == winner) != (err == nil) {
				t.Errorf("round %d: %s checks %s (winner %s): %v", round, owner(i), n.ID, owner(winner), err)
			}
		}
	}
}
