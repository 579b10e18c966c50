package connectors_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// myIssuer is the provider's own card system, reduced to what the example
// needs: it implements card.Service (Approve) only, so the Handler offers
// card:approve and nothing else.
type myIssuer struct {
	mu        sync.Mutex
	approvals int
}

func (m *myIssuer) Approve(_ context.Context, req *card.ApproveRequest) (*card.Approval, error) {
	if req.Amount.Minor > 1_000_000 {
		return nil, card.InsufficientFunds("over the available limit")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.approvals++
	return &card.Approval{ApprovalNumber: fmt.Sprintf("3%07d", m.approvals), OrderID: req.OrderID, Amount: req.Amount, State: card.Approved}, nil
}

// fixedDirectory stands in for the federation metadata. A real adapter
// uses &metadata.Client{HubURL: …, HubCerts: …}, which verifies what the
// hub publishes.
type fixedDirectory map[string]*metadata.EntityDescriptor

func (d fixedDirectory) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

func (d fixedDirectory) SigningCertificates(ctx context.Context, id string) ([]*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.SigningCertificates(), nil
}

func (d fixedDirectory) EncryptionCertificate(ctx context.Context, id string) (*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.EncryptionCertificates()[0], nil
}

func (d fixedDirectory) Endpoint(ctx context.Context, id, service, binding string) (metadata.Endpoint, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return metadata.Endpoint{}, err
	}
	if e, ok := ed.Endpoint(service, binding); ok {
		return e, nil
	}
	return metadata.Endpoint{}, fmt.Errorf("%s has no endpoint for %s", id, service)
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// A card issuer mounts the KECIS Handler next to its own API; a merchant
// calls it through the hub with card.Client.
func Example() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }
	const (
		hub      = "https://hub.example/kecis"
		issuer   = "https://issuer.example/kecis"
		merchant = "https://shop.example/kecis"
		keys     = "../saml/testdata/keys/"
	)
	// Keys (kecis keys generate) and certificates. The test keys stand in.
	issuerKey := must(saml.LoadSigner(keys+"issuer-rsa.key.pem", keys+"issuer-rsa.cert.pem"))
	merchantKey := must(saml.LoadSigner(keys+"merchant-rsa.key.pem", keys+"merchant-rsa.cert.pem"))
	hubKey := must(saml.LoadSigner(keys+"merchant-ec.key.pem", keys+"merchant-ec.cert.pem"))
	hubTLS := must(tls.LoadX509KeyPair(keys+"issuer-ec.cert.pem", keys+"issuer-ec.key.pem"))
	hubTLSCert := must(x509.ParseCertificate(hubTLS.Certificate[0]))

	// What the federation metadata says about each participant: its role,
	// keys, endpoint and the services it offers to whom (KECIS §13.2).
	entity := func(id string, role metadata.Role, sig, enc *x509.Certificate) *metadata.EntityDescriptor {
		ed := &metadata.EntityDescriptor{EntityID: id, Roles: []metadata.Role{role},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: sig}},
			Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: id + "/soap"}}}
		if enc != nil {
			ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: enc})
		}
		return ed
	}
	dir := fixedDirectory{
		hub:      entity(hub, metadata.RoleHub, hubKey.Cert, nil),
		issuer:   entity(issuer, metadata.RoleIssuer, issuerKey.Cert, issuerKey.Cert),
		merchant: entity(merchant, metadata.RoleMerchant, merchantKey.Cert, merchantKey.Cert),
	}
	dir[issuer].Services = []metadata.OfferedService{{Service: card.ServiceApprove, Callers: []metadata.Role{metadata.RoleMerchant}}}

	// The issuer's side: its adapter store (SQLite here; pgstore for
	// PostgreSQL — the program links the driver of the one it imports), and
	// the Handler around its card system, accepting back-channel calls from
	// the hub's TLS certificate only.
	st := must(sqlitestore.Open(ctx, "sqlite::memory:", bytes.Repeat([]byte{1}, 32))) // the at-rest key: from a secret store
	defer st.Close()
	iss := &myIssuer{}
	h := must(connectors.NewHandler(connectors.HandlerConfig{
		EntityID:    issuer,
		Signer:      issuerKey,
		Decryption:  []saml.DecryptionKey{{Cert: issuerKey.Cert, Key: issuerKey.Key.(crypto.Decrypter)}},
		Endpoints:   []string{issuer + "/soap"},
		Directory:   dir,
		HubEntityID: hub,
		BackChannel: []string{saml.Fingerprint(hubTLSCert)},
		Services:    card.Services(iss),
		Store:       st,
		IdemKey:     []byte("another secret of at least 16 bytes"),
		Now:         now,
	}))
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", h)
	provider := httptest.NewUnstartedServer(mux)
	provider.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	provider.StartTLS()
	defer provider.Close()

	// The hub: here a bare relay that forwards the body unchanged with its
	// TLS client certificate, pinning the issuer's server certificate (the
	// real hub first verifies, authorises and routes by Destination).
	relay := &http.Client{Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(hubTLS, []*x509.Certificate{provider.Certificate()})}}
	hubSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := relay.Post(provider.URL+"/kecis/soap", "text/xml; charset=utf-8", r.Body)
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer hubSrv.Close()

	// The merchant's side.
	c := must(connectors.NewClient(connectors.ClientConfig{
		EntityID:    merchant,
		Signer:      merchantKey,
		Decryption:  []saml.DecryptionKey{{Cert: merchantKey.Cert, Key: merchantKey.Key.(crypto.Decrypter)}},
		Directory:   dir,
		HubEntityID: hub,
		HubURL:      hubSrv.URL,
		HubTLS:      []*x509.Certificate{hubSrv.Certificate()},
		Now:         now,
	}))
	cards := &card.Client{C: c}
	req := &card.ApproveRequest{OrderID: "ORD-1001", Amount: ecml.Money{Minor: 15000, Currency: "KRW"}, IdempotencyKey: "order-1001",
		Card: card.Card{Number: "4111111111111111", ExpMonth: "12", ExpYear: "2030"}}
	out := must(cards.Approve(ctx, issuer, req))
	fmt.Println(out.OK(), out.Approval.ApprovalNumber, out.Approval.State, out.Approval.Amount)

	// A retry (a new message with the same key) gets the same approval.
	out = must(cards.Approve(ctx, issuer, req))
	fmt.Println("retry:", out.Approval.ApprovalNumber, "- approvals made:", iss.approvals)

	// A business refusal is a status, not an error.
	big := *req
	big.IdempotencyKey, big.Amount.Minor = "order-1002", 2_000_000
	out = must(cards.Approve(ctx, issuer, &big))
	fmt.Println(out.OK(), out.Code())

	// Output:
	// true 30000001 approved 15000 KRW
	// retry: 30000001 - approvals made: 1
	// false InsufficientFunds
}
