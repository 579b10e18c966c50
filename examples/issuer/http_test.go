package issuer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
)

const adminToken = "admin-token-for-tests"

// client calls an issuer's HTTP API in process.
type client struct {
	t testing.TB
	h http.Handler
}

type response struct {
	code   int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends a request; body is JSON-encoded unless it is a string.
func (c client) do(method, path, idemKey string, admin bool, body any) response {
	c.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := response{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			c.t.Fatalf("%s %s: response is not JSON: %v\n%s", method, path, err, res.raw)
		}
	}
	return res
}

func (r response) want(t testing.TB, code int, errCode issuer.Code) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.raw)
	}
	if errCode != "" && r.body["code"] != string(errCode) {
		t.Fatalf("code %v, want %s: %s", r.body["code"], errCode, r.raw)
	}
	if errCode != "" {
		if m, _ := r.body["message"].(string); m == "" {
			t.Fatalf("error without a message: %s", r.raw)
		}
	}
	return r
}

func (r response) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

func (r response) num(path ...string) int64 {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	f, _ := v.(float64)
	return int64(f)
}

func httpIssueCard(t testing.TB, c client, key string, limit int64) response {
	t.Helper()
	return c.do("POST", "/api/v1/cards", key, true, map[string]any{
		"type": "credit", "holder_name": "홍길동", "holder_phone": testPhone,
		"birth_date": testBirth, "password": testPassword, "limit": limit,
	}).want(t, http.StatusCreated, "")
}

func httpApproveBody(card response, order string, amount int64, keyIn bool) map[string]any {
	cd := map[string]any{
		"number": card.str("number"), "exp_month": card.num("card", "exp_month"), "exp_year": card.num("card", "exp_year"),
	}
	if keyIn {
		cd["password_prefix"], cd["birth_date"] = testPrefix, testBirth
	}
	return map[string]any{
		"merchant_id": merchant, "merchant_name": merchantName, "order_id": order,
		"amount": amount, "currency": "KRW", "card": cd,
	}
}

func TestHTTPAPI(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN, func(c *issuer.Config) { c.AdminToken = adminToken })
	c := client{t: t, h: e.iss.Handler()}

	c.do("POST", "/api/v1/cards", "k0", false, map[string]any{"type": "credit"}).want(t, 401, issuer.CodeUnauthorized)
	card := httpIssueCard(t, c, "card-1", 100_000)
	pan := card.str("number")
	if !ecml.LuhnValid(pan) || card.str("card", "masked") != ecml.MaskPAN(pan) || card.str("card", "holder_phone") != "010-****-6789" {
		t.Fatalf("issued card: %s", card.raw)
	}
	if card.header.Get("Cache-Control") != "no-store" {
		t.Error("the response with the card number may be cached")
	}
	list := c.do("GET", "/api/v1/cards", "", true, nil).want(t, 200, "")
	if strings.Contains(list.raw, pan) || !strings.Contains(list.raw, ecml.MaskPAN(pan)) {
		t.Errorf("card list: %s", list.raw)
	}
	c.do("GET", "/api/v1/cards/"+card.str("card", "id"), "", true, nil).want(t, 200, "")
	c.do("GET", "/api/v1/cards/card_nope", "", true, nil).want(t, 404, issuer.CodeNotFound)

	// Approve, repeat, conflict.
	body := httpApproveBody(card, "ORD-1", 15_000, true)
	a := c.do("POST", "/api/v1/approvals", "ap-1", false, body).want(t, 201, "")
	number := a.str("approval_number")
	if len(number) != 8 || a.str("status") != "approved" || a.num("amount") != 15_000 ||
		a.str("cardholder_auth") != "keyin" || a.str("card", "masked") != ecml.MaskPAN(pan) {
		t.Fatalf("approval: %s", a.raw)
	}
	again := c.do("POST", "/api/v1/approvals", "ap-1", false, body).want(t, 201, "")
	if again.str("approval_number") != number || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %s %v", again.raw, again.header)
	}
	body["amount"] = 15_001
	c.do("POST", "/api/v1/approvals", "ap-1", false, body).want(t, 422, issuer.CodeIdempotencyConflict)
	c.do("POST", "/api/v1/approvals", "", false, body).want(t, 400, issuer.CodeInvalidRequest)
	c.do("POST", "/api/v1/approvals", "ap-2", false, httpApproveBody(card, "ORD-2", 85_001, false)).
		want(t, 402, issuer.CodeLimitExceeded)
	bad := httpApproveBody(card, "ORD-3", 1000, false)
	bad["card"].(map[string]any)["password_prefix"] = "11"
	r := c.do("POST", "/api/v1/approvals", "ap-3", false, bad).want(t, 402, issuer.CodeInvalidCard)
	if strings.Contains(r.raw, pan) {
		t.Error("a decline echoes the card number")
	}
	c.do("POST", "/api/v1/approvals", "ap-4", false, `{"merchant_id":"M","extra":1}`).want(t, 400, issuer.CodeInvalidRequest)
	c.do("POST", "/api/v1/approvals", "ap-5", false, `{"merchant_id":`).want(t, 400, issuer.CodeInvalidRequest)
	c.do("POST", "/api/v1/approvals", "ap-6", false, `{} {}`).want(t, 400, issuer.CodeInvalidRequest)

	// Inquire.
	got := c.do("GET", "/api/v1/approvals/"+number+"?merchant="+merchant, "", false, nil).want(t, 200, "")
	if got.str("order_id") != "ORD-1" || got.str("status") != "approved" {
		t.Errorf("inquire: %s", got.raw)
	}
	got = c.do("GET", "/api/v1/approvals?merchant="+merchant+"&order=ORD-1", "", false, nil).want(t, 200, "")
	if got.str("approval_number") != number {
		t.Errorf("inquire by order: %s", got.raw)
	}
	c.do("GET", "/api/v1/approvals/"+number+"?merchant=OTHER", "", false, nil).want(t, 404, issuer.CodeNotFound)
	c.do("GET", "/api/v1/approvals?merchant="+merchant, "", false, nil).want(t, 400, issuer.CodeInvalidRequest)

	// Cancel.
	x := c.do("POST", "/api/v1/approvals/"+number+"/cancel", "cx-1", false, map[string]any{"merchant_id": merchant}).want(t, 200, "")
	if x.str("status") != "cancelled" || x.str("cancelled_at") == "" {
		t.Errorf("cancel: %s", x.raw)
	}
	c.do("POST", "/api/v1/approvals/"+number+"/cancel", "cx-2", false, map[string]any{"merchant_id": merchant}).
		want(t, 409, issuer.CodeAlreadyCancelled)

	// Settle, refund.
	b := c.do("POST", "/api/v1/approvals", "ap-7", false, httpApproveBody(card, "ORD-7", 20_000, false)).want(t, 201, "")
	bn := b.str("approval_number")
	c.do("POST", "/api/v1/approvals/"+bn+"/refunds", "rf-0", false,
		map[string]any{"merchant_id": merchant, "amount": 1000, "currency": "KRW"}).want(t, 409, issuer.CodeNotSettled)
	c.do("POST", "/api/v1/settlement/run", "", false, nil).want(t, 401, issuer.CodeUnauthorized)
	e.pastCutOff()
	s := c.do("POST", "/api/v1/settlement/run", "", true, nil).want(t, 200, "")
	if s.num("count") != 1 || s.num("totals", "KRW") != 20_000 || s.str("batch_id") == "" {
		t.Errorf("settlement: %s", s.raw)
	}
	c.do("POST", "/api/v1/approvals/"+bn+"/cancel", "cx-3", false, map[string]any{"merchant_id": merchant}).
		want(t, 409, issuer.CodeAlreadySettled)
	rf := c.do("POST", "/api/v1/approvals/"+bn+"/refunds", "rf-1", false,
		map[string]any{"merchant_id": merchant, "amount": 7_000, "currency": "KRW", "reason": "one item returned"}).want(t, 201, "")
	if rf.num("refund", "amount") != 7_000 || rf.str("approval", "status") != "partially_refunded" ||
		rf.num("approval", "refundable_amount") != 13_000 {
		t.Errorf("refund: %s", rf.raw)
	}
	c.do("POST", "/api/v1/approvals/"+bn+"/refunds", "rf-2", false,
		map[string]any{"merchant_id": merchant, "amount": 13_001, "currency": "KRW"}).want(t, 422, issuer.CodeRefundExceeded)

	// The card's ledger: both approvals, the cancelled one too, in
	// approval-number order, with the refunded total; admin only.
	ledger := c.do("GET", "/api/v1/cards/"+card.str("card", "id")+"/approvals", "", true, nil).want(t, 200, "")
	var l struct {
		Approvals []struct {
			Number   string `json:"approval_number"`
			Status   string `json:"status"`
			Refunded int64  `json:"refunded_amount"`
		} `json:"approvals"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal([]byte(ledger.raw), &l); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, a := range l.Approvals {
		states[a.Number] = fmt.Sprintf("%s %d", a.Status, a.Refunded)
	}
	if len(l.Approvals) != 2 || l.Next != "" || states[number] != "cancelled 0" || states[bn] != "partially_refunded 7000" ||
		l.Approvals[0].Number > l.Approvals[1].Number || ecml.ContainsPAN(ledger.raw) {
		t.Errorf("card ledger: %s", ledger.raw)
	}
	after := c.do("GET", "/api/v1/cards/"+card.str("card", "id")+"/approvals?after="+l.Approvals[1].Number, "", true, nil).want(t, 200, "")
	if !strings.Contains(after.raw, `"approvals":[]`) {
		t.Errorf("the page after the last: %s", after.raw)
	}
	c.do("GET", "/api/v1/cards/"+card.str("card", "id")+"/approvals", "", false, nil).want(t, 401, issuer.CodeUnauthorized)
	c.do("GET", "/api/v1/cards/card_nope/approvals", "", true, nil).want(t, 404, issuer.CodeNotFound)

	// Card status.
	c.do("PUT", "/api/v1/cards/"+card.str("card", "id")+"/status", "", true, map[string]any{"status": "lost"}).want(t, 200, "")
	c.do("POST", "/api/v1/approvals", "ap-8", false, httpApproveBody(card, "ORD-8", 1000, false)).want(t, 402, issuer.CodeDeclined)
	c.do("PUT", "/api/v1/cards/"+card.str("card", "id")+"/status", "", true, map[string]any{"status": "stolen"}).
		want(t, 400, issuer.CodeInvalidRequest)

	c.do("POST", "/api/v1/notifications/deliver", "", true, nil).want(t, 200, "")
	c.do("GET", "/api/v1/nope", "", false, nil).want(t, 404, issuer.CodeNotFound)
	if r := c.do("GET", "/api/v1/approvals/"+bn+"/cancel", "", false, nil).want(t, 405, issuer.CodeMethodNotAllowed); r.header.Get("Allow") != "POST" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
	if r := c.do("DELETE", "/api/v1/approvals", "", false, nil).want(t, 405, issuer.CodeMethodNotAllowed); r.header.Get("Allow") != "POST, GET" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}

	// The admin page, with Basic authentication.
	req := httptest.NewRequest("GET", "/admin", nil)
	req.SetBasicAuth("admin", adminToken)
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	page := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(page, ecml.MaskPAN(pan)) || !strings.Contains(page, number) ||
		!strings.Contains(page, "승인 15,000원 Example Shop") || ecml.ContainsPAN(page) || strings.Contains(page, testPhoneD) {
		t.Errorf("admin page (%d):\n%s", rec.Code, page)
	}
	req = httptest.NewRequest("GET", "/admin", nil)
	rec = httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("admin page without credentials: %d", rec.Code)
	}
	if !strings.Contains(e.logs.String(), `route="POST /api/v1/approvals"`) {
		t.Error("requests are not logged")
	}
}
