package issuer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// Test cardholder secrets: distinctive, so that a leak is found by a
// plain substring search.
const (
	testBirth    = "870312"
	testPassword = "4821"
	testPrefix   = "48"
	testPhone    = "010-2345-6789"
	testPhoneD   = "01023456789"
	merchant     = "M-EXAMPLE"
	merchantName = "Example Shop"
)

var (
	testDataKey = bytes.Repeat([]byte{0x42}, 32)
	testPepper  = bytes.Repeat([]byte{0x17}, 32)
	ctx         = context.Background()
)

// phone is a Notifier that records every SMS and can be made to fail.
type phone struct {
	issuer.Inbox
	fail atomic.Bool
}

func (p *phone) Send(ctx context.Context, to, text string) error {
	if p.fail.Load() {
		return errors.New("sms gateway unavailable")
	}
	return p.Inbox.Send(ctx, to, text)
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one issuer under test with its clock, phone network and logs.
type env struct {
	t     testing.TB
	iss   *issuer.Issuer
	clock *testutil.Clock
	phone *phone
	logs  *syncBuffer
	dsn   string
	seq   atomic.Int64
}

type dsnFunc func(testing.TB) string

// eachBackend runs f on SQLite and, when the test server is reachable, on
// PostgreSQL.
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

func newEnv(t testing.TB, dsn dsnFunc, opts ...func(*issuer.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: testutil.NewClock(testutil.FixedNow), phone: &phone{}, logs: &syncBuffer{}, dsn: dsn(t)}
	e.iss = e.open(t.Name(), opts...)
	return e
}

// open opens another issuer on the same database and clock (a replica).
func (e *env) open(seed string, opts ...func(*issuer.Config)) *issuer.Issuer {
	e.t.Helper()
	cfg := issuer.Config{
		DSN:      e.dsn,
		DataKey:  testDataKey,
		Pepper:   testPepper,
		Notifier: e.phone,
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      e.clock.Now,
		Rand:     testutil.NewDetRand(seed),
		// Cheap argon2id: the tests check the logic, not the cost.
		PasswordHashing: issuer.Argon2Params{MemoryKiB: 1024, Threads: 1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	iss, err := issuer.Open(ctx, cfg)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { iss.Close() })
	return iss
}

// key returns a fresh idempotency key.
func (e *env) key(prefix string) string { return prefix + "-" + itoa(e.seq.Add(1)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// issue issues a card of the test holder.
func (e *env) issue(typ issuer.CardType, limit int64, opts ...func(*issuer.IssueCardRequest)) *issuer.IssuedCard {
	e.t.Helper()
	req := issuer.IssueCardRequest{
		Type: typ, HolderName: "홍길동", HolderPhone: testPhone,
		BirthDate: testBirth, Password: testPassword, Limit: limit,
		IdempotencyKey: e.key("card"),
	}
	for _, o := range opts {
		o(&req)
	}
	c, err := e.iss.IssueCard(ctx, req)
	if err != nil {
		e.t.Fatalf("IssueCard: %v", err)
	}
	return c
}

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

// approveReq is an approval of amount on c for a fresh order.
func (e *env) approveReq(c *issuer.IssuedCard, amount int64) issuer.ApproveRequest {
	n := e.seq.Add(1)
	return issuer.ApproveRequest{
		MerchantID: merchant, MerchantName: merchantName, OrderID: "ORD-" + itoa(n),
		Amount:         krw(amount),
		Card:           issuer.CardData{PAN: c.PAN, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear},
		IdempotencyKey: "approve-" + itoa(n),
	}
}

func (e *env) approve(c *issuer.IssuedCard, amount int64) *issuer.Approval {
	e.t.Helper()
	a, err := e.iss.Approve(ctx, e.approveReq(c, amount))
	if err != nil {
		e.t.Fatalf("Approve(%d): %v", amount, err)
	}
	return a
}

func (e *env) available(c *issuer.IssuedCard) int64 {
	e.t.Helper()
	got, err := e.iss.Card(ctx, c.ID)
	if err != nil {
		e.t.Fatalf("Card: %v", err)
	}
	return got.Available
}

func (e *env) cancel(a *issuer.Approval) (*issuer.Approval, error) {
	return e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: a.MerchantID, ApprovalNumber: a.Number, IdempotencyKey: e.key("cancel")})
}

func (e *env) refund(a *issuer.Approval, amount int64) (*issuer.Refund, error) {
	return e.iss.Refund(ctx, issuer.RefundRequest{MerchantID: a.MerchantID, ApprovalNumber: a.Number,
		Amount: krw(amount), IdempotencyKey: e.key("refund")})
}

func (e *env) inquire(number string) *issuer.Approval {
	e.t.Helper()
	a, err := e.iss.Inquire(ctx, issuer.InquireRequest{MerchantID: merchant, ApprovalNumber: number})
	if err != nil {
		e.t.Fatalf("Inquire(%s): %v", number, err)
	}
	return a
}

// pastCutOff moves the clock past the cut-off of an approval made now.
func (e *env) pastCutOff() {
	e.clock.Set(e.iss.CutOffAfter(e.clock.Now()).Add(time.Minute))
}

func wantCode(t testing.TB, err error, want issuer.Code) {
	t.Helper()
	if got := issuer.CodeOf(err); got != want {
		t.Fatalf("error = %v (code %q), want code %s", err, got, want)
	}
}

func texts(ms []issuer.SMS) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}
