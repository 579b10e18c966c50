package server_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Regression tests for the authorization findings of issue 12 that live in
// the hub: routing rules that fell through (finding 3) and the callers a
// service admits (Deliver 4), each through the surface the attack used.

const pgID = "https://pg.test/kecis"

// setIssuerCallers rewrites the fixture issuer's active metadata so that
// card:approve admits callers (as an operator-approved change would) and
// drops the hub's cached directory.
func (f *fed) setIssuerCallers(t *testing.T, callers ...metadata.Role) {
	t.Helper()
	ctx := context.Background()
	p, err := f.h.st.GetParticipant(ctx, issuerID)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := metadata.Parse(p.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ed.Services {
		ed.Services[i].Callers = callers
	}
	f.putActive(t, ed, p)
}

func (f *fed) putActive(t *testing.T, ed *metadata.EntityDescriptor, cur *store.Participant) {
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
	p.Status, p.Metadata, p.UpdatedAt = store.StatusActive, md, now
	ctx := context.Background()
	if cur == nil {
		p.CreatedAt = now
		err = f.h.st.CreateParticipant(ctx, p)
	} else {
		p.Version, p.CreatedAt = cur.Version, cur.CreatedAt
		err = f.h.st.UpdateParticipant(ctx, p)
	}
	if err != nil {
		t.Fatal(err)
	}
	f.h.srv.Directory.Invalidate()
}

// addPG registers an active PG offering card:approve to merchants for
// 100–1,000,000 KRW (its endpoint is never reached in these tests).
func (f *fed) addPG(t *testing.T) {
	t.Helper()
	f.putActive(t, &metadata.EntityDescriptor{EntityID: pgID, Roles: []metadata.Role{metadata.RolePG},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.p.signer.Cert}, {Use: metadata.UseEncryption, Certificate: f.p.signer.Cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: f.p.tlsCert}},
		Endpoints: []metadata.Endpoint{{Service: "*", Binding: saml.BindingSOAP, Location: "https://127.0.0.1:1/pg/soap"}},
		Services: []metadata.OfferedService{{Service: saml.ServiceURI("card", "approve"), Callers: []metadata.Role{metadata.RoleMerchant},
			Limits: []metadata.Limit{{Currency: "KRW", Min: 100, Max: 1_000_000}}}},
	}, nil)
}

// Finding 3: when the rule's PG could not take a request (99 KRW, USD), or
// the merchant named the issuer, the facade sent it straight to the issuer.
// Rules bind now: no-route, naming the rule.
func TestFacadeRoutingRulesBind(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	f.addPG(t)
	if err := f.h.st.PutRoutingRule(context.Background(), &store.RoutingRule{ID: "card-via-pg", Priority: 10,
		Service: "urn:kecis:service:card:", Target: pgID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	route := func(amount, currency string) (int, map[string]any) {
		return f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"),
			"amount": amount, "currency": currency, "card_bin": "411111"})
	}
	if code, out := route("15000", "KRW"); code != http.StatusOK || out["recipient"] != pgID {
		t.Fatalf("inside the PG's limits: %d %v", code, out)
	}
	for _, tc := range []struct{ amount, currency string }{{"99", "KRW"}, {"1000001", "KRW"}, {"12.34", "USD"}} {
		code, out := route(tc.amount, tc.currency)
		if code != http.StatusUnprocessableEntity || out["type"] != "urn:kecis:problem:no-route" {
			t.Errorf("%s %s inside the rule's scope, outside its PG's offer: %d %v (want no-route, never the issuer)", tc.amount, tc.currency, code, out)
		}
	}
	// The merchant names the issuer (its card encrypted for the issuer):
	// the rule binds, nothing reaches the issuer.
	card := browserEncryptedCard(t, pemOf(f.p.signer.Cert), issuerID)
	code, out := f.facadeCall(t, "/v1/card/approve", "named-1", map[string]any{"fields": approveFields("99"),
		"encrypted": map[string]string{"card": card}, "routing": map[string]string{"card_bin": "411111", "card_last4": "1111"}})
	if code != http.StatusUnprocessableEntity || out["type"] != "urn:kecis:problem:no-route" {
		t.Fatalf("named issuer inside a rule's scope: %d %v", code, out)
	}
	if len(f.p.seen) != 0 {
		t.Fatalf("the issuer was reached: %v", f.p.seen)
	}
}

// Deliver 4 and 6: a named recipient is checked against the service's
// callers. The issuer takes card:approve from PGs only; a merchant that
// names it gets no-route from the facade, and a merchant's own signed
// envelope gets a hub-signed Requester/RequestDenied — the issuer never
// sees either.
func TestHubEnforcesCallers(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	f.setIssuerCallers(t, metadata.RolePG)

	card := browserEncryptedCard(t, pemOf(f.p.signer.Cert), issuerID)
	code, out := f.facadeCall(t, "/v1/card/approve", "named-2", map[string]any{"fields": approveFields("15000"),
		"encrypted": map[string]string{"card": card}, "routing": map[string]string{"card_bin": "411111", "card_last4": "1111"}})
	if code != http.StatusUnprocessableEntity || out["type"] != "urn:kecis:problem:no-route" {
		t.Fatalf("facade, issuer named by a merchant: %d %v", code, out)
	}
	// No routing either: the issuer is not a candidate for a merchant.
	if code, out := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"), "card_bin": "411111"}); code != http.StatusUnprocessableEntity {
		t.Fatalf("routes for a merchant to an issuer that admits PGs only: %d %v", code, out)
	}

	st, issuer, err := f.send(t, &f.mTLS, f.approve(t, "denied-1", "15000", f.dest))
	if err != nil {
		t.Fatal(err)
	}
	if issuer != "https://hub.test/kecis" || st.Code != saml.StatusRequester || st.SubCode != saml.StatusRequestDenied {
		t.Fatalf("a merchant's envelope to a PG-only service: %s %+v", issuer, st)
	}
	if len(f.p.seen) != 0 {
		t.Fatalf("the issuer was reached: %v", f.p.seen)
	}

	// Admitted again (merchant among the callers): relayed as before.
	f.setIssuerCallers(t, metadata.RolePG, metadata.RoleMerchant)
	st, issuer, err = f.send(t, &f.mTLS, f.approve(t, "allowed-1", "15000", f.dest))
	if err != nil || issuer != issuerID || !st.OK() {
		t.Fatalf("admitted caller: %v %s %+v", err, issuer, st)
	}
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// Finding 7: the facade chose a provider's encryption certificate by its
// expiry alone, without the validity check, so it could encrypt for a key
// published ahead of a rollover (not valid yet) or for an expired one. The
// choice is the model's EncryptionCertificate(now), the same the SDK uses.
func TestFacadeEncryptsOnlyForAValidCertificate(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	now := time.Now()
	gen := func(at time.Time) *x509.Certificate {
		_, certPEM, err := devpki.Generate(devpki.Encryption, "pg encryption", nil, at)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := saml.ParseCertificatesPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}
	current, future, expired := gen(now), gen(now.AddDate(0, 2, 0)), gen(now.AddDate(-3, 0, 0))
	pg := func(enc ...*x509.Certificate) *metadata.EntityDescriptor {
		ed := &metadata.EntityDescriptor{EntityID: pgID, Roles: []metadata.Role{metadata.RolePG},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.p.signer.Cert}},
			TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: f.p.tlsCert}},
			Endpoints: []metadata.Endpoint{{Service: "*", Binding: saml.BindingSOAP, Location: "https://127.0.0.1:1/pg/soap"}},
			Services:  []metadata.OfferedService{{Service: saml.ServiceURI("card", "approve"), Callers: []metadata.Role{metadata.RoleMerchant}}},
		}
		for _, c := range enc {
			ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: c})
		}
		return ed
	}
	f.putActive(t, pg(future, current), nil)
	if err := f.h.st.PutRoutingRule(context.Background(), &store.RoutingRule{ID: "card-via-pg", Priority: 10,
		Service: "urn:kecis:service:card:", Target: pgID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	route := func() (int, map[string]any) {
		return f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"), "card_bin": "411111"})
	}
	code, out := route()
	if code != http.StatusOK || out["encryption_certificate"] != pemOf(current) {
		t.Fatalf("a key published ahead of its rollover was chosen (or none): %d %v", code, out["recipient"])
	}
	cur, err := f.h.st.GetParticipant(context.Background(), pgID)
	if err != nil {
		t.Fatal(err)
	}
	f.putActive(t, pg(expired), cur)
	if code, out := route(); code != http.StatusUnprocessableEntity {
		t.Fatalf("only an expired key: %d %v (want no-route)", code, out)
	}
}
