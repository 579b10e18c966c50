package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// The bank's own accounts of the double-entry ledger: cash funds deposits
// (it goes below zero by what customers brought in), and one clearing
// account per counter-party bank holds what is owed between the two
// (KECIS §15.8): a transfer out credits it, a credit in debits it.
const cashAccount = "cash"

func clearingAccount(bank string) string { return "clr_" + bank }

// Movement is one posting on a customer's account as the API reports it.
type Movement struct {
	JournalID string
	Kind      string // deposit, transfer, send_out, credit_in, reverse_out
	AccountID string
	Amount    ecml.Money
	// Balance is the account's balance right after the posting.
	Balance   int64
	CreatedAt time.Time
	Replayed  bool
}

// acct is what a posting reads of a customer account in its transaction.
type acct struct {
	id, holder, phone, last4 string
	status                   AccountStatus
	limit                    int64
}

// customerAcct reads a customer account in tx; nil if there is none.
func (b *Bank) customerAcct(ctx context.Context, tx *sql.Tx, where string, arg any) (*acct, error) {
	var a acct
	var status string
	err := tx.QueryRowContext(ctx, `SELECT a.id, c.name, c.phone, a.last4, a.status, a.transfer_limit
		FROM bank_accounts a JOIN bank_customers c ON c.id = a.customer_id WHERE a.kind = 'customer' AND `+where, arg).
		Scan(&a.id, &a.holder, &a.phone, &a.last4, &status, &a.limit)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read account: %w", err)
	}
	a.status = AccountStatus(status)
	return &a, nil
}

// byNumber finds a customer account by its number's keyed hash.
func (b *Bank) byNumber(ctx context.Context, tx *sql.Tx, number string) (*acct, error) {
	d, ok := ecml.AccountDigits(number)
	if !ok {
		return nil, nil
	}
	return b.customerAcct(ctx, tx, `a.number_hash = $1`, b.vault.numberHash(d))
}

// ensureInternal creates one of the bank's own accounts on first use.
func (b *Bank) ensureInternal(ctx context.Context, tx *sql.Tx, id, kind, counterparty string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO bank_accounts (id, kind, counterparty, currency, balance, status,
		created_at, updated_at) VALUES ($1, $2, $3, $4, 0, 'active', $5, $5) ON CONFLICT (id) DO NOTHING`,
		id, kind, counterparty, Currency, b.t(now)); err != nil {
		return fmt.Errorf("bank: create %s account: %w", kind, err)
	}
	return nil
}

// debitCustomer takes amount from an active customer account with a
// conditional UPDATE (balance ≥ amount), so that concurrent debits — from
// this process or another sharing the database — never overdraw it: on
// PostgreSQL a waiting writer re-checks the condition on the committed
// row (READ COMMITTED), SQLite runs writers one at a time. ok is false
// when the balance is short.
func (b *Bank) debitCustomer(ctx context.Context, tx *sql.Tx, id string, amount int64, now time.Time) (balance int64, ok bool, err error) {
	err = tx.QueryRowContext(ctx, `UPDATE bank_accounts SET balance = balance - $1, updated_at = $2
		WHERE id = $3 AND kind = 'customer' AND status = 'active' AND balance >= $1 RETURNING balance`,
		amount, b.t(now), id).Scan(&balance)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("bank: debit account: %w", err)
	}
	return balance, true, nil
}

// move adds delta to an account's balance (the bank's own accounts, and
// credits to customers' active accounts); a customer account that was
// closed meanwhile is an error that rolls the posting back.
func (b *Bank) move(ctx context.Context, tx *sql.Tx, id string, delta int64, now time.Time) (int64, error) {
	var bal int64
	err := tx.QueryRowContext(ctx, `UPDATE bank_accounts SET balance = balance + $1, updated_at = $2
		WHERE id = $3 AND status = 'active' RETURNING balance`, delta, b.t(now), id).Scan(&bal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("bank: account %s is not active", id)
	}
	if err != nil {
		return 0, fmt.Errorf("bank: post to account: %w", err)
	}
	return bal, nil
}

// entry is one leg of a journal, after its balance was moved.
type entry struct {
	account      string
	amount       int64 // + credit, − debit
	balance      int64 // after
	counterparty string
}

// journal writes a balanced journal and its entries; the balances were
// moved already (debitCustomer, move).
func (b *Bank) journal(ctx context.Context, tx *sql.Tx, kind string, amount int64, memo string, now time.Time, es ...entry) (string, error) {
	var sum int64
	for _, e := range es {
		sum += e.amount
	}
	if sum != 0 || len(es) < 2 {
		return "", fmt.Errorf("bank: unbalanced %s journal", kind)
	}
	id, err := newID(b.rand, "jnl")
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO bank_journals (id, kind, amount, currency, memo, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, kind, amount, Currency, memo, b.t(now)); err != nil {
		return "", fmt.Errorf("bank: insert journal: %w", err)
	}
	for _, e := range es {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bank_entries (journal_id, account_id, amount, balance_after,
			counterparty, created_at) VALUES ($1, $2, $3, $4, $5, $6)`, id, e.account, e.amount, e.balance,
			e.counterparty, b.t(now)); err != nil {
			return "", fmt.Errorf("bank: insert entry: %w", err)
		}
	}
	return id, nil
}

// movement reads a customer account's posting of a journal.
func (b *Bank) movement(ctx context.Context, journalID, accountID string) (*Movement, error) {
	m := Movement{JournalID: journalID, AccountID: accountID}
	var amount int64
	err := b.db.QueryRowContext(ctx, `SELECT j.kind, e.amount, e.balance_after, j.created_at FROM bank_entries e
		JOIN bank_journals j ON j.id = e.journal_id WHERE e.journal_id = $1 AND e.account_id = $2`, journalID, accountID).
		Scan(&m.Kind, &amount, &m.Balance, sqlstore.ScanTime(&m.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("bank: read movement: %w", err)
	}
	m.Amount = ecml.Money{Minor: abs(amount), Currency: Currency}
	return &m, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// DepositRequest funds an account from the bank's cash (a test deposit).
type DepositRequest struct {
	AccountID      string
	Amount         ecml.Money
	Memo           string
	IdempotencyKey string
}

// Deposit credits an active account from the bank's cash account (an
// administrative operation: test funding) and texts the customer.
// Idempotent by key.
func (b *Bank) Deposit(ctx context.Context, req DepositRequest) (*Movement, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if e := checkText("memo", req.Memo, 40, false); e != nil {
		return nil, e
	}
	memo := req.Memo
	if memo == "" {
		memo = "현금입금"
	}
	now := b.now()
	fp := b.vault.fingerprint(opDeposit, req.AccountID, fmt.Sprint(req.Amount.Minor), memo)
	var sms queuedSMS
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opDeposit, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		a, err := b.customerAcct(ctx, tx, `a.id = $1`, req.AccountID)
		if err != nil {
			return "", nil, err
		}
		if a == nil || a.status != AccountActive {
			return "", noSuchAccount(), nil
		}
		if err := b.ensureInternal(ctx, tx, cashAccount, "cash", "", now); err != nil {
			return "", nil, err
		}
		n := req.Amount.Minor
		bal, err := b.move(ctx, tx, a.id, n, now)
		if err != nil {
			return "", nil, err
		}
		cash, err := b.move(ctx, tx, cashAccount, -n, now)
		if err != nil {
			return "", nil, err
		}
		j, err := b.journal(ctx, tx, "deposit", n, memo, now,
			entry{account: a.id, amount: n, balance: bal, counterparty: memo},
			entry{account: cashAccount, amount: -n, balance: cash, counterparty: a.holder})
		if err != nil {
			return "", nil, err
		}
		text := b.smsText("입금", req.Amount, memo, now, bal, a.last4)
		if sms, err = b.enqueueSMS(ctx, tx, "deposit", j, a.phone, text, now); err != nil {
			return "", nil, err
		}
		return j, nil, nil
	})
	return b.finish(ctx, out, err, req.AccountID, "deposit", sms)
}

// finish turns an idempotent posting's outcome into its Movement, logs a
// new one and sends its SMS.
func (b *Bank) finish(ctx context.Context, out outcome, err error, accountID, what string, sms ...queuedSMS) (*Movement, error) {
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		if !out.replayed {
			b.log.InfoContext(ctx, what+" refused", "account", accountID, "code", out.err.Code, "reason", out.err.Message)
		}
		return nil, out.err
	}
	m, err := b.movement(ctx, out.ref, accountID)
	if err != nil {
		return nil, err
	}
	m.Replayed = out.replayed
	if !out.replayed {
		b.log.InfoContext(ctx, what, "journal", m.JournalID, "account", accountID, "amount", m.Amount.Minor)
		b.deliverAfterCommit(ctx, sms...)
	}
	return m, nil
}

// TransferRequest moves money between two accounts of this bank.
type TransferRequest struct {
	FromAccountID  string
	ToNumber       ecml.Secret // the payee's account number at this bank
	Amount         ecml.Money
	Memo           string
	IdempotencyKey string
}

// Transfer moves money from an account to another account of this bank
// (당행이체): the remitter's balance must cover it (INSUFFICIENT_FUNDS,
// checked with the conditional UPDATE) and it must be at most the
// account's per-transfer limit (LIMIT_EXCEEDED); an unknown or closed
// payee account is NO_SUCH_ACCOUNT. Both customers are texted. The
// Movement is the remitter's. Idempotent by key.
func (b *Bank) Transfer(ctx context.Context, req TransferRequest) (*Movement, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if e := checkText("memo", req.Memo, 40, false); e != nil {
		return nil, e
	}
	to, ok := ecml.AccountDigits(req.ToNumber.Reveal())
	if !ok {
		return nil, invalid("an account number is 6 to 20 digits, optionally grouped with single hyphens")
	}
	now := b.now()
	fp := b.vault.fingerprint(opTransfer, req.FromAccountID, to, fmt.Sprint(req.Amount.Minor), req.Memo)
	var sms []queuedSMS
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opTransfer, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = nil
		from, err := b.customerAcct(ctx, tx, `a.id = $1`, req.FromAccountID)
		if err != nil {
			return "", nil, err
		}
		if from == nil || from.status != AccountActive {
			return "", newError(CodeNotFound, "no such account"), nil
		}
		payee, err := b.byNumber(ctx, tx, to)
		if err != nil {
			return "", nil, err
		}
		if payee == nil || payee.status != AccountActive {
			return "", noSuchAccount(), nil
		}
		if payee.id == from.id {
			return "", invalid("the payee account is the remitter's"), nil
		}
		n := req.Amount.Minor
		if n > from.limit {
			return "", newError(CodeLimitExceeded, "the amount is above the account's per-transfer limit"), nil
		}
		fromBal, ok, err := b.debitCustomer(ctx, tx, from.id, n, now)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", newError(CodeInsufficientFunds, "insufficient balance"), nil
		}
		toBal, err := b.move(ctx, tx, payee.id, n, now)
		if err != nil {
			return "", nil, err
		}
		j, err := b.journal(ctx, tx, "transfer", n, req.Memo, now,
			entry{account: from.id, amount: -n, balance: fromBal, counterparty: payee.holder},
			entry{account: payee.id, amount: n, balance: toBal, counterparty: from.holder})
		if err != nil {
			return "", nil, err
		}
		s1, err := b.enqueueSMS(ctx, tx, "transfer", j, from.phone, b.smsText("출금", req.Amount, payee.holder, now, fromBal, from.last4), now)
		if err != nil {
			return "", nil, err
		}
		s2, err := b.enqueueSMS(ctx, tx, "transfer", j, payee.phone, b.smsText("입금", req.Amount, from.holder, now, toBal, payee.last4), now)
		if err != nil {
			return "", nil, err
		}
		sms = []queuedSMS{s1, s2}
		return j, nil, nil
	})
	return b.finish(ctx, out, err, req.FromAccountID, "transfer", sms...)
}
