package twoway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/saml"
)

var ctx = context.Background()

// flow runs steps 1 to 5: start and confirm; it returns the request
// awaiting the payee's reply.
func (w *world) flow(t testing.TB, e *Engine, tr *TransferRequest) *Request {
	t.Helper()
	r, err := e.Start(ctx, tr)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if r.State != AwaitingConfirmation {
		t.Fatalf("after Start: %s (%s)", r.State, r.Reason)
	}
	if r, err = e.Confirm(ctx, customer, r.ID); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if r.State != AwaitingReply {
		t.Fatalf("after Confirm: %s", r.State)
	}
	return r
}

func (w *world) get(t testing.TB, id string) *Request {
	t.Helper()
	r, err := w.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *world) send(t testing.TB, e *Engine, from, text, inReplyTo string) {
	t.Helper()
	if err := e.HandleReply(ctx, w.reply(from, text, inReplyTo)); err != nil {
		t.Fatalf("HandleReply: %v", err)
	}
}

// noMoneyMoved checks that no debit, credit or transfer happened.
func (w *world) noMoneyMoved(t testing.TB) {
	t.Helper()
	for _, op := range []string{"send-out", "credit", "transfer"} {
		if n := w.bank.count(op); n != 0 {
			t.Fatalf("%s applied %d times", op, n)
		}
	}
	if b := w.bank.balance(bankA, remAccount); b != 5_000_000 {
		t.Fatalf("remitter's balance %d", b)
	}
}

func kinds(t testing.TB, w *world, id string) []string {
	t.Helper()
	evs, err := w.store.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestMatchCompletes(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) {
			w := newWorldOn(t, dsn(t))
			e := w.engine(t, nil, nil)
			r, err := e.Start(ctx, request(100_000))
			if err != nil {
				t.Fatal(err)
			}
			if r.State != AwaitingConfirmation || r.NameCheck != Match || r.ShownHolder() != "김민수" || r.RemitterName != "홍길동" {
				t.Fatalf("after the name check: %s %s %q", r.State, r.NameCheck, r.ShownHolder())
			}
			if len(w.gw.to(payeePhone)) != 0 {
				t.Fatal("the payee was texted before the remitter confirmed")
			}
			w.clock.Advance(30 * time.Second)
			if r, err = e.Confirm(ctx, customer, r.ID); err != nil || r.State != AwaitingReply {
				t.Fatalf("Confirm = %v, %v", r, err)
			}
			text := w.texts(payeePhone)
			for _, want := range []string{"[KECIS은행]", "홍길동님이 100,000원", "088 은행 ****-4567", "유효시간 10분", "'거절'", "형사처벌"} {
				if !strings.Contains(text, want) {
					t.Errorf("the payee's text lacks %q:\n%s", want, text)
				}
			}
			code := w.codeSent(t, payeePhone)
			w.clock.Advance(time.Minute)
			w.send(t, e, payeePhone, "승인 "+code, w.messageTo(payeePhone))
			r = w.get(t, r.ID)
			if r.State != Completed || !r.Notified || r.DebitRef == "" || r.CreditRef == "" || !r.RepliedAt.Equal(at0.Add(90*time.Second)) {
				t.Fatalf("after the reply: %+v", r)
			}
			if a, b := w.bank.balance(bankA, remAccount), w.bank.balance(bankB, payeeAccount); a != 4_900_000 || b != 100_000 || w.bank.clearing != 0 {
				t.Fatalf("balances %d, %d, clearing %d", a, b, w.bank.clearing)
			}
			if rt := w.texts(remPhone); !strings.Contains(rt, "2-WAY 송금 완료: 100,000원") {
				t.Fatalf("the remitter's text: %q", rt)
			}
			want := []string{EventRequested, EventNameCheck, EventConfirmed, EventCodeSent, EventReply, EventVerified, EventDebited, EventCredit, EventResultTexted}
			if got := kinds(t, w, r.ID); !slices.Equal(got, want) {
				t.Fatalf("evidence log %v, want %v", got, want)
			}
			// Another customer does not see it.
			if _, err := e.Lookup(ctx, "cust-2", r.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("another customer's Lookup: %v", err)
			}
			if n, err := e.Recover(ctx); err != nil || n != 0 {
				t.Fatalf("Recover = %d, %v", n, err)
			}
			if open, _ := w.store.Open(ctx, 10); len(open) != 0 {
				t.Fatalf("%d requests still open", len(open))
			}
		})
	}
}

func TestCloseMatchConfirmedByPhone(t *testing.T) {
	w := newWorld(t)
	w.forced[payeePhone] = CloseMatch
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(50_000))
	if r.NameCheck != CloseMatch || r.ShownHolder() != "김민수" {
		t.Fatalf("close match shows %q (%s)", r.ShownHolder(), r.NameCheck)
	}
	// A reply the gateway cannot tie to the text: found by its sender.
	w.send(t, e, "010-3333-4444", w.codeSent(t, payeePhone), "")
	if r = w.get(t, r.ID); r.State != Completed {
		t.Fatalf("state %s", r.State)
	}
}

func TestNoMatchIsAbandoned(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	tr := request(100_000)
	tr.PayeePhone = otherPhone // 김철수's phone, 김민수's account
	r, err := e.Start(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if r.NameCheck != NoMatch || r.ShownHolder() != "" {
		t.Fatalf("no match shows %q (%s)", r.ShownHolder(), r.NameCheck)
	}
	if _, err := e.Confirm(ctx, customer, r.ID); !errors.Is(err, errNameMismatch) {
		t.Fatalf("Confirm after no match: %v", err)
	}
	if r, err = e.Cancel(ctx, customer, r.ID); err != nil || r.State != Abandoned || !r.Notified {
		t.Fatalf("Cancel = %+v, %v", r, err)
	}
	w.noMoneyMoved(t)
	if len(w.gw.to(otherPhone))+len(w.gw.to(remPhone)) != 0 {
		t.Fatal("texts sent for an abandoned request")
	}
	// The bank's policy may let the remitter go on at its own risk.
	e2 := w.engine(t, nil, func(c *Config) { c.ProceedOnNoMatch = true })
	tr.IdempotencyKey = "k2"
	r, err = e2.Start(ctx, tr)
	if err == nil {
		r, err = e2.Confirm(ctx, customer, r.ID)
	}
	if err != nil || r.State != AwaitingReply {
		t.Fatalf("ProceedOnNoMatch: %v, %v", r, err)
	}
}

func TestNotPossibleExpires(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	tr := request(100_000)
	tr.PayeePhone = "010-9999-0000" // unknown to the telecom
	r, err := e.Start(ctx, tr)
	if err != nil || r.NameCheck != NotPossible || r.ShownHolder() != "" {
		t.Fatalf("Start = %+v, %v", r, err)
	}
	if _, err := e.Confirm(ctx, customer, r.ID); !errors.Is(err, errNameMismatch) {
		t.Fatalf("Confirm after not possible: %v", err)
	}
	w.clock.Advance(DefaultDecisionTimeout)
	if n, err := e.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	if r = w.get(t, r.ID); r.State != Expired || !r.Notified {
		t.Fatalf("after the decision timeout: %s", r.State)
	}
	w.noMoneyMoved(t)
}

func TestUnknownAccountFails(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	tr := request(100_000)
	tr.PayeeAccount = "999-99-9999999"
	r, err := e.Start(ctx, tr)
	if err != nil || r.State != Failed || r.Reason != "no such account" {
		t.Fatalf("Start = %+v, %v", r, err)
	}
	// Nor may the remitter withdraw from another customer's account.
	tr = request(100_000)
	tr.Account = sameAccount
	if _, err := e.Start(ctx, tr); !errors.Is(err, errNotYours) {
		t.Fatalf("another's account: %v", err)
	}
}

func TestValidation(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	for name, edit := range map[string]func(*TransferRequest){
		"zero amount":        func(r *TransferRequest) { r.Amount.Minor = 0 },
		"usd":                func(r *TransferRequest) { r.Amount.Currency = "USD" },
		"bank code":          func(r *TransferRequest) { r.PayeeBank = "88" },
		"account":            func(r *TransferRequest) { r.PayeeAccount = "12-34" },
		"landline":           func(r *TransferRequest) { r.PayeePhone = "02-123-4567" },
		"purpose":            func(r *TransferRequest) { r.Purpose = "gift" },
		"loan without terms": func(r *TransferRequest) { r.Purpose = MutualAgreement },
		"rate":               func(r *TransferRequest) { *r = *loan(1000); r.Terms.InterestRate = "120" },
		"past repayment":     func(r *TransferRequest) { *r = *loan(1000); r.Terms.RepaymentDate = "2020-01-01" },
	} {
		tr := request(100_000)
		edit(tr)
		if _, err := e.Start(ctx, tr); err == nil {
			t.Errorf("%s: accepted", name)
		} else if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.CodeInvalidPayload {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIdempotentStart(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	tr := request(100_000)
	tr.IdempotencyKey = "page-1"
	a, err := e.Start(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Start(ctx, tr)
	if err != nil || b.ID != a.ID {
		t.Fatalf("repeat = %v, %v", b, err)
	}
	tr.Amount.Minor = 1_000_000
	if _, err := e.Start(ctx, tr); !errors.Is(err, errKeyReused) {
		t.Fatalf("the key for another transfer: %v", err)
	}
}

// TestCodeBinding: the code is bound to the request (KECIS §15.5): a code
// for 100,000 KRW does not confirm 1,000,000 KRW, and two identical
// requests get different codes.
func TestCodeBinding(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	// Someone with write access to the database raises the amount.
	if _, err := w.db.ExecContext(ctx, `UPDATE twoway_request SET amount = 1000000 WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	w.send(t, e, payeePhone, code, w.messageTo(payeePhone))
	if r = w.get(t, r.ID); r.State != AwaitingReply || r.Attempts != 1 {
		t.Fatalf("the 100,000 KRW code on a 1,000,000 KRW request: %s, %d attempts", r.State, r.Attempts)
	}
	w.noMoneyMoved(t)

	// Two identical requests, two codes; neither confirms the other.
	w2 := newWorld(t)
	e2 := w2.engine(t, nil, nil)
	r1 := w2.flow(t, e2, request(100_000))
	c1 := w2.codeSent(t, payeePhone)
	r2 := w2.flow(t, e2, request(100_000))
	c2 := w2.codeSent(t, payeePhone)
	if c1 == c2 {
		t.Fatal("two identical requests got the same code")
	}
	if checkCode(testKey, r2, c1) || !checkCode(testKey, r1, c1) || !checkCode(testKey, r2, c2) {
		t.Fatal("a code confirms another request")
	}
	// Every bound field matters.
	for name, edit := range map[string]func(*Request){
		"amount":   func(r *Request) { r.Amount.Minor++ },
		"account":  func(r *Request) { r.PayeeAccount = otherAccount },
		"bank":     func(r *Request) { r.PayeeBank = "004" },
		"phone":    func(r *Request) { r.PayeePhone = otherPhone },
		"purpose":  func(r *Request) { r.Purpose = MutualAgreement },
		"remitter": func(r *Request) { r.RemitterAccount = sameAccount },
	} {
		c := *r1
		edit(&c)
		if checkCode(testKey, &c, c1) {
			t.Errorf("the code survives a change of the %s", name)
		}
	}
}

func TestWrongSender(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	msg := w.messageTo(payeePhone)
	// Another phone answers the payee's text with the right code.
	w.send(t, e, otherPhone, code, msg)
	// And without naming the text: no request for that phone.
	w.send(t, e, otherPhone, code, "")
	if r = w.get(t, r.ID); r.State != AwaitingReply || r.Attempts != 0 {
		t.Fatalf("after replies from another number: %s, %d attempts", r.State, r.Attempts)
	}
	w.noMoneyMoved(t)
	if len(w.gw.to(otherPhone)) != 0 {
		t.Fatal("the stranger was texted")
	}
	w.send(t, e, payeePhone, code, msg)
	if r = w.get(t, r.ID); r.State != Completed {
		t.Fatalf("the payee's own reply: %s", r.State)
	}
}

func TestWrongCodesToTheLimit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	wrong := "000000"
	if wrong == code {
		wrong = "000001"
	}
	w.send(t, e, payeePhone, "안녕하세요", "") // unreadable: no attempt
	for i := range DefaultMaxAttempts {
		w.send(t, e, payeePhone, wrong, "")
		if r = w.get(t, r.ID); r.Attempts != i+1 {
			t.Fatalf("attempt %d counted %d", i+1, r.Attempts)
		}
	}
	if r.State != WrongCode {
		t.Fatalf("after %d wrong codes: %s", DefaultMaxAttempts, r.State)
	}
	w.send(t, e, payeePhone, code, "") // the right code, too late
	if r = w.get(t, r.ID); r.State != WrongCode || r.Attempts != DefaultMaxAttempts {
		t.Fatalf("after the limit: %s %d", r.State, r.Attempts)
	}
	w.noMoneyMoved(t)
	pt := w.texts(payeePhone)
	for _, want := range []string{"인증번호 6자리만", "2번 더", "3번 틀려", "이미 종료"} {
		if !strings.Contains(pt, want) {
			t.Errorf("the payee's texts lack %q:\n%s", want, pt)
		}
	}
	if rt := w.texts(remPhone); !strings.Contains(rt, "인증번호 오류") || !strings.Contains(rt, "이동하지 않았습니다") {
		t.Fatalf("the remitter's text: %q", rt)
	}
}

func TestExpiryAndLateReply(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	w.clock.Advance(DefaultCodeValidity)
	w.send(t, e, payeePhone, code, w.messageTo(payeePhone))
	if r = w.get(t, r.ID); r.State != Expired || !r.Notified {
		t.Fatalf("a reply after the validity: %s", r.State)
	}
	w.noMoneyMoved(t)
	if pt := w.texts(payeePhone); !strings.Contains(pt, "이미 종료되었습니다(시간 초과)") {
		t.Fatalf("the late reply was not answered:\n%s", pt)
	}
	if rt := w.texts(remPhone); !strings.Contains(rt, "시간 초과") {
		t.Fatalf("the remitter's text: %q", rt)
	}
}

func TestCancel(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	if _, err := e.Cancel(ctx, "cust-2", r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another customer cancels: %v", err)
	}
	r, err := e.Cancel(ctx, customer, r.ID)
	if err != nil || r.State != Cancelled {
		t.Fatalf("Cancel = %v, %v", r, err)
	}
	w.send(t, e, payeePhone, code, "")
	if r = w.get(t, r.ID); r.State != Cancelled {
		t.Fatalf("a reply after the cancel: %s", r.State)
	}
	w.noMoneyMoved(t)
	if !strings.Contains(w.texts(payeePhone), "이미 종료되었습니다(취소)") {
		t.Fatal("the reply after the cancel was not answered")
	}
	// Once the payee confirmed, it is too late.
	r = w.flow(t, e, request(10_000))
	w.send(t, e, payeePhone, w.codeSent(t, payeePhone), "")
	if _, err := e.Cancel(ctx, customer, r.ID); !errors.Is(err, errTooLate) {
		t.Fatalf("Cancel after completion: %v", err)
	}
}

func TestDuplicateAndSecondReplies(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	code := w.codeSent(t, payeePhone)
	rep := w.reply(payeePhone, code, w.messageTo(payeePhone))
	for range 3 { // the gateway delivers it three times
		if err := e.HandleReply(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	texts := len(w.gw.to(payeePhone))
	w.send(t, e, payeePhone, code, "") // a second correct reply, another id
	if r = w.get(t, r.ID); r.State != Completed {
		t.Fatalf("state %s", r.State)
	}
	if w.bank.count("send-out") != 1 || w.bank.count("credit") != 1 || len(w.gw.to(remPhone)) != 1 {
		t.Fatalf("debits %d, credits %d, remitter's texts %d", w.bank.count("send-out"), w.bank.count("credit"), len(w.gw.to(remPhone)))
	}
	if len(w.gw.to(payeePhone)) != texts {
		t.Fatal("a second reply after execution was answered")
	}
	replies := 0
	for _, k := range kinds(t, w, r.ID) {
		if k == EventReply {
			replies++
		}
	}
	if replies != 2 {
		t.Fatalf("%d replies recorded, want 2 (the redelivered one once)", replies)
	}
}

func TestPayeeRefuses(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	w.send(t, e, payeePhone, "거절", "")
	if r = w.get(t, r.ID); r.State != Refused {
		t.Fatalf("state %s", r.State)
	}
	w.noMoneyMoved(t)
	if !strings.Contains(w.texts(remPhone), "수취인 거절") {
		t.Fatal("the remitter was not told")
	}
	if _, err := e.Evidence(ctx, customer, r.ID); !errors.Is(err, ErrNoAgreement) {
		t.Fatalf("evidence of a refusal: %v", err)
	}
}

func TestCreditRefusedIsReversed(t *testing.T) {
	w := newWorld(t)
	w.bank.refuseCredit = true
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(100_000))
	w.send(t, e, payeePhone, w.codeSent(t, payeePhone), "")
	if r = w.get(t, r.ID); r.State != Reversed || !r.ReversalDone {
		t.Fatalf("state %s", r.State)
	}
	if b := w.bank.balance(bankA, remAccount); b != 5_000_000 || w.bank.clearing != 0 || w.bank.count("reverse-out") != 1 {
		t.Fatalf("balance %d, clearing %d", b, w.bank.clearing)
	}
	if !strings.Contains(w.texts(remPhone), "반환") {
		t.Fatal("the remitter was not told")
	}
}

func TestInsufficientFunds(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, request(6_000_000))
	w.send(t, e, payeePhone, w.codeSent(t, payeePhone), "")
	if r = w.get(t, r.ID); r.State != Failed || r.Reason != "잔액 부족" {
		t.Fatalf("state %s %q", r.State, r.Reason)
	}
	w.noMoneyMoved(t)
}

func TestWithinTheBank(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	tr := request(70_000)
	tr.PayeeBank, tr.PayeeAccount, tr.PayeePhone = bankA, sameAccount, "010-7777-8888"
	r := w.flow(t, e, tr)
	w.send(t, e, "+821077778888", w.codeSent(t, "+821077778888"), "")
	if r = w.get(t, r.ID); r.State != Completed || w.bank.count("transfer") != 1 || w.bank.count("send-out") != 0 {
		t.Fatalf("state %s", r.State)
	}
	if b := w.bank.balance(bankA, sameAccount); b != 70_000 {
		t.Fatalf("payee's balance %d", b)
	}
}

func TestMutualAgreementText(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	w.flow(t, e, loan(1_000_000))
	text := w.texts(payeePhone)
	for _, want := range []string{"차용 약정: 원금 1,000,000원, 상환일 2027-06-30, 연 이자 4.5%", "원금을 일시 상환한다", "이 약정에 동의하면"} {
		if !strings.Contains(text, want) {
			t.Errorf("the payee's text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "형사처벌") {
		t.Error("a mutual agreement carries the phishing warning")
	}
}
