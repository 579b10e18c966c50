package bank_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/internal/testutil"
)

// TestNoSecretsAtRest runs every movement, refusals and logins included,
// then dumps every column of every table, every log line, every SMS and
// every error, and checks that no account number (in any writing) and no
// password appears in any of them (KECIS §8.1, §9.11).
func TestNoSecretsAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		var errs []string
		note := func(_ any, err error) {
			if err != nil {
				errs = append(errs, err.Error())
			}
		}
		_, a := e.customer("홍길동", "hong", "010-2345-6789", 100_000)
		_, b := e.customer("김영희", "kim", "010-3456-7890", 0)
		const payee, remitter = "110-222-333444", "004-11-778899"
		note(e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(1_000), IdempotencyKey: "t1"}))
		note(e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: b.Number, Amount: krw(1_000_000), IdempotencyKey: "t2"}))
		note(e.bk.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: payee, Amount: krw(1), IdempotencyKey: "t3"}))
		o, err := e.bk.SendOut(ctx, bank.SendOutRequest{FromAccountID: a.ID, ToBank: otherA, ToNumber: payee, ToHolder: "박민수",
			Amount: krw(5_000), IdempotencyKey: "s1"})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := e.bk.OutgoingNumber(ctx, o.Reference); err != nil || n.Reveal() != "110222333444" {
			t.Fatalf("outgoing number: %v", err)
		}
		note(e.bk.ReverseOut(ctx, bank.ReverseOutRequest{Reference: o.Reference, Reason: "no such account", IdempotencyKey: "r1"}))
		note(e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: otherA, Reference: "T1", ToNumber: b.Number, Amount: krw(3_000),
			RemitterName: "박민수", RemitterNumber: remitter, IdempotencyKey: "c1"}))
		note(e.bk.CreditIn(ctx, bank.CreditInRequest{FromBank: otherA, Reference: "T2", ToNumber: payee, Amount: krw(3_000), IdempotencyKey: "c2"}))
		note(e.bk.Holder(ctx, payee))
		note(e.bk.Authenticate(ctx, "hong", "not-the-password"))
		note(e.bk.Authenticate(ctx, "hong", password))
		note(e.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: "cus_none", Number: payee, IdempotencyKey: "x"}))

		secrets := []string{password, "not-the-password", payee, "110222333444", remitter, "00411778899"}
		for _, n := range []ecml.Secret{a.Number, b.Number} {
			d, _ := ecml.AccountDigits(n.Reveal())
			secrets = append(secrets, n.Reveal(), d)
		}
		if s := fmt.Sprintf("%v %+v %#v", a, a, bank.TransferRequest{ToNumber: b.Number}); strings.Contains(s, b.Number.Reveal()) {
			t.Errorf("a value prints an account number: %s", s)
		}
		check := func(where, s string) {
			for _, x := range secrets {
				if strings.Contains(s, x) {
					t.Errorf("%s holds a secret in clear: %q", where, s)
				}
			}
		}
		cells := 0
		for table, rows := range testutil.DumpDB(t, e.bk.DB().DB) {
			for _, row := range rows {
				for col, v := range row {
					cells++
					s := fmt.Sprint(v)
					if bs, ok := v.([]byte); ok {
						s = string(bs)
					}
					check(table+"."+col, s)
				}
			}
		}
		if cells < 100 {
			t.Fatalf("only %d cells dumped", cells)
		}
		check("logs", e.logs.String())
		for _, m := range e.inbox.Messages("") {
			check("sms", m.Text)
		}
		for _, s := range errs {
			check("error", s)
		}
		if len(errs) < 4 {
			t.Fatalf("only %d errors: %q", len(errs), errs)
		}
	})
}

// FuzzAccountDigits: the parser never panics, and what it accepts is 6 to
// 20 digits that FormatAccount keeps.
func FuzzAccountDigits(f *testing.F) {
	for _, s := range []string{"081-123-456789", "123456", "1-2-3-4-5-6", "-1234567", "12--34567", "", "١٢٣٤٥٦"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ecml.AccountDigits(s)
		if !ok {
			return
		}
		if len(d) < 6 || len(d) > 20 || !ecml.AllDigits(d) {
			t.Fatalf("%q → %q", s, d)
		}
		if d2, ok := ecml.AccountDigits(bank.FormatAccount(d)); !ok || d2 != d {
			t.Fatalf("format round trip %q", d)
		}
	})
}
