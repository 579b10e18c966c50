package twoway

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// customers is the bank's login and accounts for the pages: "hong" with
// password "right-password" is customer cust-1, "lee" is cust-2; three
// failures in a row lock a login.
type customers struct {
	mu       sync.Mutex
	failures map[string]int
}

func (c *customers) Authenticate(_ context.Context, login string, pw ecml.Secret) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures[login] >= 3 {
		return "", "", ErrLoginLocked
	}
	ids := map[string][2]string{"hong": {customer, "홍길동"}, "lee": {"cust-2", "이영희"}}
	id, ok := ids[login]
	if !ok || pw.Reveal() != "right-password" {
		c.failures[login]++
		return "", "", fmt.Errorf("bank: %w", ErrLoginFailed)
	}
	c.failures[login] = 0
	return id[0], id[1], nil
}

func (c *customers) Accounts(_ context.Context, id string) ([]PageAccount, error) {
	switch id {
	case customer:
		return []PageAccount{{ID: "acc-1", Masked: MaskAccount(remAccount), Balance: ecml.Money{Minor: 5_000_000, Currency: "KRW"}, Number: remAccount}}, nil
	case "cust-2":
		return []PageAccount{{ID: "acc-2", Masked: MaskAccount(sameAccount), Number: sameAccount}}, nil
	}
	return nil, nil
}

// browser drives the pages as a browser without script would: it keeps
// the session cookie (also over plain http, as browsers do for localhost)
// and sends Sec-Fetch-Site.
type browser struct {
	t      *testing.T
	h      http.Handler
	cookie string
	site   string // Sec-Fetch-Site of posts
	csrf   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, "https://bank-a.test"+path, body)
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

type pageRig struct {
	w    *world
	e    *Engine
	h    http.Handler
	cust *customers
}

func newPageRig(t *testing.T, edit func(*PageConfig)) *pageRig {
	return newPageRigOn(t, sqltest.TestSQLiteDSN(t), edit)
}

// newPageRigOn is newPageRig with the engine's store in the database dsn
// names.
func newPageRigOn(t *testing.T, dsn string, edit func(*PageConfig)) *pageRig {
	w := newWorldOn(t, dsn)
	e := w.engine(t, nil, nil)
	r := &pageRig{w: w, e: e, cust: &customers{failures: map[string]int{}}}
	cfg := PageConfig{Engine: e, Customers: r.cust, SessionKey: bytes.Repeat([]byte{5}, 32), Prefix: "/twoway",
		Banks: map[string]string{bankA: "KECIS은행", bankB: "다른은행"}}
	if edit != nil {
		edit(&cfg)
	}
	h, err := NewPage(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

func (r *pageRig) browser(t *testing.T) *browser {
	return &browser{t: t, h: r.h, site: "same-origin"}
}

func (r *pageRig) login(t *testing.T, login string) *browser {
	t.Helper()
	b := r.browser(t)
	expect(t, b.get("/twoway/"), http.StatusOK, `action="/twoway/login"`)
	w := b.post("/twoway/login", url.Values{"login": {login}, "password": {"right-password"}})
	expect(t, w, http.StatusSeeOther)
	expect(t, b.get("/twoway/"), http.StatusOK, `action="/twoway/start"`)
	return b
}

func transferForm(payeeBank, account, phone string) url.Values {
	return url.Values{"account": {"acc-1"}, "amount": {"150,000"}, "bank": {payeeBank}, "payee_account": {account},
		"phone": {phone}, "purpose": {PhishingPrevention}}
}

var requestPath = regexp.MustCompile(`^/twoway/t/(tw[0-9a-f]{32})$`)

// start posts the form and returns the request's id.
func (b *browser) start(form url.Values) string {
	b.t.Helper()
	w := b.post("/twoway/start", form)
	expect(b.t, w, http.StatusSeeOther)
	m := requestPath.FindStringSubmatch(w.Header().Get("Location"))
	if m == nil {
		b.t.Fatalf("start redirects to %q", w.Header().Get("Location"))
	}
	return m[1]
}

// TestPageTransfer: login at the remitter's bank, the form, the name check
// (match, with the holder's name), the remitter's confirmation, the
// payee's reply through HandleReply, the status executed; the loan's
// evidence downloads; the page's headers; nothing in clear in the logs.
func TestPageTransfer(t *testing.T) {
	r := newPageRig(t, nil)
	b := r.browser(t)
	w := b.get("/twoway/")
	expect(t, w, http.StatusOK, `name="viewport"`, `lang="en"`, "로그인", "Log in")
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "style-src 'nonce-") || !strings.Contains(csp, "form-action 'self'") || strings.Contains(w.Body.String(), "<script") {
		t.Fatalf("CSP %q / script in page", csp)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers %v", w.Header())
	}
	w = b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"right-password"}})
	expect(t, w, http.StatusSeeOther)
	ck := w.Header().Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/twoway/", "Max-Age=900"} {
		if !strings.Contains(ck, attr) {
			t.Fatalf("session cookie %q lacks %s", ck, attr)
		}
	}
	expect(t, b.get("/twoway/"), http.StatusOK, "홍길동님", "****-6789", "5,000,000원", "다른은행 (088)")

	id := b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
	w = b.get("/twoway/t/" + id)
	expect(t, w, http.StatusOK, "Match", "김민수", "150,000원", "****-4567", "010-****-4444", "/confirm")
	if strings.Contains(w.Body.String(), "1234567") || strings.Contains(w.Body.String(), "33334444") {
		t.Fatal("the page shows the payee's account or phone in clear")
	}
	expect(t, b.post("/twoway/t/"+id+"/confirm", nil), http.StatusSeeOther)
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "Awaiting the payee", `http-equiv="refresh"`, "/cancel")

	code := r.w.codeSent(t, payeePhone)
	if err := r.e.HandleReply(context.Background(), r.w.reply(payeePhone, code, r.w.messageTo(payeePhone))); err != nil {
		t.Fatal(err)
	}
	w = b.get("/twoway/t/" + id)
	expect(t, w, http.StatusOK, "Transfer executed")
	if strings.Contains(w.Body.String(), "refresh\"") || strings.Contains(w.Body.String(), "/evidence") {
		t.Fatal("an executed phishing-prevention transfer refreshes or offers an agreement")
	}
	if got := r.w.bank.balance(bankB, payeeAccount); got != 150_000 {
		t.Fatalf("payee balance %d", got)
	}

	// A mutual agreement: its evidence downloads once executed.
	f := transferForm(bankB, payeeAccount, "010-3333-4444")
	f.Set("purpose", MutualAgreement)
	f.Set("repayment", "2027-06-30")
	f.Set("rate", "4.5")
	f.Set("terms", "상환일에 원금을 일시 상환한다")
	expect(t, b.get("/twoway/"), http.StatusOK)
	id2 := b.start(f)
	expect(t, b.get("/twoway/t/"+id2), http.StatusOK, "Mutual agreement", "2027-06-30", "상환일에 원금을")
	expect(t, b.get("/twoway/t/"+id2+"/evidence"), http.StatusNotFound)
	expect(t, b.post("/twoway/t/"+id2+"/confirm", nil), http.StatusSeeOther)
	code = r.w.codeSent(t, payeePhone)
	if err := r.e.HandleReply(context.Background(), r.w.reply(payeePhone, code, r.w.messageTo(payeePhone))); err != nil {
		t.Fatal(err)
	}
	expect(t, b.get("/twoway/t/"+id2), http.StatusOK, "Transfer executed", "/twoway/t/"+id2+"/evidence")
	w = b.get("/twoway/t/" + id2 + "/evidence")
	expect(t, w, http.StatusOK, "TransferAgreement", "Signature")
	root, err := saml.ParseDocument(w.Body.Bytes(), saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := saml.VerifyElement(root, []*x509.Certificate{r.w.signer.Cert}, r.w.clock.Now()); err != nil {
		t.Fatalf("evidence does not verify: %v", err)
	}
	if !strings.Contains(w.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("evidence headers %v", w.Header())
	}

	// Another customer sees none of it.
	lee := r.login(t, "lee")
	expect(t, lee.get("/twoway/t/"+id), http.StatusNotFound)
	expect(t, lee.get("/twoway/t/"+id2+"/evidence"), http.StatusNotFound)
	expect(t, lee.post("/twoway/t/"+id+"/cancel", nil), http.StatusNotFound)

	// Logout ends the session.
	expect(t, b.post("/twoway/logout", nil), http.StatusSeeOther)
	expect(t, b.get("/twoway/"), http.StatusOK, `action="/twoway/login"`)

	logs := r.w.logs.String()
	for _, secret := range []string{"456789", "1234567", "33334444", "right-password", code} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs hold %q in clear", secret)
		}
	}
}

// TestPageNameCheck: a close match shows the holder's actual name; a no
// match shows no name and offers no confirmation (and Confirm is refused).
func TestPageNameCheck(t *testing.T) {
	r := newPageRig(t, nil)
	r.w.forced[payeePhone] = CloseMatch
	b := r.login(t, "hong")
	id := b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "Close match", "actual name is 김민수", "/confirm")

	delete(r.w.forced, payeePhone)
	expect(t, b.get("/twoway/"), http.StatusOK)
	id = b.start(transferForm(bankB, otherAccount, "010-3333-4444")) // 김철수's account, 김민수's phone
	w := b.get("/twoway/t/" + id)
	expect(t, w, http.StatusOK, "No match", "/cancel")
	if strings.Contains(w.Body.String(), "/confirm") || strings.Contains(w.Body.String(), "김철수") {
		t.Fatal("a no-match page offers confirmation or shows the holder")
	}
	expect(t, b.post("/twoway/t/"+id+"/confirm", nil), http.StatusConflict, "can only be abandoned")
	expect(t, b.post("/twoway/t/"+id+"/cancel", nil), http.StatusSeeOther)
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "Abandoned", "No money moved")
	if n := len(r.w.gw.to(payeePhone)); n != 0 {
		t.Fatalf("%d texts to the payee", n)
	}

	// An unknown account ends at once.
	expect(t, b.get("/twoway/"), http.StatusOK)
	id = b.start(transferForm(bankB, "333-22-0000000", "010-3333-4444"))
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "The transfer failed", "no such account")
}

// TestPageCancel: the remitter cancels while the payee has the code; a
// late reply moves no money.
func TestPageCancel(t *testing.T) {
	r := newPageRig(t, nil)
	b := r.login(t, "hong")
	id := b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
	expect(t, b.post("/twoway/t/"+id+"/confirm", nil), http.StatusSeeOther)
	code := r.w.codeSent(t, payeePhone)
	expect(t, b.post("/twoway/t/"+id+"/cancel", nil), http.StatusSeeOther)
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "Cancelled", "No money moved")
	if err := r.e.HandleReply(context.Background(), r.w.reply(payeePhone, code, r.w.messageTo(payeePhone))); err != nil {
		t.Fatal(err)
	}
	expect(t, b.get("/twoway/t/"+id), http.StatusOK, "Cancelled")
	if got := r.w.bank.balance(bankA, remAccount); got != 5_000_000 {
		t.Fatalf("remitter balance %d", got)
	}
}

// TestPageRefusals: wrong logins (then locked), cross-site posts, posts
// without the session's token, no session, malformed ids, bad forms.
func TestPageRefusals(t *testing.T) {
	r := newPageRig(t, nil)
	b := r.browser(t)
	expect(t, b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"wrong"}}), http.StatusUnauthorized, "Wrong login or password")
	expect(t, b.post("/twoway/login", url.Values{"login": {"nobody"}, "password": {"wrong"}}), http.StatusUnauthorized, "Wrong login or password")
	if b.cookie != "" {
		t.Fatal("a failed login set a session")
	}
	b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"wrong"}})
	b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"wrong"}})
	expect(t, b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"right-password"}}), http.StatusForbidden, "locked")

	r.cust.failures["hong"] = 0
	b = r.login(t, "hong")
	form := transferForm(bankB, payeeAccount, "010-3333-4444")
	b.site = "cross-site"
	expect(t, b.post("/twoway/start", form), http.StatusForbidden)
	expect(t, b.post("/twoway/login", url.Values{"login": {"hong"}, "password": {"right-password"}}), http.StatusForbidden)
	b.site = "same-site"
	expect(t, b.post("/twoway/start", form), http.StatusForbidden)
	b.site = "" // a browser that sends no Sec-Fetch-Site: the token decides
	bad := transferForm(bankB, payeeAccount, "010-3333-4444")
	bad.Set("csrf", "forged")
	expect(t, b.post("/twoway/start", bad), http.StatusForbidden)

	for field, value := range map[string]string{"account": "acc-2", "amount": "-5", "phone": "02-123-4567", "bank": "12"} {
		f := transferForm(bankB, payeeAccount, "010-3333-4444")
		f.Set(field, value)
		expect(t, b.post("/twoway/start", f), http.StatusUnprocessableEntity)
	}
	f := transferForm(bankB, payeeAccount, "010-3333-4444")
	f.Set("purpose", MutualAgreement) // no terms
	expect(t, b.post("/twoway/start", f), http.StatusUnprocessableEntity, "mutual agreement needs its terms")

	anon := r.browser(t)
	w := anon.get("/twoway/t/tw00000000000000000000000000000000")
	expect(t, w, http.StatusSeeOther)
	expect(t, anon.post("/twoway/start", form), http.StatusSeeOther)
	expect(t, b.get("/twoway/t/tw00000000000000000000000000000000"), http.StatusNotFound)
	expect(t, b.get("/twoway/t/not-an-id"), http.StatusNotFound)

	// A forged or expired cookie is no session.
	anon.cookie = strings.Replace(b.cookie, ".", "x.", 1)
	expect(t, anon.get("/twoway/"), http.StatusOK, `action="/twoway/login"`)
	r.w.clock.Advance(DefaultSessionTTL)
	expect(t, b.get("/twoway/"), http.StatusOK, `action="/twoway/login"`)
}

// TestPageRateLimit: a customer cannot flood; a payee's phone cannot be
// flooded, whoever asks.
func TestPageRateLimit(t *testing.T) {
	r := newPageRig(t, func(c *PageConfig) {
		c.StartPerCustomer = ratelimit.Config{PerSecond: 1.0 / 3600, Burst: 4}
		c.StartPerPhone = ratelimit.Config{PerSecond: 1.0 / 3600, Burst: 2}
	})
	b := r.login(t, "hong")
	b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
	b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
	w := b.post("/twoway/start", transferForm(bankB, payeeAccount, "010-3333-4444"))
	expect(t, w, http.StatusTooManyRequests, "Too many transfer requests")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	b.start(transferForm(bankB, otherAccount, "010-5555-6666")) // another phone: the customer's fourth
	expect(t, b.post("/twoway/start", transferForm(bankB, otherAccount, "010-7777-8888")), http.StatusTooManyRequests)
	r.w.clock.Advance(2 * 3600e9)
	b = r.login(t, "hong") // the session expired meanwhile
	b.start(transferForm(bankB, payeeAccount, "010-3333-4444"))
}
