package escrow

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// TestOnBothStores runs the engine's main flows on SQLite and PostgreSQL
// (skipped without the test server, except under CI=true).
func TestOnBothStores(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) {
			t.Run("lifecycle", func(t *testing.T) { lifecycle(t, newRigOn(t, dsn(t))) })
			t.Run("auto-confirm", func(t *testing.T) { autoConfirm(t, newRigOn(t, dsn(t))) })
			t.Run("concurrent", func(t *testing.T) { concurrent(t, newRigOn(t, dsn(t))) })
			t.Run("pending-release", func(t *testing.T) { pendingRelease(t, newRigOn(t, dsn(t))) })
			t.Run("records", func(t *testing.T) { recordsVerify(t, newRigOn(t, dsn(t))) })
			t.Run("nothing-in-clear", func(t *testing.T) { nothingInClear(t, newRigOn(t, dsn(t))) })
			t.Run("append-only", func(t *testing.T) { appendOnly(t, newRigOn(t, dsn(t))) })
		})
	}
}

// lifecycle: open → pay → ship → confirm → released, with the ledger and
// the event table at every step.
func lifecycle(t *testing.T, r *rig) {
	r.invariant(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(150_000)))
	if x.State != AwaitingPayment || !ValidReference(x.Reference) || !x.PayBy.Equal(at0.Add(DefaultPayBy)) {
		t.Fatalf("opened: %+v", x)
	}
	ref := x.Reference

	r.clock.Advance(time.Minute)
	x = r.ok(t)(r.e.Pay(ctx, buyer, ref, buyerAccount))
	if x.State != Funded || x.Buyer != buyer || x.FundRef == "" || x.Owed != OwesNothing {
		t.Fatalf("paid: %+v", x)
	}
	if got := r.l.balance(buyerAccount); got != 1_000_000-150_000 {
		t.Fatalf("buyer's balance %d", got)
	}
	if got := r.l.balance(holding); got != 150_000 {
		t.Fatalf("holding %d", got)
	}

	r.clock.Advance(time.Hour)
	shipAt := r.clock.Now()
	x = r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: ref}, "CJ대한통운", "601234567890", "ship-1"))
	if x.State != Shipped || !x.ConfirmBy.Equal(shipAt.Add(DefaultAutoConfirmAfter)) || x.Carrier != "CJ대한통운" {
		t.Fatalf("shipped: %+v", x)
	}

	r.clock.Advance(24 * time.Hour)
	x = r.ok(t)(r.e.Confirm(ctx, buyer, ref))
	if x.State != Confirmed || x.Auto || x.Owed != OwesNothing || x.ReleaseRef == "" {
		t.Fatalf("confirmed: %+v", x)
	}
	if got := r.l.balance(shopAccount); got != 150_000 {
		t.Fatalf("the shop's settlement account has %d", got)
	}
	if got := r.kinds(t, ref); got != "opened funded shipped confirmed released" {
		t.Fatalf("events: %s", got)
	}
	// Status by order: the state and the last changes.
	y, ev, err := r.e.Status(ctx, shopID, Ref{Order: x.Order})
	if err != nil || y.Reference != ref || y.State != Confirmed || len(ev) != 5 {
		t.Fatalf("status: %+v %d %v", y, len(ev), err)
	}
	// Nothing moves after the end.
	_, err = r.e.Refund(ctx, shopID, Ref{Reference: ref}, "refund-1")
	refused(t, err, saml.CodePolicyViolation, "confirmed")
	_, err = r.e.Dispute(ctx, buyer, ref, "broken")
	refused(t, err, saml.CodePolicyViolation, "confirmed")
	r.invariant(t)
}

// autoConfirm: a shipped escrow without dispute is confirmed by the sweep
// at its deadline, not a second before; a dispute after it is refused.
func autoConfirm(t *testing.T, r *rig) {
	x := r.ok(t)(r.e.Open(ctx, r.order(120_000)))
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	x = r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "한진택배", "HJ-1", "s"))

	r.clock.Set(x.ConfirmBy.Add(-time.Second))
	rep, err := r.e.Sweep(ctx)
	if err != nil || rep.AutoConfirmed != 0 {
		t.Fatalf("sweep before the deadline: %+v %v", rep, err)
	}
	r.clock.Set(x.ConfirmBy)
	_, err = r.e.Dispute(ctx, buyer, x.Reference, "never arrived")
	refused(t, err, saml.CodePolicyViolation, "deadline has passed")
	rep, err = r.e.Sweep(ctx)
	if err != nil || rep.AutoConfirmed != 1 || rep.Released != 1 {
		t.Fatalf("sweep at the deadline: %+v %v", rep, err)
	}
	r.invariant(t)
	y, _ := r.e.Get(ctx, x.Reference)
	if y.State != Confirmed || !y.Auto || y.Owed != OwesNothing {
		t.Fatalf("auto-confirmed: %+v", y)
	}
	if r.l.balance(shopAccount) != 120_000 {
		t.Fatal("not released")
	}
	ev, _ := r.e.Events(ctx, x.Reference)
	if c := ev[len(ev)-2]; c.Kind != EventConfirmed || c.Actor != sweepActor || c.Detail["auto"] != "true" {
		t.Fatalf("the confirmation's event: %+v", c)
	}
	if k := y.ECML(); k.Auto != "true" || k.State != "confirmed" {
		t.Fatalf("kx:Escrow %+v", k)
	}
	// A second sweep finds nothing.
	if rep, err = r.e.Sweep(ctx); err != nil || rep != (SweepReport{}) {
		t.Fatalf("second sweep: %+v %v", rep, err)
	}
}

// concurrent: a buyer's confirmation and the merchant's refund race on
// one escrow (and several confirmations of one buyer): one transition
// wins, the money moves once.
func concurrent(t *testing.T, r *rig) {
	for round := range 3 {
		x := r.ok(t)(r.e.Open(ctx, r.order(10_000)))
		r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
		var mu sync.Mutex
		var errs []error
		testutil.Race(4, "confirm", "refund", func(i int, op string) {
			var err error
			if op == "confirm" {
				_, err = r.e.Confirm(ctx, buyer, x.Reference)
			} else {
				_, err = r.e.Refund(ctx, shopID, Ref{Reference: x.Reference}, "refund")
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
		r.invariant(t)
		y, _ := r.e.Get(ctx, x.Reference)
		if y.State != Confirmed && y.State != Refunded || y.Owed != OwesNothing {
			t.Fatalf("round %d: %+v", round, y)
		}
		// The losers of the other kind are refused for the state; the
		// same kind answers the escrow.
		for _, err := range errs {
			if err != nil {
				refused(t, err, saml.CodePolicyViolation, string(y.State))
			}
		}
		if got := r.kinds(t, x.Reference); got != "opened funded confirmed released" && got != "opened funded refunded returned" {
			t.Fatalf("round %d: events %s", round, got)
		}
	}
	if r.l.calls["release"]+r.l.calls["refund"] < 3 {
		t.Fatal("no ledger call")
	}
}

// pendingRelease: a release to another bank stays pending until credited;
// the sweep asks again with the same key, after a backoff.
func pendingRelease(t *testing.T, r *rig) {
	o := r.order(200_000)
	o.SettlementBank, o.SettlementAccount = otherBank, shopAtOther
	x := r.ok(t)(r.e.Open(ctx, o))
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	r.l.pending[releaseKey(x.Reference)] = 2
	x = r.ok(t)(r.e.Confirm(ctx, buyer, x.Reference))
	if x.State != Confirmed || x.Owed != OwesRelease || x.Attempts != 1 || !x.Holds() {
		t.Fatalf("pending: %+v", x)
	}
	if rep, _ := r.e.Sweep(ctx); rep.Pending+rep.Released != 0 {
		t.Fatalf("swept before the backoff: %+v", rep)
	}
	r.clock.Advance(time.Minute)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Pending != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	r.invariant(t)
	r.clock.Advance(2 * time.Minute)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Released != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	r.invariant(t)
	if r.l.balance("clearing:"+otherBank) != 200_000 || r.l.balance(holding) != 0 {
		t.Fatal("not released to the other bank")
	}
	y, _ := r.e.Get(ctx, x.Reference)
	if y.Owed != OwesNothing || !strings.HasPrefix(y.ReleaseRef, "C") {
		t.Fatalf("released: %+v", y)
	}
}

func TestLifecycle(t *testing.T)      { lifecycle(t, newRig(t)) }
func TestAutoConfirm(t *testing.T)    { autoConfirm(t, newRig(t)) }
func TestConcurrent(t *testing.T)     { concurrent(t, newRig(t)) }
func TestPendingRelease(t *testing.T) { pendingRelease(t, newRig(t)) }

// TestAutoConfirmConfigurable: AutoConfirmAfter and PayBy are the
// engine's.
func TestAutoConfirmConfigurable(t *testing.T) {
	r := newRig(t)
	r.e.cfg.AutoConfirmAfter, r.e.cfg.PayBy = 48*time.Hour, time.Hour
	x := r.ok(t)(r.e.Open(ctx, r.order(1000)))
	if !x.PayBy.Equal(at0.Add(time.Hour)) {
		t.Fatalf("pay by %v", x.PayBy)
	}
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	x = r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "우체국", "1", "s"))
	if !x.ConfirmBy.Equal(at0.Add(48 * time.Hour)) {
		t.Fatalf("confirm by %v", x.ConfirmBy)
	}
	r.clock.Advance(48 * time.Hour)
	if rep, _ := r.e.Sweep(ctx); rep.AutoConfirmed != 1 {
		t.Fatalf("%+v", rep)
	}
}

// TestDisputes: a dispute (funded or shipped, with its reason) ends by the
// merchant's refund, the buyer's confirmation, or the operator's decision.
func TestDisputes(t *testing.T) {
	r := newRig(t)
	open := func(ship bool) *Escrow {
		x := r.ok(t)(r.e.Open(ctx, r.order(30_000)))
		r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
		if ship {
			r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "T1", "s"))
		}
		return x
	}
	_, err := r.e.Dispute(ctx, buyer, open(true).Reference, "  ")
	refused(t, err, saml.CodeInvalidPayload, "reason")
	_, err = r.e.Dispute(ctx, buyer, open(true).Reference, strings.Repeat("가", 201))
	refused(t, err, saml.CodeInvalidPayload, "200")

	// Refunded by the merchant.
	x := open(true)
	y := r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "상자가\n파손됨"))
	if y.State != Disputed || y.Reason != "상자가 파손됨" {
		t.Fatalf("disputed: %+v", y)
	}
	r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "상자가 파손됨")) // the same again
	_, err = r.e.Dispute(ctx, buyer, x.Reference, "another")
	refused(t, err, saml.CodePolicyViolation, "disputed already")
	_, err = r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "T2", "s2")
	refused(t, err, saml.CodePolicyViolation, "disputed")
	// The sweep does not confirm a disputed escrow after its deadline.
	r.clock.Advance(DefaultAutoConfirmAfter + time.Hour)
	if _, err := r.e.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if y, _ = r.e.Get(ctx, x.Reference); y.State != Disputed {
		t.Fatalf("a disputed escrow auto-confirmed: %+v", y)
	}
	before := r.l.balance(buyerAccount)
	y = r.ok(t)(r.e.Refund(ctx, shopID, Ref{Order: x.Order}, "refund-1"))
	if y.State != Refunded || y.RefundRef == "" || r.l.balance(buyerAccount) != before+30_000 {
		t.Fatalf("refunded: %+v", y)
	}
	r.ok(t)(r.e.Refund(ctx, shopID, Ref{Order: x.Order}, "refund-1")) // again: unchanged
	if got := r.kinds(t, x.Reference); got != "opened funded shipped disputed refunded returned" {
		t.Fatalf("events %s", got)
	}

	// Withdrawn by the buyer's confirmation (a funded escrow, not shipped).
	x = open(false)
	r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "late"))
	y = r.ok(t)(r.e.Confirm(ctx, buyer, x.Reference))
	ev, _ := r.e.Events(ctx, x.Reference)
	if y.State != Confirmed || ev[len(ev)-2].Detail["dispute"] != "withdrawn" {
		t.Fatalf("withdrawn: %+v %+v", y, ev)
	}

	// Resolved by the operator: release, and refund.
	_, err = r.e.Resolve(ctx, "op-1", open(true).Reference, DecideRelease)
	refused(t, err, saml.CodePolicyViolation, "not disputed")
	x = open(true)
	r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "wrong colour"))
	shop := r.l.balance(shopAccount)
	y = r.ok(t)(r.e.Resolve(ctx, "op-1", x.Reference, DecideRelease))
	if y.State != Confirmed || y.Resolver != "op-1" || r.l.balance(shopAccount) != shop+30_000 {
		t.Fatalf("released by the operator: %+v", y)
	}
	r.ok(t)(r.e.Resolve(ctx, "op-1", x.Reference, DecideRelease)) // again: unchanged
	_, err = r.e.Resolve(ctx, "op-1", x.Reference, DecideRefund)
	refused(t, err, saml.CodePolicyViolation, "confirmed")
	x = open(true)
	r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "wrong size"))
	y = r.ok(t)(r.e.Resolve(ctx, "op-2", x.Reference, DecideRefund))
	if y.State != Refunded {
		t.Fatalf("refunded by the operator: %+v", y)
	}
	ev, _ = r.e.Events(ctx, x.Reference)
	if ev[len(ev)-2].Actor != "operator:op-2" {
		t.Fatalf("actor %q", ev[len(ev)-2].Actor)
	}
}

// TestCancelAndExpire: an unpaid order is cancelled by the merchant's
// refund, or expires after PayBy; neither can be paid then.
func TestCancelAndExpire(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(5000)))
	_, err := r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "1", "s")
	refused(t, err, saml.CodePolicyViolation, "not paid")
	_, err = r.e.Confirm(ctx, buyer, x.Reference)
	if !IsNotFound(err) {
		t.Fatalf("confirm of an order the customer did not pay: %v", err)
	}
	y := r.ok(t)(r.e.Refund(ctx, shopID, Ref{Reference: x.Reference}, "r"))
	if y.State != Cancelled {
		t.Fatalf("%+v", y)
	}
	_, err = r.e.Pay(ctx, buyer, x.Reference, buyerAccount)
	refused(t, err, saml.CodePolicyViolation, "cancelled")

	x = r.ok(t)(r.e.Open(ctx, r.order(5000)))
	r.clock.Set(x.PayBy.Add(-time.Second))
	if rep, _ := r.e.Sweep(ctx); rep.Expired != 0 {
		t.Fatal("expired early")
	}
	r.clock.Set(x.PayBy)
	_, err = r.e.Pay(ctx, buyer, x.Reference, buyerAccount)
	refused(t, err, saml.CodePolicyViolation, "expired")
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Expired != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	y, _ = r.e.Get(ctx, x.Reference)
	if y.State != Expired || r.kinds(t, x.Reference) != "opened expired" {
		t.Fatalf("%+v", y)
	}
	r.invariant(t)
}

// TestIdempotency: repeated opens, payments, shipments and confirmations
// answer the same escrow and move money once.
func TestIdempotency(t *testing.T) {
	r := newRig(t)
	o := r.order(70_000)
	x := r.ok(t)(r.e.Open(ctx, o))
	again := *o
	again.IdempotencyKey = "another-key"
	y := r.ok(t)(r.e.Open(ctx, &again))
	if y.Reference != x.Reference {
		t.Fatal("the same order opened twice")
	}
	other := *o
	other.Amount = krw(70_001)
	_, err := r.e.Open(ctx, &other)
	refused(t, err, saml.CodeDuplicate, "other content")
	if _, err := r.e.Collect(ctx, o); err == nil {
		t.Fatal("a collect under an escrow's order")
	}
	// Another merchant's order of the same number is its own.
	o2 := *o
	o2.Merchant = shop2ID
	z := r.ok(t)(r.e.Open(ctx, &o2))
	if z.Reference == x.Reference {
		t.Fatal("orders are per merchant")
	}

	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	_, err = r.e.Pay(ctx, buyer2, x.Reference, buyer2Account)
	if !IsNotFound(err) {
		t.Fatalf("another customer sees a paid escrow: %v", err)
	}
	r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "T-1", "s1"))
	r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "T-1", "s2"))
	_, err = r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "T-2", "s3")
	refused(t, err, saml.CodePolicyViolation, "shipped already")
	r.ok(t)(r.e.Confirm(ctx, buyer, x.Reference))
	r.ok(t)(r.e.Confirm(ctx, buyer, x.Reference))
	if r.l.balance(buyerAccount) != 1_000_000-70_000 || r.l.balance(shopAccount) != 70_000 {
		t.Fatal("money moved twice")
	}
	if got := r.kinds(t, x.Reference); got != "opened funded shipped confirmed released" {
		t.Fatalf("events %s", got)
	}
}

// TestOwnership: a buyer acts on its own escrows only, a merchant on its
// own; another's is not found, as an unknown one.
func TestOwnership(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(1000)))
	// Before payment any logged-in customer may see the order (its
	// reference came with the shop's form), nobody else's list has it.
	if _, err := r.e.View(ctx, buyer2, x.Reference); err != nil {
		t.Fatal(err)
	}
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	for name, err := range map[string]error{
		"view":    second(r.e.View(ctx, buyer2, x.Reference)),
		"confirm": second(r.e.Confirm(ctx, buyer2, x.Reference)),
		"dispute": second(r.e.Dispute(ctx, buyer2, x.Reference, "mine")),
		"unknown": second(r.e.View(ctx, buyer, "EAAAAAAAAAAA")),
		"garbage": second(r.e.View(ctx, buyer, "../x")),
		"ship":    second(r.e.Ship(ctx, shop2ID, Ref{Reference: x.Reference}, "CJ", "1", "s")),
		"refund":  second(r.e.Refund(ctx, shop2ID, Ref{Reference: x.Reference}, "r")),
		"order":   second(r.e.Refund(ctx, shop2ID, Ref{Order: x.Order}, "r")),
		"mixed":   second(r.e.Refund(ctx, shopID, Ref{Reference: x.Reference, Order: "ORD-other"}, "r")),
	} {
		if !IsNotFound(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := r.e.Status(ctx, shop2ID, Ref{Reference: x.Reference}); !IsNotFound(err) {
		t.Errorf("status: %v", err)
	}
	mine, err := r.e.Mine(ctx, buyer, 10)
	if err != nil || len(mine) != 1 || mine[0].Reference != x.Reference {
		t.Fatalf("mine: %v %v", mine, err)
	}
	if theirs, _ := r.e.Mine(ctx, buyer2, 10); len(theirs) != 0 {
		t.Fatal("another buyer lists it")
	}
	// A customer pays only from its own account.
	y := r.ok(t)(r.e.Open(ctx, r.order(1000)))
	_, err = r.e.Pay(ctx, buyer2, y.Reference, buyerAccount)
	refused(t, err, saml.CodeDeclined, "not one of your accounts")
	r.invariant(t)
}

func second[T any](_ T, err error) error { return err }

// TestFundingRefused: insufficient funds leave the order unpaid, for
// another payment.
func TestFundingRefused(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(60_000)))
	_, err := r.e.Pay(ctx, buyer2, x.Reference, buyer2Account)
	refused(t, err, saml.CodeInsufficientFunds, "insufficient")
	y, _ := r.e.Get(ctx, x.Reference)
	if y.State != AwaitingPayment || y.Buyer != "" || y.Owed != OwesNothing {
		t.Fatalf("%+v", y)
	}
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
}

// TestLedgerFailures: a ledger call whose answer is lost is carried on by
// the sweep with the same key — money moves once.
func TestLedgerFailures(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(40_000)))
	r.l.fail["fund"] = "after"
	if _, err := r.e.Pay(ctx, buyer, x.Reference, buyerAccount); !errors.Is(err, errLost) {
		t.Fatalf("pay: %v", err)
	}
	y, _ := r.e.Get(ctx, x.Reference)
	if y.State != AwaitingPayment || y.Owed != OwesFund || y.Attempts != 1 {
		t.Fatalf("%+v", y)
	}
	// The merchant cannot cancel a payment under way, nor the sweep expire it.
	_, err := r.e.Refund(ctx, shopID, Ref{Reference: x.Reference}, "r")
	refused(t, err, saml.CodePolicyViolation, "under way")
	r.clock.Advance(DefaultPayBy)
	rep, err := r.e.Sweep(ctx)
	if err != nil || rep.Finished != 1 || rep.Expired != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	r.invariant(t)
	y, _ = r.e.Get(ctx, x.Reference)
	if y.State != Funded || r.l.balance(buyerAccount) != 1_000_000-40_000 {
		t.Fatalf("funded once: %+v", y)
	}

	// A release that fails before reaching the ledger: confirmed stands,
	// the sweep releases it after the backoff.
	r.l.fail["release"] = "before"
	y = r.ok(t)(r.e.Confirm(ctx, buyer, x.Reference))
	if y.State != Confirmed || y.Owed != OwesRelease {
		t.Fatalf("%+v", y)
	}
	r.l.fail["release"] = "after"
	r.clock.Advance(time.Minute)
	if rep, err := r.e.Sweep(ctx); err == nil || rep.Failed != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	y, _ = r.e.Get(ctx, x.Reference)
	if y.Attempts != 2 || !y.Retry.Equal(r.clock.Now().Truncate(time.Millisecond).Add(2*time.Minute)) {
		t.Fatalf("backoff: %+v", y)
	}
	r.clock.Advance(2 * time.Minute)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Released != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	r.invariant(t)
	if r.l.balance(shopAccount) != 40_000 {
		t.Fatal("released twice or not at all")
	}
	if !strings.Contains(r.logs.String(), "retried by the sweep") {
		t.Fatal("the failure is not logged")
	}
}

// TestCollect: a collect goes straight to the merchant; it has no
// shipment, confirmation, dispute or refund at the bank.
func TestCollect(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Collect(ctx, r.order(25_000)))
	if x.Hold || x.ECML() != nil {
		t.Fatalf("%+v", x)
	}
	y := r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	if y.State != Paid || y.Owed != OwesNothing || r.l.balance(shopAccount) != 25_000 || r.l.balance(holding) != 0 {
		t.Fatalf("%+v", y)
	}
	if got := r.kinds(t, x.Reference); got != "opened paid released" {
		t.Fatalf("events %s", got)
	}
	_, err := r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ", "1", "s")
	refused(t, err, saml.CodePolicyViolation, "not an escrow")
	_, err = r.e.Refund(ctx, shopID, Ref{Reference: x.Reference}, "r")
	refused(t, err, saml.CodePolicyViolation, "paid to the merchant")
	_, err = r.e.Dispute(ctx, buyer, x.Reference, "x")
	refused(t, err, saml.CodePolicyViolation, "collect")

	// A collect whose release is pending is paid; the sweep finishes it.
	o := r.order(10_000)
	o.SettlementBank, o.SettlementAccount = otherBank, shopAtOther
	x = r.ok(t)(r.e.Collect(ctx, o))
	r.l.pending[releaseKey(x.Reference)] = 1
	y = r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	if y.State != Paid || y.Owed != OwesRelease {
		t.Fatalf("%+v", y)
	}
	r.clock.Advance(time.Minute)
	if rep, err := r.e.Sweep(ctx); err != nil || rep.Released != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	r.invariant(t)
}

// TestNothingInClear: no account number in a row, an event, a record or a
// log line; the masks are there.
func TestNothingInClear(t *testing.T) { nothingInClear(t, newRig(t)) }

func nothingInClear(t *testing.T, r *rig) {
	lifecycle(t, r)
	o := r.order(1000)
	o.SettlementBank, o.SettlementAccount = otherBank, shopAtOther
	x := r.ok(t)(r.e.Open(ctx, o))
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	var secrets []string
	for _, a := range []string{buyerAccount, shopAccount, shopAtOther} {
		secrets = append(secrets, a, strings.ReplaceAll(a, "-", ""))
	}
	if n := testutil.AssertNoSecretsInRows(t, r.db.DB, []string{"escrow_order", "escrow_event"}, secrets...); n == 0 {
		t.Fatal("no values read")
	}
	logs := r.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("a log line holds %s", s)
		}
	}
	ev, _ := r.e.Events(ctx, x.Reference)
	if rec := string(ev[len(ev)-1].Record); !strings.Contains(rec, `Account="****-4567"`) || !strings.Contains(rec, `Account="****-6789"`) {
		t.Fatalf("the record lacks the masks: %s", rec)
	}
	// The row's sealed numbers open only under their own reference.
	var sealed []byte
	if err := r.db.QueryRowContext(ctx, `SELECT sealed FROM escrow_order WHERE reference = $1`, x.Reference).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.st.sealer.Open(sealed, sealAD("EAAAAAAAAAAA")); err == nil {
		t.Fatal("sealed numbers open under another reference")
	}
}

// TestEventTableAppendOnly: the event rows cannot be changed or deleted.
func TestEventTableAppendOnly(t *testing.T) { appendOnly(t, newRig(t)) }

func appendOnly(t *testing.T, r *rig) {
	x := r.ok(t)(r.e.Open(ctx, r.order(1000)))
	if _, err := r.db.ExecContext(ctx, `UPDATE escrow_event SET kind = 'x' WHERE reference = $1`, x.Reference); err == nil {
		t.Fatal("an event row was updated")
	}
	if _, err := r.db.ExecContext(ctx, `DELETE FROM escrow_event WHERE reference = $1`, x.Reference); err == nil {
		t.Fatal("an event row was deleted")
	}
}

// TestSweepFundingRefused: a payment whose answer was lost and that the
// ledger then refuses (the customer's balance went) leaves the order
// payable; the sweep reports it finished, not failed.
func TestSweepFundingRefused(t *testing.T) {
	r := newRig(t)
	x := r.ok(t)(r.e.Open(ctx, r.order(40_000)))
	r.l.fail["fund"] = "before"
	if _, err := r.e.Pay(ctx, buyer2, x.Reference, buyer2Account); !errors.Is(err, errLost) {
		t.Fatalf("pay: %v", err)
	}
	r.l.mu.Lock()
	r.l.balances["110555000111"] = 100 // spent meanwhile
	r.l.balances["funding"] += 49_900
	r.l.mu.Unlock()
	r.clock.Advance(time.Minute)
	rep, err := r.e.Sweep(ctx)
	if err != nil || rep.Finished != 1 || rep.Failed != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	y, _ := r.e.Get(ctx, x.Reference)
	if y.State != AwaitingPayment || y.Buyer != "" || y.Owed != OwesNothing || y.Payments != 1 {
		t.Fatalf("%+v", y)
	}
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	if y, _ = r.e.Get(ctx, x.Reference); y.Payments != 2 || y.State != Funded {
		t.Fatalf("%+v", y)
	}
}
