package microdeposit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

var ctx = context.Background()

func mustStart(t *testing.T, e *Engine, key string) *Session {
	t.Helper()
	s, err := e.Start(ctx, startReq(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAmountsVerifyInEitherOrder(t *testing.T) {
	for _, reversed := range []bool{false, true} {
		t.Run(fmt.Sprint("reversed=", reversed), func(t *testing.T) {
			w := newWorld(t)
			e := w.engine(nil, nil)
			s := mustStart(t, e, "k1")
			if s.State != Awaiting || s.Deposits != 2 || s.Credits[0] == "" || s.Credits[1] == "" || s.Pending != nil {
				t.Fatalf("after start: %+v", s)
			}
			st := w.bank.statement()
			if len(st) != 2 {
				t.Fatalf("statement: %d credits", len(st))
			}
			for _, c := range st {
				if c.amount.Minor < 1 || c.amount.Minor > 99 || c.amount.Currency != "KRW" || c.memo != "KECIS상점" || c.account != digits {
					t.Fatalf("deposit %+v", c)
				}
			}
			typed := w.read(s)
			if reversed {
				typed.Amounts[0], typed.Amounts[1] = typed.Amounts[1], typed.Amounts[0]
			}
			s, err := e.Confirm(ctx, verifierID, s.ID, typed)
			if err != nil || s.State != Verified || s.VerifiedAt.IsZero() || s.Return != "" {
				t.Fatalf("confirm: %+v %v", s, err)
			}
			if w.ret.calls != 0 {
				t.Fatal("kept deposits were asked back")
			}
		})
	}
}

func TestCodeVariant(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, codeVariant)
	s := mustStart(t, e, "k1")
	st := w.bank.statement()
	if s.State != Awaiting || s.Deposits != 1 || len(st) != 1 || st[0].amount.Minor != 1 {
		t.Fatalf("after start: %+v, statement %+v", s, st)
	}
	code := w.read(s).Code
	if len(code) != 4 || strings.Trim(code, CodeAlphabet) != "" || st[0].memo != code+" KECIS상점" {
		t.Fatalf("memo %q", st[0].memo)
	}
	// A wrong code counts; the right one, typed loosely, verifies.
	wrong := "ZZZZ"
	if code == wrong {
		wrong = "YYYY"
	}
	if s, _ = e.Confirm(ctx, verifierID, s.ID, Typed{Code: wrong}); s.Attempts != 1 || s.State != Awaiting {
		t.Fatalf("wrong code: %+v", s)
	}
	loose := strings.ToLower(code[:2]) + "-" + code[2:]
	if s, _ = e.Confirm(ctx, verifierID, s.ID, Typed{Code: loose}); s.State != Verified {
		t.Fatalf("right code: %+v", s)
	}
}

func TestWrongEntriesToTheLimit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, nil)
	s := mustStart(t, e, "k1")
	right := w.read(s)
	wrong := Typed{Amounts: []int64{right.Amounts[0], right.Amounts[1] + 100}}
	// Nothing typed counts nothing.
	if s, _ = e.Confirm(ctx, verifierID, s.ID, Typed{}); s.Attempts != 0 {
		t.Fatal("an empty entry was counted")
	}
	// One amount is a wrong entry.
	if s, _ = e.Confirm(ctx, verifierID, s.ID, Typed{Amounts: right.Amounts[:1]}); s.Attempts != 1 {
		t.Fatalf("one amount: %+v", s)
	}
	for i := 2; i <= 3; i++ {
		var err error
		if s, err = e.Confirm(ctx, verifierID, s.ID, wrong); err != nil || s.Attempts != i {
			t.Fatalf("entry %d: %+v %v", i, s, err)
		}
	}
	if s.State != Failed || s.AttemptsLeft() != 0 {
		t.Fatalf("after 3 wrong: %+v", s)
	}
	// The right amounts after the limit change nothing.
	if s, _ = e.Confirm(ctx, verifierID, s.ID, right); s.State != Failed || s.Attempts != 3 {
		t.Fatalf("after the limit: %+v", s)
	}
	// Another verifier's session is unknown to it.
	if _, err := e.Confirm(ctx, "https://other.example", s.ID, right); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another verifier: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, nil)
	s := mustStart(t, e, "k1")
	w.clock.Advance(48*time.Hour - time.Second)
	if s, _ = e.Lookup(ctx, verifierID, s.ID); s.State != Awaiting {
		t.Fatalf("before the deadline: %s", s.State)
	}
	w.clock.Advance(time.Second)
	s, err := e.Confirm(ctx, verifierID, s.ID, w.read(s))
	if err != nil || s.State != Expired || s.Attempts != 0 {
		t.Fatalf("at the deadline: %+v %v", s, err)
	}
}

func TestStartRepeatsAndLimits(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, nil)
	s := mustStart(t, e, "k1")
	again := mustStart(t, e, "k1")
	if again.ID != s.ID || len(w.bank.statement()) != 2 {
		t.Fatalf("a repeat started another session or sent again: %s %s", again.ID, s.ID)
	}
	other := startReq("k1")
	other.Account = "110-234-567891"
	if _, err := e.Start(ctx, other); !isStatus(err, saml.CodeDuplicate) {
		t.Fatalf("the key for another account: %v", err)
	}
	// The account takes 3 sessions a day, whoever asks.
	mustStart(t, e, "k2")
	r := startReq("k3")
	r.UserID = "user-2"
	if _, err := e.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(ctx, startReq("k4")); !isStatus(err, saml.CodeLimitExceeded) {
		t.Fatalf("a 4th session of the account: %v", err)
	}
	w.clock.Advance(24*time.Hour + time.Second)
	mustStart(t, e, "k5")
	// Malformed requests.
	for _, bad := range []func(*StartRequest){
		func(r *StartRequest) { r.Bank = "88" },
		func(r *StartRequest) { r.Account = "12-34" },
		func(r *StartRequest) { r.Account = "110--234567890" },
		func(r *StartRequest) { r.UserID = "" },
		func(r *StartRequest) { r.IdempotencyKey = "" },
	} {
		r := startReq("k9")
		bad(r)
		if _, err := e.Start(ctx, r); !isStatus(err, saml.CodeInvalidPayload) {
			t.Fatalf("%+v: %v", r, err)
		}
	}
}

func TestUserLimit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, func(c *Config) { c.Limits.AccountPerDay = 100 })
	for i := range 5 {
		r := startReq(fmt.Sprint("k", i))
		r.Account = ecml.Secret(fmt.Sprintf("110-234-56789%d", i))
		w.bank.accounts[fmt.Sprintf("11023456789%d", i)] = true
		if _, err := e.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := startReq("k9")
	r.Account = "110-234-567899"
	if _, err := e.Start(ctx, r); !isStatus(err, saml.CodeLimitExceeded) {
		t.Fatalf("a 6th session of the user: %v", err)
	}
}

func TestRefusedDeposit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, func(c *Config) { c.Options.Policy = Return })
	r := startReq("k1")
	r.Account = "999-999-999999"
	s, err := e.Start(ctx, r)
	if err != nil || s.State != Refused || s.RefusalMessage != "no such account" || s.Pending != nil {
		t.Fatalf("%+v %v", s, err)
	}
	if len(w.bank.statement()) != 0 || w.bank.calls != 1 || s.Return != "" || w.ret.calls != 0 {
		t.Fatalf("calls %d, return %q", w.bank.calls, s.Return)
	}
	// The second deposit refused: the first is asked back.
	w2 := newWorld(t)
	e2 := w2.engine(nil, func(c *Config) { c.Options.Policy = Return })
	w2.bank.down[2] = false
	e2.cfg.Depositor = depositorFunc{w2.bank, func(n int) bool { return n == 2 }}
	s, err = e2.Start(ctx, startReq("k1"))
	if err != nil || s.State != Refused || s.Credits[0] == "" || s.Return != ReturnRequested {
		t.Fatalf("%+v %v", s, err)
	}
	rr := w2.ret.requests[returnKey(s.ID)]
	if rr == nil || len(rr.Deposits) != 1 || rr.Deposits[0].CreditRef != s.Credits[0] {
		t.Fatalf("return request %+v", rr)
	}
}

// depositorFunc refuses the calls refuse picks (LimitExceeded) and passes
// the others to the bank.
type depositorFunc struct {
	*fakeBank
	refuse func(call int) bool
}

func (d depositorFunc) Deposit(c context.Context, dep *Deposit) (string, error) {
	if d.refuse(d.calls + 1) {
		d.calls++
		return "", connectors.Refuse(saml.StatusResponder, saml.CodeLimitExceeded, "above the limit")
	}
	return d.fakeBank.Deposit(c, dep)
}

func TestReturnPolicy(t *testing.T) {
	w := newWorld(t)
	w.ret.fail = true
	e := w.engine(nil, func(c *Config) { c.Options.Policy = Return })
	s := mustStart(t, e, "k1")
	s, err := e.Confirm(ctx, verifierID, s.ID, w.read(s))
	if err != nil || s.State != Verified || s.Return != ReturnOwed {
		t.Fatalf("%+v %v", s, err)
	}
	w.ret.fail = false
	if n, err := e.Recover(ctx, 10); err != nil || n != 0 {
		t.Fatalf("recover: %d %v", n, err)
	}
	s, _ = e.Lookup(ctx, verifierID, s.ID)
	rr := w.ret.requests[returnKey(s.ID)]
	if s.Return != ReturnRequested || w.ret.calls != 2 || len(w.ret.requests) != 1 || len(rr.Deposits) != 2 || rr.Bank != holderBank {
		t.Fatalf("return %q, calls %d, %+v", s.Return, w.ret.calls, rr)
	}
	if _, err := New(Config{Store: w.store, Depositor: w.bank, Key: make([]byte, 32), Options: Options{Policy: Return}}); err == nil {
		t.Fatal("a return policy without a Returner was accepted")
	}
}

// TestCrashAtEachStep: the process dies at each write of a start (after
// the deposit before it was credited in the row); another process's
// Recover finishes the session, and no deposit is sent twice.
func TestCrashAtEachStep(t *testing.T) {
	for _, v := range []Variant{Amounts, Code} {
		writes := 3 // each credit, then awaiting
		if v == Code {
			writes = 2
		}
		for failAt := 1; failAt <= writes; failAt++ {
			t.Run(fmt.Sprintf("%s/write%d", v, failAt), func(t *testing.T) {
				crashThenRecover(t, newWorld(t), v, failAt)
			})
		}
	}
}

func writes(v Variant) int {
	if v == Code {
		return 1
	}
	return 2
}

func crashThenRecover(t *testing.T, w *world, v Variant, failAt int) {
	variant := func(c *Config) { c.Options.Variant = v }
	crashing := w.engine(&faultyStore{SQLStore: w.store, failAt: failAt}, variant)
	if _, err := crashing.Start(ctx, startReq("k1")); !errors.Is(err, errCrash) {
		t.Fatalf("start: %v", err)
	}
	s, err := w.store.ByKey(ctx, verifierID, "k1")
	if err != nil || s.State != Sending {
		t.Fatalf("after the crash: %+v %v", s, err)
	}
	e := w.engine(nil, variant)
	// Within the grace the session is its own process's.
	if n, _ := e.Recover(ctx, 10); n != 1 || w.bank.calls != min(failAt, writes(v)) {
		t.Fatalf("within the grace: pending %d, calls %d", n, w.bank.calls)
	}
	w.clock.Advance(DefaultGrace)
	if n, err := e.Recover(ctx, 10); err != nil || n != 0 {
		t.Fatalf("recover: %d %v", n, err)
	}
	s, _ = e.Lookup(ctx, verifierID, s.ID)
	if s.State != Awaiting || len(w.bank.statement()) != s.Deposits {
		t.Fatalf("after recovery: %s, %d credits", s.State, len(w.bank.statement()))
	}
	if s, _ = e.Confirm(ctx, verifierID, s.ID, w.read(s)); s.State != Verified {
		t.Fatalf("confirm: %+v", s)
	}
}

// TestUnknownOutcomes: an answer lost after the bank credited, or a bank
// down before it did, with inquiries down too: the session stays sending;
// Recover inquires and sends only what was not credited.
func TestUnknownOutcomes(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(b *fakeBank)
	}{
		{"first answer lost", func(b *fakeBank) { b.lose[1] = true }},
		{"second answer lost", func(b *fakeBank) { b.lose[2] = true }},
		{"bank down at the first", func(b *fakeBank) { b.down[1] = true }},
		{"bank down at the second", func(b *fakeBank) { b.down[2] = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			c.set(w.bank)
			w.bank.inquireDown = true
			e := w.engine(nil, nil)
			s := mustStart(t, e, "k1")
			if s.State != Sending {
				t.Fatalf("state %s", s.State)
			}
			w.bank.inquireDown = false
			w.clock.Advance(DefaultGrace)
			if n, err := e.Recover(ctx, 10); err != nil || n != 0 {
				t.Fatalf("recover: %d %v", n, err)
			}
			s, _ = e.Lookup(ctx, verifierID, s.ID)
			if s.State != Awaiting || len(w.bank.statement()) != 2 {
				t.Fatalf("%s, %d credits", s.State, len(w.bank.statement()))
			}
		})
	}
	// Lost, then found by the inquiry at once: no Recover needed.
	w := newWorld(t)
	w.bank.lose[1] = true
	s := mustStart(t, w.engine(nil, nil), "k1")
	if s.State != Awaiting || w.bank.calls != 2 {
		t.Fatalf("%s, %d calls", s.State, w.bank.calls)
	}
}

func TestSendingPastTheDeadlineExpires(t *testing.T) {
	w := newWorld(t)
	w.bank.down[1] = true
	w.bank.inquireDown = true
	e := w.engine(nil, func(c *Config) { c.Options.Policy = Return })
	s := mustStart(t, e, "k1")
	w.bank.inquireDown = false
	w.clock.Advance(49 * time.Hour)
	if _, err := e.Recover(ctx, 10); err != nil {
		t.Fatal(err)
	}
	s, _ = e.Lookup(ctx, verifierID, s.ID)
	if s.State != Expired || s.Return != "" || len(w.bank.statement()) != 0 || w.ret.calls != 0 {
		t.Fatalf("nothing is sent after the deadline: %+v", s)
	}
	// A first deposit made, the second never: the first is asked back.
	w = newWorld(t)
	w.bank.down[2] = true
	w.bank.inquireDown = true
	e = w.engine(nil, func(c *Config) { c.Options.Policy = Return })
	s = mustStart(t, e, "k1")
	w.bank.inquireDown = false
	w.clock.Advance(49 * time.Hour)
	if _, err := e.Recover(ctx, 10); err != nil {
		t.Fatal(err)
	}
	s, _ = e.Lookup(ctx, verifierID, s.ID)
	if s.State != Expired || s.Return != ReturnRequested || len(w.bank.statement()) != 1 || s.Credits[1] != "" {
		t.Fatalf("%+v", s)
	}
}

func TestPostgres(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Run("verify", func(t *testing.T) {
		w := newWorldOn(t, sqltest.TestPostgresDSN(t))
		e := w.engine(nil, codeVariant)
		s := mustStart(t, e, "k1")
		if s, _ = e.Confirm(ctx, verifierID, s.ID, w.read(s)); s.State != Verified {
			t.Fatalf("%+v", s)
		}
		assertNoSecrets(t, w, s)
	})
	t.Run("crash", func(t *testing.T) {
		crashThenRecover(t, newWorldOn(t, sqltest.TestPostgresDSN(t)), Amounts, 2)
	})
	t.Run("limits", func(t *testing.T) {
		w := newWorldOn(t, sqltest.TestPostgresDSN(t))
		e := w.engine(nil, nil)
		for i := range 3 {
			mustStart(t, e, fmt.Sprint("k", i))
		}
		if _, err := e.Start(ctx, startReq("k9")); !isStatus(err, saml.CodeLimitExceeded) {
			t.Fatal(err)
		}
	})
}

func TestNoSecretsInRowsOrLogs(t *testing.T) {
	w := newWorld(t)
	for _, v := range []Variant{Amounts, Code} {
		e := w.engine(nil, func(c *Config) { c.Options.Variant = v; c.Limits.AccountPerDay = 10 })
		s := mustStart(t, e, "k-"+string(v))
		if s, _ = e.Confirm(ctx, verifierID, s.ID, Typed{Code: "ZZZZ", Amounts: []int64{100, 200}}); s.Attempts != 1 {
			t.Fatal(s.Attempts)
		}
		s, _ = e.Confirm(ctx, verifierID, s.ID, w.read(s))
		assertNoSecrets(t, w, s)
		if got := fmt.Sprintf("%v %+v %#v", s.Pending, &Draw{Amounts: []int64{42}, Code: "7KQ2"}, &Draw{Code: "7KQ2"}); strings.Contains(got, "7KQ2") || strings.Contains(got, "42") {
			t.Fatalf("a draw printed: %s", got)
		}
	}
}

// assertNoSecrets: no row holds the account number or the code in clear,
// the pending draw is gone once credited, and no log line names them or
// any amount.
func assertNoSecrets(t *testing.T, w *world, s *Session) {
	t.Helper()
	typed := w.read(s)
	rows, err := w.db.QueryContext(ctx, `SELECT `+columns+` FROM microdeposit_session`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			text := fmt.Sprintf("%s", v)
			if strings.Contains(text, digits) || strings.Contains(text, "567890") || (typed.Code != "" && strings.Contains(text, typed.Code)) {
				t.Errorf("column %s holds a secret in clear", cols[i])
			}
			if cols[i] == "pending_sealed" && len(fmt.Sprint(v)) > 2 && s.State != Sending {
				t.Errorf("the draw is still kept: %v", v)
			}
		}
	}
	logs := w.logs.String()
	for _, secret := range []string{digits, "567890", account} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold the account number")
		}
	}
	if typed.Code != "" && strings.Contains(logs, typed.Code) {
		t.Errorf("the logs hold the code")
	}
	for _, key := range []string{`"amount":`, `"amounts":`, `"code":`, `"memo"`} {
		if strings.Contains(logs, key) {
			t.Errorf("a log line carries %s", key)
		}
	}
}

func isStatus(err error, sub string) bool {
	st, ok := connectors.AsStatus(err)
	return ok && st.SubCode == sub
}
