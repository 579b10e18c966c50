package server_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const (
	merchantID = "https://merchant.test/kecis"
	issuerID   = "https://issuer.test/kecis"
)

func loadSigner(t *testing.T, name string) *saml.Signer {
	s, err := saml.LoadSigner(filepath.Join("..", "..", "saml", "testdata", "keys", name+".key.pem"), filepath.Join("..", "..", "saml", "testdata", "keys", name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testProvider is a card issuer endpoint built on saml/: it accepts
// back-channel requests only from the hub's TLS client certificate,
// verifies the merchant's own signature with the federation's keys,
// decrypts the card, and answers idempotently per key.
type testProvider struct {
	srv      *httptest.Server
	tlsCert  *x509.Certificate
	signer   *saml.Signer
	rc       *saml.Receiver
	hubTLS   string // fingerprint of the hub's TLS client certificate
	mu       sync.Mutex
	outcomes map[string]string // idempotency key → approval number
	seen     []string          // cards seen (masked)
	block    chan struct{}     // when set, requests wait for it
	received int
}

func newProvider(t *testing.T, merchantCerts []*x509.Certificate, hubTLS, hubSigning *x509.Certificate) *testProvider {
	p := &testProvider{signer: loadSigner(t, "issuer-rsa"), hubTLS: saml.Fingerprint(hubTLS), outcomes: map[string]string{}}
	p.rc = &saml.Receiver{
		Keys:        saml.StaticKeys{merchantID: merchantCerts, "https://hub.test/kecis": {hubSigning}},
		HubEntityID: "https://hub.test/kecis",
		Replay:      saml.NewMemoryReplayCache(nil),
		Decrypter: &saml.Decryptor{EntityID: issuerID, Keys: []saml.DecryptionKey{
			{Cert: p.signer.Cert, Key: p.signer.Key.(crypto.Decrypter)}}},
		ValidatePayload: true,
	}
	kp, c := writeKey(t, filepath.Join(t.TempDir(), "ptls"), devpki.TLSServer, "issuer tls")
	p.tlsCert = c
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	p.srv.StartTLS()
	p.rc.Destinations = []string{p.srv.URL + "/kecis/soap"}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testProvider) serve(w http.ResponseWriter, r *http.Request) {
	// Only the hub may call: hub policy, idempotency and audit cannot be bypassed.
	p.mu.Lock()
	hubTLS := p.hubTLS
	p.mu.Unlock()
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || saml.Fingerprint(r.TLS.PeerCertificates[0]) != hubTLS {
		saml.WriteFault(w, &saml.Fault{Code: "soap:Client", String: "back-channel requests are accepted from the hub only"})
		return
	}
	msg, err := saml.ReadSOAPRequest(r, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	got, err := p.rc.ReceiveRequest(r.Context(), msg)
	b := &saml.Builder{Issuer: issuerID}
	var st saml.Status
	var inResp string
	if err != nil {
		e := saml.AsError(err)
		if e.Stage == saml.BeforeVerification {
			saml.WriteFault(w, saml.FaultFor(err))
			return
		}
		st, inResp = e.StatusValue(), e.ID
	} else {
		p.mu.Lock()
		p.received++
		block := p.block
		p.mu.Unlock()
		if block != nil {
			<-block
		}
		req := got.Request
		p.mu.Lock()
		apv, ok := p.outcomes[req.IdempotencyKey]
		if !ok {
			apv = "APV" + strings.Repeat("0", 4) + string(rune('1'+len(p.outcomes)))
			p.outcomes[req.IdempotencyKey] = apv
			p.seen = append(p.seen, req.Payload.Ecom.Payment.Card.Number.Masked())
		}
		p.mu.Unlock()
		st, inResp = saml.Status{Code: saml.StatusSuccess, Message: apv}, req.ID
	}
	resp, _ := b.NewResponse(inResp, "", st)
	el, _ := resp.Element()
	out, _ := p.signer.SignToBytes(el)
	saml.WriteSOAP(w, out)
}

type fed struct {
	h        *testHub
	p        *testProvider
	merchant *saml.Signer
	mTLS     tls.Certificate
	dest     string
}

func setupFederation(t *testing.T, relayTimeout time.Duration) *fed {
	return setupFederationWith(t, relayTimeout, "")
}

func setupFederationWith(t *testing.T, relayTimeout time.Duration, extraYAML string) *fed {
	return setupFederationOn(t, "", relayTimeout, extraYAML)
}

func setupFederationOn(t *testing.T, dsn string, relayTimeout time.Duration, extraYAML string) *fed {
	h := startHubFull(t, dsn, relayTimeout, extraYAML)
	f := &fed{h: h, merchant: loadSigner(t, "merchant-rsa")}
	var mTLSCert *x509.Certificate
	f.mTLS, mTLSCert = writeKey(t, filepath.Join(t.TempDir(), "mtls"), devpki.TLSClient, "merchant tls")
	f.p = newProvider(t, []*x509.Certificate{f.merchant.Cert}, h.tlsCert, h.hubCert)
	f.dest = f.p.srv.URL + "/kecis/soap"
	// A recipient accepts any of its own published endpoint URLs as
	// Destination, so that failover does not break the check.
	f.p.rc.Destinations = []string{"https://127.0.0.1:1/kecis/soap", f.dest}
	ctx := context.Background()
	add := func(ed *metadata.EntityDescriptor) {
		md, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		p, err := server.Describe(md)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		p.Status, p.Metadata, p.CreatedAt, p.UpdatedAt = store.StatusActive, md, now, now
		if err := h.st.CreateParticipant(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	add(&metadata.EntityDescriptor{EntityID: merchantID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.merchant.Cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: mTLSCert}}})
	add(&metadata.EntityDescriptor{EntityID: issuerID, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.p.signer.Cert}, {Use: metadata.UseEncryption, Certificate: f.p.signer.Cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: f.p.tlsCert}},
		// The first endpoint is down: failover moves to the second of the
		// same participant, as the connection failed before delivery.
		Endpoints: []metadata.Endpoint{
			{Service: "*", Binding: saml.BindingSOAP, Location: "https://127.0.0.1:1/kecis/soap", Priority: 0},
			{Service: "*", Binding: saml.BindingSOAP, Location: f.dest, Priority: 1},
		},
		Services: []metadata.OfferedService{{Service: saml.ServiceURI("card", "approve"), Callers: []metadata.Role{metadata.RoleMerchant}}}})
	return f
}

// approve builds, encrypts for the issuer and signs a card approval.
func (f *fed) approve(t *testing.T, key, amount, dest string) []byte {
	t.Helper()
	b := &saml.Builder{Issuer: merchantID}
	req, err := b.NewRequest(dest, saml.ServiceURI("card", "approve"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = key
	p, err := ecml.FromForm(map[string][]string{
		"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-" + key},
		"Ecom_Payment_Card_Number": {"4111111111111111"}, "Ecom_Payment_Card_ExpDate_Month": {"12"}, "Ecom_Payment_Card_ExpDate_Year": {"2030"},
		"Ecom_Transaction_Amount": {amount}, "Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Transaction_Type": {"credit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req.Payload = p
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: issuerID, Cert: f.p.signer.Cert}); err != nil {
		t.Fatal(err)
	}
	out, err := f.merchant.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// send posts through the hub with a TLS client certificate and returns
// the answer's status (verified with the issuer's or the hub's key), or the
// fault.
func (f *fed) send(t *testing.T, cert *tls.Certificate, msg []byte) (*saml.Status, string, error) {
	t.Helper()
	c := &saml.SOAPClient{HTTP: f.h.client(cert)}
	ans, err := c.Send(context.Background(), f.h.url+"/kecis/soap", msg)
	if err != nil {
		return nil, "", err
	}
	id := parseID(t, msg)
	pending := saml.NewMemoryPending(nil)
	issuer := issuerOf(t, ans)
	pending.Add(context.Background(), id, issuer, time.Now().Add(time.Minute))
	rc := &saml.Receiver{Keys: saml.StaticKeys{issuerID: {f.p.signer.Cert}, "https://hub.test/kecis": {f.h.hubCert}},
		Replay: saml.NewMemoryReplayCache(nil), Pending: pending}
	got, err := rc.ReceiveResponse(context.Background(), ans)
	if err != nil {
		t.Fatalf("the answer does not verify: %v (%v)", err, saml.AsError(err).Cause())
	}
	return &got.Response.Status, got.Response.Issuer, nil
}

func parseID(t *testing.T, msg []byte) string {
	root, err := saml.ParseDocument(msg, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return root.SelectAttrValue("ID", "")
}

func issuerOf(t *testing.T, msg []byte) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(msg); err != nil {
		t.Fatal(err)
	}
	return doc.Root().SelectElement("saml:Issuer").Text()
}

func TestRouterRelaysAndRefuses(t *testing.T) {
	f := setupFederation(t, 2*time.Second)
	// A merchant's signed request reaches the issuer, which verifies the
	// merchant's own signature and decrypts the card; the answer comes back
	// signed by the issuer, unchanged.
	st, from, err := f.send(t, &f.mTLS, f.approve(t, "k1", "15000", f.dest))
	if err != nil || !st.OK() || from != issuerID {
		t.Fatalf("relay: %v %+v from %s", err, st, from)
	}
	if len(f.p.seen) != 1 || f.p.seen[0] != "411111******1111" {
		t.Fatalf("provider saw %v", f.p.seen)
	}
	// A direct call that skips the hub is refused by the provider.
	direct := &saml.SOAPClient{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{f.mTLS}}}}}
	var fault *saml.Fault
	if _, err := direct.Send(context.Background(), f.dest, f.approve(t, "k-direct", "100", f.dest)); !errors.As(err, &fault) {
		t.Fatalf("direct call: %v, want a fault", err)
	}
	// Wrong TLS client certificate: an unsigned, generic fault.
	other := writeOther(t)
	if _, _, err := f.send(t, &other, f.approve(t, "k2", "100", f.dest)); !errors.As(err, &fault) || fault.String != "message could not be verified" {
		t.Fatalf("wrong client certificate: %v", err)
	}
	// Destination that is not a participant: a hub-signed refusal.
	st, from, _ = f.send(t, &f.mTLS, f.approve(t, "k3", "100", "https://nowhere.test/kecis/soap"))
	if st.SubCode != saml.CodeWrongDestination || from != "https://hub.test/kecis" {
		t.Fatalf("unknown destination: %+v from %s", st, from)
	}
	// A replay (the same message again) is refused by the hub.
	msg := f.approve(t, "k4", "100", f.dest)
	if st, _, _ = f.send(t, &f.mTLS, msg); !st.OK() {
		t.Fatalf("first delivery: %+v", st)
	}
	if st, _, _ = f.send(t, &f.mTLS, msg); st.SubCode != saml.CodeReplay {
		t.Fatalf("replay: %+v", st)
	}
	// A changed retry (same key, other amount) is refused.
	if st, _, _ = f.send(t, &f.mTLS, f.approve(t, "k4", "999", f.dest)); st.SubCode != saml.CodeIdempotencyConflict {
		t.Fatalf("changed retry: %+v", st)
	}
	// An honest retry (same key, new message) reaches the provider, which
	// answers with the original outcome.
	if st, _, _ = f.send(t, &f.mTLS, f.approve(t, "k4", "100", f.dest)); !st.OK() || st.Message != f.p.outcomes["k4"] {
		t.Fatalf("retry: %+v", st)
	}
	// An issuer that is no participant, over a participant's TLS
	// connection: an unsigned, generic fault (its keys are unknown).
	stranger := loadSigner(t, "attacker-rsa")
	sb := &saml.Builder{Issuer: "https://stranger.test/kecis"}
	sreq, _ := sb.NewRequest(f.dest, saml.ServiceURI("card", "inquire"))
	sreq.Payload, _ = ecml.FromForm(map[string][]string{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"x"}})
	sel, _ := sreq.Element()
	smsg, _ := stranger.SignToBytes(sel)
	if _, _, err := f.send(t, &f.mTLS, smsg); !errors.As(err, &fault) || fault.String != "message could not be verified" {
		t.Fatalf("unknown issuer: %v", err)
	}
	// The recipient's own fault before verification (say, a key rollover it
	// has not seen) reaches the sender as a hub-signed ProviderUnavailable.
	f.p.mu.Lock()
	saved := f.p.hubTLS
	f.p.hubTLS = "not-the-hub"
	f.p.mu.Unlock()
	st, from, _ = f.send(t, &f.mTLS, f.approve(t, "k-fault", "100", f.dest))
	if st.SubCode != saml.CodeProviderUnavailable || from != "https://hub.test/kecis" {
		t.Fatalf("provider fault: %+v from %s", st, from)
	}
	f.p.mu.Lock()
	f.p.hubTLS = saved
	f.p.mu.Unlock()
	// A suspended recipient is no destination.
	if code := f.h.operate("suspend", issuerID); code != 200 {
		t.Fatalf("suspend: %d", code)
	}
	if st, _, _ = f.send(t, &f.mTLS, f.approve(t, "k5", "100", f.dest)); st.SubCode != saml.CodeWrongDestination {
		t.Fatalf("suspended recipient: %+v", st)
	}
	// The audit log holds the signed messages exactly as relayed.
	recs, err := f.h.st.ListAudit(context.Background(), store.AuditFilter{TxID: merchantID + "|k1"})
	if err != nil || len(recs) != 2 || string(recs[0].Message) == "" {
		t.Fatalf("audit: %v %d", err, len(recs))
	}
	for _, r := range recs {
		if ecml.ContainsPAN(string(r.Message)) {
			t.Fatal("a card number in clear in the audit log")
		}
	}
}

func TestRouterTimeoutPendingThenRetry(t *testing.T) {
	f := setupFederation(t, 300*time.Millisecond)
	f.p.block = make(chan struct{})
	first := make(chan *saml.Status, 1)
	go func() {
		st, _, _ := f.send(t, &f.mTLS, f.approve(t, "slow", "15000", f.dest))
		first <- st
	}()
	// While the first is in flight, a retry with the same key is refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.p.mu.Lock()
		n := f.p.received
		f.p.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _, _ := f.send(t, &f.mTLS, f.approve(t, "slow", "15000", f.dest)); st.SubCode != saml.CodeInFlight {
		t.Fatalf("in-flight retry: %+v", st)
	}
	st := <-first
	if st.SubCode != saml.CodePending {
		t.Fatalf("timeout: %+v, want Pending", st)
	}
	// The provider finishes; a retry with the same key gets the true outcome.
	close(f.p.block)
	f.p.mu.Lock()
	f.p.block = nil
	f.p.mu.Unlock()
	var got *saml.Status
	for i := 0; i < 50; i++ {
		got, _, _ = f.send(t, &f.mTLS, f.approve(t, "slow", "15000", f.dest))
		if got.OK() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !got.OK() || got.Message != f.p.outcomes["slow"] {
		t.Fatalf("retry after Pending: %+v", got)
	}
}

var _ = os.Getenv
