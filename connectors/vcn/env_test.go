package vcn

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

var ctx = context.Background()

// seoul is the issuer's zone in the tests.
var seoul = func() *time.Location {
	l, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		return time.FixedZone("KST", 9*60*60)
	}
	return l
}()

// paperDay is 11 February 2026, 10:00 in Seoul: the paper's example day.
var paperDay = time.Date(2026, 2, 11, 10, 0, 0, 0, seoul)

// realCard is the paper's sample card 1234098712340987 with a valid Luhn
// digit in place of its last one (the paper's is not Luhn-valid).
var realCard = func() ecml.PAN {
	d, _ := ecml.LuhnCheckDigit("123409871234098")
	return ecml.PAN("123409871234098" + string(d))
}()

// otherCard is a second real card.
const otherCard ecml.PAN = "9490101234567893"

// testSealer is AES-256-GCM, as connectors/store.Sealer (which this
// package's tests may not import).
type testSealer struct {
	aead cipher.AEAD
	rand io.Reader
}

func newTestSealer(rand io.Reader) *testSealer {
	k := sha256.Sum256([]byte("vcn test at-rest key"))
	b, _ := aes.NewCipher(k[:])
	a, _ := cipher.NewGCM(b)
	return &testSealer{aead: a, rand: rand}
}

func (s *testSealer) Seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, ad), nil
}

func (s *testSealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], ad)
}

// env is a Service on a fresh database with a pinned clock and random
// source, its log in logs.
type env struct {
	t     testing.TB
	db    *sqlstore.DB
	svc   *Service
	clock *testutil.Clock
	logs  *testutil.SyncBuffer
	cfg   Config
}

func key(label string) []byte {
	k := sha256.Sum256([]byte(label))
	return k[:]
}

// newEnv opens a Service on dsn; edit changes the config first.
func newEnv(t testing.TB, dsn string, edit func(*Config)) *env {
	t.Helper()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, db: db, clock: testutil.NewClock(paperDay), logs: &testutil.SyncBuffer{}}
	rnd := testutil.NewDetRand(t.Name())
	e.cfg = Config{
		Location: seoul,
		PoolKey:  key("pool key"),
		HashKey:  key("hash key"),
		Sealer:   newTestSealer(rnd),
		Now:      e.clock.Now,
		Rand:     rnd,
		Log:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&e.cfg)
	}
	e.svc, err = Open(ctx, db, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// another opens a second Service (another process) on the same database.
func (e *env) another(dsn string, edit func(*Config)) *Service {
	e.t.Helper()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	cfg := e.cfg
	if edit != nil {
		edit(&cfg)
	}
	s, err := Open(ctx, db, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// authorize runs AuthorizeTx in a transaction of its own, committed when
// it succeeds.
func (e *env) authorize(number ecml.PAN, u Use) (*Resolved, error) {
	var r *Resolved
	err := e.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = e.svc.AuthorizeTx(ctx, tx, number, u)
		return err
	})
	return r, err
}

type backend struct {
	name string
	dsn  func(testing.TB) string
}

var backends = []backend{
	{"sqlite", sqltest.TestSQLiteDSN},
	{"postgres", sqltest.TestPostgresDSN},
}

// eachBackend runs fn on SQLite and on PostgreSQL (skipped with a message
// when the server is down, failed under CI=true).
func eachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.dsn(t)) })
	}
}
