package router_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const secondID = "https://second-merchant.test/kecis"

// The SOAP endpoint authorizes before it relays (KECIS §13.2): the
// envelope's Issuer must be the participant whose TLS client certificate
// carried it, a request may not be addressed to its own issuer, and the
// recipient's metadata must admit the caller for the service. Each refusal
// is a status the hub signs (message.hub in the audit, no message.in) and
// nothing reaches any provider.
func TestSOAPEndpointAuthorizes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 500*time.Millisecond)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)

	// A second merchant with its own TLS client certificate and signing
	// key, which also offers card:approve to merchants at its own endpoint.
	secondTLS := metadatatest.Pool()[2]
	second := testdataSigner(t, "merchant-ec")
	own := newProvider(t, f.providerTLS, f.issuer, answerOK)
	put(t, f.st, &metadata.EntityDescriptor{EntityID: secondID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: second.Cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: secondTLS}, {Use: metadata.UseTLSServer, Certificate: f.providerTLS.Leaf}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: own.url}},
		Services:  []metadata.OfferedService{{Service: approveService, Callers: []metadata.Role{metadata.RoleMerchant}}}}, store.StatusActive)

	// A recipient whose card:approve admits PGs only.
	pgOnly := newProvider(t, f.providerTLS, f.issuer, answerOK)
	put(t, f.st, &metadata.EntityDescriptor{EntityID: otherID, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.issuer.Cert},
			{Use: metadata.UseEncryption, Certificate: f.issuer.Cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: f.providerTLS.Leaf}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: pgOnly.url}},
		Services:  []metadata.OfferedService{{Service: approveService, Callers: []metadata.Role{metadata.RolePG}}}}, store.StatusActive)
	f.dir.Invalidate()

	for _, tc := range []struct {
		name    string
		issuer  string
		signer  *saml.Signer
		dest    string
		tlsCert int // index into metadatatest.Pool: 1 the merchant's, 2 the second merchant's
		wantSub string
	}{
		{name: "the Issuer is not the TLS client's participant", issuer: merchantID, signer: f.merchant, dest: p.url, tlsCert: 2, wantSub: saml.CodeNotAuthorized},
		{name: "addressed to its own issuer", issuer: secondID, signer: second, dest: own.url, tlsCert: 2, wantSub: saml.CodeNotAuthorized},
		{name: "a service the recipient does not offer to the caller's role", issuer: merchantID, signer: f.merchant, dest: pgOnly.url, tlsCert: 1, wantSub: saml.StatusRequestDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, msg := f.requestFrom(t, tc.issuer, tc.signer, "authz-"+tc.name, "15000", tc.dest)
			w := f.serve(msg, metadatatest.Pool()[tc.tlsCert])
			if st := f.hubStatus(t, w.Body.Bytes(), req.ID); st.SubCode != tc.wantSub {
				t.Fatalf("status %+v, want sub-status %q", st, tc.wantSub)
			}
			recs, err := f.st.ListAudit(ctx, store.AuditFilter{RequestID: req.ID})
			if err != nil || len(recs) != 1 || recs[0].Kind != "message.hub" {
				t.Fatalf("audit of a refusal: %d records, %v", len(recs), err)
			}
		})
	}
	for name, pr := range map[string]*provider{"the recipient": p, "the second merchant": own, "the PG-only recipient": pgOnly} {
		if n := len(pr.received()); n != 0 {
			t.Errorf("%s received %d refused requests", name, n)
		}
	}

	// The same merchant over its own TLS connection is relayed: the
	// refusals above are the checks', not the fixture's.
	_, msg := f.request(t, "authz-ok", "15000", p.url)
	if w := f.serve(msg, f.merchantTLS); w.Code != http.StatusOK || len(p.received()) != 1 {
		t.Fatalf("the merchant's own request: HTTP %d, relayed %d", w.Code, len(p.received()))
	}
}
