package bank_test

import (
	"testing"

	"github.com/kecis/kecis/examples/bank"
)

// TestOutcome: a request of the bank's own callers found by its key —
// never made, made, refused — without running anything.
func TestOutcome(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		_, a := e.customer("홍길동", "hong", "010-1111-2222", 10_000)
		_, b := e.customer("이영희", "lee", "010-3333-4444", 0)
		_, err := e.bk.Outcome(ctx, "t1")
		wantCode(t, err, bank.CodeNotFound)
		m, err := e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(100), IdempotencyKey: "t1"})
		if err != nil {
			t.Fatal(err)
		}
		if o, err := e.bk.Outcome(ctx, "t1"); err != nil || o.Operation != "transfer" || o.Reference != m.JournalID || o.Err != nil {
			t.Fatalf("outcome %+v %v", o, err)
		}
		_, err = e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(100_000), IdempotencyKey: "t2"})
		wantCode(t, err, bank.CodeInsufficientFunds)
		if o, err := e.bk.Outcome(ctx, "t2"); err != nil || o.Err == nil || o.Err.Code != bank.CodeInsufficientFunds {
			t.Fatalf("refused outcome %+v %v", o, err)
		}
		if got := e.balance(a.ID); got != 9_900 {
			t.Fatalf("balance %d", got)
		}
	})
}
