package amountauth

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

const (
	pgID       = "https://pg.test/kecis"
	issuerID   = "https://issuer.test/kecis"
	merchantID = "https://shop.test/kecis"
	otherID    = "https://shop2.test/kecis"
	testPAN    = "4111111111111111"
	otherPAN   = "5555555555554444"
)

// ledgerEntry is one approval at the fake issuer.
type ledgerEntry struct {
	number       string
	merchant     string
	order        string
	amount       ecml.Money
	verification bool
	code         string
	state        card.State
}

// fakeIssuer is a card issuer's ledger with idempotency keys, as the
// engine sees it through the hub; fail injects failures per operation:
// before (nothing done) or after (done, answer lost).
type fakeIssuer struct {
	mu      sync.Mutex
	ledger  map[string]*ledgerEntry // by order
	keys    map[string]string       // idempotency key → order
	next    int
	settled bool // approvals are settled (cancel refused)
	calls   map[string]int
	// fail returns how an operation fails: "" none, "before", "after".
	fail     func(op string) string
	declined bool // the next verification approval is declined
}

func newFakeIssuer() *fakeIssuer {
	return &fakeIssuer{ledger: map[string]*ledgerEntry{}, keys: map[string]string{}, calls: map[string]int{}}
}

var errLost = errors.New("transport: connection reset")

func (f *fakeIssuer) failure(op string) string {
	if f.fail == nil {
		return ""
	}
	return f.fail(op)
}

func ok(a *card.Approval) *card.Outcome {
	return &card.Outcome{Approval: a, Result: &connectors.Result{Status: saml.Status{Code: saml.StatusSuccess}}}
}

func refused(top, sub, msg string) *card.Outcome {
	return &card.Outcome{Result: &connectors.Result{Status: saml.Status{Code: top, SubCode: sub, Message: msg}}}
}

func (e *ledgerEntry) approval() *card.Approval {
	a := &card.Approval{ApprovalNumber: e.number, OrderID: e.order, State: e.state}
	if !e.verification {
		a.Amount = e.amount
	}
	return a
}

func (f *fakeIssuer) ApproveVerification(_ context.Context, recipient string, r *card.VerificationRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["verify"]++
	if recipient != issuerID {
		return nil, fmt.Errorf("wrong recipient %s", recipient)
	}
	if r.Challenge.Minor <= 0 || r.Challenge.Minor > r.Ceiling.Minor {
		return refused(saml.StatusRequester, saml.CodeInvalidPayload, "challenge above the ceiling"), nil
	}
	how := f.failure("verify")
	if how == "before" {
		return nil, errLost
	}
	if order, seen := f.keys[r.IdempotencyKey]; seen {
		return ok(f.ledger[order].approval()), nil
	}
	if f.declined {
		f.declined = false
		return refused(saml.StatusResponder, saml.CodeInsufficientFunds, "한도 초과"), nil
	}
	f.next++
	e := &ledgerEntry{number: fmt.Sprintf("%08d", f.next), merchant: r.Merchant, order: r.OrderID, amount: r.Challenge,
		verification: true, code: r.DescriptorCode.Reveal(), state: card.Approved}
	f.ledger[r.OrderID], f.keys[r.IdempotencyKey] = e, r.OrderID
	if how == "after" {
		return nil, errLost
	}
	return ok(e.approval()), nil
}

func (f *fakeIssuer) find(order, number string) *ledgerEntry {
	if e, ok := f.ledger[order]; ok && (number == "" || e.number == number) {
		return e
	}
	return nil
}

func (f *fakeIssuer) Cancel(_ context.Context, _ string, r *card.CancelRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["cancel"]++
	how := f.failure("cancel")
	if how == "before" {
		return nil, errLost
	}
	e := f.find(r.OrderID, r.ApprovalNumber)
	switch {
	case e == nil:
		return refused(saml.StatusRequester, saml.CodeDeclined, "no such approval"), nil
	case f.keys[r.IdempotencyKey] == "cancel:"+e.order:
	case e.state == card.Cancelled:
		return refused(saml.StatusResponder, saml.CodeDeclined, "already cancelled"), nil
	case f.settled:
		return refused(saml.StatusResponder, saml.CodePolicyViolation, "settled: refund instead"), nil
	default:
		e.state = card.Cancelled
		f.keys[r.IdempotencyKey] = "cancel:" + e.order
		f.calls["cancel-applied"]++
	}
	if how == "after" {
		return nil, errLost
	}
	return ok(e.approval()), nil
}

func (f *fakeIssuer) Refund(_ context.Context, _ string, r *card.RefundRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["refund"]++
	e := f.find(r.OrderID, r.ApprovalNumber)
	if e == nil {
		return refused(saml.StatusRequester, saml.CodeDeclined, "no such approval"), nil
	}
	if r.Amount.Minor != 0 {
		return refused(saml.StatusRequester, saml.CodeInvalidPayload, "a verification refund names no amount"), nil
	}
	if e.state != card.Refunded {
		e.state = card.Refunded
		f.calls["refund-applied"]++
	}
	return ok(e.approval()), nil
}

func (f *fakeIssuer) Inquire(_ context.Context, _ string, r *card.InquireRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["inquire"]++
	if f.failure("inquire") != "" {
		return nil, errLost
	}
	e := f.find(r.OrderID, r.ApprovalNumber)
	if e == nil {
		return refused(saml.StatusRequester, saml.CodeDeclined, "no such approval"), nil
	}
	return ok(e.approval()), nil
}

// open lists the verification approvals still standing.
func (f *fakeIssuer) open() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for o, e := range f.ledger {
		if e.verification && e.state == card.Approved {
			out = append(out, o)
		}
	}
	return out
}

func (f *fakeIssuer) only() *ledgerEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ledger) != 1 {
		panic(fmt.Sprintf("%d approvals at the issuer, want 1", len(f.ledger)))
	}
	for _, e := range f.ledger {
		return e
	}
	return nil
}

// fakeAcquirer is the PG's own approve: one approval per idempotency key.
type fakeAcquirer struct {
	mu        sync.Mutex
	approvals map[string]*Purchase // by key
	fail      string               // "before", "after", or a KECIS status name to refuse with
	calls     int
}

func (a *fakeAcquirer) ApprovePurchase(_ context.Context, p *Purchase) (*card.Approval, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	switch a.fail {
	case "before":
		return nil, errLost
	case "":
	case "after":
	default:
		return nil, connectors.Refuse(saml.StatusResponder, saml.KECISStatusPrefix+a.fail, "한도 초과")
	}
	if a.approvals == nil {
		a.approvals = map[string]*Purchase{}
	}
	if _, ok := a.approvals[p.IdempotencyKey]; !ok {
		a.approvals[p.IdempotencyKey] = p
	}
	if a.fail == "after" {
		return nil, errLost
	}
	return &card.Approval{ApprovalNumber: fmt.Sprintf("P%07d", len(a.approvals)), OrderID: p.OrderID, Amount: p.Amount, State: card.Approved}, nil
}

func (a *fakeAcquirer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.approvals)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keys resolves the PG's signing certificate, for verifying results.
type keys struct{ cert *x509.Certificate }

func (k keys) SigningCertificates(_ context.Context, entityID string) ([]*x509.Certificate, error) {
	if entityID != pgID {
		return nil, fmt.Errorf("unknown %s", entityID)
	}
	return []*x509.Certificate{k.cert}, nil
}

type rig struct {
	e      *Engine
	issuer *fakeIssuer
	acq    *fakeAcquirer
	clock  *clock
	store  Store
	signer *saml.Signer
	db     *sqlstore.DB
	cfg    Config
}

var at0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func openTestDB(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t testing.TB, db *sqlstore.DB) *SQLStore {
	t.Helper()
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewSQLStore(context.Background(), db, sealer)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newRig builds an engine on SQLite (or on dsn) with the fakes; edit
// changes the configuration.
func newRig(t testing.TB, edit func(*Config)) *rig {
	return newRigOn(t, sqltest.TestSQLiteDSN(t), edit)
}

func newRigOn(t testing.TB, dsn string, edit func(*Config)) *rig {
	t.Helper()
	db := openTestDB(t, dsn)
	signer, err := saml.LoadSigner(filepath.Join("..", "..", "saml", "testdata", "keys", "merchant-ec.key.pem"),
		filepath.Join("..", "..", "saml", "testdata", "keys", "merchant-ec.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{issuer: newFakeIssuer(), acq: &fakeAcquirer{}, clock: &clock{t: at0}, store: newStore(t, db), signer: signer, db: db}
	r.cfg = Config{EntityID: pgID, Signer: signer, Store: r.store, Issuer: r.issuer, Acquirer: r.acq,
		Route: func(_ context.Context, bin string) (string, error) {
			if bin == "" {
				return "", errors.New("no bin")
			}
			return issuerID, nil
		},
		Key: bytes.Repeat([]byte{1}, 32), MerchantNames: map[string]string{merchantID: "KECIS 상점"},
		Now: r.clock.Now}
	if edit != nil {
		edit(&r.cfg)
	}
	r.e, err = New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) start(t testing.TB, order string, amount int64, pan string) *Session {
	t.Helper()
	s, err := r.e.Start(context.Background(), r.request(order, amount, pan))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func (r *rig) request(order string, amount int64, pan string) *StartRequest {
	return &StartRequest{Merchant: merchantID, OrderID: order, Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		Card: card.Card{Number: ecml.PAN(pan), ExpMonth: "12", ExpYear: "2030"}, IdempotencyKey: "k-" + order}
}

// challenge is what the cardholder reads in the issuer's text.
func (r *rig) challenge(t testing.TB, s *Session) Typed {
	t.Helper()
	r.issuer.mu.Lock()
	defer r.issuer.mu.Unlock()
	e := r.issuer.ledger[verifyOrder(s.ID)]
	if e == nil {
		t.Fatalf("no verification approval for %s", s.ID)
	}
	if s.Method == ByDescriptor {
		return Typed{Code: ecml.Secret(e.code)}
	}
	m := e.amount
	return Typed{Amount: &m}
}

func (r *rig) confirm(t testing.TB, s *Session, typed Typed) *Session {
	t.Helper()
	got, err := r.e.Confirm(context.Background(), merchantID, s.ID, typed)
	if err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	return got
}

// zeroReader is a random source of zero bytes (the lowest draw).
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var _ io.Reader = zeroReader{}
