package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// Customer is a customer of the bank: the name its accounts are held in,
// the registered phone its SMS go to, and its page login.
type Customer struct {
	ID        string
	Name      string
	Phone     string
	Login     string
	Failures  int  // consecutive wrong passwords
	Locked    bool // login locked after Config.MaxLoginFailures
	CreatedAt time.Time
}

// NewCustomerRequest registers a customer. Password is kept as an
// argon2id hash only.
type NewCustomerRequest struct {
	Name           string
	Phone          string // digits, optionally hyphenated: 010-2345-6789
	Login          string
	Password       ecml.Secret
	IdempotencyKey string
}

// Password length bounds, in characters.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 64
)

// NewCustomer registers a customer (an administrative operation).
// Idempotent by key; a login in use is LOGIN_TAKEN.
func (b *Bank) NewCustomer(ctx context.Context, req NewCustomerRequest) (*Customer, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	name := strings.TrimSpace(req.Name)
	if e := checkText("name", name, 64, true); e != nil {
		return nil, e
	}
	phone, ok := normPhone(req.Phone)
	if !ok {
		return nil, invalid("phone must be a Korean mobile number, 010-0000-0000")
	}
	login := strings.ToLower(strings.TrimSpace(req.Login))
	if len(login) < 3 || len(login) > 32 || strings.Trim(login, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
		return nil, invalid("login must be 3 to 32 letters, digits, '.', '_' or '-'")
	}
	pw := req.Password.Reveal()
	if n := utf8.RuneCountInString(pw); !utf8.ValidString(pw) || n < MinPasswordLen || n > MaxPasswordLen ||
		strings.ContainsFunc(pw, unicode.IsControl) {
		return nil, invalid(fmt.Sprintf("password must be %d to %d characters, no control characters", MinPasswordLen, MaxPasswordLen))
	}
	now := b.now()
	// The fingerprint leaves the password out (its hash is salted); a
	// repeat with another password is the same registration.
	fp := b.vault.fingerprint(opNewCustomer, name, phone, login)
	hash, err := b.passwords.Hash(ctx, pw)
	if err != nil {
		return nil, err
	}
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opNewCustomer, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM bank_customers WHERE login = $1`, login).Scan(&one)
		if err == nil {
			return "", newError(CodeLoginTaken, "the login is taken"), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("bank: check login: %w", err)
		}
		id, err := newID(b.rand, "cus")
		if err != nil {
			return "", nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bank_customers (id, name, phone, login, pw_hash, failures, locked,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7)`, id, name, phone, login, hash, false, b.t(now)); err != nil {
			return "", nil, fmt.Errorf("bank: insert customer: %w", err)
		}
		return id, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	if !out.replayed {
		b.log.InfoContext(ctx, "customer registered", "customer", out.ref, "phone", MaskPhone(phone))
	}
	return b.Customer(ctx, out.ref)
}

// normPhone returns a Korean mobile number as 010-1234-5678.
func normPhone(s string) (string, bool) {
	d := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if !ecml.AllDigits(d) || !strings.HasPrefix(d, "01") || (len(d) != 10 && len(d) != 11) {
		return "", false
	}
	mid := len(d) - 8
	return d[:3] + "-" + d[3:3+mid+1] + "-" + d[len(d)-4:], true
}

const customerCols = `id, name, phone, login, failures, locked, created_at`

func scanCustomer(row interface{ Scan(...any) error }) (*Customer, error) {
	var c Customer
	err := row.Scan(&c.ID, &c.Name, &c.Phone, &c.Login, &c.Failures, &c.Locked, sqlstore.ScanTime(&c.CreatedAt))
	return &c, err
}

// Customer returns a customer; NOT_FOUND if there is none.
func (b *Bank) Customer(ctx context.Context, id string) (*Customer, error) {
	c, err := scanCustomer(b.db.QueryRowContext(ctx, `SELECT `+customerCols+` FROM bank_customers WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such customer")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read customer: %w", err)
	}
	return c, nil
}

// Customers lists the customers, oldest first, at most limit (100 if ≤ 0).
func (b *Bank) Customers(ctx context.Context, limit int) ([]*Customer, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := b.db.QueryContext(ctx, `SELECT `+customerCols+` FROM bank_customers ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("bank: list customers: %w", err)
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, fmt.Errorf("bank: list customers: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// dummyHash is checked for an unknown login, so that its answer takes as
// long as a wrong password's.
const dummyHash = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$0000000000000000000000000000000000000000000"

// Authenticate checks a customer's page login (KECIS §15.5: the remitter
// logs in at its own bank). A wrong password, or an unknown login, is
// LOGIN_FAILED (one answer for both); each wrong password counts — the
// attempt is counted before it is checked, so no burst of concurrent
// guesses gets past the limit — and Config.MaxLoginFailures in a row lock
// the login (LOCKED) until UnlockCustomer. A right one clears the count.
func (b *Bank) Authenticate(ctx context.Context, login string, password ecml.Secret) (*Customer, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	var id, hash string
	var locked bool
	err := b.db.QueryRowContext(ctx, `SELECT id, pw_hash, locked FROM bank_customers WHERE login = $1`, login).Scan(&id, &hash, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = b.passwords.Verify(ctx, dummyHash, password.Reveal())
		return nil, newError(CodeLoginFailed, "wrong login or password")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read customer: %w", err)
	}
	if locked {
		return nil, newError(CodeLocked, "the login is locked after repeated failures; ask the bank to unlock it")
	}
	now := b.now()
	var left int
	err = b.write(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `UPDATE bank_customers SET failures = failures + 1, locked = (failures + 1 >= $1),
			updated_at = $2 WHERE id = $3 AND NOT locked RETURNING failures`, b.maxFail, b.t(now), id).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			locked = true
			return nil
		}
		left = b.maxFail - n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bank: count login attempt: %w", err)
	}
	if locked {
		return nil, newError(CodeLocked, "the login is locked after repeated failures; ask the bank to unlock it")
	}
	ok, err := b.passwords.Verify(ctx, hash, password.Reveal())
	if err != nil {
		return nil, fmt.Errorf("bank: check password: %w", err)
	}
	if !ok {
		b.log.WarnContext(ctx, "login failed", "customer", id, "left", max(left, 0))
		if left <= 0 {
			b.log.WarnContext(ctx, "login locked after repeated failures", "customer", id)
		}
		return nil, newError(CodeLoginFailed, "wrong login or password")
	}
	if err := b.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE bank_customers SET failures = 0, locked = $1, updated_at = $2 WHERE id = $3`,
			false, b.t(now), id)
		return err
	}); err != nil {
		return nil, fmt.Errorf("bank: clear login failures: %w", err)
	}
	return b.Customer(ctx, id)
}

// UnlockCustomer clears a customer's login failures and lock (admin).
func (b *Bank) UnlockCustomer(ctx context.Context, id string) (*Customer, error) {
	var n int64
	err := b.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE bank_customers SET failures = 0, locked = $1, updated_at = $2 WHERE id = $3`,
			false, b.t(b.now()), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bank: unlock customer: %w", err)
	}
	if n == 0 {
		return nil, newError(CodeNotFound, "no such customer")
	}
	b.log.InfoContext(ctx, "customer login unlocked", "customer", id)
	return b.Customer(ctx, id)
}
