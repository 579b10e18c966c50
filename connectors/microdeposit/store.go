package microdeposit

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-microdeposit"

// Session is one verification (KECIS §15.8.1). The account number and the
// pending draw are held in clear only in memory; the store seals them.
type Session struct {
	ID             string
	Verifier       string
	IdempotencyKey string
	// Version counts the session's writes: Store.Update succeeds only on
	// the version it read (compare-and-set).
	Version    int
	State      State
	Variant    Variant
	Bank       string
	Account    ecml.Secret
	AccountRef string // masked
	AccountMAC []byte
	UserMAC    []byte
	// Memo is the verifier's name on the holder's statement (the Code
	// variant's memo is the code, a space and this).
	Memo      string
	SecretMAC []byte
	// Deposits is the number of deposits (2 or 1); Credits their credit
	// references at the holder's bank, "" until credited.
	Deposits    int
	Credits     [2]string
	Attempts    int
	MaxAttempts int
	Deadline    time.Time
	Policy      Policy
	Return      ReturnState
	// RefusalCode and RefusalMessage are the holder's bank's refusal of a
	// deposit (Refused).
	RefusalCode    string
	RefusalMessage string
	VerifiedAt     time.Time
	Created        time.Time
	Updated        time.Time

	// Pending is the draw, kept (sealed by the store) until every deposit
	// is credited, to send one again under the same key; nil afterwards.
	Pending *Draw
}

// Draw is what the holder will read: the amounts (Amounts) or the code.
// It prints, formats and logs as ecml.Redacted.
type Draw struct {
	// Amounts are the deposits' amounts (the Code variant's one deposit
	// too), in minor units of Currency.
	Amounts  []int64 `json:"a"`
	Currency string  `json:"u"`
	Code     string  `json:"c,omitempty"`
}

// String implements fmt.Stringer: never the values.
func (d *Draw) String() string { return ecml.Redacted }

// GoString implements fmt.GoStringer: never the values.
func (d *Draw) GoString() string { return ecml.Redacted }

// Format implements fmt.Formatter: every verb prints ecml.Redacted.
func (d *Draw) Format(f fmt.State, _ rune) { fmt.Fprint(f, ecml.Redacted) }

// LogValue implements slog.LogValuer: never the values.
func (d *Draw) LogValue() slog.Value { return slog.StringValue(ecml.Redacted) }

// Errors of a Store.
var (
	ErrNotFound = errors.New("microdeposit: no such session")
	// ErrExists: the verifier already used the idempotency key.
	ErrExists = errors.New("microdeposit: the idempotency key has a session")
	// ErrConflict: the session changed since it was read.
	ErrConflict = errors.New("microdeposit: the session changed")
)

// Store keeps sessions. Implementations are safe for concurrent use; two
// engines on one database never both win an Update.
type Store interface {
	Create(ctx context.Context, s *Session) error
	Get(ctx context.Context, id string) (*Session, error)
	// ByKey returns the verifier's session of an idempotency key.
	ByKey(ctx context.Context, verifier, key string) (*Session, error)
	// Update writes s if its stored version is still s.Version, and
	// increments s.Version; ErrConflict otherwise.
	Update(ctx context.Context, s *Session) error
	// Open lists up to limit sessions that still owe work: deposits being
	// sent, an entry awaited, a return owed.
	Open(ctx context.Context, limit int) ([]*Session, error)
	// Started counts the sessions started since a time for an account
	// (byAccount) or a user.
	Started(ctx context.Context, mac []byte, byAccount bool, since time.Time) (int, error)
}

// SQLStore is the Store in the verifier's SQL database (SQLite or
// PostgreSQL).
type SQLStore struct {
	db     *sqlstore.DB
	sealer *store.Sealer
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore migrates the microdeposit tables in db and returns the
// store; sealer seals account numbers and pending draws (the verifier's
// at-rest key).
func NewSQLStore(ctx context.Context, db *sqlstore.DB, sealer *store.Sealer) (*SQLStore, error) {
	if sealer == nil {
		return nil, errors.New("microdeposit: a sealer is required")
	}
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return &SQLStore{db: db, sealer: sealer}, nil
}

func (st *SQLStore) sealAccount(s *Session) ([]byte, error) {
	return st.sealer.Seal([]byte(s.Account.Reveal()), []byte("microdeposit account:"+s.ID))
}

func (st *SQLStore) sealPending(s *Session) ([]byte, error) {
	if s.Pending == nil {
		return []byte{}, nil
	}
	b, err := json.Marshal(s.Pending)
	if err != nil {
		return nil, err
	}
	return st.sealer.Seal(b, []byte("microdeposit pending:"+s.ID))
}

const columns = `id, verifier, idempotency_key, version, state, variant, bank, account_ref, account_mac, account_sealed,
	user_mac, memo, secret_mac, pending_sealed, deposits, credit1, credit2, attempts, max_attempts, deadline, policy,
	return_state, refusal_code, refusal_message, verified_at, created_at, updated_at`

// Create implements Store.
func (st *SQLStore) Create(ctx context.Context, s *Session) error {
	acct, err := st.sealAccount(s)
	if err != nil {
		return err
	}
	pend, err := st.sealPending(s)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	_, err = st.db.ExecContext(ctx, `INSERT INTO microdeposit_session (`+columns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)`,
		s.ID, s.Verifier, s.IdempotencyKey, s.Version, string(s.State), string(s.Variant), s.Bank, s.AccountRef,
		sqlstore.Bytes(s.AccountMAC), acct, sqlstore.Bytes(s.UserMAC), s.Memo, sqlstore.Bytes(s.SecretMAC), pend,
		s.Deposits, s.Credits[0], s.Credits[1], s.Attempts, s.MaxAttempts, d.Time(s.Deadline), string(s.Policy),
		string(s.Return), s.RefusalCode, s.RefusalMessage, d.Time(s.VerifiedAt), d.Time(s.Created), d.Time(s.Updated))
	if sqlstore.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// Get implements Store.
func (st *SQLStore) Get(ctx context.Context, id string) (*Session, error) {
	return st.one(ctx, `SELECT `+columns+` FROM microdeposit_session WHERE id = $1`, id)
}

// ByKey implements Store.
func (st *SQLStore) ByKey(ctx context.Context, verifier, key string) (*Session, error) {
	return st.one(ctx, `SELECT `+columns+` FROM microdeposit_session WHERE verifier = $1 AND idempotency_key = $2`, verifier, key)
}

func (st *SQLStore) one(ctx context.Context, q string, args ...any) (*Session, error) {
	s, err := st.scan(st.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return s, err
}

// Update implements Store.
func (st *SQLStore) Update(ctx context.Context, s *Session) error {
	pend, err := st.sealPending(s)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	if err := sqlstore.ExecOne(ctx, st.db, ErrConflict, `UPDATE microdeposit_session SET version = $1, state = $2, pending_sealed = $3,
		credit1 = $4, credit2 = $5, attempts = $6, return_state = $7, refusal_code = $8, refusal_message = $9,
		verified_at = $10, updated_at = $11
		WHERE id = $12 AND version = $13`,
		s.Version+1, string(s.State), pend, s.Credits[0], s.Credits[1], s.Attempts, string(s.Return), s.RefusalCode,
		s.RefusalMessage, d.Time(s.VerifiedAt), d.Time(s.Updated), s.ID, s.Version); err != nil {
		return err
	}
	s.Version++
	return nil
}

// Open implements Store.
func (st *SQLStore) Open(ctx context.Context, limit int) ([]*Session, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+columns+` FROM microdeposit_session
		WHERE state IN ('sending', 'awaiting') OR return_state = 'owed' ORDER BY deadline LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		s, err := st.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Started implements Store.
func (st *SQLStore) Started(ctx context.Context, mac []byte, byAccount bool, since time.Time) (int, error) {
	col := "user_mac"
	if byAccount {
		col = "account_mac"
	}
	var n int
	err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM microdeposit_session WHERE `+col+` = $1 AND created_at > $2`,
		mac, st.db.Dialect.Time(since)).Scan(&n)
	return n, err
}

func (st *SQLStore) scan(row interface{ Scan(...any) error }) (*Session, error) {
	s := &Session{}
	var state, variant, policy, ret string
	var acct, pend []byte
	if err := row.Scan(&s.ID, &s.Verifier, &s.IdempotencyKey, &s.Version, &state, &variant, &s.Bank, &s.AccountRef,
		&s.AccountMAC, &acct, &s.UserMAC, &s.Memo, &s.SecretMAC, &pend, &s.Deposits, &s.Credits[0], &s.Credits[1],
		&s.Attempts, &s.MaxAttempts, sqlstore.ScanTime(&s.Deadline), &policy, &ret, &s.RefusalCode, &s.RefusalMessage,
		sqlstore.ScanTime(&s.VerifiedAt), sqlstore.ScanTime(&s.Created), sqlstore.ScanTime(&s.Updated)); err != nil {
		return nil, err
	}
	s.State, s.Variant, s.Policy, s.Return = State(state), Variant(variant), Policy(policy), ReturnState(ret)
	b, err := st.sealer.Open(acct, []byte("microdeposit account:"+s.ID))
	if err != nil {
		return nil, fmt.Errorf("microdeposit: sealed account: %w", err)
	}
	s.Account = ecml.Secret(b)
	if len(pend) > 0 {
		b, err := st.sealer.Open(pend, []byte("microdeposit pending:"+s.ID))
		if err != nil {
			return nil, fmt.Errorf("microdeposit: sealed draw: %w", err)
		}
		s.Pending = &Draw{}
		if err := json.Unmarshal(b, s.Pending); err != nil {
			return nil, fmt.Errorf("microdeposit: sealed draw: %w", err)
		}
	}
	return s, nil
}
