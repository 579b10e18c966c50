package pg_test

import (
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/pg"
)

func TestHTTPAPI(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	c := client{t: t, h: e.pg.Handler()}
	admin := hdr{"Authorization": "Bearer " + adminToken}

	// Admin: merchants.
	c.do("POST", "/pg/admin/merchants", nil, map[string]any{"name": "x"}).want(t, 401, pg.CodeUnauthorized)
	created := c.do("POST", "/pg/admin/merchants", admin, map[string]any{
		"name": "강남 커피", "contract": map[string]any{"binPrefixes": []string{"949010"}, "feeBps": 250,
			"maxAmount": "1000000", "dailyLimit": 5_000_000}}).want(t, 201, pg.CodeSuccess)
	key, _ := created.body["apiKey"].(string)
	mer, _ := created.body["merchant"].(map[string]any)
	mid, _ := mer["mid"].(string)
	if mid != "M000002" || !strings.HasPrefix(key, "pgk_") || created.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created %s", created.raw)
	}
	c.do("GET", "/pg/admin/merchants/"+mid, admin, nil).want(t, 200, pg.CodeSuccess)
	if r := c.do("GET", "/pg/admin/merchants", admin, nil).want(t, 200, pg.CodeSuccess); strings.Contains(r.raw, key) {
		t.Error("the merchant list shows an API key")
	}
	c.do("GET", "/pg/admin/merchants/M999999", admin, nil).want(t, 404, pg.CodeNotFound)

	merchant := func(idem string) hdr { return hdr{"X-PG-Key": key, "Idempotency-Key": idem} }
	payBody := map[string]any{"mid": mid, "orderNo": "HTTP-1", "amount": "15000", "cardNo": cardGood,
		"expMonth": "11", "expYear": "2031", "productName": "아메리카노", "buyerName": "홍길동"}

	// Authentication and request errors.
	c.do("POST", "/pg/v1/payments", hdr{"Idempotency-Key": "k"}, payBody).want(t, 401, pg.CodeUnauthorized)
	c.do("POST", "/pg/v1/payments", hdr{"X-PG-Key": "pgk_wrong", "Idempotency-Key": "k"}, payBody).want(t, 401, pg.CodeUnauthorized)
	c.do("POST", "/pg/v1/payments", hdr{"X-PG-Key": e.m.APIKey, "Idempotency-Key": "k"}, payBody).want(t, 401, pg.CodeUnauthorized)
	c.do("POST", "/pg/v1/payments", hdr{"X-PG-Key": key}, payBody).want(t, 400, pg.CodeIdempotencyKey)
	c.do("POST", "/pg/v1/payments", merchant("k0"), `{"mid":`).want(t, 400, pg.CodeInvalidRequest)
	c.do("POST", "/pg/v1/payments", merchant("k0"), map[string]any{"orderNo": "x", "cardNum": cardGood}).want(t, 400, pg.CodeInvalidRequest)
	r := c.do("POST", "/pg/v1/payments", merchant("k0"), map[string]any{"orderNo": "x", "amount": "lots"}).want(t, 400, pg.CodeInvalidRequest)
	if !strings.Contains(r.str("resultDetail"), "whole numbers") {
		t.Errorf("detail %q", r.str("resultDetail"))
	}

	// Approve, with numbers as strings.
	pay := c.do("POST", "/pg/v1/payments", merchant("k1"), payBody).want(t, 200, pg.CodeSuccess)
	tid := pay.str("tid")
	if pay.str("status") != "APPROVED" || pay.str("approvalNo") == "" || pay.str("resultMsg") != pg.CodeSuccess.Message() ||
		pay.str("maskedCardNo") != cardGood[:6]+"******"+cardGood[12:] || pay.num("amount") != 15000 ||
		pay.num("feeAmount") != 375 || pay.str("buyerName") != "홍길동" || pay.str("approvedAt") != "2026-11-22T19:00:00+09:00" {
		t.Fatalf("payment %s", pay.raw)
	}
	if strings.Contains(pay.raw, cardGood) {
		t.Fatal("the answer holds the card number")
	}
	again := c.do("POST", "/pg/v1/payments", merchant("k1"), payBody).want(t, 200, pg.CodeSuccess)
	if again.str("tid") != tid || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay %s %v", again.raw, again.header)
	}
	changed := map[string]any{}
	for k, v := range payBody {
		changed[k] = v
	}
	changed["amount"] = 16000
	c.do("POST", "/pg/v1/payments", merchant("k1"), changed).want(t, 409, pg.CodeIdempotencyConflict)
	c.do("POST", "/pg/v1/payments", merchant("k2"), payBody).want(t, 409, pg.CodeDuplicateOrder)
	changed["orderNo"], changed["cardNo"] = "HTTP-2", cardOtherBIN
	c.do("POST", "/pg/v1/payments", merchant("k3"), changed).want(t, 200, pg.CodeBINNotAllowed)

	// Decline: a recorded transaction with its code.
	changed["orderNo"], changed["cardNo"] = "HTTP-3", e.gw.declineCard(9, "InsufficientFunds")
	d := c.do("POST", "/pg/v1/payments", merchant("k4"), changed).want(t, 200, pg.CodeInsufficientFunds)
	if d.str("status") != "DECLINED" || d.str("tid") == "" || d.str("resultMsg") != "잔액(한도) 부족 / insufficient funds" {
		t.Errorf("decline %s", d.raw)
	}

	// Inquiry.
	g := c.do("GET", "/pg/v1/payments/"+tid, hdr{"X-PG-Key": key}, nil).want(t, 200, pg.CodeSuccess)
	if g.str("tid") != tid || g.str("orderNo") != "HTTP-1" {
		t.Errorf("get %s", g.raw)
	}
	c.do("GET", "/pg/v1/payments/"+tid, hdr{"X-PG-Key": e.m.APIKey}, nil).want(t, 404, pg.CodeNotFound)
	f := c.do("GET", "/pg/v1/payments?mid="+mid+"&orderNo=HTTP-1", hdr{"X-PG-Key": key}, nil).want(t, 200, pg.CodeSuccess)
	if f.str("tid") != tid {
		t.Errorf("find %s", f.raw)
	}
	c.do("GET", "/pg/v1/payments?mid="+e.m.MID+"&orderNo=HTTP-1", hdr{"X-PG-Key": key}, nil).want(t, 401, pg.CodeUnauthorized)
	c.do("GET", "/pg/v1/payments?orderNo=NOPE", hdr{"X-PG-Key": key}, nil).want(t, 404, pg.CodeNotFound)

	// Refunds after settlement, then the rest.
	c.do("POST", "/pg/v1/payments/"+tid+"/refunds", merchant("r0"), map[string]any{"amount": 5000}).want(t, 200, pg.CodeBeforeSettlement)
	e.gw.settleAll()
	c.do("POST", "/pg/v1/payments/"+tid+"/refunds", merchant("r1"), map[string]any{"amount": 20000}).want(t, 200, pg.CodeRefundExceeded)
	rf := c.do("POST", "/pg/v1/payments/"+tid+"/refunds", merchant("r2"), map[string]any{"amount": 5000, "reason": "부분 반품"}).
		want(t, 200, pg.CodeSuccess)
	if rf.str("status") != "PART_REFUNDED" || rf.num("balanceAmount") != 10000 || rf.num("cancelledAmount") != 5000 {
		t.Errorf("refund %s", rf.raw)
	}
	hist, _ := rf.body["history"].([]any)
	if len(hist) != 3 {
		t.Errorf("history %v", hist)
	}
	// The same, addressed by the order number.
	rf = c.do("POST", "/pg/v1/orders/HTTP-1/refunds", merchant("r3"), map[string]any{"amount": "1000"}).want(t, 200, pg.CodeSuccess)
	if rf.str("tid") != tid || rf.num("balanceAmount") != 9000 {
		t.Errorf("refund by order %s", rf.raw)
	}
	c.do("POST", "/pg/v1/orders/NOPE/refunds", merchant("r4"), map[string]any{"amount": 1}).want(t, 404, pg.CodeNotFound)
	c.do("POST", "/pg/v1/payments/"+tid+"/cancel", merchant("c1"), nil).want(t, 200, pg.CodeAfterSettlement)

	// Cancel with an empty body.
	changed["orderNo"], changed["cardNo"] = "HTTP-4", cardGood
	p2 := c.do("POST", "/pg/v1/payments", merchant("k5"), changed).want(t, 200, pg.CodeSuccess)
	cc := c.do("POST", "/pg/v1/orders/HTTP-4/cancel", merchant("c2"), nil).want(t, 200, pg.CodeSuccess)
	if cc.str("status") != "CANCELLED" || cc.str("cancelledAt") == "" || cc.str("tid") != p2.str("tid") {
		t.Errorf("cancel %s", cc.raw)
	}

	// Pending through HTTP is 200 with 2001, resolved by the admin.
	e.gw.setMode("approve", pendingUnseen)
	changed["orderNo"] = "HTTP-5"
	pp := c.do("POST", "/pg/v1/payments", merchant("k6"), changed).want(t, 200, pg.CodePending)
	if pp.str("status") != "PENDING" || pp.str("pendingOperation") != "approve" {
		t.Errorf("pending %s", pp.raw)
	}
	res := c.do("POST", "/pg/admin/pending/resolve", admin, nil).want(t, 200, pg.CodeSuccess)
	if res.num("checked") != 1 || res.num("stillPending") != 1 {
		t.Errorf("resolve %s", res.raw)
	}

	// Admin transactions.
	l := c.do("GET", "/pg/admin/transactions?mid="+mid, admin, nil).want(t, 200, pg.CodeSuccess)
	if txs, _ := l.body["transactions"].([]any); len(txs) != 4 {
		t.Errorf("%d transactions: %s", len(txs), l.raw)
	}
	l = c.do("GET", "/pg/admin/transactions?status=DECLINED", admin, nil).want(t, 200, pg.CodeSuccess)
	if txs, _ := l.body["transactions"].([]any); len(txs) != 1 {
		t.Errorf("declined: %s", l.raw)
	}
	c.do("GET", "/pg/admin/transactions?limit=x", admin, nil).want(t, 400, pg.CodeInvalidRequest)
	c.do("GET", "/pg/admin/transactions/"+tid, admin, nil).want(t, 200, pg.CodeSuccess)
	c.do("GET", "/pg/admin/transactions", nil, nil).want(t, 401, pg.CodeUnauthorized)
	c.do("PUT", "/pg/admin/merchants/"+mid+"/status", admin, map[string]any{"status": "SUSPENDED"}).want(t, 200, pg.CodeSuccess)
	changed["orderNo"] = "HTTP-6"
	c.do("POST", "/pg/v1/payments", merchant("k7"), changed).want(t, 403, pg.CodeMerchantInactive)
	c.do("PUT", "/pg/admin/merchants/"+mid+"/contract", admin, map[string]any{"feeBps": 100}).want(t, 200, pg.CodeSuccess)

	// Routing errors in the API's own format.
	m := c.do("DELETE", "/pg/v1/payments", hdr{"X-PG-Key": key}, nil).want(t, 405, pg.CodeUnsupported)
	if m.header.Get("Allow") != "POST, GET" {
		t.Errorf("Allow %q", m.header.Get("Allow"))
	}
	c.do("GET", "/pg/v2/nothing", nil, nil).want(t, 404, pg.CodeUnsupported)
}

// TestMerchantsKeptApart: every merchant API call is scoped to the key's
// merchant (KECIS §13.3). Two merchants may use one order number; one
// reaching for the other's order — by order number or by TID, to inquire,
// cancel or refund — gets exactly what an unknown order gets, and the
// other's payment is untouched. This is what lets the KECIS sidecar give
// each federation merchant an account of its own (issue 12 finding 2).
func TestMerchantsKeptApart(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := client{t: t, h: e.pg.Handler()}
		b, err := e.pg.CreateMerchant(ctx, pg.NewMerchant{Name: "Second shop", Contract: defaultContract})
		if err != nil {
			t.Fatal(err)
		}
		as := func(key, idem string) hdr { return hdr{"X-PG-Key": key, "Idempotency-Key": idem} }
		pay := func(key, idem string, amount int) response {
			return c.do("POST", "/pg/v1/payments", as(key, idem), map[string]any{"orderNo": "SAME-1", "amount": amount, "cardNo": cardGood,
				"expMonth": 11, "expYear": 2031, "productName": "라떼"})
		}
		a := pay(e.m.APIKey, "a1", 15000).want(t, 200, pg.CodeSuccess)
		tidA := a.str("tid")

		// B, at A's order: 404 NotFound, the same body as for an unknown one.
		for _, p := range []struct{ method, known, unknown string }{
			{"GET", "/pg/v1/payments?orderNo=SAME-1", "/pg/v1/payments?orderNo=NOPE"},
			{"GET", "/pg/v1/payments/" + tidA, "/pg/v1/payments/T000000000000"},
			{"POST", "/pg/v1/orders/SAME-1/cancel", "/pg/v1/orders/NOPE/cancel"},
			{"POST", "/pg/v1/payments/" + tidA + "/cancel", "/pg/v1/payments/T000000000000/cancel"},
			{"POST", "/pg/v1/orders/SAME-1/refunds", "/pg/v1/orders/NOPE/refunds"},
			{"POST", "/pg/v1/payments/" + tidA + "/refunds", "/pg/v1/payments/T000000000000/refunds"},
		} {
			var body any
			if strings.HasSuffix(p.known, "/refunds") {
				body = map[string]any{"amount": 1000}
			}
			got := c.do(p.method, p.known, as(b.APIKey, "b-"+p.known), body).want(t, 404, pg.CodeNotFound)
			unknown := c.do(p.method, p.unknown, as(b.APIKey, "b-"+p.unknown), body).want(t, 404, pg.CodeNotFound)
			if got.raw != unknown.raw {
				t.Errorf("%s %s: %s; unknown: %s", p.method, p.known, got.raw, unknown.raw)
			}
		}
		if p := e.get(tidA); p.Status != pg.StatusApproved || p.CancelledAmount != 0 || len(p.Operations) != 1 {
			t.Fatalf("A's payment after B's attempts: %+v", p)
		}
		if n := e.gw.count("cancel") + e.gw.count("refund"); n != 0 {
			t.Fatalf("%d cancels and refunds reached the issuer", n)
		}

		// B's own SAME-1: no duplicate; each merchant finds its own.
		bp := pay(b.APIKey, "b1", 20000).want(t, 200, pg.CodeSuccess)
		if bp.str("tid") == tidA || bp.str("mid") != b.MID {
			t.Fatalf("B's payment %s", bp.raw)
		}
		pay(b.APIKey, "b2", 20000).want(t, 409, pg.CodeDuplicateOrder)
		for key, want := range map[string]int64{e.m.APIKey: 15000, b.APIKey: 20000} {
			f := c.do("GET", "/pg/v1/payments?orderNo=SAME-1", hdr{"X-PG-Key": key}, nil).want(t, 200, pg.CodeSuccess)
			if f.num("amount") != want {
				t.Errorf("find SAME-1: %s, want amount %d", f.raw, want)
			}
		}
		c.do("POST", "/pg/v1/orders/SAME-1/cancel", as(b.APIKey, "b3"), nil).want(t, 200, pg.CodeSuccess)
		if p := e.get(tidA); p.Status != pg.StatusApproved {
			t.Fatalf("A's payment after B cancelled its own: %+v", p)
		}
	})
}
