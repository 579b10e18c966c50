package twoway

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// Front is a twoway:request received over HTTP-POST (KECIS §15.5.1): the
// requester's order, what it asks, the browser it came with, and — once
// the remitter confirmed the prefilled form — the customer and the
// engine's request it became.
type Front struct {
	ID        string
	Requester string // the caller (KECIS §13.1) that owns the request
	Order     string // Ecom/@ConsumerOrderID
	// RequestID is the SAML request the answer is InResponseTo;
	// RelayState goes back with the answer.
	RequestID      string
	IdempotencyKey string
	RelayState     string
	// Binding is a keyed hash of the browser's cookie (frontCookie).
	Binding []byte
	// Fingerprint is a keyed hash of what the request asks: a repeat of
	// the order with the same key and content resumes it.
	Fingerprint  []byte
	Amount       ecml.Money
	PayeeBank    string
	PayeeAccount ecml.Secret
	PayeePhone   string // E.164
	PayeeName    string // the payee's name as the requester expects it, optional
	Purpose      string
	Terms        *ecml.Terms
	Customer     string
	Transfer     string // the engine's Request.ID
	Answer       []byte // the signed answer, once made
	Destination  string // where the answer is posted
	AnswerState  string // the state the answer told (KECIS §15.5.1)
	Created      time.Time
	Expires      time.Time
}

// FrontStore keeps the front-channel requests; *SQLStore implements it.
type FrontStore interface {
	// CreateFront stores a new request; ErrExists when the requester's
	// order is taken.
	CreateFront(ctx context.Context, f *Front) error
	Front(ctx context.Context, id string) (*Front, error)
	FrontByOrder(ctx context.Context, requester, order string) (*Front, error)
	FrontByTransfer(ctx context.Context, transfer string) (*Front, error)
	// RebindFront moves an unanswered request to a new SAML request and
	// browser (the requester sent the same order again); ErrConflict once
	// answered.
	RebindFront(ctx context.Context, id, requestID, relayState string, binding []byte) error
	// BindFront records the remitter and the engine's request, once;
	// ErrConflict when it is bound to another.
	BindFront(ctx context.Context, id, customer, transfer string) error
	// SetFrontAnswer records the signed answer and the state it tells,
	// once; ErrConflict when
	// one is recorded.
	SetFrontAnswer(ctx context.Context, id string, answer []byte, destination, state string) error
}

var _ FrontStore = (*SQLStore)(nil)

type frontSealed struct {
	Account string `json:"a"`
	Phone   string `json:"p"`
	Name    string `json:"n"`
}

const frontColumns = `id, requester, order_id, request_id, idempotency_key, relay_state, binding, fingerprint, amount, currency,
	payee_bank, payee_ref, sealed, purpose, terms, customer, transfer_id, answer, destination, answer_state, created_at, expires_at`

// CreateFront implements FrontStore.
func (st *SQLStore) CreateFront(ctx context.Context, f *Front) error {
	b, err := json.Marshal(frontSealed{Account: f.PayeeAccount.Reveal(), Phone: f.PayeePhone, Name: f.PayeeName})
	if err != nil {
		return err
	}
	sealed, err := st.sealer.Seal(b, []byte("twoway-front:"+f.ID))
	if err != nil {
		return err
	}
	terms, err := termsJSON(f.Terms)
	if err != nil {
		return err
	}
	d := st.db.Dialect
	err = st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO twoway_front (`+frontColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
			f.ID, f.Requester, f.Order, f.RequestID, f.IdempotencyKey, f.RelayState, sqlstore.Bytes(f.Binding),
			sqlstore.Bytes(f.Fingerprint), f.Amount.Minor, f.Amount.Currency, f.PayeeBank, MaskAccount(f.PayeeAccount), sealed,
			f.Purpose, terms, f.Customer, f.Transfer, sqlstore.Bytes(f.Answer), f.Destination, f.AnswerState, d.Time(f.Created), d.Time(f.Expires))
		return err
	})
	if sqlstore.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// Front implements FrontStore.
func (st *SQLStore) Front(ctx context.Context, id string) (*Front, error) {
	return st.oneFront(ctx, `SELECT `+frontColumns+` FROM twoway_front WHERE id = $1`, id)
}

// FrontByOrder implements FrontStore.
func (st *SQLStore) FrontByOrder(ctx context.Context, requester, order string) (*Front, error) {
	return st.oneFront(ctx, `SELECT `+frontColumns+` FROM twoway_front WHERE requester = $1 AND order_id = $2`, requester, order)
}

// FrontByTransfer implements FrontStore.
func (st *SQLStore) FrontByTransfer(ctx context.Context, transfer string) (*Front, error) {
	if transfer == "" {
		return nil, ErrNotFound
	}
	return st.oneFront(ctx, `SELECT `+frontColumns+` FROM twoway_front WHERE transfer_id = $1`, transfer)
}

// RebindFront implements FrontStore.
func (st *SQLStore) RebindFront(ctx context.Context, id, requestID, relayState string, binding []byte) error {
	return st.frontExec(ctx, `UPDATE twoway_front SET request_id = $1, relay_state = $2, binding = $3 WHERE id = $4 AND destination = ''`,
		requestID, relayState, sqlstore.Bytes(binding), id)
}

// BindFront implements FrontStore.
func (st *SQLStore) BindFront(ctx context.Context, id, customer, transfer string) error {
	return st.frontExec(ctx, `UPDATE twoway_front SET customer = $1, transfer_id = $2 WHERE id = $3 AND (transfer_id = '' OR transfer_id = $2)`,
		customer, transfer, id)
}

// SetFrontAnswer implements FrontStore.
func (st *SQLStore) SetFrontAnswer(ctx context.Context, id string, answer []byte, destination, state string) error {
	return st.frontExec(ctx, `UPDATE twoway_front SET answer = $1, destination = $2, answer_state = $3 WHERE id = $4 AND destination = ''`,
		sqlstore.Bytes(answer), destination, state, id)
}

func (st *SQLStore) frontExec(ctx context.Context, q string, args ...any) error {
	return st.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return sqlstore.ExecOne(ctx, tx, ErrConflict, q, args...)
	})
}

func (st *SQLStore) oneFront(ctx context.Context, q string, args ...any) (*Front, error) {
	f := &Front{}
	var terms string
	var sealed []byte
	err := st.db.QueryRowContext(ctx, q, args...).Scan(&f.ID, &f.Requester, &f.Order, &f.RequestID, &f.IdempotencyKey,
		&f.RelayState, &f.Binding, &f.Fingerprint, &f.Amount.Minor, &f.Amount.Currency, &f.PayeeBank, new(string), &sealed,
		&f.Purpose, &terms, &f.Customer, &f.Transfer, &f.Answer, &f.Destination, &f.AnswerState, sqlstore.ScanTime(&f.Created),
		sqlstore.ScanTime(&f.Expires))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if f.Terms, err = parseTerms(terms); err != nil {
		return nil, err
	}
	b, err := st.sealer.Open(sealed, []byte("twoway-front:"+f.ID))
	if err != nil {
		return nil, fmt.Errorf("twoway: front request %s: sealed numbers: %w", f.ID, err)
	}
	var s frontSealed
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("twoway: front request %s: sealed numbers: %w", f.ID, err)
	}
	f.PayeeAccount, f.PayeePhone, f.PayeeName = ecml.Secret(s.Account), s.Phone, s.Name
	return f, nil
}
