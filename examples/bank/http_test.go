package bank_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kecis/kecis/examples/bank"
)

// api calls the JSON API with the admin token.
func api(t *testing.T, h http.Handler, method, path, key, body string, token bool) (int, map[string]any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if token {
		req.Header.Set("Authorization", "Bearer admin-token")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Header()
}

// TestHTTP: the native API end to end — customer, account (its number
// once), deposit, transfer out and its repeat, a credit, the holder, the
// ledger; the admin token is required; the customer's page logs in and
// shows the accounts and a statement, masked; the admin page renders;
// every answer has the CSP.
func TestHTTP(t *testing.T) {
	e := newEnv(t, sqltestDSN)
	h := e.bk.Handler()
	if code, _, _ := api(t, h, "POST", "/api/v1/customers", "c1", `{"name":"홍길동","phone":"01023456789","login":"hong","password":"correct-horse-9"}`, false); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	code, c, _ := api(t, h, "POST", "/api/v1/customers", "c1", `{"name":"홍길동","phone":"01023456789","login":"hong","password":"correct-horse-9"}`, true)
	if code != 201 {
		t.Fatalf("customer: %d %v", code, c)
	}
	code, a, _ := api(t, h, "POST", "/api/v1/accounts", "a1", `{"customer_id":"`+c["ID"].(string)+`","number":"081-555-000111"}`, true)
	if code != 201 || a["number"] != "081-555-000111" {
		t.Fatalf("account: %d %v", code, a)
	}
	id := a["id"].(string)
	if code, g, _ := api(t, h, "GET", "/api/v1/accounts/"+id, "", "", true); code != 200 || g["number"] != "****-0111" {
		t.Fatalf("get account: %d %v", code, g)
	}
	if code, m, _ := api(t, h, "POST", "/api/v1/deposits", "d1", `{"account_id":"`+id+`","amount":50000}`, true); code != 201 {
		t.Fatalf("deposit: %d %v", code, m)
	}
	body := `{"from_account_id":"` + id + `","to_bank":"004","to_number":"110-222-333444","to_holder":"김영희","amount":20000}`
	code, o, _ := api(t, h, "POST", "/api/v1/transfers-out", "s1", body, true)
	if code != 201 {
		t.Fatalf("send out: %d %v", code, o)
	}
	code, o2, hd := api(t, h, "POST", "/api/v1/transfers-out", "s1", body, true)
	if code != 200 || hd.Get("Idempotent-Replayed") != "true" || o2["Reference"] != o["Reference"] {
		t.Fatalf("repeat: %d %v %v", code, o2, hd)
	}
	if code, x, _ := api(t, h, "POST", "/api/v1/transfers-out", "s2", strings.Replace(body, "20000", "40000", 1), true); code != 402 || x["code"] != "INSUFFICIENT_FUNDS" {
		t.Fatalf("short: %d %v", code, x)
	}
	if code, x, _ := api(t, h, "POST", "/api/v1/credits", "k1", `{"from_bank":"004","reference":"T1","to_number":"081555000111","amount":1000,"remitter_name":"김영희"}`, true); code != 201 || x["State"] != "credited" {
		t.Fatalf("credit: %d %v", code, x)
	}
	if code, x, _ := api(t, h, "POST", "/api/v1/holder", "", `{"number":"081-555-000111"}`, true); code != 200 || x["holder"] != "홍길동" {
		t.Fatalf("holder: %d %v", code, x)
	}
	if code, x, _ := api(t, h, "POST", "/api/v1/holder", "", `{"number":"081-555-000112"}`, true); code != 402 || x["code"] != "NO_SUCH_ACCOUNT" {
		t.Fatalf("holder of none: %d %v", code, x)
	}
	if code, x, _ := api(t, h, "GET", "/api/v1/ledger", "", "", true); code != 200 || x["ok"] != true {
		t.Fatalf("ledger: %d %v", code, x)
	}
	if code, x, _ := api(t, h, "POST", "/api/v1/deposits", "d9", `{"account_id":"`+id+`","amount":1,"extra":1}`, true); code != 400 {
		t.Fatalf("unknown field: %d %v", code, x)
	}

	// The customer's page.
	form := url.Values{"login": {"hong"}, "password": {"wrong-password"}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "wrong login or password") {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	form.Set("password", password)
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	if rec.Code != 303 || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("login: %d", rec.Code)
	}
	ck := rec.Result().Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", ck)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/accounts/"+id, nil)
	req.AddCookie(ck)
	h.ServeHTTP(rec, req)
	page := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(page, "****-0111") || !strings.Contains(page, "김영희") || !strings.Contains(page, "−20,000원") ||
		strings.Contains(page, "555-000111") || strings.Contains(page, "<script") {
		t.Fatalf("statement page %d:\n%s", rec.Code, page)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	// Tampered cookie: back to the login page.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value + "x"})
	h.ServeHTTP(rec, req)
	if rec.Code != 303 {
		t.Fatalf("tampered session: %d", rec.Code)
	}
	// Admin page.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/admin", nil)
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("admin without token: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/admin", nil)
	req.SetBasicAuth("admin", "admin-token")
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(b), "balanced") || strings.Contains(string(b), "555-000111") {
		t.Fatalf("admin page %d:\n%s", rec.Code, b)
	}
	if bank.CodeOf(nil) != "" {
		t.Fatal("CodeOf(nil)")
	}
}
