package issuer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
)

func TestIssueCard(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		for typ, bin := range issuer.DefaultBINs {
			c := e.issue(typ, 1_000_000)
			pan := c.PAN.Reveal()
			if len(pan) != 16 || !ecml.LuhnValid(pan) || !strings.HasPrefix(pan, bin) {
				t.Errorf("%s card number %s: want 16 Luhn-valid digits under BIN %s", typ, c.PAN, bin)
			}
			if c.BIN != bin || c.Last4 != c.PAN.Last4() || c.Masked() != ecml.MaskPAN(pan) {
				t.Errorf("%s card: BIN %s last4 %s masked %s", typ, c.BIN, c.Last4, c.Masked())
			}
			if c.Status != issuer.CardActive || c.Available != 1_000_000 || c.Currency != "KRW" || c.HolderPhone != testPhoneD {
				t.Errorf("%s card: %+v", typ, c.Card)
			}
			// Valid five years from the issue month (2026-11, KST).
			if c.ExpMonth != 11 || c.ExpYear != 2031 {
				t.Errorf("expiry %02d/%d, want 11/2031", c.ExpMonth, c.ExpYear)
			}
			found, err := e.iss.FindCard(ctx, c.PAN)
			if err != nil || found.ID != c.ID {
				t.Errorf("FindCard = %v, %v; want %s", found, err, c.ID)
			}
		}
		if got := fmt.Sprint(e.issue(issuer.Credit, 1)); ecml.ContainsPAN(got) {
			t.Errorf("an IssuedCard prints its number: %s", got)
		}

		// Idempotent: the same key and request give the same card and number.
		req := issuer.IssueCardRequest{Type: issuer.Check, HolderName: "김철수", HolderPhone: "01011112222",
			BirthDate: "900101", Password: "1234", Limit: 500_000, IdempotencyKey: "issue-1"}
		c1, err := e.iss.IssueCard(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := e.iss.IssueCard(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if c2.ID != c1.ID || c2.PAN != c1.PAN || !c2.Replayed || c1.Replayed {
			t.Errorf("replay: %s/%v vs %s/%v", c1.ID, c1.Replayed, c2.ID, c2.Replayed)
		}
		req.Limit = 1
		_, err = e.iss.IssueCard(ctx, req)
		wantCode(t, err, issuer.CodeIdempotencyConflict)

		for name, mut := range map[string]func(*issuer.IssueCardRequest){
			"type":     func(r *issuer.IssueCardRequest) { r.Type = "debit" },
			"phone":    func(r *issuer.IssueCardRequest) { r.HolderPhone = "02-123-4567" },
			"birth":    func(r *issuer.IssueCardRequest) { r.BirthDate = "871332" },
			"password": func(r *issuer.IssueCardRequest) { r.Password = "12" },
			"limit":    func(r *issuer.IssueCardRequest) { r.Limit = -1 },
			"currency": func(r *issuer.IssueCardRequest) { r.Currency = "XXY" },
			"expiry":   func(r *issuer.IssueCardRequest) { r.ExpMonth, r.ExpYear = 13, 2030 },
			"key":      func(r *issuer.IssueCardRequest) { r.IdempotencyKey = "" },
			"name":     func(r *issuer.IssueCardRequest) { r.HolderName = "4111111111111111" },
		} {
			r := issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "A", HolderPhone: testPhone,
				BirthDate: testBirth, Password: testPassword, IdempotencyKey: "bad-" + name}
			mut(&r)
			_, err := e.iss.IssueCard(ctx, r)
			if !errors.Is(err, issuer.ErrInvalidRequest) {
				t.Errorf("%s: err = %v, want INVALID_REQUEST", name, err)
			}
		}
	})
}

func TestApproveLimit(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		credit := e.issue(issuer.Credit, 50_000)
		a := e.approve(credit, 30_000)
		if len(a.Number) != 8 || a.Status != issuer.StatusApproved || a.Amount != krw(30_000) ||
			a.CardLast4 != credit.Last4 || a.CardholderAuth != issuer.AuthNone {
			t.Errorf("approval %+v", a)
		}
		if !a.CutOffAt.Equal(time.Date(2026, 11, 22, 23, 0, 0, 0, issuer.KST)) {
			t.Errorf("cut-off %v, want 2026-11-22 23:00 KST", a.CutOffAt)
		}
		if got := e.available(credit); got != 20_000 {
			t.Errorf("available %d, want 20000", got)
		}
		_, err := e.iss.Approve(ctx, e.approveReq(credit, 20_001))
		wantCode(t, err, issuer.CodeLimitExceeded)
		if !errors.Is(err, issuer.ErrLimitExceeded) || !issuer.CodeOf(err).IsDecline() {
			t.Errorf("errors.Is(%v, ErrLimitExceeded) false or not a decline", err)
		}
		e.approve(credit, 20_000) // exactly the rest
		if got := e.available(credit); got != 0 {
			t.Errorf("available %d, want 0", got)
		}

		check := e.issue(issuer.Check, 10_000)
		_, err = e.iss.Approve(ctx, e.approveReq(check, 10_001))
		wantCode(t, err, issuer.CodeInsufficientFunds)
		prepaid := e.issue(issuer.Prepaid, 0)
		_, err = e.iss.Approve(ctx, e.approveReq(prepaid, 1))
		wantCode(t, err, issuer.CodeInsufficientFunds)
		if got := e.available(check); got != 10_000 {
			t.Errorf("a decline changed the balance: %d", got)
		}
	})
}

func TestDeclines(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		usd := e.issue(issuer.Credit, 100_00, func(r *issuer.IssueCardRequest) { r.Currency = "USD" })
		old := e.issue(issuer.Credit, 100_000, func(r *issuer.IssueCardRequest) { r.ExpMonth, r.ExpYear = 10, 2026 })
		lost := e.issue(issuer.Credit, 100_000)
		if _, err := e.iss.SetCardStatus(ctx, lost.ID, issuer.CardLost); err != nil {
			t.Fatal(err)
		}

		unknown := "9490109999999999"
		d, _ := ecml.LuhnCheckDigit(unknown[:15])
		unknown = unknown[:15] + string(d)

		for _, tc := range []struct {
			name string
			mut  func(*issuer.ApproveRequest)
			want issuer.Code
		}{
			{"unknown card", func(r *issuer.ApproveRequest) { r.Card.PAN = ecml.PAN(unknown) }, issuer.CodeInvalidCard},
			{"not Luhn", func(r *issuer.ApproveRequest) { r.Card.PAN = ecml.PAN(c.PAN.Reveal()[:15] + "x") }, issuer.CodeInvalidCard},
			{"wrong expiry", func(r *issuer.ApproveRequest) { r.Card.ExpYear++ }, issuer.CodeInvalidCard},
			{"expired", func(r *issuer.ApproveRequest) {
				r.Card = issuer.CardData{PAN: old.PAN, ExpMonth: 10, ExpYear: 26}
			}, issuer.CodeExpired},
			{"lost", func(r *issuer.ApproveRequest) { r.Card.PAN = lost.PAN }, issuer.CodeDeclined},
			{"currency", func(r *issuer.ApproveRequest) { r.Amount = ecml.Money{Minor: 100, Currency: "USD"} }, issuer.CodeDeclined},
			{"usd card in KRW", func(r *issuer.ApproveRequest) { r.Card.PAN = usd.PAN }, issuer.CodeDeclined},
			{"zero amount", func(r *issuer.ApproveRequest) { r.Amount = krw(0) }, issuer.CodeInvalidRequest},
			{"no order", func(r *issuer.ApproveRequest) { r.OrderID = "" }, issuer.CodeInvalidRequest},
			{"no key", func(r *issuer.ApproveRequest) { r.IdempotencyKey = "" }, issuer.CodeInvalidRequest},
			{"bad prefix", func(r *issuer.ApproveRequest) { r.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: "4"} }, issuer.CodeInvalidRequest},
			{"PAN in order", func(r *issuer.ApproveRequest) { r.OrderID = c.PAN.Reveal() }, issuer.CodeInvalidRequest},
		} {
			r := e.approveReq(c, 1000)
			tc.mut(&r)
			_, err := e.iss.Approve(ctx, r)
			if got := issuer.CodeOf(err); got != tc.want {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
			}
			if err != nil && ecml.ContainsPAN(err.Error()) {
				t.Errorf("%s: error shows a card number: %v", tc.name, err)
			}
		}
		// A USD card pays in USD (two decimals).
		r := e.approveReq(usd, 0)
		r.Amount = ecml.Money{Minor: 12_34, Currency: "USD"}
		if _, err := e.iss.Approve(ctx, r); err != nil {
			t.Errorf("USD approval: %v", err)
		}
		// One approval per order.
		first := e.approve(c, 1000)
		r = e.approveReq(c, 1000)
		r.OrderID = first.OrderID
		_, err := e.iss.Approve(ctx, r)
		wantCode(t, err, issuer.CodeDuplicateOrder)
		if got := e.available(c); got != 99_000 {
			t.Errorf("available %d after declines, want 99000", got)
		}
	})
}

func TestKeyIn(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 1_000_000)
		keyIn := func(prefix, birth string) error {
			r := e.approveReq(c, 1000)
			r.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: ecml.Secret(prefix), BirthDate: ecml.Secret(birth)}
			a, err := e.iss.Approve(ctx, r)
			if err == nil && a.CardholderAuth != issuer.AuthKeyIn {
				t.Errorf("cardholder auth %s, want keyin", a.CardholderAuth)
			}
			return err
		}
		failures := func() int {
			got, err := e.iss.Card(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.FailedAttempts
		}
		if err := keyIn(testPrefix, testBirth); err != nil {
			t.Fatalf("right key-in data: %v", err)
		}
		if err := keyIn("", testBirth); err != nil {
			t.Fatalf("birth date only: %v", err)
		}
		wantCode(t, keyIn("12", testBirth), issuer.CodeInvalidCard)
		wantCode(t, keyIn(testPrefix, "870313"), issuer.CodeInvalidCard)
		if n := failures(); n != 2 {
			t.Errorf("failures %d, want 2", n)
		}
		// A success resets the count.
		if err := keyIn(testPrefix, ""); err != nil {
			t.Fatal(err)
		}
		if n := failures(); n != 0 {
			t.Errorf("failures %d after success, want 0", n)
		}

		// A repeated request (same idempotency key) is not a second failure.
		r := e.approveReq(c, 1000)
		r.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: "99"}
		for range 3 {
			_, err := e.iss.Approve(ctx, r)
			wantCode(t, err, issuer.CodeInvalidCard)
		}
		if n := failures(); n != 1 {
			t.Errorf("failures %d after three repeats, want 1", n)
		}
		for range 4 {
			wantCode(t, keyIn("99", testBirth), issuer.CodeInvalidCard)
		}
		got, _ := e.iss.Card(ctx, c.ID)
		if got.Status != issuer.CardBlocked || got.FailedAttempts != 5 {
			t.Fatalf("after 5 failures: status %s failures %d, want blocked 5", got.Status, got.FailedAttempts)
		}
		// Blocked: even the right data is declined, and no longer counted.
		wantCode(t, keyIn(testPrefix, testBirth), issuer.CodeDeclined)
		_, err := e.iss.Approve(ctx, e.approveReq(c, 1000))
		wantCode(t, err, issuer.CodeDeclined)
		if !strings.Contains(e.logs.String(), "card blocked after repeated key-in failures") {
			t.Error("blocking was not logged")
		}
		// Reactivation clears the count.
		if got, err := e.iss.SetCardStatus(ctx, c.ID, issuer.CardActive); err != nil || got.FailedAttempts != 0 {
			t.Fatalf("reactivate: %v %v", got, err)
		}
		if err := keyIn(testPrefix, testBirth); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		a := e.approve(c, 15_000)
		e.clock.Advance(5 * time.Minute)
		got, err := e.cancel(a)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != issuer.StatusCancelled || !got.CancelledAt.Equal(e.clock.Now()) {
			t.Errorf("after cancel: %s at %v", got.Status, got.CancelledAt)
		}
		if av := e.available(c); av != 100_000 {
			t.Errorf("available %d after cancel, want 100000", av)
		}
		_, err = e.cancel(a)
		wantCode(t, err, issuer.CodeAlreadyCancelled)
		_, err = e.refund(a, 1000)
		wantCode(t, err, issuer.CodeAlreadyCancelled)
		_, err = e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: "OTHER", ApprovalNumber: a.Number, IdempotencyKey: "x"})
		wantCode(t, err, issuer.CodeNotFound)
		_, err = e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: merchant, ApprovalNumber: "00000000", IdempotencyKey: "y"})
		wantCode(t, err, issuer.CodeNotFound)

		// Settlement skips cancelled approvals.
		e.pastCutOff()
		s, err := e.iss.Settle(ctx, e.clock.Now())
		if err != nil || s.Count != 0 {
			t.Errorf("Settle = %+v, %v; want nothing", s, err)
		}
	})
}

func TestCancelAfterCutOff(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		a := e.approve(c, 15_000)
		b := e.approve(c, 5_000)

		// Past the cut-off the approval is settled, even before the job ran.
		e.pastCutOff()
		_, err := e.cancel(a)
		wantCode(t, err, issuer.CodeAlreadySettled)
		if got := e.inquire(a.Number); got.Status != issuer.StatusSettled || !got.SettledAt.Equal(a.CutOffAt) {
			t.Errorf("inquire: %s settled %v", got.Status, got.SettledAt)
		}

		s, err := e.iss.Settle(ctx, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if s.Count != 2 || s.Totals["KRW"] != 20_000 || s.BatchID == "" {
			t.Errorf("settlement %+v, want 2 approvals of 20000 KRW", s)
		}
		got := e.inquire(b.Number)
		if got.Status != issuer.StatusSettled || got.BatchID != s.BatchID {
			t.Errorf("after Settle: %s batch %q", got.Status, got.BatchID)
		}
		_, err = e.cancel(b)
		wantCode(t, err, issuer.CodeAlreadySettled)
		if av := e.available(c); av != 80_000 {
			t.Errorf("available %d, want 80000", av)
		}
		// Running it again settles nothing twice.
		if s, err := e.iss.Settle(ctx, e.clock.Now()); err != nil || s.Count != 0 || s.BatchID != "" {
			t.Errorf("second Settle = %+v, %v", s, err)
		}
		// A new approval belongs to the next cut-off.
		n := e.approve(c, 1000)
		if !n.CutOffAt.Equal(a.CutOffAt.Add(24 * time.Hour)) {
			t.Errorf("next cut-off %v", n.CutOffAt)
		}
		if s, _ := e.iss.Settle(ctx, e.clock.Now()); s.Count != 0 {
			t.Errorf("settled an approval before its cut-off")
		}
	})
}

func TestRefunds(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		a := e.approve(c, 15_000)
		_, err := e.refund(a, 5_000)
		wantCode(t, err, issuer.CodeNotSettled)

		e.pastCutOff()
		if _, err := e.iss.Settle(ctx, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r1, err := e.refund(a, 5_000)
		if err != nil {
			t.Fatal(err)
		}
		if r1.Amount != krw(5_000) || r1.Approval.Status != issuer.StatusPartiallyRefunded ||
			r1.Approval.Refunded != 5_000 || r1.Approval.Refundable() != 10_000 {
			t.Errorf("first refund: %+v / %+v", r1, r1.Approval)
		}
		if av := e.available(c); av != 90_000 {
			t.Errorf("available %d after refund, want 90000", av)
		}
		_, err = e.refund(a, 10_001)
		wantCode(t, err, issuer.CodeRefundExceeded)
		_, err = e.iss.Refund(ctx, issuer.RefundRequest{MerchantID: merchant, ApprovalNumber: a.Number,
			Amount: ecml.Money{Minor: 100, Currency: "USD"}, IdempotencyKey: "usd"})
		wantCode(t, err, issuer.CodeInvalidRequest)
		r2, err := e.refund(a, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Approval.Status != issuer.StatusRefunded || r2.Approval.Refundable() != 0 || len(r2.Approval.Refunds) != 2 {
			t.Errorf("second refund: %+v", r2.Approval)
		}
		_, err = e.refund(a, 1)
		wantCode(t, err, issuer.CodeRefundExceeded)
		if av := e.available(c); av != 100_000 {
			t.Errorf("available %d after full refund, want 100000", av)
		}
		_, err = e.cancel(a)
		wantCode(t, err, issuer.CodeAlreadySettled)

		// A refund past the cut-off but before the job settles the
		// approval itself; the job then still books it into a batch.
		b := e.approve(c, 8_000)
		e.pastCutOff()
		if _, err := e.refund(b, 3_000); err != nil {
			t.Fatal(err)
		}
		s, err := e.iss.Settle(ctx, e.clock.Now())
		if err != nil || s.Count != 1 || s.Totals["KRW"] != 8_000 {
			t.Errorf("Settle = %+v, %v", s, err)
		}
		if got := e.inquire(b.Number); got.Status != issuer.StatusPartiallyRefunded || got.BatchID != s.BatchID {
			t.Errorf("b: %s batch %q", got.Status, got.BatchID)
		}
	})
}

func TestIdempotency(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		req := e.approveReq(c, 15_000)
		a1, err := e.iss.Approve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := e.iss.Approve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if a2.Number != a1.Number || !a2.Replayed || a1.Replayed {
			t.Errorf("replay gave %s (replayed %v), want %s", a2.Number, a2.Replayed, a1.Number)
		}
		if av := e.available(c); av != 85_000 {
			t.Errorf("available %d: the repeat charged again", av)
		}
		if n := len(e.phone.Messages(testPhoneD)); n != 1 {
			t.Errorf("%d SMS for one approval", n)
		}

		for name, mut := range map[string]func(*issuer.ApproveRequest){
			"amount":   func(r *issuer.ApproveRequest) { r.Amount = krw(15_001) },
			"order":    func(r *issuer.ApproveRequest) { r.OrderID += "x" },
			"key-in":   func(r *issuer.ApproveRequest) { r.Card.KeyIn = &issuer.KeyIn{BirthDate: testBirth} },
			"merchant": func(r *issuer.ApproveRequest) { r.MerchantName = "Other Shop" },
		} {
			r := req
			mut(&r)
			_, err := e.iss.Approve(ctx, r)
			if !errors.Is(err, issuer.ErrIdempotencyConflict) {
				t.Errorf("%s changed: %v, want IDEMPOTENCY_CONFLICT", name, err)
			}
		}
		// The same key for another operation is a conflict too.
		_, err = e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: merchant, ApprovalNumber: a1.Number, IdempotencyKey: req.IdempotencyKey})
		wantCode(t, err, issuer.CodeIdempotencyConflict)
		// Keys belong to one merchant: another merchant's key of the same name is its own.
		other := req
		other.MerchantID = "M-OTHER"
		if a, err := e.iss.Approve(ctx, other); err != nil || a.Number == a1.Number {
			t.Errorf("another merchant's key: %v, %v", a, err)
		}

		// A decline is repeated as the same decline.
		big := e.approveReq(c, 1_000_000)
		for range 2 {
			_, err := e.iss.Approve(ctx, big)
			wantCode(t, err, issuer.CodeLimitExceeded)
		}

		// Cancel and refund repeat their first outcome.
		cr := issuer.CancelRequest{MerchantID: merchant, ApprovalNumber: a1.Number, IdempotencyKey: "c-1"}
		x1, err := e.iss.Cancel(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		x2, err := e.iss.Cancel(ctx, cr)
		if err != nil || !x2.Replayed || x2.Status != issuer.StatusCancelled || x1.Replayed {
			t.Errorf("cancel replay: %+v, %v", x2, err)
		}
		if av := e.available(c); av != 100_000-15_000 {
			t.Errorf("available %d after cancel + repeat, want 85000", av) // M-OTHER's approval holds 15000
		}

		b := e.approve(c, 10_000)
		e.pastCutOff()
		rr := issuer.RefundRequest{MerchantID: merchant, ApprovalNumber: b.Number, Amount: krw(4_000), IdempotencyKey: "r-1"}
		r1, err := e.iss.Refund(ctx, rr)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := e.iss.Refund(ctx, rr)
		if err != nil || r2.ID != r1.ID || !r2.Replayed || r2.Approval.Refunded != 4_000 {
			t.Errorf("refund replay: %+v, %v", r2, err)
		}
		rr.Amount = krw(4_001)
		_, err = e.iss.Refund(ctx, rr)
		wantCode(t, err, issuer.CodeIdempotencyConflict)
	})
}

func TestInquire(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		a := e.approve(c, 15_000)
		byOrder, err := e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: merchant, OrderID: a.OrderID})
		if err != nil || byOrder.Number != a.Number || byOrder.Status != issuer.StatusApproved {
			t.Fatalf("by order: %+v, %v", byOrder, err)
		}
		for _, r := range []issuer.InquireRequest{
			{MerchantID: "OTHER", ApprovalNumber: a.Number},
			{MerchantID: "OTHER", OrderID: a.OrderID},
			{MerchantID: merchant, OrderID: "nope"},
			{MerchantID: merchant, ApprovalNumber: "12345678"},
		} {
			_, err := e.iss.Inquire(ctx, r)
			wantCode(t, err, issuer.CodeNotFound)
		}
		_, err = e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: merchant})
		wantCode(t, err, issuer.CodeInvalidRequest)

		b := e.approve(c, 5_000)
		if _, err := e.cancel(b); err != nil {
			t.Fatal(err)
		}
		e.pastCutOff()
		steps := []struct {
			do     func()
			status issuer.Status
			ref    int64
		}{
			{func() {}, issuer.StatusSettled, 0},
			{func() { e.iss.Settle(ctx, e.clock.Now()) }, issuer.StatusSettled, 0},
			{func() { e.refund(a, 5_000) }, issuer.StatusPartiallyRefunded, 5_000},
			{func() { e.refund(a, 10_000) }, issuer.StatusRefunded, 15_000},
		}
		for k, s := range steps {
			s.do()
			got := e.inquire(a.Number)
			if got.Status != s.status || got.Refunded != s.ref || got.Amount != krw(15_000) {
				t.Errorf("step %d: %s refunded %d, want %s %d", k, got.Status, got.Refunded, s.status, s.ref)
			}
		}
		if got := e.inquire(b.Number); got.Status != issuer.StatusCancelled || got.Refundable() != 0 {
			t.Errorf("cancelled approval reads %s", got.Status)
		}
		recent, err := e.iss.RecentApprovals(ctx, 10)
		if err != nil || len(recent) != 2 {
			t.Errorf("RecentApprovals: %d, %v", len(recent), err)
		}
	})
}

func TestSMSTexts(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	c := e.issue(issuer.Credit, 1_000_000)
	a := e.approve(c, 15_000)
	e.clock.Advance(5 * time.Minute)
	if _, err := e.cancel(a); err != nil {
		t.Fatal(err)
	}
	r := e.approveReq(c, 300_000)
	r.Installments = 3
	r.MerchantName = "아주 긴 이름을 가진 온라인 쇼핑몰 주식회사 본점"
	b, err := e.iss.Approve(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	e.pastCutOff() // 2026-11-22 23:01 KST
	if _, err := e.refund(b, 120_000); err != nil {
		t.Fatal(err)
	}
	usd := e.issue(issuer.Credit, 1_000_000, func(r *issuer.IssueCardRequest) { r.Currency = "USD" })
	ur := e.approveReq(usd, 0)
	ur.Amount = ecml.Money{Minor: 1_234_56, Currency: "USD"}
	if _, err := e.iss.Approve(ctx, ur); err != nil {
		t.Fatal(err)
	}

	l4, u4 := c.Last4, usd.Last4
	want := strings.Join([]string{
		"[KECIS Card] 승인 15,000원 Example Shop 11/22 19:00 (" + l4 + ")",
		"[KECIS Card] 승인취소 15,000원 Example Shop 11/22 19:05 (" + l4 + ")",
		"[KECIS Card] 승인 300,000원 3개월 아주 긴 이름을 가진 온라인 쇼핑몰 11/22 19:05 (" + l4 + ")",
		"[KECIS Card] 환불 120,000원 아주 긴 이름을 가진 온라인 쇼핑몰 11/22 23:01 (" + l4 + ")",
		"[KECIS Card] 승인 USD 1,234.56 Example Shop 11/22 23:01 (" + u4 + ")",
		"",
	}, "\n")
	got := texts(e.phone.Messages(testPhoneD))
	if got != want {
		t.Errorf("SMS:\n%s\nwant:\n%s", got, want)
	}
	if ecml.ContainsPAN(got) {
		t.Error("an SMS shows a card number")
	}
}

func TestNotifierFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn, func(c *issuer.Config) { c.NotifyMaxAttempts = 4 })
		c := e.issue(issuer.Credit, 100_000)
		e.phone.fail.Store(true)
		a := e.approve(c, 15_000) // committed although the SMS fails
		if got := e.inquire(a.Number); got.Status != issuer.StatusApproved {
			t.Fatalf("approval not committed: %s", got.Status)
		}
		if av := e.available(c); av != 85_000 {
			t.Errorf("available %d", av)
		}
		outbox := func() issuer.Notification {
			ns, err := e.iss.Notifications(ctx, 1)
			if err != nil || len(ns) != 1 {
				t.Fatalf("Notifications: %v, %v", ns, err)
			}
			return ns[0]
		}
		n := outbox()
		if n.State != "pending" || n.Attempts != 1 || !strings.Contains(n.LastError, "sms gateway unavailable") ||
			n.Ref != a.Number || n.Kind != "approval" {
			t.Errorf("outbox after a failed send: %+v", n)
		}
		// Not due yet (backoff 30 s).
		if rep, err := e.iss.DeliverNotifications(ctx); err != nil || rep != (issuer.DeliveryReport{}) {
			t.Errorf("early retry: %+v, %v", rep, err)
		}
		e.clock.Advance(31 * time.Second)
		if rep, _ := e.iss.DeliverNotifications(ctx); rep.Failed != 1 {
			t.Errorf("second attempt: %+v", rep)
		}
		e.phone.fail.Store(false)
		e.clock.Advance(61 * time.Second)
		if rep, _ := e.iss.DeliverNotifications(ctx); rep.Sent != 1 {
			t.Errorf("third attempt: %+v", rep)
		}
		n = outbox()
		if n.State != "sent" || n.Attempts != 3 || n.LastError != "" || !n.SentAt.Equal(e.clock.Now()) {
			t.Errorf("outbox after delivery: %+v", n)
		}
		msgs := e.phone.Messages(testPhoneD)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "승인 15,000원 Example Shop") {
			t.Errorf("delivered: %q", texts(msgs))
		}
		if rep, _ := e.iss.DeliverNotifications(ctx); rep != (issuer.DeliveryReport{}) {
			t.Errorf("a sent SMS was sent again: %+v", rep)
		}

		// A message that keeps failing is given up after NotifyMaxAttempts.
		e.phone.fail.Store(true)
		e.approve(c, 1000)
		for range 10 {
			e.clock.Advance(time.Hour)
			if _, err := e.iss.DeliverNotifications(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := outbox(); n.State != "dead" || n.Attempts != 4 {
			t.Errorf("outbox after giving up: %+v", n)
		}
	})
}

// TestConcurrentApprovals: approvals racing for one card's limit from two
// issuer replicas on one database never overspend it.
func TestConcurrentApprovals(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		replica := e.open(t.Name() + "/replica")
		c := e.issue(issuer.Credit, 100_000)
		const n = 24
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[issuer.Code]int{}
		for k := range n {
			iss := e.iss
			if k%2 == 1 {
				iss = replica
			}
			req := e.approveReq(c, 10_000)
			wg.Go(func() {
				_, err := iss.Approve(ctx, req)
				mu.Lock()
				codes[issuer.CodeOf(err)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[""] != 10 || codes[issuer.CodeLimitExceeded] != n-10 {
			t.Errorf("outcomes %v, want 10 approvals and %d LIMIT_EXCEEDED", codes, n-10)
		}
		if av := e.available(c); av != 0 {
			t.Errorf("available %d, want 0", av)
		}

		// One idempotency key sent many times at once: one approval.
		c2 := e.issue(issuer.Credit, 100_000)
		req := e.approveReq(c2, 7_000)
		numbers := make([]string, 8)
		for k := range numbers {
			iss := e.iss
			if k%2 == 1 {
				iss = replica
			}
			wg.Go(func() {
				a, err := iss.Approve(ctx, req)
				if err != nil {
					t.Errorf("concurrent repeat: %v", err)
					return
				}
				numbers[k] = a.Number
			})
		}
		wg.Wait()
		for _, num := range numbers[1:] {
			if num != numbers[0] {
				t.Errorf("concurrent repeats gave approvals %v", numbers)
				break
			}
		}
		if av := e.available(c2); av != 93_000 {
			t.Errorf("available %d, want 93000", av)
		}
	})
}

func TestCutOffAfter(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN, func(c *issuer.Config) { c.CutOff = "23:30" })
	kst := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, issuer.KST) }
	for _, tc := range []struct{ at, want time.Time }{
		{kst(22, 0, 0), kst(22, 23, 30)},
		{kst(22, 23, 29), kst(22, 23, 30)},
		{kst(22, 23, 30), kst(23, 23, 30)},
		{kst(22, 23, 59), kst(23, 23, 30)},
		{time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), kst(31, 23, 30)}, // Dec 1 00:00 KST → Dec 1 23:30
	} {
		if got := e.iss.CutOffAfter(tc.at); !got.Equal(tc.want) {
			t.Errorf("CutOffAfter(%v) = %v, want %v", tc.at, got.In(issuer.KST), tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	base := func() issuer.Config {
		return issuer.Config{DSN: "sqlite::memory:", DataKey: testDataKey, Pepper: testPepper}
	}
	for name, mut := range map[string]func(*issuer.Config){
		"short key":    func(c *issuer.Config) { c.DataKey = c.DataKey[:16] },
		"short pepper": func(c *issuer.Config) { c.Pepper = c.Pepper[:8] },
		"cut-off":      func(c *issuer.Config) { c.CutOff = "24:00" },
		"bin":          func(c *issuer.Config) { c.BINs = map[issuer.CardType]string{issuer.Credit: "12"} },
		"no dsn":       func(c *issuer.Config) { c.DSN = "" },
	} {
		cfg := base()
		mut(&cfg)
		if iss, err := issuer.Open(ctx, cfg); err == nil {
			iss.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	cfg := base()
	iss, err := issuer.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	iss.Close()
}

func TestRun(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN)
	c := e.issue(issuer.Credit, 100_000)
	e.phone.fail.Store(true)
	a := e.approve(c, 1000)
	e.phone.fail.Store(false)
	e.pastCutOff()
	runCtx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.iss.Run(runCtx, 5*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.inquire(a.Number)
		if got.BatchID != "" && len(e.phone.Messages("")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not settle and deliver")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, runCtx.Err()) {
		t.Errorf("Run returned %v", err)
	}
}

// TestOrdersAreTheMerchants: an order number is the merchant's own — two
// merchants may both use "A-1" — and a merchant's approval answers
// another merchant exactly as an unknown one does, by number and by order,
// for inquire, cancel and refund (KECIS §13.3; issue 12, finding 2). The
// KECIS adapter passes the caller as MerchantID.
func TestOrdersAreTheMerchants(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000)
		const other = "M-OTHER"
		reqA := e.approveReq(c, 10_000)
		reqA.OrderID = "A-1"
		a, err := e.iss.Approve(ctx, reqA)
		if err != nil {
			t.Fatal(err)
		}
		reqB := e.approveReq(c, 20_000)
		reqB.MerchantID, reqB.OrderID = other, "A-1"
		b, err := e.iss.Approve(ctx, reqB)
		if err != nil {
			t.Fatalf("the other merchant's A-1: %v", err)
		}
		for m, want := range map[string]*issuer.Approval{merchant: a, other: b} {
			got, err := e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: m, OrderID: "A-1"})
			if err != nil || got.Number != want.Number || got.Amount != want.Amount {
				t.Fatalf("%s's A-1: %+v, %v; want %s", m, got, err, want.Number)
			}
		}

		// What another merchant gets for A's approval is what anyone gets
		// for an unknown one: the same code and message.
		e.pastCutOff()
		same := func(name string, got, unknown error) {
			t.Helper()
			var g, u *issuer.Error
			if !errors.As(got, &g) || !errors.As(unknown, &u) || g.Code != issuer.CodeNotFound || g.Code != u.Code || g.Message != u.Message {
				t.Errorf("%s of another merchant's approval: %v; of an unknown one: %v", name, got, unknown)
			}
		}
		_, got := e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: "M-THIRD", ApprovalNumber: a.Number})
		_, unknown := e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: "M-THIRD", ApprovalNumber: "99999999"})
		same("inquire by number", got, unknown)
		_, got = e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: "M-THIRD", OrderID: "A-1"})
		_, unknown = e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: "M-THIRD", OrderID: "NOPE"})
		same("inquire by order", got, unknown)
		_, got = e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: other, ApprovalNumber: a.Number, IdempotencyKey: e.key("c")})
		_, unknown = e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: other, ApprovalNumber: "99999999", IdempotencyKey: e.key("c")})
		same("cancel", got, unknown)
		_, got = e.iss.Refund(ctx, issuer.RefundRequest{MerchantID: other, ApprovalNumber: a.Number, Amount: krw(10_000), IdempotencyKey: e.key("r")})
		_, unknown = e.iss.Refund(ctx, issuer.RefundRequest{MerchantID: other, ApprovalNumber: "99999999", Amount: krw(10_000), IdempotencyKey: e.key("r")})
		same("refund", got, unknown)

		if got := e.inquire(a.Number); got.Status != issuer.StatusSettled || got.Refunded != 0 {
			t.Errorf("A's approval after the other merchant's attempts: %s, refunded %d", got.Status, got.Refunded)
		}
		if _, err := e.refund(b, 20_000); err != nil {
			t.Errorf("the other merchant's refund of its own A-1: %v", err)
		}
	})
}

func TestLogNotifierNeverLogsTheText(t *testing.T) {
	var buf bytes.Buffer
	n := issuer.LogNotifier{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := n.Send(context.Background(), "010-1234-5678", "[KECIS Card] 승인 3,417원 Shop 482193 12/03 10:41 (1111)"); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"3,417", "482193", "1234-5678"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "010-****-5678") {
		t.Errorf("the log does not name the masked phone: %s", buf.String())
	}
}
