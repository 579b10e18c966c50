package twoway

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-twoway"

// Errors of a Store.
var (
	ErrNotFound = errors.New("twoway: no such request")
	// ErrExists: the customer already has a request with the key.
	ErrExists = errors.New("twoway: the idempotency key is in use")
	// ErrConflict: the request changed since it was read.
	ErrConflict = errors.New("twoway: the request changed")
	// ErrReplySeen: the reply (by its gateway id) was judged already.
	ErrReplySeen = errors.New("twoway: reply already received")
)

// Store keeps requests and their evidence log. Implementations are safe
// for concurrent use; two engines on one database never both win an
// Update.
type Store interface {
	// Create stores a new request and its first events; ErrExists when
	// the customer's idempotency key is taken.
	Create(ctx context.Context, r *Request, ev ...Event) error
	Get(ctx context.Context, id string) (*Request, error)
	// ByKey returns the customer's request with an idempotency key.
	ByKey(ctx context.Context, customer, key string) (*Request, error)
	// Update writes r and appends ev, in one transaction, if the stored
	// version is still r.Version, and increments r.Version; ErrConflict
	// otherwise, ErrReplySeen when an event's reply id was recorded.
	Update(ctx context.Context, r *Request, ev ...Event) error
	// Record appends events without changing the request; ErrReplySeen as
	// Update.
	Record(ctx context.Context, id string, ev ...Event) error
	// Open lists up to limit requests that still owe work (not ended, or
	// the remitter not yet texted); its cost does not grow with finished
	// requests (a partial index).
	Open(ctx context.Context, limit int) ([]*Request, error)
	// ByMessage returns the request whose code text had the gateway id.
	ByMessage(ctx context.Context, messageID string) (*Request, error)
	// ByPhone lists up to limit requests to a payee phone (by keyed hash),
	// newest first.
	ByPhone(ctx context.Context, phoneMAC []byte, limit int) ([]*Request, error)
	// Events returns the request's evidence log in order.
	Events(ctx context.Context, id string) ([]Event, error)
}

// SQLStore is the Store in the bank's SQL database (SQLite or
// PostgreSQL).
type SQLStore struct {
	db     *sqlstore.DB
	sealer *store.Sealer
	key    []byte
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore migrates the twoway tables in db and returns the store.
// sealer seals account and phone numbers (the bank's at-rest key); key
// (at least 32 bytes, the engine's Config.Key) keys the hashes by which
// the store finds a payee's account and phone.
func NewSQLStore(ctx context.Context, db *sqlstore.DB, sealer *store.Sealer, key []byte) (*SQLStore, error) {
	if sealer == nil || len(key) < 32 {
		return nil, errors.New("twoway: a sealer and a key of at least 32 bytes are required")
	}
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return &SQLStore{db: db, sealer: sealer, key: key}, nil
}

// PhoneMAC is the keyed hash by which requests are found by a payee's
// phone (E.164).
func PhoneMAC(key []byte, e164 string) []byte { return mac(key, "kecis twoway phone", e164) }

func accountMAC(key []byte, bank string, number ecml.Secret) []byte {
	return mac(key, "kecis twoway account", bank, digitsOnly(number.Reveal()))
}

// sealedParts are the request's numbers as sealed at rest.
type sealedParts struct {
	RemitterAccount string `json:"ra"`
	RemitterPhone   string `json:"rp"`
	PayeeAccount    string `json:"pa"`
	PayeePhone      string `json:"pp"`
}

func (st *SQLStore) seal(r *Request) ([]byte, error) {
	b, err := json.Marshal(sealedParts{RemitterAccount: r.RemitterAccount.Reveal(), RemitterPhone: r.RemitterPhone,
		PayeeAccount: r.PayeeAccount.Reveal(), PayeePhone: r.PayeePhone})
	if err != nil {
		return nil, err
	}
	return st.sealer.Seal(b, []byte("twoway:"+r.ID))
}

func (st *SQLStore) open(r *Request, sealed []byte) error {
	b, err := st.sealer.Open(sealed, []byte("twoway:"+r.ID))
	if err != nil {
		return fmt.Errorf("twoway: request %s: sealed numbers: %w", r.ID, err)
	}
	var p sealedParts
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("twoway: request %s: sealed numbers: %w", r.ID, err)
	}
	r.RemitterAccount, r.RemitterPhone = ecml.Secret(p.RemitterAccount), p.RemitterPhone
	r.PayeeAccount, r.PayeePhone = ecml.Secret(p.PayeeAccount), p.PayeePhone
	return nil
}

func termsJSON(t *ecml.Terms) (string, error) {
	if t == nil {
		return "", nil
	}
	b, err := json.Marshal(map[string]string{"principal": t.Principal, "currency": t.Currency,
		"repayment_date": t.RepaymentDate, "interest_rate": t.InterestRate, "text": t.Text})
	return string(b), err
}

func parseTerms(s string) (*ecml.Terms, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("twoway: stored terms: %w", err)
	}
	return &ecml.Terms{Principal: m["principal"], Currency: m["currency"], RepaymentDate: m["repayment_date"],
		InterestRate: m["interest_rate"], Text: m["text"]}, nil
}

const columns = `id, customer, idempotency_key, version, state, remitter_bank, remitter_name, remitter_ref, amount,
	currency, payee_bank, payee_ref, payee_account_mac, payee_phone_mac, sealed, purpose, terms, holder_name,
	name_check, nonce, code_mac, attempts, max_attempts, code_message, deadline, confirmed_at, replied_at, reply_id,
	debit_ref, credit_ref, reversal_done, reason, notified, created_at, updated_at`

// Create implements Store.
func (st *SQLStore) Create(ctx context.Context, r *Request, ev ...Event) error {
	sealed, err := st.seal(r)
	if err != nil {
		return err
	}
	terms, err := termsJSON(r.Terms)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	err = st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO twoway_request (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31,
			$32, $33, $34, $35)`,
			r.ID, r.Customer, r.IdempotencyKey, r.Version, string(r.State), r.RemitterBank, r.RemitterName,
			MaskAccount(r.RemitterAccount), r.Amount.Minor, r.Amount.Currency, r.PayeeBank, MaskAccount(r.PayeeAccount),
			accountMAC(st.key, r.PayeeBank, r.PayeeAccount), PhoneMAC(st.key, r.PayeePhone), sealed, r.Purpose, terms,
			r.HolderName, string(r.NameCheck), sqlstore.Bytes(r.Nonce), sqlstore.Bytes(r.CodeMAC), r.Attempts, r.MaxAttempts,
			r.CodeMessage, d.Time(r.Deadline), d.Time(r.ConfirmedAt), d.Time(r.RepliedAt), r.ReplyID, r.DebitRef,
			r.CreditRef, r.ReversalDone, r.Reason, r.Notified, d.Time(r.Created), d.Time(r.Updated)); err != nil {
			return err
		}
		return st.append(ctx, tx, r.ID, ev)
	})
	if sqlstore.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// append writes events after the request's last.
func (st *SQLStore) append(ctx context.Context, tx *sql.Tx, id string, ev []Event) error {
	if len(ev) == 0 {
		return nil
	}
	if st.db.Dialect == sqlstore.Postgres {
		// Appends to one request queue on its row (SQLite has one writer).
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT version FROM twoway_request WHERE id = $1 FOR UPDATE`, id).Scan(&v); err != nil {
			return err
		}
	}
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM twoway_event WHERE request_id = $1`, id).Scan(&seq); err != nil {
		return err
	}
	for _, e := range ev {
		seq++
		detail, err := json.Marshal(e.Detail)
		if err != nil {
			return err
		}
		var reply any
		if e.ReplyID != "" {
			reply = e.ReplyID
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO twoway_event (request_id, seq, kind, at, detail, reply_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, seq, e.Kind, st.db.Dialect.Time(e.At), string(detail), reply)
		if e.ReplyID != "" && sqlstore.IsUniqueViolation(err) {
			return ErrReplySeen
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Get implements Store.
func (st *SQLStore) Get(ctx context.Context, id string) (*Request, error) {
	return st.one(ctx, `SELECT `+columns+` FROM twoway_request WHERE id = $1`, id)
}

// ByKey implements Store.
func (st *SQLStore) ByKey(ctx context.Context, customer, key string) (*Request, error) {
	if key == "" {
		return nil, ErrNotFound
	}
	return st.one(ctx, `SELECT `+columns+` FROM twoway_request WHERE customer = $1 AND idempotency_key = $2`, customer, key)
}

// ByMessage implements Store.
func (st *SQLStore) ByMessage(ctx context.Context, messageID string) (*Request, error) {
	if messageID == "" {
		return nil, ErrNotFound
	}
	return st.one(ctx, `SELECT `+columns+` FROM twoway_request WHERE code_message = $1`, messageID)
}

func (st *SQLStore) one(ctx context.Context, q string, args ...any) (*Request, error) {
	r, err := st.scan(st.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// Update implements Store.
func (st *SQLStore) Update(ctx context.Context, r *Request, ev ...Event) error {
	d := st.db.Dialect
	err := st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if err := sqlstore.ExecOne(ctx, tx, ErrConflict, `UPDATE twoway_request SET version = $1, state = $2, holder_name = $3,
			name_check = $4, nonce = $5, code_mac = $6, attempts = $7, code_message = $8, deadline = $9,
			confirmed_at = $10, replied_at = $11, reply_id = $12, debit_ref = $13, credit_ref = $14,
			reversal_done = $15, reason = $16, notified = $17, updated_at = $18
			WHERE id = $19 AND version = $20`,
			r.Version+1, string(r.State), r.HolderName, string(r.NameCheck), sqlstore.Bytes(r.Nonce), sqlstore.Bytes(r.CodeMAC),
			r.Attempts, r.CodeMessage, d.Time(r.Deadline), d.Time(r.ConfirmedAt), d.Time(r.RepliedAt), r.ReplyID,
			r.DebitRef, r.CreditRef, r.ReversalDone, r.Reason, r.Notified, d.Time(r.Updated), r.ID, r.Version); err != nil {
			return err
		}
		return st.append(ctx, tx, r.ID, ev)
	})
	if err != nil {
		return err
	}
	r.Version++
	return nil
}

// Record implements Store.
func (st *SQLStore) Record(ctx context.Context, id string, ev ...Event) error {
	return st.db.WriteTx(ctx, func(tx *sql.Tx) error { return st.append(ctx, tx, id, ev) })
}

// Open implements Store.
func (st *SQLStore) Open(ctx context.Context, limit int) ([]*Request, error) {
	cond := "notified = 0"
	if st.db.Dialect == sqlstore.Postgres {
		cond = "NOT notified"
	}
	return st.many(ctx, `SELECT `+columns+` FROM twoway_request WHERE `+cond+` ORDER BY updated_at LIMIT $1`, limit)
}

// ByPhone implements Store.
func (st *SQLStore) ByPhone(ctx context.Context, phoneMAC []byte, limit int) ([]*Request, error) {
	return st.many(ctx, `SELECT `+columns+` FROM twoway_request WHERE payee_phone_mac = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
		phoneMAC, limit)
}

func (st *SQLStore) many(ctx context.Context, q string, args ...any) ([]*Request, error) {
	rows, err := st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Request
	for rows.Next() {
		r, err := st.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Events implements Store.
func (st *SQLStore) Events(ctx context.Context, id string) ([]Event, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT seq, kind, at, detail, COALESCE(reply_id, '') FROM twoway_event WHERE request_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var detail string
		if err := rows.Scan(&e.Seq, &e.Kind, sqlstore.ScanTime(&e.At), &detail, &e.ReplyID); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("twoway: event %d of %s: %w", e.Seq, id, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (st *SQLStore) scan(row interface{ Scan(...any) error }) (*Request, error) {
	r := &Request{}
	var state, nameCheck, terms, remitterRef, payeeRef string
	var accountMAC, phoneMAC, sealed []byte
	if err := row.Scan(&r.ID, &r.Customer, &r.IdempotencyKey, &r.Version, &state, &r.RemitterBank, &r.RemitterName,
		&remitterRef, &r.Amount.Minor, &r.Amount.Currency, &r.PayeeBank, &payeeRef, &accountMAC, &phoneMAC, &sealed,
		&r.Purpose, &terms, &r.HolderName, &nameCheck, &r.Nonce, &r.CodeMAC, &r.Attempts, &r.MaxAttempts, &r.CodeMessage,
		sqlstore.ScanTime(&r.Deadline), sqlstore.ScanTime(&r.ConfirmedAt), sqlstore.ScanTime(&r.RepliedAt), &r.ReplyID,
		&r.DebitRef, &r.CreditRef, &r.ReversalDone, &r.Reason, &r.Notified, sqlstore.ScanTime(&r.Created),
		sqlstore.ScanTime(&r.Updated)); err != nil {
		return nil, err
	}
	r.State, r.NameCheck = State(state), NameCheck(nameCheck)
	var err error
	if r.Terms, err = parseTerms(terms); err != nil {
		return nil, err
	}
	if err := st.open(r, sealed); err != nil {
		return nil, err
	}
	return r, nil
}
