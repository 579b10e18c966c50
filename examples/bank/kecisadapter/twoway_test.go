package kecisadapter_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/saml"
)

const hubID = "https://hub.test/kecis"

// resolver names bank B for its code (the hub's metadata matcher's job).
type resolver map[string]string

func (r resolver) RecipientFor(_ context.Context, _, _, code string) (string, error) {
	if id, ok := r[code]; ok {
		return id, nil
	}
	return "", connectors.ErrNoRecipient
}

// twoWayRig is bank A (004, the remitter's) with its TwoWay adapter, whose
// banking.Client reaches bank B's SDK Handler (the rig's) through a hub
// that relays each message.
type twoWayRig struct {
	*rig
	a      *bank.Bank
	tw     *kecisadapter.TwoWay
	hong   *bank.Customer
	from   *bank.OpenedAccount
	own    *bank.OpenedAccount // another customer's at bank A
	logsA  *syncBuffer
	relays atomic.Int32
	// dropRequests and dropAnswers make the hub lose that many messages
	// before or after bank B handles them (an unknown outcome).
	dropRequests, dropAnswers atomic.Int32
}

func newTwoWayRig(t *testing.T) *twoWayRig {
	t.Helper()
	r := &twoWayRig{rig: newRig(t), logsA: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logsA, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := bank.Open(ctx, bank.Config{BankCode: remitCode, DSN: sqltest.TestSQLiteDSN(t), DataKey: bytes.Repeat([]byte{0x43}, 32),
		Pepper: bytes.Repeat([]byte{0x18}, 32), Notifier: &bank.Inbox{}, Logger: log,
		Now: func() time.Time { return r.now }, Rand: rand.NewChaCha8([32]byte{2})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	r.a = a
	if r.hong, err = a.NewCustomer(ctx, bank.NewCustomerRequest{Name: "홍길동", Phone: "010-1111-2222", Login: "hong",
		Password: "hong-password", IdempotencyKey: "c1"}); err != nil {
		t.Fatal(err)
	}
	lee, err := a.NewCustomer(ctx, bank.NewCustomerRequest{Name: "이영희", Phone: "010-7777-8888", Login: "lee",
		Password: "lee-password", IdempotencyKey: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if r.from, err = a.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: r.hong.ID, Number: "004-11-222333", IdempotencyKey: "a1"}); err != nil {
		t.Fatal(err)
	}
	if r.own, err = a.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: lee.ID, Number: "004-99-888777", IdempotencyKey: "a2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deposit(ctx, bank.DepositRequest{AccountID: r.from.ID, Amount: ecml.Money{Minor: 1_000_000, Currency: "KRW"}, IdempotencyKey: "d1"}); err != nil {
		t.Fatal(err)
	}

	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		msg, err := saml.ReadSOAPRequest(req, saml.Limits{})
		if err != nil {
			saml.WriteFault(w, saml.FaultFor(err))
			return
		}
		if r.dropRequests.Add(-1) >= 0 {
			http.Error(w, "hub lost the request", http.StatusBadGateway)
			return
		}
		r.dropRequests.Store(0)
		r.relays.Add(1)
		out, err := r.h.Handle(req.Context(), msg)
		if err != nil {
			saml.WriteFault(w, saml.FaultFor(err))
			return
		}
		if r.dropAnswers.Add(-1) >= 0 {
			http.Error(w, "hub lost the answer", http.StatusBadGateway)
			return
		}
		r.dropAnswers.Store(0)
		saml.WriteSOAP(w, out)
	}))
	t.Cleanup(hub.Close)
	c, err := connectors.NewClient(connectors.ClientConfig{EntityID: remitterID, Signer: r.remitter,
		Decryption: []saml.DecryptionKey{{Cert: r.remitter.Cert, Key: r.remitter.Key.(crypto.Decrypter)}},
		Directory:  r.dir, HubEntityID: hubID, HubURL: hub.URL, HTTP: hub.Client(), Attempts: 1, Timeout: 5 * time.Second,
		Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.tw = &kecisadapter.TwoWay{Bank: a, Banking: &banking.Client{C: c, Resolver: resolver{payeeCode: bankID}, BankCode: remitCode}}
	return r
}

func (r *twoWayRig) balance(t *testing.T, b *bank.Bank, id string) int64 {
	t.Helper()
	a, err := b.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// TestTwoWayAdapters: the 2-WAY engine's interfaces over bank A's native
// API and, for bank B's accounts, connectors/banking's client through the
// hub to bank B's SDK Handler: a holder at the same bank answered locally,
// one at bank B by account:holder-inquiry; a debit, the credit there, its
// inquiry and the bank's record; a refused credit reversed; refusals as
// KECIS statuses; the pages' login and accounts; no account number in
// clear in either bank's logs.
func TestTwoWayAdapters(t *testing.T) {
	r := newTwoWayRig(t)
	tw := r.tw
	krw := func(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

	// Holders: the same bank locally (no relay), bank B over KECIS.
	if name, err := tw.Holder(ctx, remitCode, r.own.Number); err != nil || name != "이영희" {
		t.Fatalf("local holder %q %v", name, err)
	}
	if _, err := tw.Holder(ctx, remitCode, "004-00-000000"); !errors.Is(err, twoway.ErrNoSuchAccount) {
		t.Fatalf("unknown local account: %v", err)
	}
	if n := r.relays.Load(); n != 0 {
		t.Fatalf("%d relays for local holders", n)
	}
	if name, err := tw.Holder(ctx, payeeCode, r.account.Number); err != nil || name != "김영희" {
		t.Fatalf("bank B holder %q %v", name, err)
	}
	if _, err := tw.Holder(ctx, payeeCode, "081-000-000000"); !errors.Is(err, twoway.ErrNoSuchAccount) {
		t.Fatalf("unknown account at bank B: %v", err)
	}
	if n := r.relays.Load(); n != 2 {
		t.Fatalf("%d relays, want 2", n)
	}

	// The remitter: the customer's own account only.
	if rem, err := tw.Remitter(ctx, r.hong.ID, r.from.Number); err != nil || rem.Name != "홍길동" || rem.Phone == "" {
		t.Fatalf("remitter %+v %v", rem, err)
	}
	if _, err := tw.Remitter(ctx, r.hong.ID, r.own.Number); err == nil {
		t.Fatal("another customer's account is the remitter's")
	} else if _, ok := connectors.AsStatus(err); !ok {
		t.Fatalf("not a refusal: %v", err)
	}

	// Debit, credit at bank B, its inquiry, the bank's record.
	ref, err := tw.SendOut(ctx, &twoway.Debit{Account: r.from.Number, Amount: krw(150_000), PayeeBank: payeeCode,
		PayeeAccount: r.account.Number, PayeeHolder: "김영희", Reference: "tw1", Memo: "2-WAY", IdempotencyKey: "tw1.debit"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tw.SendOut(ctx, &twoway.Debit{Account: r.from.Number, Amount: krw(150_000), PayeeBank: payeeCode,
		PayeeAccount: r.account.Number, PayeeHolder: "김영희", Reference: "tw1", Memo: "2-WAY", IdempotencyKey: "tw1.debit"}); err != nil || again != ref {
		t.Fatalf("repeated debit %q %v", again, err)
	}
	if got := r.balance(t, r.a, r.from.ID); got != 850_000 {
		t.Fatalf("balance after the debit %d", got)
	}
	credit := &twoway.Credit{Reference: "tw1", Amount: krw(150_000), PayeeBank: payeeCode, PayeeAccount: r.account.Number,
		RemitterBank: remitCode, RemitterName: "홍길동", RemitterAccount: r.from.Number,
		Transfer: &ecml.Transfer{Purpose: ecml.PurposePhishingPrevention}, IdempotencyKey: "tw1.credit"}
	out, err := tw.Credit(ctx, credit)
	if err != nil || out.Status != twoway.Credited || out.Reference == "" {
		t.Fatalf("credit %+v %v", out, err)
	}
	if got := r.balance(t, r.bk, r.account.ID); got != 150_000 {
		t.Fatalf("payee balance %d", got)
	}
	if again, err := tw.Credit(ctx, credit); err != nil || again.Reference != out.Reference {
		t.Fatalf("repeated credit %+v %v", again, err)
	}
	if got := r.balance(t, r.bk, r.account.ID); got != 150_000 {
		t.Fatalf("payee balance after a repeat %d", got)
	}
	if inq, err := tw.Inquire(ctx, payeeCode, "tw1"); err != nil || inq.Status != twoway.Credited || inq.Reference != out.Reference {
		t.Fatalf("inquire %+v %v", inq, err)
	}
	if inq, err := tw.Inquire(ctx, payeeCode, "tw-none"); err != nil || inq.Status != twoway.CreditNotFound {
		t.Fatalf("inquire of nothing %+v %v", inq, err)
	}
	if err := tw.ConfirmOut(ctx, ref, out.Reference); err != nil {
		t.Fatal(err)
	}
	if o, err := r.a.OutgoingTransfer(ctx, ref); err != nil || o.Status != bank.OutgoingCredited || o.CreditRef != out.Reference {
		t.Fatalf("outgoing %+v %v", o, err)
	}

	// A credit bank B refuses (no such account) is reversed.
	ref2, err := tw.SendOut(ctx, &twoway.Debit{Account: r.from.Number, Amount: krw(50_000), PayeeBank: payeeCode,
		PayeeAccount: "081-000-000000", Reference: "tw2", IdempotencyKey: "tw2.debit"})
	if err != nil {
		t.Fatal(err)
	}
	out, err = tw.Credit(ctx, &twoway.Credit{Reference: "tw2", Amount: krw(50_000), PayeeBank: payeeCode, PayeeAccount: "081-000-000000",
		RemitterBank: remitCode, RemitterName: "홍길동", IdempotencyKey: "tw2.credit"})
	if err != nil || out.Status != twoway.CreditRefused || out.Message != "no such account" {
		t.Fatalf("refused credit %+v %v", out, err)
	}
	for range 2 { // the reversal is idempotent
		if err := tw.ReverseOut(ctx, &twoway.Reversal{Account: r.from.Number, Amount: krw(50_000), Reference: "tw2", DebitRef: ref2,
			Reason: "refused by the payee's bank: " + out.Message, IdempotencyKey: "tw2.reverse"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.balance(t, r.a, r.from.ID); got != 850_000 {
		t.Fatalf("balance after the reversal %d", got)
	}

	// Refusals of the remitter's bank are KECIS statuses.
	_, err = tw.SendOut(ctx, &twoway.Debit{Account: r.from.Number, Amount: krw(9_000_000), PayeeBank: payeeCode,
		PayeeAccount: r.account.Number, Reference: "tw3", IdempotencyKey: "tw3.debit"})
	if st, ok := connectors.AsStatus(err); !ok || (st.SubCode != saml.CodeInsufficientFunds && st.SubCode != saml.CodeLimitExceeded) {
		t.Fatalf("too much: %v", err)
	}
	// Within the bank: one transfer.
	if _, err := tw.Transfer(ctx, &twoway.Internal{From: r.from.Number, To: r.own.Number, Amount: krw(10_000), Reference: "tw4",
		Memo: "2-WAY 홍길동", IdempotencyKey: "tw4.transfer"}); err != nil {
		t.Fatal(err)
	}
	if got := r.balance(t, r.a, r.own.ID); got != 10_000 {
		t.Fatalf("internal payee balance %d", got)
	}
	if _, err := tw.Transfer(ctx, &twoway.Internal{From: r.from.Number, To: "004-00-000000", Amount: krw(10_000), Reference: "tw5",
		IdempotencyKey: "tw5.transfer"}); err == nil {
		t.Fatal("a transfer to no account")
	} else if _, ok := connectors.AsStatus(err); !ok {
		t.Fatalf("not a refusal: %v", err)
	}

	// The pages' login and accounts.
	if id, name, err := tw.Authenticate(ctx, "hong", "hong-password"); err != nil || id != r.hong.ID || name != "홍길동" {
		t.Fatalf("login %q %q %v", id, name, err)
	}
	if _, _, err := tw.Authenticate(ctx, "hong", "wrong"); !errors.Is(err, twoway.ErrLoginFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	accts, err := tw.Accounts(ctx, r.hong.ID)
	if err != nil || len(accts) != 1 || accts[0].ID != r.from.ID || accts[0].Masked != "****-2333" || accts[0].Number.Reveal() != r.from.Number.Reveal() {
		t.Fatalf("accounts %+v %v", accts, err)
	}
	if accts, _ := tw.Accounts(ctx, ""); len(accts) != 0 {
		t.Fatal("the empty customer lists accounts")
	}

	for _, logs := range []string{r.logsA.String(), r.logs.String()} {
		for _, secret := range []string{"222333", "123-456789", "123456789", "888777", "hong-password"} {
			if strings.Contains(logs, secret) {
				t.Fatalf("a log holds %q in clear", secret)
			}
		}
	}
}

// phoneStub is the carrier's check (the telecom is another package's):
// bank B's payee phone belongs to its holder.
type phoneStub struct{ *kecisadapter.TwoWay }

func (phoneStub) HolderCheck(_ context.Context, phone, name string) (twoway.NameCheck, error) {
	if phone == "+821034567890" && name == "김영희" {
		return twoway.Match, nil
	}
	return twoway.NoMatch, nil
}

// TestTwoWayPagesAcrossBanks: the remitter's pages at bank A over the
// engine with the SQLite store and the TwoWay adapter: login, the form,
// the name check from bank B through the hub, the confirmation, the
// payee's reply, the transfer executed across the banks.
func TestTwoWayPagesAcrossBanks(t *testing.T) {
	r := newTwoWayRig(t)
	db, err := sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{8}, 32), rand.NewChaCha8([32]byte{3}))
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{6}, 32)
	st, err := twoway.NewSQLStore(ctx, db, sealer, key)
	if err != nil {
		t.Fatal(err)
	}
	var texts []sms.Message
	sender := sms.SenderFunc(func(_ context.Context, m sms.Message) (string, error) {
		texts = append(texts, m)
		return "m-" + strconv.Itoa(len(texts)), nil
	})
	e, err := twoway.New(twoway.Config{BankCode: remitCode, BankName: "A은행", EntityID: remitterID, Signer: r.remitter, Store: st,
		Bank: r.tw, Holders: r.tw, Credits: r.tw, Phones: phoneStub{r.tw}, SMS: sender, From: "15880004", Key: key,
		Now: func() time.Time { return r.now }, Rand: rand.NewChaCha8([32]byte{4}),
		Log: slog.New(slog.NewTextHandler(r.logsA, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h, err := twoway.NewPage(twoway.PageConfig{Engine: e, Customers: r.tw, SessionKey: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var cookie, csrf string
	csrfRE := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	do := func(method, path string, form url.Values) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, "https://bank-a.test"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "twoway_session", Value: cookie})
		}
		if csrf != "" && method == http.MethodPost {
			form.Set("csrf", csrf)
			req.Body = io.NopCloser(strings.NewReader(form.Encode()))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		for _, c := range w.Result().Cookies() {
			cookie = c.Value
		}
		if m := csrfRE.FindStringSubmatch(w.Body.String()); m != nil {
			csrf = m[1]
		}
		return w
	}
	if w := do(http.MethodPost, "/login", url.Values{"login": {"hong"}, "password": {"hong-password"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("login %d", w.Code)
	}
	if w := do(http.MethodGet, "/", url.Values{}); !strings.Contains(w.Body.String(), "****-2333") {
		t.Fatalf("form:\n%s", w.Body.String())
	}
	w := do(http.MethodPost, "/start", url.Values{"account": {r.from.ID}, "amount": {"200,000"}, "bank": {payeeCode},
		"payee_account": {"081-123-456789"}, "phone": {"010-3456-7890"}, "purpose": {twoway.PhishingPrevention}})
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/t/") {
		t.Fatalf("start %d %q:\n%s", w.Code, loc, w.Body.String())
	}
	if w := do(http.MethodGet, loc, url.Values{}); !strings.Contains(w.Body.String(), "Match") || !strings.Contains(w.Body.String(), "김영희") {
		t.Fatalf("name check:\n%s", w.Body.String())
	}
	if w := do(http.MethodPost, loc+"/confirm", url.Values{}); w.Code != http.StatusSeeOther {
		t.Fatalf("confirm %d", w.Code)
	}
	code := regexp.MustCompile(`인증번호 (\d{6}) `).FindStringSubmatch(texts[len(texts)-1].Text)
	if code == nil {
		t.Fatalf("texts %v", texts)
	}
	if err := e.HandleReply(ctx, sms.Reply{ID: "r1", From: "+821034567890", To: "15880004", Text: code[1], ReceivedAt: r.now,
		InReplyTo: "m-" + strconv.Itoa(len(texts))}); err != nil {
		t.Fatal(err)
	}
	if w := do(http.MethodGet, loc, url.Values{}); !strings.Contains(w.Body.String(), "Transfer executed") {
		t.Fatalf("status:\n%s", w.Body.String())
	}
	if a, b := r.balance(t, r.a, r.from.ID), r.balance(t, r.bk, r.account.ID); a != 800_000 || b != 200_000 {
		t.Fatalf("balances %d %d", a, b)
	}
	if logs := r.logsA.String() + r.logs.String(); strings.Contains(logs, "456789") || strings.Contains(logs, "222333") || strings.Contains(logs, code[1]) {
		t.Fatal("a log holds an account number or the code in clear")
	}
}
