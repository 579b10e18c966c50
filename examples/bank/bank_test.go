package bank_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
)

// TestLedgerInvariants runs a random mix of every movement — deposits,
// transfers within the bank, transfers out (some refused: short balance,
// over the limit), their reversal or confirmation, credits from two other
// banks (some refused: unknown or closed account, repeats) — and checks
// after each step that the journals balance, each balance is the sum of
// its entries, and the money adds up: what customers hold is what was
// deposited, less what went out, plus what came in.
func TestLedgerInvariants(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		var accts []*bank.OpenedAccount
		var deposited int64
		for i := range 4 {
			_, a := e.customer(fmt.Sprintf("고객%d", i), fmt.Sprintf("user%d", i), fmt.Sprintf("010-1000-%04d", i), 100_000)
			accts = append(accts, a)
			deposited += 100_000
		}
		r := rand.New(rand.NewPCG(1, 2))
		var out, in int64
		var sent []string
		for step := range 60 {
			e.clock.Advance(time.Minute)
			a := accts[r.IntN(len(accts))]
			amount := int64(1+r.IntN(60)) * 1_000
			key := fmt.Sprintf("k%d", step)
			switch r.IntN(6) {
			case 0:
				if _, err := e.bk.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: krw(amount), IdempotencyKey: key}); err != nil {
					t.Fatal(err)
				}
				deposited += amount
			case 1:
				to := accts[r.IntN(len(accts))]
				_, err := e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: to.Number, Amount: krw(amount), IdempotencyKey: key})
				if c := bank.CodeOf(err); c != "" && c != bank.CodeInsufficientFunds && c != bank.CodeInvalidRequest {
					t.Fatal(err)
				}
			case 2:
				o, err := e.bk.SendOut(ctx, bank.SendOutRequest{FromAccountID: a.ID, ToBank: []string{otherA, "088"}[r.IntN(2)],
					ToNumber: "110-222-333444", ToHolder: "김영희", Amount: krw(amount), IdempotencyKey: key})
				switch bank.CodeOf(err) {
				case "":
					out += amount
					sent = append(sent, o.Reference)
				case bank.CodeInsufficientFunds:
				default:
					t.Fatal(err)
				}
			case 3:
				if len(sent) == 0 {
					continue
				}
				ref := sent[0]
				sent = sent[1:]
				if r.IntN(2) == 0 {
					o, err := e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: ref, Reason: "no such account", IdempotencyKey: key})
					if err != nil {
						t.Fatal(err)
					}
					out -= o.Amount.Minor
				} else if _, err := e.bk.ConfirmOut(ctx, ref, "C00000000001"); err != nil {
					t.Fatal(err)
				}
			case 4, 5:
				from := []string{otherA, "088"}[r.IntN(2)]
				number := a.Number
				if r.IntN(5) == 0 {
					number = "999-999-999999"
				}
				_, err := e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: from, Reference: fmt.Sprintf("T%d", step),
					ToNumber: number, Amount: krw(amount), RemitterName: "박민수", IdempotencyKey: key})
				switch bank.CodeOf(err) {
				case "":
					in += amount
				case bank.CodeNoSuchAccount:
				default:
					t.Fatal(err)
				}
			}
			rep := e.checkLedger()
			if want := deposited - out + in; rep.Customers != want {
				t.Fatalf("step %d: customers hold %d, want %d", step, rep.Customers, want)
			}
			if rep.Cash != -deposited {
				t.Fatalf("step %d: cash %d, want %d", step, rep.Cash, -deposited)
			}
			var clearing int64
			for _, v := range rep.Clearing {
				clearing += v
			}
			if clearing != out-in {
				t.Fatalf("step %d: clearing %d, want %d", step, clearing, out-in)
			}
		}
		// A statement's lines follow each other.
		lines, err := e.bk.Statement(ctx, accts[0].ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k+1 < len(lines); k++ {
			if lines[k].Balance != lines[k+1].Balance+lines[k].Amount {
				t.Fatalf("statement line %d: %+v after %+v", k, lines[k], lines[k+1])
			}
		}
		if lines[0].Balance != e.balance(accts[0].ID) {
			t.Fatalf("statement ends at %d, balance %d", lines[0].Balance, e.balance(accts[0].ID))
		}
	})
}

// TestIdempotency: the same key with the same parameters answers the
// first outcome — success or refusal — without a second effect or SMS;
// with other parameters it is IDEMPOTENCY_CONFLICT.
func TestIdempotency(t *testing.T) {
	e := newEnv(t, sqltestDSN)
	_, a := e.customer("홍길동", "hong", "010-2345-6789", 50_000)
	_, b := e.customer("김영희", "kim", "010-3456-7890", 0)
	req := bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(20_000), Memo: "점심", IdempotencyKey: "t-1"}
	m1, err := e.bk.Transfer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sms := len(e.inbox.Messages(""))
	m2, err := e.bk.Transfer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Replayed || m1.Replayed || m2.JournalID != m1.JournalID || m2.Balance != 30_000 || e.balance(a.ID) != 30_000 || e.balance(b.ID) != 20_000 {
		t.Fatalf("repeat: %+v after %+v; balances %d %d", m2, m1, e.balance(a.ID), e.balance(b.ID))
	}
	if len(e.inbox.Messages("")) != sms {
		t.Fatal("a repeat texted again")
	}
	other := req
	other.Amount = krw(20_001)
	_, err = e.bk.Transfer(ctx, other)
	wantCode(t, err, bank.CodeIdempotencyConflict)
	// Same key for another operation.
	_, err = e.bk.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: krw(1), IdempotencyKey: "t-1"})
	wantCode(t, err, bank.CodeIdempotencyConflict)

	// A refusal repeats as the refusal, even once the balance would cover it.
	big := bank.SendOutRequest{FromAccountID: a.ID, ToBank: otherA, ToNumber: "110-222-333444", Amount: krw(40_000), IdempotencyKey: "s-1"}
	_, err = e.bk.SendOut(ctx, big)
	wantCode(t, err, bank.CodeInsufficientFunds)
	if _, err := e.bk.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: krw(100_000), IdempotencyKey: "d-2"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.bk.SendOut(ctx, big)
	wantCode(t, err, bank.CodeInsufficientFunds)
	big.IdempotencyKey = "s-2"
	o, err := e.bk.SendOut(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := e.bk.SendOut(ctx, big)
	if err != nil || !o2.Replayed || o2.Reference != o.Reference || e.balance(a.ID) != 90_000 {
		t.Fatalf("repeat SendOut: %+v %v, balance %d", o2, err, e.balance(a.ID))
	}
	// ReverseOut: repeat same; another key is ALREADY_REVERSED.
	r1, err := e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: o.Reference, Reason: "refused", IdempotencyKey: "r-1"})
	if err != nil || r1.Status != bank.OutgoingReversed || r1.Balance != 130_000 {
		t.Fatalf("reverse: %+v %v", r1, err)
	}
	r2, err := e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: o.Reference, Reason: "refused", IdempotencyKey: "r-1"})
	if err != nil || !r2.Replayed || e.balance(a.ID) != 130_000 {
		t.Fatalf("repeat reverse: %+v %v", r2, err)
	}
	_, err = e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: o.Reference, Reason: "refused", IdempotencyKey: "r-2"})
	wantCode(t, err, bank.CodeAlreadyReversed)
	_, err = e.bk.ConfirmOut(ctx, o.Reference, "C1")
	wantCode(t, err, bank.CodeAlreadyReversed)
	e.checkLedger()
}

func sqltestDSN(t testing.TB) string { return "sqlite:" + t.TempDir() + "/bank.db" }

// TestRefusals: short balance, the account's limit, unknown accounts,
// closed accounts, bad input.
func TestRefusals(t *testing.T) {
	e := newEnv(t, sqltestDSN)
	c, a := e.customer("홍길동", "hong", "010-2345-6789", 10_000)
	_, b := e.customer("김영희", "kim", "010-3456-7890", 0)
	_, err := e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(10_001), IdempotencyKey: "1"})
	wantCode(t, err, bank.CodeInsufficientFunds)
	_, err = e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: "123-456-789012", Amount: krw(1), IdempotencyKey: "2"})
	wantCode(t, err, bank.CodeNoSuchAccount)
	lim, err := e.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, TransferLimit: 5_000, Number: "081-000-111222", IdempotencyKey: "lim"})
	if err != nil || lim.Number.Reveal() != "081-000-111222" || lim.Last4 != "1222" {
		t.Fatalf("%+v %v", lim, err)
	}
	if _, err := e.bk.Deposit(ctx, bank.DepositRequest{AccountID: lim.ID, Amount: krw(50_000), IdempotencyKey: "3"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.bk.SendOut(ctx, bank.SendOutRequest{FromAccountID: lim.ID, ToBank: otherA, ToNumber: "110222333444", Amount: krw(5_001), IdempotencyKey: "4"})
	wantCode(t, err, bank.CodeLimitExceeded)
	_, err = e.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, Number: "081000111222", IdempotencyKey: "dup"})
	wantCode(t, err, bank.CodeInvalidRequest)
	_, err = e.bk.SendOut(ctx, bank.SendOutRequest{FromAccountID: a.ID, ToBank: code, ToNumber: "110222333444", Amount: krw(1), IdempotencyKey: "5"})
	wantCode(t, err, bank.CodeInvalidRequest)
	_, err = e.bk.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: ecml.Money{Minor: 1, Currency: "USD"}, IdempotencyKey: "6"})
	wantCode(t, err, bank.CodeInvalidRequest)
	// Closed: only at zero; then it takes nothing and reads as no account.
	_, err = e.bk.CloseAccount(ctx, a.ID, "close-1")
	wantCode(t, err, bank.CodeInvalidRequest)
	if _, err := e.bk.CloseAccount(ctx, b.ID, "close-2"); err != nil {
		t.Fatal(err)
	}
	_, err = e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(1), IdempotencyKey: "7"})
	wantCode(t, err, bank.CodeNoSuchAccount)
	_, err = e.bk.Holder(ctx, b.Number)
	wantCode(t, err, bank.CodeNoSuchAccount)
	if n, err := e.bk.Holder(ctx, a.Number); err != nil || n != "홍길동" {
		t.Fatalf("holder %q %v", n, err)
	}
	_, err = e.bk.Holder(ctx, "12")
	wantCode(t, err, bank.CodeNoSuchAccount)
	e.checkLedger()
}

// TestConcurrentSendOut: many SendOuts at once on one account, from two
// Banks sharing the database (replicas), never overdraw it: exactly as
// many succeed as the balance covers.
func TestConcurrentSendOut(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		_, a := e.customer("홍길동", "hong", "010-2345-6789", 100_000)
		replica, err := bank.Open(ctx, bank.Config{BankCode: code, DSN: e.dsn, DataKey: testDataKey, Pepper: testPepper,
			Notifier: e.inbox, Logger: e.bk2Logger(), Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer replica.Close()
		const n = 24
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, short := 0, 0
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				bk := e.bk
				if i%2 == 1 {
					bk = replica
				}
				_, err := bk.SendOut(ctx, bank.SendOutRequest{FromAccountID: a.ID, ToBank: otherA, ToNumber: "110-222-333444",
					Amount: krw(7_000), IdempotencyKey: fmt.Sprintf("c-%d", i)})
				mu.Lock()
				defer mu.Unlock()
				switch bank.CodeOf(err) {
				case "":
					ok++
				case bank.CodeInsufficientFunds:
					short++
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok != 14 || short != n-14 || e.balance(a.ID) != 2_000 {
			t.Fatalf("%d sent, %d refused, balance %d; want 14, %d, 2000", ok, short, e.balance(a.ID), n-14)
		}
		rep := e.checkLedger()
		if rep.Clearing[otherA] != 98_000 {
			t.Fatalf("clearing %v", rep.Clearing)
		}
	})
}

// TestCreditIn: a credit from another bank is idempotent by key and by
// (bank, reference): the same reference with another key and the same
// content answers the existing credit; other content is DUPLICATE. An
// unknown, closed or malformed account is one answer; Inquire finds it.
func TestCreditIn(t *testing.T) {
	e := newEnv(t, sqltestDSN, func(c *bank.Config) { c.MaxCredit = 1_000_000 })
	_, a := e.customer("김영희", "kim", "010-3456-7890", 0)
	req := bank.CreditInRequest{FromBank: otherA, Reference: "TR-1", ToNumber: a.Number, Amount: krw(15_000),
		RemitterName: "홍길동", RemitterNumber: "004-11-2233-445", Purpose: ecml.PurposePhishingPrevention, IdempotencyKey: "k1"}
	c1, err := e.bk.CreditIn(ctx, req)
	if err != nil || c1.Replayed || c1.State != bank.CreditCredited || c1.AccountLast4 != a.Last4 || !strings.HasPrefix(c1.Reference, "C") {
		t.Fatalf("%+v %v", c1, err)
	}
	c2, err := e.bk.CreditIn(ctx, req)
	if err != nil || !c2.Replayed || c2.Reference != c1.Reference {
		t.Fatalf("same key: %+v %v", c2, err)
	}
	req.IdempotencyKey = "k2"
	c3, err := e.bk.CreditIn(ctx, req)
	if err != nil || !c3.Replayed || c3.Reference != c1.Reference {
		t.Fatalf("same reference, another key: %+v %v", c3, err)
	}
	req.IdempotencyKey, req.Amount = "k3", krw(15_001)
	_, err = e.bk.CreditIn(ctx, req)
	wantCode(t, err, bank.CodeDuplicate)
	if e.balance(a.ID) != 15_000 {
		t.Fatalf("balance %d", e.balance(a.ID))
	}
	if got := e.inbox.Messages("010-3456-7890"); len(got) != 1 || got[0].Text != "[KECIS Bank] 입금 15,000원 홍길동 11/22 19:00 잔액 15,000원 ("+a.Last4+")" {
		t.Fatalf("SMS %+v", got)
	}
	// The same reference from another bank is another transfer.
	req.FromBank, req.IdempotencyKey, req.Amount = "088", "k1", krw(1_000)
	if _, err := e.bk.CreditIn(ctx, req); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for i, number := range []ecml.Secret{"999-999-999999", "12", ""} {
		_, err := e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: otherA, Reference: fmt.Sprintf("TR-x%d", i), ToNumber: number,
			Amount: krw(1), IdempotencyKey: fmt.Sprintf("x%d", i)})
		wantCode(t, err, bank.CodeNoSuchAccount)
		msgs = append(msgs, err.Error())
	}
	_, err = e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: otherA, Reference: "TR-big", ToNumber: a.Number, Amount: krw(1_000_001), IdempotencyKey: "big"})
	wantCode(t, err, bank.CodeLimitExceeded)
	_, err = e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: code, Reference: "TR-self", ToNumber: a.Number, Amount: krw(1), IdempotencyKey: "self"})
	wantCode(t, err, bank.CodeInvalidRequest)
	got, err := e.bk.Inquire(ctx, otherA, "TR-1")
	if err != nil || got.Reference != c1.Reference || got.Amount != krw(15_000) || got.RemitterName != "홍길동" {
		t.Fatalf("inquire: %+v %v", got, err)
	}
	_, err = e.bk.Inquire(ctx, "088", "TR-nope")
	wantCode(t, err, bank.CodeNotFound)
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("refusals differ: %q", msgs)
		}
	}
	e.checkLedger()
}

// TestAuthenticate: right password; wrong ones count and lock at the
// limit (an unknown login reads as a wrong password); unlock.
func TestAuthenticate(t *testing.T) {
	e := newEnv(t, sqltestDSN, func(c *bank.Config) { c.MaxLoginFailures = 3 })
	c, _ := e.customer("홍길동", "hong", "010-2345-6789", 0)
	if got, err := e.bk.Authenticate(ctx, "HONG", password); err != nil || got.ID != c.ID {
		t.Fatalf("%+v %v", got, err)
	}
	_, err := e.bk.Authenticate(ctx, "nobody", password)
	wantCode(t, err, bank.CodeLoginFailed)
	for range 3 {
		_, err := e.bk.Authenticate(ctx, "hong", "wrong-password")
		wantCode(t, err, bank.CodeLoginFailed)
	}
	_, err = e.bk.Authenticate(ctx, "hong", password)
	wantCode(t, err, bank.CodeLocked)
	if _, err := e.bk.UnlockCustomer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bk.Authenticate(ctx, "hong", password); err != nil {
		t.Fatal(err)
	}
	_, err = e.bk.NewCustomer(ctx, bank.NewCustomerRequest{Name: "다른", Phone: "010-1111-2222", Login: "hong", Password: password, IdempotencyKey: "x"})
	wantCode(t, err, bank.CodeLoginTaken)
}
