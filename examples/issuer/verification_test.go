package issuer_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
)

// verifyReq is a verification approval of amount under a ceiling of
// 50,000 won on c for a fresh order.
func (e *env) verifyReq(c *issuer.IssuedCard, amount int64, code ecml.Secret) issuer.VerificationRequest {
	r := e.approveReq(c, amount)
	return issuer.VerificationRequest{MerchantID: r.MerchantID, MerchantName: r.MerchantName, OrderID: "AA-" + r.OrderID,
		Amount: r.Amount, Ceiling: krw(50_000), Card: r.Card, DescriptorCode: code, IdempotencyKey: "verify-" + r.IdempotencyKey}
}

func (e *env) verify(c *issuer.IssuedCard, amount int64, code ecml.Secret) *issuer.Approval {
	e.t.Helper()
	a, err := e.iss.ApproveVerification(ctx, e.verifyReq(c, amount, code))
	if err != nil {
		e.t.Fatalf("ApproveVerification(%d): %v", amount, err)
	}
	return a
}

// TestVerificationApproval: a verification approval (KECIS §15.3) is an
// approval like any other — on the limit, in the ledger, texted with its
// amount and the merchant's name (and the descriptor code after it) —
// marked as one and kept so; a repeat with its key is the same approval;
// cancel gives its amount back to the limit.
func TestVerificationApproval(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		req := e.verifyReq(c, 1_234, "482193")
		a, err := e.iss.ApproveVerification(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Verification || a.Amount != krw(1_234) || a.Status != issuer.StatusApproved || a.OrderID != req.OrderID || a.Replayed {
			t.Fatalf("%+v", a)
		}
		if av := e.available(c); av != 100_000-1_234 {
			t.Errorf("available %d, want the amount taken", av)
		}
		want := "[KECIS Card] 승인 1,234원 Example Shop 482193 11/22 19:00 (" + c.Last4 + ")\n"
		if got := texts(e.phone.Messages(testPhoneD)); got != want {
			t.Errorf("SMS %q, want %q", got, want)
		}

		// The repeat: the same approval, no second charge or SMS. The key
		// is the verification's: an Approve or another code with it
		// conflicts.
		again, err := e.iss.ApproveVerification(ctx, req)
		if err != nil || again.Number != a.Number || !again.Replayed || !again.Verification {
			t.Fatalf("repeat: %+v, %v", again, err)
		}
		if av, n := e.available(c), len(e.phone.Messages(testPhoneD)); av != 100_000-1_234 || n != 1 {
			t.Errorf("after the repeat: available %d, %d SMS", av, n)
		}
		other := req
		other.DescriptorCode = "482194"
		_, err = e.iss.ApproveVerification(ctx, other)
		wantCode(t, err, issuer.CodeIdempotencyConflict)
		_, err = e.iss.Approve(ctx, issuer.ApproveRequest{MerchantID: req.MerchantID, MerchantName: req.MerchantName, OrderID: req.OrderID,
			Amount: krw(1_000), Card: req.Card, IdempotencyKey: req.IdempotencyKey})
		wantCode(t, err, issuer.CodeIdempotencyConflict)

		// The flag is kept: inquire, the card's ledger, the latest
		// approvals; a payment has none.
		p := e.approve(c, 15_000)
		if got := e.inquire(a.Number); !got.Verification || got.Amount != krw(1_234) {
			t.Errorf("inquire: %+v", got)
		}
		if e.inquire(p.Number).Verification {
			t.Error("a payment reads as a verification approval")
		}
		ledger, err := e.iss.CardApprovals(ctx, c.ID, "", 0)
		if err != nil || len(ledger) != 2 {
			t.Fatalf("ledger %+v, %v", ledger, err)
		}
		for _, l := range ledger {
			if l.Verification != (l.Number == a.Number) {
				t.Errorf("ledger: %s verification %v", l.Number, l.Verification)
			}
		}

		// Cancel voids it and gives the amount back; the text names no code.
		e.clock.Advance(5 * time.Minute)
		x, err := e.cancel(a)
		if err != nil || x.Status != issuer.StatusCancelled || !x.Verification {
			t.Fatalf("cancel: %+v, %v", x, err)
		}
		if av := e.available(c); av != 100_000-15_000 {
			t.Errorf("available %d after the cancel, want the amount back", av)
		}
		if m, _ := e.phone.Last(testPhoneD); m.Text != "[KECIS Card] 승인취소 1,234원 Example Shop 11/22 19:05 ("+c.Last4+")" {
			t.Errorf("cancel SMS %q", m.Text)
		}
		if logs := e.logs.String(); strings.Contains(logs, "amount=1234") || strings.Contains(logs, "482193") ||
			!strings.Contains(logs, "verification=true") || !strings.Contains(logs, "amount=15000") {
			t.Errorf("the logs show a verification amount or code, or no approval:\n%s", logs)
		}
	})
}

// TestVerificationBounds: a verification approval is refused above the
// caller's ceiling and above the issuer's maximum (LIMIT_EXCEEDED), in a
// currency the maximum does not name, and with a malformed code or a
// ceiling in another currency (INVALID_REQUEST); a refused one takes
// nothing and texts nothing. Otherwise it declines as Approve does.
func TestVerificationBounds(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn, func(c *issuer.Config) { c.MaxVerificationAmount = map[string]int64{"KRW": 10_000} })
		c := e.issue(issuer.Credit, 100_000)
		for _, tc := range []struct {
			name string
			edit func(r *issuer.VerificationRequest)
			code issuer.Code
		}{
			{"above the ceiling", func(r *issuer.VerificationRequest) { r.Ceiling = krw(1_000); r.Amount = krw(1_001) }, issuer.CodeLimitExceeded},
			{"above the maximum", func(r *issuer.VerificationRequest) { r.Amount = krw(10_001) }, issuer.CodeLimitExceeded},
			{"a currency without a maximum", func(r *issuer.VerificationRequest) {
				r.Amount, r.Ceiling = ecml.Money{Minor: 100, Currency: "USD"}, ecml.Money{Minor: 500, Currency: "USD"}
			}, issuer.CodeLimitExceeded},
			{"a ceiling in another currency", func(r *issuer.VerificationRequest) { r.Ceiling = ecml.Money{Minor: 500, Currency: "USD"} }, issuer.CodeInvalidRequest},
			{"no ceiling", func(r *issuer.VerificationRequest) { r.Ceiling = ecml.Money{} }, issuer.CodeInvalidRequest},
			{"a code with letters", func(r *issuer.VerificationRequest) { r.DescriptorCode = "48a193" }, issuer.CodeInvalidRequest},
			{"a code too short", func(r *issuer.VerificationRequest) { r.DescriptorCode = "482" }, issuer.CodeInvalidRequest},
			{"no amount", func(r *issuer.VerificationRequest) { r.Amount = krw(0) }, issuer.CodeInvalidRequest},
			{"a wrong expiry", func(r *issuer.VerificationRequest) { r.Card.ExpMonth = r.Card.ExpMonth%12 + 1 }, issuer.CodeInvalidCard},
		} {
			r := e.verifyReq(c, 5_000, "482193")
			tc.edit(&r)
			_, err := e.iss.ApproveVerification(ctx, r)
			if got := issuer.CodeOf(err); got != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if av, n := e.available(c), len(e.phone.Messages("")); av != 100_000 || n != 0 {
			t.Errorf("refusals took %d and sent %d SMS", 100_000-av, n)
		}
		// At the maximum and at the ceiling it is approved.
		r := e.verifyReq(c, 10_000, "")
		r.Ceiling = krw(10_000)
		if a, err := e.iss.ApproveVerification(ctx, r); err != nil || !a.Verification {
			t.Fatalf("at the maximum: %+v, %v", a, err)
		}
		if _, err := issuer.Open(ctx, issuer.Config{DSN: e.dsn, DataKey: testDataKey, Pepper: testPepper,
			MaxVerificationAmount: map[string]int64{"XXY": 1}}); err == nil {
			t.Error("a maximum in an unknown currency was accepted")
		}
	})
}

// TestVerificationRefund: after the cut-off a refund naming no amount
// refunds a verification approval whole (once: then nothing is left), and
// of a payment is AMOUNT_REQUIRED.
func TestVerificationRefund(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		a := e.verify(c, 2_345, "")
		p := e.approve(c, 15_000)
		whole := func(a *issuer.Approval, key string) (*issuer.Refund, error) {
			return e.iss.Refund(ctx, issuer.RefundRequest{MerchantID: a.MerchantID, ApprovalNumber: a.Number, IdempotencyKey: key})
		}
		_, err := whole(a, "early")
		wantCode(t, err, issuer.CodeNotSettled)
		e.pastCutOff()
		if _, err := e.iss.Settle(ctx, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r, err := whole(a, "whole")
		if err != nil {
			t.Fatal(err)
		}
		if r.Amount != krw(2_345) || r.Approval.Status != issuer.StatusRefunded || r.Approval.Refunded != 2_345 || !r.Approval.Verification {
			t.Fatalf("refund %+v of %+v", r, r.Approval)
		}
		if av := e.available(c); av != 100_000-15_000 {
			t.Errorf("available %d, want the verification amount back", av)
		}
		if again, err := whole(a, "whole"); err != nil || again.ID != r.ID || !again.Replayed {
			t.Fatalf("repeat: %+v, %v", again, err)
		}
		_, err = whole(a, "whole-2")
		wantCode(t, err, issuer.CodeRefundExceeded)
		_, err = whole(p, "payment")
		wantCode(t, err, issuer.CodeAmountRequired)
		if got := e.inquire(p.Number); got.Refunded != 0 || got.Status != issuer.StatusSettled {
			t.Errorf("the payment after a refund naming no amount: %+v", got)
		}
		if m, _ := e.phone.Last(testPhoneD); !strings.HasPrefix(m.Text, "[KECIS Card] 환불 2,345원 Example Shop ") {
			t.Errorf("refund SMS %q", m.Text)
		}
	})
}

// TestVerificationInLedgerAPI: the card's ledger (GET
// /api/v1/cards/{id}/approvals) and the admin page tell a verification
// approval from a payment.
func TestVerificationInLedgerAPI(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN, func(c *issuer.Config) { c.AdminToken = adminToken })
	h := client{t: t, h: e.iss.Handler()}
	c := e.issue(issuer.Credit, 100_000)
	a := e.verify(c, 1_234, "482193")
	p := e.approve(c, 15_000)
	ledger := h.do("GET", "/api/v1/cards/"+c.ID+"/approvals", "", true, nil).want(t, 200, "")
	var l struct {
		Approvals []struct {
			Number       string `json:"approval_number"`
			Verification bool   `json:"verification"`
		} `json:"approvals"`
	}
	if err := json.Unmarshal([]byte(ledger.raw), &l); err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, x := range l.Approvals {
		flags[x.Number] = x.Verification
	}
	if len(flags) != 2 || !flags[a.Number] || flags[p.Number] {
		t.Errorf("ledger: %s", ledger.raw)
	}
	req := httptest.NewRequest("GET", "/admin", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	page := rec.Body.String()
	if rec.Code != 200 || strings.Count(page, "<td>verification</td>") != 1 || strings.Count(page, "<td>payment</td>") != 1 {
		t.Errorf("admin page (%d):\n%s", rec.Code, page)
	}
}
