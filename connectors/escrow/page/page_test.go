package page

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const (
	merchant   = "https://shop.test/kecis"
	hongAcct   = "110-234-567890" // 홍길동's
	hongAcct2  = "110-234-111222" // 홍길동's second, nearly empty
	leeAcct    = "110-555-123456" // 이영희's
	settlement = "110-999-888777" // the shop's settlement account
	holding    = "holding"
)

var at0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// ledger is the bank's ledger as the engine's Holder sees it: balances by
// account number, the escrow holding account, every call idempotent by
// its key (the first outcome answers again).
type ledger struct {
	mu      sync.Mutex
	owner   map[string]string // account → customer
	balance map[string]int64
	done    map[string]string // idempotency key → reference
	calls   int
	// fail makes the next calls of an operation ("fund", "release") fail
	// with an unknown outcome.
	fail map[string]int
}

var errTimeout = errors.New("ledger: timeout")

// failing reports whether op's call fails now.
func (l *ledger) failing(op string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail[op] > 0 {
		l.fail[op]--
		return true
	}
	return false
}

func newLedger() *ledger {
	return &ledger{
		owner:   map[string]string{hongAcct: "cust-1", hongAcct2: "cust-1", leeAcct: "cust-2"},
		balance: map[string]int64{hongAcct: 1_000_000, hongAcct2: 1_000, leeAcct: 500_000},
		done:    map[string]string{},
		fail:    map[string]int{},
	}
}

func (l *ledger) move(key, from, to string, amount int64) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ref, ok := l.done[key]; ok {
		return ref, nil
	}
	if l.balance[from] < amount && from != holding {
		return "", connectors.Refuse(saml.StatusResponder, saml.CodeInsufficientFunds, "insufficient funds")
	}
	l.calls++
	l.balance[from] -= amount
	l.balance[to] += amount
	ref := fmt.Sprintf("J%04d", l.calls)
	l.done[key] = ref
	return ref, nil
}

func (l *ledger) Fund(_ context.Context, f *escrow.Funding) (string, error) {
	n := f.Account.Reveal()
	l.mu.Lock()
	own := l.owner[n]
	l.mu.Unlock()
	if l.failing("fund") {
		return "", errTimeout
	}
	if own == "" || own != f.Customer {
		return "", connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "no such account of the customer")
	}
	return l.move(f.IdempotencyKey, n, holding, f.Amount.Minor)
}

func (l *ledger) Release(_ context.Context, r *escrow.Release) (*escrow.Outcome, error) {
	if l.failing("release") {
		return nil, errTimeout
	}
	ref, err := l.move(r.IdempotencyKey, holding, r.SettlementAccount.Reveal(), r.Amount.Minor)
	if err != nil {
		return nil, err
	}
	return &escrow.Outcome{Done: true, Ref: ref}, nil
}

func (l *ledger) Refund(_ context.Context, r *escrow.Refund) (string, error) {
	return l.move(r.IdempotencyKey, holding, r.Account.Reveal(), r.Amount.Minor)
}

func (l *ledger) get(acct string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.balance[acct]
}

// customers is the bank's login: "hong" (cust-1, two accounts) and "lee"
// (cust-2), password "right-password"; three failures lock a login.
type customers struct {
	mu       sync.Mutex
	failures map[string]int
	ledger   *ledger
}

func (c *customers) Authenticate(_ context.Context, login string, pw ecml.Secret) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures[login] >= 3 {
		return "", "", twoway.ErrLoginLocked
	}
	ids := map[string][2]string{"hong": {"cust-1", "홍길동"}, "lee": {"cust-2", "이영희"}}
	id, ok := ids[login]
	if !ok || pw.Reveal() != "right-password" {
		c.failures[login]++
		return "", "", fmt.Errorf("bank: %w", twoway.ErrLoginFailed)
	}
	c.failures[login] = 0
	return id[0], id[1], nil
}

func (c *customers) Accounts(_ context.Context, id string) ([]twoway.PageAccount, error) {
	var out []twoway.PageAccount
	for i, n := range []string{hongAcct, hongAcct2, leeAcct} {
		if c.ledger.owner[n] == id {
			out = append(out, twoway.PageAccount{ID: fmt.Sprintf("acc-%d", i+1), Masked: ecml.MaskAccount(n),
				Balance: ecml.Money{Minor: c.ledger.get(n), Currency: "KRW"}, Number: ecml.Secret(n)})
		}
	}
	return out, nil
}

type rig struct {
	e      *escrow.Engine
	h      http.Handler
	clock  *testutil.Clock
	ledger *ledger
	cust   *customers
	logs   *testutil.SyncBuffer
	orders int
}

func newRig(t *testing.T, edit func(*Config)) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), testutil.NewDetRand("sealer"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join("..", "..", "..", "saml", "testdata", "keys")
	signer, err := saml.LoadSigner(filepath.Join(keys, "merchant-ec.key.pem"), filepath.Join(keys, "merchant-ec.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{clock: testutil.NewClock(at0), ledger: newLedger(), logs: &testutil.SyncBuffer{}}
	r.cust = &customers{failures: map[string]int{}, ledger: r.ledger}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.e, err = escrow.New(ctx, escrow.Config{DB: db, Holder: r.ledger, Sealer: sealer, Signer: signer, Issuer: "https://bank-a.test/kecis",
		Now: r.clock.Now, Rand: testutil.NewDetRand("engine"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Engine: r.e, Customers: r.cust, SessionKey: bytes.Repeat([]byte{5}, 32), Prefix: "/escrow", BankName: "KECIS은행",
		Shops: func(_ context.Context, m string) (Shop, error) {
			if m == merchant {
				return Shop{Name: "모두의 상점", Return: "https://shop.test/escrow/return"}, nil
			}
			return Shop{}, errors.New("not in the metadata")
		},
		Now: r.clock.Now, Rand: testutil.NewDetRand("page"), Log: log}
	if edit != nil {
		edit(&cfg)
	}
	if r.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// open opens an escrow (hold) or a collect of amount won for the shop.
func (r *rig) open(t *testing.T, hold bool, amount int64) *escrow.Escrow {
	t.Helper()
	r.orders++
	req := &escrow.OpenRequest{Merchant: merchant, Order: fmt.Sprintf("ORDER-%03d", r.orders), Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		Goods: true, SettlementBank: "081", SettlementAccount: settlement, IdempotencyKey: fmt.Sprintf("open-%d", r.orders)}
	open := r.e.Open
	if !hold {
		open = r.e.Collect
	}
	x, err := open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// browser drives the pages as a browser without script: it keeps the
// session cookie, sends Sec-Fetch-Site and resubmits the last page's csrf.
type browser struct {
	t      *testing.T
	h      http.Handler
	cookie string
	site   string
	csrf   string
	last   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (r *rig) browser(t *testing.T) *browser { return &browser{t: t, h: r.h, site: "same-origin"} }

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	body := ""
	if form != nil {
		body = form.Encode()
	}
	req := httptest.NewRequest(method, "https://bank-a.test"+path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.10:4242"
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", b.site)
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: b.cookie})
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookieName {
			b.cookie = c.Value
			if c.MaxAge < 0 {
				b.cookie = ""
			}
		}
	}
	if m := csrfRE.FindStringSubmatch(w.Body.String()); m != nil {
		b.csrf = m[1]
	}
	b.last = w.Body.String()
	return w
}

func (b *browser) get(path string) *httptest.ResponseRecorder { return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	if form == nil {
		form = url.Values{}
	}
	if b.csrf != "" && form.Get("csrf") == "" {
		form.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, path, form)
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, contains ...string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	for _, s := range contains {
		if !strings.Contains(w.Body.String(), s) {
			t.Fatalf("the page lacks %q:\n%s", s, w.Body.String())
		}
	}
}

func lacks(t *testing.T, w *httptest.ResponseRecorder, not ...string) {
	t.Helper()
	for _, s := range not {
		if strings.Contains(w.Body.String(), s) {
			t.Fatalf("the page holds %q:\n%s", s, w.Body.String())
		}
	}
}

func location(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303: %s", w.Code, w.Body.String())
	}
	return w.Header().Get("Location")
}

// arrive is the shop's form post (cross-site) and the redirect followed.
func (b *browser) arrive(ref string) *httptest.ResponseRecorder {
	b.t.Helper()
	site := b.site
	b.site = "cross-site"
	w := b.do(http.MethodPost, "/escrow/pay", url.Values{"reference": {ref}})
	b.site = site
	if got := location(b.t, w); got != "/escrow/pay/"+ref {
		b.t.Fatalf("the entry redirects to %q", got)
	}
	return b.get("/escrow/pay/" + ref)
}

func (b *browser) login(login, ref string) {
	b.t.Helper()
	f := url.Values{"login": {login}, "password": {"right-password"}}
	if ref != "" {
		f.Set("reference", ref)
	}
	want := "/escrow/"
	if ref != "" {
		want = "/escrow/pay/" + ref
	}
	if got := location(b.t, b.post("/escrow/login", f)); got != want {
		b.t.Fatalf("the login redirects to %q, want %q", got, want)
	}
}

// TestPayConfirm: the shop's post, the login, the pay page (shop name from
// the metadata, order, amount, escrow notice, masked accounts), pay →
// funded with the return button to the shop's own endpoint; the shop
// ships; the list shows carrier, tracking and the deadline; confirm →
// confirmed and the shop paid. Headers, phone layout, no script, nothing
// in clear on the pages or in the logs.
func TestPayConfirm(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	b := r.browser(t)

	w := b.arrive(x.Reference)
	expect(t, w, http.StatusOK, `action="/escrow/login"`, `name="login"`, `name="password"`,
		`<input type="hidden" name="reference" value="`+x.Reference+`">`, `name="viewport" content="width=device-width`, `lang="en"`)
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "style-src 'nonce-") || !strings.Contains(csp, "form-action 'self';") || strings.Contains(w.Body.String(), "<script") {
		t.Fatalf("CSP %q / script in the page", csp)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers %v", w.Header())
	}
	lacks(t, w, "150,000", "모두의 상점") // nothing of the order before the login

	b.login("hong", x.Reference)
	w = b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "홍길동님", "모두의 상점", x.Order, "150,000원", "the money is held by the bank until you confirm receipt",
		`action="/escrow/pay/`+x.Reference+`/pay"`, `<select id="account" name="account"`, "****-7890 · 1,000,000원", "****-1222", "Pay by 2026-12-06 19:00")
	lacks(t, w, hongAcct, "234567890", "Return to the shop", "https://shop.test/escrow/return")

	w = b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}})
	if got := location(t, w); got != "/escrow/pay/"+x.Reference {
		t.Fatalf("pay redirects to %q", got)
	}
	w = b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Paid, held by the bank", "****-7890", "/confirm", "/dispute", `name="reason"`, `maxlength="200"`,
		`action="https://shop.test/escrow/return"`, `name="reference" value="`+x.Reference+`"`, "Return to the shop")
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://shop.test;") {
		t.Fatalf("CSP %q does not admit the shop's return", csp)
	}
	lacks(t, w, hongAcct, "234567890")
	if got := r.ledger.get(hongAcct); got != 850_000 {
		t.Fatalf("buyer balance %d", got)
	}
	if got := r.ledger.get(holding); got != 150_000 {
		t.Fatalf("holding balance %d", got)
	}

	// The shop ships: the list shows the shipment and the deadline.
	r.clock.Advance(time.Hour)
	if _, err := r.e.Ship(context.Background(), merchant, escrow.Ref{Reference: x.Reference}, "CJ대한통운", "6543-2109-8765", "ship-1"); err != nil {
		t.Fatal(err)
	}
	expect(t, b.get("/escrow/"), http.StatusOK, `action="/escrow/login"`) // the session expired meanwhile
	b.login("hong", "")
	w = b.get("/escrow/")
	expect(t, w, http.StatusOK, "My escrow payments", "모두의 상점 · 150,000원", "Shipped, held by the bank", "CJ대한통운", "6543-2109-8765",
		"Auto-confirmed on", "2026-12-10 20:00", `name="from" value="list"`)

	// Confirm from the list: back to the list, confirmed, the shop paid.
	w = b.post("/escrow/pay/"+x.Reference+"/confirm", url.Values{"from": {"list"}})
	if got := location(t, w); got != "/escrow/" {
		t.Fatalf("confirm from the list redirects to %q", got)
	}
	w = b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Receipt confirmed, paid to the shop")
	lacks(t, w, "/confirm\"", "/dispute\"")
	if got := r.ledger.get(settlement); got != 150_000 {
		t.Fatalf("settlement balance %d", got)
	}
	if got := r.ledger.get(holding); got != 0 {
		t.Fatalf("holding balance %d", got)
	}
	// A second confirmation changes nothing.
	expect(t, b.post("/escrow/pay/"+x.Reference+"/confirm", nil), http.StatusSeeOther)
	if got := r.ledger.get(settlement); got != 150_000 {
		t.Fatalf("settlement balance %d after a second confirmation", got)
	}

	// Logout ends the session.
	b.get("/escrow/")
	expect(t, b.post("/escrow/logout", nil), http.StatusSeeOther)
	expect(t, b.get("/escrow/pay/"+x.Reference), http.StatusOK, `action="/escrow/login"`)

	if logs := r.logs.String(); strings.Contains(logs, "234567890") || strings.Contains(logs, "right-password") || strings.Contains(logs, "999888777") {
		t.Fatalf("the logs hold an account number or a password:\n%s", logs)
	}
}

// TestCollect: a collect is paid straight to the shop; nothing to confirm
// or dispute.
func TestCollect(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, false, 30_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	expect(t, b.get("/escrow/pay/"+x.Reference), http.StatusOK, "the money is paid straight to the shop", "30,000원")
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
	w := b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Paid to the shop", "Return to the shop")
	lacks(t, w, "/confirm\"", "/dispute\"")
	if got := r.ledger.get(settlement); got != 30_000 {
		t.Fatalf("settlement balance %d", got)
	}
	expect(t, b.post("/escrow/pay/"+x.Reference+"/confirm", nil), http.StatusConflict, "nothing to confirm")
}

// TestDispute: the buyer disputes with a reason (bounded); the reason is
// shown; confirm withdraws it; after the deadline no dispute.
func TestDispute(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 120_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	b.get("/escrow/pay/" + x.Reference)
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)

	b.get("/escrow/pay/" + x.Reference)
	expect(t, b.post("/escrow/pay/"+x.Reference+"/dispute", url.Values{"reason": {strings.Repeat("파", 201)}}), http.StatusUnprocessableEntity,
		"at most 200 characters", "Paid, held by the bank")
	expect(t, b.post("/escrow/pay/"+x.Reference+"/dispute", url.Values{"reason": {"  "}}), http.StatusUnprocessableEntity, "reason")
	expect(t, b.post("/escrow/pay/"+x.Reference+"/dispute", url.Values{"reason": {"물건이 오지 않았습니다 <b>now</b>"}}), http.StatusSeeOther)
	w := b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Disputed", "물건이 오지 않았습니다 &lt;b&gt;now&lt;/b&gt;", "/confirm\"")
	lacks(t, w, "/dispute\"", "<b>now")
	if got := r.ledger.get(holding); got != 120_000 {
		t.Fatalf("holding balance %d", got)
	}
	// Confirming withdraws the dispute.
	expect(t, b.post("/escrow/pay/"+x.Reference+"/confirm", nil), http.StatusSeeOther)
	expect(t, b.get("/escrow/pay/"+x.Reference), http.StatusOK, "Receipt confirmed")

	// Shipped, past the deadline: no dispute offered, and refused.
	y := r.open(t, true, 10_000)
	b.get("/escrow/pay/" + y.Reference)
	expect(t, b.post("/escrow/pay/"+y.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
	if _, err := r.e.Ship(context.Background(), merchant, escrow.Ref{Reference: y.Reference}, "우체국", "1234", "ship-2"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(escrow.DefaultAutoConfirmAfter)
	b.login("hong", y.Reference) // the session expired meanwhile
	w = b.get("/escrow/pay/" + y.Reference)
	expect(t, w, http.StatusOK, "Shipped", "/confirm\"")
	lacks(t, w, "/dispute\"")
	expect(t, b.post("/escrow/pay/"+y.Reference+"/dispute", url.Values{"reason": {"late"}}), http.StatusConflict, "deadline")
}

// TestOthersSeeNothing: another customer, an unknown reference and a
// malformed one get the same "no such payment" page, for every action;
// another customer may not pay an order being paid nor see it in its list.
func TestOthersSeeNothing(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	hong := r.browser(t)
	hong.arrive(x.Reference)
	hong.login("hong", x.Reference)
	hong.get("/escrow/pay/" + x.Reference)
	expect(t, hong.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)

	lee := r.browser(t)
	lee.arrive(x.Reference)
	lee.login("lee", x.Reference)
	lee.get("/escrow/") // the list: the session's token
	unknown := "ES" + strings.Repeat("A", 16)
	for _, ref := range []string{x.Reference, unknown} {
		w := lee.get("/escrow/pay/" + ref)
		expect(t, w, http.StatusNotFound, "No such payment")
		lacks(t, w, "150,000", "모두의 상점", "홍길동")
		for _, action := range []string{"pay", "confirm", "dispute"} {
			w := lee.post("/escrow/pay/"+ref+"/"+action, url.Values{"account": {"acc-3"}, "reason": {"mine"}})
			expect(t, w, http.StatusNotFound, "No such payment")
		}
	}
	expect(t, lee.get("/escrow/pay/not-a-reference"), http.StatusNotFound, "No such payment")
	expect(t, lee.do(http.MethodPost, "/escrow/pay", url.Values{"reference": {"bogus"}}), http.StatusNotFound, "No such payment")
	w := lee.get("/escrow/")
	expect(t, w, http.StatusOK, "No payments yet")
	lacks(t, w, x.Reference)
	if got := r.ledger.get(leeAcct); got != 500_000 {
		t.Fatalf("lee's balance %d", got)
	}
	// Lee cannot pay with hong's account id either (not one of lee's).
	y := r.open(t, true, 5_000)
	lee.get("/escrow/pay/" + y.Reference)
	expect(t, lee.post("/escrow/pay/"+y.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusUnprocessableEntity, "choose one of your accounts")
	if got := r.ledger.get(hongAcct); got != 850_000 {
		t.Fatalf("hong's balance %d", got)
	}
}

// TestDoublePay: the pay form submitted twice (and again with the other
// account) debits once.
func TestDoublePay(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	b.get("/escrow/pay/" + x.Reference)
	csrf := b.csrf
	for _, acct := range []string{"acc-1", "acc-1", "acc-2"} {
		expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {acct}, "csrf": {csrf}}), http.StatusSeeOther)
	}
	if got := r.ledger.get(hongAcct); got != 850_000 {
		t.Fatalf("balance %d after three submits", got)
	}
	if got := r.ledger.get(hongAcct2); got != 1_000 {
		t.Fatalf("second account %d", got)
	}
	if r.ledger.calls != 1 {
		t.Fatalf("%d ledger calls", r.ledger.calls)
	}

	// Insufficient funds: the order stays unpaid, the refusal shown.
	y := r.open(t, true, 5_000)
	b.get("/escrow/pay/" + y.Reference)
	expect(t, b.post("/escrow/pay/"+y.Reference+"/pay", url.Values{"account": {"acc-2"}}), http.StatusConflict, "insufficient funds", "/pay\"")
	expect(t, b.post("/escrow/pay/"+y.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
}

// TestLedgerPending: a debit or a release whose outcome is unknown: the
// page shows the payment under way (refreshing) or the release on its
// way, never an error; the sweep carries them on, once.
func TestLedgerPending(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	b.get("/escrow/pay/" + x.Reference)
	r.ledger.fail["fund"] = 1
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
	w := b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Paying", `http-equiv="refresh"`)
	lacks(t, w, "/pay\"")
	// Another customer cannot take the order meanwhile.
	lee := r.browser(t)
	lee.login("lee", x.Reference)
	expect(t, lee.get("/escrow/pay/"+x.Reference), http.StatusNotFound, "No such payment")
	// A second submit carries the same payment on (once).
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
	expect(t, b.get("/escrow/pay/"+x.Reference), http.StatusOK, "Paid, held by the bank")
	if got := r.ledger.get(hongAcct); got != 850_000 {
		t.Fatalf("balance %d", got)
	}

	r.ledger.fail["release"] = 1
	expect(t, b.post("/escrow/pay/"+x.Reference+"/confirm", nil), http.StatusSeeOther)
	expect(t, b.get("/escrow/pay/"+x.Reference), http.StatusOK, "Receipt confirmed", "on its way to the shop")
	r.clock.Advance(time.Minute)
	if _, err := r.e.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.login("hong", x.Reference)
	w = b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Receipt confirmed")
	lacks(t, w, "on its way")
	if got := r.ledger.get(settlement); got != 150_000 {
		t.Fatalf("settlement %d", got)
	}
}

// TestRefusals: the token, cross-site posts, no session, logins refused,
// rate-limited and locked, a forged or expired session.
func TestRefusals(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Login = ratelimit.Config{PerSecond: 1.0 / 3600, Burst: 6} })
	x := r.open(t, true, 150_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	b.get("/escrow/pay/" + x.Reference)

	// No token, a forged one, a cross-site or same-site post: refused, no money.
	expect(t, b.do(http.MethodPost, "/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusForbidden, "Request refused")
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}, "csrf": {"forged"}}), http.StatusForbidden)
	for _, site := range []string{"cross-site", "same-site"} {
		b.site = site
		expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusForbidden)
	}
	b.site = "same-origin"
	if got := r.ledger.get(hongAcct); got != 1_000_000 {
		t.Fatalf("balance %d after refused posts", got)
	}
	// Another session's token does not do.
	lee := r.browser(t)
	lee.login("lee", "")
	lee.get("/escrow/")
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}, "csrf": {lee.csrf}}), http.StatusForbidden)

	// No session: back to the login.
	anon := r.browser(t)
	if got := location(t, anon.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}})); got != "/escrow/" {
		t.Fatalf("no session redirects to %q", got)
	}
	// A forged cookie is no session.
	anon.cookie = strings.Replace(b.cookie, ".", "x.", 1)
	expect(t, anon.get("/escrow/pay/"+x.Reference), http.StatusOK, `action="/escrow/login"`)

	// Wrong logins (the bank counts them and locks), then the address's limit.
	for range 2 {
		expect(t, anon.post("/escrow/login", url.Values{"login": {"lee"}, "password": {"wrong"}}), http.StatusUnauthorized, "Wrong login or password")
	}
	expect(t, anon.post("/escrow/login", url.Values{"login": {"lee"}, "password": {"wrong"}}), http.StatusUnauthorized)
	expect(t, anon.post("/escrow/login", url.Values{"login": {"lee"}, "password": {"right-password"}, "reference": {x.Reference}}), http.StatusForbidden,
		"locked", `name="reference" value="`+x.Reference+`"`)
	if anon.cookie != "" && anon.cookie == b.cookie {
		t.Fatal("a refused login set a session")
	}
	w := anon.post("/escrow/login", url.Values{"login": {"hong"}, "password": {"right-password"}})
	expect(t, w, http.StatusTooManyRequests, "Too many attempts")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}

	// The session expires.
	r.clock.Advance(DefaultSessionTTL)
	expect(t, b.get("/escrow/"), http.StatusOK, `action="/escrow/login"`)
}

// TestExpiredOrder: an order past its pay-by time offers no payment and
// is refused.
func TestExpiredOrder(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	b := r.browser(t)
	b.arrive(x.Reference)
	b.login("hong", x.Reference)
	r.clock.Advance(escrow.DefaultPayBy)
	b.login("hong", x.Reference) // the session expired meanwhile
	w := b.get("/escrow/pay/" + x.Reference)
	expect(t, w, http.StatusOK, "Awaiting payment")
	lacks(t, w, `/pay"`)
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusConflict, "expired")
}

// directory is the metadata as DirectoryShops reads it.
type directory struct {
	connectors.Directory
	eds map[string]*metadata.EntityDescriptor
}

func (d directory) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d.eds[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

// TestDirectoryShops: the shop's name and return address come from its
// metadata: its own HTTP-POST endpoint for escrow:pay, by priority; an
// endpoint for another service or binding does not count.
func TestDirectoryShops(t *testing.T) {
	shops := DirectoryShops(directory{eds: map[string]*metadata.EntityDescriptor{
		merchant: {EntityID: merchant, DisplayName: "모두의 상점", Endpoints: []metadata.Endpoint{
			{Service: escrow.ServicePay, Binding: saml.BindingSOAP, Location: "https://shop.test/soap"},
			{Service: escrow.ServiceOpen, Binding: saml.BindingHTTPPOST, Location: "https://shop.test/open"},
			{Service: escrow.ServicePay, Binding: saml.BindingHTTPPOST, Location: "https://shop.test/second", Priority: 2},
			{Service: escrow.ServicePay, Binding: saml.BindingHTTPPOST, Location: "https://shop.test/first", Priority: 1},
		}},
		"https://bare.test": {EntityID: "https://bare.test"},
	}})
	ctx := context.Background()
	for id, want := range map[string]Shop{
		merchant:              {Name: "모두의 상점", Return: "https://shop.test/first"},
		"https://bare.test":   {Name: "https://bare.test"},
		"https://nobody.test": {Name: "https://nobody.test"},
	} {
		if got, err := shops(ctx, id); err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", id, got, err, want)
		}
	}
}

// TestNewRefusesBadConfig: no engine, a short key, a bad prefix.
func TestNewRefusesBadConfig(t *testing.T) {
	r := newRig(t, nil)
	for _, c := range []Config{
		{Customers: r.cust, SessionKey: bytes.Repeat([]byte{1}, 32)},
		{Engine: r.e, Customers: r.cust, SessionKey: []byte("short")},
		{Engine: r.e, Customers: r.cust, SessionKey: bytes.Repeat([]byte{1}, 32), Prefix: "/escrow/"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c.Prefix)
		}
	}
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden.html")

// golden compares a page with testdata/name.golden.html (go test -update
// rewrites it): the pages' whole HTML, reviewed once, kept stable.
func golden(t *testing.T, name string, w *httptest.ResponseRecorder) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.html")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, w.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Body.String(); got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, got)
	}
}

// TestGolden: the login, the pay page, a shipped escrow and the list, as
// a fixed sequence renders them (deterministic clock and random).
func TestGolden(t *testing.T) {
	r := newRig(t, nil)
	x := r.open(t, true, 150_000)
	b := r.browser(t)
	golden(t, "login", b.arrive(x.Reference))
	b.login("hong", x.Reference)
	golden(t, "pay", b.get("/escrow/pay/"+x.Reference))
	expect(t, b.post("/escrow/pay/"+x.Reference+"/pay", url.Values{"account": {"acc-1"}}), http.StatusSeeOther)
	if _, err := r.e.Ship(context.Background(), merchant, escrow.Ref{Reference: x.Reference}, "CJ대한통운", "6543-2109-8765", "ship-1"); err != nil {
		t.Fatal(err)
	}
	golden(t, "shipped", b.get("/escrow/pay/"+x.Reference))
	golden(t, "list", b.get("/escrow/"))
	golden(t, "notfound", b.get("/escrow/pay/ES"+strings.Repeat("A", 16)))
}
