package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/testutil"
)

// newPageClient is a person without JavaScript on the pages at base (a
// shop's, a bank's): cookies kept, redirects not followed.
func newPageClient(t *testing.T, base string) *twoWayClient {
	return &twoWayClient{t: t, base: base, c: &http.Client{Jar: &plainJar{c: map[string]*http.Cookie{}}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// newEscrowBuyer is a buyer without JavaScript on bank b's buyer pages,
// on its KECIS listener (HTTPS, the bank's TLS certificate trusted).
func newEscrowBuyer(t *testing.T, d *Demo, b *Bank) *twoWayClient {
	t.Helper()
	ks, err := load(d.path(bankDir(b), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ks.cert)
	c := newPageClient(t, b.KECIS)
	c.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return c
}

// path is u's path under the client's base (the forms' absolute actions).
func (c *twoWayClient) path(u string) string {
	c.t.Helper()
	if !strings.HasPrefix(u, c.base+"/") {
		c.t.Fatalf("%s is not under %s", u, c.base)
	}
	return strings.TrimPrefix(u, c.base)
}

// returnToShop follows bank A's "return to the shop" form of page to the
// shop's order page and returns its path.
func returnToShop(t *testing.T, shop *twoWayClient, page string) string {
	t.Helper()
	rf := pageForm(t, page, shopCashReturnPath)
	code, loc, body := shop.do(http.MethodPost, shop.path(rf.Action), rf.Fields)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, shopCashOrdersPath) {
		t.Fatalf("return to the shop: HTTP %d %s\n%s", code, loc, body)
	}
	return loc
}

var dataStateRE = regexp.MustCompile(`id="state" data-state="([^"]*)"`)

// orderState is the state the shop's order page shows.
func orderState(t *testing.T, page string) string {
	t.Helper()
	m := dataStateRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no state on the order page:\n%s", page)
	}
	return m[1]
}

// cashPurchase starts a cash purchase of product at the shop and returns
// the page that sends the buyer to bank A, and the form that does.
func cashPurchase(t *testing.T, d *Demo, shop *twoWayClient, product string) (string, htmlForm) {
	t.Helper()
	code, _, page := shop.do(http.MethodPost, shopCashPath, url.Values{"product": {product}})
	if code != http.StatusOK {
		t.Fatalf("POST /cash: HTTP %d\n%s", code, page)
	}
	f := pageForm(t, page, EscrowPath+"/pay")
	if f.Action != d.Banks[0].EscrowPayURL || f.Fields.Get(escrow.FieldReference) == "" {
		t.Fatalf("the form to bank A: %+v", f)
	}
	return page, f
}

// payAtBank takes the buyer from the shop's form through bank A's page:
// the entry, the login when there is no session, the pay form with the
// account. It returns the escrow's page after paying.
func payAtBank(t *testing.T, buyer *twoWayClient, f htmlForm, c *BankCustomer) string {
	t.Helper()
	code, loc, body := buyer.do(http.MethodPost, buyer.path(f.Action), f.Fields)
	if code != http.StatusSeeOther {
		t.Fatalf("the escrow:pay entry: HTTP %d\n%s", code, body)
	}
	page := buyer.get(loc)
	if strings.Contains(page, `name="password"`) {
		loc = buyer.submit(page, EscrowPath+"/login", url.Values{"login": {c.Login}, "password": {c.Password}})
		page = buyer.get(loc)
	}
	ref := f.Fields.Get(escrow.FieldReference)
	if !strings.Contains(page, "Demo shop") || !strings.Contains(page, "150,000원") && !strings.Contains(page, "30,000원") {
		t.Errorf("the pay page names no shop or amount:\n%s", page)
	}
	loc = buyer.submit(page, "/pay/"+ref+"/pay", url.Values{"account": {c.Accounts[0].ID}})
	return buyer.get(loc)
}

// TestEscrowPurchase drives the cash checkout over HTTP without
// JavaScript (docs/escrow.md "In the demo"): a 150,000 KRW order of
// shipped goods asks transfer:collect first, the hub's kr-2006 policy
// refuses it (PolicyViolation) and the shop opens escrow:open instead;
// the buyer logs in at bank A's page and pays (bank A holds the money);
// the page returns the buyer to the shop's order page; the shop marks it
// shipped (escrow:ship); the buyer confirms receipt on bank A's page and
// bank A releases the money to the shop's settlement account at bank B
// through the hub. A 30,000 KRW order goes through transfer:collect
// directly. Both banks' ledgers balance; no account number is in a log.
func TestEscrowPurchase(t *testing.T) {
	d, logs := startBanksDemo(t)
	ctx := context.Background()
	a, b := d.Banks[0], d.Banks[1]
	jiho := a.Customer("jiho")
	buyer0, seller0 := balance(t, a, "jiho"), balance(t, b, "demoshop")
	shop := newPageClient(t, d.ShopURL)
	buyer := newEscrowBuyer(t, d, a)
	if page := shop.get("/"); !strings.Contains(page, `id="pay-cash"`) || !strings.Contains(page, "150,000원") {
		t.Fatalf("the checkout has no cash section:\n%s", page)
	}

	// 150,000 KRW of shipped goods: steered into escrow.
	page, f := cashPurchase(t, d, shop, "keyboard")
	if !strings.Contains(page, `id="steered"`) {
		t.Fatalf("not steered into escrow:\n%s", page)
	}
	// The hub's audit explains both decisions (KECIS §12.9): the collect
	// refused by the escrow rule, the escrow allowed by it.
	recs, err := d.HubStore.ListAudit(ctx, store.AuditFilter{Kind: "policy.decision"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("the hub's policy decisions: %v %d", err, len(recs))
	}
	var decided []string
	for _, r := range recs {
		if r.Actor != HubID {
			t.Errorf("a policy decision by %s", r.Actor)
		}
		switch {
		case strings.Contains(r.Detail, `"allowed":false,"refused_by":"kr-2006-escrow"`) && strings.Contains(r.Detail, escrow.ServiceCollect):
			decided = append(decided, "collect refused")
		case strings.Contains(r.Detail, `"allowed":true`) && strings.Contains(r.Detail, escrow.ServiceOpen):
			decided = append(decided, "escrow allowed")
		}
	}
	if slices.Sort(decided); !slices.Equal(decided, []string{"collect refused", "escrow allowed"}) {
		t.Fatalf("the hub's policy decisions: %v", decided)
	}
	ref := f.Fields.Get(escrow.FieldReference)
	x, err := a.Escrow.Get(ctx, ref)
	if err != nil || !x.Hold || x.Merchant != MerchantID || x.State != escrow.AwaitingPayment || !x.Goods ||
		x.SettlementBank != b.Code || x.Amount != (ecml.Money{Minor: 150_000, Currency: "KRW"}) {
		t.Fatalf("bank A's escrow: %+v %v", x, err)
	}
	page = payAtBank(t, buyer, f, jiho)
	if held, err := a.Bank.EscrowHeld(ctx); err != nil || held != 150_000 || balance(t, a, "jiho") != buyer0-150_000 {
		t.Fatalf("after paying: held %d %v, buyer debited %d", held, err, buyer0-balance(t, a, "jiho"))
	}

	// Back to the shop, which marks it shipped.
	order := returnToShop(t, shop, page)
	page = shop.get(order)
	if s := orderState(t, page); s != string(escrow.Funded) {
		t.Fatalf("order state %s", s)
	}
	shop.submit(page, "/ship", url.Values{"carrier": {"CJ대한통운"}, "tracking": {"6012-3456-7890"}})
	page = shop.get(order)
	if s := orderState(t, page); s != string(escrow.Shipped) || !strings.Contains(page, "6012-3456-7890") || !strings.Contains(page, `id="confirm-by"`) {
		t.Fatalf("after shipping: %s\n%s", s, page)
	}

	// The buyer confirms receipt on bank A's page: bank B credits the shop.
	page = buyer.get(EscrowPath + "/pay/" + ref)
	buyer.submit(page, "/pay/"+ref+"/confirm", nil)
	page = shop.get(order)
	if s := orderState(t, page); s != string(escrow.Confirmed) {
		t.Fatalf("after confirming: %s\n%s", s, page)
	}
	if got := balance(t, b, "demoshop") - seller0; got != 150_000 {
		t.Fatalf("the shop's settlement account got %d", got)
	}
	if x, err := a.Escrow.Get(ctx, ref); err != nil || x.Owed != escrow.OwesNothing || x.ReleaseRef == "" {
		t.Fatalf("released: %+v %v", x, err)
	}

	// 30,000 KRW: transfer:collect, straight to the shop.
	page, f = cashPurchase(t, d, shop, "mugs")
	if strings.Contains(page, `id="steered"`) {
		t.Fatalf("a 30,000 KRW purchase was steered into escrow:\n%s", page)
	}
	if x, err := a.Escrow.Get(ctx, f.Fields.Get(escrow.FieldReference)); err != nil || x.Hold {
		t.Fatalf("the collect: %+v %v", x, err)
	}
	payAtBank(t, buyer, f, jiho)
	if got := balance(t, b, "demoshop") - seller0; got != 180_000 {
		t.Fatalf("the shop's settlement account got %d after the collect", got)
	}
	if got := buyer0 - balance(t, a, "jiho"); got != 180_000 {
		t.Fatalf("the buyer paid %d", got)
	}

	// A dispute, answered by the shop's refund: the buyer gets it back.
	_, f = cashPurchase(t, d, shop, "keyboard")
	ref = f.Fields.Get(escrow.FieldReference)
	page = payAtBank(t, buyer, f, jiho)
	order = returnToShop(t, shop, page)
	buyer.submit(page, "/pay/"+ref+"/dispute", url.Values{"reason": {"주문하지 않은 색상이 왔습니다"}})
	page = shop.get(order)
	if s := orderState(t, page); s != string(escrow.Disputed) || !strings.Contains(page, `id="dispute"`) {
		t.Fatalf("disputed: %s\n%s", s, page)
	}
	shop.submit(page, "/refund", nil)
	if s := orderState(t, shop.get(order)); s != string(escrow.Refunded) {
		t.Fatalf("after the refund: %s", s)
	}
	if got := buyer0 - balance(t, a, "jiho"); got != 180_000 {
		t.Fatalf("after the refund the buyer paid %d", got)
	}

	// Shipped and never confirmed: the sweep confirms it once the demo's
	// clock passed the deadline, and releases it.
	_, f = cashPurchase(t, d, shop, "keyboard")
	order = returnToShop(t, shop, payAtBank(t, buyer, f, jiho))
	shop.submit(shop.get(order), "/ship", url.Values{"carrier": {"우체국택배"}, "tracking": {"1234567890123"}})
	if _, err := d.Clock.advanceTo(d.Clock.Now().Add(a.Escrow.AutoConfirmAfter() + time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.Escrow.Sweep(ctx); err != nil || rep.AutoConfirmed != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	page = shop.get(order)
	if s := orderState(t, page); s != string(escrow.Confirmed) || !strings.Contains(page, "confirmed automatically") {
		t.Fatalf("auto-confirmed: %s\n%s", s, page)
	}
	if got := balance(t, b, "demoshop") - seller0; got != 330_000 {
		t.Fatalf("the shop's settlement account got %d after the automatic confirmation", got)
	}

	for _, bk := range []*Bank{a, b} {
		rep, err := bk.Bank.CheckLedger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Escrow != 0 {
			t.Errorf("%s holds %d in escrow", bk.Name, rep.Escrow)
		}
	}
	secrets := accountForms(jiho.Accounts[0].Number, b.Customer("demoshop").Accounts[0].Number)
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold an account number")
		}
	}
	assertNoSecretInSQLite(t, filepath.Join(a.Dir, "bank.db"), secrets...)
}

// TestEscrowInTheBrowser makes the steered purchase in headless Chromium
// 360 px wide, as a person does: the keyboard by account transfer at the
// shop, the policy's notice, bank A's page (log in, pay), back to the
// shop, "Mark shipped", bank A's "my escrow payments" (confirm receipt),
// and the shop's order page saying the money was released; no page is
// wider than the screen. Bank A's pages are on its KECIS listener, whose
// development certificate Chromium is told to accept. Skipped without
// Chromium, unless CI=true.
func TestEscrowInTheBrowser(t *testing.T) {
	testutil.RequireTool(t, "chromium", "chromium")
	d, _ := startBanksDemo(t)
	a, b := d.Banks[0], d.Banks[1]
	jiho := a.Customer("jiho")
	seller0 := balance(t, b, "demoshop")
	ctx := browser(t, 90*time.Second, chromedp.Flag("ignore-certificate-errors", true))
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\n%s", what, err, body)
		}
	}
	// waitUntil waits until the page, loaded, makes js true, and checks
	// that it fits the screen.
	waitUntil := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!document.body && (`+js+`)`))
			if err == nil && ok {
				break
			}
			if time.Now().After(deadline) {
				body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
				t.Fatalf("the page does not show %s (%v):\n%s", what, err, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		if err != nil || width > 360 {
			t.Errorf("the page showing %s is %.0f px wide on a 360 px screen (%v)", what, width, err)
		}
	}
	// waitFor waits for a text that only the next page shows.
	waitFor := func(text string) {
		t.Helper()
		waitUntil(strconv.Quote(text), `document.body.innerText.includes(`+strconv.Quote(text)+`)`)
	}
	// waitState waits for the shop's order page in state.
	waitState := func(state string) {
		t.Helper()
		waitUntil("the order "+state, `!!document.querySelector('#state[data-state="`+state+`"]')`)
	}
	run("the checkout", chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(d.ShopURL+"/"),
		chromedp.WaitVisible(chromedp.ID("pay-cash")), chromedp.Click(chromedp.ID("cash-keyboard")), chromedp.Click(chromedp.ID("pay-cash")))
	waitFor("Steered into escrow")
	run("on to bank A", chromedp.Click(chromedp.ID("go-bank")))
	waitFor("Log in")
	run("login", chromedp.WaitVisible(chromedp.ID("login")), chromedp.SendKeys(chromedp.ID("login"), jiho.Login),
		chromedp.SendKeys(chromedp.ID("password"), jiho.Password), chromedp.Click(chromedp.CSS(`form[action$="/login"] button[type=submit]`)))
	waitFor("150,000원")
	run("pay", chromedp.WaitVisible(chromedp.ID("account")), chromedp.Click(chromedp.CSS(`form[action$="/pay"] button[type=submit]`)))
	waitFor("Paid, held by the bank")
	run("return to the shop", chromedp.Click(chromedp.CSS(`form[action$="`+shopCashReturnPath+`"] button[type=submit]`)))
	waitState(string(escrow.Funded))
	run("mark shipped", chromedp.WaitVisible(chromedp.ID("tracking")), chromedp.SendKeys(chromedp.ID("tracking"), "6012-3456-7890"),
		chromedp.Click(chromedp.ID("ship")))
	waitState(string(escrow.Shipped))
	order, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	run("my escrow payments", chromedp.Navigate(a.EscrowURL), chromedp.WaitVisible(chromedp.CSS(`form[action$="/confirm"] button[type=submit]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/confirm"] button[type=submit]`)))
	waitFor("Receipt confirmed, paid to the shop")
	run("the shop's order", chromedp.Navigate(order))
	waitState(string(escrow.Confirmed))
	waitFor("The money was released to the shop's settlement account")
	if got := balance(t, b, "demoshop") - seller0; got != 150_000 {
		t.Fatalf("the shop's settlement account got %d", got)
	}
}
