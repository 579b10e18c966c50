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
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

// TestEndToEnd: acquirer → hub → issuer and back over real TLS on loopback,
// for every card operation, as the PG calls the issuer (an SDK client with
// the PG's keys); a merchant calling the issuer directly is refused (the
// issuer takes card:* from its acquirer only, KECIS §13.2); the issuer's
// ledger and the cardholder's texts agree with every result, and no card
// number is in clear in the hub's database or logs, nor in the issuer's
// database.
func TestEndToEnd(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	clock := testutil.NewClock(time.Now().UTC())
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Start(ctx, Config{Dir: dir, RelayTimeout: 2 * time.Second, IssuerNow: clock.Now,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c1, c2 := d.Cards[0], d.Cards[1]
	acq, err := d.cardClient(PGID, filepath.Join(dir, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	cardOf := func(c TestCard) card.Card {
		return card.Card{Number: c.PAN, ExpMonth: fmt.Sprint(c.ExpMonth), ExpYear: fmt.Sprint(c.ExpYear)}
	}
	approve := func(order string, c TestCard, amount int64, keyIn *card.KeyIn) *card.Outcome {
		t.Helper()
		out, err := acq.Approve(ctx, IssuerID, &card.ApproveRequest{OrderID: order, Amount: krw(amount), Card: cardOf(c), KeyIn: keyIn, IdempotencyKey: "approve-" + order})
		if err != nil {
			t.Fatalf("approve %s: %v", order, err)
		}
		return out
	}
	waitText := func(phone, want string) telecom.Message {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m, err := d.Telecom.WaitForMessage(wctx, phone, func(m telecom.Message) bool { return strings.Contains(m.Text, want) })
		if err != nil {
			t.Fatalf("no text %q to %s: %v", want, phone, err)
		}
		return m
	}

	// A merchant is not the issuer's caller: refused, nothing approved.
	for _, m := range d.Merchants {
		o, err := m.Client.Approve(ctx, IssuerID, &card.ApproveRequest{OrderID: "direct-1", Amount: krw(1000), Card: cardOf(c1), IdempotencyKey: "direct-1"})
		if err != nil || o.OK() || o.Result.Status.SubCode != saml.StatusRequestDenied {
			t.Fatalf("%s called the issuer directly: %v %+v", m.Name, err, o)
		}
	}

	// Approve, and the cardholder is texted the amount and the acquirer.
	o1 := approve("order-1", c1, 15000, nil)
	if !o1.OK() || o1.Approval.State != card.Approved || o1.Approval.ApprovalNumber == "" {
		t.Fatalf("approve: %+v %+v", o1.Result.Status, o1.Approval)
	}
	if txt := waitText(c1.Phone, "15,000"); !strings.Contains(txt.Text, "KECIS Pay") {
		t.Fatalf("approval text: %q", txt.Text)
	}
	// A retry with the same key: the same approval, no second charge.
	if again := approve("order-1", c1, 15000, nil); !again.OK() || again.Approval.ApprovalNumber != o1.Approval.ApprovalNumber {
		t.Fatalf("retry: %+v", again.Approval)
	}
	// Void before the cut-off.
	v, err := acq.Cancel(ctx, IssuerID, &card.CancelRequest{OrderID: "order-1", ApprovalNumber: o1.Approval.ApprovalNumber, IdempotencyKey: "cancel-1"})
	if err != nil || !v.OK() || v.Approval.State != card.Cancelled {
		t.Fatalf("cancel: %v %+v", err, v)
	}
	waitText(c1.Phone, "취소")

	// Settlement, then partial refunds; an over-refund is refused.
	o2 := approve("order-2", c1, 20000, nil)
	if !o2.OK() {
		t.Fatalf("approve 2: %+v", o2.Result.Status)
	}
	clock.Set(d.Issuer.CutOffAfter(clock.Now()).Add(time.Minute))
	if _, err := d.Issuer.Settle(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if c, _ := acq.Cancel(ctx, IssuerID, &card.CancelRequest{ApprovalNumber: o2.Approval.ApprovalNumber, IdempotencyKey: "cancel-2"}); c.OK() || c.Code() != "PolicyViolation" {
		t.Fatalf("a void after settlement must be refused: %+v", c.Result.Status)
	}
	r1, _ := acq.Refund(ctx, IssuerID, &card.RefundRequest{ApprovalNumber: o2.Approval.ApprovalNumber, Amount: krw(5000), IdempotencyKey: "refund-2a"})
	if !r1.OK() || r1.Approval.State != card.PartiallyRefunded || r1.Approval.Refunded.Minor != 5000 {
		t.Fatalf("partial refund: %+v %+v", r1.Result.Status, r1.Approval)
	}
	r2, _ := acq.Refund(ctx, IssuerID, &card.RefundRequest{ApprovalNumber: o2.Approval.ApprovalNumber, Amount: krw(15000), IdempotencyKey: "refund-2b"})
	if !r2.OK() || r2.Approval.State != card.Refunded {
		t.Fatalf("second refund: %+v %+v", r2.Result.Status, r2.Approval)
	}
	if r3, _ := acq.Refund(ctx, IssuerID, &card.RefundRequest{ApprovalNumber: o2.Approval.ApprovalNumber, Amount: krw(1), IdempotencyKey: "refund-2c"}); r3.OK() || r3.Code() != "LimitExceeded" {
		t.Fatalf("over-refund: %+v", r3.Result.Status)
	}

	// A decline for insufficient limit.
	// The issuer reports an exhausted credit limit as LimitExceeded (a check
	// card without balance would be InsufficientFunds).
	if o := approve("order-3", c2, 60000, nil); o.OK() || o.Code() != "LimitExceeded" {
		t.Fatalf("over the limit: %+v", o.Result.Status)
	}
	// Key-in with a wrong password prefix is declined; the right one passes.
	wrong := &card.KeyIn{PasswordPrefix: "99", BirthDate: ecml.Secret(c1.BirthDate)}
	if o := approve("order-4", c1, 1000, wrong); o.OK() || o.Code() != "InvalidCard" {
		t.Fatalf("wrong key-in: %+v", o.Result.Status)
	}
	right := &card.KeyIn{PasswordPrefix: ecml.Secret(c1.Password[:2]), BirthDate: ecml.Secret(c1.BirthDate)}
	if o := approve("order-4b", c1, 1000, right); !o.OK() {
		t.Fatalf("key-in: %+v", o.Result.Status)
	}

	// A timeout: the hub answers Pending; inquire tells the truth.
	release := make(chan struct{})
	d.Adapter.BeforeCall = func(_ context.Context, s string) {
		if s == card.ServiceApprove {
			<-release
		}
	}
	o5 := approve("order-5", c1, 7000, nil)
	if o5.Code() != "Pending" {
		t.Fatalf("a stalled issuer must give Pending: %+v", o5.Result.Status)
	}
	close(release)
	d.Adapter.BeforeCall = nil
	var q *card.Outcome
	for i := 0; i < 100; i++ {
		q, err = acq.Inquire(ctx, IssuerID, &card.InquireRequest{OrderID: "order-5"})
		if err == nil && q.OK() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if q == nil || !q.OK() || q.Approval.State != card.Approved || q.Approval.Amount.Minor != 7000 {
		t.Fatalf("inquire after Pending: %v %+v", err, q.Result.Status)
	}

	// The ledger and the texts agree: one text per approval and per void or refund.
	recent, err := d.Issuer.RecentApprovals(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	approved := 0
	for _, a := range recent {
		if a.CardLast4 == c1.PAN.Last4() {
			approved++
		}
	}
	if approved != 4 { // order-1 (cancelled), order-2 (refunded), order-4b, order-5
		t.Fatalf("issuer ledger has %d approvals for card 1, want 4", approved)
	}
	if _, err := d.Issuer.DeliverNotifications(ctx); err != nil {
		t.Fatal(err)
	}
	inbox, _ := d.Telecom.Inbox(ctx, c1.Phone)
	if len(inbox) != 4+1+2 { // 4 approvals, 1 void, 2 refunds
		var texts []string
		for _, m := range inbox {
			texts = append(texts, m.Text)
		}
		t.Fatalf("card 1's phone got %d texts, want 7:\n%s", len(inbox), strings.Join(texts, "\n"))
	}

	// No card number in clear in the hub's database, the issuer's (its adapter
	// store's tables included), or any log.
	for _, db := range []string{filepath.Join(dir, "hub", "hub.db"), filepath.Join(dir, "issuer", "issuer.db")} {
		testutil.AssertNoPANInSQLite(t, db)
	}
	if ecml.ContainsPAN(logs.String()) {
		t.Fatal("a card number in clear in the logs")
	}
}
