package router_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// The router's own tests: Relay and the SOAP endpoint against a store on
// SQLite, a Directory and fake providers (httptest TLS servers pinned by
// their published certificate) — no hub server. The end-to-end paths
// through a running hub are federation/server's router_test.go.

const (
	hubID      = "https://hub.test/kecis"
	issuerID   = "https://issuer.test/kecis"
	otherID    = "https://other.test/kecis"
	merchantID = "https://merchant.test/kecis"
	// deadURL is an endpoint nothing listens on: the dial fails, so the
	// request is never delivered.
	deadURL = "https://127.0.0.1:1/kecis/soap"
)

var approveService = saml.ServiceURI("card", "approve")

func testdataSigner(t testing.TB, name string) *saml.Signer {
	t.Helper()
	dir := filepath.Join("..", "..", "saml", "testdata", "keys")
	s, err := saml.LoadSigner(filepath.Join(dir, name+".key.pem"), filepath.Join(dir, name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// devKey generates a development key and certificate of kind.
func devKey(t testing.TB, kind devpki.Kind, cn string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	keyPEM, certPEM, err := devpki.Generate(kind, cn, devpki.LoopbackHosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return kp, c
}

// providerMode is how a fake provider answers.
type providerMode int

const (
	answerOK     providerMode = iota // a Success signed with the provider's published key
	answerForged                     // a Success signed with a key the provider never published
	answerOther                      // a Success signed by the provider, InResponseTo another request
	answerFault                      // a SOAP fault (the provider refused before verifying)
	answerBlock                      // no answer until released or the hub gives up
	answerHangUp                     // reads the request, then closes the connection
	answerSameID                     // a Success whose message ID is the same every time
)

// provider is a fake recipient: a TLS server with the certificate the
// participant publishes, answering as its mode says.
type provider struct {
	t       testing.TB
	srv     *httptest.Server
	url     string
	signer  *saml.Signer // its published signing key
	forger  *saml.Signer // a key it never published
	mu      sync.Mutex
	mode    providerMode
	got     []string // IDs of the requests it received
	bodies  [][]byte // the HTTP bodies it received
	answers [][]byte // the HTTP bodies it answered
	release chan struct{}
	// byKey, when set, makes the provider idempotent as a real one is
	// (KECIS §7.1): the approval code it first answered under an
	// idempotency key is what it answers every retry with that key.
	byKey map[string]string
}

func newProvider(t testing.TB, tlsCert tls.Certificate, signer *saml.Signer, mode providerMode) *provider {
	p := &provider{t: t, signer: signer, forger: testdataSigner(t, "attacker-rsa"), mode: mode, release: make(chan struct{})}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{tlsCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	p.srv.StartTLS()
	p.url = p.srv.URL + "/kecis/soap"
	t.Cleanup(func() {
		p.unblock()
		p.srv.Close()
	})
	return p
}

func (p *provider) unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

func (p *provider) setMode(m providerMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

func (p *provider) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	msg, err := saml.UnwrapSOAP(body, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	root, err := saml.ParseDocument(msg, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	id := root.SelectAttrValue("ID", "")
	p.mu.Lock()
	p.got = append(p.got, id)
	p.bodies = append(p.bodies, body)
	mode, release := p.mode, p.release
	p.mu.Unlock()
	signer, inResp := p.signer, id
	switch mode {
	case answerFault:
		saml.WriteFault(w, &saml.Fault{Code: "soap:Client", String: "message could not be verified"})
		return
	case answerBlock:
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	case answerHangUp:
		hj, ok := w.(http.Hijacker)
		if !ok {
			p.t.Error("cannot hijack the connection")
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case answerForged:
		signer = p.forger
	case answerOther:
		inResp = "_another-request"
	}
	code := "APV-" + id[len(id)-4:]
	if key := root.FindElement("//IdempotencyKey"); key != nil {
		p.mu.Lock()
		if p.byKey != nil {
			if first, ok := p.byKey[key.Text()]; ok {
				code = first
			} else {
				p.byKey[key.Text()] = code
			}
		}
		p.mu.Unlock()
	}
	b := &saml.Builder{Issuer: issuerID}
	if mode == answerSameID {
		b.IDs = saml.IDSource{Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 16))}
	}
	resp, err := b.NewResponse(inResp, "", saml.Status{Code: saml.StatusSuccess, Message: code})
	if err != nil {
		p.t.Error(err)
		return
	}
	el, err := resp.Element()
	if err != nil {
		p.t.Error(err)
		return
	}
	out, err := signer.SignToBytes(el)
	if err != nil {
		p.t.Error(err)
		return
	}
	ans := saml.WrapSOAP(out)
	p.mu.Lock()
	p.answers = append(p.answers, ans)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(ans)
}

// fixture is a router over its own store and directory.
type fixture struct {
	st       store.Store
	dir      *router.Directory
	rt       *router.Router
	reg      *prometheus.Registry
	hub      *saml.Signer
	issuer   *saml.Signer // the recipient's signing and encryption key
	merchant *saml.Signer
	// merchantTLS is the TLS client certificate the merchant publishes.
	merchantTLS *x509.Certificate
	providerTLS tls.Certificate // the recipient's published TLS server certificate
	hubTLS      tls.Certificate // the hub's TLS client certificate
	timeout     time.Duration
	now         func() time.Time // the router's clock (nil: time.Now)
	policy      *policy.Policy   // the hub's payment policy (nil: none)
}

func newFixture(t testing.TB, timeout time.Duration) *fixture {
	t.Helper()
	return newFixtureOn(t, openStore(t), timeout)
}

// newFixtureOn is newFixture on a store of the caller's.
func newFixtureOn(t testing.TB, st store.Store, timeout time.Duration) *fixture {
	return newFixtureClock(t, st, timeout, nil)
}

// newFixtureClock is newFixtureOn with the router's clock now.
func newFixtureClock(t testing.TB, st store.Store, timeout time.Duration, now func() time.Time) *fixture {
	t.Helper()
	f := &fixture{st: st, reg: prometheus.NewRegistry(),
		issuer: testdataSigner(t, "issuer-rsa"), merchant: testdataSigner(t, "merchant-rsa"),
		merchantTLS: metadatatest.Pool()[1], timeout: timeout, now: now}
	hubKP, hubCert := devKey(t, devpki.Signing, "hub signing")
	var err error
	if f.hub, err = saml.NewSigner(hubKP.PrivateKey.(crypto.Signer), hubCert); err != nil {
		t.Fatal(err)
	}
	f.hubTLS, _ = devKey(t, devpki.TLSClient, "hub tls")
	f.providerTLS, _ = devKey(t, devpki.TLSServer, "provider tls")
	f.restart(st)
	put(t, f.st, &metadata.EntityDescriptor{EntityID: merchantID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.merchant.Cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: f.merchantTLS}}}, store.StatusActive)
	return f
}

// restart gives the fixture a new directory and router on st, as a hub
// process started again on its database: nothing of the old router's
// memory survives.
func (f *fixture) restart(st store.Store) {
	f.st, f.reg = st, prometheus.NewRegistry()
	f.dir = &router.Directory{Store: f.st, Now: f.now}
	m := router.NewMetrics(f.reg, func() float64 { return 0 })
	f.rt = router.New(router.Config{HubEntityID: hubID, Signer: f.hub, ClientCert: f.hubTLS, Timeout: f.timeout,
		IdemKey: []byte("idempotency key of the tests"), ReplicaID: "r1", Policy: f.policy}, f.st, f.dir, m, nil, f.now)
}

// addRecipient registers an active card issuer offering card:approve to
// merchants at the SOAP endpoints urls, in priority order, and returns its
// directory entry.
func (f *fixture) addRecipient(t testing.TB, id string, urls ...string) *router.Entry {
	t.Helper()
	ed := &metadata.EntityDescriptor{EntityID: id, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.issuer.Cert},
			{Use: metadata.UseEncryption, Certificate: f.issuer.Cert}},
		TLSKeys:  []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: f.providerTLS.Leaf}},
		Services: []metadata.OfferedService{{Service: approveService, Callers: []metadata.Role{metadata.RoleMerchant}}}}
	for i, u := range urls {
		ed.Endpoints = append(ed.Endpoints, metadata.Endpoint{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: u, Priority: i})
	}
	put(t, f.st, ed, store.StatusActive)
	f.dir.Invalidate()
	e, err := f.dir.ByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// request builds the merchant's card approval for dest: the card encrypted
// for the issuer, the message signed. It returns the request as the router
// reads it and the signed message.
func (f *fixture) request(t testing.TB, key, amount, dest string) (*saml.ServiceRequest, []byte) {
	t.Helper()
	return f.requestFrom(t, merchantID, f.merchant, key, amount, dest)
}

// requestFrom builds the card approval as request does, issued and signed
// by issuer with signer.
func (f *fixture) requestFrom(t testing.TB, issuer string, signer *saml.Signer, key, amount, dest string, results ...*etree.Element) (*saml.ServiceRequest, []byte) {
	t.Helper()
	b := &saml.Builder{Issuer: issuer}
	req, err := b.NewRequest(dest, approveService)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = key
	req.Routing = &saml.Routing{CardBIN: "411111", CardLast4: "1111"}
	if req.Payload, err = ecml.FromForm(map[string][]string{
		"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-" + key},
		"Ecom_Payment_Card_Number": {"4111111111111111"}, "Ecom_Payment_Card_ExpDate_Month": {"12"}, "Ecom_Payment_Card_ExpDate_Year": {"2030"},
		"Ecom_Transaction_Amount": {amount}, "Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Transaction_Type": {"credit"},
	}); err != nil {
		t.Fatal(err)
	}
	req.AuthResults = results
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: issuerID, Cert: f.issuer.Cert}); err != nil {
		t.Fatal(err)
	}
	msg, err := signer.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return req, msg
}

// relay hands a verified request to Relay, as the SOAP endpoint does.
func (f *fixture) relay(req *saml.ServiceRequest, dest *router.Entry, msg []byte) *router.Result {
	return f.rt.Relay(context.Background(), req, dest, saml.WrapSOAP(msg))
}

// serve posts msg to the router's SOAP endpoint over a TLS connection
// that presented clientCert.
func (f *fixture) serve(msg []byte, clientCert *x509.Certificate) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/kecis/soap", bytes.NewReader(saml.WrapSOAP(msg)))
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{clientCert}}
	w := httptest.NewRecorder()
	f.rt.ServeHTTP(w, r)
	return w
}

// hubStatus verifies a status the hub signed in answer to requestID and
// returns it.
func (f *fixture) hubStatus(t *testing.T, body []byte, requestID string) saml.Status {
	t.Helper()
	msg, err := saml.UnwrapSOAP(body, saml.Limits{})
	if err != nil {
		t.Fatalf("not a SOAP answer: %v\n%s", err, body)
	}
	pending := saml.NewMemoryPending(nil)
	_ = pending.Add(context.Background(), requestID, hubID, time.Now().Add(time.Minute))
	rc := &saml.Receiver{Keys: saml.StaticKeys{hubID: {f.hub.Cert}}, Replay: saml.NewMemoryReplayCache(nil), Pending: pending}
	got, err := rc.ReceiveResponse(context.Background(), msg)
	if err != nil {
		t.Fatalf("the hub's status does not verify: %v (%v)", err, saml.AsError(err).Cause())
	}
	return got.Response.Status
}

// counter reads a counter of the router's metrics.
func (f *fixture) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func idem(result saml.IdemResult) map[string]string {
	return map[string]string{"result": string(result)}
}

func wantOutcome(t *testing.T, what string, res *router.Result, out router.Outcome, sub string) {
	t.Helper()
	if res.Outcome != out || res.Status.SubCode != sub {
		t.Fatalf("%s: outcome %d, status %+v; want outcome %d, sub-status %q", what, res.Outcome, res.Status, out, sub)
	}
}

// Relay's outcomes: the recipient's verified answer is passed on byte for
// byte; an answer that does not verify — signed with a key the recipient
// never published, answering another request, or a SOAP fault — is
// ProviderUnavailable, as is a recipient without a SOAP endpoint.
func TestRelayOutcomes(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	dest := f.addRecipient(t, issuerID, p.url)

	req, msg := f.request(t, "k-ok", "15000", p.url)
	res := f.relay(req, dest, msg)
	wantOutcome(t, "answered", res, router.OutcomeAnswered, "")
	if !res.Status.OK() || res.Response == nil || res.Response.Issuer != issuerID || res.Response.InResponseTo != req.ID {
		t.Fatalf("answered: %+v %+v", res.Status, res.Response)
	}
	if len(p.bodies) != 1 || !bytes.Equal(p.bodies[0], saml.WrapSOAP(msg)) {
		t.Fatal("the request was not forwarded byte for byte")
	}
	if !bytes.Equal(res.Body, p.answers[0]) {
		t.Fatal("the answer is not passed on byte for byte")
	}
	if inner, _ := saml.UnwrapSOAP(res.Body, saml.Limits{}); !bytes.Equal(res.Msg, inner) {
		t.Fatal("Msg is not the message inside Body")
	}

	for _, tc := range []struct {
		name string
		mode providerMode
	}{
		{"an answer signed with an unpublished key", answerForged},
		{"an answer to another request", answerOther},
		{"a SOAP fault", answerFault},
	} {
		p.setMode(tc.mode)
		req, msg := f.request(t, "k-"+tc.name, "15000", p.url)
		res := f.relay(req, dest, msg)
		wantOutcome(t, tc.name, res, router.OutcomeUnavailable, saml.CodeProviderUnavailable)
		if res.Body != nil || res.Response != nil {
			t.Fatalf("%s: an unverified answer is passed on", tc.name)
		}
	}
	if n := len(p.received()); n != 4 {
		t.Fatalf("the provider received %d requests, want 4", n)
	}

	// No SOAP endpoint for the service: unavailable, nothing is sent.
	post := &metadata.EntityDescriptor{EntityID: otherID, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: f.issuer.Cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingHTTPPOST, Location: "https://other.test/kecis/post"}},
		Services:  []metadata.OfferedService{{Service: approveService, Callers: []metadata.Role{metadata.RoleMerchant}}}}
	put(t, f.st, post, store.StatusActive)
	f.dir.Invalidate()
	other, err := f.dir.ByID(context.Background(), otherID)
	if err != nil {
		t.Fatal(err)
	}
	req, msg = f.request(t, "k-no-soap", "15000", "https://other.test/kecis/post")
	wantOutcome(t, "no SOAP endpoint", f.relay(req, other, msg), router.OutcomeUnavailable, saml.CodeProviderUnavailable)

	if got := f.counter(t, "kecis_router_requests_total", map[string]string{"service": approveService, "status": "Success"}); got != 1 {
		t.Fatalf("requests_total{Success} = %v, want 1", got)
	}
	if got := f.counter(t, "kecis_router_idempotency_total", idem(saml.IdemAcquired)); got != 5 {
		t.Fatalf("idempotency_total{acquired} = %v, want 5", got)
	}
	// The metadata in force is kept for evidence: the recipient's and the
	// sender's, signed by the hub.
	for _, id := range []string{issuerID, merchantID} {
		s, err := f.st.SnapshotAt(context.Background(), id, time.Now())
		if err != nil || len(s.Signed) == 0 {
			t.Fatalf("snapshot of %s: %v", id, err)
		}
	}
}

// Pending: the recipient does not answer within the relay timeout; while
// the first attempt runs, a retry with the same key is refused (InFlight);
// afterwards the key is free again and the honest retry is forwarded and
// answered; a retry with the same key but another amount is refused
// (IdempotencyConflict).
func TestRelayPendingOnTimeout(t *testing.T) {
	f := newFixture(t, time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerBlock)
	dest := f.addRecipient(t, issuerID, p.url)

	first := make(chan *router.Result, 1)
	start := time.Now()
	go func() {
		req, msg := f.request(t, "slow", "15000", p.url)
		first <- f.relay(req, dest, msg)
	}()
	for len(p.received()) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the provider never received the request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	req, msg := f.request(t, "slow", "15000", p.url)
	wantOutcome(t, "a retry while the first runs", f.relay(req, dest, msg), router.OutcomeRefused, saml.CodeInFlight)

	res := <-first
	wantOutcome(t, "no answer in time", res, router.OutcomePending, saml.CodePending)
	if took := time.Since(start); took < time.Second || took > 5*time.Second {
		t.Fatalf("Pending after %v; the relay timeout is 1s", took)
	}
	if n := len(p.received()); n != 1 {
		t.Fatalf("the provider received %d requests, want 1", n)
	}

	// The key stays in flight, its lease cleared: retryable at once.
	ctx := context.Background()
	if e, err := f.st.GetIdem(ctx, merchantID, "slow"); err != nil || e.State != store.IdemInFlight || e.LeaseOwner != "" && e.LeaseExpires.After(time.Now()) {
		t.Fatalf("the key after Pending: %+v %v", e, err)
	}

	p.setMode(answerOK)
	req, msg = f.request(t, "slow", "15000", p.url)
	wantOutcome(t, "the retry after Pending", f.relay(req, dest, msg), router.OutcomeAnswered, "")
	if e, err := f.st.GetIdem(ctx, merchantID, "slow"); err != nil || e.State != store.IdemDone || e.RequestID != req.ID {
		t.Fatalf("the key after an answer: %+v %v", e, err)
	}
	req, msg = f.request(t, "slow", "99000", p.url)
	wantOutcome(t, "a changed retry", f.relay(req, dest, msg), router.OutcomeRefused, saml.CodeIdempotencyConflict)

	for result, want := range map[saml.IdemResult]float64{saml.IdemAcquired: 1, saml.IdemInFlight: 1, saml.IdemReacquired: 1, saml.IdemMismatch: 1} {
		if got := f.counter(t, "kecis_router_idempotency_total", idem(result)); got != want {
			t.Errorf("idempotency_total{%s} = %v, want %v", result, got, want)
		}
	}
}

// Failover moves between one participant's endpoints, in priority order,
// only when the request was not delivered (the dial or the TLS handshake,
// a pin mismatch included, failed); once delivered, a dropped connection
// or a timeout is Pending and no other endpoint is tried; another
// participant offering the same service is never tried (the ciphertext is
// for the recipient's key).
func TestRelayFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		// first is the mode of the first endpoint's server; dead: no
		// server; stranger: a server whose certificate is not published.
		first           string
		want            router.Outcome
		wantSub         string
		firstGot, next  int // requests the first and the second endpoint receive
		otherIsOffering bool
	}{
		{name: "dial fails", first: "dead", want: router.OutcomeAnswered, next: 1},
		{name: "TLS pin mismatch", first: "stranger", want: router.OutcomeAnswered, next: 1},
		{name: "connection dropped after delivery", first: "hang-up", want: router.OutcomePending, wantSub: saml.CodePending, firstGot: 1},
		{name: "no answer in time", first: "block", want: router.OutcomePending, wantSub: saml.CodePending, firstGot: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 500*time.Millisecond)
			second := newProvider(t, f.providerTLS, f.issuer, answerOK)
			var first *provider
			firstURL := deadURL
			switch tc.first {
			case "stranger":
				strangerTLS, _ := devKey(t, devpki.TLSServer, "not published")
				first = newProvider(t, strangerTLS, f.issuer, answerOK)
			case "hang-up":
				first = newProvider(t, f.providerTLS, f.issuer, answerHangUp)
			case "block":
				first = newProvider(t, f.providerTLS, f.issuer, answerBlock)
			}
			if first != nil {
				firstURL = first.url
			}
			dest := f.addRecipient(t, issuerID, firstURL, second.url)
			req, msg := f.request(t, "k", "15000", firstURL)
			wantOutcome(t, tc.name, f.relay(req, dest, msg), tc.want, tc.wantSub)
			if first != nil && len(first.received()) != tc.firstGot {
				t.Errorf("the first endpoint received %d requests, want %d", len(first.received()), tc.firstGot)
			}
			if n := len(second.received()); n != tc.next {
				t.Errorf("the second endpoint received %d requests, want %d", n, tc.next)
			}
		})
	}

	t.Run("another participant is never tried", func(t *testing.T) {
		f := newFixture(t, 500*time.Millisecond)
		other := newProvider(t, f.providerTLS, f.issuer, answerOK)
		f.addRecipient(t, otherID, other.url)
		dest := f.addRecipient(t, issuerID, deadURL, "https://127.0.0.1:2/kecis/soap")
		req, msg := f.request(t, "k", "15000", deadURL)
		wantOutcome(t, "every endpoint down", f.relay(req, dest, msg), router.OutcomeUnavailable, saml.CodeProviderUnavailable)
		if n := len(other.received()); n != 0 {
			t.Fatalf("another participant offering the service received %d requests", n)
		}
	})
}

// undelivered is the rule failover rests on: only a failure before the
// request was written lets the router try another endpoint.
func TestUndelivered(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", &url.Error{Op: "Post", URL: deadURL, Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, true},
		{"pin mismatch", fmt.Errorf("tls: %w", saml.ErrPinMismatch), true},
		{"TLS record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true},
		{"certificate verification", &tls.CertificateVerificationError{Err: errors.New("unknown authority")}, true},
		{"read after writing", &net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}, false},
		{"EOF", io.EOF, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		if got := router.Undelivered(tc.err); got != tc.want {
			t.Errorf("%s: undelivered = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The idempotency fingerprint covers the public fields of a request — the
// same fields give the same fingerprint whatever the message ID, time and
// ciphertext; a change of any of them, the recipient included, gives
// another; values cannot slide from one field into the next; and it is
// keyed.
func TestFingerprint(t *testing.T) {
	f := newFixture(t, time.Second)
	cipher := func(v string) *etree.Element {
		el := etree.NewElement("xenc:EncryptedData")
		el.CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#")
		el.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(v)
		return el
	}
	base := func() *saml.ServiceRequest {
		req, _ := f.request(t, "fp", "15000", "https://issuer.test/kecis/soap")
		req.Payload.Ecom.Merchant = merchantID
		req.Payload.Ecom.Transaction.ID = &ecml.TransactionID{Reference: "R-1"}
		req.Payload.Ecom.Payment = &ecml.Payment{EncryptedCard: cipher("Y2lwaGVydGV4dCBvbmU=")}
		return req
	}
	fp := func(req *saml.ServiceRequest, dest string) string {
		return fmt.Sprintf("%x", f.rt.Fingerprint(req, dest))
	}
	want := fp(base(), issuerID)

	same := base()
	same.ID, same.IssueInstant, same.Destination = "_another-id", same.IssueInstant.Add(time.Hour), "https://issuer.test/kecis/dr"
	same.Payload.Ecom.Payment.EncryptedCard = cipher("YW5vdGhlciBjaXBoZXJ0ZXh0")
	if fp(same, issuerID) != want {
		t.Fatal("the same public fields with another ID, time, endpoint or ciphertext changed the fingerprint")
	}
	clear := base()
	clear.Payload.Ecom.Payment = &ecml.Payment{Card: &ecml.Card{Number: ecml.PAN("5555555555554444")}}
	if fp(clear, issuerID) != want {
		t.Fatal("the card is in the fingerprint")
	}

	for _, tc := range []struct {
		name   string
		change func(*saml.ServiceRequest)
		dest   string
	}{
		{"amount", func(r *saml.ServiceRequest) { r.Payload.Ecom.Transaction.Amount = "15001" }, issuerID},
		{"recipient", func(*saml.ServiceRequest) {}, otherID},
		{"currency", func(r *saml.ServiceRequest) { r.Payload.Ecom.Transaction.Currency = "USD" }, issuerID},
		{"transaction type", func(r *saml.ServiceRequest) { r.Payload.Ecom.Transaction.Type = "debit" }, issuerID},
		{"transaction ID", func(r *saml.ServiceRequest) { r.Payload.Ecom.Transaction.ID.Reference = "R-2" }, issuerID},
		{"order", func(r *saml.ServiceRequest) { r.Payload.Ecom.ConsumerOrderID = "ORD-other" }, issuerID},
		{"merchant", func(r *saml.ServiceRequest) { r.Payload.Ecom.Merchant = "https://m2.test/kecis" }, issuerID},
		{"service", func(r *saml.ServiceRequest) { r.Service = saml.ServiceURI("card", "cancel") }, issuerID},
		{"on behalf of", func(r *saml.ServiceRequest) { r.OnBehalfOf = "https://m2.test/kecis" }, issuerID},
		{"card BIN", func(r *saml.ServiceRequest) { r.Routing.CardBIN = "555555" }, issuerID},
		{"last four", func(r *saml.ServiceRequest) { r.Routing.CardLast4 = "4444" }, issuerID},
		{"bank code", func(r *saml.ServiceRequest) { r.Routing.BankCode = "004" }, issuerID},
		// Length-prefixed fields: "ORD-fp" + "" is not "ORD-f" + "p".
		{"a value sliding into the next field", func(r *saml.ServiceRequest) {
			r.Payload.Ecom.ConsumerOrderID, r.Payload.Ecom.Merchant = "ORD-f", "p"+merchantID
		}, issuerID},
	} {
		r := base()
		tc.change(r)
		if fp(r, tc.dest) == want {
			t.Errorf("a changed %s left the fingerprint unchanged", tc.name)
		}
	}

	other := router.New(router.Config{IdemKey: []byte("another key")}, f.st, f.dir, nil, nil, nil)
	if fmt.Sprintf("%x", other.Fingerprint(base(), issuerID)) == want {
		t.Fatal("the fingerprint is not keyed")
	}
}

// The SOAP endpoint audits every exchange: the request as received
// (message.in, only once verified), the recipient's answer as passed on
// (message.out), or the status the hub signed instead (message.hub) — each
// filed under the transaction (issuer|key) and the request ID, with public
// fields only.
func TestSOAPEndpointAudits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 500*time.Millisecond)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)

	// Answered: in and out, byte for byte.
	req, msg := f.request(t, "a-1", "15000", p.url)
	w := f.serve(msg, f.merchantTLS)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), p.answers[0]) {
		t.Fatalf("answered: HTTP %d, the provider's answer passed on: %v", w.Code, bytes.Equal(w.Body.Bytes(), p.answers[0]))
	}
	recs, err := f.st.ListAudit(ctx, store.AuditFilter{TxID: merchantID + "|a-1"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("audit of an answered exchange: %d records, %v", len(recs), err)
	}
	in, out := recs[0], recs[1]
	if in.Kind != "message.in" || !bytes.Equal(in.Message, msg) || in.Actor != merchantID || in.EntityID != issuerID ||
		in.RequestID != req.ID || in.IdempotencyKey != "a-1" {
		t.Fatalf("message.in: %+v", in)
	}
	answer, _ := saml.UnwrapSOAP(p.answers[0], saml.Limits{})
	if out.Kind != "message.out" || !bytes.Equal(out.Message, answer) || out.RequestID != req.ID {
		t.Fatalf("message.out: %+v", out)
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(out.Detail), &d); err != nil || d["service"] != approveService ||
		d["status"] != saml.StatusSuccess || d["issuer"] != "" || d["destination"] != "" || out.Actor != merchantID || out.EntityID != issuerID {
		t.Fatalf("message.out detail: %s %v", out.Detail, err)
	}

	// Pending: in, then the hub's signed status.
	p.setMode(answerBlock)
	req, msg = f.request(t, "a-2", "15000", p.url)
	w = f.serve(msg, f.merchantTLS)
	if st := f.hubStatus(t, w.Body.Bytes(), req.ID); st.SubCode != saml.CodePending {
		t.Fatalf("no answer in time: %+v", st)
	}
	recs, err = f.st.ListAudit(ctx, store.AuditFilter{RequestID: req.ID})
	if err != nil || len(recs) != 2 || recs[0].Kind != "message.in" || recs[1].Kind != "message.hub" ||
		recs[1].Actor != hubID || !bytes.Equal(recs[1].Message, mustUnwrap(t, w.Body.Bytes())) {
		t.Fatalf("audit of a Pending exchange: %d records %v", len(recs), err)
	}

	// Refused before relaying (Destination is no participant's): no
	// message.in, the hub's refusal only.
	req, msg = f.request(t, "a-3", "15000", "https://nowhere.test/kecis/soap")
	w = f.serve(msg, f.merchantTLS)
	if st := f.hubStatus(t, w.Body.Bytes(), req.ID); st.SubCode != saml.CodeWrongDestination {
		t.Fatalf("unknown destination: %+v", st)
	}
	recs, err = f.st.ListAudit(ctx, store.AuditFilter{RequestID: req.ID})
	if err != nil || len(recs) != 1 || recs[0].Kind != "message.hub" {
		t.Fatalf("audit of a refusal: %d records %v", len(recs), err)
	}

	// A TLS client certificate nobody published: an unsigned fault, nothing
	// audited, nothing relayed.
	before := len(p.received())
	_, msg = f.request(t, "a-4", "15000", p.url)
	w = f.serve(msg, metadatatest.Pool()[3])
	if _, err := saml.UnwrapSOAP(w.Body.Bytes(), saml.Limits{}); err == nil || len(p.received()) != before {
		t.Fatalf("an unknown TLS client: %v, relayed %d", err, len(p.received())-before)
	}

	all, err := f.st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if ecml.ContainsPAN(string(r.Message)) || ecml.ContainsPAN(r.Detail) {
			t.Fatalf("a card number in clear in audit record %d (%s)", r.ID, r.Kind)
		}
	}
	for status, want := range map[string]float64{"Success": 1, "Pending": 1} {
		if got := f.counter(t, "kecis_router_requests_total", map[string]string{"service": approveService, "status": status}); got != want {
			t.Errorf("requests_total{%s} = %v, want %v", status, got, want)
		}
	}
	if got := f.counter(t, "kecis_router_requests_total", map[string]string{"service": "unknown", "status": "WrongDestination"}); got != 1 {
		t.Errorf("requests_total{unknown, WrongDestination} = %v, want 1", got)
	}
}

func mustUnwrap(t *testing.T, body []byte) []byte {
	t.Helper()
	msg, err := saml.UnwrapSOAP(body, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}
