package issuer

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"fmt"
	"time"
)

// Operation names stored with an idempotency key: one key serves one
// operation only.
const (
	opIssueCard = "issue_card"
	opApprove   = "approve"
	opVerify    = "approve_verification"
	opCancel    = "cancel"
	opRefund    = "refund"
)

const adminScope = "admin"

func merchantScope(id string) string { return "merchant:" + id }

// outcome is what an idempotent operation decided: the reference of what
// it created or changed (approval number, refund or card ID) or the
// business error it ended with, and whether it repeats an earlier call.
type outcome struct {
	ref      string
	err      *Error
	replayed bool
}

// idempotent runs fn once per (scope, key) in one write transaction
// together with the key's record.
//
// The record is claimed first (INSERT … ON CONFLICT DO NOTHING), so that a
// concurrent call with the same key waits on it (PostgreSQL row lock,
// SQLite write lock) and then finds the committed record. A repeat with
// the same operation and fingerprint returns the recorded outcome without
// running fn; any other reuse of the key is an IdempotencyConflict.
//
// fn returns the reference of its result, or a business error (*Error)
// that is committed with the record (a decline still counts a wrong
// password, and its repeat must not count it again), or an error that
// rolls everything back, the claim included. Requests refused by input
// validation never reach here and are not recorded: the same input is
// refused the same way again.
func (i *Issuer) idempotent(ctx context.Context, scope, key, op string, fp []byte, now time.Time,
	fn func(tx *sql.Tx) (ref string, berr *Error, err error)) (outcome, error) {
	var out outcome
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = outcome{}
		res, err := tx.ExecContext(ctx, `INSERT INTO issuer_idempotency
			(scope, idem_key, operation, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (scope, idem_key) DO NOTHING`,
			scope, key, op, fp, i.t(now))
		if err != nil {
			return fmt.Errorf("issuer: claim idempotency key: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("issuer: claim idempotency key: %w", err)
		}
		if n == 0 {
			var storedOp, code, msg, ref string
			var storedFP []byte
			if err := tx.QueryRowContext(ctx, `SELECT operation, fingerprint, result_code, result_message, ref
				FROM issuer_idempotency WHERE scope = $1 AND idem_key = $2`, scope, key).
				Scan(&storedOp, &storedFP, &code, &msg, &ref); err != nil {
				return fmt.Errorf("issuer: read idempotency key: %w", err)
			}
			if storedOp != op || !hmac.Equal(storedFP, fp) {
				out.err = newError(CodeIdempotencyConflict,
					"the idempotency key was already used with different parameters")
				return nil
			}
			out.replayed = true
			out.ref = ref
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
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_idempotency
			SET result_code = $1, result_message = $2, ref = $3 WHERE scope = $4 AND idem_key = $5`,
			code, msg, ref, scope, key); err != nil {
			return fmt.Errorf("issuer: record idempotent outcome: %w", err)
		}
		out.ref, out.err = ref, berr
		return nil
	})
	return out, err
}
