package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// Commit (store.Batches): what one step of a request writes, in one
// transaction (KECIS §12.3).

// commitAudit returns two audit records of a request's step.
func commitAudit(tx string) []*store.AuditRecord {
	return []*store.AuditRecord{
		{Time: at(0), Kind: "message.in", Actor: issuer, EntityID: scope, TxID: tx, RequestID: "_c1",
			IdempotencyKey: key, Detail: `{"service":"urn:kecis:service:card:approve"}`, Message: signedMessage},
		{Time: at(0), Kind: "facade.request", Actor: scope, EntityID: scope, TxID: tx, RequestID: "_c1",
			IdempotencyKey: key, Detail: `{}`, Message: []byte{0x00, 0xff}},
	}
}

func claim(owner, requestID string, fingerprint []byte, lease time.Time) *store.IdemClaim {
	return &store.IdemClaim{Scope: scope, Key: key, Fingerprint: fingerprint, Owner: owner, RequestID: requestID, LeaseUntil: lease}
}

// listTx lists the audit records of a transaction.
func listTx(t *testing.T, s store.Store, tx string) []*store.AuditRecord {
	t.Helper()
	recs, err := s.ListAudit(ctxFor(t), store.AuditFilter{TxID: tx})
	must(t, err, "ListAudit")
	return recs
}

// testCommitAll: every part of a step lands, audit IDs are set in order,
// the claim's answer and entry come back, and messages come back exact.
func testCommitAll(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	recs := commitAudit("tx-all")
	c, err := s.Commit(ctx, &store.Writes{Now: at(0),
		Remember: []store.ReplayEntry{{Issuer: issuer, ID: "_c1", Expires: at(3 * time.Minute)}},
		Claim:    claim("hub-1", "_c1", fpA, at(30*time.Second)),
		Audit:    recs})
	must(t, err, "Commit")
	if c.Claim != saml.IdemAcquired || c.ReleaseErr != nil {
		t.Fatalf("Commit: claim %s, release error %v", c.Claim, c.ReleaseErr)
	}
	checkEntry(t, "Commit's entry", c.Entry, store.IdemEntry{Scope: scope, Key: key, Fingerprint: fpA, State: store.IdemInFlight,
		LeaseOwner: "hub-1", LeaseExpires: at(30 * time.Second), RequestID: "_c1", CreatedAt: at(0), UpdatedAt: at(0)})
	if recs[0].ID <= 0 || recs[1].ID <= recs[0].ID {
		t.Fatalf("audit IDs %d, %d: want positive and increasing", recs[0].ID, recs[1].ID)
	}
	mustErr(t, s.RememberMessage(ctx, issuer, "_c1", at(time.Hour), at(time.Minute)), store.ErrAlreadySeen, "the committed ID again")
	got := listTx(t, s, "tx-all")
	if len(got) != 2 {
		t.Fatalf("%d audit records, want 2", len(got))
	}
	for i, r := range got {
		if r.ID != recs[i].ID || r.Kind != recs[i].Kind || !bytes.Equal(r.Message, recs[i].Message) {
			t.Errorf("audit record %d: got %d %s %q, want %d %s %q", i, r.ID, r.Kind, r.Message, recs[i].ID, recs[i].Kind, recs[i].Message)
		}
	}
	// The answer's step: its ID, the release (done) and its record.
	out := &store.AuditRecord{Time: at(time.Second), Kind: "message.out", Actor: issuer, EntityID: scope, TxID: "tx-all",
		RequestID: "_c1", Detail: `{}`, Message: signedMessage}
	c, err = s.Commit(ctx, &store.Writes{Now: at(time.Second),
		Remember: []store.ReplayEntry{{Issuer: scope, ID: "_r1", Expires: at(3 * time.Minute)}},
		Release:  &store.IdemRelease{Scope: scope, Key: key, Owner: "hub-1", State: store.IdemDone},
		Audit:    []*store.AuditRecord{out}})
	must(t, err, "Commit of the answer")
	if c.ReleaseErr != nil || out.ID <= recs[1].ID {
		t.Fatalf("Commit of the answer: release error %v, audit ID %d", c.ReleaseErr, out.ID)
	}
	e, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if e.State != store.IdemDone || e.LeaseOwner != "" {
		t.Fatalf("after the answer's commit the entry is %s held by %q", e.State, e.LeaseOwner)
	}
	if n := len(listTx(t, s, "tx-all")); n != 3 {
		t.Fatalf("%d audit records, want 3", n)
	}
}

// testCommitAlreadySeen: a live ID among Remember fails the whole commit
// with ErrAlreadySeen: no replay record, no claim, no audit record, and
// the records' IDs stay 0.
func testCommitAlreadySeen(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(t, s.RememberMessage(ctx, issuer, "_seen", at(3*time.Minute), at(0)), "RememberMessage")
	recs := commitAudit("tx-seen")
	_, err := s.Commit(ctx, &store.Writes{Now: at(time.Second),
		Remember: []store.ReplayEntry{{Issuer: issuer, ID: "_new", Expires: at(3 * time.Minute)}, {Issuer: issuer, ID: "_seen", Expires: at(3 * time.Minute)}},
		Claim:    claim("hub-1", "_seen", fpA, at(30*time.Second)),
		Audit:    recs})
	mustErr(t, err, store.ErrAlreadySeen, "Commit with a replayed ID")
	must(t, s.RememberMessage(ctx, issuer, "_new", at(3*time.Minute), at(time.Second)), "the rolled-back ID is not remembered")
	_, err = s.GetIdem(ctx, scope, key)
	mustErr(t, err, store.ErrNotFound, "the rolled-back claim")
	if n := len(listTx(t, s, "tx-seen")); n != 0 {
		t.Fatalf("%d audit records of a rolled-back commit", n)
	}
	for i, r := range recs {
		if r.ID != 0 {
			t.Errorf("audit record %d of a rolled-back commit has ID %d", i, r.ID)
		}
	}
}

// testCommitRefusal: the guard's refusal (in flight, mismatch) is an
// answer — the rest of the commit lands.
func testCommitRefusal(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_first", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	for i, tc := range []struct {
		fp   []byte
		want saml.IdemResult
	}{{fpA, saml.IdemInFlight}, {fpB, saml.IdemMismatch}} {
		id := fmt.Sprintf("_retry%d", i)
		tx := "tx-refused-" + id
		c, err := s.Commit(ctx, &store.Writes{Now: at(time.Second),
			Remember: []store.ReplayEntry{{Issuer: issuer, ID: id, Expires: at(3 * time.Minute)}},
			Claim:    claim("hub-2", id, tc.fp, at(31*time.Second)),
			Audit:    commitAudit(tx)})
		must(t, err, "Commit refused by the guard")
		if c.Claim != tc.want || c.Entry == nil || c.Entry.LeaseOwner != "hub-1" {
			t.Fatalf("Commit: claim %s (entry %+v), want %s with hub-1's entry", c.Claim, c.Entry, tc.want)
		}
		mustErr(t, s.RememberMessage(ctx, issuer, id, at(time.Hour), at(2*time.Second)), store.ErrAlreadySeen, "the refused request's ID")
		if n := len(listTx(t, s, tx)); n != 2 {
			t.Fatalf("%s: %d audit records, want 2", tc.want, n)
		}
	}
}

// testCommitReleaseConflict: a release the owner no longer holds, or of
// an unknown key, is reported in ReleaseErr and the rest lands.
func testCommitReleaseConflict(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_first", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	c, err := s.Commit(ctx, &store.Writes{Now: at(time.Second),
		Release: &store.IdemRelease{Scope: scope, Key: key, Owner: "hub-2", State: store.IdemDone},
		Audit:   commitAudit("tx-conflict")})
	must(t, err, "Commit with another owner's release")
	if !errors.Is(c.ReleaseErr, store.ErrConflict) {
		t.Fatalf("ReleaseErr %v, want ErrConflict", c.ReleaseErr)
	}
	if n := len(listTx(t, s, "tx-conflict")); n != 2 {
		t.Fatalf("%d audit records, want 2", n)
	}
	e, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if e.State != store.IdemInFlight || e.LeaseOwner != "hub-1" {
		t.Fatalf("another owner's release changed the entry: %s held by %q", e.State, e.LeaseOwner)
	}
	c, err = s.Commit(ctx, &store.Writes{Now: at(time.Second),
		Release: &store.IdemRelease{Scope: scope, Key: "no-such-key", Owner: "hub-1", State: store.IdemDone}})
	must(t, err, "Commit with an unknown key's release")
	if !errors.Is(c.ReleaseErr, store.ErrNotFound) {
		t.Fatalf("ReleaseErr %v, want ErrNotFound", c.ReleaseErr)
	}
}

// testCommitPrune: a commit deletes at most Limit expired replay records
// and at most Limit idle idempotency entries, oldest first; live records,
// held leases and recently changed entries stay.
func testCommitPrune(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	for i := range 5 { // expire at 1…5 minutes
		must(t, s.RememberMessage(ctx, issuer, fmt.Sprintf("_old%d", i), at(time.Duration(i+1)*time.Minute), at(0)), "RememberMessage")
	}
	must(t, s.RememberMessage(ctx, issuer, "_live", at(time.Hour), at(0)), "RememberMessage")
	entry := func(k string, updated time.Time, lease time.Duration, done bool) {
		t.Helper()
		res, _, err := s.AcquireIdem(ctx, scope, k, fpA, "hub-1", "_"+k, updated.Add(lease), updated)
		must(t, err, "AcquireIdem "+k)
		if res != saml.IdemAcquired {
			t.Fatalf("AcquireIdem %s = %s", k, res)
		}
		if done {
			must(t, s.ReleaseIdem(ctx, scope, k, "hub-1", store.IdemDone, updated), "ReleaseIdem "+k)
		}
	}
	entry("idle-1", at(0), time.Minute, true)
	entry("idle-2", at(time.Second), time.Minute, true)
	entry("idle-3", at(2*time.Second), time.Minute, false) // lease expired, never released
	entry("held", at(3*time.Second), 2*time.Hour, false)   // old, but its lease holds
	entry("recent", at(50*time.Minute), time.Minute, true) // done after the cut-off
	now := at(time.Hour - time.Second)
	prune := &store.Prune{Limit: 2, IdemBefore: at(30 * time.Minute)}
	want := []int64{4, 3, 1, 0} // 2 replay + 2 entries; 2 + 1 (idle-3); 1 + 0; nothing
	for i, w := range want {
		c, err := s.Commit(ctx, &store.Writes{Now: now, Audit: []*store.AuditRecord{{Time: now, Kind: "message.out", Actor: "a"}}, Prune: prune})
		must(t, err, "Commit with Prune")
		if c.Pruned != w {
			t.Fatalf("commit %d pruned %d rows, want %d", i+1, c.Pruned, w)
		}
		if i == 0 {
			// Oldest first: the first two idle entries went.
			for _, k := range []string{"idle-1", "idle-2"} {
				_, err := s.GetIdem(ctx, scope, k)
				mustErr(t, err, store.ErrNotFound, "GetIdem of pruned "+k)
			}
			_, err := s.GetIdem(ctx, scope, "idle-3")
			must(t, err, "idle-3 survives the first prune (Limit 2)")
		}
	}
	for _, k := range []string{"held", "recent"} {
		_, err := s.GetIdem(ctx, scope, k)
		must(t, err, "GetIdem of "+k+" after the prunes")
	}
	mustErr(t, s.RememberMessage(ctx, issuer, "_live", at(2*time.Hour), now), store.ErrAlreadySeen, "a live replay record after the prunes")
	c, err := s.Commit(ctx, &store.Writes{Now: now, Audit: []*store.AuditRecord{{Time: now, Kind: "message.out", Actor: "a"}},
		Prune: &store.Prune{Limit: 0, IdemBefore: at(time.Hour)}})
	must(t, err, "Commit with Prune.Limit 0")
	if c.Pruned != 0 {
		t.Fatalf("Prune.Limit 0 pruned %d rows", c.Pruned)
	}
}
