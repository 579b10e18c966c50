package demo

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/testutil"
)

// TestEndToEndThroughPG: merchant → hub → PG sidecar → PG → (sidecar,
// calling side) → hub → issuer and back, for approve, void, refunds,
// declines and a timeout resolved by inquire; the PG's records and the
// issuer's ledger reconcile; the PG keeps cards masked; no card number in
// clear in the hub's or the sidecar's logs or databases.
func TestEndToEndThroughPG(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	clock := testutil.NewClock(time.Now().UTC())
	ctx := context.Background()
	// A relative directory, as `make run` passes (.kecis-dev).
	t.Chdir(t.TempDir())
	dir := ".kecis-dev"
	d, err := Start(ctx, Config{Dir: dir, RelayTimeout: 2 * time.Second, IssuerNow: clock.Now,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c1, c2 := d.Cards[0], d.Cards[1]
	cardOf := func(c TestCard) card.Card {
		return card.Card{Number: c.PAN, ExpMonth: fmt.Sprintf("%02d", c.ExpMonth), ExpYear: fmt.Sprint(c.ExpYear)}
	}
	approve := func(order string, c TestCard, amount int64) *card.Outcome {
		t.Helper()
		out, err := d.Merchants[0].Client.Approve(ctx, PGID, &card.ApproveRequest{OrderID: order, Amount: krw(amount), Card: cardOf(c), IdempotencyKey: "pg-approve-" + order})
		if err != nil {
			t.Fatalf("approve %s: %v", order, err)
		}
		return out
	}

	o1 := approve("pg-1", c1, 15000)
	if !o1.OK() || o1.Approval.State != card.Approved || o1.Approval.ApprovalNumber == "" {
		t.Fatalf("approve through the PG: %+v", o1.Result.Status)
	}
	pay, err := d.PG.Find(ctx, d.PGMerchants[MerchantID], "pg-1")
	if err != nil || pay.Status != pg.StatusApproved || pay.ApprovalNo != o1.Approval.ApprovalNumber {
		t.Fatalf("PG record: %v %+v", err, pay)
	}
	if !strings.Contains(pay.MaskedCardNo, "******") {
		t.Fatalf("the PG must keep the card masked: %q", pay.MaskedCardNo)
	}
	// The issuer's ledger has the same approval (the PG's TID as its order).
	ia, err := d.Adapter.Issuer.Inquire(ctx, issuerInquire(pay.ApprovalNo))
	if err != nil || ia.Amount.Minor != 15000 {
		t.Fatalf("issuer ledger: %v %+v", err, ia)
	}
	// Void before settlement.
	v, err := d.Merchants[0].Client.Cancel(ctx, PGID, &card.CancelRequest{OrderID: "pg-1", IdempotencyKey: "pg-cancel-1"})
	if err != nil || !v.OK() || v.Approval.State != card.Cancelled {
		t.Fatalf("cancel: %v %+v", err, v.Result.Status)
	}
	if ia, _ := d.Adapter.Issuer.Inquire(ctx, issuerInquire(pay.ApprovalNo)); string(ia.Status) != "cancelled" {
		t.Fatalf("the issuer did not void: %+v", ia.Status)
	}
	// Refunds after settlement; an over-refund is refused.
	o2 := approve("pg-2", c1, 20000)
	if !o2.OK() {
		t.Fatalf("approve 2: %+v", o2.Result.Status)
	}
	clock.Set(d.Issuer.CutOffAfter(clock.Now()).Add(time.Minute))
	if _, err := d.Issuer.Settle(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Merchants[0].Client.Refund(ctx, PGID, &card.RefundRequest{OrderID: "pg-2", Amount: krw(5000), IdempotencyKey: "pg-refund-2a"}); !r.OK() || r.Approval.State != card.PartiallyRefunded {
		t.Fatalf("partial refund: %+v %+v", r.Result.Status, r.Approval)
	}
	if r, _ := d.Merchants[0].Client.Refund(ctx, PGID, &card.RefundRequest{OrderID: "pg-2", Amount: krw(20000), IdempotencyKey: "pg-refund-2b"}); r.OK() || r.Code() != "LimitExceeded" {
		t.Fatalf("over-refund: %+v", r.Result.Status)
	}
	// A decline from the issuer comes back through the PG as a KECIS status.
	if o := approve("pg-3", c2, 60000); o.OK() || o.Code() != "LimitExceeded" {
		t.Fatalf("decline through the PG: %+v", o.Result.Status)
	}
	// A stalled issuer: the PG answers pending, which the merchant sees as
	// Pending; an inquire later tells the truth.
	release := make(chan struct{})
	d.Adapter.BeforeCall = func(_ context.Context, s string) {
		if s == card.ServiceApprove {
			<-release
		}
	}
	o4 := approve("pg-4", c1, 7000)
	close(release)
	d.Adapter.BeforeCall = nil
	if o4.OK() {
		t.Logf("the approval completed within the timeout")
	} else if o4.Code() != "Pending" {
		t.Fatalf("stalled issuer: %+v, want Pending", o4.Result.Status)
	}
	var q *card.Outcome
	for i := 0; i < 100; i++ {
		if _, err := d.PG.ResolvePending(ctx); err != nil {
			t.Fatal(err)
		}
		q, err = d.Merchants[0].Client.Inquire(ctx, PGID, &card.InquireRequest{OrderID: "pg-4"})
		if err == nil && q.OK() && q.Approval.State == card.Approved {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if q == nil || !q.OK() || q.Approval.State != card.Approved || q.Approval.Amount.Minor != 7000 {
		t.Fatalf("inquire after Pending: %v %+v", err, q)
	}
	// The PG's records and the issuer's ledger reconcile.
	for _, order := range []string{"pg-1", "pg-2", "pg-4"} {
		p, err := d.PG.Find(ctx, d.PGMerchants[MerchantID], order)
		if err != nil {
			t.Fatal(err)
		}
		ia, err := d.Adapter.Issuer.Inquire(ctx, issuerInquire(p.ApprovalNo))
		if err != nil {
			t.Fatalf("%s: the issuer has no approval %s: %v", order, p.ApprovalNo, err)
		}
		if ia.Amount.Minor != p.Amount || ia.Refunded != p.CancelledAmount && string(ia.Status) != "cancelled" {
			t.Fatalf("%s: PG %d/%d %s vs issuer %d/%d %s", order, p.Amount, p.CancelledAmount, p.Status, ia.Amount.Minor, ia.Refunded, ia.Status)
		}
	}
	for _, db := range []string{filepath.Join(dir, "hub", "hub.db"), filepath.Join(dir, "pg", "pg.db"), filepath.Join(dir, "pg", "adapter.db")} {
		testutil.AssertNoPANInSQLite(t, db)
	}
	if ecml.ContainsPAN(logs.String()) {
		t.Fatal("a card number in clear in the logs")
	}
}

// issuerInquire asks the issuer about an approval the PG obtained (the PG
// is the issuer's merchant of record).
func issuerInquire(no string) issuer.InquireRequest {
	return issuer.InquireRequest{MerchantID: PGID, ApprovalNumber: no}
}
