package escrow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
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
	ourBank   = "081" // the holder bank
	otherBank = "088"
	bankID    = "https://bank-a.test/kecis"
	shopID    = "https://shop.test/kecis"
	shop2ID   = "https://shop2.test/kecis"
	buyer     = "cust-1"
	buyer2    = "cust-2"
	// Accounts: the buyers' at the holder bank, the shop's settlement
	// accounts at the holder bank and at another bank.
	buyerAccount  = "110-123-456789"
	buyer2Account = "110-555-000111"
	shopAccount   = "110-987-654321"
	shopAtOther   = "333-22-1234567"
	holding       = "holding" // the escrow holding account
)

var errLost = errors.New("ledger: connection reset")

var at0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// ledger is the fake Holder: an in-memory double-entry ledger. Every
// posting moves an amount from one account to another, so the sum of all
// balances never changes; each keyed call is executed once and its first
// outcome answered again.
type ledger struct {
	mu       sync.Mutex
	balances map[string]int64  // account (digits, or holding, or clearing:<bank>) → balance
	owners   map[string]string // account digits → customer
	done     map[string]any    // idempotency key → first outcome (string ref, *Outcome, or error)
	postings int
	// pending makes a release to another bank pending for that many
	// calls before it is credited.
	pending map[string]int
	// fail makes the next call of an operation fail: "before" (nothing
	// done) or "after" (done, the answer lost).
	fail  map[string]string
	calls map[string]int // op → calls
}

func newLedger() *ledger {
	l := &ledger{balances: map[string]int64{}, owners: map[string]string{}, done: map[string]any{},
		pending: map[string]int{}, fail: map[string]string{}, calls: map[string]int{}}
	l.open(buyer, buyerAccount, 1_000_000)
	l.open(buyer2, buyer2Account, 50_000)
	l.open("shop", shopAccount, 0)
	l.balances["funding"] = 10_000_000 // where the customers' money came from
	l.balances["funding"] -= 1_050_000
	return l
}

func (l *ledger) open(customer, account string, balance int64) {
	d, _ := ecml.AccountDigits(account)
	l.owners[d] = customer
	l.balances[d] = balance
}

func (l *ledger) balance(account string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := ecml.AccountDigits(account); ok {
		account = d
	}
	return l.balances[account]
}

// total is the sum of all balances: constant (double entry).
func (l *ledger) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s int64
	for _, b := range l.balances {
		s += b
	}
	return s
}

func (l *ledger) post(from, to string, amount int64) {
	l.balances[from] -= amount
	l.balances[to] += amount
	l.postings++
}

// keyed runs fn once per key, with the injected failures.
func (l *ledger) keyed(op, key string, fn func() (any, error)) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[op]++
	mode := l.fail[op]
	delete(l.fail, op)
	if mode == "before" {
		return nil, errLost
	}
	out, seen := l.done[key]
	if !seen {
		var err error
		out, err = fn()
		if err != nil {
			var se *connectors.StatusError
			if !errors.As(err, &se) {
				return nil, err // not recorded: an unknown outcome
			}
			out = err
		}
		if o, ok := out.(*Outcome); !ok || o.Done {
			l.done[key] = out
		}
	}
	if mode == "after" {
		return nil, errLost
	}
	if err, ok := out.(error); ok {
		return nil, err
	}
	return out, nil
}

func (l *ledger) Fund(_ context.Context, f *Funding) (string, error) {
	out, err := l.keyed("fund", f.IdempotencyKey, func() (any, error) {
		d, ok := ecml.AccountDigits(f.Account.Reveal())
		if !ok || l.owners[d] != f.Customer {
			return nil, connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "not one of your accounts")
		}
		if l.balances[d] < f.Amount.Minor {
			return nil, connectors.Refuse(saml.StatusResponder, saml.CodeInsufficientFunds, "insufficient funds")
		}
		l.post(d, holding, f.Amount.Minor)
		return fmt.Sprintf("F%d", l.postings), nil
	})
	if err != nil {
		return "", err
	}
	return out.(string), nil
}

func (l *ledger) Release(_ context.Context, r *Release) (*Outcome, error) {
	out, err := l.keyed("release", r.IdempotencyKey, func() (any, error) {
		d, _ := ecml.AccountDigits(r.SettlementAccount.Reveal())
		if r.SettlementBank == ourBank {
			l.post(holding, d, r.Amount.Minor)
			return &Outcome{Done: true, Ref: fmt.Sprintf("R%d", l.postings)}, nil
		}
		if l.pending[r.IdempotencyKey] > 0 {
			l.pending[r.IdempotencyKey]--
			return &Outcome{}, nil
		}
		l.post(holding, "clearing:"+r.SettlementBank, r.Amount.Minor)
		return &Outcome{Done: true, Ref: fmt.Sprintf("C%d", l.postings)}, nil
	})
	if err != nil {
		return nil, err
	}
	return out.(*Outcome), nil
}

func (l *ledger) Refund(_ context.Context, r *Refund) (string, error) {
	out, err := l.keyed("refund", r.IdempotencyKey, func() (any, error) {
		d, _ := ecml.AccountDigits(r.Account.Reveal())
		if l.owners[d] != r.Customer {
			return nil, connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "not the customer's account")
		}
		l.post(holding, d, r.Amount.Minor)
		return fmt.Sprintf("B%d", l.postings), nil
	})
	if err != nil {
		return "", err
	}
	return out.(string), nil
}

// rig is an engine over a fresh database and ledger.
type rig struct {
	e      *Engine
	l      *ledger
	clock  *testutil.Clock
	db     *sqlstore.DB
	signer *saml.Signer
	logs   *testutil.SyncBuffer
	n      int // orders opened
}

var keyDir = filepath.Join("..", "..", "saml", "testdata", "keys")

func newRig(t testing.TB) *rig { return newRigOn(t, sqltest.TestSQLiteDSN(t)) }

func newRigOn(t testing.TB, dsn string) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), testutil.NewDetRand("sealer"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := saml.LoadSigner(filepath.Join(keyDir, "merchant-ec.key.pem"), filepath.Join(keyDir, "merchant-ec.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{l: newLedger(), clock: testutil.NewClock(at0), db: db, signer: signer, logs: &testutil.SyncBuffer{}}
	r.e, err = New(ctx, Config{DB: db, Holder: r.l, Sealer: sealer, Signer: signer, Issuer: bankID, Now: r.clock.Now,
		Rand: testutil.NewDetRand("escrow"), Log: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var ctx = context.Background()

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

// order is an open request of the shop for amount, settled at our bank.
func (r *rig) order(amount int64) *OpenRequest {
	r.n++
	return &OpenRequest{Merchant: shopID, Order: fmt.Sprintf("ORD-%d", r.n), Amount: krw(amount), Goods: true,
		SettlementBank: ourBank, SettlementAccount: shopAccount, PayeeName: "한빛상사", IdempotencyKey: fmt.Sprintf("open-%d", r.n)}
}

// all reads every escrow.
func (r *rig) all(t testing.TB) []*Escrow {
	t.Helper()
	xs, err := r.e.st.many(ctx, `SELECT `+columns+` FROM escrow_order ORDER BY reference`)
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

// invariant: the holding account holds the sum of the amounts of the
// escrows whose money it holds, and the ledger's total is unchanged.
func (r *rig) invariant(t testing.TB) {
	t.Helper()
	var held int64
	for _, x := range r.all(t) {
		if x.Holds() {
			held += x.Amount.Minor
		}
	}
	if got := r.l.balance(holding); got != held {
		t.Fatalf("holding account %d, open escrows %d", got, held)
	}
	if total := r.l.total(); total != 10_000_000 {
		t.Fatalf("the ledger's total is %d: money was created or lost", total)
	}
}

// ok returns a function that fails the test on err and checks the
// invariant: r.ok(t)(r.e.Pay(…)).
func (r *rig) ok(t testing.TB) func(*Escrow, error) *Escrow {
	return func(x *Escrow, err error) *Escrow {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		r.invariant(t)
		return x
	}
}

// refused checks that err is a refusal with sub-code sub whose message
// holds msg.
func refused(t testing.TB, err error, sub, msg string) {
	t.Helper()
	s, ok := connectors.AsStatus(err)
	if !ok || s.SubCode != sub || !strings.Contains(s.Message, msg) {
		t.Fatalf("want %s %q, got %v", sub, msg, err)
	}
}

// kinds lists an escrow's event kinds.
func (r *rig) kinds(t testing.TB, ref string) string {
	t.Helper()
	ev, err := r.e.Events(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var k []string
	for _, e := range ev {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}
