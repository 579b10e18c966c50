package bank_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/internal/passwordhash"
	"github.com/kecis/kecis/internal/testutil"
)

var ctx = context.Background()

const (
	code     = "081"
	otherA   = "004"
	password = "correct-horse-9"
)

var (
	testDataKey = bytes.Repeat([]byte{0x42}, 32)
	testPepper  = bytes.Repeat([]byte{0x17}, 32)
)

type dsnFunc func(testing.TB) string

// eachBackend runs f on SQLite and, when reachable, PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, dsn dsnFunc)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, sqltest.TestSQLiteDSN)
	})
	t.Run("postgres", func(t *testing.T) {
		sqltest.RequirePostgres(t)
		t.Parallel()
		f(t, func(tb testing.TB) string { return sqltest.TestPostgresDSN(tb) })
	})
}

// env is a bank on a fresh database with a fixed clock, a deterministic
// random source, an in-memory phone network and a log buffer.
type env struct {
	t     testing.TB
	bk    *bank.Bank
	clock *testutil.Clock
	inbox *bank.Inbox
	logs  *testutil.SyncBuffer
	dsn   string
}

func newEnv(t testing.TB, dsn dsnFunc, opts ...func(*bank.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: testutil.NewClock(testutil.FixedNow), inbox: &bank.Inbox{}, logs: &testutil.SyncBuffer{}, dsn: dsn(t)}
	cfg := bank.Config{BankCode: code, Name: "KECIS Bank", DSN: e.dsn, DataKey: testDataKey, Pepper: testPepper,
		PasswordHashing: passwordhash.Params{MemoryKiB: 1024, Threads: 1}, AdminToken: "admin-token",
		Notifier: e.inbox, Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: e.clock.Now, Rand: testutil.NewDetRand(t.Name())}
	for _, o := range opts {
		o(&cfg)
	}
	bk, err := bank.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	e.bk = bk
	return e
}

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

// customer registers a customer with one account funded with balance.
func (e *env) customer(name, login, phone string, balance int64) (*bank.Customer, *bank.OpenedAccount) {
	e.t.Helper()
	c, err := e.bk.NewCustomer(ctx, bank.NewCustomerRequest{Name: name, Phone: phone, Login: login,
		Password: password, IdempotencyKey: "cus-" + login})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, IdempotencyKey: "acc-" + login})
	if err != nil {
		e.t.Fatal(err)
	}
	if balance > 0 {
		if _, err := e.bk.Deposit(ctx, bank.DepositRequest{AccountID: a.ID, Amount: krw(balance), IdempotencyKey: "dep-" + login}); err != nil {
			e.t.Fatal(err)
		}
	}
	return c, a
}

func (e *env) balance(id string) int64 {
	e.t.Helper()
	a, err := e.bk.Account(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance
}

func (e *env) checkLedger() *bank.LedgerReport {
	e.t.Helper()
	rep, err := e.bk.CheckLedger(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func wantCode(t testing.TB, err error, c bank.Code) {
	t.Helper()
	if got := bank.CodeOf(err); got != c {
		t.Fatalf("error %v (%s), want %s", err, got, c)
	}
	var be *bank.Error
	if !errors.As(err, &be) {
		t.Fatalf("%v is no *bank.Error", err)
	}
}

func (e *env) bk2Logger() *slog.Logger { return slog.New(slog.NewTextHandler(e.logs, nil)) }
