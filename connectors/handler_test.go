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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"

	"modernc.org/sqlite"
)

// The federation of these tests. The test keys play these parts:
//
//	hub       signs with merchant-ec, connects to providers with issuer-ec's TLS certificate
//	merchant  signs with and decrypts with merchant-rsa
//	issuer    the provider under test: signs with and decrypts with issuer-rsa
//	evil      a registered PG the issuer does not take card:* from (attacker-rsa)
//	merchantB a second merchant (signs with attacker-rsa too)
//	stranger  attacker-rsa's TLS certificate: not allowed on the back channel
const (
	hubID          = "https://hub.test/kecis"
	merchantID     = "https://merchant.test/kecis"
	merchantBID    = "https://merchant-b.test/kecis"
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
	merchants map[string]string // approval number → merchant
	order     []string          // approval numbers, oldest first
	seq       int
	last      *card.ApproveRequest

	fail     error         // Approve returns it
	panicMsg string        // Approve panics with it
	pending  bool          // Approve approves but answers Pending (the outcome lost on the way)
	entered  chan struct{} // Approve signals here, then waits for release
	release  chan struct{}
	// ownerBlind finds an approval by its number or its order alone,
	// whoever asks — as the example PG's mapping did (issue 12, finding 2).
	ownerBlind bool
}

func newFakeIssuer() *fakeIssuer {
	return &fakeIssuer{calls: map[string]int{}, approvals: map[string]*card.Approval{}, merchants: map[string]string{}}
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
	f.merchants[a.ApprovalNumber] = req.Merchant
	f.order = append(f.order, a.ApprovalNumber)
	if f.pending {
		return nil, connectors.Refuse(saml.StatusResponder, saml.CodePending, "no answer from the card network")
	}
	c := *a
	return &c, nil
}

// find returns merchant's approval by number or order (anyone's when
// ownerBlind).
func (f *fakeIssuer) find(merchant, number, order string) *card.Approval {
	mine := func(n string) bool { return f.ownerBlind || f.merchants[n] == merchant }
	if a, ok := f.approvals[number]; ok && mine(number) {
		return a
	}
	for _, n := range f.order {
		if a := f.approvals[n]; order != "" && a.OrderID == order && mine(n) {
			return a
		}
	}
	return nil
}

func (f *fakeIssuer) Cancel(_ context.Context, req *card.CancelRequest) (*card.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cancel"]++
	a := f.find(req.Merchant, req.ApprovalNumber, req.OrderID)
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
	a := f.find(req.Merchant, req.ApprovalNumber, req.OrderID)
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
	a := f.find(req.Merchant, req.ApprovalNumber, req.OrderID)
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
	store                       *storesql.Store
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

// offered declares services at the issuer, each admitting callers.
func offered(callers []metadata.Role, services ...string) []metadata.OfferedService {
	out := make([]metadata.OfferedService, 0, len(services))
	for _, s := range services {
		out = append(out, metadata.OfferedService{Service: s, Callers: callers})
	}
	return out
}

// newWorld builds the federation. The issuer offers the card services
// and the test services to merchants (KECIS §13.2); edits change its
// descriptor before the metadata is served.
func newWorld(t *testing.T, edits ...func(issuer *metadata.EntityDescriptor)) *world {
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
	issuerMD := participant(issuerID, metadata.RoleIssuer, w.issuer.Cert, w.issuer.Cert, nil, issuerEndpoint)
	issuerMD.Services = offered([]metadata.Role{metadata.RoleMerchant},
		card.ServiceApprove, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire, serviceReveal, serviceRefuse)
	for _, edit := range edits {
		edit(issuerMD)
	}
	w.md = metadatatest.NewHub(t, mdSigner, w.clock.Now,
		participant(hubID, metadata.RoleHub, w.hub.Cert, nil, hubTLSLeaf, "https://hub.test/kecis/soap"),
		participant(merchantID, metadata.RoleMerchant, w.merchant.Cert, w.merchant.Cert, nil, "https://merchant.test/kecis/soap"),
		participant(merchantBID, metadata.RoleMerchant, w.evil.Cert, w.evil.Cert, nil, "https://merchant-b.test/kecis/soap"),
		issuerMD,
		participant(evilID, metadata.RolePG, w.evil.Cert, w.evil.Cert, nil, "https://evil.test/kecis/soap"),
	)
	w.dir = &metadata.Client{HubURL: w.md.URL, HubCerts: []*x509.Certificate{mdSigner.Cert}, HTTP: w.md.Client(), Now: w.clock.Now}

	w.store, err = sqlitestore.Open(context.Background(), sqltest.TestSQLiteDSN(t), bytes.Repeat([]byte{7}, 32))
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
		"a second rule for a card service": func(c *connectors.HandlerConfig) {
			c.Objects = map[string]connectors.ObjectRule{card.ServiceCancel: {Refs: card.Objects, NotFound: card.NoSuchApproval}}
		},
		"a rule without Refs": func(c *connectors.HandlerConfig) {
			c.Objects = map[string]connectors.ObjectRule{serviceReveal: {NotFound: card.NoSuchApproval}}
		},
		"a rule whose NotFound is a success": func(c *connectors.HandlerConfig) {
			c.Objects = map[string]connectors.ObjectRule{serviceReveal: {Refs: card.Objects, NotFound: saml.Status{Code: saml.StatusSuccess}}}
		},
	} {
		c := good
		mut(&c)
		if _, err := connectors.NewHandler(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good.Objects = map[string]connectors.ObjectRule{serviceReveal: {Refs: card.Objects, NotFound: card.NoSuchApproval}}
	if _, err := connectors.NewHandler(good); err != nil {
		t.Fatalf("a rule for a service of the provider's own: %v", err)
	}
}

func TestRegisterObjectRule(t *testing.T) {
	if r, ok := connectors.ObjectRuleOf(card.ServiceApprove); !ok || !r.Creates {
		t.Fatalf("card:approve's rule: %+v, %v", r, ok)
	}
	for name, f := range map[string]func(){
		"twice": func() {
			connectors.RegisterObjectRule(card.ServiceInquire, connectors.ObjectRule{Refs: card.Objects, NotFound: card.NoSuchApproval})
		},
		"no service": func() {
			connectors.RegisterObjectRule("", connectors.ObjectRule{Refs: card.Objects, NotFound: card.NoSuchApproval})
		},
		"no Refs": func() {
			connectors.RegisterObjectRule(saml.ServiceURI("test", "none"), connectors.ObjectRule{NotFound: card.NoSuchApproval})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestCallerAuthorization: the Handler admits only the callers the
// service, as this provider's active metadata offers it, declares
// (KECIS §13.2) — defence in depth behind the hub — and refuses the others
// with a signed Requester / RequestDenied, before the provider runs.
func TestCallerAuthorization(t *testing.T) {
	denied := func(t *testing.T, w *world, s msgSpec) {
		t.Helper()
		_, r := w.handle(t, s)
		wantStatus(t, r, saml.StatusRequester, saml.StatusRequestDenied)
	}
	t.Run("admitted role", func(t *testing.T) {
		w := newWorld(t)
		_, r := w.handle(t, msgSpec{key: "k1"})
		approvalOf(t, r)
	})
	t.Run("refused role", func(t *testing.T) {
		// A PG the issuer does not take card:approve from.
		w := newWorld(t)
		denied(t, w, msgSpec{issuer: evilID, signer: w.evil, key: "k1"})
		if n := w.iss.count("approve"); n != 0 {
			t.Fatalf("the provider ran %d times", n)
		}
		if log := w.log.String(); !strings.Contains(log, "caller_denied") || !strings.Contains(log, evilID) {
			t.Fatalf("the reason is not in the log:\n%s", log)
		}
	})
	t.Run("on behalf of a merchant, from the hub", func(t *testing.T) {
		// The caller is the OnBehalfOf merchant, not the hub.
		w := newWorld(t)
		_, r := w.handle(t, msgSpec{issuer: hubID, signer: w.hub, key: "k1", onBehalfOf: merchantBID})
		approvalOf(t, r)
		// The hub on its own behalf is a caller of role hub: not admitted.
		denied(t, w, msgSpec{issuer: hubID, signer: w.hub, key: "k2"})
		// Nor is a PG the hub would name.
		denied(t, w, msgSpec{issuer: hubID, signer: w.hub, key: "k3", onBehalfOf: evilID})
	})
	t.Run("unknown caller", func(t *testing.T) {
		w := newWorld(t)
		denied(t, w, msgSpec{issuer: hubID, signer: w.hub, key: "k1", onBehalfOf: "https://unknown.test/kecis"})
	})
	t.Run("caller entities narrow the roles", func(t *testing.T) {
		w := newWorld(t, func(ed *metadata.EntityDescriptor) {
			ed.Services[0].CallerEntities = []string{merchantBID} // card:approve: a contract with merchant B only
		})
		denied(t, w, msgSpec{key: "k1"})
		denied(t, w, msgSpec{issuer: hubID, signer: w.hub, key: "k2", onBehalfOf: merchantID})
		_, r := w.handle(t, msgSpec{issuer: hubID, signer: w.hub, key: "k3", onBehalfOf: merchantBID})
		approvalOf(t, r)
		_, r = w.handle(t, msgSpec{issuer: merchantBID, signer: w.evil, key: "k4"})
		approvalOf(t, r)
		if n := w.iss.count("approve"); n != 2 {
			t.Fatalf("the provider ran %d times, want 2", n)
		}
	})
	t.Run("a service that declares no callers", func(t *testing.T) {
		w := newWorld(t, func(ed *metadata.EntityDescriptor) { ed.Services[0].Callers = nil })
		denied(t, w, msgSpec{key: "k1"})
	})
	t.Run("a function the metadata does not offer", func(t *testing.T) {
		w := newWorld(t, func(ed *metadata.EntityDescriptor) { ed.Services = ed.Services[1:] })
		_, r := w.handle(t, msgSpec{key: "k1"})
		wantStatus(t, r, saml.StatusRequester, saml.StatusRequestUnsupported)
	})
}

// refPayload names an approval (by order, number or both) for cancel,
// refund and inquire, as card.Client builds it; won > 0 adds the amount.
func refPayload(t testing.TB, order, approval string, won int64) *ecml.Payload {
	t.Helper()
	tr := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: approval}}
	if won > 0 {
		if err := tr.SetMoney(ecml.Money{Minor: won, Currency: "KRW"}); err != nil {
			t.Fatal(err)
		}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Transaction: tr}}
}

// onBehalfOf is a request the hub builds on its facade for merchant.
func (w *world) onBehalfOf(merchant string, s msgSpec) msgSpec {
	s.issuer, s.signer, s.onBehalfOf = hubID, w.hub, merchant
	return s
}

// providerCalls is how often the provider ran cancel, refund and inquire.
func (f *fakeIssuer) providerCalls() int {
	return f.count("cancel") + f.count("refund") + f.count("inquire")
}

// TestObjectOwnership: another merchant's order or approval answers
// exactly as an unknown one (KECIS §13.3), directly and through the hub's
// facade, and the provider is not asked; the owner still can; order
// numbers are the merchant's own.
func TestObjectOwnership(t *testing.T) {
	w := newWorld(t)
	_, r := w.handle(t, msgSpec{key: "a-1", payload: approvePayload(t, testPAN, 15000, "ORD-1")})
	a1 := approvalOf(t, r).ApprovalNumber

	asB := []struct {
		name string
		spec func(msgSpec) msgSpec
	}{
		{"merchant B itself", func(s msgSpec) msgSpec { s.issuer, s.signer = merchantBID, w.evil; return s }},
		{"merchant B through the hub", func(s msgSpec) msgSpec { return w.onBehalfOf(merchantBID, s) }},
	}
	type probe struct {
		service         string
		order, approval string
		won             int64
	}
	probes := func(order, approval string) []probe {
		var out []probe
		for _, svc := range []string{card.ServiceInquire, card.ServiceCancel, card.ServiceRefund} {
			won := int64(0)
			if svc == card.ServiceRefund {
				won = 1000
			}
			out = append(out, probe{svc, order, "", won}, probe{svc, "", approval, won}, probe{svc, order, approval, won})
		}
		return out
	}
	key := 0
	ask := func(b func(msgSpec) msgSpec, p probe) *saml.ServiceResponse {
		s := msgSpec{service: p.service, payload: refPayload(t, p.order, p.approval, p.won)}
		if p.service != card.ServiceInquire {
			key++
			s.key = fmt.Sprintf("b-%d", key)
		}
		_, r := w.handle(t, b(s))
		return r
	}
	before := w.iss.providerCalls()
	for _, b := range asB {
		for i, p := range probes("ORD-1", a1) {
			unknown := probes("NOPE-1", "A9999")[i]
			got, want := ask(b.spec, p), ask(b.spec, unknown)
			if got.Status != want.Status || want.Status != card.NoSuchApproval || got.Payload != nil {
				t.Fatalf("%s, %s of order %q approval %q: %+v; an unknown one: %+v", b.name, p.service, p.order, p.approval, got.Status, want.Status)
			}
		}
	}
	if n := w.iss.providerCalls(); n != before {
		t.Fatalf("the provider was asked %d times for objects that are not the caller's", n-before)
	}
	if log := w.log.String(); !strings.Contains(log, "object refused") || !strings.Contains(log, "held by another owner") {
		t.Fatalf("the refusals are not in the log:\n%s", log)
	}

	// The owner still can, directly or through the hub, by order or number.
	for _, s := range []msgSpec{
		{service: card.ServiceInquire, payload: refPayload(t, "ORD-1", "", 0)},
		w.onBehalfOf(merchantID, msgSpec{service: card.ServiceInquire, payload: refPayload(t, "", a1, 0)}),
	} {
		_, r := w.handle(t, s)
		if a := approvalOf(t, r); a.ApprovalNumber != a1 || a.State != card.Approved {
			t.Fatalf("the owner's inquire: %+v", a)
		}
	}
	w.iss.settle(a1)
	_, r = w.handle(t, msgSpec{service: card.ServiceRefund, key: "a-2", payload: refPayload(t, "ORD-1", "", 5000)})
	if a := approvalOf(t, r); a.State != card.PartiallyRefunded || a.Refunded.Minor != 5000 {
		t.Fatalf("the owner's refund: %+v", a)
	}

	// Order numbers are the merchant's own: B uses ORD-1 too, and each
	// sees its own approval under it.
	_, r = w.handle(t, w.onBehalfOf(merchantBID, msgSpec{key: "b-approve", payload: approvePayload(t, otherPAN, 20000, "ORD-1")}))
	b1 := approvalOf(t, r).ApprovalNumber
	for owner, want := range map[string]string{merchantID: a1, merchantBID: b1} {
		_, r := w.handle(t, w.onBehalfOf(owner, msgSpec{service: card.ServiceInquire, payload: refPayload(t, "ORD-1", "", 0)}))
		if a := approvalOf(t, r); a.ApprovalNumber != want {
			t.Fatalf("%s's ORD-1 is %s, want %s", owner, a.ApprovalNumber, want)
		}
	}
	_, r = w.handle(t, w.onBehalfOf(merchantBID, msgSpec{service: card.ServiceCancel, key: "b-cancel", payload: refPayload(t, "ORD-1", "", 0)}))
	if a := approvalOf(t, r); a.ApprovalNumber != b1 || a.State != card.Cancelled {
		t.Fatalf("B's cancel of its own ORD-1: %+v", a)
	}
	_, r = w.handle(t, msgSpec{service: card.ServiceInquire, payload: refPayload(t, "", a1, 0)})
	if a := approvalOf(t, r); a.State != card.PartiallyRefunded {
		t.Fatalf("A's approval after B's cancel: %+v", a)
	}
	if ecml.ContainsPAN(w.log.String()) {
		t.Fatal("a card number reached the log")
	}
}

// TestObjectOwnershipPending: an approval whose outcome was lost (Pending)
// is the caller's by its order from the start, and its number becomes the
// caller's when an inquire by order reveals it.
func TestObjectOwnershipPending(t *testing.T) {
	w := newWorld(t)
	w.iss.set(func(f *fakeIssuer) { f.pending = true })
	_, r := w.handle(t, msgSpec{key: "a-5", payload: approvePayload(t, testPAN, 15000, "ORD-5")})
	wantStatus(t, r, saml.StatusResponder, saml.CodePending)

	_, r = w.handle(t, msgSpec{service: card.ServiceInquire, payload: refPayload(t, "ORD-5", "", 0)})
	n := approvalOf(t, r).ApprovalNumber
	_, r = w.handle(t, msgSpec{service: card.ServiceInquire, payload: refPayload(t, "", n, 0)})
	approvalOf(t, r)
	for _, p := range []*ecml.Payload{refPayload(t, "ORD-5", "", 0), refPayload(t, "", n, 0)} {
		_, r = w.handle(t, w.onBehalfOf(merchantBID, msgSpec{service: card.ServiceInquire, payload: p}))
		if r.Status != card.NoSuchApproval {
			t.Fatalf("B's inquire of A's pending approval: %+v", r.Status)
		}
	}
	_, r = w.handle(t, msgSpec{service: card.ServiceCancel, key: "a-6", payload: refPayload(t, "", n, 0)})
	if a := approvalOf(t, r); a.State != card.Cancelled {
		t.Fatalf("the owner's cancel: %+v", a)
	}
}

// TestFinding2OtherMerchantsPayment is the SDK-level regression test of
// issue 12, finding 2: a provider that finds an approval by its order
// number or approval number alone (as the example PG's mapping did) served
// merchant B's inquire, cancel and refund of merchant A's payment, all
// sent by the hub on B's behalf, and answered B's inquire of its own order
// number with A's payment. The SDK answers each as an unknown order.
func TestFinding2OtherMerchantsPayment(t *testing.T) {
	w := newWorld(t)
	w.iss.set(func(f *fakeIssuer) { f.ownerBlind = true })
	asA := func(s msgSpec) msgSpec { return w.onBehalfOf(merchantID, s) }
	asB := func(s msgSpec) msgSpec { return w.onBehalfOf(merchantBID, s) }

	_, r := w.handle(t, asA(msgSpec{key: "a-1", payload: approvePayload(t, testPAN, 15000, "ORD-1")}))
	a1 := approvalOf(t, r).ApprovalNumber
	_, r = w.handle(t, asA(msgSpec{key: "a-2", payload: approvePayload(t, testPAN, 30000, "ORD-2")}))
	a2 := approvalOf(t, r).ApprovalNumber
	w.iss.settle(a2)

	// What B gets for an order and an approval nobody has.
	_, unknown := w.handle(t, asB(msgSpec{service: card.ServiceInquire, payload: refPayload(t, "NOPE-1", "", 0)}))
	if unknown.Status.OK() {
		t.Fatal("an unknown order was found")
	}
	for name, s := range map[string]msgSpec{
		"inquire by order":     {service: card.ServiceInquire, payload: refPayload(t, "ORD-1", "", 0)},
		"inquire by number":    {service: card.ServiceInquire, payload: refPayload(t, "", a1, 0)},
		"cancel by order":      {service: card.ServiceCancel, key: "b-1", payload: refPayload(t, "ORD-1", "", 0)},
		"cancel by number":     {service: card.ServiceCancel, key: "b-2", payload: refPayload(t, "", a1, 0)},
		"refund by order":      {service: card.ServiceRefund, key: "b-3", payload: refPayload(t, "ORD-2", "", 30000)},
		"refund by number":     {service: card.ServiceRefund, key: "b-4", payload: refPayload(t, "", a2, 30000)},
		"inquire of a settled": {service: card.ServiceInquire, payload: refPayload(t, "", a2, 0)},
	} {
		_, r := w.handle(t, asB(s))
		if r.Status != unknown.Status || r.Payload != nil {
			t.Errorf("%s of merchant A's payment by merchant B: %+v, want what an unknown order gets: %+v", name, r.Status, unknown.Status)
		}
	}
	// B's own ORD-1: the provider finds A's ORD-1 first; that answer is
	// never given.
	_, r = w.handle(t, asB(msgSpec{key: "b-5", payload: approvePayload(t, otherPAN, 20000, "ORD-1")}))
	b1 := approvalOf(t, r).ApprovalNumber
	_, r = w.handle(t, asB(msgSpec{service: card.ServiceInquire, payload: refPayload(t, "ORD-1", "", 0)}))
	if r.Status.OK() && approvalOf(t, r).ApprovalNumber != b1 {
		t.Errorf("B's inquire of its own ORD-1 answered with A's approval %s", approvalOf(t, r).ApprovalNumber)
	}

	// A's payments are untouched.
	for n, want := range map[string]card.State{a1: card.Approved, a2: card.Settled} {
		_, r := w.handle(t, asA(msgSpec{service: card.ServiceInquire, payload: refPayload(t, "", n, 0)}))
		if a := approvalOf(t, r); a.State != want || a.Refunded.Minor != 0 {
			t.Errorf("A's approval %s after B's attempts: %+v", n, a)
		}
	}
}

// commits counts the SQLite commits of the databases whose DSN names the
// running test (each commit is an fsync).
type commits struct {
	mu sync.Mutex
	n  map[string]int
}

var sqliteCommits = func() *commits {
	c := &commits{n: map[string]int{}}
	sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
		h, ok := conn.(interface{ RegisterCommitHook(sqlite.CommitHookFn) })
		if !ok {
			return nil
		}
		h.RegisterCommitHook(func() int32 {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.n[dsn]++
			return 0
		})
		return nil
	})
	return c
}()

func (c *commits) of(t *testing.T) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for dsn, k := range c.n {
		if strings.Contains(dsn, t.Name()) {
			n += k
		}
	}
	return n
}

// TestCommitsPerRequest: the request's replay record and the owner of a
// new order are written in the transaction that takes the idempotency
// key, and the approval number in the one that records the outcome, so
// that an approval costs the adapter store two commits (key, outcome); an
// inquire of a known approval costs one (its replay record).
func TestCommitsPerRequest(t *testing.T) {
	w := newWorld(t)
	for i, c := range []struct {
		spec msgSpec
		want int
	}{
		{msgSpec{key: "a-1", payload: approvePayload(t, testPAN, 15000, "ORD-1")}, 2},
		{msgSpec{service: card.ServiceInquire, payload: refPayload(t, "ORD-1", "", 0)}, 1},
		{msgSpec{service: card.ServiceInquire, payload: refPayload(t, "", "A0001", 0)}, 1},
		{msgSpec{service: card.ServiceCancel, key: "a-2", payload: refPayload(t, "", "A0001", 0)}, 2},
	} {
		before := sqliteCommits.of(t)
		_, r := w.handle(t, c.spec)
		approvalOf(t, r)
		if n := sqliteCommits.of(t) - before; n != c.want {
			t.Errorf("request %d (%s): %d commits, want %d", i+1, c.spec.service, n, c.want)
		}
	}
}

// TestReplayOfEveryOutcome: the message's ID is recorded whatever the
// request ended with — an approval (with its key, one commit), a refusal
// of an object the caller does not have (keyed, the refusal taking
// nothing), an inquire without a key — so that the same message delivered
// again is refused as a replay (KECIS §7.2).
func TestReplayOfEveryOutcome(t *testing.T) {
	w := newWorld(t)
	for i, c := range []struct {
		spec  msgSpec
		first string // the first delivery's status code
	}{
		{msgSpec{key: "r-1", payload: approvePayload(t, testPAN, 15000, "ORD-R1")}, saml.StatusSuccess},
		{msgSpec{service: card.ServiceCancel, key: "r-2", payload: refPayload(t, "", "A9999", 0)}, saml.StatusRequester},
		{msgSpec{service: card.ServiceInquire, payload: refPayload(t, "ORD-R1", "", 0)}, saml.StatusSuccess},
	} {
		id, msg := w.request(t, c.spec)
		out, err := w.h.Handle(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if r := w.receive(t, id, out); r.Status.Code != c.first || r.Status.SubCode == saml.CodeReplay {
			t.Fatalf("message %d: the first delivery answered %+v, want %s", i+1, r.Status, c.first)
		}
		out, err = w.h.Handle(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, w.receive(t, id, out), saml.StatusRequester, saml.CodeReplay)
	}
	if n := w.iss.count("cancel"); n != 0 {
		t.Errorf("the provider cancelled %d times; the unknown approval is refused before it", n)
	}
}

// finishFails is an adapter store that cannot record outcomes.
type finishFails struct{ store.Store }

func (finishFails) FinishObjects(context.Context, string, string, *store.Outcome, store.Objects, time.Time) error {
	return errors.New("disk full")
}

// TestOutcomeNotRecordedIsPending: an outcome the adapter store could not
// record is not given — the issuer approved, yet the caller is told
// Pending (KECIS §7.1), the log says why, and the approval is not in it.
func TestOutcomeNotRecordedIsPending(t *testing.T) {
	w := newWorld(t)
	h, err := connectors.NewHandler(connectors.HandlerConfig{
		EntityID: issuerID, Signer: w.issuer, Decryption: decryptionKeys(w.issuer), Endpoints: []string{issuerEndpoint},
		Directory: w.dir, HubEntityID: hubID, Services: card.Services(w.iss), Store: finishFails{w.store},
		IdemKey: []byte("a provider secret of 32 bytes..."), Now: w.clock.Now, Log: slog.New(slog.NewTextHandler(w.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, msg := w.request(t, msgSpec{key: "k-unrecorded"})
	out, err := h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	resp := w.receive(t, id, out)
	if resp.Status.SubCode != saml.CodePending {
		t.Fatalf("status %+v, want Pending", resp.Status)
	}
	if resp.Payload != nil {
		t.Errorf("a Pending answer carries the unrecorded outcome's payload")
	}
	if !strings.Contains(w.log.String(), "outcome not recorded, answered Pending") {
		t.Errorf("the log does not say why:\n%s", w.log.String())
	}
}
