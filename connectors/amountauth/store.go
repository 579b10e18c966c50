package amountauth

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-amountauth"

// Session is one amount authentication (KECIS §15.3). The card is held in
// clear only in memory; the store seals it.
type Session struct {
	ID       string
	Merchant string
	OrderID  string
	// Version counts the session's writes: Store.Update succeeds only on
	// the version it read (compare-and-set).
	Version int
	State   State
	Method  Method
	Amount  ecml.Money
	// Ceiling is the public ceiling of the challenge (minor units).
	Ceiling      int64
	ChallengeMAC []byte
	Card         card.Card
	CardMAC      []byte
	UserMAC      []byte
	CardRef      string // masked card number
	Issuer       string // the issuer's entityID
	SubMerchant  string
	Attempts     int
	MaxAttempts  int
	Deadline     time.Time
	// VerifyApproval is the verification approval's number once known;
	// VerifyDone is set once it is voided, refunded, or known never to
	// have been approved.
	VerifyApproval   string
	VerifyDone       bool
	PurchaseApproval string
	// RefusalCode and RefusalMessage are the status of a refusal (the
	// verification approval's, or the purchase's).
	RefusalCode    string
	RefusalMessage string
	Result         []byte // the signed kecis:AuthenticationResult
	VerifiedAt     time.Time
	Created        time.Time
	Updated        time.Time
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("amountauth: no such session")
	// ErrExists: the merchant already has a session for the order.
	ErrExists = errors.New("amountauth: the order already has a session")
	// ErrConflict: the session changed since it was read.
	ErrConflict = errors.New("amountauth: the session changed")
)

// Store keeps sessions and the profile store. Implementations are safe for
// concurrent use; two engines on one database never both win an Update.
type Store interface {
	Create(ctx context.Context, s *Session) error
	// Get returns the session id; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*Session, error)
	// ByOrder returns the merchant's session for an order.
	ByOrder(ctx context.Context, merchant, order string) (*Session, error)
	// Update writes s if its stored version is still s.Version, and
	// increments s.Version; ErrConflict otherwise.
	Update(ctx context.Context, s *Session) error
	// Open lists up to limit sessions that still owe work: a verification
	// approval not voided, or a step in flight. Its cost does not grow
	// with ended sessions (a partial index).
	Open(ctx context.Context, limit int) ([]*Session, error)
	// Failures counts the card's wrong entries since a time, in sessions
	// that did not end approved (failed, expired or still open alike).
	Failures(ctx context.Context, cardMAC []byte, since time.Time) (int, error)
	// Verified returns when the merchant's user last verified the card.
	Verified(ctx context.Context, merchant string, user, card []byte) (time.Time, bool, error)
	// Remember records a verification in the profile store.
	Remember(ctx context.Context, merchant string, user, card []byte, at time.Time) error
}

// SQLStore is the Store in the adapter's SQL database (SQLite or
// PostgreSQL).
type SQLStore struct {
	db     *sqlstore.DB
	sealer *store.Sealer
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore migrates the amountauth tables in db and returns the store;
// sealer seals the card (the adapter's at-rest key).
func NewSQLStore(ctx context.Context, db *sqlstore.DB, sealer *store.Sealer) (*SQLStore, error) {
	if sealer == nil {
		return nil, errors.New("amountauth: a sealer is required")
	}
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return &SQLStore{db: db, sealer: sealer}, nil
}

// sealedCard is the card as sealed at rest.
type sealedCard struct {
	Number   string `json:"n"`
	ExpMonth string `json:"m,omitempty"`
	ExpYear  string `json:"y,omitempty"`
	Name     string `json:"h,omitempty"`
	Type     string `json:"t,omitempty"`
}

func (st *SQLStore) seal(s *Session) ([]byte, error) {
	b, err := json.Marshal(sealedCard{Number: s.Card.Number.Reveal(), ExpMonth: s.Card.ExpMonth, ExpYear: s.Card.ExpYear, Name: s.Card.Name, Type: s.Card.Type})
	if err != nil {
		return nil, err
	}
	return st.sealer.Seal(b, []byte("amountauth:"+s.ID))
}

func (st *SQLStore) open(s *Session, sealed []byte) error {
	b, err := st.sealer.Open(sealed, []byte("amountauth:"+s.ID))
	if err != nil {
		return err
	}
	var c sealedCard
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("amountauth: sealed card: %w", err)
	}
	s.Card = card.Card{Number: ecml.PAN(c.Number), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Name: c.Name, Type: c.Type}
	return nil
}

const columns = `id, merchant, order_id, version, state, method, amount, currency, ceiling, challenge_mac,
	card_sealed, card_mac, user_mac, card_ref, issuer, sub_merchant, attempts, max_attempts, deadline,
	verify_approval, verify_done, purchase_approval, refusal_code, refusal_message, result, verified_at,
	created_at, updated_at`

// Create implements Store.
func (st *SQLStore) Create(ctx context.Context, s *Session) error {
	sealed, err := st.seal(s)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	_, err = st.db.ExecContext(ctx, `INSERT INTO amountauth_session (`+columns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`,
		s.ID, s.Merchant, s.OrderID, s.Version, string(s.State), string(s.Method), s.Amount.Minor, s.Amount.Currency, s.Ceiling,
		sqlstore.Bytes(s.ChallengeMAC), sealed, sqlstore.Bytes(s.CardMAC), nullBytes(s.UserMAC), s.CardRef, s.Issuer, s.SubMerchant,
		s.Attempts, s.MaxAttempts, d.Time(s.Deadline), s.VerifyApproval, s.VerifyDone, s.PurchaseApproval, s.RefusalCode,
		s.RefusalMessage, nullBytes(s.Result), nullTime(d, s.VerifiedAt), d.Time(s.Created), d.Time(s.Updated))
	if sqlstore.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// Get implements Store.
func (st *SQLStore) Get(ctx context.Context, id string) (*Session, error) {
	return st.one(ctx, `SELECT `+columns+` FROM amountauth_session WHERE id = $1`, id)
}

// ByOrder implements Store.
func (st *SQLStore) ByOrder(ctx context.Context, merchant, order string) (*Session, error) {
	return st.one(ctx, `SELECT `+columns+` FROM amountauth_session WHERE merchant = $1 AND order_id = $2`, merchant, order)
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
	d := st.db.Dialect
	if err := sqlstore.ExecOne(ctx, st.db, ErrConflict, `UPDATE amountauth_session SET version = $1, state = $2, attempts = $3,
		verify_approval = $4, verify_done = $5, purchase_approval = $6, refusal_code = $7, refusal_message = $8,
		result = $9, verified_at = $10, updated_at = $11
		WHERE id = $12 AND version = $13`,
		s.Version+1, string(s.State), s.Attempts, s.VerifyApproval, s.VerifyDone, s.PurchaseApproval, s.RefusalCode,
		s.RefusalMessage, nullBytes(s.Result), nullTime(d, s.VerifiedAt), d.Time(s.Updated), s.ID, s.Version); err != nil {
		return err
	}
	s.Version++
	return nil
}

// Open implements Store.
func (st *SQLStore) Open(ctx context.Context, limit int) ([]*Session, error) {
	done := "verify_done = 0"
	if st.db.Dialect == sqlstore.Postgres {
		done = "NOT verify_done"
	}
	rows, err := st.db.QueryContext(ctx, `SELECT `+columns+` FROM amountauth_session
		WHERE `+done+` OR state IN ('starting', 'processing') ORDER BY deadline LIMIT $1`, limit)
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

// Failures implements Store.
func (st *SQLStore) Failures(ctx context.Context, cardMAC []byte, since time.Time) (int, error) {
	var n int
	err := st.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(attempts), 0) FROM amountauth_session WHERE card_mac = $1 AND updated_at > $2 AND state <> 'approved'`,
		cardMAC, st.db.Dialect.Time(since)).Scan(&n)
	return n, err
}

// Verified implements Store.
func (st *SQLStore) Verified(ctx context.Context, merchant string, user, cardMAC []byte) (time.Time, bool, error) {
	var at time.Time
	err := st.db.QueryRowContext(ctx, `SELECT verified_at FROM amountauth_profile WHERE merchant = $1 AND user_mac = $2 AND card_mac = $3`,
		merchant, user, cardMAC).Scan(sqlstore.ScanTime(&at))
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	return at, err == nil, err
}

// Remember implements Store.
func (st *SQLStore) Remember(ctx context.Context, merchant string, user, cardMAC []byte, at time.Time) error {
	_, err := st.db.ExecContext(ctx, `INSERT INTO amountauth_profile (merchant, user_mac, card_mac, verified_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (merchant, user_mac, card_mac) DO UPDATE SET verified_at = excluded.verified_at`,
		merchant, user, cardMAC, st.db.Dialect.Time(at))
	return err
}

func (st *SQLStore) scan(row interface{ Scan(...any) error }) (*Session, error) {
	s := &Session{}
	var state, method string
	var sealed, userMAC, result []byte
	var verified sql.Null[time.Time]
	var verifiedAt time.Time
	vs := nullTimeScanner{dst: &verifiedAt, valid: &verified.Valid}
	if err := row.Scan(&s.ID, &s.Merchant, &s.OrderID, &s.Version, &state, &method, &s.Amount.Minor, &s.Amount.Currency,
		&s.Ceiling, &s.ChallengeMAC, &sealed, &s.CardMAC, &userMAC, &s.CardRef, &s.Issuer, &s.SubMerchant, &s.Attempts,
		&s.MaxAttempts, sqlstore.ScanTime(&s.Deadline), &s.VerifyApproval, &s.VerifyDone, &s.PurchaseApproval,
		&s.RefusalCode, &s.RefusalMessage, &result, vs, sqlstore.ScanTime(&s.Created), sqlstore.ScanTime(&s.Updated)); err != nil {
		return nil, err
	}
	s.State, s.Method, s.UserMAC, s.Result = State(state), Method(method), userMAC, result
	if verified.Valid {
		s.VerifiedAt = verifiedAt
	}
	if err := st.open(s, sealed); err != nil {
		return nil, err
	}
	return s, nil
}

// nullTimeScanner scans a nullable time column written with Dialect.Time.
type nullTimeScanner struct {
	dst   *time.Time
	valid *bool
}

func (n nullTimeScanner) Scan(v any) error {
	if v == nil {
		*n.valid = false
		return nil
	}
	*n.valid = true
	return sqlstore.ScanTime(n.dst).Scan(v)
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func nullTime(d sqlstore.Dialect, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}
