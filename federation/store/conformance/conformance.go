// Package conformance is the test suite every store.Store backend runs
// (after dex storage/conformance): RunTests checks the behaviour of each
// method on a fresh store per subtest, RunConcurrencyTests checks that two
// stores on one database — two hub replicas — cannot both win a replay,
// an idempotency lease or an optimistic update.
//
// A backend's test is a few lines:
//
//	func TestSQLite(t *testing.T) {
//		conformance.RunTests(t, func(t *testing.T) store.Store { … })
//	}
//
// Contract details the suite pins down beyond the interface's comments:
//   - times round-trip to the microsecond and come back in UTC;
//   - CreateParticipant stores version 1 and UpdateParticipant increments
//     it, both setting p.Version; UpdateParticipant keeps CreatedAt;
//   - a participant's pending version (Pending) round-trips byte-exact
//     beside the active fields, which it never changes; UpdateParticipant
//     with Pending nil clears it; it is not a published key (a
//     certificate only the pending version holds is not found by
//     ParticipantByCertificate);
//   - empty lists may come back nil; byte fields come back byte-exact;
//   - a replay record is live while now < expires; PurgeReplay deletes
//     records with expires <= now;
//   - ReleaseIdem clears the lease in both states; an entry released
//     without an answer (IdemInFlight) is reacquirable at once;
//   - Commit (store.Writes) applies its parts in one transaction: a live
//     ID in Remember fails all of it with ErrAlreadySeen and leaves the
//     audit records' IDs 0; the guard's refusal is an answer and the rest
//     lands; a release not held is reported in ReleaseErr (ErrConflict,
//     ErrNotFound) and the rest lands; Prune deletes at most Limit rows of
//     each table, oldest first;
//   - ListAudit returns records in append order, Since inclusive, Until
//     exclusive; ListRoutingRules orders by priority, then ID;
//     ListParticipants orders by entityID in byte order.
//
// Every time comes from the test (fixed instants); a store must never read
// the clock.
package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// t0 is the instant the suite runs at; it has a microsecond fraction so
// that a backend losing sub-second precision fails.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// RunTests runs the behavioural suite. newStore must return a fresh, empty
// store for each call; the suite closes it.
func RunTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"ParticipantRoundTrip", testParticipantRoundTrip},
		{"ParticipantEmptyLists", testParticipantEmptyLists},
		{"ParticipantCreateExists", testParticipantCreateExists},
		{"ParticipantNotFound", testParticipantNotFound},
		{"ParticipantListOrder", testParticipantListOrder},
		{"ParticipantListFilters", testParticipantListFilters},
		{"ParticipantUpdate", testParticipantUpdate},
		{"ParticipantUpdateConflict", testParticipantUpdateConflict},
		{"ParticipantByCertificate", testParticipantByCertificate},
		{"ParticipantPendingVersion", testParticipantPendingVersion},
		{"ReplayRemember", testReplayRemember},
		{"ReplayExpiry", testReplayExpiry},
		{"ReplayPurge", testReplayPurge},
		{"IdemAcquire", testIdemAcquire},
		{"IdemInFlight", testIdemInFlight},
		{"IdemMismatch", testIdemMismatch},
		{"IdemReacquireAfterDone", testIdemReacquireAfterDone},
		{"IdemReacquireAfterLeaseExpiry", testIdemReacquireAfterLeaseExpiry},
		{"IdemReleaseWithoutAnswer", testIdemReleaseWithoutAnswer},
		{"IdemReleaseByNonOwner", testIdemReleaseByNonOwner},
		{"IdemScopes", testIdemScopes},
		{"IdemCountInFlight", testIdemCountInFlight},
		{"AuditAppendList", testAuditAppendList},
		{"AuditFilters", testAuditFilters},
		{"AuditTransactions", testAuditTransactions},
		{"AuditLongMessages", testAuditLongMessages},
		{"CommitAll", testCommitAll},
		{"CommitAlreadySeen", testCommitAlreadySeen},
		{"CommitRefusal", testCommitRefusal},
		{"CommitReleaseConflict", testCommitReleaseConflict},
		{"CommitPrune", testCommitPrune},
		{"RoutingRules", testRoutingRules},
		{"Snapshots", testSnapshots},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// ---------------------------------------------------------------------------
// helpers

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustErr fails unless err matches want (errors.Is).
func mustErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// fp returns a fake SHA-256 fingerprint (64 lower-case hex digits).
func fp(n byte) string {
	return fmt.Sprintf("%064x", []byte{n})
}

// sampleParticipant is a participant with every field set; n varies it.
func sampleParticipant(entityID string, n int) *store.Participant {
	b := byte(n)
	return &store.Participant{
		EntityID:    entityID,
		DisplayName: fmt.Sprintf("Participant %d — 가맹점", n),
		Roles:       []store.Role{store.RolePG, store.RoleIssuer},
		Status:      store.StatusPending,
		Metadata:    []byte("<md:EntityDescriptor entityID=\"" + entityID + "\">\r\n  \xea\xb0\x80 \x00\xff</md:EntityDescriptor>\n"),
		Keys: []store.Key{
			{Use: store.KeySigning, CertDER: []byte{0x30, 0x82, b, 1}, Fingerprint: fp(b*4 + 1), NotAfter: at(365 * 24 * time.Hour)},
			{Use: store.KeySigning, CertDER: []byte{0x30, 0x82, b, 2}, Fingerprint: fp(b*4 + 2), NotAfter: at(30 * 24 * time.Hour)},
			{Use: store.KeyEncryption, CertDER: []byte{0x30, 0x82, b, 3}, Fingerprint: fp(b*4 + 3), NotAfter: at(365 * 24 * time.Hour)},
			{Use: store.KeyTLSClient, CertDER: []byte{0x30, 0x82, b, 4}, Fingerprint: fp(b*4 + 4), NotAfter: at(90*24*time.Hour + 7*time.Microsecond)},
		},
		Endpoints: []store.Endpoint{
			{Service: "urn:kecis:service:card:approve", Binding: "urn:oasis:names:tc:SAML:2.0:bindings:SOAP", URL: entityID + "/kecis/b", Priority: 2},
			{Service: "*", Binding: "urn:oasis:names:tc:SAML:2.0:bindings:SOAP", URL: entityID + "/kecis/a", Priority: 1},
			{Service: "urn:kecis:service:cardauth:authenticate", Binding: "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", URL: entityID + "/kecis/post", Priority: 0},
		},
		Services: []store.Service{
			{Service: "urn:kecis:service:card:approve", Currencies: []string{"KRW", "USD"}, MinAmount: 100, MaxAmount: 5_000_000_00, BINRanges: []string{"411111-411199", "4040"}},
			{Service: "urn:kecis:service:transfer:execute", BankCodes: []string{"004", "088"}},
			{Service: "urn:kecis:service:card:inquire"},
		},
		CreatedAt: at(0),
		UpdatedAt: at(time.Second),
	}
}

// normalize makes a participant comparable with reflect.DeepEqual: empty
// lists nil, bytes non-nil, times in UTC.
func normalize(p *store.Participant) *store.Participant {
	c := *p
	c.Metadata = nonNil(c.Metadata)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if len(c.Roles) == 0 {
		c.Roles = nil
	}
	c.Keys = nil
	for _, k := range p.Keys {
		k.CertDER = nonNil(k.CertDER)
		k.NotAfter = k.NotAfter.UTC()
		c.Keys = append(c.Keys, k)
	}
	c.Endpoints = nil
	c.Endpoints = append(c.Endpoints, p.Endpoints...)
	c.Services = nil
	for _, s := range p.Services {
		if len(s.Currencies) == 0 {
			s.Currencies = nil
		}
		if len(s.BINRanges) == 0 {
			s.BINRanges = nil
		}
		if len(s.BankCodes) == 0 {
			s.BankCodes = nil
		}
		c.Services = append(c.Services, s)
	}
	return &c
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// equalParticipant fails unless got equals want field by field.
func equalParticipant(t *testing.T, got, want *store.Participant) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	check := func(field string, a, b any) {
		t.Helper()
		if !reflect.DeepEqual(a, b) {
			t.Errorf("participant %s: %s\n got: %+v\nwant: %+v", want.EntityID, field, a, b)
		}
	}
	check("EntityID", g.EntityID, w.EntityID)
	check("DisplayName", g.DisplayName, w.DisplayName)
	check("Roles", g.Roles, w.Roles)
	check("Status", g.Status, w.Status)
	if !bytes.Equal(g.Metadata, w.Metadata) {
		t.Errorf("participant %s: Metadata bytes differ\n got: %q\nwant: %q", want.EntityID, g.Metadata, w.Metadata)
	}
	check("Keys", g.Keys, w.Keys)
	check("Endpoints", g.Endpoints, w.Endpoints)
	check("Services", g.Services, w.Services)
	check("Version", g.Version, w.Version)
	switch {
	case (g.Pending == nil) != (w.Pending == nil):
		t.Errorf("participant %s: Pending got %v, want %v", want.EntityID, g.Pending != nil, w.Pending != nil)
	case g.Pending != nil && (!bytes.Equal(g.Pending.Metadata, w.Pending.Metadata) || !g.Pending.RequestedAt.Equal(w.Pending.RequestedAt)):
		t.Errorf("participant %s: Pending got %q at %s, want %q at %s", want.EntityID,
			g.Pending.Metadata, g.Pending.RequestedAt, w.Pending.Metadata, w.Pending.RequestedAt)
	case g.Pending != nil && g.Pending.RequestedAt.Location() != time.UTC:
		t.Errorf("participant %s: Pending.RequestedAt in %s, want UTC", want.EntityID, g.Pending.RequestedAt.Location())
	}
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		t.Errorf("participant %s: times got created %s updated %s, want %s %s", want.EntityID,
			g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
}

func ids(ps []*store.Participant) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.EntityID)
	}
	return out
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// Ping

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(ctxFor(t)), "Ping")
}

// ---------------------------------------------------------------------------
// Participants

func testParticipantRoundTrip(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := sampleParticipant("https://pg.example/kecis", 1)
	must(t, s.CreateParticipant(ctx, p), "CreateParticipant")
	if p.Version != 1 {
		t.Errorf("CreateParticipant set Version %d, want 1", p.Version)
	}
	want := sampleParticipant("https://pg.example/kecis", 1)
	want.Version = 1
	got, err := s.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant")
	equalParticipant(t, got, want)
	if got.CreatedAt.Location() != time.UTC || got.Keys[0].NotAfter.Location() != time.UTC {
		t.Errorf("times not returned in UTC: %v, %v", got.CreatedAt.Location(), got.Keys[0].NotAfter.Location())
	}

	// Times given in another zone are the same instants.
	seoul := time.FixedZone("KST", 9*3600)
	q := sampleParticipant("https://issuer.example/kecis", 2)
	q.CreatedAt, q.UpdatedAt = at(0).In(seoul), at(time.Minute).In(seoul)
	must(t, s.CreateParticipant(ctx, q), "CreateParticipant (KST times)")
	got, err = s.GetParticipant(ctx, q.EntityID)
	must(t, err, "GetParticipant")
	if !got.CreatedAt.Equal(at(0)) || !got.UpdatedAt.Equal(at(time.Minute)) {
		t.Errorf("KST times: got %s %s", got.CreatedAt, got.UpdatedAt)
	}

	// The list returns the same full participants.
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{})
	must(t, err, "ListParticipants")
	if len(ps) != 2 {
		t.Fatalf("ListParticipants: %d participants, want 2", len(ps))
	}
	equalParticipant(t, ps[1], want)
}

func testParticipantEmptyLists(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := &store.Participant{EntityID: "urn:example:bare", Status: store.StatusPending, CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.CreateParticipant(ctx, p), "CreateParticipant")
	got, err := s.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant")
	if len(got.Roles)+len(got.Keys)+len(got.Endpoints)+len(got.Services)+len(got.Metadata) != 0 {
		t.Errorf("bare participant came back with data: %+v", got)
	}
	if got.Version != 1 || got.Status != store.StatusPending {
		t.Errorf("bare participant: version %d status %q", got.Version, got.Status)
	}
}

func testParticipantCreateExists(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(t, s.CreateParticipant(ctx, sampleParticipant("urn:example:a", 1)), "CreateParticipant")
	other := sampleParticipant("urn:example:a", 9)
	other.DisplayName = "impostor"
	mustErr(t, s.CreateParticipant(ctx, other), store.ErrExists, "CreateParticipant twice")
	got, err := s.GetParticipant(ctx, "urn:example:a")
	must(t, err, "GetParticipant")
	want := sampleParticipant("urn:example:a", 1)
	want.Version = 1
	equalParticipant(t, got, want) // the refused create changed nothing
}

func testParticipantNotFound(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	_, err := s.GetParticipant(ctx, "urn:example:nobody")
	mustErr(t, err, store.ErrNotFound, "GetParticipant of an unknown entity")
	p := sampleParticipant("urn:example:nobody", 1)
	p.Version = 1
	mustErr(t, s.UpdateParticipant(ctx, p), store.ErrNotFound, "UpdateParticipant of an unknown entity")
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{})
	must(t, err, "ListParticipants")
	if len(ps) != 0 {
		t.Errorf("empty store lists %d participants", len(ps))
	}
}

func testParticipantListOrder(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	// Byte order: upper case before lower case, "-" before ".".
	for i, id := range []string{"urn:c", "urn:a.z", "urn:B", "urn:a-z", "urn:a"} {
		must(t, s.CreateParticipant(ctx, sampleParticipant(id, i)), "CreateParticipant "+id)
	}
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{})
	must(t, err, "ListParticipants")
	equalStrings(t, "ListParticipants order", ids(ps), []string{"urn:B", "urn:a", "urn:a-z", "urn:a.z", "urn:c"})
	for i, p := range ps {
		if len(p.Keys) != 4 || len(p.Endpoints) != 3 || len(p.Services) != 3 || len(p.Roles) != 2 {
			t.Errorf("listed participant %d (%s) lacks children: %d keys %d endpoints %d services %d roles",
				i, p.EntityID, len(p.Keys), len(p.Endpoints), len(p.Services), len(p.Roles))
		}
	}
}

func testParticipantListFilters(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	n := 0
	mk := func(id string, st store.Status, roles ...store.Role) {
		n++
		p := sampleParticipant(id, n)
		p.Status, p.Roles = st, roles
		must(t, s.CreateParticipant(ctx, p), "CreateParticipant "+id)
	}
	mk("urn:m1", store.StatusActive, store.RoleMerchant)
	mk("urn:m2", store.StatusPending, store.RoleMerchant)
	mk("urn:pg", store.StatusActive, store.RolePG, store.RoleMerchant)
	mk("urn:is", store.StatusSuspended, store.RoleIssuer)
	mk("urn:bk", store.StatusRemoved, store.RoleBank)

	cases := []struct {
		name string
		f    store.ParticipantFilter
		want []string
	}{
		{"all", store.ParticipantFilter{}, []string{"urn:bk", "urn:is", "urn:m1", "urn:m2", "urn:pg"}},
		{"active", store.ParticipantFilter{Status: []store.Status{store.StatusActive}}, []string{"urn:m1", "urn:pg"}},
		{"active or suspended", store.ParticipantFilter{Status: []store.Status{store.StatusSuspended, store.StatusActive}}, []string{"urn:is", "urn:m1", "urn:pg"}},
		{"merchants", store.ParticipantFilter{Role: store.RoleMerchant}, []string{"urn:m1", "urn:m2", "urn:pg"}},
		{"active merchants", store.ParticipantFilter{Status: []store.Status{store.StatusActive}, Role: store.RoleMerchant}, []string{"urn:m1", "urn:pg"}},
		{"pending issuers", store.ParticipantFilter{Status: []store.Status{store.StatusPending}, Role: store.RoleIssuer}, nil},
		{"telecoms", store.ParticipantFilter{Role: store.RoleTelecom}, nil},
	}
	for _, c := range cases {
		ps, err := s.ListParticipants(ctx, c.f)
		must(t, err, "ListParticipants "+c.name)
		equalStrings(t, "ListParticipants "+c.name, ids(ps), c.want)
		for _, p := range ps {
			if len(p.Keys) != 4 {
				t.Errorf("ListParticipants %s: %s has %d keys, want 4", c.name, p.EntityID, len(p.Keys))
			}
		}
	}
	// A filtered list still returns all roles of a participant.
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{Role: store.RolePG})
	must(t, err, "ListParticipants pg")
	if len(ps) != 1 || !reflect.DeepEqual(ps[0].Roles, []store.Role{store.RolePG, store.RoleMerchant}) {
		t.Errorf("ListParticipants pg: got %+v", ps)
	}
}

func testParticipantUpdate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := sampleParticipant("urn:example:pg", 1)
	must(t, s.CreateParticipant(ctx, p), "CreateParticipant")

	cur, err := s.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant")
	next := sampleParticipant("urn:example:pg", 7) // all new keys, endpoints, services
	next.Version = cur.Version
	next.Status = store.StatusActive
	next.DisplayName = "renamed"
	next.Roles = []store.Role{store.RoleBank}
	next.Keys = next.Keys[1:]
	next.Endpoints = next.Endpoints[:1]
	next.Services = nil
	next.Metadata = []byte("<md:EntityDescriptor/>")
	next.CreatedAt = at(99 * time.Hour) // ignored: CreatedAt is kept
	next.UpdatedAt = at(time.Hour)
	must(t, s.UpdateParticipant(ctx, next), "UpdateParticipant")
	if next.Version != 2 {
		t.Errorf("UpdateParticipant set Version %d, want 2", next.Version)
	}

	want := sampleParticipant("urn:example:pg", 7)
	want.Version, want.Status, want.DisplayName = 2, store.StatusActive, "renamed"
	want.Roles = []store.Role{store.RoleBank}
	want.Keys, want.Endpoints, want.Services = want.Keys[1:], want.Endpoints[:1], nil
	want.Metadata = []byte("<md:EntityDescriptor/>")
	want.CreatedAt, want.UpdatedAt = at(0), at(time.Hour)
	got, err := s.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant after update")
	equalParticipant(t, got, want)

	// A second update from the fresh copy works and bumps again.
	got.Status, got.UpdatedAt = store.StatusSuspended, at(2*time.Hour)
	must(t, s.UpdateParticipant(ctx, got), "UpdateParticipant again")
	again, err := s.GetParticipant(ctx, p.EntityID)
	must(t, err, "GetParticipant")
	if again.Version != 3 || again.Status != store.StatusSuspended || len(again.Keys) != 3 {
		t.Errorf("after second update: version %d status %s keys %d", again.Version, again.Status, len(again.Keys))
	}
}

func testParticipantUpdateConflict(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(t, s.CreateParticipant(ctx, sampleParticipant("urn:example:pg", 1)), "CreateParticipant")
	a, err := s.GetParticipant(ctx, "urn:example:pg")
	must(t, err, "GetParticipant")
	b, err := s.GetParticipant(ctx, "urn:example:pg")
	must(t, err, "GetParticipant")

	a.Status, a.UpdatedAt = store.StatusActive, at(time.Minute)
	must(t, s.UpdateParticipant(ctx, a), "first UpdateParticipant")
	b.Status, b.DisplayName, b.Keys, b.UpdatedAt = store.StatusRemoved, "stale", nil, at(2*time.Minute)
	mustErr(t, s.UpdateParticipant(ctx, b), store.ErrConflict, "UpdateParticipant with a stale version")
	if b.Version != 1 {
		t.Errorf("a refused update changed p.Version to %d", b.Version)
	}

	got, err := s.GetParticipant(ctx, "urn:example:pg")
	must(t, err, "GetParticipant")
	want := sampleParticipant("urn:example:pg", 1)
	want.Version, want.Status, want.UpdatedAt = 2, store.StatusActive, at(time.Minute)
	equalParticipant(t, got, want) // the stale update left no trace

	// A version from the future is a conflict too.
	got.Version = 10
	mustErr(t, s.UpdateParticipant(ctx, got), store.ErrConflict, "UpdateParticipant with a future version")
}

func testParticipantByCertificate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := sampleParticipant("urn:example:a", 1)
	b := sampleParticipant("urn:example:b", 2)
	must(t, s.CreateParticipant(ctx, a), "CreateParticipant a")
	must(t, s.CreateParticipant(ctx, b), "CreateParticipant b")

	for _, k := range a.Keys {
		got, err := s.ParticipantByCertificate(ctx, k.Use, k.Fingerprint)
		must(t, err, "ParticipantByCertificate "+string(k.Use))
		if got.EntityID != a.EntityID {
			t.Errorf("ParticipantByCertificate(%s, %s) = %s, want %s", k.Use, k.Fingerprint, got.EntityID, a.EntityID)
		}
		if len(got.Keys) != len(a.Keys) || len(got.Endpoints) != len(a.Endpoints) {
			t.Errorf("ParticipantByCertificate returned a partial participant: %+v", got)
		}
	}
	tls := b.Keys[3]
	got, err := s.ParticipantByCertificate(ctx, store.KeyTLSClient, tls.Fingerprint)
	must(t, err, "ParticipantByCertificate b")
	if got.EntityID != b.EntityID {
		t.Errorf("ParticipantByCertificate = %s, want %s", got.EntityID, b.EntityID)
	}

	// The use must match: a signing certificate does not authenticate TLS.
	_, err = s.ParticipantByCertificate(ctx, store.KeyTLSClient, a.Keys[0].Fingerprint)
	mustErr(t, err, store.ErrNotFound, "ParticipantByCertificate with the wrong use")
	_, err = s.ParticipantByCertificate(ctx, store.KeyTLSServer, fp(200))
	mustErr(t, err, store.ErrNotFound, "ParticipantByCertificate of an unknown certificate")

	// After a rollover that drops the key, it no longer finds b.
	cur, err := s.GetParticipant(ctx, b.EntityID)
	must(t, err, "GetParticipant")
	cur.Keys = cur.Keys[:3]
	cur.UpdatedAt = at(time.Hour)
	must(t, s.UpdateParticipant(ctx, cur), "UpdateParticipant")
	_, err = s.ParticipantByCertificate(ctx, store.KeyTLSClient, tls.Fingerprint)
	mustErr(t, err, store.ErrNotFound, "ParticipantByCertificate of a dropped key")
}

func testParticipantPendingVersion(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const id = "https://shop.example/kecis"
	p := sampleParticipant(id, 3)
	p.Status = store.StatusActive
	must(t, s.CreateParticipant(ctx, p), "CreateParticipant")
	got, err := s.GetParticipant(ctx, id)
	must(t, err, "GetParticipant")
	if got.Pending != nil {
		t.Fatalf("a new participant has a pending version: %+v", got.Pending)
	}

	// A pending version is stored beside the active one, which it leaves
	// as it was.
	pending := &store.PendingVersion{
		Metadata:    []byte("<md:EntityDescriptor entityID=\"" + id + "\">issuer \xea\xb0\x80\r\n\x00</md:EntityDescriptor>"),
		RequestedAt: at(time.Hour + 3*time.Microsecond).In(time.FixedZone("KST", 9*3600)),
	}
	got.Pending, got.UpdatedAt = pending, at(time.Hour)
	must(t, s.UpdateParticipant(ctx, got), "UpdateParticipant with a pending version")
	want := sampleParticipant(id, 3)
	want.Status, want.Version, want.UpdatedAt = store.StatusActive, 2, at(time.Hour)
	want.Pending = &store.PendingVersion{Metadata: pending.Metadata, RequestedAt: pending.RequestedAt.UTC()}
	got, err = s.GetParticipant(ctx, id)
	must(t, err, "GetParticipant")
	equalParticipant(t, got, want)
	ps, err := s.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
	must(t, err, "ListParticipants")
	if len(ps) != 1 {
		t.Fatalf("ListParticipants: %v", ids(ps))
	}
	equalParticipant(t, ps[0], want)
	// Only the active version's keys are published.
	if _, err := s.ParticipantByCertificate(ctx, store.KeyTLSClient, fp(200)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ParticipantByCertificate of a certificate nobody publishes: %v", err)
	}
	byCert, err := s.ParticipantByCertificate(ctx, store.KeyTLSClient, want.Keys[3].Fingerprint)
	must(t, err, "ParticipantByCertificate")
	equalParticipant(t, byCert, want)

	// Another participant's update does not touch it; a stale update is a
	// conflict and leaves it.
	must(t, s.CreateParticipant(ctx, sampleParticipant("https://other.example/kecis", 4)), "CreateParticipant other")
	stale := *got
	stale.Version, stale.Pending = 1, nil
	mustErr(t, s.UpdateParticipant(ctx, &stale), store.ErrConflict, "a stale UpdateParticipant")

	// Replacing it, then clearing it (an approval or a rejection).
	got.Pending = &store.PendingVersion{Metadata: []byte("<md:EntityDescriptor/>"), RequestedAt: at(2 * time.Hour)}
	must(t, s.UpdateParticipant(ctx, got), "UpdateParticipant replacing the pending version")
	again, err := s.GetParticipant(ctx, id)
	must(t, err, "GetParticipant")
	if again.Pending == nil || string(again.Pending.Metadata) != "<md:EntityDescriptor/>" || !again.Pending.RequestedAt.Equal(at(2*time.Hour)) {
		t.Errorf("replaced pending version: %+v", again.Pending)
	}
	again.Pending, again.Metadata, again.UpdatedAt = nil, []byte("<md:EntityDescriptor approved/>"), at(3*time.Hour)
	must(t, s.UpdateParticipant(ctx, again), "UpdateParticipant clearing the pending version")
	cleared, err := s.GetParticipant(ctx, id)
	must(t, err, "GetParticipant")
	if cleared.Pending != nil || string(cleared.Metadata) != "<md:EntityDescriptor approved/>" || cleared.Version != 4 {
		t.Errorf("after clearing: pending %+v metadata %q version %d", cleared.Pending, cleared.Metadata, cleared.Version)
	}

	// A participant may be created with a pending version (a restore).
	q := sampleParticipant("https://restored.example/kecis", 5)
	q.Pending = &store.PendingVersion{Metadata: []byte("x"), RequestedAt: at(time.Minute)}
	must(t, s.CreateParticipant(ctx, q), "CreateParticipant with a pending version")
	gq, err := s.GetParticipant(ctx, q.EntityID)
	must(t, err, "GetParticipant")
	wq := sampleParticipant("https://restored.example/kecis", 5)
	wq.Version, wq.Pending = 1, q.Pending
	equalParticipant(t, gq, wq)
	// A pending version without metadata is refused.
	bad := sampleParticipant("https://bad.example/kecis", 6)
	bad.Pending = &store.PendingVersion{RequestedAt: at(0)}
	if err := s.CreateParticipant(ctx, bad); err == nil {
		t.Errorf("CreateParticipant with an empty pending version succeeded")
	}
}

// ---------------------------------------------------------------------------
// Replay

const issuer = "https://pg.example/kecis"

func testReplayRemember(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	exp := at(5 * time.Minute)
	must(t, s.RememberMessage(ctx, issuer, "_id1", exp, at(0)), "RememberMessage")
	mustErr(t, s.RememberMessage(ctx, issuer, "_id1", exp, at(0)), store.ErrAlreadySeen, "RememberMessage replay")
	mustErr(t, s.RememberMessage(ctx, issuer, "_id1", at(time.Hour), at(time.Minute)), store.ErrAlreadySeen,
		"RememberMessage replay with a later expiry")
	// IDs are unique per issuer: another issuer may use the same ID.
	must(t, s.RememberMessage(ctx, "https://other.example/kecis", "_id1", exp, at(0)), "RememberMessage other issuer")
	must(t, s.RememberMessage(ctx, issuer, "_id2", exp, at(0)), "RememberMessage other ID")
	// Case matters in XML IDs.
	must(t, s.RememberMessage(ctx, issuer, "_ID1", exp, at(0)), "RememberMessage ID in other case")
}

func testReplayExpiry(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	exp := at(5 * time.Minute)
	must(t, s.RememberMessage(ctx, issuer, "_id", exp, at(0)), "RememberMessage")
	mustErr(t, s.RememberMessage(ctx, issuer, "_id", at(10*time.Minute), exp.Add(-time.Microsecond)), store.ErrAlreadySeen,
		"RememberMessage one microsecond before expiry")
	// At the expiry instant the record is gone (live while now < expires),
	// even though nothing purged it; the new record starts a new window.
	must(t, s.RememberMessage(ctx, issuer, "_id", at(10*time.Minute), exp), "RememberMessage at expiry")
	mustErr(t, s.RememberMessage(ctx, issuer, "_id", at(20*time.Minute), at(9*time.Minute)), store.ErrAlreadySeen,
		"RememberMessage within the new window")
}

func testReplayPurge(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	n, err := s.PurgeReplay(ctx, at(0))
	must(t, err, "PurgeReplay on an empty cache")
	if n != 0 {
		t.Errorf("PurgeReplay on an empty cache = %d", n)
	}
	for i := range 5 {
		must(t, s.RememberMessage(ctx, issuer, fmt.Sprintf("_id%d", i), at(time.Duration(i+1)*time.Minute), at(0)), "RememberMessage")
	}
	n, err = s.PurgeReplay(ctx, at(3*time.Minute)) // expires 1, 2 and 3 minutes go
	must(t, err, "PurgeReplay")
	if n != 3 {
		t.Errorf("PurgeReplay = %d, want 3", n)
	}
	mustErr(t, s.RememberMessage(ctx, issuer, "_id3", at(time.Hour), at(3*time.Minute)), store.ErrAlreadySeen,
		"a live record survives the purge")
	must(t, s.RememberMessage(ctx, issuer, "_id0", at(time.Hour), at(3*time.Minute)), "RememberMessage of a purged ID")
	n, err = s.PurgeReplay(ctx, at(3*time.Minute))
	must(t, err, "PurgeReplay again")
	if n != 0 {
		t.Errorf("second PurgeReplay = %d, want 0", n)
	}
}

// ---------------------------------------------------------------------------
// Idempotency

const (
	scope = "https://mall.example/kecis"
	key   = "order-20261122-0001"
)

var (
	fpA = []byte{0xa1, 0xa2, 0xa3, 0x00, 0xff}
	fpB = []byte{0xb1, 0xb2, 0xb3, 0x00, 0xff}
)

// checkEntry compares an entry with what is expected.
func checkEntry(t *testing.T, what string, e *store.IdemEntry, want store.IdemEntry) {
	t.Helper()
	if e == nil {
		t.Fatalf("%s: nil entry", what)
	}
	if e.Scope != want.Scope || e.Key != want.Key || !bytes.Equal(e.Fingerprint, want.Fingerprint) ||
		e.State != want.State || e.LeaseOwner != want.LeaseOwner || !e.LeaseExpires.Equal(want.LeaseExpires) ||
		e.RequestID != want.RequestID || !e.CreatedAt.Equal(want.CreatedAt) || !e.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s: entry\n got: %+v\nwant: %+v", what, *e, want)
	}
}

func acquire(t *testing.T, s store.Store, owner, requestID string, fingerprint []byte, lease, now time.Time, want saml.IdemResult) *store.IdemEntry {
	t.Helper()
	res, e, err := s.AcquireIdem(ctxFor(t), scope, key, fingerprint, owner, requestID, lease, now)
	must(t, err, "AcquireIdem by "+owner)
	if res != want {
		t.Fatalf("AcquireIdem by %s = %s, want %s (entry %+v)", owner, res, want, e)
	}
	return e
}

func testIdemAcquire(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	_, err := s.GetIdem(ctx, scope, key)
	mustErr(t, err, store.ErrNotFound, "GetIdem before AcquireIdem")
	e := acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	want := store.IdemEntry{Scope: scope, Key: key, Fingerprint: fpA, State: store.IdemInFlight, LeaseOwner: "hub-1",
		LeaseExpires: at(30 * time.Second), RequestID: "_req1", CreatedAt: at(0), UpdatedAt: at(0)}
	checkEntry(t, "AcquireIdem result", e, want)
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	checkEntry(t, "GetIdem", got, want)
}

func testIdemInFlight(t *testing.T, s store.Store) {
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	e := acquire(t, s, "hub-2", "_req2", fpA, at(40*time.Second), at(10*time.Second), saml.IdemInFlight)
	want := store.IdemEntry{Scope: scope, Key: key, Fingerprint: fpA, State: store.IdemInFlight, LeaseOwner: "hub-1",
		LeaseExpires: at(30 * time.Second), RequestID: "_req1", CreatedAt: at(0), UpdatedAt: at(0)}
	checkEntry(t, "InFlight entry", e, want)
	// The same owner retrying is still in flight: a lease is not re-entrant.
	acquire(t, s, "hub-1", "_req3", fpA, at(40*time.Second), at(29*time.Second), saml.IdemInFlight)
	got, err := s.GetIdem(ctxFor(t), scope, key)
	must(t, err, "GetIdem")
	checkEntry(t, "GetIdem after refused acquires", got, want)
}

func testIdemMismatch(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	e := acquire(t, s, "hub-2", "_req2", fpB, at(40*time.Second), at(10*time.Second), saml.IdemMismatch)
	if !bytes.Equal(e.Fingerprint, fpA) || e.LeaseOwner != "hub-1" {
		t.Errorf("Mismatch entry: %+v", e)
	}
	// Still a mismatch after the lease expired and after the key is done.
	acquire(t, s, "hub-2", "_req2", fpB, at(2*time.Minute), at(time.Minute), saml.IdemMismatch)
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(time.Minute)), "ReleaseIdem")
	acquire(t, s, "hub-2", "_req3", fpB, at(3*time.Minute), at(2*time.Minute), saml.IdemMismatch)
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if !bytes.Equal(got.Fingerprint, fpA) || got.State != store.IdemDone || got.RequestID != "_req1" {
		t.Errorf("a mismatched acquire changed the entry: %+v", got)
	}
}

func testIdemReacquireAfterDone(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(5*time.Second)), "ReleaseIdem done")
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if got.State != store.IdemDone || got.LeaseOwner != "" || !got.UpdatedAt.Equal(at(5*time.Second)) {
		t.Errorf("after ReleaseIdem done: %+v", got)
	}
	n, err := s.CountInFlight(ctx, at(5*time.Second))
	must(t, err, "CountInFlight")
	if n != 0 {
		t.Errorf("CountInFlight after done = %d", n)
	}
	// A retry of a finished key is forwarded again (the provider answers
	// it with the original outcome): the caller gets the lease.
	e := acquire(t, s, "hub-2", "_req2", fpA, at(70*time.Second), at(time.Minute), saml.IdemReacquired)
	checkEntry(t, "Reacquired entry", e, store.IdemEntry{Scope: scope, Key: key, Fingerprint: fpA, State: store.IdemInFlight,
		LeaseOwner: "hub-2", LeaseExpires: at(70 * time.Second), RequestID: "_req2", CreatedAt: at(0), UpdatedAt: at(time.Minute)})
	acquire(t, s, "hub-1", "_req3", fpA, at(70*time.Second), at(time.Minute), saml.IdemInFlight)
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-2", store.IdemDone, at(61*time.Second)), "ReleaseIdem by the new owner")
}

func testIdemReacquireAfterLeaseExpiry(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	acquire(t, s, "hub-2", "_req2", fpA, at(time.Minute), at(30*time.Second-time.Microsecond), saml.IdemInFlight)
	// The first hub crashed: at the lease's end the key is free again.
	e := acquire(t, s, "hub-2", "_req2", fpA, at(time.Minute), at(30*time.Second), saml.IdemReacquired)
	if e.LeaseOwner != "hub-2" || e.RequestID != "_req2" || !e.CreatedAt.Equal(at(0)) {
		t.Errorf("Reacquired entry: %+v", e)
	}
	// The first hub comes back and may no longer release.
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(40*time.Second)), store.ErrConflict,
		"ReleaseIdem by the owner whose lease expired and was taken over")
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if got.LeaseOwner != "hub-2" || got.State != store.IdemInFlight {
		t.Errorf("the refused release changed the entry: %+v", got)
	}
	// An expired lease nobody took over may still be released by its owner.
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-2", store.IdemDone, at(2*time.Minute)), "late ReleaseIdem by the owner")
}

func testIdemReleaseWithoutAnswer(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	// The provider timed out: not an outcome; the key is retryable at once.
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemInFlight, at(10*time.Second)), "ReleaseIdem in flight")
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if got.State != store.IdemInFlight || got.LeaseOwner != "" || got.LeaseExpires.After(at(10*time.Second)) {
		t.Errorf("after ReleaseIdem without answer: %+v", got)
	}
	n, err := s.CountInFlight(ctx, at(10*time.Second))
	must(t, err, "CountInFlight")
	if n != 0 {
		t.Errorf("CountInFlight after the lease was cleared = %d", n)
	}
	acquire(t, s, "hub-2", "_req2", fpA, at(40*time.Second), at(10*time.Second), saml.IdemReacquired)
	// Releasing twice is a conflict: the lease is no longer held.
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemInFlight, at(11*time.Second)), store.ErrConflict,
		"ReleaseIdem of a lease already released")
}

func testIdemReleaseByNonOwner(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(0)), store.ErrNotFound,
		"ReleaseIdem of an unknown key")
	acquire(t, s, "hub-1", "_req1", fpA, at(30*time.Second), at(0), saml.IdemAcquired)
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "hub-2", store.IdemDone, at(time.Second)), store.ErrConflict,
		"ReleaseIdem by a non-owner")
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "", store.IdemInFlight, at(time.Second)), store.ErrConflict,
		"ReleaseIdem by the empty owner")
	must(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(2*time.Second)), "ReleaseIdem by the owner")
	mustErr(t, s.ReleaseIdem(ctx, scope, key, "hub-1", store.IdemDone, at(3*time.Second)), store.ErrConflict,
		"ReleaseIdem of a done key")
	got, err := s.GetIdem(ctx, scope, key)
	must(t, err, "GetIdem")
	if got.State != store.IdemDone || !got.UpdatedAt.Equal(at(2*time.Second)) {
		t.Errorf("refused releases changed the entry: %+v", got)
	}
}

func testIdemScopes(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	onBehalf := "https://hub.example/kecis|https://mall.example/kecis"
	for _, sc := range []string{scope, "https://other.example/kecis", onBehalf} {
		res, _, err := s.AcquireIdem(ctx, sc, key, fpA, "hub-1", "_r", at(time.Minute), at(0))
		must(t, err, "AcquireIdem in "+sc)
		if res != saml.IdemAcquired {
			t.Errorf("AcquireIdem in scope %s = %s, want acquired (keys are scoped)", sc, res)
		}
	}
	res, _, err := s.AcquireIdem(ctx, scope, key+"-2", fpB, "hub-1", "_r", at(time.Minute), at(0))
	must(t, err, "AcquireIdem other key")
	if res != saml.IdemAcquired {
		t.Errorf("AcquireIdem of another key = %s", res)
	}
	_, err = s.GetIdem(ctx, "https://nobody.example", key)
	mustErr(t, err, store.ErrNotFound, "GetIdem in an unknown scope")
}

func testIdemCountInFlight(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	count := func(now time.Time, want int64) {
		t.Helper()
		n, err := s.CountInFlight(ctx, now)
		must(t, err, "CountInFlight")
		if n != want {
			t.Errorf("CountInFlight at %s = %d, want %d", now.Sub(t0), n, want)
		}
	}
	count(at(0), 0)
	for i, lease := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 40 * time.Second} {
		_, _, err := s.AcquireIdem(ctx, scope, fmt.Sprintf("k%d", i), fpA, "hub-1", "_r", at(lease), at(0))
		must(t, err, "AcquireIdem")
	}
	count(at(0), 4)
	count(at(10*time.Second), 3) // a lease ending now is over
	must(t, s.ReleaseIdem(ctx, scope, "k3", "hub-1", store.IdemDone, at(11*time.Second)), "ReleaseIdem")
	count(at(11*time.Second), 2)
	must(t, s.ReleaseIdem(ctx, scope, "k2", "hub-1", store.IdemInFlight, at(12*time.Second)), "ReleaseIdem")
	count(at(12*time.Second), 1)
	count(at(time.Minute), 0)
}

// ---------------------------------------------------------------------------
// Audit

// signedMessage stands for a signed message: its exact bytes matter.
var signedMessage = []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
	"<kecis:ServiceRequest xmlns:kecis=\"urn:kecis:protocol:1.0\" ID=\"_a1\">\r\n\t<x a='1'  b=\"2\"/>" +
	"<y>\xea\xb2\xb0\xec\xa0\x9c &amp; &#xD;</y> </kecis:ServiceRequest>\n\n")

func testAuditAppendList(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	recs, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err, "ListAudit on an empty log")
	if len(recs) != 0 {
		t.Fatalf("empty log lists %d records", len(recs))
	}
	in := []*store.AuditRecord{
		{Time: at(0), Kind: "message.in", Actor: issuer, EntityID: issuer, TxID: "tx1", RequestID: "_a1",
			IdempotencyKey: key, Detail: `{"service":"urn:kecis:service:card:approve","amount":"15000"}`, Message: signedMessage},
		{Time: at(time.Second), Kind: "message.out", Actor: "https://issuer.example", EntityID: issuer, TxID: "tx1",
			RequestID: "_a1", Detail: `{}`, Message: []byte{0x00, 0x01, 0xfe, 0xff}},
		{Time: at(2 * time.Second), Kind: "participant.approve", Actor: "operator:kim", EntityID: "https://issuer.example"},
	}
	var last int64
	for i, r := range in {
		must(t, s.AppendAudit(ctx, r), "AppendAudit")
		if r.ID <= last {
			t.Errorf("record %d got ID %d, not above the previous %d", i, r.ID, last)
		}
		last = r.ID
	}
	recs, err = s.ListAudit(ctx, store.AuditFilter{})
	must(t, err, "ListAudit")
	if len(recs) != len(in) {
		t.Fatalf("ListAudit: %d records, want %d", len(recs), len(in))
	}
	for i, got := range recs {
		want := in[i]
		if got.ID != want.ID || !got.Time.Equal(want.Time) || got.Kind != want.Kind || got.Actor != want.Actor ||
			got.EntityID != want.EntityID || got.TxID != want.TxID || got.RequestID != want.RequestID ||
			got.IdempotencyKey != want.IdempotencyKey || got.Detail != want.Detail {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, want)
		}
		if !bytes.Equal(got.Message, want.Message) {
			t.Errorf("record %d: Message bytes differ\n got %q\nwant %q", i, got.Message, want.Message)
		}
	}
}

func testAuditFilters(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	type rec struct {
		sec          int
		kind, entity string
		tx, req      string
	}
	for _, r := range []rec{
		{0, "message.in", "urn:a", "tx1", "_r1"},
		{1, "message.out", "urn:b", "tx1", "_r1"},
		{2, "message.in", "urn:a", "tx2", "_r2"},
		{3, "message.refused", "urn:c", "", "_r3"},
		{4, "participant.approve", "urn:a", "", ""},
		{5, "message.in", "urn:b", "tx3", "_r4"},
	} {
		must(t, s.AppendAudit(ctx, &store.AuditRecord{Time: at(time.Duration(r.sec) * time.Second), Kind: r.kind,
			Actor: "a", EntityID: r.entity, TxID: r.tx, RequestID: r.req, Detail: fmt.Sprint(r.sec)}), "AppendAudit")
	}
	cases := []struct {
		name string
		f    store.AuditFilter
		want []string // Detail values, in order
	}{
		{"all", store.AuditFilter{}, []string{"0", "1", "2", "3", "4", "5"}},
		{"tx", store.AuditFilter{TxID: "tx1"}, []string{"0", "1"}},
		{"request", store.AuditFilter{RequestID: "_r2"}, []string{"2"}},
		{"entity", store.AuditFilter{EntityID: "urn:a"}, []string{"0", "2", "4"}},
		{"kind", store.AuditFilter{Kind: "message.in"}, []string{"0", "2", "5"}},
		{"since (inclusive)", store.AuditFilter{Since: at(3 * time.Second)}, []string{"3", "4", "5"}},
		{"until (exclusive)", store.AuditFilter{Until: at(2 * time.Second)}, []string{"0", "1"}},
		{"window", store.AuditFilter{Since: at(time.Second), Until: at(4 * time.Second)}, []string{"1", "2", "3"}},
		{"kind and entity", store.AuditFilter{Kind: "message.in", EntityID: "urn:b"}, []string{"5"}},
		{"limit", store.AuditFilter{Limit: 2}, []string{"0", "1"}},
		{"kind with limit", store.AuditFilter{Kind: "message.in", Limit: 2}, []string{"0", "2"}},
		{"entity in window", store.AuditFilter{EntityID: "urn:a", Since: at(time.Second), Until: at(5 * time.Second)}, []string{"2", "4"}},
		{"no match", store.AuditFilter{TxID: "tx9"}, nil},
	}
	for _, c := range cases {
		recs, err := s.ListAudit(ctx, c.f)
		must(t, err, "ListAudit "+c.name)
		var got []string
		for _, r := range recs {
			got = append(got, r.Detail)
		}
		equalStrings(t, "ListAudit "+c.name, got, c.want)
	}
}

// testAuditTransactions: a record is found by its transaction ID whatever
// its form (KECIS §12.3: Issuer|IdempotencyKey; a request ID; anything a
// caller gives), and by no other — a store that derives the ID from the
// key (sqlstore: splitTx) must not mistake one transaction for another
// that shares a key or a prefix, nor split an ID wrongly when the key or
// the issuer holds a "|" — and gives the ID back exactly.
func testAuditTransactions(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	type rec struct{ tx, key string }
	recs := []rec{
		{issuer + "|" + key, key},      // 0: Issuer|IdempotencyKey
		{scope + "|" + key, key},       // 1: the same key, another issuer
		{issuer + "|a|b", "a|b"},       // 2: a key holding a "|"
		{issuer + "|a|b", "b"},         // 3: the same ID, split elsewhere
		{"_req-9", key},                // 4: a request ID, with a key
		{issuer + "|other", key},       // 5: an ID that does not end with its key
		{"", key},                      // 6: none
		{"|" + key, key},               // 7: an empty prefix
		{issuer + "|" + key + "x", ""}, // 8: no key
		{issuer + "|" + key, key},      // 9: record 0's transaction again
	}
	for i, r := range recs {
		must(t, s.AppendAudit(ctx, &store.AuditRecord{Time: at(time.Duration(i) * time.Second), Kind: "message.in",
			Actor: issuer, EntityID: scope, TxID: r.tx, RequestID: fmt.Sprintf("_r%d", i), IdempotencyKey: r.key,
			Detail: fmt.Sprint(i)}), "AppendAudit")
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err, "ListAudit")
	for i, r := range all {
		if r.TxID != recs[i].tx || r.IdempotencyKey != recs[i].key {
			t.Errorf("record %d: TxID %q key %q, want %q %q", i, r.TxID, r.IdempotencyKey, recs[i].tx, recs[i].key)
		}
	}
	for _, c := range []struct {
		tx    string
		limit int
		want  []string
	}{
		{issuer + "|" + key, 0, []string{"0", "9"}},
		{issuer + "|" + key, 1, []string{"0"}},
		{scope + "|" + key, 0, []string{"1"}},
		{issuer + "|a|b", 0, []string{"2", "3"}},
		{"_req-9", 0, []string{"4"}},
		{issuer + "|other", 0, []string{"5"}},
		{"|" + key, 0, []string{"7"}},
		{issuer + "|" + key + "x", 0, []string{"8"}},
		{key, 0, nil},
		{issuer, 0, nil},
		{"|", 0, nil},
	} {
		recs, err := s.ListAudit(ctx, store.AuditFilter{TxID: c.tx, Limit: c.limit})
		must(t, err, "ListAudit")
		var got []string
		for _, r := range recs {
			got = append(got, r.Detail)
			if r.TxID != c.tx {
				t.Errorf("ListAudit(tx %q) gave a record of %q", c.tx, r.TxID)
			}
		}
		equalStrings(t, fmt.Sprintf("ListAudit(tx %q, limit %d)", c.tx, c.limit), got, c.want)
	}
}

// testAuditLongMessages: messages of the size of real ones, many of one
// scope (kind, actor, entity) and some of others, one whose shape changes,
// each with its detail, come back byte for byte, details included — what a
// store that compresses them against what a scope's messages share must
// keep (KECIS §12.3) — through every filter.
func testAuditLongMessages(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	// A certificate's worth of bytes no earlier message holds.
	cert := make([]byte, 1200)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range cert {
		cert[i] = byte(rng.Uint32())
	}
	newCert := "<X509Certificate>" + base64.StdEncoding.EncodeToString(cert) + "</X509Certificate>"
	msg := func(i int, shape string) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "<kecis:ServiceRequest xmlns:kecis=\"urn:kecis:protocol:1.0\" ID=\"_m%04d\">%s", i, shape)
		for j := range 40 {
			fmt.Fprintf(&b, "<f n=\"%d\">%x</f>\r\n", j, (i+1)*(j+7)*2654435761)
		}
		b.WriteString("</kecis:ServiceRequest>\n")
		return b.Bytes()
	}
	type rec struct {
		r    *store.AuditRecord
		want []byte
	}
	var in []rec
	for i := range 30 {
		kind, actor, shape := "message.in", issuer, "<a/>"
		switch {
		case i%5 == 4:
			kind = "message.out"
		case i%7 == 6:
			actor = scope
		case i >= 20:
			shape = newCert // the signer's key rolled over
		}
		m := msg(i, shape)
		r := &store.AuditRecord{Time: at(time.Duration(i) * time.Second), Kind: kind, Actor: actor, EntityID: scope,
			TxID: fmt.Sprintf("%s|k%d", actor, i), RequestID: fmt.Sprintf("_m%04d", i), IdempotencyKey: fmt.Sprintf("k%d", i),
			Detail: fmt.Sprintf(`{"service":"urn:kecis:service:card:approve","status":"%d","note":"\u00e9\uac00 %d"}`, i%3, i), Message: m}
		in = append(in, rec{r, bytes.Clone(m)})
	}
	// Half one at a time, half in one commit.
	for _, x := range in[:15] {
		must(t, s.AppendAudit(ctx, x.r), "AppendAudit")
	}
	var batch []*store.AuditRecord
	for _, x := range in[15:] {
		batch = append(batch, x.r)
	}
	_, err := s.Commit(ctx, &store.Writes{Now: at(time.Hour), Audit: batch})
	must(t, err, "Commit")
	check := func(what string, got []*store.AuditRecord, want []rec) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
		}
		for i, r := range got {
			w := want[i].r
			if r.ID != w.ID || r.Kind != w.Kind || r.Actor != w.Actor || r.EntityID != w.EntityID || r.TxID != w.TxID ||
				r.RequestID != w.RequestID || r.IdempotencyKey != w.IdempotencyKey || r.Detail != w.Detail || !r.Time.Equal(w.Time) {
				t.Errorf("%s, record %d:\n got %+v\nwant %+v", what, i, r, w)
			}
			if !bytes.Equal(r.Message, want[i].want) {
				t.Errorf("%s, record %d: the message differs", what, i)
			}
		}
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err, "ListAudit")
	check("ListAudit", all, in)
	for _, i := range []int{0, 6, 19, 24, 29} {
		w := in[i]
		got, err := s.ListAudit(ctx, store.AuditFilter{TxID: w.r.TxID})
		must(t, err, "ListAudit by transaction")
		check("ListAudit by transaction "+w.r.TxID, got, []rec{w})
		got, err = s.ListAudit(ctx, store.AuditFilter{RequestID: w.r.RequestID})
		must(t, err, "ListAudit by request")
		check("ListAudit by request "+w.r.RequestID, got, []rec{w})
	}
	var outs []rec
	for _, x := range in {
		if x.r.Kind == "message.out" {
			outs = append(outs, x)
		}
	}
	got, err := s.ListAudit(ctx, store.AuditFilter{Kind: "message.out", EntityID: scope})
	must(t, err, "ListAudit by kind and entity")
	check("ListAudit by kind and entity", got, outs)
}

// ---------------------------------------------------------------------------
// Routing rules

func testRoutingRules(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	rules, err := s.ListRoutingRules(ctx)
	must(t, err, "ListRoutingRules on an empty store")
	if len(rules) != 0 {
		t.Fatalf("empty store lists %d rules", len(rules))
	}
	full := &store.RoutingRule{ID: "r-visa", Priority: 10, Service: "urn:kecis:service:card:", Merchant: "https://mall.example/kecis",
		BINPrefix: "4", BankCode: "004", Currency: "KRW", MinAmount: 1000, MaxAmount: 1_000_000, Target: "https://pg.example/kecis",
		CreatedAt: at(0)}
	in := []*store.RoutingRule{
		full,
		{ID: "r-default", Priority: 100, Target: "https://pg2.example/kecis", CreatedAt: at(time.Second)},
		{ID: "r-b", Priority: 10, Target: "https://pg3.example/kecis", CreatedAt: at(2 * time.Second)},
		{ID: "r-first", Priority: -1, Service: "urn:kecis:service:transfer:execute", Target: "https://bank.example/kecis", CreatedAt: at(3 * time.Second)},
	}
	for _, r := range in {
		must(t, s.PutRoutingRule(ctx, r), "PutRoutingRule "+r.ID)
	}
	dup := *full
	dup.Target = "https://evil.example"
	mustErr(t, s.PutRoutingRule(ctx, &dup), store.ErrExists, "PutRoutingRule with a taken ID")

	rules, err = s.ListRoutingRules(ctx)
	must(t, err, "ListRoutingRules")
	var order []string
	for _, r := range rules {
		order = append(order, r.ID)
	}
	equalStrings(t, "ListRoutingRules order", order, []string{"r-first", "r-b", "r-visa", "r-default"})
	got := *rules[2]
	got.CreatedAt = got.CreatedAt.UTC()
	if !reflect.DeepEqual(&got, full) {
		t.Errorf("routing rule round trip:\n got %+v\nwant %+v", got, *full)
	}

	must(t, s.DeleteRoutingRule(ctx, "r-b"), "DeleteRoutingRule")
	mustErr(t, s.DeleteRoutingRule(ctx, "r-b"), store.ErrNotFound, "DeleteRoutingRule twice")
	mustErr(t, s.DeleteRoutingRule(ctx, "r-none"), store.ErrNotFound, "DeleteRoutingRule of an unknown rule")
	rules, err = s.ListRoutingRules(ctx)
	must(t, err, "ListRoutingRules")
	if len(rules) != 3 {
		t.Errorf("after delete: %d rules, want 3", len(rules))
	}
	// A deleted ID may be used again.
	must(t, s.PutRoutingRule(ctx, &store.RoutingRule{ID: "r-b", Priority: 1, Target: "x", CreatedAt: at(time.Hour)}), "PutRoutingRule again")
}

// ---------------------------------------------------------------------------
// Snapshots

func testSnapshots(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const e = "https://pg.example/kecis"
	_, err := s.SnapshotAt(ctx, e, at(0))
	mustErr(t, err, store.ErrNotFound, "SnapshotAt with no snapshots")
	snaps := []*store.MetadataSnapshot{
		// Put out of order: the store orders by ValidFrom.
		{EntityID: e, Version: 3, ValidFrom: at(3 * time.Hour), Signed: []byte("<v3/>\r\n")},
		{EntityID: e, Version: 1, ValidFrom: at(time.Hour), Signed: append([]byte("<v1>"), signedMessage...)},
		{EntityID: e, Version: 2, ValidFrom: at(2 * time.Hour), Signed: []byte("<v2/>")},
		{EntityID: "https://other.example", Version: 1, ValidFrom: at(0), Signed: []byte("<o1/>")},
	}
	for _, sn := range snaps {
		must(t, s.PutSnapshot(ctx, sn), fmt.Sprintf("PutSnapshot v%d", sn.Version))
	}
	mustErr(t, s.PutSnapshot(ctx, &store.MetadataSnapshot{EntityID: e, Version: 2, ValidFrom: at(5 * time.Hour), Signed: []byte("x")}),
		store.ErrExists, "PutSnapshot with a taken version")

	cases := []struct {
		t    time.Time
		want int64 // 0: not found
	}{
		{at(0), 0},
		{at(time.Hour - time.Microsecond), 0},
		{at(time.Hour), 1},
		{at(90 * time.Minute), 1},
		{at(2*time.Hour - time.Microsecond), 1},
		{at(2 * time.Hour), 2},
		{at(3 * time.Hour), 3},
		{at(1000 * time.Hour), 3},
	}
	for _, c := range cases {
		got, err := s.SnapshotAt(ctx, e, c.t)
		if c.want == 0 {
			mustErr(t, err, store.ErrNotFound, fmt.Sprintf("SnapshotAt(%s)", c.t.Sub(t0)))
			continue
		}
		must(t, err, fmt.Sprintf("SnapshotAt(%s)", c.t.Sub(t0)))
		if got.Version != c.want || got.EntityID != e {
			t.Errorf("SnapshotAt(%s) = %s v%d, want v%d", c.t.Sub(t0), got.EntityID, got.Version, c.want)
			continue
		}
		want := snaps[map[int64]int{1: 1, 2: 2, 3: 0}[c.want]]
		if !bytes.Equal(got.Signed, want.Signed) || !got.ValidFrom.Equal(want.ValidFrom) {
			t.Errorf("SnapshotAt(%s): got %q at %s, want %q at %s", c.t.Sub(t0), got.Signed, got.ValidFrom, want.Signed, want.ValidFrom)
		}
	}
	got, err := s.SnapshotAt(ctx, "https://other.example", at(time.Hour))
	must(t, err, "SnapshotAt other entity")
	if got.Version != 1 || string(got.Signed) != "<o1/>" {
		t.Errorf("SnapshotAt other entity: %+v", got)
	}
	_, err = s.SnapshotAt(ctx, "https://nobody.example", at(time.Hour))
	mustErr(t, err, store.ErrNotFound, "SnapshotAt of an unknown entity")
}
