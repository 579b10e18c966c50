package escrow

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const bankSOAP = "https://bank-a.test/kecis/soap"

// federationDir is the metadata with keys and endpoints, for the SDK's
// Handler.
type federationDir map[string]*metadata.EntityDescriptor

func (d federationDir) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

func (d federationDir) SigningCertificates(ctx context.Context, id string) ([]*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.SigningCertificates(), nil
}

func (d federationDir) EncryptionCertificate(ctx context.Context, id string) (*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := ed.EncryptionCertificates(); len(c) > 0 {
		return c[0], nil
	}
	return nil, fmt.Errorf("%s has no encryption key", id)
}

func (d federationDir) Endpoint(ctx context.Context, id, service, binding string) (metadata.Endpoint, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return metadata.Endpoint{}, err
	}
	if e, ok := ed.Endpoint(service, binding); ok {
		return e, nil
	}
	return metadata.Endpoint{}, errors.New("no endpoint")
}

// sdkRig is the escrow engine behind the bank's SDK Handler, two shops
// and a PG in the federation.
type sdkRig struct {
	*rig
	h     *connectors.Handler
	dir   federationDir
	bankS *saml.Signer
	shops map[string]*saml.Signer
}

func loadSigner(t testing.TB, name string) *saml.Signer {
	t.Helper()
	s, err := saml.LoadSigner(keyDir+"/"+name+".key.pem", keyDir+"/"+name+".cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSDKRig(t *testing.T) *sdkRig {
	t.Helper()
	r := &sdkRig{rig: newRig(t), bankS: loadSigner(t, "issuer-rsa"),
		shops: map[string]*saml.Signer{shopID: loadSigner(t, "merchant-rsa"), shop2ID: loadSigner(t, "attacker-rsa"), "https://pg.test/kecis": loadSigner(t, "merchant-rsa")}}
	party := func(id string, role metadata.Role, s *saml.Signer) *metadata.EntityDescriptor {
		return &metadata.EntityDescriptor{EntityID: id, DisplayName: id, Roles: []metadata.Role{role},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: s.Cert}, {Use: metadata.UseEncryption, Certificate: s.Cert}},
			Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://" + id[8:] + "/soap"}}}
	}
	bank := party(bankID, metadata.RoleBank, r.bankS)
	callers := []metadata.Role{metadata.RoleMerchant, metadata.RolePG} // wider than the service allows: the function checks again
	for _, s := range []string{ServiceOpen, ServiceShip, ServiceRefund, ServiceStatus, ServiceCollect} {
		bank.Services = append(bank.Services, metadata.OfferedService{Service: s, Callers: callers})
	}
	r.dir = federationDir{bankID: bank, shopID: party(shopID, metadata.RoleMerchant, r.shops[shopID]),
		shop2ID: party(shop2ID, metadata.RoleMerchant, r.shops[shop2ID]), "https://pg.test/kecis": party("https://pg.test/kecis", metadata.RolePG, r.shops["https://pg.test/kecis"])}
	db, err := sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := sqlitestore.New(ctx, db, bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	r.h, err = connectors.NewHandler(connectors.HandlerConfig{EntityID: bankID, Signer: r.bankS,
		Decryption: []saml.DecryptionKey{{Cert: r.bankS.Cert, Key: r.bankS.Key.(crypto.Decrypter)}},
		Endpoints:  []string{bankSOAP}, Directory: r.dir, Services: Services(r.e, r.dir), Store: st,
		IdemKey: bytes.Repeat([]byte{4}, 32), Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send signs caller's request (sensitive elements encrypted for the
// bank) and runs it through the Handler; it returns the verified answer.
func (r *sdkRig) send(t *testing.T, caller, service, key string, p *ecml.Payload) *saml.ServiceResponse {
	t.Helper()
	s := r.shops[caller]
	b := &saml.Builder{Issuer: caller, Now: r.clock.Now}
	req, err := b.NewRequest(bankSOAP, service)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey, req.Payload = key, p
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: bankID, Cert: r.bankS.Cert}); err != nil {
		t.Fatal(err)
	}
	msg, err := s.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, []byte(shopAccount)) || bytes.Contains(msg, []byte("110987654321")) {
		t.Fatal("the request carries the settlement account in clear")
	}
	out, err := r.h.Handle(ctx, msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if bytes.Contains(out, []byte("987654321")) || bytes.Contains(out, []byte("123456789")) {
		t.Fatal("the answer carries an account number")
	}
	pending := saml.NewMemoryPending(r.clock.Now)
	if err := pending.Add(ctx, req.ID, bankID, r.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rc := &saml.Receiver{Keys: r.dir, Replay: saml.NewMemoryReplayCache(r.clock.Now), Pending: pending,
		Decrypter:       &saml.Decryptor{EntityID: caller, Keys: []saml.DecryptionKey{{Cert: s.Cert, Key: s.Key.(crypto.Decrypter)}}},
		ValidatePayload: true, Now: r.clock.Now}
	got, err := rc.ReceiveResponse(ctx, out)
	if err != nil {
		t.Fatalf("the answer does not verify: %v", err)
	}
	return got.Response
}

func sdkAnswer(t *testing.T, resp *saml.ServiceResponse) *Answer {
	t.Helper()
	if !resp.Status.OK() {
		t.Fatalf("status %+v", resp.Status)
	}
	a, err := AnswerFrom(resp.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sdkStatus(t *testing.T, resp *saml.ServiceResponse, sub, msg string) {
	t.Helper()
	if resp.Status.SubCode != sub || (msg != "" && resp.Status.Message != msg) {
		t.Fatalf("status %+v, want %s %q", resp.Status, sub, msg)
	}
}

// TestThroughTheHandler: the payloads escrow.Client sends, through the
// bank's SDK Handler (signature, decryption of the settlement account,
// validation, object rules, idempotency) to the engine and back: another
// shop's escrow is "no such escrow", the same answer as an unknown one, a PG
// the metadata admits is refused by the function's own role check, a
// repeated key answers the first outcome.
func TestThroughTheHandler(t *testing.T) {
	r := newSDKRig(t)
	op, err := OrderPayload(&Order{Order: "ORD-9", Amount: krw(150_000), SettlementBank: ourBank, SettlementAccount: shopAccount,
		ShipTo: &ecml.Address{Postal: &ecml.Postal{City: &ecml.Text{Value: "Seoul"}, CountryCode: "KR"}}})
	if err != nil {
		t.Fatal(err)
	}
	a := sdkAnswer(t, r.send(t, shopID, ServiceOpen, "k-open", op))
	if a.State != AwaitingPayment || a.Order != "ORD-9" {
		t.Fatalf("%+v", a)
	}
	x, err := r.e.Get(ctx, a.Reference)
	if err != nil || x.SettlementAccount != shopAccount || !x.Goods || x.Merchant != shopID {
		t.Fatalf("%+v %v", x, err)
	}
	if b := sdkAnswer(t, r.send(t, shopID, ServiceOpen, "k-open", op)); b.Reference != a.Reference {
		t.Fatal("a repeat opened another escrow")
	}

	// A PG (admitted by the metadata here) opening an order: refused by
	// the function's own role check; asking for the shop's: not found.
	sdkStatus(t, r.send(t, "https://pg.test/kecis", ServiceOpen, "k-pg", op), saml.StatusRequestDenied, "only merchants may call this service")
	sdkStatus(t, r.send(t, "https://pg.test/kecis", ServiceStatus, "", RefPayload(Ref{Reference: a.Reference})), saml.CodeDeclined, NoSuchEscrow.Message)

	r.ok(t)(r.e.Pay(ctx, buyer, a.Reference, buyerAccount))
	ship := RefPayload(Ref{Reference: a.Reference})
	ship.Escrow = &ecml.Escrow{State: string(Shipped), Carrier: "CJ대한통운", Tracking: "CJ-5550001"}
	if s := sdkAnswer(t, r.send(t, shopID, ServiceShip, "k-ship", ship)); s.State != Shipped || s.ConfirmBy.IsZero() {
		t.Fatalf("%+v", s)
	}

	unknown := r.send(t, shop2ID, ServiceStatus, "", RefPayload(Ref{Reference: "EAAAAAAAAAAA"}))
	theirs := r.send(t, shop2ID, ServiceStatus, "", RefPayload(Ref{Reference: a.Reference}))
	sdkStatus(t, unknown, saml.CodeDeclined, NoSuchEscrow.Message)
	sdkStatus(t, theirs, saml.CodeDeclined, NoSuchEscrow.Message)
	sdkStatus(t, r.send(t, shop2ID, ServiceRefund, "k-r2", RefPayload(Ref{Reference: a.Reference})), saml.CodeDeclined, NoSuchEscrow.Message)
	if y, _ := r.e.Get(ctx, a.Reference); y.State != Shipped {
		t.Fatalf("another shop's refund moved it: %s", y.State)
	}

	sdkStatus(t, r.send(t, shopID, ServiceShip, "k-ship-2", func() *ecml.Payload {
		p := RefPayload(Ref{Order: "ORD-9"})
		p.Escrow = &ecml.Escrow{State: string(Shipped), Carrier: "CJ대한통운", Tracking: "999"}
		return p
	}()), saml.CodePolicyViolation, "")
	st := sdkAnswer(t, r.send(t, shopID, ServiceStatus, "", RefPayload(Ref{Order: "ORD-9"})))
	if st.State != Shipped || len(st.History) != 3 {
		t.Fatalf("%+v", st)
	}
	if rf := sdkAnswer(t, r.send(t, shopID, ServiceRefund, "k-refund", RefPayload(Ref{Order: "ORD-9"}))); rf.State != Refunded {
		t.Fatalf("%+v", rf)
	}
	r.invariant(t)
	if r.l.balance(buyerAccount) != 1_000_000 {
		t.Fatal("not refunded")
	}
}
