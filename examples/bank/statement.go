package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// StatementLine is one posting on an account's statement.
type StatementLine struct {
	JournalID    string
	Kind         string // deposit, transfer, send_out, credit_in, reverse_out
	Amount       int64  // + in, − out (won)
	Balance      int64  // after
	Counterparty string // the other party's name
	Memo         string
	At           time.Time
}

// Statement lists a customer account's postings, newest first, at most
// limit (50 if ≤ 0). NOT_FOUND for no such account.
func (b *Bank) Statement(ctx context.Context, accountID string, limit int) ([]StatementLine, error) {
	if _, err := b.Account(ctx, accountID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 50
	}
	rows, err := b.db.QueryContext(ctx, `SELECT e.journal_id, j.kind, e.amount, e.balance_after, e.counterparty, j.memo,
		e.created_at FROM bank_entries e JOIN bank_journals j ON j.id = e.journal_id WHERE e.account_id = $1
		ORDER BY e.id DESC LIMIT $2`, accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("bank: statement: %w", err)
	}
	defer rows.Close()
	var out []StatementLine
	for rows.Next() {
		var l StatementLine
		if err := rows.Scan(&l.JournalID, &l.Kind, &l.Amount, &l.Balance, &l.Counterparty, &l.Memo, sqlstore.ScanTime(&l.At)); err != nil {
			return nil, fmt.Errorf("bank: statement: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// LedgerReport is what CheckLedger found.
type LedgerReport struct {
	Journals, Entries, Accounts int
	// Customers is the sum of customer balances; Cash the cash account's
	// (minus what was deposited); Clearing each counter-party bank's
	// clearing balance (+ owed to it).
	Customers int64
	Cash      int64
	Clearing  map[string]int64
	// Escrow is the escrow holding account's balance: what the bank holds
	// for open escrows (KECIS §15.6).
	Escrow int64
}

// CheckLedger checks the double-entry invariants on one snapshot: every
// journal's entries sum to zero (so all entries do), each account's
// balance equals the sum of its entries, each entry's balance_after
// follows from the one before, and no customer balance is negative. It
// returns an error naming the first breach.
func (b *Bank) CheckLedger(ctx context.Context) (*LedgerReport, error) {
	rep := &LedgerReport{Clearing: map[string]int64{}}
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bank_journals`).Scan(&rep.Journals); err != nil {
			return err
		}
		var total int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM bank_entries`).Scan(&rep.Entries, &total); err != nil {
			return err
		}
		if total != 0 {
			return fmt.Errorf("bank: ledger: all entries sum to %d, not 0", total)
		}
		var j string
		var sum int64
		err := tx.QueryRowContext(ctx, `SELECT journal_id, SUM(amount) FROM bank_entries GROUP BY journal_id
			HAVING SUM(amount) <> 0 LIMIT 1`).Scan(&j, &sum)
		if err == nil {
			return fmt.Errorf("bank: ledger: journal %s sums to %d", j, sum)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bank_journals j WHERE
			(SELECT COUNT(*) FROM bank_entries e WHERE e.journal_id = j.id) < 2`).Scan(&sum); err != nil {
			return err
		}
		if sum != 0 {
			return fmt.Errorf("bank: ledger: %d journals have fewer than two entries", sum)
		}
		rows, err := tx.QueryContext(ctx, `SELECT a.id, a.kind, a.counterparty, a.balance,
			COALESCE((SELECT SUM(e.amount) FROM bank_entries e WHERE e.account_id = a.id), 0) FROM bank_accounts a ORDER BY a.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, kind, cp string
			var bal, entries int64
			if err := rows.Scan(&id, &kind, &cp, &bal, &entries); err != nil {
				return err
			}
			rep.Accounts++
			if bal != entries {
				return fmt.Errorf("bank: ledger: account %s has balance %d but its entries sum to %d", id, bal, entries)
			}
			switch kind {
			case "customer":
				if bal < 0 {
					return fmt.Errorf("bank: ledger: customer account %s is overdrawn (%d)", id, bal)
				}
				rep.Customers += bal
			case "cash":
				rep.Cash += bal
			case "clearing":
				rep.Clearing[cp] = bal
			case "escrow":
				if bal < 0 {
					return fmt.Errorf("bank: ledger: the escrow holding account is overdrawn (%d)", bal)
				}
				rep.Escrow += bal
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Running balances: each entry's balance_after is the previous
		// entry's plus its amount.
		var bad int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bank_entries e WHERE e.balance_after <> e.amount +
			COALESCE((SELECT p.balance_after FROM bank_entries p WHERE p.account_id = e.account_id AND p.id < e.id
			ORDER BY p.id DESC LIMIT 1), 0)`).Scan(&bad); err != nil {
			return err
		}
		if bad != 0 {
			return fmt.Errorf("bank: ledger: %d entries whose balance does not follow from the one before", bad)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}
