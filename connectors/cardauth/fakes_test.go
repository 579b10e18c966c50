package cardauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const (
	issuerID   = "https://issuer.test/kecis"
	merchantID = "https://shop.test/kecis"
	noEndID    = "https://shop2.test/kecis"
	pgID       = "https://pg.test/kecis"
	testerID   = "https://tester.test/kecis"
	returnURL  = "https://shop.test/cardauth/return"
	pageURL    = "https://127.0.0.1/cardauth"
	goodPAN    = "4111111111111111"
	otherPAN   = "5555555555554444" // Luhn-valid, not the issuer's
	goodPW     = "123456"
	goodTOTP   = "654321"
)

// directory is the federation's metadata in memory.
type directory struct {
	eds map[string]*metadata.EntityDescriptor
}

func (d *directory) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d.eds[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

func (d *directory) SigningCertificates(ctx context.Context, id string) ([]*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.SigningCertificates(), nil
}

func (d *directory) EncryptionCertificate(ctx context.Context, id string) (*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := ed.EncryptionCertificates(); len(c) > 0 {
		return c[0], nil
	}
	return nil, fmt.Errorf("%s has no encryption key", id)
}

func (d *directory) Endpoint(ctx context.Context, id, service, binding string) (metadata.Endpoint, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return metadata.Endpoint{}, err
	}
	e, ok := ed.Endpoint(service, binding)
	if !ok {
		return metadata.Endpoint{}, errors.New("no endpoint")
	}
	return e, nil
}

// cardholders is the issuer's cards: failures counted, locked at 3.
type cardholders struct {
	mu       sync.Mutex
	fails    map[string]int
	usedTOTP map[string]bool
	certRef  map[string]string // by serial
	issued   []VirtualControls
}

func newCardholders() *cardholders {
	return &cardholders{fails: map[string]int{}, usedTOTP: map[string]bool{}, certRef: map[string]string{}}
}

const lockAt = 3

func (c *cardholders) FindCard(_ context.Context, pan ecml.PAN) (*Card, error) {
	if pan.Reveal() != goodPAN {
		return nil, ErrUnknownCard
	}
	return &Card{Ref: "card-1", Type: "VISA", Masked: pan.Masked(), ExpMonth: 12, ExpYear: 2030, TOTP: true}, nil
}

func (c *cardholders) CardNumber(_ context.Context, ref string) (ecml.PAN, error) {
	if ref != "card-1" {
		return "", ErrUnknownCard
	}
	return goodPAN, nil
}

func (c *cardholders) check(ref string, ok bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails[ref] >= lockAt {
		return ErrLocked
	}
	if !ok {
		c.fails[ref]++
		return &FactorError{Left: lockAt - c.fails[ref]}
	}
	c.fails[ref] = 0
	return nil
}

func (c *cardholders) CheckPassword(_ context.Context, ref string, pw ecml.Secret) error {
	return c.check(ref, pw.Reveal() == goodPW)
}

func (c *cardholders) CheckTOTP(_ context.Context, ref string, code ecml.Secret) error {
	c.mu.Lock()
	used := c.usedTOTP[code.Reveal()]
	c.usedTOTP[code.Reveal()] = code.Reveal() == goodTOTP
	c.mu.Unlock()
	return c.check(ref, code.Reveal() == goodTOTP && !used)
}

func (c *cardholders) CertificateCard(_ context.Context, cert *x509.Certificate) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.certRef[cert.SerialNumber.String()]; ok {
		return r, nil
	}
	return "", ErrUnknownCard
}

func (c *cardholders) IssueVirtual(_ context.Context, ref string, ctl VirtualControls) (*VirtualNumber, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.issued = append(c.issued, ctl)
	base := "404143337000001"
	d, _ := ecml.LuhnCheckDigit(base)
	return &VirtualNumber{Number: ecml.PAN(base + string(d)), Type: ecml.VirtualCardCredit, ExpMonth: 12, ExpYear: 2027, Controls: ctl}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func keyPath(name string) string { return filepath.Join("..", "..", "saml", "testdata", "keys", name) }

// rig is an issuer's page with its fakes, a merchant and a PG.
type rig struct {
	e           *Engine
	dir         *directory
	ch          *cardholders
	clock       *clock
	merchant    *saml.Signer
	merchantDec saml.DecryptionKey
	pgDec       saml.DecryptionKey
	certSrv     *httptest.Server
	ca          *testCA
	logs        *bytes.Buffer
	db          *sqlstore.DB
}

func newRig(t testing.TB, edit func(*Config)) *rig {
	t.Helper()
	return newRigOn(t, sqltest.TestSQLiteDSN(t), edit)
}

// newRigOn is newRig with the page's transactions in the database dsn
// names (the SDK's own store stays on SQLite).
func newRigOn(t testing.TB, dsn string, edit func(*Config)) *rig {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	issuerSigner, err := saml.LoadSigner(keyPath("issuer-ec.key.pem"), keyPath("issuer-ec.cert.pem"))
	must(err)
	merchantSigner, err := saml.LoadSigner(keyPath("merchant-ec.key.pem"), keyPath("merchant-ec.cert.pem"))
	must(err)
	merchantDec, err := saml.LoadDecryptionKey(keyPath("merchant-rsa.key.pem"), keyPath("merchant-rsa.cert.pem"))
	must(err)
	pgDec, err := saml.LoadDecryptionKey(keyPath("attacker-rsa.key.pem"), keyPath("attacker-rsa.cert.pem"))
	must(err)
	r := &rig{ch: newCardholders(), clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, merchant: merchantSigner,
		merchantDec: merchantDec, pgDec: pgDec, logs: &bytes.Buffer{}}
	r.ca = newCA(t, "cardholder CA")
	var certHandler http.Handler = http.NotFoundHandler()
	r.certSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) { certHandler.ServeHTTP(w, q) }))
	r.certSrv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	r.certSrv.StartTLS()
	t.Cleanup(r.certSrv.Close)
	certURL := r.certSrv.URL + "/cert"

	post := func(svc, loc string) metadata.Endpoint {
		return metadata.Endpoint{Service: svc, Binding: saml.BindingHTTPPOST, Location: loc}
	}
	r.dir = &directory{eds: map[string]*metadata.EntityDescriptor{
		issuerID: {EntityID: issuerID, Roles: []metadata.Role{metadata.RoleIssuer},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: issuerSigner.Cert}},
			Endpoints: []metadata.Endpoint{post(ServiceAuthenticate, pageURL), post(ServiceVCNIssue, pageURL)},
			Services: []metadata.OfferedService{{Service: ServiceAuthenticate, Callers: []metadata.Role{metadata.RoleMerchant}},
				{Service: ServiceVCNIssue, Callers: []metadata.Role{metadata.RoleMerchant}}}},
		merchantID: {EntityID: merchantID, DisplayName: "Registered Shop", Roles: []metadata.Role{metadata.RoleMerchant},
			Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: merchantSigner.Cert}, {Use: metadata.UseEncryption, Certificate: merchantDec.Cert}},
			Endpoints: []metadata.Endpoint{post(ServiceAuthenticate, returnURL), post(ServiceVCNIssue, returnURL),
				{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://shop.test/soap"}}},
		noEndID: {EntityID: noEndID, Roles: []metadata.Role{metadata.RoleMerchant},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: merchantSigner.Cert}, {Use: metadata.UseEncryption, Certificate: merchantDec.Cert}},
			Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingHTTPPOST, Location: "https://shop2.test/any"}}},
		pgID: {EntityID: pgID, Roles: []metadata.Role{metadata.RolePG},
			Keys: []metadata.KeyDescriptor{{Use: metadata.UseEncryption, Certificate: pgDec.Cert}}},
		testerID: {EntityID: testerID, Roles: []metadata.Role{metadata.RoleTester},
			Keys: []metadata.KeyDescriptor{{Use: metadata.UseEncryption, Certificate: pgDec.Cert}}},
	}}
	db, err := sqlstore.Open(ctx, dsn)
	must(err)
	t.Cleanup(func() { db.Close() })
	kdb := db
	if db.Dialect != sqlstore.SQLite {
		kdb, err = sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
		must(err)
		t.Cleanup(func() { kdb.Close() })
	}
	kstore, err := sqlitestore.New(ctx, kdb, bytes.Repeat([]byte{3}, 32))
	must(err)
	h, err := connectors.NewHandler(connectors.HandlerConfig{EntityID: issuerID, Signer: issuerSigner, Endpoints: []string{"https://127.0.0.1/soap"},
		Directory: r.dir, Store: kstore, IdemKey: bytes.Repeat([]byte{4}, 32), Now: r.clock.Now})
	must(err)
	roots := x509.NewCertPool()
	roots.AddCert(r.ca.cert)
	crl := func(context.Context) (*x509.RevocationList, error) { return r.ca.crlAt(t, r.clock.Now()), nil }
	cfg := Config{EntityID: issuerID, Signer: issuerSigner, Directory: r.dir, KECIS: h, Store: db, Cardholders: r.ch,
		AAV: &AAV{Keys: [][]byte{bytes.Repeat([]byte{5}, 32)}}, Certs: &CertVerifier{Roots: roots, CRL: crl},
		PageURL: pageURL, CertURL: certURL, Key: bytes.Repeat([]byte{6}, 32), Now: r.clock.Now,
		Log: newLogger(r.logs)}
	if edit != nil {
		edit(&cfg)
	}
	r.e, err = New(ctx, cfg)
	must(err)
	r.db = db
	mux := http.NewServeMux()
	mux.Handle("/cert", r.e.CertHandler())
	certHandler = mux
	return r
}

// request is a merchant's signed SAMLRequest.
func (r *rig) request(t testing.TB, issuer, service, order string, amount int64, edit func(*ecml.Payload)) []byte {
	t.Helper()
	b := &saml.Builder{Issuer: issuer, Now: r.clock.Now}
	req, err := b.NewRequest(pageURL, service)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "idem-" + order
	amt, _ := ecml.FormatAmount(ecml.Money{Minor: amount, Currency: "KRW"})
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{ConsumerOrderID: order, Merchant: "KECIS 상점",
		Transaction: &ecml.Transaction{Amount: amt, Currency: "KRW"}}, CardAuth: &ecml.CardAuth{Acquirer: pgID}}
	if edit != nil {
		edit(req.Payload)
	}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.merchant.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// browser is a cardholder's browser: its cookie.
type browser struct {
	cookie *http.Cookie
}

// do posts form to the page (path under it) or to url when absolute.
func (r *rig) do(t testing.TB, b *browser, target string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.1:5000"
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	r.e.Handler().ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			b.cookie = c
		}
	}
	return w
}

func (r *rig) start(t testing.TB, b *browser, msg []byte, relay string) *httptest.ResponseRecorder {
	t.Helper()
	f := url.Values{"SAMLRequest": {b64(msg)}}
	if relay != "" {
		f.Set("RelayState", relay)
	}
	return r.do(t, b, "/cardauth", f)
}

var (
	txRe   = regexp.MustCompile(`name="tx" value="([^"]+)"`)
	respRe = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)
	actRe  = regexp.MustCompile(`<form method="post" action="([^"]+)" id="kecis-post"`)
	relRe  = regexp.MustCompile(`name="RelayState" value="([^"]+)"`)
)

func field(t testing.TB, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

var (
	nonceRe    = regexp.MustCompile(`nonce="([^"]+)"`)
	keypadRe   = regexp.MustCompile(`data-order="[^"]*"`)
	attemptsRe = regexp.MustCompile(`value="[A-Za-z0-9_-]{22}"`)
)

// anyPending is the merchant's pending requests: in these tests every
// response answers one (the merchant side is connectors/frontclient's).
type anyPending struct{}

func (anyPending) Add(context.Context, string, string, time.Time) error { return nil }
func (anyPending) Complete(context.Context, string, string) error       { return nil }

func httptestPost(target string, form url.Values, b *browser) *http.Request {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	return req
}

func httptestRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
