package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
)

// htmlForm is a form of a page: its action and its hidden fields.
type htmlForm struct {
	Action string
	Fields url.Values
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*\saction="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// pageForm is the form of page whose action ends with suffix.
func pageForm(t *testing.T, page, suffix string) htmlForm {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(page, -1) {
		f := htmlForm{Action: html.UnescapeString(m[1]), Fields: url.Values{}}
		if !strings.HasSuffix(f.Action, suffix) {
			continue
		}
		for _, in := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			f.Fields.Add(in[1], html.UnescapeString(in[2]))
		}
		return f
	}
	t.Fatalf("no form posting to …%s in the page:\n%s", suffix, page)
	return htmlForm{}
}

// plainBrowser is a browser without JavaScript: form posts with a cookie
// jar, trusting the issuer's TLS certificate (the page's).
type plainBrowser struct {
	t *testing.T
	c *http.Client
}

func newPlainBrowser(t *testing.T, d *Demo) *plainBrowser {
	t.Helper()
	ks, err := load(d.path("issuer", "tls"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ks.cert)
	jar, _ := cookiejar.New(nil)
	return &plainBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// post submits form f with the extra fields.
func (b *plainBrowser) post(f htmlForm, extra url.Values) (int, string) {
	b.t.Helper()
	v := url.Values{}
	for k, vs := range f.Fields {
		v[k] = vs
	}
	for k, vs := range extra {
		v[k] = vs
	}
	resp, err := b.c.PostForm(f.Action, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", f.Action, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// authenticate takes the page that carries a cardauth request (the
// auto-submitting form) through the issuer's page without JavaScript:
// the card number and its authentication password, then a TOTP code of
// the card's seed at the wall clock (the issuer's authentication clock,
// whatever Settle skipped) when a second factor is asked. It
// returns the answer's form (SAMLResponse, RelayState) and whether a
// second factor was asked.
func (b *plainBrowser) authenticate(d *Demo, start string, c TestCard) (htmlForm, bool) {
	b.t.Helper()
	code, page := b.post(pageForm(b.t, start, CardAuthPagePath), nil)
	if code != http.StatusOK || !strings.Contains(page, `name="CardNumber"`) {
		b.t.Fatalf("the issuer's page: HTTP %d\n%s", code, page)
	}
	code, page = b.post(pageForm(b.t, page, CardAuthPagePath+"/card"), url.Values{"CardNumber": {c.PAN.Reveal()}, "Password": {c.AuthPassword}})
	if code != http.StatusOK {
		b.t.Fatalf("the card step: HTTP %d\n%s", code, page)
	}
	second := strings.Contains(page, `name="Code"`)
	if second {
		if !strings.Contains(page, CardAuthCertPath) {
			b.t.Errorf("the second factor's page offers no client certificate:\n%s", page)
		}
		otp, err := totp.GenerateCode(c.TOTPSeed, d.wallNow())
		if err != nil {
			b.t.Fatal(err)
		}
		code, page = b.post(pageForm(b.t, page, CardAuthPagePath+"/totp"), url.Values{"Code": {otp}})
		if code != http.StatusOK {
			b.t.Fatalf("the TOTP step: HTTP %d\n%s", code, page)
		}
	}
	return pageForm(b.t, page, ""), second
}

// shopPay starts a purchase at the shop's card-company checkout.
func (b *plainBrowser) shopPay(d *Demo, product string, virtual bool) string {
	b.t.Helper()
	f := url.Values{"issuer": {IssuerID}, "product": {product}}
	if virtual {
		f.Set("virtual", "true")
	}
	code, page := b.post(htmlForm{Action: d.ShopURL + shopCardAuthPath}, f)
	if code != http.StatusOK {
		b.t.Fatalf("the shop's cardauth checkout: HTTP %d\n%s", code, page)
	}
	return page
}

// outcomeField is the text of the element with id on the shop's outcome page.
func outcomeField(page, id string) string {
	m := regexp.MustCompile(`id="` + id + `"[^>]*>([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(strings.TrimSpace(m[1]))
}

// ledgerApproval is the issuer's approval number with card c.
func ledgerApproval(t *testing.T, d *Demo, c TestCard, number string) *issuer.Approval {
	t.Helper()
	ctx := context.Background()
	ic, err := d.Issuer.FindCard(ctx, c.PAN)
	if err != nil {
		t.Fatal(err)
	}
	as, err := d.Issuer.CardApprovals(ctx, ic.ID, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	for i := range as {
		if as[i].Number == number {
			return &as[i]
		}
	}
	t.Fatalf("the issuer's ledger has no approval %s", number)
	return nil
}

// TestCardAuthWithoutJavaScript: cardholder authentication at the demo
// as a browser without JavaScript makes it (plain form posts, KECIS
// §15.7): at the shop's card-company checkout a purchase of 150,000 KRW,
// at the policy's threshold, asks on the issuer's page for the password
// and a second factor — a TOTP code here —, returns to the shop with the
// signed answer, and the shop's card:approve through the PG, with the
// AAV, is approved: the issuer's ledger records it authenticated by the
// AAV. Then, as Demo shop's own code: an answer read with the shop's
// front channel, whose AAV is refused AuthenticationRequired for another
// amount, approved for its own, and refused when used again (after a
// void, at the issuer).
func TestCardAuthWithoutJavaScript(t *testing.T) {
	d, _, logs := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	ctx := context.Background()
	c := d.Cards[0]
	b := newPlainBrowser(t, d)

	answer, second := b.authenticate(d, b.shopPay(d, "keyboard", false), c)
	if !second {
		t.Fatal("150,000 KRW asked for no second factor")
	}
	if !strings.HasPrefix(answer.Action, d.ShopURL+shopCardAuthReturnPath) || answer.Fields.Get("SAMLResponse") == "" {
		t.Fatalf("the answer's form: %+v", answer.Action)
	}
	code, page := b.post(answer, nil)
	order, approval := outcomeField(page, "order"), outcomeField(page, "approval")
	if code != http.StatusOK || order == "" || approval == "" || !strings.Contains(page, `data-state="approved"`) ||
		!strings.Contains(outcomeField(page, "method"), "TOTP") || outcomeField(page, "factors") != "2" || outcomeField(page, "card-seen") != c.PAN.Masked() {
		t.Fatalf("the shop's outcome: HTTP %d\n%s", code, page)
	}
	a := ledgerApproval(t, d, c, approval)
	if a.CardholderAuth != issuer.AuthValue || a.Amount != krw(150_000) || a.VirtualCard != "" || a.MerchantID != PGID {
		t.Fatalf("the issuer's approval: %+v", a)
	}
	// The same answer posted again is refused (replay).
	if code, page := b.post(answer, nil); code == http.StatusOK && strings.Contains(page, `data-state="approved"`) {
		t.Fatalf("the answer was taken twice:\n%s", page)
	}

	// The shop's own code: read an answer, then pay with its AAV.
	front, err := d.shopFront(d.Merchants[0])
	if err != nil {
		t.Fatal(err)
	}
	m := d.Merchants[0]
	order = "CA-REPLAY-1"
	tx := &ecml.Transaction{Type: "credit"}
	_ = tx.SetMoney(krw(15_000))
	form, sent, err := front.Request(ctx, IssuerID, cardauth.ServiceAuthenticate, connectors.FrontCall{IdempotencyKey: "ca-replay-1",
		Payload: &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Transaction: tx},
			CardAuth: &ecml.CardAuth{Acquirer: PGID}}}, order)
	if err != nil {
		t.Fatal(err)
	}
	answer, second = b.authenticate(d, string(form), c)
	if second {
		t.Fatal("15,000 KRW asked for a second factor")
	}
	r := httptest.NewRequest(http.MethodPost, answer.Action, strings.NewReader(answer.Fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _, err := front.ReadResponse(ctx, r, sent)
	if err != nil || !resp.Status.OK() || len(resp.AuthResults) != 1 || resp.AuthResults[0].Method != cardauth.MethodPassword {
		t.Fatalf("the answer: %v %+v", err, resp)
	}
	pay, err := (&shop{}).cardAuthPayment(resp, order, 15_000)
	if err != nil {
		t.Fatal(err)
	}
	approve := func(key string, amount int64) *card.Outcome {
		t.Helper()
		p := *pay
		p.Amount, p.IdempotencyKey = krw(amount), key
		out, err := m.Client.Approve(ctx, PGID, &p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := approve("ca-replay-more", 16_000); out.Result.Status.SubCode != saml.CodeAuthenticationRequired {
		t.Fatalf("the AAV for another amount: %+v", out.Result.Status)
	}
	out := approve("ca-replay-ok", 15_000)
	if !out.OK() {
		t.Fatalf("the AAV for its amount: %+v", out.Result.Status)
	}
	a = ledgerApproval(t, d, c, out.Approval.ApprovalNumber)
	if a.CardholderAuth != issuer.AuthValue {
		t.Fatalf("the issuer's approval: %+v", a)
	}
	// Used again: the PG refuses a second payment of the order itself,
	// so the acquirer's call reaches the issuer as the PG's would, after
	// the first approval was voided.
	if c, err := m.Client.Cancel(ctx, PGID, &card.CancelRequest{OrderID: order, ApprovalNumber: out.Approval.ApprovalNumber, IdempotencyKey: "ca-replay-void"}); err != nil || !c.OK() {
		t.Fatalf("void: %v %+v", err, c)
	}
	_, err = d.Adapter.Approve(ctx, &card.ApproveRequest{Merchant: PGID, SubMerchantID: MerchantID, OrderID: a.OrderID, Amount: krw(15_000),
		Card:      card.Card{Number: c.PAN, ExpMonth: "12", ExpYear: "2031"},
		AuthValue: pay.AuthValue, AuthResults: resp.AuthResults, IdempotencyKey: "ca-replay-again"})
	var se *connectors.StatusError
	if !errors.As(err, &se) || se.Status.SubCode != saml.CodeAuthenticationRequired || !strings.Contains(se.Status.Message, "already used") {
		t.Fatalf("the AAV used again: %v", err)
	}
	if strings.Contains(logs.String(), c.PAN.Reveal()) || strings.Contains(logs.String(), c.AuthPassword+`"`) {
		t.Fatal("a card number or password in the logs")
	}
}

// TestVCNPurchaseHidesTheRealNumber: a purchase with a virtual card number
// (KECIS §15.4): the buyer ticks it at the shop's checkout, the issuer's
// page authenticates the cardholder (password, below the threshold) and
// answers a virtual number encrypted for the PG; the shop pays with it and
// the issuer approves the real card. The PG's records — its database rows
// and files, the sidecar's, their log lines — and the merchant's (its log
// lines and the answer it read) hold the virtual number's masked form and
// never the real number, nor its masked form; the issuer's ledger names
// the virtual number it was paid with.
func TestVCNPurchaseHidesTheRealNumber(t *testing.T) {
	d, _, logs := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	ctx := context.Background()
	c := d.Cards[0]
	b := newPlainBrowser(t, d)
	answer, _ := b.authenticate(d, b.shopPay(d, "mug", true), c)
	code, page := b.post(answer, nil)
	order, approval, seen := outcomeField(page, "order"), outcomeField(page, "approval"), outcomeField(page, "card-seen")
	if code != http.StatusOK || approval == "" || !strings.HasPrefix(seen, "404143") || !strings.Contains(page, "virtual") {
		t.Fatalf("the shop's outcome: HTTP %d\n%s", code, page)
	}
	virtual := strings.TrimSpace(strings.TrimSuffix(seen, "(가상 · virtual)"))
	a := ledgerApproval(t, d, c, approval)
	if a.CardholderAuth != issuer.AuthValue || a.VirtualCard != virtual {
		t.Fatalf("the issuer's approval: %+v (virtual %s)", a, virtual)
	}
	// The PG's payment row names the virtual number.
	pay, err := d.PG.Find(ctx, d.PGMerchants[MerchantID], order)
	if err != nil || pay.MaskedCardNo != virtual {
		t.Fatalf("the PG's payment: %v %+v", err, pay)
	}
	real, realMasked := c.PAN.Reveal(), c.PAN.Masked()
	var leaks []string
	for _, f := range []string{"pg.db", "pg.db-wal", "adapter.db", "adapter.db-wal"} {
		bs, err := os.ReadFile(d.path("pg", f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(bs), real) || strings.Contains(string(bs), realMasked) {
			leaks = append(leaks, "the PG's "+f)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, real) {
			leaks = append(leaks, "a log line: "+ecml.RedactPANs(line))
		}
		// The issuer and its page know the real card; nobody else does.
		if strings.Contains(line, realMasked) && !strings.Contains(line, `"component":"cardauth"`) && !strings.Contains(line, `"component":"issuer"`) {
			leaks = append(leaks, "a log line: "+line)
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("the real card outside the issuer:\n%s", strings.Join(leaks, "\n"))
	}
	// What the PG and the shop logged names the virtual number.
	for _, what := range []string{`"msg":"demo shop: paid after cardauth"`, `"tid":"` + pay.TID + `"`} {
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			found = found || strings.Contains(line, what) && strings.Contains(line, virtual)
		}
		if !found {
			t.Errorf("no log line with %s names the virtual number %s", what, virtual)
		}
	}
}

// TestCardAuthAfterSettle: the demo's Settle moves the issuer's business
// clock a day and more ahead (twice: to tonight's cut-off and to the
// next), and its cardholder authentication does not move with it
// (issuer.Config.AuthNow, the wall clock): a purchase of 150,000 KRW with
// a virtual number authenticates with a TOTP code of the wall clock's
// step, the number carries the wall clock's day of the year and is
// approved with the AAV the page minted on the wall clock; a client
// certificate issued now is valid now.
func TestCardAuthAfterSettle(t *testing.T) {
	d, _, _ := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	ctx := context.Background()
	for range 2 {
		if _, err := d.Settle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d.Clock.Skipped() < 24*time.Hour {
		t.Fatalf("skipped %s, want a day and more", d.Clock.Skipped())
	}
	c := d.Cards[0]
	b := newPlainBrowser(t, d)
	answer, second := b.authenticate(d, b.shopPay(d, "keyboard", true), c)
	if !second {
		t.Fatal("150,000 KRW asked for no second factor")
	}
	code, page := b.post(answer, nil)
	approval, seen := outcomeField(page, "approval"), outcomeField(page, "card-seen")
	if code != http.StatusOK || approval == "" || !strings.Contains(page, `data-state="approved"`) ||
		!strings.Contains(outcomeField(page, "method"), "TOTP") {
		t.Fatalf("the shop's outcome after Settle: HTTP %d\n%s", code, page)
	}
	virtual := strings.TrimSpace(strings.TrimSuffix(seen, "(가상 · virtual)"))
	var day string
	if err := d.Issuer.DB().QueryRowContext(ctx, `SELECT day FROM vcn_number`).Scan(&day); err != nil ||
		!strings.HasPrefix(virtual, "404143") || day != d.wallNow().In(issuer.KST).Format(time.DateOnly) {
		t.Fatalf("virtual number %s issued on %q, %v: want the wall clock's day", virtual, day, err)
	}
	a := ledgerApproval(t, d, c, approval)
	if a.CardholderAuth != issuer.AuthValue || a.VirtualCard != virtual || !a.ApprovedAt.After(d.wallNow().Add(23*time.Hour)) {
		t.Fatalf("the issuer's approval: %+v (virtual %s): want the AAV, stamped on the business clock", a, virtual)
	}
	ic, err := d.Issuer.FindCard(ctx, c.PAN)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := d.Issuer.IssueClientCertificate(ctx, ic.ID, c.Holder)
	if err != nil {
		t.Fatal(err)
	}
	if now := d.wallNow(); cc.Certificate.NotBefore.After(now) || !cc.Certificate.NotAfter.After(now) {
		t.Fatalf("client certificate valid %v to %v, wall clock %v", cc.Certificate.NotBefore, cc.Certificate.NotAfter, now)
	}
}
