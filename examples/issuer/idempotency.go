package issuer

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
// The key is looked up first: a repeat with the same operation and
// fingerprint returns the recorded outcome without running fn; any other
// reuse of the key is an IdempotencyConflict. A new key's record is
// written after fn, with fn's outcome, by one INSERT: the usual request
// writes its record once. A concurrent call with the same key (PostgreSQL;
// SQLite runs one writer at a time) then fails that INSERT with a
// unique-key violation, which rolls back fn's effects with it, and write
// reruns the call, which finds the committed record.
//
// fn returns the reference of its result, or a business error (*Error)
// that is committed with the record (a decline still counts a wrong
// password, and its repeat must not count it again), or an error that
// rolls everything back. fn's statements use the ctx it is given (see
// write). Requests refused by input validation never reach here and are
// not recorded: the same input is refused the same way again.
func (i *Issuer) idempotent(ctx context.Context, scope, key, op string, fp []byte, now time.Time,
	fn func(ctx context.Context, tx *sql.Tx) (ref string, berr *Error, err error)) (outcome, error) {
	var out outcome
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = outcome{}
		var storedOp, code, msg, ref string
		var storedFP []byte
		err := tx.QueryRowContext(ctx, `SELECT operation, fingerprint, result_code, result_message, ref
			FROM issuer_idempotency WHERE scope = $1 AND idem_key = $2`, scope, key).
			Scan(&storedOp, &storedFP, &code, &msg, &ref)
		switch {
		case err == nil:
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
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("issuer: read idempotency key: %w", err)
		}
		ref, berr, err := fn(ctx, tx)
		if err != nil {
			return err
		}
		code, msg = "", ""
		if berr != nil {
			code, msg = string(berr.Code), berr.Message
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_idempotency
			(scope, idem_key, operation, fingerprint, result_code, result_message, ref, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			scope, key, op, fp, code, msg, ref, i.t(now)); err != nil {
			return fmt.Errorf("issuer: record idempotent outcome: %w", err)
		}
		out.ref, out.err = ref, berr
		return nil
	})
	return out, err
}
