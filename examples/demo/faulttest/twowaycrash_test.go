package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/saml"
)

// The 2-WAY crash matrix (KECIS §15.5, issue 18 item 4): a child process —
// this test binary, re-executed — runs bank A's 2-WAY engine as the demo
// runs it (connectors/twoway over examples/bank/kecisadapter.TwoWay, its
// state in bank A's own database) with the real payee's bank
// (examples/bank behind its KECIS adapter, in-process, as the AA matrix
// calls the issuer) and the real telecom (examples/telecom: the phone
// holder check, and the texts, deduplicated by their reference as its SMS
// API does), each on a database file of its own. The child drives one
// transfer — request, name check, the remitter's confirmation, the code
// texted, the payee's SMS reply — and SIGKILLs itself at one named point.
// The test then restarts the engine on the same files, lets Recover run,
// lets the outside world retry what a dead bank left unanswered (the
// remitter's page its confirmation, the gateway its webhook delivery of
// the reply), sends a duplicate reply and a redelivery, and checks both
// banks' ledgers (CheckLedger), balances and the telecom's inboxes: the
// transfer executed exactly once when the payee confirmed, not at all
// otherwise, and the remitter texted its result exactly once.
//
// At-least-once windows (documented, as the AA matrix documents its own):
// a crash after the gateway accepted a text and before the engine
// recorded it ("code-texted", "result-texted") makes the restarted engine
// send it again; the gateway deduplicates by the text's reference
// (<request>.code, <request>.result), so the phone receives it once. The
// test counts the engine's send attempts (a file the child and the
// restarted engine append to) beside the texts delivered, and checks that
// a second attempt happens only in those windows.

// twCrashChildEnv carries the child's instructions (JSON twCrashSpec).
const twCrashChildEnv = "KECIS_TWOWAYCRASH_CHILD"

type twCrashSpec struct {
	Dir   string `json:"dir"`
	Flow  string `json:"flow"` // confirm, refuse, silent
	Point string `json:"point"`
}

const (
	twBankA, twBankB  = "088", "089"
	twRemAccount      = "0880-1000-0001"
	twPayeeAccount    = "0890-2000-0001"
	twRemPhone        = "010-8800-0001"
	twPayeePhone      = "010-8900-0001"
	twRemName         = "Kim Jiho"
	twPayeeName       = "Lee Sora"
	twSender          = "kecis-bank-a"
	twFrom            = "15880088"
	twAmount          = 100_000
	twRemDeposit      = 5_000_000
	twPayeeDeposit    = 100_000
	twReplyID         = "reply-1"
	twIdempotencyKey  = "page-1"
	twPayeePhoneE164  = "+821089000001"
	twCodeValidity    = 10 * time.Minute
	twSendAttemptsLog = "sends.log"
)

var twStart = time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)

// twWorld is bank A (and its engine), bank B and the telecom on a
// directory's databases.
type twWorld struct {
	a, b   *bank.Bank
	tel    *telecom.Telecom
	store  *twoway.SQLStore
	engine *twoway.Engine
	// hook is bank A's SMS reply webhook (as banks.go mounts it at
	// /sms/replies); deliver posts a reply to it as the telecom does.
	hook    http.Handler
	remitID string // the remitter's customer id at bank A
}

// deliver posts the gateway's signed webhook request for rep, timestamped
// at; the telecom delivers again until it gets a 2xx.
func (w *twWorld) deliver(ctx context.Context, rep sms.Reply, at time.Time) error {
	req, err := sms.NewWebhookRequest(ctx, "http://bank-a.test/sms/replies", twKey(5), rep, at)
	if err != nil {
		return err
	}
	rec := httptest.NewRecorder()
	w.hook.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		return fmt.Errorf("the webhook answered HTTP %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

func (w *twWorld) close() {
	for _, c := range []interface{ Close() error }{w.a, w.b, w.tel} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// crashPoint kills the process at one named point of the flow.
type crashPoint struct{ at string }

func (c *crashPoint) point(name string) {
	if c == nil || c.at != name {
		return
	}
	fmt.Fprintf(os.Stderr, "twowaycrash: SIGKILL at %s\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// crashStore names the points after the engine's state writes.
type crashStore struct {
	twoway.Store
	c *crashPoint
}

func (s crashStore) Update(ctx context.Context, r *twoway.Request, ev ...twoway.Event) error {
	s.c.point("before " + string(r.State))
	err := s.Store.Update(ctx, r, ev...)
	s.c.point("after " + string(r.State))
	return err
}

// twBanks is bank A's side of the engine (kecisadapter.TwoWay over bank
// A's native API) with bank B and the telecom called in-process, as the
// hub would deliver the calls to their KECIS adapters.
type twBanks struct {
	*kecisadapter.TwoWay
	payee *kecisadapter.Adapter
	tel   *telecom.Telecom
	c     *crashPoint
}

func (t *twBanks) SendOut(ctx context.Context, d *twoway.Debit) (string, error) {
	ref, err := t.TwoWay.SendOut(ctx, d)
	t.c.point("debited")
	return ref, err
}

func (t *twBanks) Holder(ctx context.Context, bankCode string, number ecml.Secret) (string, error) {
	h, err := t.payee.HolderInquiry(ctx, &banking.HolderRequest{BankCode: bankCode, Account: number})
	if st, ok := connectors.AsStatus(err); ok && st.SubCode == saml.CodeDeclined {
		return "", twoway.ErrNoSuchAccount
	}
	if err != nil {
		return "", err
	}
	return h.Name, nil
}

func (t *twBanks) HolderCheck(ctx context.Context, number, name string) (twoway.NameCheck, error) {
	o, err := t.tel.HolderCheck(ctx, number, name)
	return twoway.NameCheck(o), err
}

// twCreditOutcome maps bank B's adapter answer as kecisadapter.TwoWay maps
// the hub's.
func twCreditOutcome(c *banking.Credit, err error, inquiry bool) (*twoway.CreditOutcome, error) {
	st, refused := connectors.AsStatus(err)
	switch {
	case err == nil && c.State == banking.StateCredited:
		return &twoway.CreditOutcome{Status: twoway.Credited, Reference: c.CreditRef}, nil
	case err == nil:
		return &twoway.CreditOutcome{Status: twoway.CreditUnknown, Message: "state " + c.State}, nil
	case !refused:
		return nil, err
	case inquiry && st.SubCode == saml.CodeDeclined:
		return &twoway.CreditOutcome{Status: twoway.CreditNotFound, Code: st.SubCode, Message: st.Message}, nil
	}
	return &twoway.CreditOutcome{Status: twoway.CreditRefused, Code: st.SubCode, Message: st.Message}, nil
}

func (t *twBanks) Credit(ctx context.Context, c *twoway.Credit) (*twoway.CreditOutcome, error) {
	cr, err := t.payee.Credit(ctx, &banking.CreditRequest{Reference: c.Reference, Amount: c.Amount,
		PayeeBank: c.PayeeBank, PayeeAccount: c.PayeeAccount, RemitterBank: c.RemitterBank, RemitterName: c.RemitterName,
		RemitterAccount: c.RemitterAccount, Transfer: c.Transfer, IdempotencyKey: c.IdempotencyKey})
	out, err := twCreditOutcome(cr, err, false)
	t.c.point("credited")
	return out, err
}

func (t *twBanks) Inquire(ctx context.Context, payeeBank, reference string) (*twoway.CreditOutcome, error) {
	c, err := t.payee.Inquire(ctx, &banking.InquireRequest{RemitterBank: twBankA, Reference: reference})
	return twCreditOutcome(c, err, true)
}

// twSMS is bank A's sender account at the telecom: it logs every attempt
// (the at-least-once windows) and names the points around the texts.
type twSMS struct {
	tel *telecom.Telecom
	log string
	c   *crashPoint
}

func textKind(ref string) string {
	switch {
	case strings.HasSuffix(ref, ".code"):
		return "code"
	case strings.HasSuffix(ref, ".result"):
		return "result"
	}
	return "answer"
}

func (s *twSMS) Send(ctx context.Context, m sms.Message) (string, error) {
	kind := textKind(m.Ref)
	s.c.point("before " + kind + " text")
	f, err := os.OpenFile(s.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintln(f, m.Ref)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	msg, err := s.tel.Submit(ctx, twSender, m)
	if err != nil {
		return "", err
	}
	s.c.point(kind + " texted")
	return msg.ID, nil
}

func twKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// openTWWorld opens the three parties and bank A's engine on dir at now;
// c (nil for none) names the crash point.
func openTWWorld(ctx context.Context, dir string, now time.Time, c *crashPoint) (w *twWorld, err error) {
	clock := func() time.Time { return now }
	quiet := slog.New(slog.DiscardHandler)
	w = &twWorld{}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	for _, p := range []struct {
		b          **bank.Bank
		code, name string
	}{{&w.a, twBankA, "KECIS Bank A"}, {&w.b, twBankB, "KECIS Bank B"}} {
		if *p.b, err = bank.Open(ctx, bank.Config{BankCode: p.code, Name: p.name, DSN: "sqlite:" + filepath.Join(dir, "bank-"+p.code+".db"),
			DataKey: twKey(1), Pepper: twKey(2), Logger: quiet, Now: clock}); err != nil {
			return nil, err
		}
	}
	if w.tel, err = telecom.Open(ctx, telecom.Config{DSN: "sqlite:" + filepath.Join(dir, "telecom.db"), Now: clock, Logger: quiet}); err != nil {
		return nil, err
	}
	sealer, err := store.NewSealer(twKey(3), nil)
	if err != nil {
		return nil, err
	}
	if w.store, err = twoway.NewSQLStore(ctx, w.a.DB(), sealer, twKey(4)); err != nil {
		return nil, err
	}
	keys := filepath.Join("..", "..", "..", "saml", "testdata", "keys")
	signer, err := saml.LoadSigner(filepath.Join(keys, "merchant-ec.key.pem"), filepath.Join(keys, "merchant-ec.cert.pem"))
	if err != nil {
		return nil, err
	}
	banks := &twBanks{TwoWay: &kecisadapter.TwoWay{Bank: w.a}, payee: &kecisadapter.Adapter{Bank: w.b}, tel: w.tel, c: c}
	w.engine, err = twoway.New(twoway.Config{BankCode: twBankA, BankName: "KECIS Bank A", EntityID: "https://bank-a.kecis.test/kecis",
		Signer: signer, Store: crashStore{w.store, c}, Bank: banks, Holders: banks, Phones: banks, Credits: banks,
		SMS: &twSMS{tel: w.tel, log: filepath.Join(dir, twSendAttemptsLog), c: c}, From: twFrom, Key: twKey(4),
		CodeValidity: twCodeValidity, Now: clock, Log: quiet})
	if err != nil {
		return nil, err
	}
	w.hook = sms.WebhookHandler(twKey(5), w.engine, sms.WithClock(clock), sms.WithLogger(quiet))
	cs, err := w.a.Customers(ctx, 10)
	if err != nil {
		return nil, err
	}
	for _, cu := range cs {
		if cu.Login == "jiho" {
			w.remitID = cu.ID
		}
	}
	return w, nil
}

// seedTWWorld registers the remitter at bank A, the payee at bank B, both
// phones at the telecom and bank A's sender account.
func seedTWWorld(ctx context.Context, dir string) error {
	w, err := openTWWorld(ctx, dir, twStart, nil)
	if err != nil {
		return err
	}
	defer w.close()
	for _, p := range []struct {
		b                          *bank.Bank
		login, name, phone, number string
		amount                     int64
	}{{w.a, "jiho", twRemName, twRemPhone, twRemAccount, twRemDeposit}, {w.b, "sora", twPayeeName, twPayeePhone, twPayeeAccount, twPayeeDeposit}} {
		if err := w.tel.AddSubscriber(ctx, telecom.Subscriber{Phone: p.phone, HolderName: p.name, BirthDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			return err
		}
		cu, err := p.b.NewCustomer(ctx, bank.NewCustomerRequest{Name: p.name, Phone: p.phone, Login: p.login,
			Password: ecml.Secret(p.login + "-demo-pw"), IdempotencyKey: "customer-" + p.login})
		if err != nil {
			return err
		}
		a, err := p.b.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: cu.ID, Number: ecml.Secret(p.number), IdempotencyKey: "account-" + p.login})
		if err != nil {
			return err
		}
		if _, err := p.b.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: ecml.Money{Minor: p.amount, Currency: bank.Currency},
			Memo: "test deposit", IdempotencyKey: "deposit-" + p.login}); err != nil {
			return err
		}
	}
	return w.tel.AddSender(ctx, telecom.SenderAccount{ID: twSender, Name: "KECIS Bank A", APIKey: "kecis-bank-a-api-key", Numbers: []string{twFrom}})
}

func twTransfer(customer string) *twoway.TransferRequest {
	return &twoway.TransferRequest{Customer: customer, Account: ecml.Secret(twRemAccount), Amount: ecml.Money{Minor: twAmount, Currency: "KRW"},
		PayeeBank: twBankB, PayeeAccount: ecml.Secret(twPayeeAccount), PayeePhone: twPayeePhone, Purpose: twoway.PhishingPrevention,
		IdempotencyKey: twIdempotencyKey}
}

var twCodeRE = regexp.MustCompile(`인증번호 (\d{6})`)

// payeeCode is the code text the payee's phone received, if any: its
// message id and code.
func (w *twWorld) payeeCode(ctx context.Context) (id, code string, n int, err error) {
	msgs, err := w.tel.Inbox(ctx, twPayeePhone)
	if err != nil {
		return "", "", 0, err
	}
	for _, m := range msgs {
		if s := twCodeRE.FindStringSubmatch(m.Text); s != nil && strings.HasSuffix(m.Ref, ".code") {
			id, code, n = m.ID, s[1], n+1
		}
	}
	return id, code, n, nil
}

// reply is the payee's SMS reply as the gateway delivers it.
func (w *twWorld) reply(ctx context.Context, flow, id string, at time.Time) (sms.Reply, bool, error) {
	msgID, code, _, err := w.payeeCode(ctx)
	if err != nil || msgID == "" {
		return sms.Reply{}, false, err
	}
	text := code
	if flow == "refuse" {
		text = "거절"
	}
	return sms.Reply{ID: id, From: twPayeePhoneE164, To: twFrom, Text: text, ReceivedAt: at, InReplyTo: msgID}, true, nil
}

// twChild runs the flow to its end or to the crash.
func twChild(specJSON string) int {
	var spec twCrashSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "twowaycrash child:", err)
		return 2
	}
	ctx := context.Background()
	w, err := openTWWorld(ctx, spec.Dir, twStart, &crashPoint{at: spec.Point})
	if err == nil {
		err = twFlow(ctx, w, spec.Flow)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "twowaycrash child:", err)
		return 2
	}
	return 0
}

// twFlow is the remitter's request and confirmation, then the payee's
// reply: the code, a refusal, or none.
func twFlow(ctx context.Context, w *twWorld, flow string) error {
	r, err := w.engine.Start(ctx, twTransfer(w.remitID))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if r.State != twoway.AwaitingConfirmation || r.NameCheck != twoway.Match {
		return fmt.Errorf("start: %s, name check %q", r.State, r.NameCheck)
	}
	if r, err = w.engine.Confirm(ctx, w.remitID, r.ID); err != nil || r.State != twoway.AwaitingReply {
		return fmt.Errorf("confirm: %v (%v)", r.State, err)
	}
	if flow == "silent" {
		return nil
	}
	rep, ok, err := w.reply(ctx, flow, twReplyID, twStart.Add(30*time.Second))
	if err != nil || !ok {
		return fmt.Errorf("the payee's code text: found %v (%v)", ok, err)
	}
	return w.deliver(ctx, rep, twStart.Add(30*time.Second))
}

// twCase is one crash point of a flow; resend marks the at-least-once
// windows where the restarted engine sends that text again.
type twCase struct {
	flow, point string
	resend      string // "", "code", "result"
	noCode      bool   // the request expired before its code was texted
}

func TestTwoWayCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash matrix runs a child process per point")
	}
	// One seeded template (customers, accounts, the telecom's lines),
	// copied for each case: the password hashing runs once.
	template := t.TempDir()
	if err := seedTWWorld(context.Background(), template); err != nil {
		t.Fatal(err)
	}
	cases := []twCase{
		// The payee confirms: executed exactly once.
		{flow: "confirm", point: "after awaiting-confirmation"}, // the name check recorded; the remitter's page not answered
		{flow: "confirm", point: "after texting"},               // the remitter's confirmation recorded, the code not texted
		{flow: "confirm", point: "code texted", resend: "code"}, // the gateway took the code text; not recorded
		{flow: "confirm", point: "before confirmed"},            // the reply received, not recorded: the gateway redelivers
		{flow: "confirm", point: "after confirmed"},             // the reply recorded; no money moved yet
		{flow: "confirm", point: "debited"},                     // bank A debited; not recorded
		{flow: "confirm", point: "after debited"},               // the debit recorded; bank B not asked
		{flow: "confirm", point: "credited"},                    // bank B credited; not recorded
		{flow: "confirm", point: "after completed"},             // completed; the remitter not texted
		{flow: "confirm", point: "before result text"},          // the remitter's text about to go
		{flow: "confirm", point: "result texted", resend: "result"},
		// The payee refuses: no money moves.
		{flow: "refuse", point: "before refused"},
		{flow: "refuse", point: "after refused"},
		{flow: "refuse", point: "before result text"},
		{flow: "refuse", point: "result texted", resend: "result"},
		// No reply: the wait expires, no money moves; a late reply does nothing.
		// (A request past its deadline is not texted again: expired.)
		{flow: "silent", point: "after texting", noCode: true},
		{flow: "silent", point: "code texted"},
	}
	for _, tc := range cases {
		t.Run(tc.flow+"/"+strings.ReplaceAll(tc.point, " ", "-"), func(t *testing.T) {
			t.Parallel()
			twCrashOnce(t, template, tc)
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// twCrashOnce runs the flow crashing at tc.point, restarts, recovers,
// lets the world retry and checks the ledgers and texts.
func twCrashOnce(t *testing.T, template string, tc twCase) {
	ctx := context.Background()
	dir := t.TempDir()
	copyDir(t, template, dir)
	spec, _ := json.Marshal(twCrashSpec{Dir: dir, Flow: tc.flow, Point: tc.point})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), twCrashChildEnv+"="+string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed at %q: %v\n%s", tc.point, err, stderr.String())
	}

	// The restart: the silent flow's past the code's validity.
	now := twStart.Add(2 * time.Minute)
	if tc.flow == "silent" {
		now = twStart.Add(time.Hour)
	}
	w, err := openTWWorld(ctx, dir, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if _, err := w.engine.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	r, err := w.store.ByKey(ctx, w.remitID, twIdempotencyKey)
	if err != nil {
		t.Fatalf("the request after the restart: %v", err)
	}
	// The outside world retries what the dead bank left unanswered.
	if r.State == twoway.AwaitingConfirmation {
		// The remitter's page: the confirmation again.
		if _, err = w.engine.Confirm(ctx, w.remitID, r.ID); err != nil {
			t.Fatalf("Confirm after the restart: %v", err)
		}
	}
	if tc.flow != "silent" {
		// The gateway delivers the payee's reply until it is taken (the
		// first delivery, when the child died before the payee could
		// answer); the same reply id is judged once.
		for i := range 2 {
			if rep, ok, err := w.reply(ctx, tc.flow, twReplyID, now); err != nil {
				t.Fatal(err)
			} else if !ok {
				t.Fatal("no code text reached the payee")
			} else if err := w.deliver(ctx, rep, now.Add(-time.Duration(i)*time.Second)); err != nil {
				t.Fatalf("the reply's redelivery: %v", err)
			}
		}
	}
	if _, err := w.engine.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	// A duplicate reply (the payee texts the code again), and for the
	// silent flow a late one: nothing moves.
	if rep, ok, err := w.reply(ctx, "confirm", "reply-2", now.Add(time.Second)); err != nil || ok == tc.noCode {
		t.Fatalf("code text reached the payee: %v, want %v (%v)", ok, !tc.noCode, err)
	} else if ok {
		if err := w.deliver(ctx, rep, now); err != nil {
			t.Fatalf("a duplicate reply: %v", err)
		}
	}
	if _, err := w.engine.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	twCheck(t, w, dir, tc, strings.TrimSpace(stderr.String()))
}

func twCheck(t *testing.T, w *twWorld, dir string, tc twCase, crash string) {
	t.Helper()
	ctx := context.Background()
	r, err := w.store.ByKey(ctx, w.remitID, twIdempotencyKey)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]twoway.State{"confirm": twoway.Completed, "refuse": twoway.Refused, "silent": twoway.Expired}[tc.flow]
	if r.State != want || !r.Notified {
		t.Errorf("%s: the request ended %s (reason %q, remitter texted %v), want %s", crash, r.State, r.Reason, r.Notified, want)
	}
	if open, err := w.store.Open(ctx, 10); err != nil || len(open) != 0 {
		t.Errorf("%s: %d requests still owe work (%v)", crash, len(open), err)
	}
	// The ledgers: balanced, and the money moved once or not at all.
	moved := int64(0)
	if tc.flow == "confirm" {
		moved = twAmount
	}
	journals := 1 // the test deposit
	if moved != 0 {
		journals++ // the send-out at bank A, the credit at bank B: once
	}
	for _, p := range []struct {
		b        *bank.Bank
		number   string
		balance  int64
		other    string
		clearing int64 // what the bank owes the other (+) or is owed (-)
	}{{w.a, twRemAccount, twRemDeposit - moved, twBankB, moved}, {w.b, twPayeeAccount, twPayeeDeposit + moved, twBankA, -moved}} {
		rep, err := p.b.CheckLedger(ctx)
		if err != nil {
			t.Errorf("%s: bank %s: %v", crash, p.b.Code(), err)
			continue
		}
		if rep.Journals != journals || rep.Clearing[p.other] != p.clearing {
			t.Errorf("%s: bank %s: %d journals, clearing with %s %d; want %d, %d", crash, p.b.Code(), rep.Journals, p.other,
				rep.Clearing[p.other], journals, p.clearing)
		}
		a, err := p.b.FindAccount(ctx, ecml.Secret(p.number))
		if err != nil {
			t.Fatal(err)
		}
		if a.Balance != p.balance {
			t.Errorf("%s: bank %s: balance %d, want %d (ledger %+v)", crash, p.b.Code(), a.Balance, p.balance, rep)
		}
	}
	c, err := w.b.Inquire(ctx, twBankA, r.ID)
	switch {
	case tc.flow == "confirm" && err != nil:
		t.Errorf("%s: bank B has no credit of the transfer: %v", crash, err)
	case tc.flow == "confirm" && c.Reference != r.CreditRef:
		t.Errorf("%s: bank B's credit %s, the engine recorded %s", crash, c.Reference, r.CreditRef)
	case tc.flow != "confirm" && !errors.Is(err, bank.ErrNotFound):
		t.Errorf("%s: bank B credited a %s flow (%v)", crash, tc.flow, err)
	}
	// The texts delivered: one code to the payee, one result to the remitter.
	codes := 1
	if tc.noCode {
		codes = 0
	}
	if _, _, n, err := w.payeeCode(ctx); err != nil || n != codes {
		t.Errorf("%s: the payee received %d code texts, want %d (%v)", crash, n, codes, err)
	}
	msgs, err := w.tel.Inbox(ctx, twRemPhone)
	if err != nil {
		t.Fatal(err)
	}
	results := 0
	for _, m := range msgs {
		if m.Ref == r.ID+".result" {
			results++
		}
	}
	if results != 1 {
		t.Errorf("%s: the remitter received %d result texts", crash, results)
	}
	// The engine's attempts: a second one only in the documented windows.
	attempts := map[string]int{}
	f, err := os.Open(filepath.Join(dir, twSendAttemptsLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		attempts[textKind(sc.Text())]++
	}
	for _, kind := range []string{"code", "result"} {
		want := 1
		switch {
		case tc.resend == kind:
			want = 2
		case kind == "code" && tc.noCode:
			want = 0
		}
		if attempts[kind] != want {
			t.Errorf("%s: the engine sent the %s text %d times, want %d", crash, kind, attempts[kind], want)
		}
	}
	t.Logf("%s: %s; sends %v", crash, r.State, attempts)
}
