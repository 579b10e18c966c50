package bank

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Operation names stored with an idempotency key: one key serves one
// operation only.
const (
	opNewCustomer   = "new_customer"
	opOpenAccount   = "open_account"
	opCloseAccount  = "close_account"
	opDeposit       = "deposit"
	opTransfer      = "transfer"
	opSendOut       = "send_out"
	opCreditIn      = "credit_in"
	opReverseOut    = "reverse_out"
	opConfirmOut    = "confirm_out"
	opEscrowFund    = "escrow_fund"
	opEscrowRelease = "escrow_release"
	opEscrowRefund  = "escrow_refund"
)

// scopeBank is the scope of the bank's own callers (its pages, its
// engines, its administrators); another bank's credits are scoped by its
// code, so that two banks' keys never meet.
const scopeBank = "bank"

func bankScope(code string) string { return "bank:" + code }

// outcome is what an idempotent operation decided: the reference of what
// it created or changed, or the business error it ended with, and whether
// it repeats an earlier call.
type outcome struct {
	ref      string
	err      *Error
	replayed bool
}

// idempotent runs fn once per (scope, key) in one write transaction with
// the key's record: the record is claimed first (INSERT … ON CONFLICT DO
// NOTHING), so a concurrent call with the same key waits on it and then
// finds the committed record. A repeat with the same operation and
// fingerprint returns the recorded outcome without running fn; any other
// reuse is IDEMPOTENCY_CONFLICT. fn's business error (*Error) is committed
// with the record; any other error rolls everything back, the claim too.
func (b *Bank) idempotent(ctx context.Context, scope, key, op string, fp []byte, now time.Time,
	fn func(tx *sql.Tx) (ref string, berr *Error, err error)) (outcome, error) {
	var out outcome
	err := b.write(ctx, func(tx *sql.Tx) error {
		out = outcome{}
		res, err := tx.ExecContext(ctx, `INSERT INTO bank_idempotency (scope, idem_key, operation, fingerprint, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, idem_key) DO NOTHING`, scope, key, op, fp, b.t(now))
		if err != nil {
			return fmt.Errorf("bank: claim idempotency key: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("bank: claim idempotency key: %w", err)
		}
		if n == 0 {
			var storedOp, code, msg, ref string
			var storedFP []byte
			if err := tx.QueryRowContext(ctx, `SELECT operation, fingerprint, result_code, result_message, ref
				FROM bank_idempotency WHERE scope = $1 AND idem_key = $2`, scope, key).
				Scan(&storedOp, &storedFP, &code, &msg, &ref); err != nil {
				return fmt.Errorf("bank: read idempotency key: %w", err)
			}
			if storedOp != op || !hmac.Equal(storedFP, fp) {
				out.err = newError(CodeIdempotencyConflict, "the idempotency key was already used with different parameters")
				return nil
			}
			out.replayed, out.ref = true, ref
			if code != "" {
				out.err = newError(Code(code), msg)
			}
			return nil
		}
		ref, berr, err := fn(tx)
		if err != nil {
			return err
		}
		var code, msg string
		if berr != nil {
			code, msg = string(berr.Code), berr.Message
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bank_idempotency SET result_code = $1, result_message = $2, ref = $3
			WHERE scope = $4 AND idem_key = $5`, code, msg, ref, scope, key); err != nil {
			return fmt.Errorf("bank: record idempotent outcome: %w", err)
		}
		out.ref, out.err = ref, berr
		return nil
	})
	return out, err
}

// Outcome is what an earlier request of the bank's own callers came to,
// found by its idempotency key.
type Outcome struct {
	// Operation is the request's: "transfer", "send_out", "deposit", …
	Operation string
	// Reference is what it created or changed: a Transfer's or Deposit's
	// journal, a SendOut's transfer reference (OutgoingTransfer).
	Reference string
	// Err is the business refusal it ended with, nil when it succeeded.
	Err *Error
}

// Outcome looks up a request of the bank's own callers by its idempotency
// key without running anything (a transfer-result inquiry, 이체결과조회): a
// caller whose call's outcome is unknown learns whether the bank took it.
// NOT_FOUND when the bank never committed a request under the key (a
// request still running commits with its key, or not at all).
func (b *Bank) Outcome(ctx context.Context, idempotencyKey string) (*Outcome, error) {
	var o Outcome
	var code, msg string
	err := b.db.QueryRowContext(ctx, `SELECT operation, result_code, result_message, ref FROM bank_idempotency
		WHERE scope = $1 AND idem_key = $2`, scopeBank, idempotencyKey).Scan(&o.Operation, &code, &msg, &o.Reference)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no request under this key")
	}
	if err != nil {
		return nil, fmt.Errorf("bank: read idempotency key: %w", err)
	}
	if code != "" {
		o.Err = newError(Code(code), msg)
	}
	return &o, nil
}
