package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
)

// Backend-specific checks beyond the conformance suite, on both dialects.

var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return sqltest.TestSQLiteDSN(t) }},
	{"postgres", func(t *testing.T) string { return sqltest.TestPostgresDSN(t) }},
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func eachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.dsn(t))
		})
	}
}

func TestMigrationsRecorded(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		defer s.Close()
		// Opening again (a restart, another replica) applies nothing new.
		s2 := openStore(t, dsn)
		defer s2.Close()
		vs, err := s.DB().AppliedVersions(context.Background(), sqlstore.Component)
		if err != nil || len(vs) == 0 || vs[0] != 1 {
			t.Fatalf("AppliedVersions(hub) = %v, %v", vs, err)
		}
	})
}

func TestAuditIsAppendOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		defer s.Close()
		r := &store.AuditRecord{Time: t0, Kind: "message.in", Message: []byte("<x/>")}
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, err := s.DB().ExecContext(ctx, `UPDATE hub_audit SET message = $1 WHERE id = $2`, []byte("<forged/>"), r.ID)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("UPDATE of an audit record: %v, want refused", err)
		}
		recs, err := s.ListAudit(ctx, store.AuditFilter{})
		if err != nil || len(recs) != 1 || string(recs[0].Message) != "<x/>" {
			t.Errorf("after refused update: %+v, %v", recs, err)
		}
	})
}

// TestAuditIDsNotReused: an audit record's ID is never given twice, even
// after the newest records were archived (deleted by the operator) and the
// store restarted: on SQLite hub_audit_archived keeps the highest ID
// deleted (migration 0009), on PostgreSQL the identity's sequence does.
func TestAuditIDsNotReused(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		var last int64
		for i := range 4 {
			r := &store.AuditRecord{Time: t0, Kind: "message.in", RequestID: fmt.Sprintf("_r%d", i), Message: []byte("<x/>")}
			if err := s.AppendAudit(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.ID <= last {
				t.Fatalf("record %d has ID %d after %d", i, r.ID, last)
			}
			last = r.ID
		}
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM hub_audit WHERE id >= $1`, last-1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openStore(t, dsn)
		defer s.Close()
		r := &store.AuditRecord{Time: t0, Kind: "message.in", RequestID: "_after", Message: []byte("<x/>")}
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.ID <= last {
			t.Errorf("after the newest records up to ID %d were archived, a new record has ID %d", last, r.ID)
		}
		recs, err := s.ListAudit(ctx, store.AuditFilter{})
		if err != nil || len(recs) != 3 || recs[2].ID != r.ID {
			t.Errorf("after archiving: %d records, %v", len(recs), err)
		}
	})
}

func TestParticipantByCertificateAmbiguity(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		defer s.Close()
		shared := strings.Repeat("ab", 32)
		mk := func(id string, st store.Status) {
			p := &store.Participant{EntityID: id, Status: st, CreatedAt: t0, UpdatedAt: t0,
				Keys: []store.Key{{Use: store.KeyTLSClient, CertDER: []byte{1}, Fingerprint: shared, NotAfter: t0.Add(time.Hour)}}}
			if err := s.CreateParticipant(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		mk("urn:old", store.StatusRemoved)
		mk("urn:new", store.StatusActive)
		// A removed participant's certificate does not shadow the live one;
		// the lookup is case-insensitive in the hex.
		p, err := s.ParticipantByCertificate(ctx, store.KeyTLSClient, strings.ToUpper(shared))
		if err != nil || p.EntityID != "urn:new" {
			t.Fatalf("ParticipantByCertificate = %v, %v; want urn:new", p, err)
		}
		// Two live participants with one certificate: the lookup cannot
		// authenticate either.
		mk("urn:twin", store.StatusPending)
		_, err = s.ParticipantByCertificate(ctx, store.KeyTLSClient, shared)
		if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "several participants") {
			t.Errorf("ambiguous certificate: %v", err)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "sqlite::memory:")
	defer s.Close()
	checks := []struct {
		name string
		err  error
	}{
		{"create without entityID", s.CreateParticipant(ctx, &store.Participant{Status: store.StatusPending})},
		{"create without status", s.CreateParticipant(ctx, &store.Participant{EntityID: "urn:x"})},
		{"remember with past expiry", s.RememberMessage(ctx, "urn:i", "_1", t0, t0)},
		{"remember without ID", s.RememberMessage(ctx, "urn:i", "", t0.Add(time.Minute), t0)},
		{"release with a bad state", s.ReleaseIdem(ctx, "s", "k", "o", "bogus", t0)},
		{"audit without kind", s.AppendAudit(ctx, &store.AuditRecord{})},
		{"rule without ID", s.PutRoutingRule(ctx, &store.RoutingRule{})},
		{"snapshot without entity", s.PutSnapshot(ctx, &store.MetadataSnapshot{})},
	}
	for _, c := range checks {
		if c.err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	for i, args := range []struct {
		owner      string
		fp         []byte
		lease, now time.Time
	}{
		{"", []byte{1}, t0.Add(time.Minute), t0},
		{"o", nil, t0.Add(time.Minute), t0},
		{"o", []byte{1}, t0, t0},
	} {
		if _, _, err := s.AcquireIdem(ctx, "s", "k", args.fp, args.owner, "_r", args.lease, args.now); err == nil {
			t.Errorf("AcquireIdem case %d accepted", i)
		}
	}
	if _, err := s.GetIdem(ctx, "s", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused acquires stored an entry: %v", err)
	}
}

// TestManyParticipants lists 1,000 participants (KECIS §11.2: metadata for
// 1,000 participants) with their children in a few queries.
func TestManyParticipants(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqltest.TestSQLiteDSN(t))
	defer s.Close()
	for i := range 1000 {
		p := &store.Participant{EntityID: fmt.Sprintf("urn:p:%04d", i), Status: store.StatusActive,
			Roles: []store.Role{store.RoleMerchant}, CreatedAt: t0, UpdatedAt: t0,
			Keys:      []store.Key{{Use: store.KeySigning, CertDER: []byte{byte(i)}, Fingerprint: fmt.Sprintf("%064x", i), NotAfter: t0}},
			Endpoints: []store.Endpoint{{Service: "*", Binding: "b", URL: "https://x"}},
		}
		if err := s.CreateParticipant(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}, Role: store.RoleMerchant})
	if err != nil || len(ps) != 1000 {
		t.Fatalf("ListParticipants: %d, %v", len(ps), err)
	}
	if ps[999].EntityID != "urn:p:0999" || len(ps[999].Keys) != 1 || len(ps[999].Endpoints) != 1 {
		t.Errorf("last participant: %+v", ps[999])
	}
	t.Logf("listed 1,000 participants in %s", time.Since(start))
}
