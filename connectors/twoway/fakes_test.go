package twoway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

const (
	bankA    = "081" // the remitter's bank
	bankB    = "088" // the payee's bank
	bankID   = "https://bank-a.test/kecis"
	customer = "cust-1"
	// The remitter's and the payees' accounts.
	remAccount   = "110-123-456789"
	payeeAccount = "333-22-1234567"
	sameAccount  = "110-987-654321" // at bank A
	otherAccount = "333-22-7654321" // at bank B, holder 김철수
	remPhone     = "+821011112222"
	payeePhone   = "+821033334444"
	otherPhone   = "+821055556666"
	callerID     = "15881234"
)

var errLost = errors.New("transport: connection reset")

// injector simulates a crash: the n-th call of the engine that holds it
// fails ("before": nothing done; "after": done, the answer lost), and
// every later call fails too, as a dead process makes none.
type injector struct {
	mu    sync.Mutex
	n     int    // calls so far
	at    int    // the call that fails; 0: none
	mode  string // "before" or "after"
	dead  bool
	fired string // the operation that failed
}

// hit counts a call: "" proceed, "before" fail now, "after" do it and fail.
func (in *injector) hit(op string) string {
	if in == nil {
		return ""
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.dead {
		return "before"
	}
	in.n++
	if in.at == 0 || in.n != in.at {
		return ""
	}
	in.dead, in.fired = true, op
	return in.mode
}

// account is one account at a fake bank.
type account struct {
	customer, name, phone string
	balance               int64
}

// fakeBank is both banks' ledgers: bank A's native API (Bank) and bank B's
// KECIS services (Crediter), with idempotency by key.
type fakeBank struct {
	mu           sync.Mutex
	accounts     map[string]*account // by bank+digits
	keys         map[string]string   // idempotency key → reference
	clearing     int64               // bank A's clearing account for bank B
	credits      map[string]string   // bank B: transfer reference → credit reference
	applied      map[string]int      // operation → times applied
	refuseCredit bool
	next         int
}

func newFakeBank() *fakeBank {
	b := &fakeBank{accounts: map[string]*account{}, keys: map[string]string{}, credits: map[string]string{}, applied: map[string]int{}}
	b.accounts[bankA+digitsOnly(remAccount)] = &account{customer: customer, name: "홍길동", phone: "010-1111-2222", balance: 5_000_000}
	b.accounts[bankA+digitsOnly(sameAccount)] = &account{customer: "cust-2", name: "이영희", phone: "010-7777-8888"}
	b.accounts[bankB+digitsOnly(payeeAccount)] = &account{customer: "b-1", name: "김민수", phone: "010-3333-4444"}
	b.accounts[bankB+digitsOnly(otherAccount)] = &account{customer: "b-2", name: "김철수", phone: "010-5555-6666"}
	return b
}

func (b *fakeBank) acct(bank string, n ecml.Secret) *account {
	return b.accounts[bank+digitsOnly(n.Reveal())]
}

func (b *fakeBank) balance(bank, number string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accounts[bank+digitsOnly(number)].balance
}

func (b *fakeBank) count(op string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applied[op]
}

func (b *fakeBank) ref(prefix string) string {
	b.next++
	return fmt.Sprintf("%s%06d", prefix, b.next)
}

// bankA is the remitter's bank's native API as one engine sees it.
type bankA_ struct {
	*fakeBank
	in *injector
}

func (b bankA_) Remitter(_ context.Context, cust string, n ecml.Secret) (*Remitter, error) {
	if b.in.hit("remitter") != "" {
		return nil, errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.acct(bankA, n)
	if a == nil || a.customer != cust {
		return nil, connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "no such account")
	}
	return &Remitter{Name: a.name, Phone: a.phone}, nil
}

func (b bankA_) SendOut(_ context.Context, d *Debit) (string, error) {
	how := b.in.hit("send-out")
	if how == "before" {
		return "", errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ref, seen := b.keys[d.IdempotencyKey]
	if !seen {
		a := b.acct(bankA, d.Account)
		if a.balance < d.Amount.Minor {
			return "", connectors.Refuse(saml.StatusResponder, saml.CodeInsufficientFunds, "잔액 부족")
		}
		a.balance -= d.Amount.Minor
		b.clearing += d.Amount.Minor
		ref = b.ref("D")
		b.keys[d.IdempotencyKey] = ref
		b.applied["send-out"]++
	}
	if how == "after" {
		return "", errLost
	}
	return ref, nil
}

func (b bankA_) ReverseOut(_ context.Context, r *Reversal) error {
	how := b.in.hit("reverse-out")
	if how == "before" {
		return errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.keys[r.IdempotencyKey]; !seen {
		b.acct(bankA, r.Account).balance += r.Amount.Minor
		b.clearing -= r.Amount.Minor
		b.keys[r.IdempotencyKey] = b.ref("R")
		b.applied["reverse-out"]++
	}
	if how == "after" {
		return errLost
	}
	return nil
}

func (b bankA_) Transfer(_ context.Context, t *Internal) (string, error) {
	how := b.in.hit("transfer")
	if how == "before" {
		return "", errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ref, seen := b.keys[t.IdempotencyKey]
	if !seen {
		from, to := b.acct(bankA, t.From), b.acct(bankA, t.To)
		if from.balance < t.Amount.Minor {
			return "", connectors.Refuse(saml.StatusResponder, saml.CodeInsufficientFunds, "잔액 부족")
		}
		from.balance -= t.Amount.Minor
		to.balance += t.Amount.Minor
		ref = b.ref("T")
		b.keys[t.IdempotencyKey] = ref
		b.applied["transfer"]++
	}
	if how == "after" {
		return "", errLost
	}
	return ref, nil
}

// crediter is bank B's transfer:credit and inquire.
type crediter struct {
	*fakeBank
	in *injector
}

func (b crediter) Credit(_ context.Context, c *Credit) (*CreditOutcome, error) {
	how := b.in.hit("credit")
	if how == "before" {
		return nil, errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.IdempotencyKey == "" || c.Reference == "" || c.RemitterName == "" || c.PayeeBank != bankB {
		return &CreditOutcome{Status: CreditRefused, Code: saml.CodeInvalidPayload, Message: "invalid"}, nil
	}
	ref, seen := b.credits[c.Reference]
	if !seen {
		a := b.acct(bankB, c.PayeeAccount)
		if a == nil || b.refuseCredit {
			return &CreditOutcome{Status: CreditRefused, Code: saml.CodeDeclined, Message: "no such account"}, nil
		}
		a.balance += c.Amount.Minor
		b.clearing -= c.Amount.Minor
		ref = b.ref("C")
		b.credits[c.Reference] = ref
		b.applied["credit"]++
	}
	if how == "after" {
		return nil, errLost
	}
	return &CreditOutcome{Status: Credited, Reference: ref}, nil
}

func (b crediter) Inquire(_ context.Context, bank, ref string) (*CreditOutcome, error) {
	if b.in.hit("inquire") != "" {
		return nil, errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.credits[ref]; ok {
		return &CreditOutcome{Status: Credited, Reference: r}, nil
	}
	return &CreditOutcome{Status: CreditNotFound}, nil
}

// holders is the holder inquiry at either bank.
type holders struct {
	*fakeBank
	in *injector
}

func (b holders) Holder(_ context.Context, bank string, n ecml.Secret) (string, error) {
	if b.in.hit("holder") != "" {
		return "", errLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.acct(bank, n); a != nil {
		return a.name, nil
	}
	return "", fmt.Errorf("bank %s: %w", bank, ErrNoSuchAccount)
}

// telecom answers the phone holder check from its subscribers, or a
// forced outcome per number.
type telecom struct {
	subscribers map[string]string // E.164 → name
	forced      map[string]NameCheck
	in          *injector
}

func (tc telecom) HolderCheck(_ context.Context, phone, name string) (NameCheck, error) {
	if tc.in.hit("phone-check") != "" {
		return "", errLost
	}
	if o, ok := tc.forced[phone]; ok {
		return o, nil
	}
	switch n, ok := tc.subscribers[phone]; {
	case !ok:
		return NotPossible, nil
	case n == name:
		return Match, nil
	}
	return NoMatch, nil
}

// gateway is the SMS gateway: one message per Ref.
type gateway struct {
	mu   sync.Mutex
	refs map[string]string // ref → message id
	sent []sms.Message     // delivered, in order
}

func (g *gateway) to(phone string) []sms.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []sms.Message
	for _, m := range g.sent {
		if m.To == phone {
			out = append(out, m)
		}
	}
	return out
}

type sender struct {
	*gateway
	in *injector
}

func (s sender) Send(_ context.Context, m sms.Message) (string, error) {
	how := s.in.hit("sms")
	if how == "before" {
		return "", fmt.Errorf("%w: %w", sms.ErrNotDelivered, errLost)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	to, err := sms.NormalizePhone(m.To)
	if err != nil {
		return "", err
	}
	m.To = to
	id, seen := s.refs[m.Ref]
	if !seen {
		id = fmt.Sprintf("m-%03d", len(s.sent)+1)
		s.refs[m.Ref] = id
		s.sent = append(s.sent, m)
	}
	if how == "after" {
		return "", fmt.Errorf("%w: %w", sms.ErrDeliveryUnknown, errLost)
	}
	return id, nil
}

// faultyStore fails writes for the injector.
type faultyStore struct {
	Store
	in *injector
}

func (s faultyStore) Create(ctx context.Context, r *Request, ev ...Event) error {
	switch s.in.hit("store-create") {
	case "before":
		return errLost
	case "after":
		if err := s.Store.Create(ctx, r, ev...); err != nil {
			return err
		}
		return errLost
	}
	return s.Store.Create(ctx, r, ev...)
}

func (s faultyStore) Update(ctx context.Context, r *Request, ev ...Event) error {
	switch s.in.hit("store-update") {
	case "before":
		return errLost
	case "after":
		c := *r
		if err := s.Store.Update(ctx, &c, ev...); err != nil {
			return err
		}
		return errLost
	}
	return s.Store.Update(ctx, r, ev...)
}

// world is the outside of the engine, shared by every engine of a test.
type world struct {
	bank    *fakeBank
	gw      *gateway
	tel     map[string]string
	forced  map[string]NameCheck
	clock   *testutil.Clock
	db      *sqlstore.DB
	store   *SQLStore
	signer  *saml.Signer
	logs    *testutil.SyncBuffer
	dsn     string
	replies int
	engines int
}

var at0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

var testKey = bytes.Repeat([]byte{7}, 32)

func newWorld(t testing.TB) *world { return newWorldOn(t, sqltest.TestSQLiteDSN(t)) }

func newWorldOn(t testing.TB, dsn string) *world {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), testutil.NewDetRand("sealer"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewSQLStore(context.Background(), db, sealer, testKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := saml.LoadSigner(filepath.Join("..", "..", "saml", "testdata", "keys", "merchant-ec.key.pem"),
		filepath.Join("..", "..", "saml", "testdata", "keys", "merchant-ec.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &world{bank: newFakeBank(), gw: &gateway{refs: map[string]string{}},
		tel:    map[string]string{payeePhone: "김민수", otherPhone: "김철수", "+821077778888": "이영희"},
		forced: map[string]NameCheck{}, clock: testutil.NewClock(at0), db: db, store: st, signer: signer,
		logs: &testutil.SyncBuffer{}, dsn: dsn}
}

// engine is a new engine over the world; in injects a crash (nil: none).
func (w *world) engine(t testing.TB, in *injector, edit func(*Config)) *Engine {
	t.Helper()
	w.engines++
	var st Store = w.store
	if in != nil {
		st = faultyStore{Store: w.store, in: in}
	}
	cfg := Config{BankCode: bankA, BankName: "KECIS은행", EntityID: bankID, Signer: w.signer, Store: st,
		Bank: bankA_{w.bank, in}, Holders: holders{w.bank, in}, Phones: telecom{subscribers: w.tel, forced: w.forced, in: in},
		Credits: crediter{w.bank, in}, SMS: sender{w.gw, in}, From: callerID, Key: testKey,
		Now: w.clock.Now, Rand: testutil.NewDetRand(fmt.Sprintf("engine-%d", w.engines)),
		Log: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func request(amount int64) *TransferRequest {
	return &TransferRequest{Customer: customer, Account: remAccount, Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		PayeeBank: bankB, PayeeAccount: payeeAccount, PayeePhone: "010-3333-4444", Purpose: PhishingPrevention}
}

func loan(amount int64) *TransferRequest {
	r := request(amount)
	r.Purpose = MutualAgreement
	r.Terms = &ecml.Terms{RepaymentDate: "2027-06-30", InterestRate: "4.5", Text: "매월 말일에 이자를 지급하고 상환일에 원금을 일시 상환한다"}
	return r
}

var codeRE = regexp.MustCompile(`인증번호 (\d{6}) `)

// codeSent is the code in the last code text to a phone.
func (w *world) codeSent(t testing.TB, phone string) string {
	t.Helper()
	msgs := w.gw.to(phone)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := codeRE.FindStringSubmatch(msgs[i].Text); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no code texted to %s", phone)
	return ""
}

// messageTo is the gateway's id of the last text to a phone.
func (w *world) messageTo(phone string) string {
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	for i := len(w.gw.sent) - 1; i >= 0; i-- {
		if w.gw.sent[i].To == phone {
			for ref, id := range w.gw.refs {
				if ref == w.gw.sent[i].Ref {
					return id
				}
			}
		}
	}
	return ""
}

// reply builds the payee's reply.
func (w *world) reply(from, text, inReplyTo string) sms.Reply {
	w.replies++
	return sms.Reply{ID: fmt.Sprintf("r-%d", w.replies), From: from, To: callerID, Text: text, ReceivedAt: w.clock.Now(), InReplyTo: inReplyTo}
}

// texts returns the texts to a phone, joined, for assertions.
func (w *world) texts(phone string) string {
	var b strings.Builder
	for _, m := range w.gw.to(phone) {
		b.WriteString(m.Text)
		b.WriteString("\n")
	}
	return b.String()
}
