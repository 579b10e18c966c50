package pg

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
	idemPay    = "pay"
	idemCancel = "cancel"
	idemRefund = "refund"
)

// claim is what the idempotency record of a (merchant, key) says.
type claim struct {
	fresh    bool   // the key is new: this call does the work
	replayed bool   // the key was used for the same request before
	tid      string // the transaction the earlier call created or changed
	opID     string // the gateway operation it started
	err      *Error // its recorded refusal, or a conflict
}

// claim takes (mid, key) for this call inside tx, or reads what an earlier
// call with the key recorded.
//
// The record is inserted first (INSERT … ON CONFLICT DO NOTHING), so that
// a concurrent call with the same key waits on it (PostgreSQL row lock,
// SQLite write lock) and then finds the committed record. A repeat with
// the same operation and fingerprint is a replay; any other reuse of the
// key is CodeIdempotencyConflict. Rolling tx back releases the key.
func (p *PG) claim(ctx context.Context, tx *sql.Tx, mid, key, op string, fp []byte, now time.Time) (claim, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO pgw_idempotency (mid, idem_key, operation, fingerprint, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mid, idem_key) DO NOTHING`, mid, key, op, fp, p.t(now))
	if err != nil {
		return claim{}, fmt.Errorf("pg: claim idempotency key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return claim{}, fmt.Errorf("pg: claim idempotency key: %w", err)
	}
	if n == 1 {
		return claim{fresh: true}, nil
	}
	var storedOp, code, detail string
	var storedFP []byte
	var c claim
	if err := tx.QueryRowContext(ctx, `SELECT operation, fingerprint, tid, op_id, result_code, result_detail
		FROM pgw_idempotency WHERE mid = $1 AND idem_key = $2`, mid, key).
		Scan(&storedOp, &storedFP, &c.tid, &c.opID, &code, &detail); err != nil {
		return claim{}, fmt.Errorf("pg: read idempotency key: %w", err)
	}
	if storedOp != op || !hmac.Equal(storedFP, fp) {
		return claim{err: newError(CodeIdempotencyConflict, "the Idempotency-Key was already used for another request")}, nil
	}
	c.replayed = true
	if code != "" {
		c.err = newError(ResultCode(code), detail)
	}
	return c, nil
}

// errClaimFirst undoes an attempt that took its key with its outcome
// (claimWith) when the key must be claimed first.
var errClaimFirst = errors.New("pg: the idempotency key is taken: claim it first")

// claimWith takes (mid, key) for this call inside tx together with the
// outcome, as claim and record do in two statements; the insert does
// nothing when the key is taken (a concurrent call's insert is waited
// for, as in claim), and claimWith then returns errClaimFirst, so that
// rolling tx back undoes the attempt and the call is decided again by
// claim.
func (p *PG) claimWith(ctx context.Context, tx *sql.Tx, mid, key, op string, fp []byte, now time.Time, tid, opID string, refusal *Error) error {
	var code, detail string
	if refusal != nil {
		code, detail = string(refusal.Code), refusal.Detail
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO pgw_idempotency (mid, idem_key, operation, fingerprint, tid, op_id,
		result_code, result_detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (mid, idem_key) DO NOTHING`, mid, key, op, fp, tid, opID, code, detail, p.t(now))
	if err != nil {
		return fmt.Errorf("pg: claim idempotency key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("pg: claim idempotency key: %w", err)
	}
	if n != 1 {
		return errClaimFirst
	}
	return nil
}

// record stores the outcome of a fresh claim: the transaction and
// operation it created, or the refusal it ended with.
func (p *PG) record(ctx context.Context, tx *sql.Tx, mid, key, tid, opID string, refusal *Error) error {
	var code, detail string
	if refusal != nil {
		code, detail = string(refusal.Code), refusal.Detail
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pgw_idempotency SET tid = $1, op_id = $2, result_code = $3, result_detail = $4
		WHERE mid = $5 AND idem_key = $6`, tid, opID, code, detail, mid, key); err != nil {
		return fmt.Errorf("pg: record idempotent outcome: %w", err)
	}
	return nil
}

// transient reports whether a refusal depends on a state that passes (an
// operation in flight, a suspended merchant, a transaction that may yet
// appear): such refusals are not recorded under the key, so that a retry
// with the same key is decided afresh.
func transient(e *Error) bool {
	switch e.Code {
	case CodeOperationPending, CodeMerchantInactive, CodeNotFound:
		return true
	}
	return false
}
