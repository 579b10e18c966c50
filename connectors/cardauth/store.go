package cardauth

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-cardauth"

// State is a transaction's state (KECIS §15.7).
type State string

// The states: awaiting-card → awaiting-second-factor → done, or failed
// (a factor failed, the card is locked, the cardholder cancelled, a
// refusal) or expired.
const (
	AwaitingCard         State = "awaiting-card"
	AwaitingSecondFactor State = "awaiting-second-factor"
	Done                 State = "done"
	Failed               State = "failed"
	Expired              State = "expired"
)

// Ended reports whether s takes no further step.
func (s State) Ended() bool { return s == Done || s == Failed || s == Expired }

// tx is one transaction of the page: no card number, password or code.
type tx struct {
	ID           string
	Binding      []byte
	Version      int
	State        State
	Service      string
	Requester    string
	RequestID    string
	IdemKey      string
	RelayState   string
	Destination  string
	OrderID      string
	Amount       int64
	Currency     string
	Shop         string
	Acquirer     string
	WantVirtual  bool
	MultiUse     bool
	MerchantLock bool
	VCNotAfter   time.Time
	CardRef      string
	CardMasked   string
	Factors      string
	Attempts     int
	Method       string
	StatusCode   string
	StatusMsg    string
	Expires      time.Time
	Created      time.Time
	Updated      time.Time
}

// Errors of the store.
var (
	errNotFound = errors.New("cardauth: no such transaction")
	errConflict = errors.New("cardauth: the transaction changed")
	errExists   = errors.New("cardauth: the idempotency key already has a transaction")
)

type sqlStore struct {
	db *sqlstore.DB
}

func newSQLStore(ctx context.Context, db *sqlstore.DB) (*sqlStore, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return &sqlStore{db: db}, nil
}

const txColumns = `id, binding, version, state, service, requester, request_id, idem_key, relay_state, destination,
	order_id, amount, currency, shop, acquirer, want_virtual, multi_use, merchant_lock, vc_not_after,
	card_ref, card_masked, factors, attempts, method, status_code, status_msg, expires_at, created_at, updated_at`

func (st *sqlStore) create(ctx context.Context, t *tx) error {
	d := st.db.Dialect
	var notAfter any
	if !t.VCNotAfter.IsZero() {
		notAfter = d.Time(t.VCNotAfter)
	}
	_, err := st.db.ExecContext(ctx, `INSERT INTO cardauth_tx (`+txColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)`,
		t.ID, sqlstore.Bytes(t.Binding), t.Version, string(t.State), t.Service, t.Requester, t.RequestID, t.IdemKey, t.RelayState, t.Destination,
		t.OrderID, t.Amount, t.Currency, t.Shop, t.Acquirer, st.bool(t.WantVirtual), st.bool(t.MultiUse), st.bool(t.MerchantLock), notAfter,
		t.CardRef, t.CardMasked, t.Factors, t.Attempts, t.Method, t.StatusCode, t.StatusMsg, d.Time(t.Expires), d.Time(t.Created), d.Time(t.Updated))
	if sqlstore.IsUniqueViolation(err) {
		return errExists
	}
	return err
}

func (st *sqlStore) bool(b bool) any {
	if st.db.Dialect == sqlstore.SQLite {
		if b {
			return 1
		}
		return 0
	}
	return b
}

func (st *sqlStore) get(ctx context.Context, id string) (*tx, error) {
	row := st.db.QueryRowContext(ctx, `SELECT `+txColumns+` FROM cardauth_tx WHERE id = $1`, id)
	t := &tx{}
	var state string
	var want, multi, lock any
	err := row.Scan(&t.ID, &t.Binding, &t.Version, &state, &t.Service, &t.Requester, &t.RequestID, &t.IdemKey, &t.RelayState, &t.Destination,
		&t.OrderID, &t.Amount, &t.Currency, &t.Shop, &t.Acquirer, &want, &multi, &lock, sqlstore.ScanTime(&t.VCNotAfter),
		&t.CardRef, &t.CardMasked, &t.Factors, &t.Attempts, &t.Method, &t.StatusCode, &t.StatusMsg,
		sqlstore.ScanTime(&t.Expires), sqlstore.ScanTime(&t.Created), sqlstore.ScanTime(&t.Updated))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	t.State = State(state)
	t.WantVirtual, t.MultiUse, t.MerchantLock = truth(want), truth(multi), truth(lock)
	return t, nil
}

func truth(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	}
	return false
}

// update writes t's mutable fields if its stored version is still
// t.Version (compare-and-set) and increments t.Version.
func (st *sqlStore) update(ctx context.Context, t *tx) error {
	d := st.db.Dialect
	if err := sqlstore.ExecOne(ctx, st.db, errConflict, `UPDATE cardauth_tx SET version = $1, state = $2, card_ref = $3, card_masked = $4,
		factors = $5, attempts = $6, method = $7, status_code = $8, status_msg = $9, updated_at = $10
		WHERE id = $11 AND version = $12`,
		t.Version+1, string(t.State), t.CardRef, t.CardMasked, t.Factors, t.Attempts, t.Method, t.StatusCode, t.StatusMsg, d.Time(t.Updated),
		t.ID, t.Version); err != nil {
		return err
	}
	t.Version++
	return nil
}

// purge deletes transactions that ended or expired before a time.
func (st *sqlStore) purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := st.db.ExecContext(ctx, `DELETE FROM cardauth_tx WHERE expires_at < $1`, st.db.Dialect.Time(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
