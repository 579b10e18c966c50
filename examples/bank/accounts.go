package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// AccountStatus is an account's state.
type AccountStatus string

const (
	AccountActive AccountStatus = "active"
	AccountClosed AccountStatus = "closed"
)

// Account is a customer's account as the bank shows it: the number only
// as its last four digits.
type Account struct {
	ID            string
	CustomerID    string
	Holder        string // the customer's name
	Last4         string
	Currency      string
	Balance       int64 // won
	Status        AccountStatus
	TransferLimit int64 // the largest transfer out, won
	CreatedAt     time.Time
}

// Masked is the account number as pages and logs show it.
func (a *Account) Masked() string { return ecml.MaskAccount(a.Last4) }

// OpenAccountRequest opens an account for a customer.
type OpenAccountRequest struct {
	CustomerID string
	// Number is the account number to give it (6 to 20 digits, hyphens
	// allowed: a demo's fixed numbers); empty draws 12 random digits.
	Number ecml.Secret
	// TransferLimit is the per-transfer limit; 0 takes
	// Config.DefaultTransferLimit.
	TransferLimit  int64
	IdempotencyKey string
}

// OpenedAccount is a new account with its number, shown this once (and to
// an idempotent repeat); Number prints masked.
type OpenedAccount struct {
	Account
	Number ecml.Secret
}

// OpenAccount opens a KRW account for a customer (an administrative
// operation), its number sealed and indexed by keyed hash (KECIS §8.1).
// Idempotent by key; a number in use is INVALID_REQUEST.
func (b *Bank) OpenAccount(ctx context.Context, req OpenAccountRequest) (*OpenedAccount, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if req.TransferLimit < 0 {
		return nil, invalid("the transfer limit must not be negative")
	}
	if req.TransferLimit == 0 {
		req.TransferLimit = b.defLimit
	}
	given := ""
	if n := req.Number.Reveal(); n != "" {
		d, ok := ecml.AccountDigits(n)
		if !ok {
			return nil, invalid("an account number is 6 to 20 digits, optionally grouped with single hyphens")
		}
		given = d
	}
	now := b.now()
	fp := b.vault.fingerprint(opOpenAccount, req.CustomerID, given, strconv.FormatInt(req.TransferLimit, 10))
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opOpenAccount, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM bank_customers WHERE id = $1`, req.CustomerID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return "", newError(CodeNotFound, "no such customer"), nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("bank: read customer: %w", err)
		}
		digits := given
		for try := 0; digits == "" || try == 0; try++ {
			if digits == "" {
				if digits, err = randomDigits(b.rand, 12); err != nil {
					return "", nil, err
				}
			}
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM bank_accounts WHERE number_hash = $1`, b.vault.numberHash(digits)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			if err != nil {
				return "", nil, fmt.Errorf("bank: check account number: %w", err)
			}
			if given != "" {
				return "", invalid("the account number is in use"), nil
			}
			if try > 20 {
				return "", nil, errors.New("bank: no free account number found")
			}
			digits = ""
		}
		id, err := newID(b.rand, "acc")
		if err != nil {
			return "", nil, err
		}
		enc, err := b.vault.seal(digits, "account:"+id)
		if err != nil {
			return "", nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bank_accounts (id, kind, customer_id, number_hash, number_enc, last4,
			currency, balance, status, transfer_limit, created_at, updated_at)
			VALUES ($1, 'customer', $2, $3, $4, $5, $6, 0, 'active', $7, $8, $8)`,
			id, req.CustomerID, b.vault.numberHash(digits), enc, digits[len(digits)-4:], Currency, req.TransferLimit, b.t(now)); err != nil {
			return "", nil, fmt.Errorf("bank: insert account: %w", err)
		}
		return id, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	a, err := b.Account(ctx, out.ref)
	if err != nil {
		return nil, err
	}
	num, err := b.accountNumber(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if !out.replayed {
		b.log.InfoContext(ctx, "account opened", "account", a.ID, "customer", a.CustomerID, "last4", a.Last4)
	}
	return &OpenedAccount{Account: *a, Number: ecml.Secret(FormatAccount(num))}, nil
}

// AccountNumber returns an account's number, for its holder's own page.
func (b *Bank) AccountNumber(ctx context.Context, id string) (ecml.Secret, error) {
	n, err := b.accountNumber(ctx, id)
	return ecml.Secret(FormatAccount(n)), err
}

func (b *Bank) accountNumber(ctx context.Context, id string) (string, error) {
	var enc []byte
	err := b.db.QueryRowContext(ctx, `SELECT number_enc FROM bank_accounts WHERE id = $1 AND kind = 'customer'`, id).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", newError(CodeNotFound, "no such account")
	}
	if err != nil {
		return "", fmt.Errorf("bank: read account: %w", err)
	}
	return b.vault.open(enc, "account:"+id)
}

const accountCols = `a.id, a.customer_id, c.name, a.last4, a.currency, a.balance, a.status, a.transfer_limit, a.created_at`

func scanAccount(row interface{ Scan(...any) error }) (*Account, error) {
	var a Account
	var status string
	err := row.Scan(&a.ID, &a.CustomerID, &a.Holder, &a.Last4, &a.Currency, &a.Balance, &status, &a.TransferLimit,
		sqlstore.ScanTime(&a.CreatedAt))
	a.Status = AccountStatus(status)
	return &a, err
}

// Account returns a customer account; NOT_FOUND if there is none.
func (b *Bank) Account(ctx context.Context, id string) (*Account, error) {
	return b.accountWhere(ctx, b.db, `a.id = $1`, id)
}

func (b *Bank) accountWhere(ctx context.Context, q sqlstore.Queryer, where string, arg any) (*Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM bank_accounts a
		JOIN bank_customers c ON c.id = a.customer_id WHERE a.kind = 'customer' AND `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such account")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read account: %w", err)
	}
	return a, nil
}

// Accounts lists a customer's accounts ("" for every customer account),
// oldest first.
func (b *Bank) Accounts(ctx context.Context, customerID string) ([]*Account, error) {
	q := `SELECT ` + accountCols + ` FROM bank_accounts a JOIN bank_customers c ON c.id = a.customer_id
		WHERE a.kind = 'customer' AND (a.customer_id = $1 OR $1 = '') ORDER BY a.created_at, a.id LIMIT 500`
	rows, err := b.db.QueryContext(ctx, q, customerID)
	if err != nil {
		return nil, fmt.Errorf("bank: list accounts: %w", err)
	}
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("bank: list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FindAccount returns the account with a number, active or closed;
// NO_SUCH_ACCOUNT if this bank has none.
func (b *Bank) FindAccount(ctx context.Context, number ecml.Secret) (*Account, error) {
	d, ok := ecml.AccountDigits(number.Reveal())
	if !ok {
		return nil, noSuchAccount()
	}
	a, err := b.accountWhere(ctx, b.db, `a.number_hash = $1`, b.vault.numberHash(d))
	if errors.Is(err, ErrNotFound) {
		return nil, noSuchAccount()
	}
	return a, err
}

// Holder returns the holder's name of an active account (예금주 조회, KECIS
// §15.9); an unknown or closed account is NO_SUCH_ACCOUNT. It changes
// nothing.
func (b *Bank) Holder(ctx context.Context, number ecml.Secret) (string, error) {
	a, err := b.FindAccount(ctx, number)
	if err != nil {
		return "", err
	}
	if a.Status != AccountActive {
		return "", noSuchAccount()
	}
	return a.Holder, nil
}

// CloseAccount closes an account whose balance is zero (administrative;
// idempotent by key). A closed account takes no movement and reads, to
// other banks, as no account at all.
func (b *Bank) CloseAccount(ctx context.Context, id, idempotencyKey string) (*Account, error) {
	if e := checkKey(idempotencyKey); e != nil {
		return nil, e
	}
	now := b.now()
	out, err := b.idempotent(ctx, scopeBank, idempotencyKey, opCloseAccount, b.vault.fingerprint(opCloseAccount, id), now,
		func(tx *sql.Tx) (string, *Error, error) {
			res, err := tx.ExecContext(ctx, `UPDATE bank_accounts SET status = 'closed', updated_at = $1
				WHERE id = $2 AND kind = 'customer' AND balance = 0`, b.t(now), id)
			if err != nil {
				return "", nil, fmt.Errorf("bank: close account: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if _, err := b.accountWhere(ctx, tx, `a.id = $1`, id); err != nil {
					var be *Error
					if errors.As(err, &be) {
						return "", be, nil
					}
					return "", nil, err
				}
				return "", invalid("only an account with a zero balance can be closed"), nil
			}
			return id, nil, nil
		})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	return b.Account(ctx, id)
}
