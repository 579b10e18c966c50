package kecisadapter_test

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/microdeposit"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// mdRig is the micro-deposit engine of a verifier (홍길동's account at bank
// A, 004, is the verifier's) over kecisadapter.MicroDeposits, with the
// 2-WAY rig's two banks and relaying hub.
type mdRig struct {
	*twoWayRig
	md    *kecisadapter.MicroDeposits
	e     *microdeposit.Engine
	db    *sqlstore.DB
	vlogs *syncBuffer // the verifier's engine's
}

const (
	shop     = "shop"      // amounts
	shopCode = "shop-code" // code
)

func newMDRig(t *testing.T) *mdRig {
	t.Helper()
	r := &mdRig{twoWayRig: newTwoWayRig(t), vlogs: &syncBuffer{}}
	r.md = &kecisadapter.MicroDeposits{Bank: r.a, Banking: r.tw.Banking, Account: r.from.Number,
		Log: slog.New(slog.NewTextHandler(r.logsA, nil))}
	var err error
	if r.db, err = sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := microdeposit.NewSQLStore(ctx, r.db, sealer)
	if err != nil {
		t.Fatal(err)
	}
	if r.e, err = microdeposit.New(microdeposit.Config{Store: st, Depositor: r.md, Key: bytes.Repeat([]byte{1}, 32),
		Names: map[string]string{shop: "KECIS상점", shopCode: "KECIS상점"}, Verifiers: map[string]microdeposit.Options{
			shopCode: {Variant: microdeposit.Code}}, Limits: microdeposit.Limits{AccountPerDay: 10}, Now: func() time.Time { return r.now }, Rand: rand.NewChaCha8([32]byte{5}),
		Log: slog.New(slog.NewTextHandler(r.vlogs, &slog.HandlerOptions{Level: slog.LevelDebug}))}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *mdRig) start(t *testing.T, verifier, user, bankCode string, account ecml.Secret) *microdeposit.Session {
	t.Helper()
	s, err := r.e.Start(ctx, &microdeposit.StartRequest{Verifier: verifier, IdempotencyKey: "k-" + user, UserID: user,
		Bank: bankCode, Account: account})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// read is what the holder reads on the statement of their account: the
// session's credits, newest first (the amounts, or the code that starts
// the remitter's name — the memo of a transfer within the bank).
func read(t *testing.T, b *bank.Bank, accountID string, s *microdeposit.Session) microdeposit.Typed {
	t.Helper()
	lines, err := b.Statement(ctx, accountID, 50)
	if err != nil {
		t.Fatal(err)
	}
	var typed microdeposit.Typed
	for _, l := range lines {
		if l.Amount <= 0 || len(typed.Amounts) == s.Deposits {
			continue
		}
		typed.Amounts = append(typed.Amounts, l.Amount)
		memo := l.Counterparty
		if l.Kind == "transfer" {
			memo = l.Memo
		}
		if f := strings.Fields(memo); len(f) == 2 && f[1] == "KECIS상점" {
			typed.Code = f[0]
		}
	}
	if len(typed.Amounts) != s.Deposits {
		t.Fatalf("%d credits on the statement, want %d", len(typed.Amounts), s.Deposits)
	}
	if s.Variant == microdeposit.Code {
		typed.Amounts = nil
	} else {
		typed.Code = ""
	}
	return typed
}

// page is the holder's statement page at her bank, after logging in.
func page(t *testing.T, b *bank.Bank, login, password, accountID string) string {
	t.Helper()
	h := b.Handler()
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"login": {login}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("login: %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodGet, "/accounts/"+accountID, nil)
	req.AddCookie(rec.Result().Cookies()[0])
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("statement page: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestMicroDeposits: the engine over the verifier's bank. Both variants
// to bank B end verified with what bank B's statement (and page) shows;
// one to the verifier's own bank by an internal transfer; wrong amounts
// fail at the limit; a deposit to a closed account is refused and the
// verifier's debit reversed at bank A; a lost request and a lost answer
// through the hub are resolved by inquire without moving money twice; no
// account number (nor the code, outside the holder's bank) in clear in
// either bank's or the verifier's rows or logs.
func TestMicroDeposits(t *testing.T) {
	r := newMDRig(t)
	balanceA := func() int64 { return r.balance(t, r.a, r.from.ID) }
	balanceB := func() int64 { return r.balance(t, r.bk, r.account.ID) }
	spent := int64(0)
	var codes []string

	t.Run("amounts to bank B", func(t *testing.T) {
		s := r.start(t, shop, "u1", payeeCode, r.account.Number)
		if s.State != microdeposit.Awaiting || s.Deposits != 2 {
			t.Fatalf("session %s, %d deposits", s.State, s.Deposits)
		}
		typed := read(t, r.bk, r.account.ID, s)
		sum := typed.Amounts[0] + typed.Amounts[1]
		spent += sum
		if got := balanceB(); got != sum {
			t.Fatalf("holder's balance %d, want %d", got, sum)
		}
		if got := balanceA(); got != 1_000_000-spent {
			t.Fatalf("verifier's balance %d, want %d", got, 1_000_000-spent)
		}
		if body := page(t, r.bk, "kim", "a-good-password", r.account.ID); strings.Count(body, "KECIS상점") != 2 {
			t.Fatal("bank B's statement page does not show the verifier's name twice")
		}
		// The order is irrelevant.
		typed.Amounts[0], typed.Amounts[1] = typed.Amounts[1], typed.Amounts[0]
		if s, err := r.e.Confirm(ctx, shop, s.ID, typed); err != nil || s.State != microdeposit.Verified {
			t.Fatalf("confirm: %v %v", s, err)
		}
		for _, c := range s.Credits[:s.Deposits] {
			if c == "" {
				t.Fatal("a deposit without its credit reference")
			}
		}
	})

	t.Run("code to bank B", func(t *testing.T) {
		s := r.start(t, shopCode, "u2", payeeCode, r.account.Number)
		if s.State != microdeposit.Awaiting || s.Deposits != 1 {
			t.Fatalf("session %s, %d deposits", s.State, s.Deposits)
		}
		typed := read(t, r.bk, r.account.ID, s)
		spent += 1
		if len(typed.Code) != 4 || !strings.Contains(page(t, r.bk, "kim", "a-good-password", r.account.ID), typed.Code+" KECIS상점") {
			t.Fatalf("code %q not on bank B's statement page", typed.Code)
		}
		codes = append(codes, typed.Code+" KECIS상점")
		typed.Code = strings.ToLower(typed.Code[:2]) + "-" + typed.Code[2:]
		if s, err := r.e.Confirm(ctx, shopCode, s.ID, typed); err != nil || s.State != microdeposit.Verified {
			t.Fatalf("confirm: %v %v", s, err)
		}
	})

	t.Run("code within bank A", func(t *testing.T) {
		s := r.start(t, shopCode, "u3", remitCode, r.own.Number)
		relays := r.relays.Load()
		typed := read(t, r.a, r.own.ID, s)
		spent += 1
		codes = append(codes, typed.Code+" KECIS상점")
		if s, err := r.e.Confirm(ctx, shopCode, s.ID, typed); err != nil || s.State != microdeposit.Verified {
			t.Fatalf("confirm: %v %v", s, err)
		}
		if r.relays.Load() != relays {
			t.Fatal("a deposit within the bank went through the hub")
		}
		if got := balanceA(); got != 1_000_000-spent {
			t.Fatalf("verifier's balance %d, want %d", got, 1_000_000-spent)
		}
	})

	t.Run("wrong amounts fail at the limit", func(t *testing.T) {
		s := r.start(t, shop, "u4", payeeCode, r.account.Number)
		typed := read(t, r.bk, r.account.ID, s)
		spent += typed.Amounts[0] + typed.Amounts[1]
		wrong := microdeposit.Typed{Amounts: []int64{typed.Amounts[0], typed.Amounts[1]%99 + 1}}
		if wrong.Amounts[1] == typed.Amounts[0] { // the same pair in the other order
			wrong.Amounts[0] = typed.Amounts[0]%99 + 1
		}
		for i := 1; i <= 3; i++ {
			got, err := r.e.Confirm(ctx, shop, s.ID, wrong)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]microdeposit.State{true: microdeposit.Failed, false: microdeposit.Awaiting}[i == 3]; got.State != want {
				t.Fatalf("entry %d: %s, want %s", i, got.State, want)
			}
		}
		if got, err := r.e.Confirm(ctx, shop, s.ID, typed); err != nil || got.State != microdeposit.Failed {
			t.Fatalf("the right amounts after the limit: %v %v", got, err)
		}
	})

	t.Run("closed account refused and reversed", func(t *testing.T) {
		c, err := r.bk.NewCustomer(ctx, bank.NewCustomerRequest{Name: "박철수", Phone: "010-5555-6666", Login: "park",
			Password: "park-password", IdempotencyKey: "c-park"})
		if err != nil {
			t.Fatal(err)
		}
		closed, err := r.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, Number: "081-777-000111", IdempotencyKey: "a-park"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.bk.CloseAccount(ctx, closed.ID, "close-park"); err != nil {
			t.Fatal(err)
		}
		before := balanceA()
		s := r.start(t, shop, "u5", payeeCode, closed.Number)
		if s.State != microdeposit.Refused || s.RefusalCode != saml.CodeDeclined || s.RefusalMessage != "no such account" {
			t.Fatalf("session %s %s %q", s.State, s.RefusalCode, s.RefusalMessage)
		}
		if got := balanceA(); got != before {
			t.Fatalf("verifier's balance %d after a reversed deposit, want %d", got, before)
		}
		// Bank A's record: sent, refused, given back.
		lines, err := r.a.Statement(ctx, r.from.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if lines[0].Kind != "reverse_out" || lines[1].Kind != "send_out" || lines[0].Amount != -lines[1].Amount {
			t.Fatalf("bank A's statement %+v", lines)
		}
	})

	t.Run("lost messages resolved by inquire", func(t *testing.T) {
		// The credit's answer is lost: the engine asks, bank B credited it.
		r.dropAnswers.Store(1)
		s := r.start(t, shopCode, "u6", payeeCode, r.account.Number)
		if s.State != microdeposit.Awaiting {
			t.Fatalf("after a lost answer: %s", s.State)
		}
		spent += 1
		// The credit request is lost: the engine asks, bank B never saw
		// it, the deposit is sent again (bank A's debit replayed).
		s2 := r.start(t, shop, "u7", remitCode, r.own.Number) // within bank A
		r.dropRequests.Store(1)
		c, err := r.bk.NewCustomer(ctx, bank.NewCustomerRequest{Name: "최민수", Phone: "010-2222-3333", Login: "choi",
			Password: "choi-password", IdempotencyKey: "c-choi"})
		if err != nil {
			t.Fatal(err)
		}
		acct, err := r.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, Number: "081-555-444333", IdempotencyKey: "a-choi"})
		if err != nil {
			t.Fatal(err)
		}
		s3 := r.start(t, shop, "u8", payeeCode, acct.Number)
		if r.dropAnswers.Load() != 0 || r.dropRequests.Load() != 0 {
			t.Fatal("the hub lost no message")
		}
		if s2.State != microdeposit.Awaiting || s3.State != microdeposit.Awaiting {
			t.Fatalf("after a lost request: %s %s", s2.State, s3.State)
		}
		t2, t3 := read(t, r.a, r.own.ID, s2), read(t, r.bk, acct.ID, s3)
		spent += t2.Amounts[0] + t2.Amounts[1] + t3.Amounts[0] + t3.Amounts[1]
		if got := r.balance(t, r.bk, acct.ID); got != t3.Amounts[0]+t3.Amounts[1] {
			t.Fatalf("holder's balance %d after a lost request", got)
		}
		if got := balanceA(); got != 1_000_000-spent {
			t.Fatalf("verifier's balance %d, want %d (a deposit debited twice?)", got, 1_000_000-spent)
		}
		for _, x := range []*microdeposit.Session{s, s2, s3} {
			for i, c := range x.Credits[:x.Deposits] {
				// The engine's reference of a deposit (microdeposit's depositRef).
				ref, err := r.md.Inquire(ctx, x.Bank, "MD-"+x.ID+"-"+string(rune('1'+i)))
				if err != nil || ref != c {
					t.Fatalf("inquire deposit %d of %s: %q %v, want %q", i+1, x.ID, ref, err, c)
				}
			}
		}
		for _, code := range []string{remitCode, payeeCode} {
			if _, err := r.md.Inquire(ctx, code, "MD-never-1"); !errors.Is(err, microdeposit.ErrNoSuchDeposit) {
				t.Fatalf("a deposit never made at %s: %v", code, err)
			}
		}
	})

	t.Run("no account number in clear", func(t *testing.T) {
		var numbers []string
		for _, n := range []ecml.Secret{r.account.Number, r.own.Number, r.from.Number, "081-777-000111", "081-555-444333"} {
			d, _ := ecml.AccountDigits(n.Reveal())
			numbers = append(numbers, n.Reveal(), d)
		}
		// A code is the holder's bank's to show (codes[1] is bank A's,
		// codes[0] bank B's): nowhere else.
		cells := testutil.AssertNoSecretsInRows(t, r.a.DB().DB, nil, append(numbers, codes[0])...)
		cells += testutil.AssertNoSecretsInRows(t, r.bk.DB().DB, nil, append(numbers, codes[1])...)
		cells += testutil.AssertNoSecretsInRows(t, r.db.DB, nil, append(numbers, codes...)...)
		if cells < 200 {
			t.Fatalf("only %d cells read", cells)
		}
		for where, logs := range map[string]string{"bank A": r.logsA.String(), "bank B": r.rig.logs.String(), "verifier": r.vlogs.String()} {
			for _, x := range append(numbers, codes...) {
				if strings.Contains(logs, x) {
					t.Errorf("%s's logs hold %q", where, x)
				}
			}
		}
	})
}
