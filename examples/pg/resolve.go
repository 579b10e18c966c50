package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// settled is what settle decided, for the log.
type settled struct {
	skip     bool // another caller settled the operation first
	op       *opRow
	t        *txRow
	status   OpStatus
	code     ResultCode
	detail   string
	txStatus Status
	reason   string // why it stays pending
	mismatch string // the issuer's figures disagree with the PG's

	// With want set, finish reads back the rows it wrote (RETURNING):
	// done is the operation and pay the transaction as they now stand,
	// with buyer its sealed buyer data.
	want  bool
	done  *opRow
	pay   *Payment
	buyer []byte
}

// settle records a gateway answer to a pending operation, in one write
// transaction with the transaction it belongs to. An operation that is no
// longer pending (a concurrent inquiry settled it) is left alone, so that
// late and repeated answers are harmless. An answer that decides nothing
// only counts the attempt: the operation stays pending.
func (p *PG) settle(ctx context.Context, opID string, a *answer) error {
	_, err := p.settleAs(ctx, opID, a, false)
	return err
}

// settleAs is settle; it returns what it decided, with want the rows
// finish wrote as they now stand (settled.done, settled.pay).
func (p *PG) settleAs(ctx context.Context, opID string, a *answer, want bool) (*settled, error) {
	var s settled
	now := p.now()
	err := p.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		s = settled{want: want}
		o, t, err := p.opAndTx(ctx, tx, opID)
		if err != nil {
			return err
		}
		if o.status != OpPending {
			s.skip = true
			return nil
		}
		s.op, s.t = o, t
		return p.apply(ctx, tx, o, t, a, now, &s)
	})
	if err != nil {
		return nil, fmt.Errorf("pg: record gateway answer for %s: %w", opID, err)
	}
	p.logSettled(ctx, &s, a)
	return &s, nil
}

// opAndTx reads a pending operation's row and its transaction's inside a
// write transaction. On SQLite, whose one writer excludes every other
// (BEGIN IMMEDIATE), one join reads both. On PostgreSQL the operation is
// read for its transaction, then both are locked in the lock order of
// Cancel and Refund: the transaction, then its operation, read again
// under the lock.
func (p *PG) opAndTx(ctx context.Context, tx *sql.Tx, opID string) (*opRow, *txRow, error) {
	if p.db.Dialect == sqlstore.SQLite {
		var o opRow
		var t txRow
		var kind, status, code, tstatus string
		err := tx.QueryRowContext(ctx, `SELECT o.op_id, o.tid, o.kind, o.amount, o.reason, o.gateway_key, o.status,
			o.result_code, o.result_detail, o.attempts, o.created_at, o.done_at, o.last_attempt_at,
			t.tid, t.mid, t.order_no, t.status, t.amount, t.cancelled_amount, t.approval_no, t.masked_card, t.pending_op,
			t.biz_date FROM pgw_operations o JOIN pgw_transactions t ON t.tid = o.tid WHERE o.op_id = $1`, opID).
			Scan(&o.id, &o.tid, &kind, &o.amount, &o.reason, &o.gwKey, &status, &code, &o.detail, &o.attempts,
				sqlstore.ScanTime(&o.createdAt), sqlstore.ScanTime(&o.doneAt), sqlstore.ScanTime(&o.lastAttempt),
				&t.tid, &t.mid, &t.orderNo, &tstatus, &t.amount, &t.cancelled, &t.approvalNo, &t.masked, &t.pendingOp,
				&t.bizDate)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("pg: read operation: %w", err)
		}
		o.kind, o.status, o.code, t.status = OpKind(kind), OpStatus(status), ResultCode(code), Status(tstatus)
		return &o, &t, nil
	}
	o, err := p.opRow(ctx, tx, opID)
	if err != nil {
		return nil, nil, err
	}
	t, err := p.txRow(ctx, tx, o.tid, true)
	if err != nil {
		return nil, nil, err
	}
	if o, err = scanOp(tx.QueryRowContext(ctx, `SELECT `+opColumns+` FROM pgw_operations WHERE op_id = $1`+p.forUpdate(), opID)); err != nil {
		return nil, nil, err
	}
	return o, t, nil
}

// apply decides what an answer means for the operation and its
// transaction, and writes it.
func (p *PG) apply(ctx context.Context, tx *sql.Tx, o *opRow, t *txRow, a *answer, now time.Time, s *settled) error {
	switch {
	case a.kind == unknown:
		s.reason = a.reason
		return p.keepPending(ctx, tx, o, a, now)
	case a.kind == notProcessed:
		detail := a.message
		if detail == "" {
			detail = fmt.Sprintf("the issuer gateway refused the request (HTTP %d)", a.httpStatus)
		}
		return p.finish(ctx, tx, o, t, a, OpFailed, notProcessedCode(a.problem), detail, now, s)
	case !a.success():
		code, pending := refusalCode(o.kind, a.subStatus)
		if code == CodeBeforeSettlement && o.amount >= t.amount-t.cancelled {
			// The whole balance: not "partial" — a cancel does it now.
			code = CodeCancelInstead
		}
		if pending {
			s.reason = "answered " + a.status + "/" + a.subStatus
			return p.keepPending(ctx, tx, o, a, now)
		}
		detail := a.message
		if detail == "" {
			detail = a.subStatus
		}
		return p.finish(ctx, tx, o, t, a, OpRefused, code, detail, now, s)
	case o.kind == OpApprove && !validApprovalNo(a.fields[fApprovalCode]):
		s.reason = "answered Success without a valid approval number"
		return p.keepPending(ctx, tx, o, a, now)
	}
	return p.finish(ctx, tx, o, t, a, OpDone, CodeSuccess, "", now, s)
}

// keepPending counts an attempt that decided nothing.
func (p *PG) keepPending(ctx context.Context, tx *sql.Tx, o *opRow, a *answer, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE pgw_operations SET attempts = attempts + 1, last_attempt_at = $1,
		sub_status = $2, request_id = CASE WHEN $3 = '' THEN request_id ELSE $3 END,
		result_detail = 'awaiting the issuer''s answer' WHERE op_id = $4`,
		p.t(now), a.subStatus, a.requestID, o.id); err != nil {
		return fmt.Errorf("pg: update operation: %w", err)
	}
	return nil
}

// finish ends an operation and applies its effect to the transaction.
func (p *PG) finish(ctx context.Context, tx *sql.Tx, o *opRow, t *txRow, a *answer, st OpStatus, code ResultCode,
	detail string, now time.Time, s *settled) error {
	s.status, s.code, s.detail = st, code, detail
	q := `UPDATE pgw_operations SET status = $1, result_code = $2, result_detail = $3,
		sub_status = $4, request_id = CASE WHEN $5 = '' THEN request_id ELSE $5 END, attempts = attempts + 1,
		last_attempt_at = $6, done_at = $6 WHERE op_id = $7`
	args := []any{string(st), string(code), detail, a.subStatus, a.requestID, p.t(now), o.id}
	if s.want {
		done, err := scanOp(tx.QueryRowContext(ctx, q+` RETURNING `+opColumns, args...))
		if err != nil {
			return fmt.Errorf("pg: finish operation: %w", err)
		}
		s.done = done
	} else if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("pg: finish operation: %w", err)
	}

	// The transaction after the operation.
	n := struct {
		status      Status
		cancelled   int64
		approvalNo  string
		approvedAt  time.Time
		cancelledAt bool
		state       string
	}{status: t.status, cancelled: t.cancelled, approvalNo: t.approvalNo}
	state := a.fields[fResponseData]
	if !validState(state) {
		state = ""
	}
	switch {
	case o.kind == OpApprove && st == OpDone:
		n.approvalNo, n.approvedAt, n.state = a.fields[fApprovalCode], now, state
		n.status = StatusApproved
		switch state {
		case issuerCancelled:
			n.status, n.cancelled, n.cancelledAt = StatusCancelled, t.amount, true
		case issuerRefunded:
			n.status, n.cancelled, n.cancelledAt = StatusRefunded, t.amount, true
		case issuerPartiallyRefunded:
			if r, ok := refundedFromFields(a.fields); ok && r > 0 && r < t.amount {
				n.status, n.cancelled, n.cancelledAt = StatusPartRefunded, r, true
			}
		}
		if v, err := parseAmount(a.fields[fAmount]); a.fields[fAmount] != "" && (err != nil || v != t.amount) {
			s.mismatch = "the issuer reports another approved amount"
		}
	case o.kind == OpApprove && st == OpRefused:
		n.status = StatusDeclined
	case o.kind == OpApprove:
		n.status = StatusFailed
	case o.kind == OpCancel && st == OpDone:
		n.status, n.cancelled, n.cancelledAt, n.state = StatusCancelled, t.amount, true, issuerCancelled
	case o.kind == OpRefund && st == OpDone:
		n.cancelled = min(t.cancelled+o.amount, t.amount)
		n.status, n.state, n.cancelledAt = StatusPartRefunded, issuerPartiallyRefunded, true
		if n.cancelled == t.amount {
			n.status, n.state = StatusRefunded, issuerRefunded
		}
		if r, ok := refundedFromFields(a.fields); ok && r != n.cancelled {
			s.mismatch = fmt.Sprintf("the issuer reports %d won refunded, the PG %d", r, n.cancelled)
		}
	}
	if state != "" {
		n.state = state
	}
	s.txStatus = n.status
	pendingOp := t.pendingOp
	if pendingOp == o.id {
		pendingOp = ""
	}
	var cancelledAt any
	if n.cancelledAt {
		cancelledAt = p.t(now)
	}
	// The approval's outcome is the transaction's result; a cancel's or
	// refund's leaves it as it was.
	approval := o.kind == OpApprove
	q = `UPDATE pgw_transactions SET status = $1, cancelled_amount = $2, approval_no = $3,
		pending_op = $4, issuer_state = CASE WHEN $5 = '' THEN issuer_state ELSE $5 END,
		approved_at = COALESCE(approved_at, $6), cancelled_at = COALESCE($7, cancelled_at), updated_at = $8,
		result_code = CASE WHEN $9 THEN $10 ELSE result_code END,
		result_detail = CASE WHEN $9 THEN $11 ELSE result_detail END
		WHERE tid = $12`
	args = []any{string(n.status), n.cancelled, n.approvalNo, pendingOp, n.state, p.nullTime(n.approvedAt), cancelledAt,
		p.t(now), approval, string(code), detail, t.tid}
	if s.want {
		pay, buyer, err := scanPayment(tx.QueryRowContext(ctx, q+` RETURNING `+txReturning, args...))
		if err != nil {
			return fmt.Errorf("pg: update transaction: %w", err)
		}
		s.pay, s.buyer = pay, buyer
	} else if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("pg: update transaction: %w", err)
	}
	return p.addDailyTotal(ctx, tx, t.mid, t.bizDate,
		dailyUse(n.status, t.amount, n.cancelled)-dailyUse(t.status, t.amount, t.cancelled))
}

// logSettled writes one line per settled answer: never the card number
// (the transaction holds only its masked form anyway).
func (p *PG) logSettled(ctx context.Context, s *settled, a *answer) {
	if s.skip {
		p.log.DebugContext(ctx, "gateway answer for an operation already settled")
		return
	}
	o, t := s.op, s.t
	attrs := []any{"tid", t.tid, "mid", t.mid, "order_no", t.orderNo, "op", o.id, "amount", o.amount, "card", t.masked}
	if a.requestID != "" {
		attrs = append(attrs, "request_id", a.requestID)
	}
	if s.mismatch != "" {
		p.log.WarnContext(ctx, "issuer figures disagree", append(attrs, "detail", s.mismatch)...)
	}
	if s.status == "" {
		p.log.WarnContext(ctx, string(o.kind)+" pending", append(attrs, "attempt", o.attempts+1, "reason", s.reason)...)
		return
	}
	attrs = append(attrs, "code", s.code, "status", s.txStatus)
	level, msg := slog.LevelInfo, ""
	switch {
	case s.status == OpDone && o.kind == OpApprove:
		msg = "payment approved"
		attrs = append(attrs, "approval_no", a.fields[fApprovalCode])
	case s.status == OpDone && o.kind == OpCancel:
		msg = "payment cancelled"
	case s.status == OpDone:
		msg = "payment refunded"
	case s.status == OpRefused && o.kind == OpApprove:
		msg = "payment declined"
	case s.status == OpRefused:
		msg = string(o.kind) + " refused by the issuer"
	default:
		level, msg = slog.LevelWarn, string(o.kind)+" not processed"
	}
	if s.detail != "" {
		attrs = append(attrs, "detail", s.detail)
	}
	if a.subStatus != "" {
		attrs = append(attrs, "sub_status", a.subStatus)
	}
	p.log.Log(ctx, level, msg, attrs...)
}

// ResolvePending settles every operation whose outcome is unknown — an
// approval, cancel or refund that ran into a timeout, a pending or
// unavailable answer or a transport error — by asking the issuer.
//
// It inquires each one by its order (the TID) and approval number:
//
//   - an approval the issuer has is recorded with its state (APPROVED, or
//     whatever became of it);
//   - an approval the issuer has no record of stays pending for
//     Config.PendingGrace after it was sent (the request may still be in
//     flight), then is given up as never processed (FAILED, "2002"): it
//     never counts as a decline;
//   - a cancel or refund that the inquiry shows carried out is recorded;
//     otherwise it is sent again under its original Idempotency-Key,
//     which the issuer side either carries out now or answers with the
//     outcome it already had, so it is never done twice.
//
// Operations whose inquiry gets no answer stay pending for the next run.
// Errors of single operations are joined; the others are still resolved.
func (p *PG) ResolvePending(ctx context.Context) (ResolveReport, error) {
	var rep ResolveReport
	rows, err := p.db.QueryContext(ctx, `SELECT op_id FROM pgw_operations WHERE status = 'PENDING'
		ORDER BY created_at, op_id LIMIT 1000`)
	if err != nil {
		return rep, fmt.Errorf("pg: list pending operations: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return rep, fmt.Errorf("pg: list pending operations: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("pg: list pending operations: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Checked++
		done, err := p.resolveOp(ctx, id)
		switch {
		case err != nil:
			errs = append(errs, err)
			rep.StillPending++
		case done:
			rep.Resolved++
		default:
			rep.StillPending++
		}
	}
	if rep.Checked > 0 {
		p.log.InfoContext(ctx, "pending transactions resolved", "checked", rep.Checked, "resolved", rep.Resolved,
			"still_pending", rep.StillPending)
	}
	return rep, errors.Join(errs...)
}

// resolveOp inquires one pending operation and settles it; done is true
// when it is no longer pending.
func (p *PG) resolveOp(ctx context.Context, opID string) (done bool, err error) {
	o, err := p.opRow(ctx, p.db, opID)
	if err != nil {
		return false, fmt.Errorf("pg: resolve %s: %w", opID, err)
	}
	if o.status != OpPending {
		return true, nil
	}
	if o.attempts == 0 && p.now().Sub(o.createdAt) < p.gw.timeout {
		// The original call has not come back yet: it is still in flight
		// (or its process died, which the timeout will tell).
		return false, nil
	}
	t, err := p.txRow(ctx, p.db, o.tid, false)
	if err != nil {
		return false, fmt.Errorf("pg: resolve %s: %w", opID, err)
	}
	fields := map[string]string{fOrderID: t.tid, fType: "credit"}
	if t.approvalNo != "" {
		fields[fApprovalCode] = t.approvalNo
	}
	inq := p.gw.call(ctx, "inquire", "", binOf(t.masked), fields)
	var a answer
	switch {
	case o.kind == OpApprove && inq.success():
		a = inq
	case o.kind == OpApprove && noRecord(&inq):
		if p.now().Sub(o.createdAt) >= p.grace {
			a = answer{kind: notProcessed, httpStatus: inq.httpStatus,
				message: "the issuer has no record of this approval: nothing was charged"}
		} else {
			a = answer{kind: unknown, reason: "the issuer has no record of it yet"}
		}
	case o.kind == OpApprove:
		a = answer{kind: unknown, reason: "inquiry: " + describe(&inq)}
	case inq.success() && applied(o, t, &inq):
		a = inq
	case inq.kind == answered:
		// Not carried out as far as the issuer knows: send it again under
		// its own key; the answer decides.
		a = p.gw.call(ctx, string(o.kind), o.gwKey, binOf(t.masked), changeFields(o.kind, t, o.amount))
	default:
		a = answer{kind: unknown, reason: "inquiry: " + describe(&inq)}
	}
	s, err := p.settleAs(ctx, opID, &a, false)
	if err != nil {
		return false, err
	}
	// Settled now or by another caller first: no longer pending.
	return s.skip || s.status != "", nil
}

// noRecord reports whether an inquiry answer says the issuer does not
// know the transaction (rather than refusing the inquiry itself).
func noRecord(a *answer) bool {
	if a.kind != answered || a.status != "Requester" {
		return false
	}
	switch a.subStatus {
	case "", "Declined", "NotFound", "UnknownTransaction":
		return true
	}
	return false
}

// applied reports whether an inquiry shows a cancel or refund carried out.
func applied(o *opRow, t *txRow, inq *answer) bool {
	state := inq.fields[fResponseData]
	switch o.kind {
	case OpCancel:
		return state == issuerCancelled
	case OpRefund:
		if r, ok := refundedFromFields(inq.fields); ok {
			return r >= t.cancelled+o.amount
		}
		return state == issuerRefunded && t.cancelled+o.amount == t.amount
	}
	return false
}

// validApprovalNo accepts an issuer approval number: 1–12 letters, digits
// or hyphens (ECML Ecom_Transaction_ApprovalCode is at most 12).
func validApprovalNo(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// validState accepts an issuer-reported state worth storing: a short
// lower-case word such as "partially-refunded".
func validState(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func describe(a *answer) string {
	switch a.kind {
	case unknown:
		return a.reason
	case notProcessed:
		return fmt.Sprintf("refused (HTTP %d %s)", a.httpStatus, a.problem)
	}
	return a.status + "/" + a.subStatus
}
