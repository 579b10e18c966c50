package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// Racers is how many goroutines per store take part in each race.
const Racers = 8

// raceRounds is how many times each race is run (on fresh keys).
const raceRounds = 4

// RunConcurrencyTests checks what two hub replicas sharing one database
// must never both do. newStores returns two stores on the same fresh
// database through separate connection pools (in tests: two Opens of one
// DSN); the suite closes both. In every race Racers goroutines per store
// start together behind a barrier.
func RunConcurrencyTests(t *testing.T, newStores func(t *testing.T) (store.Store, store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"SharedDatabase", testSharedDatabase},
		{"ReplayRace", testReplayRace},
		{"IdemAcquireRace", testIdemAcquireRace},
		{"IdemFingerprintRace", testIdemFingerprintRace},
		{"IdemReacquireRace", testIdemReacquireRace},
		{"UpdateParticipantRace", testUpdateParticipantRace},
		{"CommitRace", testCommitRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newStores(t)
			t.Cleanup(func() {
				for _, s := range []store.Store{a, b} {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			tc.fn(t, a, b)
		})
	}
}

// race runs fn(i, s) on Racers goroutines per store, all released at
// once (testutil.Race).
func race(a, b store.Store, fn func(i int, s store.Store)) { testutil.Race(Racers, a, b, fn) }

func testSharedDatabase(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	p := sampleParticipant("urn:example:shared", 1)
	must(t, a.CreateParticipant(ctx, p), "CreateParticipant on a")
	got, err := b.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant on b")
	if got.Version != 1 || len(got.Keys) != len(p.Keys) {
		t.Errorf("b sees %+v", got)
	}
	mustErr(t, b.CreateParticipant(ctx, sampleParticipant("urn:example:shared", 2)), store.ErrExists, "CreateParticipant on b")
	must(t, b.RememberMessage(ctx, issuer, "_shared", at(time.Minute), at(0)), "RememberMessage on b")
	mustErr(t, a.RememberMessage(ctx, issuer, "_shared", at(time.Minute), at(0)), store.ErrAlreadySeen, "RememberMessage on a")
}

func testReplayRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	for round := range raceRounds {
		id := fmt.Sprintf("_race%d", round)
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			errs[i] = s.RememberMessage(ctx, issuer, id, at(5*time.Minute), at(0))
		})
		testutil.OneWins(t, errs, store.ErrAlreadySeen, fmt.Sprintf("round %d: RememberMessage", round))
	}
}

type acquireOutcome struct {
	res   saml.IdemResult
	entry *store.IdemEntry
	err   error
}

// tally counts outcomes by result and reports unexpected errors.
func tally(t *testing.T, what string, outs []acquireOutcome) (map[saml.IdemResult]int, int) {
	t.Helper()
	counts := map[saml.IdemResult]int{}
	winner := -1
	for i, o := range outs {
		if o.err != nil {
			t.Errorf("%s: racer %d: AcquireIdem: %v", what, i, o.err)
			continue
		}
		counts[o.res]++
		if o.res == saml.IdemAcquired || o.res == saml.IdemReacquired {
			winner = i
		}
	}
	return counts, winner
}

func owner(i int) string { return fmt.Sprintf("hub-%d", i) }

func testIdemAcquireRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	for round := range raceRounds {
		k := fmt.Sprintf("race-%d", round)
		outs := make([]acquireOutcome, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			o := &outs[i]
			o.res, o.entry, o.err = s.AcquireIdem(ctx, scope, k, fpA, owner(i), fmt.Sprintf("_req%d", i), at(time.Minute), at(0))
		})
		what := fmt.Sprintf("round %d", round)
		counts, winner := tally(t, what, outs)
		if counts[saml.IdemAcquired] != 1 || counts[saml.IdemInFlight] != 2*Racers-1 {
			t.Errorf("%s: outcomes %v, want 1 acquired and %d in flight", what, counts, 2*Racers-1)
			continue
		}
		for i, o := range outs {
			if o.res == saml.IdemInFlight && o.entry.LeaseOwner != owner(winner) {
				t.Errorf("%s: racer %d saw lease owner %q, but %q won", what, i, o.entry.LeaseOwner, owner(winner))
			}
		}
		e, err := b.GetIdem(ctx, scope, k)
		must(t, err, "GetIdem")
		if e.LeaseOwner != owner(winner) || e.RequestID != fmt.Sprintf("_req%d", winner) {
			t.Errorf("%s: stored entry %+v, but racer %d won", what, e, winner)
		}
	}
}

func testIdemFingerprintRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	for round := range raceRounds {
		k := fmt.Sprintf("fp-race-%d", round)
		fps := func(i int) []byte {
			if (i/2)%2 == 0 { // both stores race with both fingerprints
				return fpA
			}
			return fpB
		}
		outs := make([]acquireOutcome, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			o := &outs[i]
			o.res, o.entry, o.err = s.AcquireIdem(ctx, scope, k, fps(i), owner(i), "_r", at(time.Minute), at(0))
		})
		what := fmt.Sprintf("round %d", round)
		counts, winner := tally(t, what, outs)
		if counts[saml.IdemAcquired] != 1 || winner < 0 {
			t.Errorf("%s: outcomes %v, want exactly 1 acquired", what, counts)
			continue
		}
		for i, o := range outs {
			if i == winner || o.err != nil {
				continue
			}
			want := saml.IdemInFlight
			if string(fps(i)) != string(fps(winner)) {
				want = saml.IdemMismatch
			}
			if o.res != want {
				t.Errorf("%s: racer %d: %s, want %s", what, i, o.res, want)
			}
		}
	}
}

func testIdemReacquireRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	const k = "reacquire-race"
	_, _, err := a.AcquireIdem(ctx, scope, k, fpA, "crashed", "_r0", at(30*time.Second), at(0))
	must(t, err, "AcquireIdem")
	for round := range raceRounds {
		// Each round starts after the previous lease expired.
		now := at(time.Duration(round+1) * time.Minute)
		outs := make([]acquireOutcome, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			o := &outs[i]
			o.res, o.entry, o.err = s.AcquireIdem(ctx, scope, k, fpA, owner(i), "_r", now.Add(30*time.Second), now)
		})
		what := fmt.Sprintf("round %d", round)
		counts, winner := tally(t, what, outs)
		if counts[saml.IdemReacquired] != 1 || counts[saml.IdemInFlight] != 2*Racers-1 {
			t.Errorf("%s: outcomes %v, want 1 reacquired and %d in flight", what, counts, 2*Racers-1)
			continue
		}
		// Release races too: only the winner may end the lease.
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			errs[i] = s.ReleaseIdem(ctx, scope, k, owner(i), store.IdemInFlight, now.Add(time.Second))
		})
		for i, err := range errs {
			switch {
			case i == winner && err != nil:
				t.Errorf("%s: the lease holder could not release: %v", what, err)
			case i != winner && !errors.Is(err, store.ErrConflict):
				t.Errorf("%s: racer %d released a lease it did not hold: %v", what, i, err)
			}
		}
		// Leave an unexpired-looking lease for the next round to expire.
		_, _, err := a.AcquireIdem(ctx, scope, k, fpA, "crashed", "_r0", now.Add(30*time.Second), now.Add(2*time.Second))
		must(t, err, "AcquireIdem")
	}
}

func testUpdateParticipantRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	const id = "urn:example:raced"
	must(t, a.CreateParticipant(ctx, sampleParticipant(id, 1)), "CreateParticipant")
	for round := range raceRounds {
		// Every racer read the same version before anyone wrote.
		copies := make([]*store.Participant, 2*Racers)
		for i := range copies {
			s := a
			if i%2 == 1 {
				s = b
			}
			p, err := s.GetParticipant(ctx, id)
			must(t, err, "GetParticipant")
			p.DisplayName = fmt.Sprintf("racer %d", i)
			p.Keys = p.Keys[:1+i%len(p.Keys)] // each racer's own key list
			p.UpdatedAt = at(time.Duration(round) * time.Minute)
			copies[i] = p
		}
		base := copies[0].Version
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			errs[i] = s.UpdateParticipant(ctx, copies[i])
		})
		winner, wins := -1, 0
		for i, err := range errs {
			switch {
			case err == nil:
				winner, wins = i, wins+1
			case errors.Is(err, store.ErrConflict):
			default:
				t.Errorf("round %d racer %d: UpdateParticipant: %v", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d updates won, want exactly 1", round, wins)
		}
		got, err := b.GetParticipant(ctx, id)
		must(t, err, "GetParticipant")
		w := copies[winner]
		if got.Version != base+1 || got.DisplayName != w.DisplayName || len(got.Keys) != len(w.Keys) {
			t.Errorf("round %d: stored version %d name %q with %d keys, want version %d from racer %d (%d keys)",
				round, got.Version, got.DisplayName, len(got.Keys), base+1, winner, len(w.Keys))
		}
	}
}

// testCommitRace: replicas commit the same received message (its ID, a
// claim of its key, its audit record) at once: exactly one commit lands,
// the others fail with ErrAlreadySeen and leave nothing (KECIS §12.3).
func testCommitRace(t *testing.T, a, b store.Store) {
	ctx := ctxFor(t)
	for round := range raceRounds {
		id, k, tx := fmt.Sprintf("_commit%d", round), fmt.Sprintf("commit-key-%d", round), fmt.Sprintf("tx-commit-%d", round)
		errs := make([]error, 2*Racers)
		race(a, b, func(i int, s store.Store) {
			_, errs[i] = s.Commit(ctx, &store.Writes{Now: at(0),
				Remember: []store.ReplayEntry{{Issuer: issuer, ID: id, Expires: at(5 * time.Minute)}},
				Claim:    &store.IdemClaim{Scope: scope, Key: k, Fingerprint: fpA, Owner: owner(i), RequestID: id, LeaseUntil: at(time.Minute)},
				Audit:    []*store.AuditRecord{{Time: at(0), Kind: "message.in", Actor: issuer, TxID: tx, RequestID: id, Message: signedMessage}}})
		})
		testutil.OneWins(t, errs, store.ErrAlreadySeen, fmt.Sprintf("round %d: Commit of one message", round))
		recs, err := a.ListAudit(ctx, store.AuditFilter{TxID: tx})
		must(t, err, "ListAudit")
		if len(recs) != 1 {
			t.Errorf("round %d: %d audit records, want 1", round, len(recs))
		}
	}
}
