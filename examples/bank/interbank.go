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

// Transfers between banks (KECIS §15.8). The remitter's bank debits its
// customer into its clearing account for the payee's bank (SendOut) and
// asks that bank to credit the payee (CreditIn there, through KECIS
// transfer:credit); if the payee's bank refuses, it reverses its debit
// (ReverseOut).

// OutgoingStatus is the state of a transfer to another bank.
type OutgoingStatus string

const (
	OutgoingSent     OutgoingStatus = "sent"     // debited; the payee's bank is asked to credit
	OutgoingCredited OutgoingStatus = "credited" // the payee's bank credited it (ConfirmOut)
	OutgoingReversed OutgoingStatus = "reversed" // refused there and given back (ReverseOut)
)

// Outgoing is a transfer to another bank.
type Outgoing struct {
	// Reference is the transfer's reference, unique at this bank: the
	// Ecom/@ConsumerOrderID of transfer:credit.
	Reference string
	AccountID string
	ToBank    string
	ToLast4   string
	ToHolder  string
	Amount    ecml.Money
	Status    OutgoingStatus
	CreditRef string // the payee bank's credit reference, once credited
	Reason    string // why it was reversed
	// Balance is the remitter's balance after the debit (SendOut) or the
	// reversal (ReverseOut).
	Balance   int64
	CreatedAt time.Time
	Replayed  bool
}

// SendOutRequest asks to send money to an account at another bank.
type SendOutRequest struct {
	FromAccountID string
	ToBank        string      // the payee's bank code
	ToNumber      ecml.Secret // the payee's account number there
	// ToHolder is the payee's name as that bank told it (holder inquiry),
	// for the statement and the remitter's SMS.
	ToHolder       string
	Amount         ecml.Money
	Memo           string
	IdempotencyKey string
}

// SendOut debits the remitter into the clearing account for the payee's
// bank and records the transfer as sent, all in one transaction with the
// remitter's SMS: the balance is checked with a conditional UPDATE
// (INSUFFICIENT_FUNDS), so concurrent SendOuts never overdraw the
// account; the account's per-transfer limit is LIMIT_EXCEEDED. The caller
// then asks the payee's bank to credit the returned Reference, and calls
// ConfirmOut or ReverseOut with its answer. Idempotent by key.
func (b *Bank) SendOut(ctx context.Context, req SendOutRequest) (*Outgoing, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if !validBankCode(req.ToBank) {
		return nil, invalid("the payee's bank code must be three digits")
	}
	if req.ToBank == b.code {
		return nil, invalid("a transfer within the bank is Transfer")
	}
	to, ok := ecml.AccountDigits(req.ToNumber.Reveal())
	if !ok {
		return nil, invalid("an account number is 6 to 20 digits, optionally grouped with single hyphens")
	}
	if e := checkText("payee name", req.ToHolder, 64, false); e != nil {
		return nil, e
	}
	if e := checkText("memo", req.Memo, 40, false); e != nil {
		return nil, e
	}
	now := b.now()
	fp := b.vault.fingerprint(opSendOut, req.FromAccountID, req.ToBank, to, req.ToHolder, fmt.Sprint(req.Amount.Minor), req.Memo)
	var sms queuedSMS
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opSendOut, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		from, err := b.customerAcct(ctx, tx, `a.id = $1`, req.FromAccountID)
		if err != nil {
			return "", nil, err
		}
		if from == nil || from.status != AccountActive {
			return "", newError(CodeNotFound, "no such account"), nil
		}
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
		ref, name, err := b.postOut(ctx, tx, from.id, from.holder, bal, req.ToBank, to, req.ToHolder, n, req.Memo, now)
		if err != nil {
			return "", nil, err
		}
		if sms, err = b.enqueueSMS(ctx, tx, "send_out", ref, from.phone, b.smsText("출금", req.Amount, name, now, bal, from.last4), now); err != nil {
			return "", nil, err
		}
		return ref, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		if !out.replayed {
			b.log.InfoContext(ctx, "transfer out refused", "account", req.FromAccountID, "code", out.err.Code, "reason", out.err.Message)
		}
		return nil, out.err
	}
	o, err := b.OutgoingTransfer(ctx, out.ref)
	if err != nil {
		return nil, err
	}
	o.Replayed = out.replayed
	if !out.replayed {
		b.log.InfoContext(ctx, "transfer out sent", "transfer", o.Reference, "account", o.AccountID, "to_bank", o.ToBank,
			"to_last4", o.ToLast4, "amount", o.Amount.Minor)
		b.deliverAfterCommit(ctx, sms)
	}
	return o, nil
}

// postOut books a transfer out of account fromID (debited already by n,
// its balance now bal): the clearing account for the payee's bank takes
// n in a send_out journal and the transfer is recorded as sent, the
// payee's number sealed. It returns the transfer's reference and the
// name the remitter's statement shows for the payee.
func (b *Bank) postOut(ctx context.Context, tx *sql.Tx, fromID, fromName string, bal int64, toBank, to, toHolder string,
	n int64, memo string, now time.Time) (ref, name string, err error) {
	clr := clearingAccount(toBank)
	if err := b.ensureInternal(ctx, tx, clr, "clearing", toBank, now); err != nil {
		return "", "", err
	}
	cbal, err := b.move(ctx, tx, clr, n, now)
	if err != nil {
		return "", "", err
	}
	name = toHolder
	if name == "" {
		name = toBank + " " + ecml.MaskAccount(to[len(to)-4:])
	}
	j, err := b.journal(ctx, tx, "send_out", n, memo, now,
		entry{account: fromID, amount: -n, balance: bal, counterparty: name},
		entry{account: clr, amount: n, balance: cbal, counterparty: fromName})
	if err != nil {
		return "", "", err
	}
	if ref, err = newID(b.rand, "tro"); err != nil {
		return "", "", err
	}
	enc, err := b.vault.seal(to, "outgoing:"+ref)
	if err != nil {
		return "", "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO bank_outgoing (id, account_id, to_bank, to_number_enc, to_last4,
		to_holder, amount, currency, status, journal_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sent', $9, $10, $10)`,
		ref, fromID, toBank, enc, to[len(to)-4:], toHolder, n, Currency, j, b.t(now)); err != nil {
		return "", "", fmt.Errorf("bank: insert outgoing transfer: %w", err)
	}
	return ref, name, nil
}

// ReverseOutRequest gives back a transfer the payee's bank refused.
type ReverseOutRequest struct {
	Reference      string
	Reason         string // public: the payee bank's refusal
	IdempotencyKey string
}

// ReverseOut reverses a sent transfer that the payee's bank refused: the
// clearing account gives the amount back to the remitter, the transfer is
// reversed, the remitter texted. A transfer already reversed (under
// another key) is ALREADY_REVERSED, a credited one ALREADY_CREDITED.
// Idempotent by key.
func (b *Bank) ReverseOut(ctx context.Context, req ReverseOutRequest) (*Outgoing, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkText("reason", req.Reason, 200, false); e != nil {
		return nil, e
	}
	now := b.now()
	fp := b.vault.fingerprint(opReverseOut, req.Reference, req.Reason)
	var sms queuedSMS
	var balance int64
	out, err := b.idempotent(ctx, scopeBank, req.IdempotencyKey, opReverseOut, fp, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		var accountID, toBank, toLast4, toHolder, status string
		var amount int64
		err := tx.QueryRowContext(ctx, `SELECT account_id, to_bank, to_last4, to_holder, amount, status FROM bank_outgoing
			WHERE id = $1`+b.forUpdate(), req.Reference).Scan(&accountID, &toBank, &toLast4, &toHolder, &amount, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return "", newError(CodeNotFound, "no such transfer"), nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("bank: read outgoing transfer: %w", err)
		}
		switch OutgoingStatus(status) {
		case OutgoingReversed:
			return "", newError(CodeAlreadyReversed, "the transfer is reversed already"), nil
		case OutgoingCredited:
			return "", newError(CodeAlreadyCredited, "the payee's bank credited the transfer"), nil
		}
		from, err := b.customerAcct(ctx, tx, `a.id = $1`, accountID)
		if err != nil {
			return "", nil, err
		}
		if from == nil { // a release out of the escrow holding account: it takes the money back
			from = &acct{id: accountID, holder: escrowName}
		}
		clr := clearingAccount(toBank)
		cbal, err := b.move(ctx, tx, clr, -amount, now)
		if err != nil {
			return "", nil, err
		}
		// The money goes back even to an account closed meanwhile (it
		// could not be closed with this debit outstanding: its balance
		// was not zero, or it is zero and closing needs no more).
		if balance, err = b.creditAny(ctx, tx, accountID, amount, now); err != nil {
			return "", nil, err
		}
		name := toHolder
		if name == "" {
			name = toBank + " " + ecml.MaskAccount(toLast4)
		}
		j, err := b.journal(ctx, tx, "reverse_out", amount, req.Reason, now,
			entry{account: clr, amount: -amount, balance: cbal, counterparty: from.holder},
			entry{account: accountID, amount: amount, balance: balance, counterparty: name})
		if err != nil {
			return "", nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bank_outgoing SET status = 'reversed', reverse_journal_id = $1, reason = $2,
			updated_at = $3 WHERE id = $4`, j, req.Reason, b.t(now), req.Reference); err != nil {
			return "", nil, fmt.Errorf("bank: reverse outgoing transfer: %w", err)
		}
		if from.phone != "" {
			text := b.smsText("출금취소", ecml.Money{Minor: amount, Currency: Currency}, name, now, balance, from.last4)
			if sms, err = b.enqueueSMS(ctx, tx, "reverse_out", req.Reference, from.phone, text, now); err != nil {
				return "", nil, err
			}
		}
		return req.Reference, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	o, err := b.OutgoingTransfer(ctx, out.ref)
	if err != nil {
		return nil, err
	}
	o.Replayed = out.replayed
	if !out.replayed {
		o.Balance = balance
		b.log.InfoContext(ctx, "transfer out reversed", "transfer", o.Reference, "account", o.AccountID, "reason", req.Reason)
		b.deliverAfterCommit(ctx, sms)
	}
	return o, nil
}

// creditAny credits a customer account whatever its status (a reversal).
func (b *Bank) creditAny(ctx context.Context, tx *sql.Tx, id string, amount int64, now time.Time) (int64, error) {
	var bal int64
	if err := tx.QueryRowContext(ctx, `UPDATE bank_accounts SET balance = balance + $1, updated_at = $2 WHERE id = $3
		RETURNING balance`, amount, b.t(now), id).Scan(&bal); err != nil {
		return 0, fmt.Errorf("bank: credit account: %w", err)
	}
	return bal, nil
}

// ConfirmOut records that the payee's bank credited a sent transfer,
// under its credit reference. Confirming it again with the same reference
// changes nothing; a reversed transfer is ALREADY_REVERSED.
func (b *Bank) ConfirmOut(ctx context.Context, reference, creditRef string) (*Outgoing, error) {
	if e := checkText("credit reference", creditRef, 64, true); e != nil {
		return nil, e
	}
	var berr *Error
	err := b.write(ctx, func(tx *sql.Tx) error {
		berr = nil
		var status, have string
		err := tx.QueryRowContext(ctx, `SELECT status, credit_ref FROM bank_outgoing WHERE id = $1`+b.forUpdate(), reference).Scan(&status, &have)
		if errors.Is(err, sql.ErrNoRows) {
			berr = newError(CodeNotFound, "no such transfer")
			return nil
		}
		if err != nil {
			return fmt.Errorf("bank: read outgoing transfer: %w", err)
		}
		switch {
		case OutgoingStatus(status) == OutgoingReversed:
			berr = newError(CodeAlreadyReversed, "the transfer is reversed")
			return nil
		case OutgoingStatus(status) == OutgoingCredited && have != creditRef:
			berr = newError(CodeAlreadyCredited, "the transfer was credited under another reference")
			return nil
		case OutgoingStatus(status) == OutgoingCredited:
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE bank_outgoing SET status = 'credited', credit_ref = $1, updated_at = $2 WHERE id = $3`,
			creditRef, b.t(b.now()), reference)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bank: confirm outgoing transfer: %w", err)
	}
	if berr != nil {
		return nil, berr
	}
	return b.OutgoingTransfer(ctx, reference)
}

// OutgoingTransfer returns a transfer to another bank; NOT_FOUND if none.
func (b *Bank) OutgoingTransfer(ctx context.Context, reference string) (*Outgoing, error) {
	var o Outgoing
	var amount int64
	var status string
	err := b.db.QueryRowContext(ctx, `SELECT o.id, o.account_id, o.to_bank, o.to_last4, o.to_holder, o.amount, o.status,
		o.credit_ref, o.reason, o.created_at, e.balance_after FROM bank_outgoing o
		JOIN bank_entries e ON e.journal_id = COALESCE(o.reverse_journal_id, o.journal_id) AND e.account_id = o.account_id
		WHERE o.id = $1`, reference).Scan(&o.Reference, &o.AccountID, &o.ToBank, &o.ToLast4, &o.ToHolder, &amount, &status,
		&o.CreditRef, &o.Reason, sqlstore.ScanTime(&o.CreatedAt), &o.Balance)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such transfer")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read outgoing transfer: %w", err)
	}
	o.Amount, o.Status = ecml.Money{Minor: amount, Currency: Currency}, OutgoingStatus(status)
	return &o, nil
}

// OutgoingNumber returns the payee's account number of a transfer, for
// the request to the payee's bank (where it travels encrypted, §8.1).
func (b *Bank) OutgoingNumber(ctx context.Context, reference string) (ecml.Secret, error) {
	var enc []byte
	err := b.db.QueryRowContext(ctx, `SELECT to_number_enc FROM bank_outgoing WHERE id = $1`, reference).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", newError(CodeNotFound, "no such transfer")
	}
	if err != nil {
		return "", fmt.Errorf("bank: read outgoing transfer: %w", err)
	}
	n, err := b.vault.open(enc, "outgoing:"+reference)
	return ecml.Secret(n), err
}

// CreditState is the state of a credit from another bank.
const CreditCredited = "credited"

// Credit is a credit from another bank.
type Credit struct {
	// Reference is this bank's credit reference (Transaction/Code/@Approval).
	Reference string
	FromBank  string
	// TheirReference is the remitting bank's transfer reference
	// (Ecom/@ConsumerOrderID), unique per remitting bank.
	TheirReference string
	AccountLast4   string
	Amount         ecml.Money
	RemitterName   string
	Purpose        string
	State          string // CreditCredited
	CreatedAt      time.Time
	Replayed       bool
}

// CreditInRequest is another bank's transfer to a customer here.
type CreditInRequest struct {
	FromBank       string
	Reference      string      // the remitting bank's transfer reference
	ToNumber       ecml.Secret // the payee's account number here
	Amount         ecml.Money
	RemitterName   string      // for the payee's statement and SMS
	RemitterNumber ecml.Secret // optional
	Purpose        string      // optional: kx:Transfer/@Purpose
	IdempotencyKey string
}

// CreditIn credits a transfer from another bank (KECIS §15.8 credit): the
// clearing account for that bank pays the payee's account, the payee is
// texted. An account unknown, closed, or not here is NO_SUCH_ACCOUNT, one
// answer for all; an amount above Config.MaxCredit is LIMIT_EXCEEDED.
// Idempotent by key (scoped by the remitting bank) and by (FromBank,
// Reference): the same reference with another key and the same content
// answers the existing credit (Replayed), with other content DUPLICATE.
func (b *Bank) CreditIn(ctx context.Context, req CreditInRequest) (*Credit, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if !validBankCode(req.FromBank) || req.FromBank == b.code {
		return nil, invalid("the remitting bank's code must be three digits, another bank's")
	}
	if e := checkText("reference", req.Reference, 64, true); e != nil {
		return nil, e
	}
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if e := checkText("remitter name", req.RemitterName, 64, false); e != nil {
		return nil, e
	}
	if e := checkText("purpose", req.Purpose, 40, false); e != nil {
		return nil, e
	}
	to, _ := ecml.AccountDigits(req.ToNumber.Reveal()) // a malformed number is no account here
	from := ""
	if n := req.RemitterNumber.Reveal(); n != "" {
		d, ok := ecml.AccountDigits(n)
		if !ok {
			return nil, invalid("the remitter's account number is 6 to 20 digits, optionally grouped with single hyphens")
		}
		from = d
	}
	now := b.now()
	content := b.vault.fingerprint("credit_content", req.FromBank, req.Reference, to, fmt.Sprint(req.Amount.Minor),
		req.Amount.Currency, req.RemitterName, from, req.Purpose)
	var sms queuedSMS
	out, err := b.idempotent(ctx, bankScope(req.FromBank), req.IdempotencyKey, opCreditIn, content, now, func(tx *sql.Tx) (string, *Error, error) {
		sms = queuedSMS{}
		var id string
		var fp []byte
		err := tx.QueryRowContext(ctx, `SELECT id, fingerprint FROM bank_incoming WHERE from_bank = $1 AND reference = $2`,
			req.FromBank, req.Reference).Scan(&id, &fp)
		switch {
		case err == nil && string(fp) == string(content):
			return id, nil, nil // the existing credit
		case err == nil:
			return "", newError(CodeDuplicate, "the transfer reference was credited already with other content"), nil
		case !errors.Is(err, sql.ErrNoRows):
			return "", nil, fmt.Errorf("bank: read credit: %w", err)
		}
		payee, err := b.byNumber(ctx, tx, to)
		if err != nil {
			return "", nil, err
		}
		if payee == nil || payee.status != AccountActive {
			return "", noSuchAccount(), nil
		}
		n := req.Amount.Minor
		if n > b.maxCredit {
			return "", newError(CodeLimitExceeded, "the amount is above the bank's per-transfer limit"), nil
		}
		clr := clearingAccount(req.FromBank)
		if err := b.ensureInternal(ctx, tx, clr, "clearing", req.FromBank, now); err != nil {
			return "", nil, err
		}
		cbal, err := b.move(ctx, tx, clr, -n, now)
		if err != nil {
			return "", nil, err
		}
		bal, err := b.move(ctx, tx, payee.id, n, now)
		if err != nil {
			return "", nil, err
		}
		name := req.RemitterName
		if name == "" {
			name = req.FromBank
		}
		j, err := b.journal(ctx, tx, "credit_in", n, req.Purpose, now,
			entry{account: clr, amount: -n, balance: cbal, counterparty: payee.holder},
			entry{account: payee.id, amount: n, balance: bal, counterparty: name})
		if err != nil {
			return "", nil, err
		}
		if id, err = newCreditRef(b); err != nil {
			return "", nil, err
		}
		last4 := ""
		if from != "" {
			last4 = from[len(from)-4:]
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bank_incoming (id, from_bank, reference, fingerprint, account_id, amount,
			currency, remitter_name, remitter_last4, purpose, journal_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, id, req.FromBank, req.Reference, content, payee.id, n,
			Currency, req.RemitterName, last4, req.Purpose, j, b.t(now)); err != nil {
			return "", nil, fmt.Errorf("bank: insert credit: %w", err)
		}
		if sms, err = b.enqueueSMS(ctx, tx, "credit_in", id, payee.phone, b.smsText("입금", req.Amount, name, now, bal, payee.last4), now); err != nil {
			return "", nil, err
		}
		return id, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		if !out.replayed {
			b.log.InfoContext(ctx, "credit refused", "from_bank", req.FromBank, "reference", req.Reference,
				"code", out.err.Code, "reason", out.err.Message)
		}
		return nil, out.err
	}
	c, err := b.credit(ctx, `i.id = $1`, out.ref)
	if err != nil {
		return nil, err
	}
	c.Replayed = out.replayed || sms.id == 0
	if !c.Replayed {
		b.log.InfoContext(ctx, "credit from another bank", "credit", c.Reference, "from_bank", c.FromBank,
			"reference", c.TheirReference, "last4", c.AccountLast4, "amount", c.Amount.Minor)
		b.deliverAfterCommit(ctx, sms)
	}
	return c, nil
}

// newCreditRef draws a credit reference: "C" and 11 digits.
func newCreditRef(b *Bank) (string, error) {
	d, err := randomDigits(b.rand, 11)
	return "C" + d, err
}

// Inquire returns a bank's credit by its transfer reference (KECIS §15.8
// inquire); NOT_FOUND "no such transfer" when there is none.
func (b *Bank) Inquire(ctx context.Context, fromBank, reference string) (*Credit, error) {
	return b.credit(ctx, `i.from_bank = $1 AND i.reference = $2`, fromBank, reference)
}

func (b *Bank) credit(ctx context.Context, where string, args ...any) (*Credit, error) {
	var c Credit
	var amount int64
	err := b.db.QueryRowContext(ctx, `SELECT i.id, i.from_bank, i.reference, a.last4, i.amount, i.currency, i.remitter_name,
		i.purpose, i.created_at FROM bank_incoming i JOIN bank_accounts a ON a.id = i.account_id WHERE `+where, args...).Scan(&c.Reference, &c.FromBank, &c.TheirReference,
		&c.AccountLast4, &amount, &c.Amount.Currency, &c.RemitterName, &c.Purpose, sqlstore.ScanTime(&c.CreatedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such transfer")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read credit: %w", err)
	}
	c.Amount.Minor, c.State = amount, CreditCredited
	return &c, nil
}
