package microdeposit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

const (
	verifierID = "https://shop.example/kecis"
	holderBank = "088"
	account    = "110-234-567890"
	digits     = "110234567890"
)

var errCrash = errors.New("crash")

// credit is a deposit the fake bank made: what the holder's statement
// shows.
type credit struct {
	key       string
	account   string
	amount    ecml.Money
	memo      string
	creditRef string
}

// fakeBank is the verifier's bank and the holder's at once: Deposit is
// idempotent by reference (and refuses a reference reused with another
// key's content), Inquire finds a credit by reference. Faults: lose the
// answer after crediting (lose), fail before crediting (down), fail
// inquiries (inquireDown).
type fakeBank struct {
	mu          sync.Mutex
	accounts    map[string]bool
	credits     map[string]*credit // by reference
	order       []string
	calls       int
	lose, down  map[int]bool // by call number (1-based)
	inquireDown bool
	refuse      *saml.Status
}

func newFakeBank() *fakeBank {
	return &fakeBank{accounts: map[string]bool{digits: true}, credits: map[string]*credit{}, lose: map[int]bool{}, down: map[int]bool{}}
}

func (b *fakeBank) Deposit(_ context.Context, d *Deposit) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.down[b.calls] {
		return "", errors.New("bank unreachable")
	}
	if c, ok := b.credits[d.Reference]; ok {
		if c.key != d.IdempotencyKey || c.amount != d.Amount || c.memo != d.Memo.Reveal() {
			return "", connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, "other content")
		}
		return c.creditRef, nil
	}
	if b.refuse != nil {
		return "", &connectors.StatusError{Status: *b.refuse}
	}
	if !b.accounts[d.Account.Reveal()] || d.Bank != holderBank {
		return "", connectors.Refuse(saml.StatusResponder, saml.CodeDeclined, "no such account")
	}
	c := &credit{key: d.IdempotencyKey, account: d.Account.Reveal(), amount: d.Amount, memo: d.Memo.Reveal(),
		creditRef: fmt.Sprintf("C%04d", len(b.credits)+1)}
	b.credits[d.Reference] = c
	b.order = append(b.order, d.Reference)
	if b.lose[b.calls] {
		return "", errors.New("answer lost")
	}
	return c.creditRef, nil
}

func (b *fakeBank) Inquire(_ context.Context, _, ref string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inquireDown {
		return "", errors.New("bank unreachable")
	}
	if c, ok := b.credits[ref]; ok {
		return c.creditRef, nil
	}
	return "", ErrNoSuchDeposit
}

// statement is what the holder reads: the credits in order.
func (b *fakeBank) statement() []credit {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []credit
	for _, r := range b.order {
		out = append(out, *b.credits[r])
	}
	return out
}

// fakeReturner records return requests by key.
type fakeReturner struct {
	mu       sync.Mutex
	requests map[string]*ReturnRequest
	calls    int
	fail     bool
}

func (f *fakeReturner) RequestReturn(_ context.Context, r *ReturnRequest) (ReturnState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.requests == nil {
		f.requests = map[string]*ReturnRequest{}
	}
	f.requests[r.IdempotencyKey] = r
	if f.fail {
		return "", errors.New("answer lost")
	}
	return ReturnRequested, nil
}

// faultyStore fails the failAt-th Update (1-based) without writing, as a
// process that dies before its write would.
type faultyStore struct {
	*SQLStore
	mu      sync.Mutex
	updates int
	failAt  int
}

func (s *faultyStore) Update(ctx context.Context, sess *Session) error {
	s.mu.Lock()
	s.updates++
	fail := s.updates == s.failAt
	s.mu.Unlock()
	if fail {
		return errCrash
	}
	return s.SQLStore.Update(ctx, sess)
}

// world is a verifier's database, its bank and its clock.
type world struct {
	t     testing.TB
	db    *sqlstore.DB
	store *SQLStore
	bank  *fakeBank
	ret   *fakeReturner
	clock *testutil.Clock
	logs  *testutil.SyncBuffer
	seed  int
}

func newWorld(t testing.TB) *world { return newWorldOn(t, sqltest.TestSQLiteDSN(t)) }

func newWorldOn(t testing.TB, dsn string) *world {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewSQLStore(context.Background(), db, sealer)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, db: db, store: st, bank: newFakeBank(), ret: &fakeReturner{},
		clock: testutil.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), logs: &testutil.SyncBuffer{}}
}

// engine is one process of the verifier on the world's database; st
// overrides the store (a faulty one), edit the configuration.
func (w *world) engine(st Store, edit func(*Config)) *Engine {
	w.t.Helper()
	if st == nil {
		st = w.store
	}
	w.seed++
	cfg := Config{Store: st, Depositor: w.bank, Returner: w.ret, Key: bytes.Repeat([]byte{1}, 32),
		Names: map[string]string{verifierID: "KECIS상점"}, Now: w.clock.Now,
		Rand: testutil.NewDetRand(fmt.Sprintf("%s-%d", w.t.Name(), w.seed)),
		Log:  slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func codeVariant(c *Config) { c.Options.Variant = Code }

func startReq(key string) *StartRequest {
	return &StartRequest{Verifier: verifierID, IdempotencyKey: key, UserID: "user-1", Bank: holderBank, Account: account}
}

// read is what the holder reads on the statement for a session: the two
// amounts, or the code of the memo.
func (w *world) read(s *Session) Typed {
	w.t.Helper()
	var t Typed
	for _, c := range w.bank.statement() {
		if c.key != depositKey(s.ID, 0) && c.key != depositKey(s.ID, 1) {
			continue
		}
		if s.Variant == Code {
			var name string
			if _, err := fmt.Sscanf(c.memo, "%s %s", &t.Code, &name); err != nil {
				w.t.Fatalf("memo %q: %v", c.memo, err)
			}
			continue
		}
		t.Amounts = append(t.Amounts, c.amount.Minor)
	}
	return t
}
