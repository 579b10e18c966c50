package connectors_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/sqlstore/sqltest"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// The federation of these tests. The test keys play these parts:
//
//	hub       signs with merchant-ec, connects to providers with issuer-ec's TLS certificate
//	merchant  signs with and decrypts with merchant-rsa
//	issuer    the provider under test: signs with and decrypts with issuer-rsa
//	evil      a registered participant that is neither (attacker-rsa)
//	stranger  attacker-rsa's TLS certificate: not allowed on the back channel
const (
	hubID          = "https://hub.test/kecis"
	merchantID     = "https://merchant.test/kecis"
	issuerID       = "https://issuer.test/kecis"
	evilID         = "https://evil.test/kecis"
	issuerEndpoint = "https://issuer.test/kecis/soap"
	keysDir        = "../saml/testdata/keys"

	testPAN     = "4111111111111111" // approved
	otherPAN    = "5555555555554444" // approved, another card
	declinedPAN = "4000000000000002" // declined by the fake issuer
)

func loadSigner(t testing.TB, name string) *saml.Signer {
	t.Helper()
	s, err := saml.LoadSigner(filepath.Join(keysDir, name+".key.pem"), filepath.Join(keysDir, name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadTLS(t testing.TB, name string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(keysDir, name+".cert.pem"), filepath.Join(keysDir, name+".key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decryptionKeys(s *saml.Signer) []saml.DecryptionKey {
	return []saml.DecryptionKey{{Cert: s.Cert, Key: s.Key.(crypto.Decrypter)}}
}

// fakeIssuer is a tiny card provider: card.Service with every optional
// interface. It counts its calls, so that tests see when the SDK ran it.
type fakeIssuer struct {
	mu        sync.Mutex
	calls     map[string]int
	approvals map[string]*card.Approval
	seq       int
	last      *card.ApproveRequest

	fail     error         // Approve returns it
	panicMsg string        // Approve panics with it
	entered  chan struct{} // Approve signals here, then waits for release
	release  chan struct{}
}

func newFakeIssuer() *fakeIssuer {
	return &fakeIssuer{calls: map[string]int{}, approvals: map[string]*card.Approval{}}
}

func (f *fakeIssuer) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeIssuer) lastApprove() *card.ApproveRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeIssuer) set(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIssuer) settle(number string) {
	f.set(func(f *fakeIssuer) { f.approvals[number].State = card.Settled })
}

func (f *fakeIssuer) Approve(_ context.Context, req *card.ApproveRequest) (*card.Approval, error) {
	f.mu.Lock()
	f.calls["approve"]++
	f.last = req
	fail, pnc, entered, release := f.fail, f.panicMsg, f.entered, f.release
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
		<-release
	}
	if pnc != "" {
		panic(pnc)
	}
	if fail != nil {
		return nil, fail
	}
	switch {
	case req.Card.Number.Reveal() == declinedPAN:
		return nil, card.Declined("do not honour")
	case req.Amount.Minor > 1_000_000:
		return nil, card.InsufficientFunds("over the available limit")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	a := &card.Approval{ApprovalNumber: fmt.Sprintf("A%04d", f.seq), OrderID: req.OrderID, Amount: req.Amount, State: card.Approved}
	f.approvals[a.ApprovalNumber] = a
	c := *a
	return &c, nil
}

func (f *fakeIssuer) find(number, order string) *card.Approval {
	if a, ok := f.approvals[number]; ok {
		return a
	}
	for _, a := range f.approvals {
		if order != "" && a.OrderID == order {
			return a
		}
	}
	return nil
}

func (f *fakeIssuer) Cancel(_ context.Context, req *card.CancelRequest) (*card.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cancel"]++
	a := f.find(req.ApprovalNumber, req.OrderID)
	switch {
	case a == nil:
		return nil, card.NotFound("no such approval")
	case a.State != card.Approved:
		return nil, card.PolicyViolation("only an unsettled approval can be cancelled")
	}
	a.State = card.Cancelled
	c := *a
	return &c, nil
}

func (f *fakeIssuer) Refund(_ context.Context, req *card.RefundRequest) (*card.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["refund"]++
	a := f.find(req.ApprovalNumber, req.OrderID)
	switch {
	case a == nil:
		return nil, card.NotFound("no such approval")
	case a.State != card.Settled && a.State != card.PartiallyRefunded:
		return nil, card.PolicyViolation("only a settled approval can be refunded")
	case req.Amount.Currency != a.Amount.Currency || a.Refunded.Minor+req.Amount.Minor > a.Amount.Minor:
		return nil, card.LimitExceeded("more than what is left to refund")
	}
	a.Refunded = ecml.Money{Minor: a.Refunded.Minor + req.Amount.Minor, Currency: a.Amount.Currency}
	a.State = card.PartiallyRefunded
	if a.Refunded.Minor == a.Amount.Minor {
		a.State = card.Refunded
	}
	c := *a
	return &c, nil
}

func (f *fakeIssuer) Inquire(_ context.Context, req *card.InquireRequest) (*card.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["inquire"]++
	a := f.find(req.ApprovalNumber, req.OrderID)
	if a == nil {
		return nil, card.NotFound("no such approval")
	}
	c := *a
	return &c, nil
}

// Extra services of the provider under test.
var (
	serviceReveal = saml.ServiceURI("test", "reveal") // answers with a card: a sensitive element
	serviceRefuse = saml.ServiceURI("test", "refuse") // a *StatusError from a plain ServiceFunc
)

// syncBuffer is a log sink that tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// world is a small federation around one provider: a metadata hub (MDQ)
// publishing the hub, a merchant, the issuer and an unrelated participant,
// and the issuer's Handler behind a TLS server that asks for client
// certificates.
type world struct {
	clock                       *testutil.Clock
	md                          *metadatatest.Hub
	dir                         *metadata.Client
	hub, merchant, issuer, evil *saml.Signer
	hubTLS, strangerTLS         tls.Certificate
	iss                         *fakeIssuer
	store                       *store.Store
	h                           *connectors.Handler
	srv                         *httptest.Server
	log                         *syncBuffer

	// The requesters' side: answers are matched to requests and decrypted
	// with the merchant's keys.
	pending *saml.MemoryPending
	rc      *saml.Receiver
}

func participant(id string, role metadata.Role, signing *x509.Certificate, encryption *x509.Certificate, tlsClient *x509.Certificate, endpoint string) *metadata.EntityDescriptor {
	ed := &metadata.EntityDescriptor{EntityID: id, DisplayName: id, Roles: []metadata.Role{role},
		Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: signing}}}
	if encryption != nil {
		ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: encryption})
	}
	if tlsClient != nil {
		ed.TLSKeys = []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: tlsClient}}
	}
	ed.Endpoints = []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: endpoint}}
	return ed
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		clock:       testutil.NewClock(testutil.FixedNow),
		hub:         loadSigner(t, "merchant-ec"),
		merchant:    loadSigner(t, "merchant-rsa"),
		issuer:      loadSigner(t, "issuer-rsa"),
		evil:        loadSigner(t, "attacker-rsa"),
		hubTLS:      loadTLS(t, "issuer-ec"),
		strangerTLS: loadTLS(t, "attacker-rsa"),
		iss:         newFakeIssuer(),
		log:         &syncBuffer{},
	}
	hubTLSLeaf, err := x509.ParseCertificate(w.hubTLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	mdSigner := loadSigner(t, "issuer-ec")
	w.md = metadatatest.NewHub(t, mdSigner, w.clock.Now,
		participant(hubID, metadata.RoleHub, w.hub.Cert, nil, hubTLSLeaf, "https://hub.test/kecis/soap"),
		participant(merchantID, metadata.RoleMerchant, w.merchant.Cert, w.merchant.Cert, nil, "https://merchant.test/kecis/soap"),
		participant(issuerID, metadata.RoleIssuer, w.issuer.Cert, w.issuer.Cert, nil, issuerEndpoint),
		participant(evilID, metadata.RolePG, w.evil.Cert, w.evil.Cert, nil, "https://evil.test/kecis/soap"),
	)
	w.dir = &metadata.Client{HubURL: w.md.URL, HubCerts: []*x509.Certificate{mdSigner.Cert}, HTTP: w.md.Client(), Now: w.clock.Now}

	w.store, err = store.Open(context.Background(), sqltest.TestSQLiteDSN(t), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })

	services := card.Services(w.iss)
	services[serviceReveal] = func(_ context.Context, r *connectors.Request) (*connectors.Response, error) {
		return &connectors.Response{Payload: &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion,
			Payment: &ecml.Payment{Card: &ecml.Card{Number: testPAN, ExpDate: &ecml.Date{Month: "12", Year: "2030"}}}}}}, nil
	}
	services[serviceRefuse] = func(context.Context, *connectors.Request) (*connectors.Response, error) {
		return nil, connectors.Refuse(saml.StatusRequester, saml.CodePolicyViolation, "not for you")
	}
	w.h, err = connectors.NewHandler(connectors.HandlerConfig{
		EntityID:    issuerID,
		Signer:      w.issuer,
		Decryption:  decryptionKeys(w.issuer),
		Endpoints:   []string{issuerEndpoint},
		Directory:   w.dir,
		HubEntityID: hubID,
		BackChannel: []string{saml.Fingerprint(hubTLSLeaf)},
		Services:    services,
		Store:       w.store,
		IdemKey:     []byte("a provider secret of 32 bytes..."),
		Now:         w.clock.Now,
		Log:         slog.New(slog.NewTextHandler(w.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewUnstartedServer(w.h)
	w.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)

	w.pending = saml.NewMemoryPending(w.clock.Now)
	w.rc = &saml.Receiver{Keys: w.dir, Replay: saml.NewMemoryReplayCache(w.clock.Now), Pending: w.pending,
		Decrypter: &saml.Decryptor{EntityID: merchantID, Keys: decryptionKeys(w.merchant)}, ValidatePayload: true, Now: w.clock.Now}
	return w
}

// approvePayload is a card approval as card.Client builds it.
func approvePayload(t testing.TB, pan string, won int64, order string) *ecml.Payload {
	t.Helper()
	amount, err := ecml.FormatAmount(ecml.Money{Minor: won, Currency: "KRW"})
	if err != nil {
		t.Fatal(err)
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order,
		Payment:     &ecml.Payment{Card: &ecml.Card{Number: ecml.PAN(pan), Name: "HONG GILDONG", ExpDate: &ecml.Date{Month: "12", Year: "2030"}}},
		Transaction: &ecml.Transaction{Amount: amount, Currency: "KRW", Type: "credit"}}}
}

// msgSpec describes a request; zero fields take defaults (the merchant
// approving 15,000 KRW on testPAN).
type msgSpec struct {
	issuer      string
	signer      *saml.Signer
	service     string
	key         string
	onBehalfOf  string
	destination string
	payload     *ecml.Payload
}

// request builds a request the way connectors.Client does: sensitive
// elements encrypted for the issuer, then signed. It returns its ID.
func (w *world) request(t testing.TB, s msgSpec) (string, []byte) {
	t.Helper()
	if s.issuer == "" {
		s.issuer, s.signer = merchantID, w.merchant
	}
	if s.service == "" {
		s.service = card.ServiceApprove
	}
	if s.destination == "" {
		s.destination = issuerEndpoint
	}
	if s.payload == nil {
		s.payload = approvePayload(t, testPAN, 15000, "ORD-1")
	}
	b := &saml.Builder{Issuer: s.issuer, Now: w.clock.Now}
	req, err := b.NewRequest(s.destination, s.service)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey, req.OnBehalfOf, req.Payload = s.key, s.onBehalfOf, s.payload
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: issuerID, Cert: w.issuer.Cert}); err != nil {
		t.Fatal(err)
	}
	msg, err := s.signer.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return req.ID, msg
}

// receive runs the requester's pipeline on an answer to request id.
func (w *world) receive(t testing.TB, id string, answer []byte) *saml.ServiceResponse {
	t.Helper()
	if err := w.pending.Add(context.Background(), id, issuerID, w.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := w.rc.ReceiveResponse(context.Background(), answer)
	if err != nil {
		t.Fatalf("the answer does not verify: %v", err)
	}
	if got.Response.InResponseTo != id || got.Response.Issuer != issuerID {
		t.Fatalf("answer InResponseTo %q from %q, want %q from %q", got.Response.InResponseTo, got.Response.Issuer, id, issuerID)
	}
	return got.Response
}

// handle sends a request straight to Handler.Handle and returns the
// verified answer.
func (w *world) handle(t testing.TB, s msgSpec) (string, *saml.ServiceResponse) {
	t.Helper()
	id, msg := w.request(t, s)
	out, err := w.h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return id, w.receive(t, id, out)
}

// post sends msg over HTTPS to the provider, presenting cert (nil: none).
func (w *world) post(msg []byte, cert *tls.Certificate) ([]byte, error) {
	var c tls.Certificate
	if cert != nil {
		c = *cert
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(c, []*x509.Certificate{w.srv.Certificate()})}}
	defer hc.CloseIdleConnections()
	return (&saml.SOAPClient{HTTP: hc}).Send(context.Background(), w.srv.URL+"/kecis/soap", msg)
}

func wantStatus(t testing.TB, r *saml.ServiceResponse, code, sub string) {
	t.Helper()
	if r.Status.Code != code || r.Status.SubCode != sub {
		t.Fatalf("status %s / %s (%s), want %s / %s", r.Status.Code, r.Status.SubCode, r.Status.Message, code, sub)
	}
}

func approvalOf(t testing.TB, r *saml.ServiceResponse) *card.Approval {
	t.Helper()
	wantStatus(t, r, saml.StatusSuccess, "")
	a, err := card.ApprovalFrom(r.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var cipherValues = regexp.MustCompile(`CipherValue>([^<]+)<`)

func TestHandleApprove(t *testing.T) {
	w := newWorld(t)
	payload := approvePayload(t, testPAN, 15000, "ORD-1")
	payload.KeyIn = &ecml.KeyIn{PasswordPrefix: "12", BirthDate: "900101"}
	id, msg := w.request(t, msgSpec{key: "order-1", payload: payload})
	if bytes.Contains(msg, []byte(testPAN)) || bytes.Contains(msg, []byte("900101")) {
		t.Fatal("the request carries the card or key-in data in clear")
	}
	out, err := w.h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	a := approvalOf(t, w.receive(t, id, out))
	if a.ApprovalNumber != "A0001" || a.State != card.Approved || a.Amount != (ecml.Money{Minor: 15000, Currency: "KRW"}) || a.OrderID != "ORD-1" {
		t.Fatalf("approval %+v", a)
	}
	got := w.iss.lastApprove()
	if got.Merchant != merchantID || got.IdempotencyKey != "order-1" || got.Card.Number.Reveal() != testPAN ||
		got.Card.ExpMonth != "12" || got.Card.ExpYear != "2030" || got.KeyIn == nil ||
		got.KeyIn.PasswordPrefix.Reveal() != "12" || got.KeyIn.BirthDate.Reveal() != "900101" {
		t.Fatalf("the provider got %#v", got)
	}
}

func TestServeHTTPBackChannel(t *testing.T) {
	w := newWorld(t)

	// The hub's TLS client certificate: served.
	id, msg := w.request(t, msgSpec{key: "k-http"})
	out, err := w.post(msg, &w.hubTLS)
	if err != nil {
		t.Fatal(err)
	}
	if a := approvalOf(t, w.receive(t, id, out)); a.ApprovalNumber != "A0001" {
		t.Fatalf("%+v", a)
	}

	// Anyone else (another certificate, or none) gets an unsigned fault,
	// before the message is even read.
	for name, cert := range map[string]*tls.Certificate{"stranger": &w.strangerTLS, "no certificate": nil} {
		_, msg := w.request(t, msgSpec{key: "k-" + name})
		_, err := w.post(msg, cert)
		var f *saml.Fault
		if !errors.As(err, &f) || f.Code != "soap:Client" {
			t.Fatalf("%s: %v, want a soap:Client fault", name, err)
		}
	}
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider ran %d times, want 1", n)
	}

	// A message that fails before verification: an unsigned fault too.
	_, msg = w.request(t, msgSpec{key: "k-tampered"})
	tampered := bytes.Replace(msg, []byte("ORD-1"), []byte("ORD-2"), 1)
	if _, err := w.h.Handle(context.Background(), tampered); err == nil {
		t.Fatal("Handle accepted a tampered message")
	}
	_, err = w.post(tampered, &w.hubTLS)
	var f *saml.Fault
	if !errors.As(err, &f) {
		t.Fatalf("tampered message over HTTPS: %v, want a fault", err)
	}
}

func TestHandleRefusals(t *testing.T) {
	w := newWorld(t)

	// A replay (the very same message) is refused, signed, before any
	// handler runs.
	id, msg := w.request(t, msgSpec{key: "k1"})
	out, err := w.h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	approvalOf(t, w.receive(t, id, out))
	out, err = w.h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, w.receive(t, id, out), saml.StatusRequester, saml.CodeReplay)

	// OnBehalfOf only from the hub.
	_, r := w.handle(t, msgSpec{key: "k2", onBehalfOf: "https://shop.test/kecis"})
	wantStatus(t, r, saml.StatusRequester, saml.CodeNotAuthorized)
	_, r = w.handle(t, msgSpec{issuer: hubID, signer: w.hub, key: "k2", onBehalfOf: merchantID})
	approvalOf(t, r)
	if got := w.iss.lastApprove(); got.Merchant != merchantID {
		t.Fatalf("Merchant %q, want the OnBehalfOf merchant", got.Merchant)
	}
	// The hub's key space for that merchant is not the merchant's own.
	_, r = w.handle(t, msgSpec{key: "k2"})
	approvalOf(t, r)

	// Another Destination, a service not offered.
	_, r = w.handle(t, msgSpec{key: "k3", destination: "https://evil.test/kecis/soap"})
	wantStatus(t, r, saml.StatusRequester, saml.CodeWrongDestination)
	_, r = w.handle(t, msgSpec{key: "k4", service: saml.ServiceURI("vcn", "issue")})
	wantStatus(t, r, saml.StatusRequester, saml.StatusRequestUnsupported)

	if n := w.iss.count("approve"); n != 3 {
		t.Fatalf("the provider ran %d times, want 3", n)
	}
}

// TestIdempotencyAuthority: a retry is a new message with the same key.
func TestIdempotencyAuthority(t *testing.T) {
	w := newWorld(t)
	id1, msg1 := w.request(t, msgSpec{key: "order-7"})
	out1, err := w.h.Handle(context.Background(), msg1)
	if err != nil {
		t.Fatal(err)
	}
	r1 := w.receive(t, id1, out1)
	a1 := approvalOf(t, r1)

	// An honest retry: new ID, new encryption (the ciphertext differs), the
	// same key → the original outcome, freshly signed for this message.
	id2, msg2 := w.request(t, msgSpec{key: "order-7"})
	c1, c2 := cipherValues.FindAllSubmatch(msg1, -1), cipherValues.FindAllSubmatch(msg2, -1)
	if len(c1) == 0 || len(c1) != len(c2) {
		t.Fatalf("%d and %d CipherValues", len(c1), len(c2))
	}
	for i := range c1 {
		if bytes.Equal(c1[i][1], c2[i][1]) {
			t.Fatal("the retry's ciphertext is the first message's")
		}
	}
	out2, err := w.h.Handle(context.Background(), msg2)
	if err != nil {
		t.Fatal(err)
	}
	r2 := w.receive(t, id2, out2)
	a2 := approvalOf(t, r2)
	if *a2 != *a1 || r2.InResponseTo != id2 || r2.ID == r1.ID {
		t.Fatalf("retry: %+v (InResponseTo %s, ID %s), want %+v answering %s with a new ID", a2, r2.InResponseTo, r2.ID, a1, id2)
	}
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider ran %d times, want 1", n)
	}

	// A changed retry — another amount, or another card (which only the
	// HMAC of the decrypted card tells) — is a conflict.
	for name, p := range map[string]*ecml.Payload{
		"amount": approvePayload(t, testPAN, 15001, "ORD-1"),
		"card":   approvePayload(t, otherPAN, 15000, "ORD-1"),
		"order":  approvePayload(t, testPAN, 15000, "ORD-2"),
	} {
		_, r := w.handle(t, msgSpec{key: "order-7", payload: p})
		if r.Status.Code != saml.StatusRequester || r.Status.SubCode != saml.CodeIdempotencyConflict {
			t.Fatalf("changed %s: %s / %s", name, r.Status.Code, r.Status.SubCode)
		}
	}
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider ran %d times, want 1", n)
	}

	// The same key from another issuer is another key.
	_, r := w.handle(t, msgSpec{issuer: hubID, signer: w.hub, key: "order-7", onBehalfOf: merchantID})
	if a := approvalOf(t, r); a.ApprovalNumber == a1.ApprovalNumber {
		t.Fatal("the hub's key for the merchant shares the merchant's own key space")
	}

	// A business refusal is an outcome: its retry gets it again without a
	// second call.
	for range 2 {
		_, r := w.handle(t, msgSpec{key: "big", payload: approvePayload(t, testPAN, 2_000_000, "ORD-9")})
		wantStatus(t, r, saml.StatusResponder, saml.CodeInsufficientFunds)
	}
	if n := w.iss.count("approve"); n != 3 {
		t.Fatalf("the provider ran %d times, want 3", n)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	w := newWorld(t)
	entered, release := make(chan struct{}), make(chan struct{})
	w.iss.set(func(f *fakeIssuer) { f.entered, f.release = entered, release })

	id1, msg1 := w.request(t, msgSpec{key: "slow"})
	done := make(chan []byte)
	go func() {
		out, err := w.h.Handle(context.Background(), msg1)
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	<-entered
	w.iss.set(func(f *fakeIssuer) { f.entered, f.release = nil, nil })
	_, r := w.handle(t, msgSpec{key: "slow"})
	wantStatus(t, r, saml.StatusRequester, saml.CodeInFlight)
	close(release)
	approvalOf(t, w.receive(t, id1, <-done))
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider ran %d times, want 1", n)
	}
}

func TestProviderFailures(t *testing.T) {
	w := newWorld(t)

	// A function error: ProviderUnavailable, and the key stays retryable.
	w.iss.set(func(f *fakeIssuer) { f.fail = fmt.Errorf("core banking down while charging %s", testPAN) })
	_, r := w.handle(t, msgSpec{key: "k1"})
	wantStatus(t, r, saml.StatusResponder, saml.CodeProviderUnavailable)
	w.iss.set(func(f *fakeIssuer) { f.fail = nil })
	_, r = w.handle(t, msgSpec{key: "k1"})
	approvalOf(t, r)
	if n := w.iss.count("approve"); n != 2 {
		t.Fatalf("the provider ran %d times, want 2", n)
	}

	// A panic: ProviderUnavailable too, and retryable.
	w.iss.set(func(f *fakeIssuer) { f.panicMsg = "nil map in the ledger" })
	_, r = w.handle(t, msgSpec{key: "k2"})
	wantStatus(t, r, saml.StatusResponder, saml.CodeProviderUnavailable)
	w.iss.set(func(f *fakeIssuer) { f.panicMsg = "" })
	_, r = w.handle(t, msgSpec{key: "k2"})
	approvalOf(t, r)

	// Errors are logged without the card number.
	log := w.log.String()
	if !bytes.Contains([]byte(log), []byte("core banking down")) || !bytes.Contains([]byte(log), []byte("nil map in the ledger")) {
		t.Fatalf("the failures were not logged:\n%s", log)
	}
	if ecml.ContainsPAN(log) {
		t.Fatalf("a card number reached the log:\n%s", log)
	}

	// StatusErrors: the card helpers and a plain ServiceFunc's Refuse.
	_, r = w.handle(t, msgSpec{key: "k3", payload: approvePayload(t, declinedPAN, 15000, "ORD-3")})
	wantStatus(t, r, saml.StatusResponder, saml.CodeDeclined)
	if r.Status.Message != "do not honour" {
		t.Fatalf("message %q", r.Status.Message)
	}
	_, r = w.handle(t, msgSpec{key: "k4", service: serviceRefuse, payload: &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion}}})
	wantStatus(t, r, saml.StatusRequester, saml.CodePolicyViolation)
}

// TestAnswerEncryptedForRequester: a sensitive element in an answer is
// encrypted for the requester, also when it is replayed from the store.
func TestAnswerEncryptedForRequester(t *testing.T) {
	w := newWorld(t)
	empty := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion}}
	for range 2 {
		id, msg := w.request(t, msgSpec{key: "reveal-1", service: serviceReveal, payload: empty})
		out, err := w.h.Handle(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte(testPAN)) || !bytes.Contains(out, []byte("EncryptedData")) {
			t.Fatalf("the card travels in clear:\n%s", out)
		}
		r := w.receive(t, id, out)
		wantStatus(t, r, saml.StatusSuccess, "")
		if r.Payload.Ecom.Payment.Card.Number.Reveal() != testPAN {
			t.Fatal("the requester does not get the card back")
		}
	}
	// A requester without an encryption key (the hub publishes none here)
	// cannot be answered with a card.
	_, r := w.handle(t, msgSpec{issuer: hubID, signer: w.hub, key: "reveal-2", service: serviceReveal, payload: empty, onBehalfOf: merchantID})
	wantStatus(t, r, saml.StatusResponder, saml.CodeProviderUnavailable)
}

func TestNewHandlerChecksConfig(t *testing.T) {
	w := newWorld(t)
	good := connectors.HandlerConfig{EntityID: issuerID, Signer: w.issuer, Directory: w.dir, Store: w.store,
		IdemKey: make([]byte, 16), Endpoints: []string{issuerEndpoint}}
	if _, err := connectors.NewHandler(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*connectors.HandlerConfig){
		"no entityID":  func(c *connectors.HandlerConfig) { c.EntityID = "" },
		"no signer":    func(c *connectors.HandlerConfig) { c.Signer = nil },
		"no directory": func(c *connectors.HandlerConfig) { c.Directory = nil },
		"no store":     func(c *connectors.HandlerConfig) { c.Store = nil },
		"short key":    func(c *connectors.HandlerConfig) { c.IdemKey = make([]byte, 15) },
		"no endpoints": func(c *connectors.HandlerConfig) { c.Endpoints = nil },
	} {
		c := good
		mut(&c)
		if _, err := connectors.NewHandler(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
