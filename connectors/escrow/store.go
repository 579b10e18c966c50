package escrow

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-escrow"

var (
	errNoRow  = errors.New("escrow: no such row")
	errExists = errors.New("escrow: the merchant's order exists")
)

// sqlStore keeps escrows and their event table in the adapter's database
// (SQLite or PostgreSQL).
type sqlStore struct {
	db     *sqlstore.DB
	sealer *store.Sealer
}

func newSQLStore(ctx context.Context, db *sqlstore.DB, sealer *store.Sealer) (*sqlStore, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, fmt.Errorf("escrow: migrations: %w", err)
	}
	return &sqlStore{db: db, sealer: sealer}, nil
}

// sealedParts are the escrow's account numbers as sealed at rest.
type sealedParts struct {
	Settlement string `json:"s"`
	Buyer      string `json:"b,omitempty"`
}

func sealAD(ref string) []byte { return []byte("escrow:" + ref) }

func (st *sqlStore) seal(x *Escrow) ([]byte, error) {
	b, err := json.Marshal(sealedParts{Settlement: x.SettlementAccount.Reveal(), Buyer: x.BuyerAccount.Reveal()})
	if err != nil {
		return nil, err
	}
	return st.sealer.Seal(b, sealAD(x.Reference))
}

func (st *sqlStore) open(x *Escrow, sealed []byte) error {
	b, err := st.sealer.Open(sealed, sealAD(x.Reference))
	if err != nil {
		return fmt.Errorf("escrow %s: sealed numbers: %w", x.Reference, err)
	}
	var p sealedParts
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("escrow %s: sealed numbers: %w", x.Reference, err)
	}
	x.SettlementAccount, x.BuyerAccount = ecml.Secret(p.Settlement), ecml.Secret(p.Buyer)
	return nil
}

const columns = `reference, merchant, order_id, hold, amount, currency, goods, state, version, settlement_bank,
	settlement_ref, payee_name, buyer, buyer_ref, sealed, carrier, tracking, pay_by, shipped_at, confirm_by, reason, auto,
	resolver, owed, payments, fund_ref, release_ref, refund_ref, attempts, retry_at, open_key, created_at, updated_at`

// masked is the mask of an account kept next to the sealed number (empty for
// none).
func masked(a ecml.Secret) string {
	if a == "" {
		return ""
	}
	return ecml.MaskAccount(a.Reveal())
}

// create inserts x (version 1) and its first event; errExists when the
// merchant's order exists.
func (st *sqlStore) create(ctx context.Context, x *Escrow, ev *Event) error {
	x.Version = 1
	sealed, err := st.seal(x)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	err = st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO escrow_order (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)`,
			x.Reference, x.Merchant, x.Order, x.Hold, x.Amount.Minor, x.Amount.Currency, x.Goods, string(x.State), x.Version,
			x.SettlementBank, masked(x.SettlementAccount), x.PayeeName, x.Buyer, masked(x.BuyerAccount), sealed, x.Carrier,
			x.Tracking, d.Time(x.PayBy), d.Time(x.ShippedAt), d.Time(x.ConfirmBy), x.Reason, x.Auto, x.Resolver, string(x.Owed),
			x.Payments, x.FundRef, x.ReleaseRef, x.RefundRef, x.Attempts, d.Time(x.Retry), x.OpenKey, d.Time(x.Created), d.Time(x.Updated)); err != nil {
			return err
		}
		return st.append(ctx, tx, x.Reference, ev)
	})
	if sqlstore.IsUniqueViolation(err) {
		x.Version = 0
		return errExists
	}
	if err != nil {
		x.Version = 0
	}
	return err
}

// update writes x and appends ev (if any), in one transaction, if the
// stored version is still x.Version, and increments x.Version;
// ErrConflict otherwise.
func (st *sqlStore) update(ctx context.Context, x *Escrow, ev *Event) error {
	sealed, err := st.seal(x)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	err = st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if err := sqlstore.ExecOne(ctx, tx, ErrConflict, `UPDATE escrow_order SET version = $1, state = $2, buyer = $3, buyer_ref = $4,
			sealed = $5, carrier = $6, tracking = $7, shipped_at = $8, confirm_by = $9, reason = $10, auto = $11,
			resolver = $12, owed = $13, fund_ref = $14, release_ref = $15, refund_ref = $16, attempts = $17, retry_at = $18,
			updated_at = $19, payments = $20 WHERE reference = $21 AND version = $22`,
			x.Version+1, string(x.State), x.Buyer, masked(x.BuyerAccount), sealed, x.Carrier, x.Tracking, d.Time(x.ShippedAt),
			d.Time(x.ConfirmBy), x.Reason, x.Auto, x.Resolver, string(x.Owed), x.FundRef, x.ReleaseRef, x.RefundRef,
			x.Attempts, d.Time(x.Retry), d.Time(x.Updated), x.Payments, x.Reference, x.Version); err != nil {
			return err
		}
		return st.append(ctx, tx, x.Reference, ev)
	})
	if err != nil {
		return err
	}
	x.Version++
	return nil
}

// append writes ev after the escrow's last event. The row's update in the
// same transaction (or its insert) serialises appends to one escrow.
func (st *sqlStore) append(ctx context.Context, tx *sql.Tx, ref string, ev *Event) error {
	if ev == nil {
		return nil
	}
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM escrow_event WHERE reference = $1`, ref).Scan(&seq); err != nil {
		return err
	}
	detail, err := json.Marshal(ev.Detail)
	if err != nil {
		return err
	}
	ev.Seq = seq + 1
	_, err = tx.ExecContext(ctx, `INSERT INTO escrow_event (reference, seq, kind, from_state, to_state, at, actor, detail, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ref, ev.Seq, ev.Kind, string(ev.From), string(ev.To), st.db.Dialect.Time(ev.At), ev.Actor, string(detail), ev.Record)
	return err
}

func (st *sqlStore) get(ctx context.Context, ref string) (*Escrow, error) {
	return st.one(ctx, `SELECT `+columns+` FROM escrow_order WHERE reference = $1`, ref)
}

func (st *sqlStore) byOrder(ctx context.Context, merchant, order string) (*Escrow, error) {
	return st.one(ctx, `SELECT `+columns+` FROM escrow_order WHERE merchant = $1 AND order_id = $2`, merchant, order)
}

func (st *sqlStore) byBuyer(ctx context.Context, customer string, limit int) ([]*Escrow, error) {
	return st.many(ctx, `SELECT `+columns+` FROM escrow_order WHERE buyer = $1 ORDER BY created_at DESC, reference LIMIT $2`, customer, limit)
}

// due lists up to limit escrows that may owe work at now: an owed ledger
// call due, a shipped escrow past its deadline, an unpaid order past its
// pay-by time.
func (st *sqlStore) due(ctx context.Context, now time.Time, limit int) ([]*Escrow, error) {
	t := st.db.Dialect.Time(now)
	return st.many(ctx, `SELECT `+columns+` FROM escrow_order
		WHERE (owed <> '' OR state IN ('awaiting-payment', 'shipped'))
		  AND ((owed <> '' AND retry_at <= $1)
		    OR (owed = '' AND state = 'shipped' AND confirm_by <= $1)
		    OR (owed = '' AND state = 'awaiting-payment' AND pay_by <= $1))
		ORDER BY updated_at, reference LIMIT $2`, t, limit)
}

func (st *sqlStore) one(ctx context.Context, q string, args ...any) (*Escrow, error) {
	x, err := st.scan(st.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	return x, err
}

func (st *sqlStore) many(ctx context.Context, q string, args ...any) ([]*Escrow, error) {
	rows, err := st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Escrow
	for rows.Next() {
		x, err := st.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (st *sqlStore) scan(row interface{ Scan(...any) error }) (*Escrow, error) {
	x := &Escrow{}
	var state, owed, settlementRef, buyerRef string
	var sealed []byte
	if err := row.Scan(&x.Reference, &x.Merchant, &x.Order, &x.Hold, &x.Amount.Minor, &x.Amount.Currency, &x.Goods, &state,
		&x.Version, &x.SettlementBank, &settlementRef, &x.PayeeName, &x.Buyer, &buyerRef, &sealed, &x.Carrier, &x.Tracking,
		sqlstore.ScanTime(&x.PayBy), sqlstore.ScanTime(&x.ShippedAt), sqlstore.ScanTime(&x.ConfirmBy), &x.Reason, &x.Auto,
		&x.Resolver, &owed, &x.Payments, &x.FundRef, &x.ReleaseRef, &x.RefundRef, &x.Attempts, sqlstore.ScanTime(&x.Retry), &x.OpenKey,
		sqlstore.ScanTime(&x.Created), sqlstore.ScanTime(&x.Updated)); err != nil {
		return nil, err
	}
	x.State, x.Owed = State(state), Owed(owed)
	if err := st.open(x, sealed); err != nil {
		return nil, err
	}
	return x, nil
}

// events returns the escrow's events, oldest first.
func (st *sqlStore) events(ctx context.Context, ref string) ([]Event, error) {
	return st.eventsQuery(ctx, `SELECT seq, kind, from_state, to_state, at, actor, detail, record FROM escrow_event
		WHERE reference = $1 ORDER BY seq`, ref)
}

// lastEvents returns the escrow's last n events, oldest first.
func (st *sqlStore) lastEvents(ctx context.Context, ref string, n int) ([]Event, error) {
	ev, err := st.eventsQuery(ctx, `SELECT seq, kind, from_state, to_state, at, actor, detail, record FROM escrow_event
		WHERE reference = $1 ORDER BY seq DESC LIMIT $2`, ref, n)
	for i, j := 0, len(ev)-1; i < j; i, j = i+1, j-1 {
		ev[i], ev[j] = ev[j], ev[i]
	}
	return ev, err
}

func (st *sqlStore) eventsQuery(ctx context.Context, q string, args ...any) ([]Event, error) {
	rows, err := st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var from, to, detail string
		if err := rows.Scan(&e.Seq, &e.Kind, &from, &to, sqlstore.ScanTime(&e.At), &e.Actor, &detail, &e.Record); err != nil {
			return nil, err
		}
		e.From, e.To = State(from), State(to)
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("escrow: event %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
