package router_test

import (
	"context"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func put(t testing.TB, st store.Store, ed *metadata.EntityDescriptor, status store.Status) *store.Participant {
	t.Helper()
	md, err := metadata.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	p, err := server.Describe(md)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.Status, p.Metadata, p.CreatedAt, p.UpdatedAt = status, md, now, now
	if err := st.CreateParticipant(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The directory answers from each active participant's parsed metadata:
// by entityID, by endpoint URL and by TLS client certificate; pending
// participants are not in it; a participant's metadata is parsed again only
// when its version changes, and a reload sees the new version.
func TestDirectory(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := time.Now()
	d := &router.Directory{Store: st, TTL: time.Minute, MinReload: time.Second, Now: func() time.Time { return clock }}

	sig := metadatatest.Pool()[2]
	a := metadatatest.Simple("https://a.example/kecis", sig)
	put(t, st, a, store.StatusActive)
	put(t, st, metadatatest.Simple("https://pending.example/kecis", sig), store.StatusPending)

	e, err := d.ByID(ctx, a.EntityID)
	if err != nil || e.D.EntityID != a.EntityID || !e.D.HasRole(metadata.RolePG) {
		t.Fatalf("ByID: %v %v", e, err)
	}
	if _, err := d.ByID(ctx, "https://pending.example/kecis"); err != saml.ErrUnknownEntity {
		t.Fatalf("a pending participant is in the directory: %v", err)
	}
	if got, err := d.ByEndpoint(ctx, a.Endpoints[0].Location); err != nil || got != e {
		t.Fatalf("ByEndpoint: %v %v", got, err)
	}
	if got, err := d.ByTLSClient(ctx, saml.Fingerprint(a.TLSClientCertificates()[0])); err != nil || got != e {
		t.Fatalf("ByTLSClient: %v %v", got, err)
	}
	if certs, err := d.SigningCertificates(ctx, a.EntityID); err != nil || len(certs) != 1 || !certs[0].Equal(sig) {
		t.Fatalf("SigningCertificates: %d, %v", len(certs), err)
	}

	// A reload after the TTL keeps the parsed entry of an unchanged version.
	clock = clock.Add(2 * time.Minute)
	all, err := d.All(ctx)
	if err != nil || len(all) != 1 || all[0] != e {
		t.Fatalf("reload re-parsed an unchanged participant: %v %v", all, err)
	}
	// A new version is parsed again.
	p, _ := st.GetParticipant(ctx, a.EntityID)
	a.Services[0].Callers = []metadata.Role{metadata.RoleMerchant}
	md, _ := metadata.Marshal(a)
	np, _ := server.Describe(md)
	np.Status, np.Metadata, np.Version, np.CreatedAt, np.UpdatedAt = store.StatusActive, md, p.Version, p.CreatedAt, clock
	if err := st.UpdateParticipant(ctx, np); err != nil {
		t.Fatal(err)
	}
	d.Invalidate()
	e2, err := d.ByID(ctx, a.EntityID)
	if err != nil || e2 == e {
		t.Fatalf("a new version was not parsed again: %v", err)
	}
	if s, _ := e2.D.Offers(saml.ServiceURI("card", "approve")); len(s.Callers) != 1 || s.Callers[0] != metadata.RoleMerchant {
		t.Fatalf("callers of the new version: %+v", s)
	}
	if got := router.Descriptors([]*router.Entry{e2}); len(got) != 1 || got[0] != e2.D {
		t.Fatal("Descriptors")
	}
}

// Two active participants that publish the same TLS client certificate or
// endpoint URL (which the registry refuses) are attributed neither.
func TestDirectoryRefusesSharedCredentials(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d := &router.Directory{Store: st}
	sig := metadatatest.Pool()[2]
	a := metadatatest.Simple("https://a.example/kecis", sig)
	b := metadatatest.Simple("https://b.example/kecis", sig)
	b.Endpoints = a.Endpoints // same URL; Simple also gives both the same TLS client certificate
	put(t, st, a, store.StatusActive)
	put(t, st, b, store.StatusActive)
	if e, err := d.ByEndpoint(ctx, a.Endpoints[0].Location); err == nil {
		t.Fatalf("a shared endpoint URL names %s", e.P.EntityID)
	}
	if e, err := d.ByTLSClient(ctx, saml.Fingerprint(a.TLSClientCertificates()[0])); err == nil {
		t.Fatalf("a shared TLS client certificate names %s", e.P.EntityID)
	}
	if _, err := d.ByID(ctx, b.EntityID); err != nil {
		t.Fatalf("each is still in the directory by ID: %v", err)
	}
}
