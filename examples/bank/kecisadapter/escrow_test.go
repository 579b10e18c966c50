package kecisadapter_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// escrowRig is connectors/escrow's engine at bank A (004) over
// kecisadapter.Escrow, with the 2-WAY rig's bank B (081) behind a relaying
// hub for settlement accounts there. 홍길동 (bank A) is the buyer; 이영희's
// account at bank A and 김영희's at bank B are the shops' settlement
// accounts.
type escrowRig struct {
	*twoWayRig
	h  *kecisadapter.Escrow
	e  *escrow.Engine
	db *sqlstore.DB
	// open is what the test has in escrow (funded, shipped, disputed, or
	// a release or refund owed); inFlight a release sent to bank B and
	// not yet credited (in bank A's clearing account for bank B), credited
	// what bank B credited (its clearing account owes it since).
	open, inFlight, credited int64
	refs                     []string
}

const escrowShopID = "https://escrow-shop.test/kecis"

func newEscrowRig(t *testing.T) *escrowRig {
	t.Helper()
	r := &escrowRig{twoWayRig: newTwoWayRig(t)}
	r.h = &kecisadapter.Escrow{Bank: r.a, Banking: r.tw.Banking, Shop: func(context.Context, string) string { return "KECIS상점" },
		Log: slog.New(slog.NewTextHandler(r.logsA, nil))}
	var err error
	if r.db, err = sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{7}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.e, err = escrow.New(ctx, escrow.Config{DB: r.db, Holder: r.h, Sealer: sealer, Signer: r.remitter, Issuer: remitterID,
		Now: func() time.Time { return r.now }, Rand: rand.NewChaCha8([32]byte{8}),
		Log: slog.New(slog.NewTextHandler(r.logsA, nil))}); err != nil {
		t.Fatal(err)
	}
	return r
}

// check: bank A's ledger balances, and its escrow holding account holds
// exactly what is open in escrow; what was sent to bank B and not yet
// credited is in bank A's clearing account for bank B.
func (r *escrowRig) check(t *testing.T, step string) {
	t.Helper()
	rep, err := r.a.CheckLedger(ctx)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if rep.Escrow != r.open-r.inFlight {
		t.Fatalf("%s: escrow holding account %d, open escrows %d, in flight %d", step, rep.Escrow, r.open, r.inFlight)
	}
	// The engine's own account of it: the escrows whose money it holds.
	var holds int64
	for _, ref := range r.refs {
		x, err := r.e.Get(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if x.Holds() {
			holds += x.Amount.Minor
		}
	}
	if holds != r.open {
		t.Fatalf("%s: the engine holds %d, the test %d", step, holds, r.open)
	}
	if rep.Clearing[payeeCode] != r.inFlight+r.credited {
		t.Fatalf("%s: clearing for bank B %d, in flight %d, credited %d", step, rep.Clearing[payeeCode], r.inFlight, r.credited)
	}
	if _, err := r.bk.CheckLedger(ctx); err != nil {
		t.Fatalf("%s: bank B: %v", step, err)
	}
}

func (r *escrowRig) openEscrow(t *testing.T, order string, amount int64, settleBank string, settle ecml.Secret) *escrow.Escrow {
	t.Helper()
	x, err := r.e.Open(ctx, &escrow.OpenRequest{Merchant: escrowShopID, Order: order, Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		Goods: true, SettlementBank: settleBank, SettlementAccount: settle, IdempotencyKey: "open-" + order})
	if err != nil {
		t.Fatal(err)
	}
	if x.State != escrow.AwaitingPayment {
		t.Fatalf("opened %s", x.State)
	}
	r.refs = append(r.refs, x.Reference)
	return x
}

func (r *escrowRig) pay(t *testing.T, x *escrow.Escrow) {
	t.Helper()
	y, err := r.e.Pay(ctx, r.hong.ID, x.Reference, r.from.Number)
	if err != nil || y.State != escrow.Funded {
		t.Fatalf("pay: %+v %v", y, err)
	}
	r.open += x.Amount.Minor
	r.check(t, "paid "+x.Order)
}

func (r *escrowRig) ship(t *testing.T, x *escrow.Escrow) {
	t.Helper()
	y, err := r.e.Ship(ctx, escrowShopID, escrow.Ref{Reference: x.Reference}, "CJ대한통운", "6012-3456-7890", "ship-"+x.Order)
	if err != nil || y.State != escrow.Shipped {
		t.Fatalf("ship: %+v %v", y, err)
	}
	r.check(t, "shipped "+x.Order)
}

// TestEscrowAtTheBank runs connectors/escrow's engine over the example
// bank: open → pay → ship → confirm releases to the seller's account at
// the same bank; a dispute ends in the merchant's refund to the buyer; a
// shipped escrow is confirmed by the sweep after AutoConfirmAfter on the
// injected clock; a release to bank B crosses the hub (transfer:credit),
// stays pending while the hub loses the request and is credited by the
// next sweep; a short balance leaves the order unpaid; the holding account
// equals the open escrows at every step and no account number is in
// clear in either bank's rows or logs.
func TestEscrowAtTheBank(t *testing.T) {
	r := newEscrowRig(t)
	bal := func(b *bank.Bank, id string) int64 { return r.balance(t, b, id) }
	buyer0, seller0 := bal(r.a, r.from.ID), bal(r.a, r.own.ID)

	// 1. Same bank: open, pay, ship, confirm → the seller is credited.
	x := r.openEscrow(t, "order-1", 150_000, remitCode, r.own.Number)
	r.pay(t, x)
	if again, err := r.e.Pay(ctx, r.hong.ID, x.Reference, r.from.Number); err != nil || again.State != escrow.Funded {
		t.Fatalf("pay again: %+v %v", again, err)
	}
	r.check(t, "paid again")
	if bal(r.a, r.from.ID) != buyer0-150_000 {
		t.Fatalf("buyer debited %d", buyer0-bal(r.a, r.from.ID))
	}
	r.ship(t, x)
	y, err := r.e.Confirm(ctx, r.hong.ID, x.Reference)
	if err != nil || y.State != escrow.Confirmed || y.Owed != escrow.OwesNothing || y.ReleaseRef == "" {
		t.Fatalf("confirm: %+v %v", y, err)
	}
	r.open -= 150_000
	r.check(t, "confirmed")
	if bal(r.a, r.own.ID) != seller0+150_000 {
		t.Fatalf("seller credited %d", bal(r.a, r.own.ID)-seller0)
	}
	// Confirming again moves nothing.
	if _, err := r.e.Confirm(ctx, r.hong.ID, x.Reference); err != nil {
		t.Fatal(err)
	}
	r.check(t, "confirmed again")
	if bal(r.a, r.own.ID) != seller0+150_000 {
		t.Fatal("a second release")
	}
	// Another customer sees no such escrow.
	if _, err := r.e.Confirm(ctx, "cus_other", x.Reference); err == nil {
		t.Fatal("another customer confirmed")
	}

	// 2. Dispute → refund to the buyer.
	x = r.openEscrow(t, "order-2", 40_000, remitCode, r.own.Number)
	r.pay(t, x)
	r.ship(t, x)
	if y, err = r.e.Dispute(ctx, r.hong.ID, x.Reference, "상품이 파손되어 도착했습니다"); err != nil || y.State != escrow.Disputed {
		t.Fatalf("dispute: %+v %v", y, err)
	}
	r.check(t, "disputed")
	before := bal(r.a, r.from.ID)
	if y, err = r.e.Refund(ctx, escrowShopID, escrow.Ref{Order: "order-2"}, "refund-2"); err != nil || y.State != escrow.Refunded || y.Owed != escrow.OwesNothing {
		t.Fatalf("refund: %+v %v", y, err)
	}
	r.open -= 40_000
	r.check(t, "refunded")
	if bal(r.a, r.from.ID) != before+40_000 {
		t.Fatalf("buyer refunded %d", bal(r.a, r.from.ID)-before)
	}
	if _, err := r.e.Refund(ctx, escrowShopID, escrow.Ref{Order: "order-2"}, "refund-2"); err != nil {
		t.Fatal(err)
	}
	r.check(t, "refunded again")
	if bal(r.a, r.from.ID) != before+40_000 {
		t.Fatal("a second refund")
	}

	// 3. Auto-confirmation on the injected clock.
	x = r.openEscrow(t, "order-3", 30_000, remitCode, r.own.Number)
	r.pay(t, x)
	r.ship(t, x)
	sellerBefore := bal(r.a, r.own.ID)
	r.now = r.now.Add(r.e.AutoConfirmAfter() - time.Minute)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.AutoConfirmed != 0 {
		t.Fatalf("sweep before the deadline: %+v %v", rep, err)
	}
	r.now = r.now.Add(time.Minute)
	rep, err := r.e.Sweep(ctx)
	if err != nil || rep.AutoConfirmed != 1 {
		t.Fatalf("sweep at the deadline: %+v %v", rep, err)
	}
	r.open -= 30_000
	r.check(t, "auto-confirmed")
	if y, err := r.e.Get(ctx, x.Reference); err != nil || y.State != escrow.Confirmed || !y.Auto || y.Owed != escrow.OwesNothing {
		t.Fatalf("auto-confirmed: %+v %v", y, err)
	}
	if bal(r.a, r.own.ID) != sellerBefore+30_000 {
		t.Fatal("the auto-confirmed escrow was not released")
	}

	// 4. A short balance leaves the order unpaid (the bank's refusal).
	x = r.openEscrow(t, "order-4", 5_000_000, remitCode, r.own.Number)
	_, err = r.e.Pay(ctx, r.hong.ID, x.Reference, r.from.Number)
	if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.CodeInsufficientFunds {
		t.Fatalf("pay beyond the balance: %v", err)
	}
	if y, err := r.e.Get(ctx, x.Reference); err != nil || y.State != escrow.AwaitingPayment {
		t.Fatalf("after the refusal: %+v %v", y, err)
	}
	r.check(t, "refused")

	// 5. To bank B through the hub: the hub loses the credit request, the
	// release stays pending (the money sent, in the clearing account);
	// the next sweep credits it with the same keys.
	b0 := bal(r.bk, r.account.ID)
	x = r.openEscrow(t, "order-5", 70_000, payeeCode, r.account.Number)
	r.pay(t, x)
	r.ship(t, x)
	r.dropRequests.Store(1)
	if y, err = r.e.Confirm(ctx, r.hong.ID, x.Reference); err != nil || y.State != escrow.Confirmed || y.Owed != escrow.OwesRelease {
		t.Fatalf("confirm with the hub down: %+v %v", y, err)
	}
	r.inFlight = 70_000 // owed, sent: in the clearing account
	r.check(t, "release pending")
	if bal(r.bk, r.account.ID) != b0 {
		t.Fatalf("pending: bank B credited %d", bal(r.bk, r.account.ID)-b0)
	}
	r.now = r.now.Add(time.Hour)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Released != 1 {
		t.Fatalf("sweep the pending release: %+v %v", rep, err)
	}
	r.open, r.inFlight, r.credited = r.open-70_000, 0, 70_000
	r.check(t, "released to bank B")
	if bal(r.bk, r.account.ID) != b0+70_000 {
		t.Fatalf("bank B credited %d", bal(r.bk, r.account.ID)-b0)
	}
	if y, err := r.e.Get(ctx, x.Reference); err != nil || y.Owed != escrow.OwesNothing || y.ReleaseRef == "" {
		t.Fatalf("after the sweep: %+v %v", y, err)
	}
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Released != 0 {
		t.Fatalf("a second sweep: %+v %v", rep, err)
	}
	if bal(r.bk, r.account.ID) != b0+70_000 {
		t.Fatal("credited twice")
	}

	secrets := []string{"hong-password"}
	for _, n := range []ecml.Secret{r.from.Number, r.own.Number, r.account.Number} {
		d, _ := ecml.AccountDigits(n.Reveal())
		secrets = append(secrets, n.Reveal(), d)
	}
	for _, db := range []*sqlstore.DB{r.db, r.a.DB(), r.bk.DB()} {
		if testutil.AssertNoSecretsInRows(t, db.DB, nil, secrets...) == 0 {
			t.Fatal("no rows read")
		}
	}
	for _, s := range secrets {
		if bytes.Contains([]byte(r.logsA.String()+r.logs.String()), []byte(s)) {
			t.Error("a log holds an account number")
		}
	}
}
