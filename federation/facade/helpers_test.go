package facade_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/ratelimit"
	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The federation every test runs against: one hub, one merchant that
// authenticates with an API key, one card issuer behind a fake transport.
const (
	hubID     = "https://hub.test/kecis"
	shopID    = "https://shop.test/kecis"
	issuerID  = "https://issuer.test/kecis"
	issuerURL = "https://issuer.test/kecis/soap"
	otherID   = "https://other.test/kecis"
	apiKey    = "sk_test_facade_0123456789"
	// issuerAPIKey is bound to the issuer: an active participant that is
	// no merchant, whose key the facade must refuse.
	issuerAPIKey = "sk_test_issuer_0123456789"
)

// testNow is every clock of the federation: within the test keys' validity.
var testNow = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

func now() time.Time { return testNow }

// options of a test federation.
type options struct {
	// clear is the facade's development mode (Config.AllowClearCard).
	clear bool
	// failRules makes the store fail to list routing rules: the one
	// deliberate internal error.
	failRules bool
	// rate, when set, limits each merchant credential (Config.RateLimit).
	rate *ratelimit.Limiter
	// probe opens the store through a probe (env.probe) that counts its
	// commits and can cut it off.
	probe bool
	// db, when set, is the state of the hub's database as the facade and
	// the router see it: refusing writes, or down.
	db *dbState
	// policy gives the router the default payment policy (kr-2006, KECIS
	// §12.9).
	policy bool
}

// dbState is what a dbFault store does: refuse every commit (readOnly),
// or every read and write (down), as a database that refuses writes or
// is unreachable, with the error a backend marks unavailable.
type dbState struct{ readOnly, down atomic.Bool }

type dbFault struct {
	store.Store
	s *dbState
}

func (f dbFault) Commit(ctx context.Context, w *store.Writes) (*store.Committed, error) {
	if f.s.readOnly.Load() || f.s.down.Load() {
		return nil, &sqldb.UnavailableError{Err: errors.New("cannot execute INSERT in a read-only transaction")}
	}
	return f.Store.Commit(ctx, w)
}

func (f dbFault) ListRoutingRules(ctx context.Context) ([]*store.RoutingRule, error) {
	if f.s.down.Load() {
		return nil, &sqldb.UnavailableError{Err: errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")}
	}
	return f.Store.ListRoutingRules(ctx)
}

// env is a facade mounted on a bare gin engine (no recovery: a panic
// reaches the test), with its store, logs and the issuer behind it.
type env struct {
	engine *gin.Engine
	logs   *testutil.SyncBuffer
	issuer *issuer
	st     store.Store
	// probe watches the store's database when options.probe asked for it.
	probe *probe.Probe
	// shopTLS and issuerTLS are the TLS client certificates the merchant's
	// and the issuer's metadata publish.
	shopTLS, issuerTLS *x509.Certificate
}

// failingRules is the store, except that routing rules cannot be read.
type failingRules struct{ store.Store }

func (failingRules) ListRoutingRules(context.Context) ([]*store.RoutingRule, error) {
	return nil, errors.New("database is closed")
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	ctx := context.Background()
	var st *sqlstore.Store
	var pr *probe.Probe
	if o.probe {
		st, pr = probe.Open(t, filepath.Join(t.TempDir(), "hub.db"))
	} else {
		var err error
		if st, err = sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	hub := newSigner(t, devpki.Signing, "hub.test")
	merchant := newSigner(t, devpki.Signing, "shop.test")
	iss := newIssuer(t, hub)
	shopTLS, issuerTLS := newCert(t, devpki.TLSClient, "shop tls"), newCert(t, devpki.TLSClient, "issuer tls")

	add := func(ed *metadata.EntityDescriptor) {
		md, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		// The registry's record: the directory parses the participant from
		// its metadata; the roles are also a column of their own.
		p := &store.Participant{EntityID: ed.EntityID, Status: store.StatusActive, Metadata: md, CreatedAt: testNow, UpdatedAt: testNow}
		for _, r := range ed.Roles {
			p.Roles = append(p.Roles, store.Role(r))
		}
		if err := st.CreateParticipant(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	add(&metadata.EntityDescriptor{EntityID: shopID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: merchant.Cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: shopTLS}}})
	var offers []metadata.OfferedService
	for _, op := range []string{"approve", "inquire", "cancel", "refund"} {
		offers = append(offers, metadata.OfferedService{Service: saml.ServiceURI("card", op), Callers: []metadata.Role{metadata.RoleMerchant}})
	}
	add(&metadata.EntityDescriptor{EntityID: issuerID, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: iss.signer.Cert}, {Use: metadata.UseEncryption, Certificate: iss.signer.Cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: issuerTLS}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: issuerURL}},
		Services:  offers})

	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var fst store.Store = st
	var rst store.Store = st
	if o.failRules {
		fst = failingRules{st}
	}
	if o.db != nil {
		fst, rst = dbFault{st, o.db}, dbFault{st, o.db}
	}
	dir := &router.Directory{Store: st, Now: now, Log: log}
	rcfg := router.Config{HubEntityID: hubID, Signer: hub, Timeout: 5 * time.Second, IdemKey: []byte("facade-test-idempotency-key"), ReplicaID: "test"}
	if o.policy {
		p, err := policy.Compile(policy.Config{})
		if err != nil {
			t.Fatal(err)
		}
		rcfg.Policy = p
	}
	rt := router.New(rcfg, rst, dir, nil, log, now)
	rt.Transport = func([]*x509.Certificate) http.RoundTripper { return iss }
	keySum := func(k string) string {
		sum := sha256.Sum256([]byte(k))
		return hex.EncodeToString(sum[:])
	}
	cfg := facade.Config{HubEntityID: hubID, AllowClearCard: o.clear,
		APIKeys: []facade.APIKey{{EntityID: shopID, KeySHA256: keySum(apiKey)}, {EntityID: issuerID, KeySHA256: keySum(issuerAPIKey)}}}
	if o.rate != nil {
		cfg.RateLimit = o.rate.Check
	}
	f := facade.New(cfg, fst, dir, rt, hub, log, now)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	f.Mount(e)
	return &env{engine: e, logs: logs, issuer: iss, st: st, probe: pr, shopTLS: shopTLS, issuerTLS: issuerTLS}
}

// newCert makes a certificate of kind valid at testNow.
func newCert(t testing.TB, kind devpki.Kind, cn string) *x509.Certificate {
	t.Helper()
	_, certPEM, err := devpki.Generate(kind, cn, nil, testNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func newSigner(t testing.TB, kind devpki.Kind, cn string) *saml.Signer {
	t.Helper()
	keyPEM, certPEM, err := devpki.Generate(kind, cn, nil, testNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, err := saml.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := saml.NewSigner(key, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// issuer is the card issuer as the hub's router reaches it: an
// http.RoundTripper that verifies the hub's request (signature, OnBehalfOf,
// decryption with its key; sensitive elements in clear are refused) and
// answers Success, signed.
type issuer struct {
	signer *saml.Signer
	rc     *saml.Receiver

	mu      sync.Mutex
	got     []*saml.ServiceRequest // verified and decrypted
	bodies  [][]byte               // as they travelled
	down    bool                   // the connection is refused
	answers map[string]saml.Status // by order number: the status to answer instead of Success
	block   chan struct{}          // when set, answers wait for it to close
	arrived chan struct{}          // when set, told of each request
}

func newIssuer(t testing.TB, hub *saml.Signer) *issuer {
	t.Helper()
	s := newSigner(t, devpki.Encryption, "issuer.test") // RSA: it signs and decrypts
	return &issuer{signer: s, rc: &saml.Receiver{
		Keys:            saml.StaticKeys{hubID: {hub.Cert}},
		HubEntityID:     hubID,
		Replay:          saml.NewMemoryReplayCache(now),
		Destinations:    []string{issuerURL},
		Decrypter:       &saml.Decryptor{EntityID: issuerID, Keys: []saml.DecryptionKey{{Cert: s.Cert, Key: s.Key.(crypto.Decrypter)}}},
		ValidatePayload: true,
		Now:             now,
	}}
}

func (p *issuer) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	down, block, arrived := p.down, p.block, p.arrived
	p.mu.Unlock()
	if down {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	if arrived != nil {
		arrived <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	w := httptest.NewRecorder()
	p.serve(w, r)
	return w.Result(), nil
}

func (p *issuer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	msg, err := saml.ReadSOAPRequest(r, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	got, err := p.rc.ReceiveRequest(r.Context(), msg)
	st, inResp := saml.Status{Code: saml.StatusSuccess, Message: "approved"}, ""
	var echo *ecml.Payload // the order number, as a provider's answer carries it
	if err != nil {
		e := saml.AsError(err)
		if e.Stage == saml.BeforeVerification {
			saml.WriteFault(w, saml.FaultFor(err))
			return
		}
		st, inResp = e.StatusValue(), e.ID
	} else {
		inResp = got.Request.ID
		p.mu.Lock()
		p.got, p.bodies = append(p.got, got.Request), append(p.bodies, body)
		if pl := got.Request.Payload; pl != nil && pl.Ecom != nil && pl.Ecom.ConsumerOrderID != "" {
			echo = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: pl.Ecom.ConsumerOrderID}}
			if a, ok := p.answers[pl.Ecom.ConsumerOrderID]; ok {
				st = a
			}
		}
		p.mu.Unlock()
	}
	resp, err := (&saml.Builder{Issuer: issuerID, Now: now}).NewResponse(inResp, "", st)
	if err != nil {
		panic(err)
	}
	resp.Payload = echo
	el, err := resp.Element()
	if err != nil {
		panic(err)
	}
	out, err := p.signer.SignToBytes(el)
	if err != nil {
		panic(err)
	}
	saml.WriteSOAP(w, out)
}

// received returns what the issuer verified, and the bodies as they came.
func (p *issuer) received() ([]*saml.ServiceRequest, [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*saml.ServiceRequest(nil), p.got...), append([][]byte(nil), p.bodies...)
}

// request is one HTTP request to the facade.
type request struct {
	path string
	key  string // Idempotency-Key
	auth string // the API key; "-" for none
	// tls is the TLS client certificate the connection presented.
	tls     *x509.Certificate
	body    string
	rawBody []byte    // instead of body
	reader  io.Reader // instead of body: what the connection gives
}

// answer is the facade's HTTP answer.
type answer struct {
	status int
	header http.Header
	ctype  string
	raw    []byte
	json   map[string]any
}

func (a answer) problem() string {
	s, _ := a.json["type"].(string)
	return s
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.raw) }

// do sends r to the facade; a panic in a handler fails the test instead of
// crashing it.
func (e *env) do(t testing.TB, r request) (a answer) {
	t.Helper()
	body := r.rawBody
	if body == nil {
		body = []byte(r.body)
	}
	var rd io.Reader = bytes.NewReader(body)
	if r.reader != nil {
		rd = r.reader
	}
	hr, err := http.NewRequest(http.MethodPost, "https://hub.test"+r.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	switch r.auth {
	case "":
		hr.Header.Set("Authorization", "Bearer "+apiKey)
	case "-":
	default:
		hr.Header.Set("Authorization", "Bearer "+r.auth)
	}
	if r.key != "" {
		hr.Header.Set("Idempotency-Key", r.key)
	}
	if r.tls != nil {
		hr.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{r.tls}}
	}
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("POST %s %s: the handler panicked: %v", r.path, body, p)
				a = answer{status: -1}
			}
		}()
		e.engine.ServeHTTP(w, hr)
	}()
	if a.status == -1 {
		return a
	}
	a = answer{status: w.Code, header: w.Header(), ctype: w.Header().Get("Content-Type"), raw: w.Body.Bytes()}
	if err := json.Unmarshal(a.raw, &a.json); err != nil {
		t.Errorf("POST %s: the answer is not a JSON object: %v\n%s", r.path, err, a.raw)
	}
	return a
}

// browserCard is what a merchant's page makes with WebCrypto: the Card
// element encrypted for the recipient.
func browserCard(t testing.TB, p *issuer, recipient, number string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<Payment><Card Number="` + number + `" Type="VISA"><ExpDate Month="12" Year="2030"/></Card></Payment>`); err != nil {
		t.Fatal(err)
	}
	ed, err := (&saml.Encryptor{Recipient: recipient, Cert: p.signer.Cert}).EncryptElement(doc.Root().SelectElement("Card"))
	if err != nil {
		t.Fatal(err)
	}
	out := etree.NewDocument()
	out.SetRoot(ed.Copy())
	s, err := out.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jsonBody marshals v.
func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// approveFields are the public fields of a card approval.
func approveFields(order, amount string) map[string]string {
	return map[string]string{"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": amount,
		"Ecom_Transaction_CurrencyCode": "KRW", "Ecom_Transaction_Type": "credit"}
}
