package twoway

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const (
	shopID      = "https://shop.test/kecis"
	shop2ID     = "https://shop2.test/kecis"
	shopReturn  = "https://shop.test/twoway/return"
	shop2Return = "https://shop2.test/twoway/return"
	frontURL    = "https://bank-a.test/twoway/request"
	bankSOAP    = "https://bank-a.test/kecis/soap"
)

// frontDir is the federation's metadata in memory.
type frontDir map[string]*metadata.EntityDescriptor

func (d frontDir) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

func (d frontDir) SigningCertificates(ctx context.Context, id string) ([]*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.SigningCertificates(), nil
}

func (d frontDir) EncryptionCertificate(ctx context.Context, id string) (*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := ed.EncryptionCertificates(); len(c) > 0 {
		return c[0], nil
	}
	return nil, fmt.Errorf("%s has no encryption key", id)
}

func (d frontDir) Endpoint(ctx context.Context, id, service, binding string) (metadata.Endpoint, error) {
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

// frontRig is bank A's pages with the front channel, its SDK handler
// (twoway:status) and two merchants' front channels.
type frontRig struct {
	*pageRig
	kecis *connectors.Handler
	dir   frontDir
	shops map[string]*connectors.FrontChannel
	key   *saml.Signer
}

func newFrontRig(t *testing.T) *frontRig {
	t.Helper()
	return newFrontRigOn(t, sqltest.TestSQLiteDSN(t))
}

// newFrontRigOn is newFrontRig with the engine's and the front channel's
// tables in the database dsn names.
func newFrontRigOn(t *testing.T, dsn string) *frontRig {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	kp := func(n string) string { return filepath.Join("..", "..", "saml", "testdata", "keys", n) }
	bankSigner, err := saml.LoadSigner(kp("issuer-ec.key.pem"), kp("issuer-ec.cert.pem"))
	must(err)
	bankDec, err := saml.LoadDecryptionKey(kp("issuer-rsa.key.pem"), kp("issuer-rsa.cert.pem"))
	must(err)
	shopSigner, err := saml.LoadSigner(kp("merchant-ec.key.pem"), kp("merchant-ec.cert.pem"))
	must(err)
	shopDec, err := saml.LoadDecryptionKey(kp("merchant-rsa.key.pem"), kp("merchant-rsa.cert.pem"))
	must(err)
	post := func(svc, loc string) metadata.Endpoint {
		return metadata.Endpoint{Service: svc, Binding: saml.BindingHTTPPOST, Location: loc}
	}
	callers := []metadata.Role{metadata.RoleMerchant, metadata.RoleBank}
	shop := func(id, name, ret string) *metadata.EntityDescriptor {
		return &metadata.EntityDescriptor{EntityID: id, DisplayName: name, Roles: []metadata.Role{metadata.RoleMerchant},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: shopSigner.Cert}, {Use: metadata.UseEncryption, Certificate: shopDec.Cert}},
			Endpoints: []metadata.Endpoint{post(ServiceRequest, ret)}}
	}
	dir := frontDir{
		bankID: {EntityID: bankID, DisplayName: "KECIS은행", Roles: []metadata.Role{metadata.RoleBank},
			Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: bankSigner.Cert}, {Use: metadata.UseEncryption, Certificate: bankDec.Cert}},
			Endpoints: []metadata.Endpoint{post(ServiceRequest, frontURL), {Service: ServiceStatus, Binding: saml.BindingSOAP, Location: bankSOAP}},
			Services:  []metadata.OfferedService{{Service: ServiceRequest, Callers: callers}, {Service: ServiceStatus, Callers: callers}}},
		shopID:  shop(shopID, "등록된 상점", shopReturn),
		shop2ID: shop(shop2ID, "다른 상점", shop2Return),
	}
	pr := newPageRigOn(t, dsn, nil)
	kdb, err := sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
	must(err)
	t.Cleanup(func() { kdb.Close() })
	kstore, err := sqlitestore.New(ctx, kdb, bytes.Repeat([]byte{3}, 32))
	must(err)
	h, err := connectors.NewHandler(connectors.HandlerConfig{EntityID: bankID, Signer: bankSigner, Decryption: []saml.DecryptionKey{bankDec},
		Endpoints: []string{bankSOAP}, Directory: dir, Store: kstore, IdemKey: bytes.Repeat([]byte{4}, 32), Now: pr.w.clock.Now,
		Services: map[string]connectors.ServiceFunc{ServiceStatus: StatusService(pr.e, pr.w.store)}})
	must(err)
	pr.h, err = NewPage(PageConfig{Engine: pr.e, Customers: pr.cust, SessionKey: bytes.Repeat([]byte{5}, 32), Prefix: "/twoway",
		Front: &FrontConfig{KECIS: h, URL: frontURL, Store: pr.w.store, Directory: dir}})
	must(err)
	r := &frontRig{pageRig: pr, kecis: h, dir: dir, shops: map[string]*connectors.FrontChannel{}, key: shopSigner}
	for _, id := range []string{shopID, shop2ID} {
		fc, err := connectors.NewFrontChannel(connectors.FrontConfig{EntityID: id, Signer: shopSigner, Decryption: []saml.DecryptionKey{shopDec},
			Directory: dir, Now: pr.w.clock.Now, Rand: testutil.NewDetRand("front-" + id)})
		must(err)
		r.shops[id] = fc
	}
	return r
}

// fbrowser is a browser with a cookie jar (the session and the front
// binding) that follows no redirect.
type fbrowser struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]string
	csrf    string
}

func (b *fbrowser) do(method, path string, form url.Values, site string) *httptest.ResponseRecorder {
	b.t.Helper()
	if form != nil && method == http.MethodPost && b.csrf != "" && form.Get("csrf") == "" && site == "same-origin" {
		form.Set("csrf", b.csrf)
	}
	req := httptest.NewRequest(method, "https://bank-a.test"+path, strings.NewReader(form.Encode()))
	req.RemoteAddr = "192.0.2.20:4242"
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
	}
	for n, v := range b.cookies {
		if site != "cross-site" || n == frontCookieName { // the session cookie is SameSite=Lax
			req.AddCookie(&http.Cookie{Name: n, Value: v})
		}
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		b.cookies[c.Name] = c.Value
	}
	if m := csrfRE.FindStringSubmatch(w.Body.String()); m != nil {
		b.csrf = m[1]
	}
	return w
}

var (
	samlRequestRE  = regexp.MustCompile(`name="SAMLRequest" value="([^"]+)"`)
	samlResponseRE = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)
	frontFieldRE   = regexp.MustCompile(`name="front" value="(tf[0-9a-f]{32})"`)
	transferPathRE = regexp.MustCompile(`^/twoway/t/(tw[0-9a-f]{32})$`)
)

func match(t *testing.T, re *regexp.Regexp, s string) string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in\n%s", re, s)
	}
	return html.UnescapeString(m[1])
}

// ask is a shop's signed twoway:request for order, through its front
// channel: the SAMLRequest to post and what the shop keeps.
func (r *frontRig) ask(t *testing.T, shop, order, key string, amount int64) (string, connectors.FrontRequest) {
	t.Helper()
	amt, _ := ecml.FormatAmount(ecml.Money{Minor: amount, Currency: "KRW"})
	pl := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order,
		Transaction: &ecml.Transaction{Amount: amt, Currency: "KRW"},
		BillTo: &ecml.Address{Telecom: &ecml.Telecom{Phone: &ecml.Phone{Number: "010-3333-4444"}},
			Postal: &ecml.Postal{Name: &ecml.Name{Last: "김민수"}}}},
		BankAccounts: []*ecml.BankAccount{{BankCode: bankB, Role: "payee", AccountNumber: payeeAccount}},
		Transfer:     &ecml.Transfer{Purpose: PhishingPrevention}}
	form, sent, err := r.shops[shop].Request(context.Background(), bankID, ServiceRequest, connectors.FrontCall{IdempotencyKey: key, Payload: pl}, "relay-"+order)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(form), digitsOnly(payeeAccount)) {
		t.Fatal("the request carries the payee's account in clear")
	}
	return match(t, samlRequestRE, string(form)), sent
}

// read is the shop reading the answer the page posts back.
func (r *frontRig) read(t *testing.T, shop, body string, sent connectors.FrontRequest) *connectors.FrontResponse {
	t.Helper()
	dest := map[string]string{shopID: shopReturn, shop2ID: shop2Return}[shop]
	if !strings.Contains(body, `action="`+dest+`"`) {
		t.Fatalf("the answer is not posted to %s:\n%s", dest, body)
	}
	f := url.Values{"SAMLResponse": {match(t, samlResponseRE, body)}}
	req := httptest.NewRequest(http.MethodPost, dest, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _, err := r.shops[shop].ReadResponse(context.Background(), req, sent)
	if err != nil {
		t.Fatalf("the answer does not verify: %v", saml.AsError(err).LogValue())
	}
	return resp
}

// status asks twoway:status of order as shop, over SOAP to the bank's SDK
// handler; it returns the status, the state and the reference.
func (r *frontRig) status(t *testing.T, shop, order string) (saml.Status, string, string) {
	t.Helper()
	b := &saml.Builder{Issuer: shop, Now: r.w.clock.Now}
	req, err := b.NewRequest(bankSOAP, ServiceStatus)
	if err != nil {
		t.Fatal(err)
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order}}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := r.key.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.kecis.Handle(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	pending := saml.NewMemoryPending(r.w.clock.Now)
	if err := pending.Add(context.Background(), req.ID, bankID, r.w.clock.Now().Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rc := &saml.Receiver{Keys: r.dir, Replay: saml.NewMemoryReplayCache(r.w.clock.Now), Pending: pending, ValidatePayload: true, Now: r.w.clock.Now}
	got, err := rc.ReceiveResponse(context.Background(), out)
	if err != nil {
		t.Fatalf("the status answer does not verify: %v", err)
	}
	resp := got.Response
	var ref string
	if p := resp.Payload; p != nil && p.Ecom != nil && p.Ecom.Transaction != nil && p.Ecom.Transaction.Code != nil {
		ref = p.Ecom.Transaction.Code.Approval
	}
	return resp.Status, stateOf(resp.Payload), ref
}

func stateOf(p *ecml.Payload) string {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil || p.Ecom.Transaction.Data == nil || p.Ecom.Transaction.Data.Response == nil {
		return ""
	}
	return p.Ecom.Transaction.Data.Response.Value
}

// TestFrontRequest: a merchant's twoway:request over HTTP-POST → the
// remitter's login at its bank → the prefilled form → the name check →
// confirm → the answer posted back (Responder/Pending, awaiting-reply) →
// the payee's reply → status completed; another merchant's status of the
// order is refused as unknown; the request posted again is refused; the
// same order asked again with other content is a Duplicate.
func TestFrontRequest(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) { testFrontRequest(t, newFrontRigOn(t, dsn(t))) })
	}
}

func testFrontRequest(t *testing.T, r *frontRig) {
	ctx := context.Background()
	b := &fbrowser{t: t, h: r.h, cookies: map[string]string{}}

	samlReq, sent := r.ask(t, shopID, "ORD-7", "key-7", 150_000)
	w := b.do(http.MethodPost, "/twoway/request", url.Values{"SAMLRequest": {samlReq}, "RelayState": {"relay-ORD-7"}}, "cross-site")
	expect(t, w, http.StatusOK, `action="/twoway/login"`, "등록된 상점", "150,000원")
	front := match(t, frontFieldRE, w.Body.String())
	if st, _, _ := r.status(t, shopID, "ORD-7"); st.SubCode != saml.CodePending {
		t.Fatalf("status before the remitter acted: %+v", st)
	}

	// The request posted again is refused (replay).
	expect(t, b.do(http.MethodPost, "/twoway/request", url.Values{"SAMLRequest": {samlReq}}, "cross-site"), http.StatusBadRequest)

	// Another browser cannot take the request.
	thief := &fbrowser{t: t, h: r.h, cookies: map[string]string{}}
	expect(t, thief.do(http.MethodPost, "/twoway/login", url.Values{"login": {"lee"}, "password": {"right-password"}, "front": {front}}, "same-origin"), http.StatusSeeOther)
	expect(t, thief.do(http.MethodGet, "/twoway/f/"+front, nil, ""), http.StatusForbidden)

	w = b.do(http.MethodPost, "/twoway/login", url.Values{"login": {"hong"}, "password": {"right-password"}, "front": {front}}, "same-origin")
	expect(t, w, http.StatusSeeOther)
	if loc := w.Header().Get("Location"); loc != "/twoway/f/"+front {
		t.Fatalf("the login leads to %q", loc)
	}
	w = b.do(http.MethodGet, "/twoway/f/"+front, nil, "")
	expect(t, w, http.StatusOK, `action="/twoway/f/`+front+`/confirm"`, "150,000원", MaskAccount(payeeAccount), "010-****-4444", "김민수", "등록된 상점")
	if strings.Contains(w.Body.String(), payeeAccount) {
		t.Fatal("the form shows the payee's account in clear")
	}
	w = b.do(http.MethodPost, "/twoway/f/"+front+"/confirm", url.Values{"account": {"acc-1"}}, "same-origin")
	expect(t, w, http.StatusSeeOther)
	id := match(t, transferPathRE, w.Header().Get("Location"))
	w = b.do(http.MethodGet, "/twoway/t/"+id, nil, "")
	expect(t, w, http.StatusOK, `action="/twoway/t/`+id+`/confirm"`, "김민수")
	if st, state, _ := r.status(t, shopID, "ORD-7"); !st.OK() || state != string(AwaitingConfirmation) {
		t.Fatalf("status at the name check: %+v %q", st, state)
	}
	expect(t, b.do(http.MethodPost, "/twoway/t/"+id+"/confirm", url.Values{}, "same-origin"), http.StatusSeeOther)
	w = b.do(http.MethodGet, "/twoway/t/"+id, nil, "")
	expect(t, w, http.StatusOK, "SAMLResponse", `name="RelayState" value="relay-ORD-7"`)
	resp := r.read(t, shopID, w.Body.String(), sent)
	if resp.Status.Code != saml.StatusResponder || resp.Status.SubCode != saml.CodePending || stateOf(resp.Payload) != string(AwaitingReply) ||
		resp.Payload.Ecom.ConsumerOrderID != "ORD-7" || resp.Payload.Ecom.Transaction.Code.Approval != BankReference(id) {
		t.Fatalf("the answer: %+v, state %q", resp.Status, stateOf(resp.Payload))
	}
	// The same answer, byte for byte, when the page is shown again.
	if again := match(t, samlResponseRE, b.do(http.MethodGet, "/twoway/t/"+id, nil, "").Body.String()); again != match(t, samlResponseRE, w.Body.String()) {
		t.Fatal("the answer was signed again")
	}

	if st, state, _ := r.status(t, shopID, "ORD-7"); !st.OK() || state != string(AwaitingReply) {
		t.Fatalf("status awaiting the reply: %+v %q", st, state)
	}
	code := r.w.codeSent(t, payeePhone)
	if err := r.e.HandleReply(ctx, r.w.reply(payeePhone, code, r.w.messageTo(payeePhone))); err != nil {
		t.Fatal(err)
	}
	st, state, ref := r.status(t, shopID, "ORD-7")
	if !st.OK() || state != string(Completed) || ref == "" {
		t.Fatalf("status after the reply: %+v %q %q", st, state, ref)
	}
	if n := r.w.bank.count("credit"); n != 1 {
		t.Fatalf("%d credits", n)
	}

	// Another merchant's status of the order: unknown, as any unknown order.
	st, state, _ = r.status(t, shop2ID, "ORD-7")
	st2, _, _ := r.status(t, shop2ID, "ORD-NONE")
	if st != NoSuchRequest || state != "" || st2 != st {
		t.Fatalf("another merchant's status: %+v %q (an unknown order: %+v)", st, state, st2)
	}

	// The same order again with other content: a Duplicate, posted back.
	samlReq2, sent2 := r.ask(t, shopID, "ORD-7", "key-other", 150_000)
	w = b.do(http.MethodPost, "/twoway/request", url.Values{"SAMLRequest": {samlReq2}}, "cross-site")
	expect(t, w, http.StatusOK, "SAMLResponse")
	if resp := r.read(t, shopID, w.Body.String(), sent2); resp.Status.SubCode != saml.CodeDuplicate {
		t.Fatalf("the same order with another key: %+v", resp.Status)
	}

	logs := r.w.logs.String()
	for _, secret := range []string{payeeAccount, digitsOnly(payeeAccount), code, "01033334444"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs hold %q", secret)
		}
	}
	testutil.AssertNoSecretsInRows(t, r.w.db.DB, []string{"twoway_front"}, digitsOnly(payeeAccount), payeeAccount, "01033334444", payeePhone)
}

// TestFrontDeclined: the remitter declines the prefilled request; the
// requester is answered abandoned, and its status says so.
func TestFrontDeclined(t *testing.T) {
	r := newFrontRig(t)
	b := &fbrowser{t: t, h: r.h, cookies: map[string]string{}}
	samlReq, sent := r.ask(t, shopID, "ORD-8", "key-8", 20_000)
	front := match(t, frontFieldRE, b.do(http.MethodPost, "/twoway/request", url.Values{"SAMLRequest": {samlReq}}, "cross-site").Body.String())
	expect(t, b.do(http.MethodPost, "/twoway/login", url.Values{"login": {"hong"}, "password": {"right-password"}, "front": {front}}, "same-origin"), http.StatusSeeOther)
	b.do(http.MethodGet, "/twoway/f/"+front, nil, "")
	w := b.do(http.MethodPost, "/twoway/f/"+front+"/cancel", url.Values{}, "same-origin")
	expect(t, w, http.StatusOK, "SAMLResponse")
	resp := r.read(t, shopID, w.Body.String(), sent)
	if resp.Status.SubCode != saml.CodeDeclined || stateOf(resp.Payload) != string(Abandoned) {
		t.Fatalf("the answer: %+v %q", resp.Status, stateOf(resp.Payload))
	}
	if st, state, _ := r.status(t, shopID, "ORD-8"); !st.OK() || state != string(Abandoned) {
		t.Fatalf("status: %+v %q", st, state)
	}
}
