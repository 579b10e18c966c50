package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
)

// The escrow holding account (KECIS §15.6). A buyer's payment into an
// escrow leaves the buyer's account for the bank's own holding account of
// kind "escrow" (EscrowFund); it stays there until it is released to the
// seller's settlement account (EscrowRelease: a transfer within the bank,
// or a transfer out to the seller's bank) or refunded to the buyer
// (EscrowRefund). Each movement is one balanced journal, so the holding
// account's balance is at every moment what the bank holds for open
// escrows — the escrow engine next to the bank keeps which escrow that is;
// the bank keeps only the money. A release to another bank leaves the
// holding account when it is sent (into the clearing account for that
// bank, like any transfer out) and comes back to it if that bank refuses
// it (ReverseOut).
const (
	escrowAccount = "escrow"
	// escrowName is the holding account's name on statements.
	escrowName = "에스크로"
)

// EscrowFundRequest pays into the escrow holding account from one of the
// customer's own accounts.
type EscrowFundRequest struct {
	CustomerID string
	// Account is the number of the customer's account to debit.
	Account ecml.Secret
	Amount  ecml.Money
	// Payee is the shop's name, for the customer's statement and SMS.
	Payee string
	// Reference is the escrow's reference (the journal's memo).
	Reference      string
	IdempotencyKey string
}

// EscrowFund debits the customer's own active account into the escrow
// holding account in one journal (escrow_fund) and texts the customer. An
// account that is not the customer's, or closed, is NOT_FOUND (one answer
// for both); above the account's per-transfer limit LIMIT_EXCEEDED; a
// balance short of the amount INSUFFICIENT_FUNDS (the conditional UPDATE
// of every debit). The Movement is the customer's. Idempotent by key.
func (b *Bank) EscrowFund(ctx context.Context, req EscrowFundRequest) (*Movement, error) {
	if e := checkEscrow(req.IdempotencyKey, req.Amount, req.Payee, req.Reference); e != nil {
		return nil, e
	}
	number, ok := ecml.AccountDigits(req.Account.Reveal())
	if !ok {
		return nil, newError(CodeNotFound, "no such account")
	}
	now := b.now()
	fp := b.vault.fingerprint(opEscrowFund, req.CustomerID, number, fmt.Sprint(req.Amount.Minor), req.Payee, req.Reference)
	var sms queuedSMS
	var accountID string
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opEscrowFund, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		from, err := b.ownAccount(ctx, tx, req.CustomerID, number)
		if err != nil {
			return "", nil, err
		}
		if from == nil || from.status != AccountActive {
			return "", newError(CodeNotFound, "no such account"), nil
		}
		accountID = from.id
		n := req.Amount.Minor
		if n > from.limit {
			return "", newError(CodeLimitExceeded, "the amount is above the account's per-transfer limit"), nil
		}
		bal, ok, err := b.debitCustomer(ctx, tx, from.id, n, now)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", newError(CodeInsufficientFunds, "insufficient balance"), nil
		}
		if err := b.ensureInternal(ctx, tx, escrowAccount, "escrow", "", now); err != nil {
			return "", nil, err
		}
		held, err := b.move(ctx, tx, escrowAccount, n, now)
		if err != nil {
			return "", nil, err
		}
		name := escrowCounterparty(req.Payee)
		j, err := b.journal(ctx, tx, "escrow_fund", n, req.Reference, now,
			entry{account: from.id, amount: -n, balance: bal, counterparty: name},
			entry{account: escrowAccount, amount: n, balance: held, counterparty: from.holder})
		if err != nil {
			return "", nil, err
		}
		if sms, err = b.enqueueSMS(ctx, tx, "escrow_fund", j, from.phone, b.smsText("출금", req.Amount, name, now, bal, from.last4), now); err != nil {
			return "", nil, err
		}
		return j, nil, nil
	})
	if err == nil && out.err == nil && accountID == "" {
		accountID, err = b.entryAccount(ctx, out.ref, -1)
	}
	return b.finish(ctx, out, err, accountID, "escrow funded", sms)
}

// EscrowReleaseRequest pays held money to a seller's settlement account.
type EscrowReleaseRequest struct {
	// ToBank is the settlement account's bank code; "" or this bank's
	// code is a transfer within the bank.
	ToBank   string
	ToNumber ecml.Secret
	// ToHolder is the settlement account's holder, when known (the
	// statement's name of a transfer out).
	ToHolder string
	Amount   ecml.Money
	// Payer is the buyer's or the shop's text for the seller's statement.
	Payer string
	// Reference is the escrow's reference (the journal's memo).
	Reference      string
	IdempotencyKey string
}

// EscrowRelease is what a release did: a transfer within the bank
// (JournalID) or a transfer out to another bank (Outgoing, state sent
// until the caller has that bank credit it and calls ConfirmOut — or
// ReverseOut, which gives the money back to the holding account).
type EscrowRelease struct {
	JournalID string
	Outgoing  *Outgoing
	Replayed  bool
}

// EscrowRelease moves held money out of the escrow holding account to a
// settlement account: at this bank, in one escrow_release journal (the
// payee texted), an account unknown or closed being NO_SUCH_ACCOUNT; at
// another bank, as a transfer out of the holding account (SendOut's
// booking: the clearing account for that bank takes it). The holding
// account must hold the amount; anything else is an internal error (the
// bank never releases money it does not hold). Idempotent by key.
func (b *Bank) EscrowRelease(ctx context.Context, req EscrowReleaseRequest) (*EscrowRelease, error) {
	if e := checkEscrow(req.IdempotencyKey, req.Amount, req.Payer, req.Reference); e != nil {
		return nil, e
	}
	if e := checkText("payee name", req.ToHolder, 64, false); e != nil {
		return nil, e
	}
	toBank := req.ToBank
	if toBank == "" {
		toBank = b.code
	}
	if !validBankCode(toBank) {
		return nil, invalid("the payee's bank code must be three digits")
	}
	to, ok := ecml.AccountDigits(req.ToNumber.Reveal())
	if !ok {
		return nil, invalid("an account number is 6 to 20 digits, optionally grouped with single hyphens")
	}
	now := b.now()
	fp := b.vault.fingerprint(opEscrowRelease, toBank, to, req.ToHolder, fmt.Sprint(req.Amount.Minor), req.Payer, req.Reference)
	var sms queuedSMS
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opEscrowRelease, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		n := req.Amount.Minor
		var payee *acct
		if toBank == b.code {
			var err error
			if payee, err = b.byNumber(ctx, tx, to); err != nil {
				return "", nil, err
			}
			if payee == nil || payee.status != AccountActive {
				return "", noSuchAccount(), nil
			}
		}
		held, err := b.debitEscrow(ctx, tx, n, now)
		if err != nil {
			return "", nil, err
		}
		if toBank != b.code {
			ref, _, err := b.postOut(ctx, tx, escrowAccount, escrowName, held, toBank, to, req.ToHolder, n, req.Reference, now)
			return ref, nil, err
		}
		bal, err := b.move(ctx, tx, payee.id, n, now)
		if err != nil {
			return "", nil, err
		}
		name := escrowCounterparty(req.Payer)
		j, err := b.journal(ctx, tx, "escrow_release", n, req.Reference, now,
			entry{account: escrowAccount, amount: -n, balance: held, counterparty: payee.holder},
			entry{account: payee.id, amount: n, balance: bal, counterparty: name})
		if err != nil {
			return "", nil, err
		}
		if sms, err = b.enqueueSMS(ctx, tx, "escrow_release", j, payee.phone, b.smsText("입금", req.Amount, name, now, bal, payee.last4), now); err != nil {
			return "", nil, err
		}
		return j, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		if !out.replayed {
			b.log.InfoContext(ctx, "escrow release refused", "reference", req.Reference, "code", out.err.Code, "reason", out.err.Message)
		}
		return nil, out.err
	}
	r := &EscrowRelease{Replayed: out.replayed}
	if strings.HasPrefix(out.ref, "tro_") {
		if r.Outgoing, err = b.OutgoingTransfer(ctx, out.ref); err != nil {
			return nil, err
		}
		r.Outgoing.Replayed = out.replayed
	} else {
		r.JournalID = out.ref
	}
	if !out.replayed {
		b.log.InfoContext(ctx, "escrow released", "reference", req.Reference, "to_bank", toBank, "to_last4", to[len(to)-4:],
			"amount", req.Amount.Minor, "ref", out.ref)
		b.deliverAfterCommit(ctx, sms)
	}
	return r, nil
}

// EscrowRefundRequest pays held money back to the buyer.
type EscrowRefundRequest struct {
	CustomerID string
	// Account is the number of the customer's account to credit (the one
	// the escrow was funded from).
	Account ecml.Secret
	Amount  ecml.Money
	// Payee is the shop's name, for the customer's statement and SMS.
	Payee          string
	Reference      string
	IdempotencyKey string
}

// EscrowRefund moves held money back to the customer's own account in one
// escrow_refund journal and texts the customer. The money goes back even
// to an account closed meanwhile (as ReverseOut's does); an account that
// is not the customer's is NOT_FOUND. The holding account must hold the
// amount (else an internal error). Idempotent by key.
func (b *Bank) EscrowRefund(ctx context.Context, req EscrowRefundRequest) (*Movement, error) {
	if e := checkEscrow(req.IdempotencyKey, req.Amount, req.Payee, req.Reference); e != nil {
		return nil, e
	}
	number, ok := ecml.AccountDigits(req.Account.Reveal())
	if !ok {
		return nil, newError(CodeNotFound, "no such account")
	}
	now := b.now()
	fp := b.vault.fingerprint(opEscrowRefund, req.CustomerID, number, fmt.Sprint(req.Amount.Minor), req.Payee, req.Reference)
	var sms queuedSMS
	var accountID string
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opEscrowRefund, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		to, err := b.ownAccount(ctx, tx, req.CustomerID, number)
		if err != nil {
			return "", nil, err
		}
		if to == nil {
			return "", newError(CodeNotFound, "no such account"), nil
		}
		accountID = to.id
		n := req.Amount.Minor
		held, err := b.debitEscrow(ctx, tx, n, now)
		if err != nil {
			return "", nil, err
		}
		bal, err := b.creditAny(ctx, tx, to.id, n, now)
		if err != nil {
			return "", nil, err
		}
		name := escrowCounterparty(req.Payee)
		j, err := b.journal(ctx, tx, "escrow_refund", n, req.Reference, now,
			entry{account: escrowAccount, amount: -n, balance: held, counterparty: to.holder},
			entry{account: to.id, amount: n, balance: bal, counterparty: name})
		if err != nil {
			return "", nil, err
		}
		if sms, err = b.enqueueSMS(ctx, tx, "escrow_refund", j, to.phone, b.smsText("환불", req.Amount, name, now, bal, to.last4), now); err != nil {
			return "", nil, err
		}
		return j, nil, nil
	})
	if err == nil && out.err == nil && accountID == "" {
		accountID, err = b.entryAccount(ctx, out.ref, 1)
	}
	return b.finish(ctx, out, err, accountID, "escrow refunded", sms)
}

// EscrowHeld is the escrow holding account's balance: what the bank holds
// for escrows that are neither released nor refunded.
func (b *Bank) EscrowHeld(ctx context.Context) (int64, error) {
	var bal int64
	err := b.db.QueryRowContext(ctx, `SELECT balance FROM bank_accounts WHERE id = $1`, escrowAccount).Scan(&bal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bank: read escrow holding account: %w", err)
	}
	return bal, nil
}

// ownAccount finds the customer's account with a number, any status; nil
// when the bank has none or it is another customer's.
func (b *Bank) ownAccount(ctx context.Context, tx *sql.Tx, customerID, digits string) (*acct, error) {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT customer_id FROM bank_accounts WHERE kind = 'customer' AND number_hash = $1`,
		b.vault.numberHash(digits)).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (owner != customerID || customerID == "") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read account: %w", err)
	}
	return b.byNumber(ctx, tx, digits)
}

// debitEscrow takes n out of the escrow holding account with a
// conditional UPDATE: the bank never releases or refunds more than it
// holds. A shortfall is an internal error (no escrow engine asks for it),
// which rolls the posting back.
func (b *Bank) debitEscrow(ctx context.Context, tx *sql.Tx, n int64, now time.Time) (int64, error) {
	var bal int64
	err := tx.QueryRowContext(ctx, `UPDATE bank_accounts SET balance = balance - $1, updated_at = $2
		WHERE id = $3 AND kind = 'escrow' AND balance >= $1 RETURNING balance`, n, b.t(now), escrowAccount).Scan(&bal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("bank: the escrow holding account holds less than the amount")
	}
	if err != nil {
		return 0, fmt.Errorf("bank: debit escrow holding account: %w", err)
	}
	return bal, nil
}

// entryAccount is the account of a journal's entry with the given sign
// (the customer's side of an escrow journal, on a replay).
func (b *Bank) entryAccount(ctx context.Context, journalID string, sign int) (string, error) {
	var id string
	op := "<"
	if sign > 0 {
		op = ">"
	}
	err := b.db.QueryRowContext(ctx, `SELECT account_id FROM bank_entries WHERE journal_id = $1 AND account_id <> $2 AND amount `+op+` 0`,
		journalID, escrowAccount).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("bank: read escrow journal: %w", err)
	}
	return id, nil
}

// escrowCounterparty is the name a statement shows for the other side of
// an escrow movement.
func escrowCounterparty(name string) string {
	if name == "" {
		return escrowName
	}
	return escrowName + " " + name
}

func checkEscrow(key string, m ecml.Money, name, reference string) *Error {
	if e := checkKey(key); e != nil {
		return e
	}
	if e := checkMoney(m); e != nil {
		return e
	}
	if e := checkText("name", name, 64, false); e != nil {
		return e
	}
	return checkText("reference", reference, 40, true)
}
