package pg_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/pg"
)

func TestApprove(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		req := e.payReq(cardGood, 15_000)
		req.Buyer = pg.Buyer{Name: "홍길동", Tel: "010-2345-6789", Email: "hong@example.kr"}
		p, err := e.pg.Pay(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, p, pg.StatusApproved, pg.CodeSuccess)
		if !regexp.MustCompile(`^T261122[0-9]{6}$`).MatchString(p.TID) {
			t.Errorf("tid %q: want T + YYMMDD (KST) + six digits", p.TID)
		}
		if want := cardGood[:6] + "******" + cardGood[12:]; p.MaskedCardNo != want {
			t.Errorf("masked card %q, want %q", p.MaskedCardNo, want)
		}
		if p.ApprovalNo != "03427124" || p.Amount != 15_000 || p.Balance() != 15_000 || p.FeeAmount() != 375 {
			t.Errorf("approval %q amount %d balance %d fee %d", p.ApprovalNo, p.Amount, p.Balance(), p.FeeAmount())
		}
		if p.Buyer != req.Buyer || p.IssuerState != "approved" || p.ApprovedAt.IsZero() || p.PendingOperation != "" {
			t.Errorf("payment %+v", p)
		}
		if len(p.Operations) != 1 || p.Operations[0].Kind != pg.OpApprove || p.Operations[0].Status != pg.OpDone {
			t.Errorf("operations %+v", p.Operations)
		}
		a := e.gw.approvalOf(p.TID)
		if a == nil || a.amount != 15_000 || a.code != p.ApprovalNo {
			t.Fatalf("the issuer holds %+v under order %s", a, p.TID)
		}
		if n := e.gw.count("approve"); n != 1 {
			t.Errorf("%d approve calls", n)
		}

		got := e.get(p.TID)
		found, err := e.pg.Find(ctx, e.m.MID, req.OrderNo)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []*pg.Payment{got, found} {
			if g.TID != p.TID || g.Status != pg.StatusApproved || g.ResultCode != pg.CodeSuccess || g.Buyer != req.Buyer {
				t.Errorf("inquiry %+v", g)
			}
		}
		other, err := e.pg.CreateMerchant(ctx, pg.NewMerchant{Name: "Other", Contract: defaultContract})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.pg.Get(ctx, other.MID, p.TID)
		wantCode(t, err, pg.CodeNotFound)

		// TIDs count up within the business day.
		p2 := e.approved(1000)
		if p2.TID <= p.TID {
			t.Errorf("second tid %s after %s", p2.TID, p.TID)
		}
	})
}

func TestDeclineCodesMapped(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	for i, c := range []struct {
		sub  string
		want pg.ResultCode
	}{
		{"Declined", pg.CodeCardDeclined},
		{"InsufficientFunds", pg.CodeInsufficientFunds},
		{"InvalidCard", pg.CodeInvalidCard},
		{"Expired", pg.CodeCardExpired},
		{"LimitExceeded", pg.CodeLimitExceeded},
		{"AuthenticationRequired", pg.CodeAuthRequired},
		{"PolicyViolation", pg.CodeIssuerRefused},
		{"urn:kecis:status:Declined", pg.CodeCardDeclined},
		{"SomethingNew", pg.CodeIssuerRefused},
	} {
		t.Run(c.sub, func(t *testing.T) {
			req := e.payReq(e.gw.declineCard(i, c.sub), 20_000)
			p, err := e.pg.Pay(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, p, pg.StatusDeclined, c.want)
			if p.ApprovalCode != c.want || p.ApprovalNo != "" || p.Operations[0].Status != pg.OpRefused {
				t.Errorf("declined payment %+v", p)
			}
			// A declined order may be paid again, with another card.
			req.CardNo, req.IdempotencyKey = pg.CardNumber(cardGood), req.IdempotencyKey+"-again"
			p2, err := e.pg.Pay(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, p2, pg.StatusApproved, pg.CodeSuccess)
			if p2.TID == p.TID {
				t.Error("the retry reused the declined tid")
			}
			if f, err := e.pg.Find(ctx, e.m.MID, req.OrderNo); err != nil || f.TID != p2.TID {
				t.Errorf("Find after a decline and an approval = %v, %v; want %s", f, err, p2.TID)
			}
		})
	}
}

func TestCardChecksBeforeGateway(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	bad := cardGood[:15] + string('0'+(cardGood[15]-'0'+1)%10)
	_, err := e.pg.Pay(ctx, e.payReq(bad, 1000))
	wantCode(t, err, pg.CodeInvalidCard)

	r := e.payReq(cardGood, 1000)
	r.ExpMonth, r.ExpYear = 10, 26 // October 2026; the clock says November
	_, err = e.pg.Pay(ctx, r)
	wantCode(t, err, pg.CodeCardExpired)
	r.ExpMonth = 11 // valid through the end of November
	if p, err := e.pg.Pay(ctx, r); err != nil || p.Status != pg.StatusApproved {
		t.Fatalf("card valid through this month: %v %v", p, err)
	}

	for _, mutate := range []func(*pg.PayRequest){
		func(r *pg.PayRequest) { r.Amount = 0 },
		func(r *pg.PayRequest) { r.OrderNo = "" },
		func(r *pg.PayRequest) { r.OrderNo = "a b" },
		func(r *pg.PayRequest) { r.ProductName = "two\nlines" },
		func(r *pg.PayRequest) { r.CardNo = "12345" },
		func(r *pg.PayRequest) { r.ExpMonth = 13 },
	} {
		r := e.payReq(cardGood, 1000)
		mutate(&r)
		_, err := e.pg.Pay(ctx, r)
		wantCode(t, err, pg.CodeInvalidRequest)
	}
	r = e.payReq(cardGood, 1000)
	r.IdempotencyKey = ""
	_, err = e.pg.Pay(ctx, r)
	wantCode(t, err, pg.CodeIdempotencyKey)
	if n := e.gw.count("approve"); n != 1 {
		t.Errorf("%d approve calls, want only the valid one", n)
	}
}

func TestContractChecks(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)

		r := e.payReq(cardOtherBIN, 1000)
		_, err := e.pg.Pay(ctx, r)
		wantCode(t, err, pg.CodeBINNotAllowed)
		// The refusal is recorded under the key: the same request gets it
		// again, even after the contract changed.
		if _, err := e.pg.UpdateContract(ctx, e.m.MID, pg.Contract{BINPrefixes: []string{"949010", "949020"},
			FeeBPS: 250, MaxAmount: 1_000_000, DailyLimit: 3_000_000}); err != nil {
			t.Fatal(err)
		}
		_, err = e.pg.Pay(ctx, r)
		wantCode(t, err, pg.CodeBINNotAllowed)
		r.IdempotencyKey += "-new"
		if p, err := e.pg.Pay(ctx, r); err != nil || p.Status != pg.StatusApproved {
			t.Fatalf("after the contract allows the BIN: %v %v", p, err)
		}

		_, err = e.pg.Pay(ctx, e.payReq(cardGood, 1_000_001))
		wantCode(t, err, pg.CodeOverMaxAmount)

		// Daily limit 3,000,000: 1,000 is used.
		a := e.approved(1_000_000)
		e.approved(1_000_000)
		_, err = e.pg.Pay(ctx, e.payReq(cardGood, 999_001))
		wantCode(t, err, pg.CodeDailyLimit)
		e.approved(999_000) // exactly the limit
		_, err = e.pg.Pay(ctx, e.payReq(cardGood, 1))
		wantCode(t, err, pg.CodeDailyLimit)
		// A cancellation frees its amount.
		if c, err := e.cancel(a.TID); err != nil || c.Status != pg.StatusCancelled {
			t.Fatalf("cancel: %v %v", c, err)
		}
		e.approved(500_000)
		// A declined payment takes nothing.
		if p := e.pay(e.gw.declineCard(1, "Declined"), 500_000); p.Status != pg.StatusDeclined {
			t.Fatalf("decline: %+v", p)
		}
		e.approved(500_000)
		// The next business day (KST) starts afresh.
		e.clock.Advance(24 * time.Hour)
		p := e.approved(1_000_000)
		if !strings.HasPrefix(p.TID, "T261123") {
			t.Errorf("tid %s on the next day", p.TID)
		}
		if n := e.gw.count("approve"); n != 8 {
			t.Errorf("%d approve calls; refusals by contract must not reach the issuer", n)
		}
	})
}

func TestDailyLimitConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		if _, err := e.pg.UpdateContract(ctx, e.m.MID, pg.Contract{FeeBPS: 250, DailyLimit: 50_000}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		approved, limited := 0, 0
		for range 10 {
			wg.Go(func() {
				p, err := e.pg.Pay(ctx, e.payReq(cardGood, 10_000))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && p.Status == pg.StatusApproved:
					approved++
				case pg.CodeOf(err) == pg.CodeDailyLimit:
					limited++
				default:
					t.Errorf("Pay: %v %v", p, err)
				}
			})
		}
		wg.Wait()
		if approved != 5 || limited != 5 {
			t.Errorf("%d approved, %d refused; want 5 and 5 under a 50,000 won daily limit", approved, limited)
		}
	})
}

func TestCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		p := e.approved(15_000)
		c, err := e.cancel(p.TID)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, c, pg.StatusCancelled, pg.CodeSuccess)
		if c.CancelledAmount != 15_000 || c.Balance() != 0 || c.FeeAmount() != 0 || c.CancelledAt.IsZero() ||
			c.IssuerState != "cancelled" || len(c.Operations) != 2 {
			t.Errorf("cancelled payment %+v", c)
		}
		if a := e.gw.approvalOf(p.TID); a.state != "cancelled" {
			t.Errorf("issuer state %s", a.state)
		}
		_, err = e.cancel(p.TID)
		wantCode(t, err, pg.CodeAlreadyCancelled)
		_, err = e.refund(p.TID, 1000)
		wantCode(t, err, pg.CodeAlreadyCancelled)
		_, err = e.pg.Cancel(ctx, pg.CancelRequest{MID: e.m.MID, TID: "T261122999999", IdempotencyKey: "c-missing"})
		wantCode(t, err, pg.CodeNotFound)

		// After the issuer's cut-off a void is refused: refund instead.
		s := e.approved(20_000)
		e.gw.settleAll()
		c, err = e.cancel(s.TID)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, c, pg.StatusApproved, pg.CodeAfterSettlement)
		if c.Operations[1].Status != pg.OpRefused || c.PendingOperation != "" || c.Balance() != 20_000 {
			t.Errorf("refused cancel: %+v", c)
		}
		r, err := e.refund(s.TID, 20_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusRefunded, pg.CodeSuccess)

		// A declined payment has nothing to cancel.
		d := e.pay(e.gw.declineCard(2, "Declined"), 1000)
		_, err = e.cancel(d.TID)
		wantCode(t, err, pg.CodeNotCancellable)
	})
}

func TestPartialRefunds(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		p := e.approved(30_000)

		// Before settlement the issuer refuses refunds: part of it later
		// (3021), the whole balance by a cancel instead (3022), each
		// saying so in Korean and English.
		r, err := e.refund(p.TID, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusApproved, pg.CodeBeforeSettlement)
		r, err = e.refund(p.TID, 30_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusApproved, pg.CodeCancelInstead)
		if m := r.ResultCode.Message(); !strings.Contains(m, "취소 요청") || !strings.Contains(m, "not settled yet: cancel instead") || strings.Contains(m, "부분") {
			t.Errorf("full refund before settlement: %q", m)
		}
		if m := pg.CodeBeforeSettlement.Message(); !strings.Contains(m, "부분환불") || !strings.Contains(m, "not settled yet") {
			t.Errorf("partial refund before settlement: %q", m)
		}

		e.gw.settleAll()
		r, err = e.refund(p.TID, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusPartRefunded, pg.CodeSuccess)
		if r.CancelledAmount != 10_000 || r.Balance() != 20_000 || r.FeeAmount() != 500 || r.IssuerState != "partially-refunded" {
			t.Errorf("after a partial refund: %+v", r)
		}
		_, err = e.cancel(p.TID)
		wantCode(t, err, pg.CodeAfterSettlement)
		r, err = e.refund(p.TID, 5_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusPartRefunded, pg.CodeSuccess)
		r, err = e.refund(p.TID, 15_000)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, r, pg.StatusRefunded, pg.CodeSuccess)
		if r.Balance() != 0 || r.IssuerState != "refunded" || len(r.Operations) != 6 {
			t.Errorf("fully refunded: %+v", r)
		}
		if a := e.gw.approvalOf(p.TID); a.refunded != 30_000 {
			t.Errorf("the issuer refunded %d", a.refunded)
		}
		// A refund above the balance of 0 is an over-refund (as the
		// issuer's LimitExceeded), not an "already cancelled".
		_, err = e.refund(p.TID, 1)
		wantCode(t, err, pg.CodeRefundExceeded)
	})
}

func TestOverRefundRefusedBeforeGateway(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	p := e.approved(10_000)
	e.gw.settleAll()
	_, err := e.refund(p.TID, 10_001)
	wantCode(t, err, pg.CodeRefundExceeded)
	if _, err := e.refund(p.TID, 4_000); err != nil {
		t.Fatal(err)
	}
	_, err = e.refund(p.TID, 6_001)
	wantCode(t, err, pg.CodeRefundExceeded)
	if n := e.gw.count("refund"); n != 1 {
		t.Errorf("%d refund calls reached the gateway, want 1", n)
	}
	if e.get(p.TID).Balance() != 6_000 {
		t.Error("balance changed by a refused refund")
	}
}

func TestIdempotentRetry(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		req := e.payReq(cardGood, 15_000)
		first, err := e.pg.Pay(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.pg.Pay(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if again.TID != first.TID || !again.Replayed || first.Replayed || again.ResultCode != pg.CodeSuccess {
			t.Errorf("retry: %s replayed=%v code %s; first %s", again.TID, again.Replayed, again.ResultCode, first.TID)
		}
		// Concurrent retries: one transaction, one issuer call.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				p, err := e.pg.Pay(ctx, req)
				if err != nil || p.TID != first.TID {
					t.Errorf("concurrent retry: %v %v", p, err)
				}
			})
		}
		wg.Wait()
		if n := e.gw.count("approve"); n != 1 {
			t.Errorf("%d approve calls, want 1", n)
		}

		for name, mutate := range map[string]func(*pg.PayRequest){
			"amount":  func(r *pg.PayRequest) { r.Amount++ },
			"card":    func(r *pg.PayRequest) { r.CardNo = pg.CardNumber(cardGood2) },
			"order":   func(r *pg.PayRequest) { r.OrderNo += "x" },
			"product": func(r *pg.PayRequest) { r.ProductName = "라떼" },
		} {
			changed := req
			mutate(&changed)
			_, err := e.pg.Pay(ctx, changed)
			if pg.CodeOf(err) != pg.CodeIdempotencyConflict {
				t.Errorf("changed %s under the same key: %v", name, err)
			}
		}
		// A key serves one operation only.
		_, err = e.pg.Cancel(ctx, pg.CancelRequest{MID: e.m.MID, TID: first.TID, IdempotencyKey: req.IdempotencyKey})
		wantCode(t, err, pg.CodeIdempotencyConflict)
		// Keys are scoped to the merchant.
		other, err := e.pg.CreateMerchant(ctx, pg.NewMerchant{Name: "Other", Contract: defaultContract})
		if err != nil {
			t.Fatal(err)
		}
		o := req
		o.MID = other.MID
		if p, err := e.pg.Pay(ctx, o); err != nil || p.TID == first.TID || p.Replayed {
			t.Errorf("same key, other merchant: %v %v", p, err)
		}

		// Cancels and refunds replay too.
		cr := pg.CancelRequest{MID: e.m.MID, TID: first.TID, Reason: "고객 변심", IdempotencyKey: "cancel-once"}
		c1, err := e.pg.Cancel(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := e.pg.Cancel(ctx, cr)
		if err != nil || !c2.Replayed || c2.ResultCode != pg.CodeSuccess || c2.Status != pg.StatusCancelled || c1.Replayed {
			t.Fatalf("cancel replay: %+v %v", c2, err)
		}
		if n := e.gw.count("cancel"); n != 1 {
			t.Errorf("%d cancel calls", n)
		}
		// A refusal is replayed as recorded.
		big := e.payReq(cardGood, 5_000_000)
		_, err = e.pg.Pay(ctx, big)
		wantCode(t, err, pg.CodeOverMaxAmount)
		_, err = e.pg.Pay(ctx, big)
		wantCode(t, err, pg.CodeOverMaxAmount)
	})
}

func TestDuplicateOrder(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	r := e.payReq(cardGood, 1000)
	if _, err := e.pg.Pay(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.IdempotencyKey += "-b"
	_, err := e.pg.Pay(ctx, r)
	wantCode(t, err, pg.CodeDuplicateOrder)
}

func TestPendingThenResolveByInquiry(t *testing.T) {
	for _, c := range []struct {
		name string
		mode mode
		opt  func(*pg.Config)
	}{
		{"pending answer", pendingProcessed, nil},
		{"transport error", hangupProcessed, nil},
		{"timeout", slowProcessed, func(c *pg.Config) { c.GatewayTimeout = 100 * time.Millisecond }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var opts []func(*pg.Config)
			if c.opt != nil {
				opts = append(opts, c.opt)
			}
			e := newEnv(t, sqltest.TestSQLiteDSN, opts...)
			e.gw.slow = 300 * time.Millisecond
			e.gw.setMode("approve", c.mode)
			req := e.payReq(cardGood, 15_000)
			p, err := e.pg.Pay(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, p, pg.StatusPending, pg.CodePending)
			if p.ApprovalNo != "" || p.PendingOperation != pg.OpApprove {
				t.Errorf("pending payment %+v", p)
			}
			if e.gw.approvalOf(p.TID) == nil {
				t.Fatal("the fake issuer did not approve")
			}
			// Pending holds the order and counts against the daily limit.
			dup := req
			dup.IdempotencyKey += "-b"
			_, err = e.pg.Pay(ctx, dup)
			wantCode(t, err, pg.CodeDuplicateOrder)

			e.gw.setMode("approve", normal)
			rep := e.resolve()
			if rep.Checked != 1 || rep.Resolved != 1 || rep.StillPending != 0 {
				t.Errorf("report %+v", rep)
			}
			got := e.get(p.TID)
			if got.Status != pg.StatusApproved || got.ApprovalNo != e.gw.approvalOf(p.TID).code || got.ApprovalCode != pg.CodeSuccess {
				t.Fatalf("after ResolvePending: %+v", got)
			}
			if n := e.gw.count("inquire"); n != 1 {
				t.Errorf("%d inquiries", n)
			}
			// The approval itself was sent once (the transport may resend a
			// request whose connection dropped, under the same key).
			keys := e.gw.keysFor("approve")
			for _, k := range keys {
				if k != keys[0] {
					t.Errorf("approve sent under keys %v", keys)
				}
			}
			// Nothing left to resolve; the merchant's retry replays.
			if rep := e.resolve(); rep.Checked != 0 {
				t.Errorf("second run %+v", rep)
			}
			r, err := e.pg.Pay(ctx, req)
			if err != nil || r.ResultCode != pg.CodeSuccess || !r.Replayed || r.TID != p.TID {
				t.Errorf("retry after resolution: %+v %v", r, err)
			}
		})
	}
}

func TestPendingRetryWithSameKeyInquires(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	e.gw.setMode("approve", pendingProcessed)
	req := e.payReq(cardGood, 15_000)
	p, err := e.pg.Pay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, p, pg.StatusPending, pg.CodePending)

	// While the issuer cannot be asked, the retry stays pending.
	e.gw.setMode("inquire", unavailable)
	r, err := e.pg.Pay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, r, pg.StatusPending, pg.CodePending)

	e.gw.setMode("inquire", normal)
	r, err = e.pg.Pay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, r, pg.StatusApproved, pg.CodeSuccess)
	if !r.Replayed || r.TID != p.TID {
		t.Errorf("retry %+v", r)
	}
	if n := e.gw.count("approve"); n != 1 {
		t.Errorf("%d approve calls", n)
	}
}

// TestLookupInquiresPending: a merchant's status check of a pending
// payment asks the issuer first, and answers its truth; while the issuer
// cannot tell, the lookup answers pending, never success.
func TestLookupInquiresPending(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	e.gw.setMode("approve", pendingProcessed)
	p, err := e.pg.Pay(ctx, e.payReq(cardGood, 15_000))
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, p, pg.StatusPending, pg.CodePending)
	e.gw.setMode("inquire", unavailable)
	e.clock.Advance(2 * time.Second)
	l, err := e.pg.Lookup(ctx, e.m.MID, p.TID)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, l, pg.StatusPending, pg.CodePending)
	e.gw.setMode("inquire", normal)
	// Polled again at once: the issuer is not asked again.
	if l, err = e.pg.Lookup(ctx, e.m.MID, p.TID); err != nil {
		t.Fatal(err)
	}
	wantState(t, l, pg.StatusPending, pg.CodePending)
	if n := e.gw.count("inquire"); n != 1 {
		t.Errorf("%d inquiries for two lookups within a second, want 1", n)
	}
	e.clock.Advance(2 * time.Second)
	if l, err = e.pg.Find(ctx, e.m.MID, p.OrderNo); err != nil {
		t.Fatal(err)
	}
	wantState(t, l, pg.StatusApproved, pg.CodeSuccess)
	if l.ApprovalNo != e.gw.approvalOf(p.TID).code || l.PendingOperation != "" {
		t.Errorf("after the lookup: %+v", l)
	}
	if n := e.gw.count("inquire"); n != 2 {
		t.Errorf("%d inquiries, want 2 (one per lookup)", n)
	}
	// Nothing pending: a lookup asks the issuer nothing.
	if _, err := e.pg.Lookup(ctx, e.m.MID, p.TID); err != nil {
		t.Fatal(err)
	}
	if n := e.gw.count("inquire"); n != 2 {
		t.Errorf("%d inquiries after a lookup of a settled state", n)
	}
}

func TestPendingNeverProcessedIsNotADecline(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		e.gw.setMode("approve", unavailable)
		req := e.payReq(cardGood, 15_000)
		p, err := e.pg.Pay(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, p, pg.StatusPending, pg.CodePending)

		// The issuer has no record yet: within the grace period the
		// request may still be in flight, so it stays pending.
		e.clock.Advance(5 * time.Minute)
		if rep := e.resolve(); rep.StillPending != 1 || rep.Resolved != 0 {
			t.Errorf("report within grace %+v", rep)
		}
		wantState(t, e.get(p.TID), pg.StatusPending, pg.CodePending)

		e.clock.Advance(6 * time.Minute)
		if rep := e.resolve(); rep.Resolved != 1 {
			t.Errorf("report after grace %+v", rep)
		}
		got := e.get(p.TID)
		if got.Status != pg.StatusFailed || got.ApprovalCode != pg.CodeNotProcessed {
			t.Fatalf("after grace: %s/%s, want FAILED/2002", got.Status, got.ApprovalCode)
		}
		r, err := e.pg.Pay(ctx, req)
		if err != nil || r.ResultCode != pg.CodeNotProcessed || r.Status != pg.StatusFailed {
			t.Errorf("retry of the given-up payment: %+v %v", r, err)
		}
		// The order is free again for a new attempt.
		e.gw.setMode("approve", normal)
		req.IdempotencyKey += "-2"
		if p2, err := e.pg.Pay(ctx, req); err != nil || p2.Status != pg.StatusApproved {
			t.Fatalf("new attempt: %+v %v", p2, err)
		}
	})
}

func TestGatewayRefusesRequest(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	e.gw.setMode("approve", noRoute)
	p := e.pay(cardGood, 1000)
	wantState(t, p, pg.StatusFailed, pg.CodeNoIssuer)
	if rep := e.resolve(); rep.Checked != 0 {
		t.Errorf("a refused request left something pending: %+v", rep)
	}
}

func TestCancelPendingThenResent(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		p := e.approved(15_000)
		e.gw.setMode("cancel", unavailable)
		c, err := e.cancel(p.TID)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, c, pg.StatusApproved, pg.CodePending)
		if c.PendingOperation != pg.OpCancel {
			t.Errorf("pending operation %q", c.PendingOperation)
		}
		// One operation at a time.
		_, err = e.cancel(p.TID)
		wantCode(t, err, pg.CodeOperationPending)
		_, err = e.refund(p.TID, 1000)
		wantCode(t, err, pg.CodeOperationPending)

		e.gw.setMode("cancel", normal)
		if rep := e.resolve(); rep.Resolved != 1 {
			t.Errorf("report %+v", rep)
		}
		wantState(t, e.get(p.TID), pg.StatusCancelled, pg.CodeSuccess)
		keys := e.gw.keysFor("cancel")
		if len(keys) != 2 || keys[0] != keys[1] {
			t.Errorf("cancel sent under keys %v, want the same key twice", keys)
		}
	})
}

func TestRefundPendingResolvedByInquiry(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	p := e.approved(30_000)
	e.gw.settleAll()
	e.gw.setMode("refund", pendingProcessed)
	r, err := e.refund(p.TID, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, r, pg.StatusApproved, pg.CodePending)
	if r.PendingOperation != pg.OpRefund || r.Balance() != 30_000 {
		t.Errorf("pending refund %+v", r)
	}
	e.resolve()
	got := e.get(p.TID)
	if got.Status != pg.StatusPartRefunded || got.Balance() != 20_000 || got.PendingOperation != "" {
		t.Errorf("after resolution %+v", got)
	}
	// The inquiry showed the refund done: it was not sent again.
	if n := e.gw.count("refund"); n != 1 {
		t.Errorf("%d refund calls", n)
	}
}

func TestMerchants(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	if e.m.MID != "M000001" || !strings.HasPrefix(e.m.APIKey, "pgk_") || e.m.Status != pg.MerchantActive {
		t.Errorf("first merchant %+v", e.m.Merchant)
	}
	m2, err := e.pg.CreateMerchant(ctx, pg.NewMerchant{Name: "Second", Contract: pg.Contract{FeeBPS: 300}})
	if err != nil || m2.MID != "M000002" || m2.APIKey == e.m.APIKey {
		t.Fatalf("second merchant %+v %v", m2, err)
	}
	fed, err := e.pg.CreateMerchant(ctx, pg.NewMerchant{MID: "KECISFED01", Name: "KECIS federation", Contract: defaultContract})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.pg.CreateMerchant(ctx, pg.NewMerchant{MID: "KECISFED01", Name: "again", Contract: defaultContract})
	wantCode(t, err, pg.CodeInvalidRequest)
	_, err = e.pg.CreateMerchant(ctx, pg.NewMerchant{Name: "bad", Contract: pg.Contract{BINPrefixes: []string{"94x"}}})
	wantCode(t, err, pg.CodeInvalidRequest)

	who, err := e.pg.Authenticate(ctx, fed.APIKey)
	if err != nil || who.MID != "KECISFED01" || who.APIKeyHint != fed.APIKey[len(fed.APIKey)-4:] {
		t.Fatalf("Authenticate: %+v %v", who, err)
	}
	_, err = e.pg.Authenticate(ctx, fed.APIKey+"x")
	wantCode(t, err, pg.CodeUnauthorized)
	if ms, err := e.pg.Merchants(ctx); err != nil || len(ms) != 3 {
		t.Errorf("Merchants: %d %v", len(ms), err)
	}

	// A suspended merchant may not pay, but may still cancel; the refusal
	// is not recorded under the key.
	pr := e.payReq(cardGood, 1000)
	p, err := e.pg.Pay(ctx, pr)
	if err != nil || p.Status != pg.StatusApproved {
		t.Fatalf("Pay: %v %+v", err, p)
	}
	if _, err := e.pg.SetMerchantStatus(ctx, e.m.MID, pg.MerchantSuspended); err != nil {
		t.Fatal(err)
	}
	r := e.payReq(cardGood, 1000)
	_, err = e.pg.Pay(ctx, r)
	wantCode(t, err, pg.CodeMerchantInactive)
	// A retry of a payment made before answers it still: the recorded
	// outcome under its key comes before the merchant's state.
	if again, err := e.pg.Pay(ctx, pr); err != nil || !again.Replayed || again.TID != p.TID {
		t.Errorf("retry of an earlier payment by a suspended merchant: %v %+v", err, again)
	}
	if c, err := e.cancel(p.TID); err != nil || c.Status != pg.StatusCancelled {
		t.Errorf("cancel by a suspended merchant: %v %v", c, err)
	}
	if _, err := e.pg.SetMerchantStatus(ctx, e.m.MID, pg.MerchantActive); err != nil {
		t.Fatal(err)
	}
	if p, err := e.pg.Pay(ctx, r); err != nil || p.Status != pg.StatusApproved {
		t.Errorf("same key after reactivation: %v %v", p, err)
	}
	_, err = e.pg.SetMerchantStatus(ctx, "M999999", pg.MerchantActive)
	wantCode(t, err, pg.CodeNotFound)
}

func TestOpenValidatesConfig(t *testing.T) {
	base := pg.Config{DSN: sqltest.TestSQLiteDSN(t), IssuerGatewayURL: "http://127.0.0.1:1", DataKey: testDataKey}
	for name, mutate := range map[string]func(*pg.Config){
		"no dsn":      func(c *pg.Config) { c.DSN = "" },
		"no gateway":  func(c *pg.Config) { c.IssuerGatewayURL = "" },
		"bad gateway": func(c *pg.Config) { c.IssuerGatewayURL = "ftp://x" },
		"short key":   func(c *pg.Config) { c.DataKey = testDataKey[:16] },
		"grace":       func(c *pg.Config) { c.PendingGrace = time.Minute; c.GatewayTimeout = time.Minute },
	} {
		c := base
		mutate(&c)
		if p, err := pg.Open(ctx, c); err == nil {
			p.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestErrorsAreComparable(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	_, err := e.pg.Pay(ctx, e.payReq(cardGood, 2_000_000))
	if !errors.Is(err, pg.ErrOverMaxAmount) || errors.Is(err, pg.ErrDailyLimit) {
		t.Errorf("errors.Is on %v", err)
	}
	if s := err.Error(); !strings.Contains(s, "3002") {
		t.Errorf("error text %q", s)
	}
	if s := fmt.Sprintf("%v %+v %#v %s %d", e.payReq(cardGood, 1), e.payReq(cardGood, 1), e.payReq(cardGood, 1),
		pg.CardNumber(cardGood), pg.CardNumber(cardGood)); len(findPANs(s)) > 0 || strings.Contains(s, cardGood) {
		t.Errorf("a request prints its card number: %s", s)
	}
}

func TestGatewayAnswersClassified(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	const pj, js = "application/problem+json", "application/json"
	answer := func(outcome, status, sub string, fields string) string {
		return fmt.Sprintf(`{"outcome":%q,"status":%q,"sub_status":%q,"message":"m","provider":"p","request_id":"r","fields":%s}`,
			outcome, status, sub, fields)
	}
	for _, c := range []struct {
		name   string
		raw    rawAnswer
		status pg.Status
		code   pg.ResultCode
	}{
		{"in flight elsewhere", rawAnswer{409, pj, `{"type":"urn:kecis:problem:idempotency-key-in-flight","title":"x","status":409}`}, pg.StatusPending, pg.CodePending},
		{"throttled", rawAnswer{429, pj, `{"type":"about:blank","status":429}`}, pg.StatusPending, pg.CodePending},
		{"server error", rawAnswer{500, "text/plain", "oops"}, pg.StatusPending, pg.CodePending},
		{"bad gateway", rawAnswer{502, "text/html", "<html>"}, pg.StatusPending, pg.CodePending},
		{"not JSON", rawAnswer{200, js, "<xml/>"}, pg.StatusPending, pg.CodePending},
		{"no status", rawAnswer{200, js, answer("answered", "", "", "{}")}, pg.StatusPending, pg.CodePending},
		{"pending outcome", rawAnswer{202, js, answer("pending", "Responder", "Pending", "null")}, pg.StatusPending, pg.CodePending},
		{"unavailable outcome", rawAnswer{503, js, answer("unavailable", "Responder", "ProviderUnavailable", "null")}, pg.StatusPending, pg.CodePending},
		{"answered pending", rawAnswer{200, js, answer("answered", "Responder", "urn:kecis:status:Pending", "null")}, pg.StatusPending, pg.CodePending},
		{"key reused", rawAnswer{422, pj, `{"type":"urn:kecis:problem:idempotency-key-reused"}`}, pg.StatusPending, pg.CodePending},
		{"success without approval number", rawAnswer{200, js, answer("answered", "Success", "", `{"Ecom_Transaction_ResponseData":"approved"}`)}, pg.StatusPending, pg.CodePending},
		{"invalid fields", rawAnswer{400, pj, `{"type":"urn:kecis:problem:invalid-fields","title":"the ECML fields are not valid"}`}, pg.StatusFailed, pg.CodeNotProcessed},
		{"unauthenticated", rawAnswer{401, pj, `{"type":"urn:kecis:problem:unauthenticated"}`}, pg.StatusFailed, pg.CodeNotProcessed},
		{"no route", rawAnswer{422, pj, `{"type":"urn:kecis:problem:no-route"}`}, pg.StatusFailed, pg.CodeNoIssuer},
		{"declined", rawAnswer{200, js, answer("answered", "Responder", "Declined", "null")}, pg.StatusDeclined, pg.CodeCardDeclined},
		{"approved", rawAnswer{200, js, answer("answered", "urn:oasis:names:tc:SAML:2.0:status:Success", "",
			`{"Ecom_Transaction_ApprovalCode":"A1234567","Ecom_Transaction_ResponseData":"approved","Ecom_Transaction_Amount":"1000"}`)},
			pg.StatusApproved, pg.CodeSuccess},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.gw.setRaw("approve", &c.raw)
			p := e.pay(cardGood, 1000)
			wantState(t, p, c.status, c.code)
			if c.status == pg.StatusApproved && p.ApprovalNo != "A1234567" {
				t.Errorf("approval number %q", p.ApprovalNo)
			}
		})
	}
}

func TestRunResolvesPending(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	e.gw.setMode("approve", pendingProcessed)
	p := e.pay(cardGood, 1000)
	e.gw.setMode("approve", normal)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.pg.Run(rctx, 5*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.get(p.TID).Status == pg.StatusPending && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if got := e.get(p.TID); got.Status != pg.StatusApproved {
		t.Errorf("after Run: %s", got.Status)
	}
}
