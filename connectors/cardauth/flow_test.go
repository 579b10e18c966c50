package cardauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func (ca *testCA) crlAt(t testing.TB, now time.Time, revoked ...int64) *x509.RevocationList {
	return ca.crl(t, now.Add(time.Hour), revoked...)
}

// received is the merchant's view of a posted response.
type received struct {
	status  saml.Status
	payload *ecml.Payload
	results []*saml.AuthenticationResult
	raw     []byte
	relay   string
}

// receive reads the answer page: the form posts to the merchant's
// endpoint; the response verifies with the issuer's key; what is for the
// merchant decrypts, the card for the PG stays opaque.
func (r *rig) receive(t testing.TB, body string) *received {
	t.Helper()
	if a := field(t, actRe, body); a != returnURL {
		t.Fatalf("posted to %q, want the merchant's endpoint %q", a, returnURL)
	}
	raw, err := base64.StdEncoding.DecodeString(field(t, respRe, body))
	if err != nil {
		t.Fatal(err)
	}
	rc := &saml.Receiver{Keys: r.dir, Replay: saml.NewMemoryReplayCache(r.clock.Now), Pending: anyPending{}, Destinations: []string{returnURL},
		Decrypter:       &saml.Decryptor{EntityID: merchantID, Keys: []saml.DecryptionKey{r.merchantDec}, KeepForOthers: true},
		ValidatePayload: true, Now: r.clock.Now}
	got, err := rc.ReceiveResponse(context.Background(), raw)
	if err != nil {
		t.Fatalf("the merchant refuses the response: %v", err)
	}
	out := &received{status: got.Response.Status, payload: got.Response.Payload, results: got.AuthResults, raw: raw}
	if m := relRe.FindStringSubmatch(body); m != nil {
		out.relay = m[1]
	}
	return out
}

func (r *rig) begin(t testing.TB, b *browser, order string, amount int64, edit func(*ecml.Payload)) string {
	t.Helper()
	w := r.start(t, b, r.request(t, merchantID, ServiceAuthenticate, order, amount, edit), "rs-"+order)
	if w.Code != http.StatusOK {
		t.Fatalf("start: %d\n%s", w.Code, w.Body)
	}
	return field(t, txRe, w.Body.String())
}

func (r *rig) card(t testing.TB, b *browser, tx, number, pw string) string {
	t.Helper()
	w := r.do(t, b, "/cardauth/card", url.Values{"tx": {tx}, "CardNumber": {number}, "Password": {pw}})
	return w.Body.String()
}

func (r *rig) noSecrets(t testing.TB) {
	t.Helper()
	logs := r.logs.String()
	for _, s := range []string{goodPAN, otherPAN, "password=" + goodPW, goodTOTP} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret in the logs: %s", logs)
		}
	}
	testutil.AssertNoSecretsInRows(t, r.db.DB, []string{"cardauth_tx"}, goodPW)
}

func TestPasswordBelowThreshold(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	tx := r.begin(t, b, "O-1", 99999, nil)
	if b.cookie == nil || !b.cookie.HttpOnly || !b.cookie.Secure || b.cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("binding cookie %+v", b.cookie)
	}
	body := r.card(t, b, tx, "4111 1111 1111 1111", goodPW)
	got := r.receive(t, body)
	if got.status.Code != saml.StatusSuccess {
		t.Fatalf("status %+v", got.status)
	}
	if got.relay != "rs-O-1" {
		t.Errorf("RelayState %q", got.relay)
	}
	p := got.payload
	if p.Ecom.ConsumerOrderID != "O-1" || p.Ecom.Transaction.Amount != "99999" || p.Ecom.Transaction.Data.AAV == nil {
		t.Fatalf("payload %+v", p.Ecom)
	}
	if p.Ecom.Payment == nil || p.Ecom.Payment.Card != nil || p.Ecom.Payment.EncryptedCard == nil {
		t.Fatalf("the card is not opaque to the merchant: %+v", p.Ecom.Payment)
	}
	if !strings.Contains(string(got.raw), pgID) {
		t.Error("the card's EncryptedKey names no PG recipient")
	}
	// The PG reads it.
	pgd := &saml.Decryptor{EntityID: pgID, Keys: []saml.DecryptionKey{r.pgDec}}
	holder := etree.NewElement("Payment")
	holder.AddChild(p.Ecom.Payment.EncryptedCard.Copy())
	if err := pgd.DecryptPayload(context.Background(), holder); err != nil {
		t.Fatalf("the PG cannot decrypt the card: %v", err)
	}
	if c := holder.FindElement(".//Card"); c == nil || c.SelectAttrValue("Number", "") != goodPAN {
		t.Errorf("the PG reads no card number")
	}
	if len(got.results) != 1 {
		t.Fatalf("%d results", len(got.results))
	}
	res := got.results[0]
	if res.Issuer != issuerID || res.Method != MethodPassword || res.Factors != 1 || res.Amount != "99999" || res.Currency != "KRW" ||
		res.Merchant != merchantID || res.OrderID != "O-1" || res.CardRef != ecml.MaskPAN(goodPAN) {
		t.Errorf("result %+v", res)
	}
	aav := p.Ecom.Transaction.Data.AAV.Value
	if _, exp, err := r.e.cfg.AAV.CheckAuthValue(aav, goodPAN, 99999, "KRW", merchantID, "O-1", r.clock.Now()); err != nil || !exp.Equal(res.NotOnOrAfter) {
		t.Errorf("AAV check %v, expiry %v vs result %v", err, exp, res.NotOnOrAfter)
	}
	if !strings.Contains(body, `nonce="`) || !strings.Contains(body, "kecis-post") {
		t.Error("no auto-submitting form")
	}
	r.noSecrets(t)
}

func TestSecondFactorTOTP(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	tx := r.begin(t, b, "O-2", 100000, nil)
	body := r.card(t, b, tx, goodPAN, goodPW)
	if !strings.Contains(body, `name="Code"`) || !strings.Contains(body, r.certSrv.URL+"/cert") {
		t.Fatalf("no choice of second factor:\n%s", body)
	}
	w := r.do(t, b, "/cardauth/totp", url.Values{"tx": {tx}, "Code": {"000000"}})
	if !strings.Contains(w.Body.String(), "failed") {
		t.Fatalf("wrong code not told:\n%s", w.Body)
	}
	w = r.do(t, b, "/cardauth/totp", url.Values{"tx": {tx}, "Code": {goodTOTP}})
	got := r.receive(t, w.Body.String())
	if got.status.Code != saml.StatusSuccess || got.results[0].Method != MethodTOTP || got.results[0].Factors != 2 {
		t.Fatalf("%+v %+v", got.status, got.results)
	}
	r.noSecrets(t)
}

func TestSecondFactorClientCertificate(t *testing.T) {
	r := newRig(t, nil)
	good, key := r.ca.issue(t, 42, x509.ExtKeyUsageClientAuth)
	r.ch.certRef["42"] = "card-1"
	other, okey := r.ca.issue(t, 43, x509.ExtKeyUsageClientAuth)
	r.ch.certRef["43"] = "card-2"
	b := &browser{}
	tx := r.begin(t, b, "O-3", 250000, nil)
	r.card(t, b, tx, goodPAN, goodPW)
	post := func(cert *x509.Certificate, k any) (int, string) {
		tr := r.certSrv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: k, Leaf: cert}}
		}
		req, _ := http.NewRequest(http.MethodPost, r.certSrv.URL+"/cert", strings.NewReader(url.Values{"tx": {tx}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(b.cookie)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if _, body := post(nil, nil); !strings.Contains(body, "No certificate") {
		t.Fatalf("no certificate:\n%s", body)
	}
	if _, body := post(other, okey); !strings.Contains(body, "failed") {
		t.Fatalf("another card's certificate:\n%s", body)
	}
	code, body := post(good, key)
	got := r.receive(t, body)
	if code != 200 || got.status.Code != saml.StatusSuccess || got.results[0].Method != MethodClientCert || got.results[0].Factors != 2 {
		t.Fatalf("%d %+v %+v", code, got.status, got.results)
	}
	r.noSecrets(t)
}

func TestWrongPasswordsAndUnknownCardLook(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	tx := r.begin(t, b, "O-4", 1000, nil)
	wrongPW := r.card(t, b, tx, goodPAN, "000000")
	bu := &browser{}
	unknown := r.card(t, bu, r.begin(t, bu, "O-4u", 1000, nil), otherPAN, goodPW)
	strip := func(s string) string { // the nonce, the keypad and the transaction differ per view
		s = nonceRe.ReplaceAllString(s, "")
		s = keypadRe.ReplaceAllString(s, "")
		return attemptsRe.ReplaceAllString(s, "")
	}
	if strip(wrongPW) != strip(unknown) || !strings.Contains(wrongPW, "is wrong") {
		t.Errorf("an unknown card reads otherwise than a wrong password:\n%s\n%s", strip(wrongPW), strip(unknown))
	}
	// Lockout at the issuer's limit (3): the transaction fails, signed.
	r.card(t, b, tx, goodPAN, "000001")
	r.card(t, b, tx, goodPAN, "000002")
	body := r.card(t, b, tx, goodPAN, goodPW)
	got := r.receive(t, body)
	if got.status.SubCode != saml.CodeAuthenticationRequired || got.status.Code != saml.StatusResponder {
		t.Fatalf("after the lock: %+v", got.status)
	}
	// A new transaction of the locked card fails too.
	b2 := &browser{}
	tx2 := r.begin(t, b2, "O-5", 1000, nil)
	got = r.receive(t, r.card(t, b2, tx2, goodPAN, goodPW))
	if got.status.SubCode != saml.CodeAuthenticationRequired {
		t.Fatalf("locked card: %+v", got.status)
	}
	r.noSecrets(t)
}

func TestRateLimits(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Limits = Limits{CardPerHour: 1, CardBurst: 2, ClientPerHour: 1, ClientBurst: 100, MerchantPerMinute: 1, MerchantBurst: 100}
	})
	// Per card: the third entry of a card within the burst is refused.
	for i := range 3 {
		b := &browser{}
		tx := r.begin(t, b, "O-c"+string(rune('a'+i)), 1000, nil)
		body := r.card(t, b, tx, otherPAN, "x1")
		if i < 2 {
			if strings.Contains(body, "SAMLResponse") {
				t.Fatalf("entry %d answered", i)
			}
			continue
		}
		got := r.receive(t, body)
		if got.status.SubCode != saml.CodeLimitExceeded {
			t.Fatalf("third entry of a card: %+v", got.status)
		}
	}
	// Per client.
	r2 := newRig(t, func(c *Config) { c.Limits = Limits{CardPerHour: 100, CardBurst: 100, ClientPerHour: 1, ClientBurst: 2} })
	b := &browser{}
	tx := r2.begin(t, b, "O-x", 1000, nil)
	r2.card(t, b, tx, otherPAN, "x")
	if w := r2.do(t, b, "/cardauth/card", url.Values{"tx": {tx}, "CardNumber": {otherPAN}, "Password": {"y"}}); w.Code != http.StatusTooManyRequests {
		t.Fatalf("client over its limit: %d", w.Code)
	}
	// Per merchant.
	r3 := newRig(t, func(c *Config) { c.Limits = Limits{MerchantPerMinute: 1, MerchantBurst: 1} })
	r3.begin(t, &browser{}, "O-m1", 1000, nil)
	w := r3.start(t, &browser{}, r3.request(t, merchantID, ServiceAuthenticate, "O-m2", 1000, nil), "")
	if got := r3.receive(t, w.Body.String()); got.status.SubCode != saml.CodeLimitExceeded {
		t.Fatalf("merchant over its limit: %+v", got.status)
	}
}

func TestRequestRefusals(t *testing.T) {
	r := newRig(t, nil)
	msg := r.request(t, merchantID, ServiceAuthenticate, "O-r", 1000, nil)
	if w := r.start(t, &browser{}, msg, ""); w.Code != http.StatusOK {
		t.Fatalf("first: %d", w.Code)
	}
	w := r.start(t, &browser{}, msg, "")
	if w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "SAMLResponse") || !strings.Contains(w.Body.String(), "already used") {
		t.Fatalf("replayed SAMLRequest: %d\n%s", w.Code, w.Body)
	}
	// A requester with no HTTP-POST endpoint for the service: an error page, nothing posted.
	w = r.start(t, &browser{}, r.request(t, noEndID, ServiceAuthenticate, "O-n", 1000, nil), "")
	if w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "SAMLResponse") {
		t.Fatalf("no endpoint: %d\n%s", w.Code, w.Body)
	}
	// A tampered request.
	bad := bytes.Replace(r.request(t, merchantID, ServiceAuthenticate, "O-t", 1000, nil), []byte(`Amount="1000"`), []byte(`Amount="10"`), 1)
	if w := r.start(t, &browser{}, bad, ""); w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "SAMLResponse") {
		t.Fatalf("tampered: %d", w.Code)
	}
	// No acquirer: a signed InvalidPayload.
	w = r.start(t, &browser{}, r.request(t, merchantID, ServiceAuthenticate, "O-p", 1000, func(p *ecml.Payload) { p.CardAuth = nil }), "")
	if got := r.receive(t, w.Body.String()); got.status.SubCode != saml.CodeInvalidPayload {
		t.Fatalf("no acquirer: %+v", got.status)
	}
	// Another browser cannot post to the transaction.
	b := &browser{}
	tx := r.begin(t, b, "O-b", 1000, nil)
	if w := r.do(t, &browser{}, "/cardauth/card", url.Values{"tx": {tx}, "CardNumber": {goodPAN}, "Password": {goodPW}}); w.Code != http.StatusNotFound {
		t.Fatalf("another browser: %d", w.Code)
	}
	// Expiry.
	r.clock.Advance(11 * time.Minute)
	if got := r.receive(t, r.card(t, b, tx, goodPAN, goodPW)); got.status.SubCode != saml.CodeAuthenticationRequired || !strings.Contains(got.status.Message, "timed out") {
		t.Fatalf("expired: %+v", got.status)
	}
}

func TestNoJSPage(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	w := r.start(t, b, r.request(t, merchantID, ServiceAuthenticate, "O-j", 1000, func(p *ecml.Payload) { p.Ecom.Merchant = "Famous Bank Shop" }), "")
	body := w.Body.String()
	// The shop is named as registered, not as the request calls itself.
	if !strings.Contains(body, "Registered Shop") || strings.Contains(body, "Famous Bank Shop") {
		t.Error("the page does not name the shop by its registered display name")
	}
	if !strings.Contains(body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
		t.Error("no viewport meta")
	}
	// Without JavaScript the form posts a plain password field: nothing
	// in it needs the script.
	if !strings.Contains(body, `<input type="password" id="password" name="Password"`) || !strings.Contains(body, `<button type="submit">`) {
		t.Error("no plain password field or submit button")
	}
	csp := w.Header().Get("Content-Security-Policy")
	nonce := nonceRe.FindStringSubmatch(body)
	if nonce == nil || !strings.Contains(csp, "script-src 'nonce-"+nonce[1]+"'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Count(body, "<script") != strings.Count(body, `<script nonce="`) {
		t.Error("a script without the nonce")
	}
	// The keypad is shuffled per view.
	k1 := keypadRe.FindString(body)
	k2 := keypadRe.FindString(r.start(t, &browser{}, r.request(t, merchantID, ServiceAuthenticate, "O-k", 1000, nil), "").Body.String())
	k3 := keypadRe.FindString(r.start(t, &browser{}, r.request(t, merchantID, ServiceAuthenticate, "O-l", 1000, nil), "").Body.String())
	if k1 == "" || (k1 == k2 && k2 == k3) {
		t.Errorf("keypad not shuffled: %s %s %s", k1, k2, k3)
	}
}

func TestVirtualNumber(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	// The merchant asks for no merchant lock: a number issued during an
	// authentication is locked to it all the same.
	tx := r.begin(t, b, "O-v", 30000, func(p *ecml.Payload) { p.CardAuth.VirtualCard, p.CardAuth.MerchantLock = "true", "false" })
	got := r.receive(t, r.card(t, b, tx, goodPAN, goodPW))
	if got.status.Code != saml.StatusSuccess || got.payload.VirtualCard == nil || got.payload.VirtualCard.Number != "" {
		t.Fatalf("%+v %+v", got.status, got.payload.VirtualCard)
	}
	ctl := r.ch.issued[0]
	if !ctl.SingleUse || ctl.Merchant != merchantID || ctl.MaxAmount != 30000 {
		t.Errorf("controls %+v", ctl)
	}
	if got.results[0].CardRef == ecml.MaskPAN(goodPAN) {
		t.Error("the result names the real card")
	}
	// vcn:issue: the number shown to the cardholder, encrypted for the requester.
	b2 := &browser{}
	w := r.start(t, b2, r.request(t, merchantID, ServiceVCNIssue, "O-w", 50000, func(p *ecml.Payload) { p.CardAuth = nil }), "")
	tx2 := field(t, txRe, w.Body.String())
	body := r.card(t, b2, tx2, goodPAN, goodPW)
	if !strings.Contains(body, "404143337") || strings.Contains(body, `id="kecis-post"></script>`) {
		t.Fatalf("virtual number not shown:\n%s", body)
	}
	got = r.receive(t, body)
	if got.payload.VirtualCard == nil || !ecml.LuhnValid(got.payload.VirtualCard.Number.Reveal()) {
		t.Fatalf("vcn:issue answer %+v", got.payload.VirtualCard)
	}
}

func TestCrossSitePostRefused(t *testing.T) {
	r := newRig(t, nil)
	b := &browser{}
	tx := r.begin(t, b, "O-s", 1000, nil)
	req := httptestPost("/cardauth/card", url.Values{"tx": {tx}, "CardNumber": {goodPAN}, "Password": {goodPW}}, b)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptestRecorder()
	r.e.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", w.Code)
	}
}

// TestOnPostgres: the page's transactions on PostgreSQL (the migrations of
// both dialects): a password, a wrong code and a TOTP second factor, and
// the transaction's row holds no card number or code.
func TestOnPostgres(t *testing.T) {
	r := newRigOn(t, sqltest.TestPostgresDSN(t), nil)
	b := &browser{}
	tx := r.begin(t, b, "O-PG", 100000, nil)
	if body := r.card(t, b, tx, goodPAN, goodPW); !strings.Contains(body, `name="Code"`) {
		t.Fatalf("no second factor asked:\n%s", body)
	}
	if w := r.do(t, b, "/cardauth/totp", url.Values{"tx": {tx}, "Code": {"000000"}}); !strings.Contains(w.Body.String(), "failed") {
		t.Fatalf("wrong code not told:\n%s", w.Body)
	}
	w := r.do(t, b, "/cardauth/totp", url.Values{"tx": {tx}, "Code": {goodTOTP}})
	got := r.receive(t, w.Body.String())
	if got.status.Code != saml.StatusSuccess || got.results[0].Method != MethodTOTP || got.results[0].Factors != 2 {
		t.Fatalf("%+v %+v", got.status, got.results)
	}
	r.noSecrets(t)
}

// TestAcquirerRoles: the acquirer must be a PG — a tester only where the
// configuration admits it (a test federation).
func TestAcquirerRoles(t *testing.T) {
	toTester := func(p *ecml.Payload) { p.CardAuth.Acquirer = testerID }
	r := newRig(t, nil)
	w := r.start(t, &browser{}, r.request(t, merchantID, ServiceAuthenticate, "O-ar", 1000, toTester), "")
	if got := r.receive(t, w.Body.String()); got.status.SubCode != saml.CodeInvalidPayload || !strings.Contains(got.status.Message, "not an active PG") {
		t.Fatalf("a tester as acquirer by default: %+v", got.status)
	}
	r = newRig(t, func(c *Config) { c.AcquirerRoles = []metadata.Role{metadata.RolePG, metadata.RoleTester} })
	b := &browser{}
	tx := r.begin(t, b, "O-at", 1000, toTester)
	if got := r.receive(t, r.card(t, b, tx, goodPAN, goodPW)); got.status.Code != saml.StatusSuccess {
		t.Fatalf("a tester admitted as acquirer: %+v", got.status)
	}
}
