package pg_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/testutil"
)

// TestAuthenticationPassesThrough: a payment's opaque authentication
// evidence (the KECIS sidecar's signed amount-authentication result, which
// the PG never reads) goes to the issuer gateway with the approval as
// authentication_results, exactly as it came, and nowhere else: not with
// a cancel, not into any row of the database, not into the logs or the
// answer. It is not part of what the Idempotency-Key stands for: a retry
// carrying another one replays the payment without calling the issuer
// again. Too many, too long or non-printable items are refused before any
// transaction.
func TestAuthenticationPassesThrough(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	c := client{t: t, h: e.pg.Handler()}
	merchant := func(idem string) hdr { return hdr{"X-PG-Key": e.m.APIKey, "Idempotency-Key": idem} }
	evidence := []string{"PHNhbWw+T1BBUVVFLUVWSURFTkNFLTE8L3NhbWw+", "T1BBUVVFLUVWSURFTkNFLTI="}
	body := map[string]any{"orderNo": "AUTH-1", "amount": 15000, "cardNo": cardGood, "expMonth": 11, "expYear": 2031,
		"authentication": evidence}
	pay := c.do("POST", "/pg/v1/payments", merchant("a1"), body).want(t, 200, pg.CodeSuccess)
	if got := e.gw.authOf("approve"); len(got) != 1 || !slices.Equal(got[0], evidence) {
		t.Fatalf("the gateway got %v, want %v", got, evidence)
	}
	if strings.Contains(pay.raw, "T1BBUVVF") {
		t.Error("the answer repeats the authentication evidence")
	}

	// A retry with a freshly made one: the same payment, no second call.
	body["authentication"] = []string{"UkVUUlktRVZJREVOQ0U="}
	again := c.do("POST", "/pg/v1/payments", merchant("a1"), body).want(t, 200, pg.CodeSuccess)
	if again.str("tid") != pay.str("tid") || again.header.Get("Idempotent-Replayed") != "true" || e.gw.count("approve") != 1 {
		t.Fatalf("retry: %s, %d approvals at the gateway", again.raw, e.gw.count("approve"))
	}

	// A payment without any sends none; neither does a cancel.
	plain := e.pay(cardGood2, 20000)
	if _, err := e.cancel(pay.str("tid")); err != nil {
		t.Fatal(err)
	}
	if got := e.gw.authOf("approve"); len(got) != 2 || got[1] != nil || plain.Status != pg.StatusApproved {
		t.Fatalf("approvals' evidence %v", got)
	}
	if got := e.gw.authOf("cancel"); len(got) != 1 || got[0] != nil {
		t.Fatalf("the cancel carried %v", got)
	}

	// Bounds: refused before any transaction or gateway call.
	n := e.gw.count("approve")
	for i, bad := range [][]string{
		{"a", "b", "c", "d", "e"},
		{strings.Repeat("A", pg.MaxAuthenticationLen+1)},
		{""},
		{"with space"},
		{"line\nbreak"},
	} {
		r := c.do("POST", "/pg/v1/payments", merchant(fmt.Sprintf("bad-%d", i)), map[string]any{"orderNo": fmt.Sprintf("AUTH-BAD-%d", i),
			"amount": 15000, "cardNo": cardGood, "expMonth": 11, "expYear": 2031, "authentication": bad})
		r.want(t, 400, pg.CodeInvalidRequest)
		if !strings.Contains(r.str("resultDetail"), "authentication") {
			t.Errorf("item %d: detail %q", i, r.str("resultDetail"))
		}
	}
	if e.gw.count("approve") != n {
		t.Fatal("a refused payment reached the gateway")
	}
	if _, err := e.pg.Find(ctx, e.m.MID, "AUTH-BAD-0"); err == nil {
		t.Fatal("a refused payment was recorded")
	}

	// Stored nowhere.
	for table, rows := range testutil.DumpDB(t, e.pg.DB().DB) {
		for k, row := range rows {
			for col, v := range row {
				var s string
				switch v := v.(type) {
				case string:
					s = v
				case []byte:
					s = string(v)
				}
				if strings.Contains(s, "T1BBUVVF") || strings.Contains(s, "UkVUUlkt") {
					t.Errorf("%s[%d].%s holds the authentication evidence", table, k, col)
				}
			}
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "T1BBUVVF") || strings.Contains(logs, "UkVUUlkt") {
		t.Error("a log line holds the authentication evidence")
	}
}

// TestAuthValueAndMerchantRefPassThrough: a payment after an issuer's
// cardholder authentication (KECIS §15.7) carries the authentication
// value and the merchant's federation entityID (merchantRef, which the
// sidecar sends): the approval names the shop to the issuer by that
// entityID (Ecom_Merchant_ID) with the value (Ecom_Transaction_AAV); a
// payment without them names its MID and sends no value; neither is kept
// in any row or log line; bad ones are refused before any transaction.
func TestAuthValueAndMerchantRefPassThrough(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	c := client{t: t, h: e.pg.Handler()}
	merchant := func(idem string) hdr { return hdr{"X-PG-Key": e.m.APIKey, "Idempotency-Key": idem} }
	const aav, ref = "kVx3l0B2bM1rS9xq4TTw8A-AAVTEST", "https://shop.kecis.test/kecis"
	c.do("POST", "/pg/v1/payments", merchant("v1"), map[string]any{"orderNo": "AAV-1", "amount": 150000, "cardNo": cardGood,
		"expMonth": 11, "expYear": 2031, "aav": aav, "merchantRef": ref}).want(t, 200, pg.CodeSuccess)
	e.pay(cardGood2, 20000)
	got := e.gw.fieldsOf("approve")
	if len(got) != 2 || got[0]["Ecom_Transaction_AAV"] != aav || got[0]["Ecom_Merchant_ID"] != ref {
		t.Fatalf("the gateway got %v", got)
	}
	if _, ok := got[1]["Ecom_Transaction_AAV"]; ok || got[1]["Ecom_Merchant_ID"] != e.m.MID {
		t.Fatalf("a plain payment sent %v", got[1])
	}
	for i, bad := range []map[string]any{
		{"aav": strings.Repeat("A", pg.MaxAuthValueLen+1)},
		{"aav": "with space"},
		{"merchantRef": "https://shop .test"},
		{"merchantRef": strings.Repeat("h", pg.MaxMerchantRefLen+1)},
	} {
		body := map[string]any{"orderNo": fmt.Sprintf("AAV-BAD-%d", i), "amount": 15000, "cardNo": cardGood, "expMonth": 11, "expYear": 2031}
		for k, v := range bad {
			body[k] = v
		}
		c.do("POST", "/pg/v1/payments", merchant(fmt.Sprintf("vbad-%d", i)), body).want(t, 400, pg.CodeInvalidRequest)
	}
	if n := e.gw.count("approve"); n != 2 {
		t.Fatalf("%d approvals reached the gateway", n)
	}
	for table, rows := range testutil.DumpDB(t, e.pg.DB().DB) {
		for k, row := range rows {
			for col, v := range row {
				if s, ok := v.(string); ok && strings.Contains(s, "AAVTEST") {
					t.Errorf("%s[%d].%s holds the authentication value", table, k, col)
				}
			}
		}
	}
	if strings.Contains(e.logs.String(), "AAVTEST") {
		t.Error("a log line holds the authentication value")
	}
}
