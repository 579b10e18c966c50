package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
)

// TestQueryPlans: no statement the hub runs reads a table that grows with
// traffic whole (KECIS §12.3) — the relay's commits, the pruning, the
// in-flight count, and every audit listing the operator and the evidence
// export make, down to a time window alone (by scope and time, one range
// per scope: migration 0007). Only the listing with no filter at all reads
// the log whole, as it returns it whole. hub_audit_scopes, one row per
// kind and pair of participants, may be read whole.
//
// The pruning finds idle idempotency entries by two partial indexes
// (migration 0008); its plan is checked with entries of both kinds to
// delete.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	st, p := probe.Open(t, filepath.Join(t.TempDir(), "hub.db"))
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	msg := []byte(strings.Repeat(`<kecis:ServiceRequest xmlns:kecis="urn:kecis:protocol:1.0">approve</kecis:ServiceRequest>`, 20))
	const merchant, issuer = "https://shop.test", "https://issuer.test"
	relay := func(i int) {
		t.Helper()
		now := t0.Add(time.Duration(i) * time.Second)
		key, req := fmt.Sprintf("key-%d", i), fmt.Sprintf("_req-%d", i)
		if _, err := st.Commit(ctx, &store.Writes{Now: now,
			Remember: []store.ReplayEntry{{Issuer: merchant, ID: req, Expires: now.Add(5 * time.Minute)}},
			Claim:    &store.IdemClaim{Scope: merchant, Key: key, Fingerprint: []byte("fp"), Owner: "hub-1", RequestID: req, LeaseUntil: now.Add(time.Minute)},
			Audit: []*store.AuditRecord{{Time: now, Kind: "message.in", Actor: merchant, EntityID: issuer,
				TxID: merchant + "|" + key, RequestID: req, IdempotencyKey: key, Detail: "{}", Message: msg}},
			Prune: &store.Prune{Limit: 2, IdemBefore: now.Add(-time.Hour)},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Commit(ctx, &store.Writes{Now: now,
			Remember: []store.ReplayEntry{{Issuer: issuer, ID: "_res-" + req, Expires: now.Add(5 * time.Minute)}},
			Release:  &store.IdemRelease{Scope: merchant, Key: key, Owner: "hub-1", State: store.IdemDone},
			Audit: []*store.AuditRecord{{Time: now, Kind: "message.out", Actor: issuer, EntityID: merchant,
				TxID: merchant + "|" + key, RequestID: req, IdempotencyKey: key, Detail: "{}", Message: msg}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		relay(i)
	}
	stop := p.Record()
	relay(20)
	if _, err := st.CountInFlight(ctx, t0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.AuditFilter{
		{TxID: merchant + "|key-3"},
		{TxID: "_req-3"},
		{RequestID: "_req-3"},
		{EntityID: issuer},
		{Kind: "message.in"},
		{EntityID: issuer, Kind: "message.in", Since: t0},
		{Since: t0.Add(3 * time.Second)},
		{Until: t0.Add(3 * time.Second)},
		{Since: t0, Until: t0.Add(3 * time.Second), Limit: 2},
		{TxID: merchant + "|key-3", Since: t0},
		{RequestID: "_req-3", Until: t0.Add(time.Hour)},
	} {
		if _, err := st.ListAudit(ctx, f); err != nil {
			t.Fatalf("ListAudit(%+v): %v", f, err)
		}
	}
	stmts := stop()
	scans, err := sqlprobe.Scans(ctx, st.DB().DB, stmts)
	if err != nil {
		t.Fatal(err)
	}
	// What may be read whole: the scopes (as hub_audit_scopes, or its
	// aliases s and y), and the few rows the pruning's subqueries chose.
	whole := map[string]bool{"hub_audit_scopes": true, "s": true, "y": true, "done": true, "ended": true, "idle": true}
	for _, s := range scans {
		if f := strings.Fields(s.Detail); len(f) > 1 && whole[f[1]] {
			continue
		}
		t.Errorf("%s\n  in %s", s.Detail, s.Query)
	}
}
