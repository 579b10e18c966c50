package connectors_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// resolverParticipant is a provider offering card:approve for bins to
// callers, with a valid encryption certificate.
func resolverParticipant(id string, roles []metadata.Role, bins string, callers ...metadata.Role) *metadata.EntityDescriptor {
	pool := metadatatest.Pool()
	ed := &metadata.EntityDescriptor{EntityID: id, Roles: roles,
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: pool[0]}, {Use: metadata.UseEncryption, Certificate: pool[0]}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: id + "/soap"}},
	}
	if bins != "" || callers != nil {
		s := metadata.OfferedService{Service: saml.ServiceURI("card", "approve"), Callers: callers}
		if bins != "" {
			s.BINs, _ = metadata.ParseBINList(bins)
		}
		ed.Services = []metadata.OfferedService{s}
	}
	return ed
}

// Finding 1 of issue 12, the SDK's half: a merchant that published the
// issuer's BIN was chosen by the PG's resolver (roles unchecked, a tie to
// the first entity of the aggregate), and the PG encrypted the card for
// it. The resolver now asks for the card's issuer, through the one
// matcher, and refuses a tie.
func TestResolverRecipientFor(t *testing.T) {
	const (
		pgID     = "https://pg.example"
		issuerID = "https://issuer.example"
		rogueID  = "https://a-rogue-shop.example" // sorts first in the aggregate
	)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	signer := loadSigner(t, "issuer-ec")
	pg := resolverParticipant(pgID, []metadata.Role{metadata.RolePG}, "", metadata.RoleMerchant)
	issuer := resolverParticipant(issuerID, []metadata.Role{metadata.RoleIssuer}, "404143 411111-411199", metadata.RolePG)
	hub := metadatatest.NewHub(t, signer, func() time.Time { return now }, pg, issuer)
	resolver := func() *connectors.Resolver {
		return &connectors.Resolver{HubURL: hub.URL, HubCerts: []*x509.Certificate{signer.Cert}, HTTP: hub.Client(),
			Now: func() time.Time { return now }, Self: pgID}
	}
	approve := saml.ServiceURI("card", "approve")
	ctx := context.Background()

	if got, err := resolver().RecipientFor(ctx, approve, "40414312", ""); err != nil || got != issuerID {
		t.Fatalf("the issuer's BIN: %q, %v", got, err)
	}
	// The PG offers card:approve for every BIN (no list) but is no issuer.
	if got, err := resolver().RecipientFor(ctx, approve, "52000000", ""); !errors.Is(err, connectors.ErrNoRecipient) {
		t.Fatalf("a BIN no issuer claims: %q, %v (want ErrNoRecipient, never the PG)", got, err)
	}

	// A merchant publishes the issuer's BIN without the issuer role: ignored.
	hub.Put(resolverParticipant(rogueID, []metadata.Role{metadata.RoleMerchant}, "404143", metadata.RolePG))
	if got, err := resolver().RecipientFor(ctx, approve, "40414312", ""); err != nil || got != issuerID {
		t.Fatalf("a merchant claiming the BIN: %q, %v", got, err)
	}
	// With the issuer role too (a change an operator must approve): a tie
	// is refused, naming both; never the first in the aggregate.
	hub.Put(resolverParticipant(rogueID, []metadata.Role{metadata.RoleMerchant, metadata.RoleIssuer}, "404143", metadata.RolePG))
	got, err := resolver().RecipientFor(ctx, approve, "40414312", "")
	var amb *metadata.AmbiguousError
	if !errors.Is(err, connectors.ErrNoRecipient) || !errors.As(err, &amb) || len(amb.EntityIDs) != 2 {
		t.Fatalf("two issuers claim the BIN: %q, %v (want ambiguous)", got, err)
	}
	// A more specific claim wins over a broader one.
	hub.Put(resolverParticipant(rogueID, []metadata.Role{metadata.RoleIssuer}, "40414399", metadata.RolePG))
	if got, err := resolver().RecipientFor(ctx, approve, "40414312", ""); err != nil || got != issuerID {
		t.Fatalf("an 8-digit claim elsewhere: %q, %v", got, err)
	}
	// An issuer that does not admit this PG as a caller is not chosen.
	hub.Remove(rogueID)
	hub.Put(resolverParticipant(issuerID, []metadata.Role{metadata.RoleIssuer}, "404143", metadata.RoleMerchant))
	if got, err := resolver().RecipientFor(ctx, approve, "40414312", ""); !errors.Is(err, connectors.ErrNoRecipient) {
		t.Fatalf("an issuer that takes no PG: %q, %v", got, err)
	}
	// Neither a BIN nor a bank code: no recipient can be named.
	if _, err := resolver().RecipientFor(ctx, approve, "", ""); !errors.Is(err, connectors.ErrNoRecipient) {
		t.Fatalf("no BIN, no bank: %v", err)
	}
}

// The Resolver reads the aggregate through the metadata.Client it is
// given — the one the Handler and the Client use — so one cache serves
// them: one request to the hub for many resolutions, and the Client's
// stale policy when the hub is down.
func TestResolverSharesTheMetadataClient(t *testing.T) {
	const pgID, issuerID = "https://pg.example", "https://issuer.example"
	clock := testutil.NewClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	signer := loadSigner(t, "issuer-ec")
	hub := metadatatest.NewHub(t, signer, clock.Now,
		resolverParticipant(pgID, []metadata.Role{metadata.RolePG}, "", metadata.RoleMerchant),
		resolverParticipant(issuerID, []metadata.Role{metadata.RoleIssuer}, "404143", metadata.RolePG))
	hub.SetValidity(3*time.Hour, time.Hour)
	md := &metadata.Client{HubURL: hub.URL, HubCerts: []*x509.Certificate{signer.Cert}, HTTP: hub.Client(), Now: clock.Now}
	r := &connectors.Resolver{Metadata: md, Self: pgID}
	approve := saml.ServiceURI("card", "approve")
	ctx := context.Background()
	for range 3 {
		if got, err := r.RecipientFor(ctx, approve, "40414312", ""); err != nil || got != issuerID {
			t.Fatalf("RecipientFor: %q, %v", got, err)
		}
	}
	if _, err := md.Aggregate(ctx); err != nil {
		t.Fatal(err)
	}
	if n := hub.Requests(metadata.AggregatePath); n != 1 {
		t.Fatalf("%d aggregate requests, want 1", n)
	}
	// The hub goes down past cacheDuration: the verified aggregate stands
	// while its validUntil holds, never after.
	hub.SetDown(true)
	clock.Advance(2 * time.Hour)
	if got, err := r.RecipientFor(ctx, approve, "40414312", ""); err != nil || got != issuerID {
		t.Fatalf("hub down, aggregate still valid: %q, %v", got, err)
	}
	clock.Advance(time.Hour)
	if _, err := r.RecipientFor(ctx, approve, "40414312", ""); !errors.Is(err, metadata.ErrHubUnavailable) {
		t.Fatalf("hub down, aggregate expired: %v", err)
	}
}
