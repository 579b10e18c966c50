package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// Pay approves a card payment (승인). In order, it checks the request, the
// card number (Luhn) and expiry, the merchant (ACTIVE), the order (no
// other live transaction), and the contract (BIN prefixes, per-transaction
// maximum, daily limit); then it records the transaction as PENDING with
// the masked card, forwards the approval to the issuer gateway, and
// records the answer:
//
//   - approved: APPROVED with the issuer's approval number, ResultCode
//     "0000";
//   - refused by the issuer: DECLINED, ResultCode the mapped decline
//     ("3011"…"3019");
//   - no answer (pending, unavailable, timeout, transport error): stays
//     PENDING, ResultCode "2001". It is never taken for a decline:
//     ResolvePending, or a retry with the same Idempotency-Key, inquires
//     and records the truth;
//   - refused by the gateway before any issuer saw it: FAILED, "2002" or
//     "3016".
//
// Refusals before the gateway is called are *Error values and create no
// transaction. The approval carries req.Authentication, opaque, to the
// issuer gateway (authentication_results), with req.AuthValue
// (Ecom_Transaction_AAV) and, when set, req.MerchantRef as the shop's ID
// (Ecom_Merchant_ID), and nothing keeps them. A repeat with the same Idempotency-Key and request returns
// the same transaction (Replayed set) without calling the issuer again;
// another request under the key is CodeIdempotencyConflict.
func (p *PG) Pay(ctx context.Context, req PayRequest) (*Payment, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkMID(req.MID); e != nil {
		return nil, e
	}
	if e := checkOrderNo(req.OrderNo); e != nil {
		return nil, e
	}
	if e := checkAmount("amount", req.Amount); e != nil {
		return nil, e
	}
	if e := checkText("productName", req.ProductName, 100, false); e != nil {
		return nil, e
	}
	if e := checkAuthentication(req.Authentication); e != nil {
		return nil, e
	}
	if e := checkToken("aav", req.AuthValue, MaxAuthValueLen); e != nil {
		return nil, e
	}
	if e := checkToken("merchantRef", req.MerchantRef, MaxMerchantRefLen); e != nil {
		return nil, e
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"buyerName", req.Buyer.Name, 50}, {"buyerTel", req.Buyer.Tel, 20}, {"buyerEmail", req.Buyer.Email, 100}} {
		if e := checkText(f.name, f.v, f.max, false); e != nil {
			return nil, e
		}
	}
	pan := normCardNo(req.CardNo.Reveal())
	now := p.now()
	expYear, e := p.checkCard(pan, req.ExpMonth, req.ExpYear, now)
	if e != nil {
		return nil, e
	}
	var err error
	fp := p.vault.fingerprint(idemPay, req.MID, req.OrderNo, strconv.FormatInt(req.Amount, 10), pan,
		strconv.Itoa(req.ExpMonth), strconv.Itoa(expYear), req.ProductName, req.Buyer.Name, req.Buyer.Tel, req.Buyer.Email)

	// What the payment stores and sends that does not depend on its TID
	// is encoded here, before it waits for the database's one writer.
	prep := prepared{masked: MaskCardNo(pan)}
	if prep.buyer, err = buyerText(req.Buyer); err != nil {
		return nil, err
	}
	if prep.keySuffix, err = randomToken(p.rand, 5); err != nil {
		return nil, err
	}
	var c claim
	var gwKey, merchantName string
	// A payment's key is almost always new: the first attempt takes it
	// with its outcome in one insert at the end (claimWith) instead of
	// claiming it first and recording the outcome after. When the key
	// turns out to be taken, or the outcome is a transient refusal (which
	// a recorded outcome under the key would have answered instead), the
	// attempt leaves no trace and the payment runs again claiming the key
	// first, as cancels and refunds always do.
	claimFirst := false
	for {
		err = p.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			c = claim{fresh: true}
			if claimFirst {
				if c, err = p.claim(ctx, tx, req.MID, req.IdempotencyKey, idemPay, fp, now); err != nil || !c.fresh {
					return err
				}
			}
			tid, opID, key, name, refusal, err := p.openPayment(ctx, tx, &req, pan, &prep, now)
			if err != nil {
				return err
			}
			if refusal != nil && transient(refusal) {
				if !claimFirst {
					return errClaimFirst
				}
				return refusal
			}
			c.tid, c.opID, c.err, gwKey, merchantName = tid, opID, refusal, key, name
			if !claimFirst {
				return p.claimWith(ctx, tx, req.MID, req.IdempotencyKey, idemPay, fp, now, tid, opID, refusal)
			}
			return p.record(ctx, tx, req.MID, req.IdempotencyKey, tid, opID, refusal)
		})
		if claimFirst || !errors.Is(err, errClaimFirst) {
			break
		}
		claimFirst = true
	}
	if err != nil {
		return nil, err
	}
	if c.err != nil {
		if c.fresh {
			p.log.InfoContext(ctx, "payment refused", "mid", req.MID, "order_no", req.OrderNo, "amount", req.Amount,
				"card", req.CardNo, "code", c.err.Code, "detail", c.err.Detail)
		}
		return nil, c.err
	}
	if c.replayed {
		return p.replay(ctx, req.MID, c)
	}
	fields := map[string]string{
		fOrderID: c.tid, fAmount: strconv.FormatInt(req.Amount, 10), fCurrency: Currency, fType: "credit",
		fCardNumber: pan, fExpMonth: fmt.Sprintf("%02d", req.ExpMonth), fExpYear: strconv.Itoa(expYear),
		// The sub-merchant: the shop the cardholder buys from, by its name
		// and the PG's ID for it (the card acceptor ID), so that the
		// issuer's text names the shop rather than the PG.
		fMerchant: merchantName, fMerchantID: req.MID,
	}
	// Through KECIS the issuer knows the shop by its entityID, to which a
	// cardholder authentication value is bound (KECIS §15.7); the value
	// goes with the approval and is kept nowhere.
	if req.MerchantRef != "" {
		fields[fMerchantID] = req.MerchantRef
	}
	if req.AuthValue != "" {
		fields[fAAV] = req.AuthValue
	}
	// From here on the outcome is recorded even if the merchant hangs up.
	ctx = context.WithoutCancel(ctx)
	a := p.gw.callWith(ctx, string(OpApprove), gwKey, binOf(pan), fields, req.Authentication)
	s, err := p.settleAs(ctx, c.opID, &a, true)
	if err != nil {
		return nil, err
	}
	if pay, err := p.settledPayment(s); pay != nil || err != nil {
		return pay, err
	}
	return p.result(ctx, req.MID, c.tid, c.opID, false)
}

// settledPayment is what result would read after settle finished a new
// payment's approval, from the rows settle wrote (RETURNING) instead of
// reading them again: the transaction, no longer waiting, with its one
// operation, the approval, whose outcome is the result. Nil when the
// answer left the approval pending (or another caller settled it first):
// result reads the stored state then.
func (p *PG) settledPayment(s *settled) (*Payment, error) {
	if s.pay == nil || s.done == nil || s.pay.PendingOperation != "" {
		return nil, nil
	}
	pay := s.pay
	var err error
	if pay.Buyer, err = p.vault.openBuyer(pay.TID, s.buyer); err != nil {
		return nil, err
	}
	pay.Operations = []Operation{s.done.public()}
	pay.ResultCode, pay.ResultDetail = s.done.code, s.done.detail
	return pay, nil
}

// prepared is what Pay encodes before its write transaction.
type prepared struct {
	masked    string // the masked card number
	buyer     []byte // buyerText of the request's buyer
	keySuffix string // the random part of the approval's gateway key
}

// openPayment is the transaction of Pay after the claim: the merchant and
// contract checks, then the PENDING transaction and its approve
// operation. A refusal is returned as an *Error with no effect.
func (p *PG) openPayment(ctx context.Context, tx *sql.Tx, req *PayRequest, pan string, prep *prepared, now time.Time) (tid, opID, gwKey, name string, refusal *Error, err error) {
	tid, opID, gwKey, refusal, err = p.openPaymentOf(ctx, tx, req, pan, prep, now, &name)
	return tid, opID, gwKey, name, refusal, err
}

// openPaymentOf is openPayment; it reads the merchant's name into name.
func (p *PG) openPaymentOf(ctx context.Context, tx *sql.Tx, req *PayRequest, pan string, prep *prepared, now time.Time, name *string) (tid, opID, gwKey string, refusal *Error, err error) {
	var status string
	var bins string
	var c Contract
	err = tx.QueryRowContext(ctx, `SELECT m.status, m.name, c.bin_prefixes, c.fee_bps, c.max_amount, c.daily_limit
		FROM pgw_merchants m JOIN pgw_contracts c ON c.mid = m.mid WHERE m.mid = $1`+p.forUpdate(), req.MID).
		Scan(&status, name, &bins, &c.FeeBPS, &c.MaxAmount, &c.DailyLimit)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", newError(CodeNotFound, "no such merchant"), nil
	}
	if err != nil {
		return "", "", "", nil, fmt.Errorf("pg: read contract: %w", err)
	}
	if bins != "" {
		c.BINPrefixes = strings.Split(bins, ",")
	}
	if MerchantStatus(status) != MerchantActive {
		return "", "", "", newError(CodeMerchantInactive, "the merchant is "+status), nil
	}
	var live int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM pgw_transactions WHERE mid = $1 AND order_no = $2
		AND status NOT IN ('DECLINED', 'FAILED') LIMIT 1`, req.MID, req.OrderNo).Scan(&live); {
	case err == nil:
		return "", "", "", newError(CodeDuplicateOrder, "the order already has a transaction"), nil
	case !errors.Is(err, sql.ErrNoRows):
		return "", "", "", nil, fmt.Errorf("pg: check order: %w", err)
	}
	if !c.Allows(pan) {
		return "", "", "", newError(CodeBINNotAllowed, "the merchant's contract does not accept this card"), nil
	}
	if c.MaxAmount > 0 && req.Amount > c.MaxAmount {
		return "", "", "", newError(CodeOverMaxAmount, fmt.Sprintf("the contract allows at most %d won per payment", c.MaxAmount)), nil
	}
	day := p.bizDate(now)
	if c.DailyLimit > 0 {
		// The running total, checked and raised in one statement under the
		// merchant's lock taken above: the upsert changes nothing when the
		// payment would pass the limit, and the refusal then reads what is
		// used for its message.
		ok := req.Amount <= c.DailyLimit
		if ok {
			var used int64
			err := tx.QueryRowContext(ctx, `INSERT INTO pgw_daily_totals (mid, biz_date, used) VALUES ($1, $2, $3)
				ON CONFLICT (mid, biz_date) DO UPDATE SET used = pgw_daily_totals.used + excluded.used
				WHERE pgw_daily_totals.used + excluded.used <= $4 RETURNING used`,
				req.MID, day, req.Amount, c.DailyLimit).Scan(&used)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return "", "", "", nil, fmt.Errorf("pg: daily total: %w", err)
			}
			ok = err == nil
		}
		if !ok {
			var used int64
			err := tx.QueryRowContext(ctx, `SELECT used FROM pgw_daily_totals WHERE mid = $1 AND biz_date = $2`,
				req.MID, day).Scan(&used)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return "", "", "", nil, fmt.Errorf("pg: daily total: %w", err)
			}
			return "", "", "", newError(CodeDailyLimit, fmt.Sprintf("the daily limit is %d won and %d won are used today", c.DailyLimit, used)), nil
		}
	} else if err := p.addDailyTotal(ctx, tx, req.MID, day, req.Amount); err != nil {
		return "", "", "", nil, err
	}
	n, err := p.next(ctx, tx, "tid", day)
	if err != nil {
		return "", "", "", nil, err
	}
	if n > 999_999 {
		return "", "", "", nil, errors.New("pg: the day's transaction numbers are exhausted")
	}
	// T + YYMMDD + six-digit sequence: a run of twelve digits, too short to
	// be taken for a card number.
	tid = "T" + day[2:] + fmt.Sprintf("%06d", n)
	buyer, err := p.vault.sealBuyer(tid, prep.buyer)
	if err != nil {
		return "", "", "", nil, err
	}
	// The transaction's first operation is its approval: it is inserted
	// already waiting for it (pending_op), as openOperation would mark it.
	opID = opIDOf(tid, 1)
	gwKey = gatewayKey(opID, prep.keySuffix)
	if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_transactions (tid, mid, order_no, product_name, amount, currency,
		status, result_code, masked_card, fee_bps, buyer_enc, pending_op, biz_date, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)`,
		tid, req.MID, req.OrderNo, req.ProductName, req.Amount, Currency, string(StatusPending), string(CodePending),
		prep.masked, c.FeeBPS, buyer, opID, day, p.t(now)); err != nil {
		return "", "", "", nil, fmt.Errorf("pg: insert transaction: %w", err)
	}
	if err := p.insertOperation(ctx, tx, tid, opID, gwKey, OpApprove, req.Amount, "", now); err != nil {
		return "", "", "", nil, err
	}
	return tid, opID, gwKey, nil, nil
}

// addDailyTotal adds delta won to the running total of a merchant's
// business day (pgw_daily_totals): what its transactions not DECLINED or
// FAILED add up to, amount − cancelled_amount each, which the daily limit
// check reads. Every change of a transaction's amount, cancelled amount or
// status is matched by one call in the same write transaction.
func (p *PG) addDailyTotal(ctx context.Context, tx *sql.Tx, mid, day string, delta int64) error {
	if delta == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_daily_totals (mid, biz_date, used) VALUES ($1, $2, $3)
		ON CONFLICT (mid, biz_date) DO UPDATE SET used = pgw_daily_totals.used + excluded.used`, mid, day, delta); err != nil {
		return fmt.Errorf("pg: daily total: %w", err)
	}
	return nil
}

// dailyUse is what a transaction counts against its day's limit.
func dailyUse(st Status, amount, cancelled int64) int64 {
	if st == StatusDeclined || st == StatusFailed {
		return 0
	}
	return amount - cancelled
}

// openOperation records a PENDING gateway operation on tid and marks the
// transaction as waiting for it. Its gateway Idempotency-Key is fixed
// now and kept for every retry.
func (p *PG) openOperation(ctx context.Context, tx *sql.Tx, tid string, kind OpKind, amount int64, reason string, now time.Time) (opID, gwKey string, err error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pgw_operations WHERE tid = $1`, tid).Scan(&n); err != nil {
		return "", "", fmt.Errorf("pg: count operations: %w", err)
	}
	opID = opIDOf(tid, n+1)
	suffix, err := randomToken(p.rand, 5)
	if err != nil {
		return "", "", err
	}
	gwKey = gatewayKey(opID, suffix)
	if err := p.insertOperation(ctx, tx, tid, opID, gwKey, kind, amount, reason, now); err != nil {
		return "", "", err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pgw_transactions SET pending_op = $1, updated_at = $2 WHERE tid = $3`,
		opID, p.t(now), tid); err != nil {
		return "", "", fmt.Errorf("pg: mark pending operation: %w", err)
	}
	return opID, gwKey, nil
}

// opIDOf names the nth operation of tid.
func opIDOf(tid string, n int) string { return fmt.Sprintf("%s-%02d", tid, n) }

// gatewayKey is the gateway Idempotency-Key of operation opID: its ID
// and a random suffix (randomToken of 5 bytes).
func gatewayKey(opID, suffix string) string { return "pg-" + opID + "-" + suffix }

// insertOperation stores a PENDING gateway operation.
func (p *PG) insertOperation(ctx context.Context, tx *sql.Tx, tid, opID, gwKey string, kind OpKind, amount int64, reason string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO pgw_operations (op_id, tid, kind, amount, reason, gateway_key, status,
		result_code, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		opID, tid, string(kind), amount, reason, gwKey, string(OpPending), string(CodePending), p.t(now)); err != nil {
		return fmt.Errorf("pg: insert operation: %w", err)
	}
	return nil
}

// Cancel voids a whole approval (전체취소) at the issuer. Only an APPROVED
// transaction with nothing refunded can be voided, and only until the
// issuer settles it: after that the issuer refuses ("3020") and the
// merchant refunds instead. Results follow Pay: the issuer's refusal or
// a pending answer is the returned Payment's ResultCode, and the PG's own
// refusals (CodeAlreadyCancelled, CodeNotCancellable,
// CodeOperationPending, …) are errors.
func (p *PG) Cancel(ctx context.Context, req CancelRequest) (*Payment, error) {
	return p.change(ctx, OpCancel, req.MID, req.TID, 0, req.Reason, req.IdempotencyKey)
}

// Refund refunds part or all of a transaction's balance (부분취소/환불).
// Amounts above the balance are refused ("3004") before the issuer is
// asked; the issuer refuses a refund before it has settled the approval
// ("3022" for the whole balance: void it instead; "3021" for part of it:
// after the settlement, or void the whole). Several partial refunds may follow
// one another, one at a time.
func (p *PG) Refund(ctx context.Context, req RefundRequest) (*Payment, error) {
	if e := checkAmount("amount", req.Amount); e != nil {
		return nil, e
	}
	return p.change(ctx, OpRefund, req.MID, req.TID, req.Amount, req.Reason, req.IdempotencyKey)
}

// change is Cancel and Refund.
func (p *PG) change(ctx context.Context, kind OpKind, mid, tid string, amount int64, reason, key string) (*Payment, error) {
	if e := checkKey(key); e != nil {
		return nil, e
	}
	if e := checkMID(mid); e != nil {
		return nil, e
	}
	if tid == "" || len(tid) > 32 {
		return nil, invalid("tid is required")
	}
	if e := checkText("reason", reason, 100, false); e != nil {
		return nil, e
	}
	idem := idemCancel
	if kind == OpRefund {
		idem = idemRefund
	}
	now := p.now()
	fp := p.vault.fingerprint(idem, mid, tid, strconv.FormatInt(amount, 10), reason)
	var c claim
	var gwKey string
	var t *txRow
	err := p.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if c, err = p.claim(ctx, tx, mid, key, idem, fp, now); err != nil || !c.fresh {
			return err
		}
		var refusal *Error
		t, refusal, err = p.checkChange(ctx, tx, kind, mid, tid, amount)
		if err != nil {
			return err
		}
		if refusal != nil {
			if transient(refusal) {
				return refusal
			}
			c.err = refusal
			return p.record(ctx, tx, mid, key, tid, "", refusal)
		}
		if kind == OpCancel {
			amount = t.amount
		}
		if c.opID, gwKey, err = p.openOperation(ctx, tx, tid, kind, amount, reason, now); err != nil {
			return err
		}
		c.tid = tid
		return p.record(ctx, tx, mid, key, tid, c.opID, nil)
	})
	if err != nil {
		return nil, err
	}
	if c.err != nil {
		if c.fresh {
			p.log.InfoContext(ctx, string(kind)+" refused", "mid", mid, "tid", tid, "amount", amount,
				"code", c.err.Code, "detail", c.err.Detail)
		}
		return nil, c.err
	}
	if c.replayed {
		return p.replay(ctx, mid, c)
	}
	ctx = context.WithoutCancel(ctx)
	a := p.gw.call(ctx, string(kind), gwKey, binOf(t.masked), changeFields(kind, t, amount))
	if err := p.settle(ctx, c.opID, &a); err != nil {
		return nil, err
	}
	return p.result(ctx, mid, tid, c.opID, false)
}

// checkChange applies the PG's rules to a cancel or refund of tid.
func (p *PG) checkChange(ctx context.Context, tx *sql.Tx, kind OpKind, mid, tid string, amount int64) (*txRow, *Error, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM pgw_merchants WHERE mid = $1`, mid).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such merchant"), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pg: read merchant: %w", err)
	}
	if MerchantStatus(status) == MerchantTerminated {
		return nil, newError(CodeMerchantInactive, "the merchant is TERMINATED"), nil
	}
	t, err := p.txRow(ctx, tx, tid, true)
	if errors.Is(err, sql.ErrNoRows) || err == nil && t.mid != mid {
		return nil, newError(CodeNotFound, "no such transaction"), nil
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case t.pendingOp != "":
		return nil, newError(CodeOperationPending, "an earlier request on this transaction awaits the issuer's answer"), nil
	case t.status == StatusDeclined || t.status == StatusFailed:
		return nil, newError(CodeNotCancellable, "the transaction was not approved"), nil
	case kind == OpRefund && t.status == StatusRefunded:
		return nil, newError(CodeRefundExceeded, "the refundable balance is 0 won: the payment is fully refunded"), nil
	case t.status == StatusCancelled || t.status == StatusRefunded:
		return nil, newError(CodeAlreadyCancelled, "nothing is left to cancel"), nil
	case kind == OpCancel && t.status == StatusPartRefunded:
		return nil, newError(CodeAfterSettlement, "a partially refunded payment is settled: refund the balance instead"), nil
	case kind == OpRefund && amount > t.amount-t.cancelled:
		return nil, newError(CodeRefundExceeded, fmt.Sprintf("the refundable balance is %d won", t.amount-t.cancelled)), nil
	}
	return t, nil, nil
}

// changeFields are the gateway fields of a cancel or refund.
func changeFields(kind OpKind, t *txRow, amount int64) map[string]string {
	return map[string]string{
		fOrderID: t.tid, fApprovalCode: t.approvalNo, fAmount: strconv.FormatInt(amount, 10),
		fCurrency: Currency, fType: "credit",
	}
}

// replay answers a repeated request: the transaction in its current state
// with the recorded outcome of the operation. An operation still pending
// is inquired first, so that a merchant's retry also finds the truth.
func (p *PG) replay(ctx context.Context, mid string, c claim) (*Payment, error) {
	o, err := p.opRow(ctx, p.db, c.opID)
	if err != nil {
		return nil, err
	}
	if o.status == OpPending {
		if _, err := p.resolveOp(ctx, c.opID); err != nil {
			return nil, err
		}
	}
	p.log.DebugContext(ctx, "idempotent replay", "mid", mid, "tid", c.tid, "op", c.opID)
	return p.result(ctx, mid, c.tid, c.opID, true)
}

// result loads a transaction with the outcome of one of its operations.
func (p *PG) result(ctx context.Context, mid, tid, opID string, replayed bool) (*Payment, error) {
	pay, err := p.Get(ctx, mid, tid)
	if err != nil {
		return nil, err
	}
	for _, o := range pay.Operations {
		if o.ID == opID {
			pay.ResultCode, pay.ResultDetail = o.ResultCode, o.ResultDetail
		}
	}
	pay.Replayed = replayed
	return pay, nil
}

// Get returns a transaction of merchant mid with its operations; an empty
// mid finds any merchant's (for the admin).
func (p *PG) Get(ctx context.Context, mid, tid string) (*Payment, error) {
	pay, err := p.payment(ctx, tid)
	if errors.Is(err, sql.ErrNoRows) || err == nil && mid != "" && pay.MID != mid {
		return nil, newError(CodeNotFound, "no such transaction")
	}
	if err != nil {
		return nil, err
	}
	pay.ResultCode = CodeSuccess
	if pay.Status == StatusPending {
		// An approval still awaiting the issuer is not a success.
		pay.ResultCode = CodePending
	}
	return pay, nil
}

// lookupInquiryInterval spaces the inquiries a merchant's polling causes:
// an operation asked about (or sent) less than this ago is not asked
// again on a lookup.
const lookupInquiryInterval = time.Second

// Lookup is the merchant's status check of a transaction, in real time:
// an operation still awaiting the issuer is resolved first, as
// ResolvePending does — an approval is inquired; a cancel or refund the
// issuer has not carried out is sent again under its original
// Idempotency-Key, so it is never done twice — so the answer is the
// issuer's truth when the issuer can tell it. An approval still unknown
// afterwards answers CodePending with the transaction, never a success.
// Find, and the cancel and refund addressed by order, look up this way.
func (p *PG) Lookup(ctx context.Context, mid, tid string) (*Payment, error) {
	pay, err := p.Get(ctx, mid, tid)
	if err != nil || pay.PendingOperation == "" {
		return pay, err
	}
	for _, op := range pay.Operations {
		if op.Status != OpPending {
			continue
		}
		o, err := p.opRow(ctx, p.db, op.ID)
		if err != nil {
			return nil, err
		}
		if p.now().Sub(o.lastAttempt) < lookupInquiryInterval {
			continue // asked a moment ago; the answer stands
		}
		if _, err := p.resolveOp(ctx, op.ID); err != nil {
			// The stored state stays the answer; the resolver retries.
			p.log.WarnContext(ctx, "inquiring a pending operation on lookup failed", "tid", tid, "op", op.ID, "err", err)
		}
	}
	return p.Get(ctx, mid, tid)
}

// Find returns the transaction of a merchant's order: the live one if
// there is one, else the latest declined or failed attempt.
func (p *PG) Find(ctx context.Context, mid, orderNo string) (*Payment, error) {
	if e := checkOrderNo(orderNo); e != nil {
		return nil, e
	}
	var tid string
	err := p.db.QueryRowContext(ctx, `SELECT tid FROM pgw_transactions WHERE mid = $1 AND order_no = $2
		ORDER BY CASE WHEN status IN ('DECLINED', 'FAILED') THEN 1 ELSE 0 END, created_at DESC, tid DESC LIMIT 1`,
		mid, orderNo).Scan(&tid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no transaction for this order")
	}
	if err != nil {
		return nil, fmt.Errorf("pg: find order: %w", err)
	}
	return p.Lookup(ctx, mid, tid)
}

// Transactions lists transactions, newest first, without their buyer data
// and operations (Get has them).
func (p *PG) Transactions(ctx context.Context, f TransactionFilter) ([]Payment, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 500 {
		return nil, invalid("limit is at most 500")
	}
	q := txSelect + `WHERE ($1 = '' OR t.mid = $1) AND ($2 = '' OR t.status = $2)
		ORDER BY t.created_at DESC, t.tid DESC LIMIT $3`
	rows, err := p.db.QueryContext(ctx, q, f.MID, string(f.Status), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("pg: list transactions: %w", err)
	}
	defer rows.Close()
	out := []Payment{}
	for rows.Next() {
		pay, _, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		pay.ResultCode = CodeSuccess
		out = append(out, *pay)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pg: list transactions: %w", err)
	}
	return out, nil
}

// txSelect reads a transaction with the kind of its pending operation.
const txSelect = `SELECT t.tid, t.mid, t.order_no, t.product_name, t.status, t.amount, t.cancelled_amount, t.currency,
	t.approval_no, t.masked_card, t.fee_bps, t.buyer_enc, t.issuer_state, t.result_code, t.result_detail,
	COALESCE(o.kind, ''), t.created_at, t.approved_at, t.cancelled_at, t.updated_at
	FROM pgw_transactions t LEFT JOIN pgw_operations o ON o.op_id = t.pending_op `

// txReturning is txSelect's columns as an UPDATE of pgw_transactions
// returns them: pending_op, not its kind, in the place of the pending
// operation (empty when none is pending).
const txReturning = `tid, mid, order_no, product_name, status, amount, cancelled_amount, currency,
	approval_no, masked_card, fee_bps, buyer_enc, issuer_state, result_code, result_detail,
	pending_op, created_at, approved_at, cancelled_at, updated_at`

func scanPayment(s scanner) (*Payment, []byte, error) {
	var pay Payment
	var status, code, pendingKind string
	var buyer []byte
	if err := s.Scan(&pay.TID, &pay.MID, &pay.OrderNo, &pay.ProductName, &status, &pay.Amount, &pay.CancelledAmount,
		&pay.Currency, &pay.ApprovalNo, &pay.MaskedCardNo, &pay.FeeBPS, &buyer, &pay.IssuerState, &code,
		&pay.ApprovalDetail, &pendingKind, sqlstore.ScanTime(&pay.CreatedAt), sqlstore.ScanTime(&pay.ApprovedAt),
		sqlstore.ScanTime(&pay.CancelledAt), sqlstore.ScanTime(&pay.UpdatedAt)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("pg: read transaction: %w", err)
	}
	pay.Status, pay.ApprovalCode, pay.PendingOperation = Status(status), ResultCode(code), OpKind(pendingKind)
	return &pay, buyer, nil
}

// payment loads a transaction with its buyer data and operations.
func (p *PG) payment(ctx context.Context, tid string) (*Payment, error) {
	var pay *Payment
	err := p.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var buyer []byte
		var err error
		pay, buyer, err = scanPayment(tx.QueryRowContext(ctx, txSelect+`WHERE t.tid = $1`, tid))
		if err != nil {
			return err
		}
		if pay.Buyer, err = p.vault.openBuyer(tid, buyer); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+opColumns+` FROM pgw_operations WHERE tid = $1 ORDER BY op_id`, tid)
		if err != nil {
			return fmt.Errorf("pg: read operations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanOp(rows)
			if err != nil {
				return err
			}
			pay.Operations = append(pay.Operations, o.public())
		}
		return rows.Err()
	})
	return pay, err
}

// txRow is what the PG's rules read of a transaction.
type txRow struct {
	tid, mid   string
	status     Status
	amount     int64
	cancelled  int64
	approvalNo string
	masked     string
	orderNo    string
	pendingOp  string
	bizDate    string
}

func (p *PG) txRow(ctx context.Context, q sqlstore.Queryer, tid string, lock bool) (*txRow, error) {
	var t txRow
	var status string
	query := `SELECT tid, mid, order_no, status, amount, cancelled_amount, approval_no, masked_card, pending_op,
		biz_date FROM pgw_transactions WHERE tid = $1`
	if lock {
		query += p.forUpdate()
	}
	err := q.QueryRowContext(ctx, query, tid).Scan(&t.tid, &t.mid, &t.orderNo, &status, &t.amount, &t.cancelled,
		&t.approvalNo, &t.masked, &t.pendingOp, &t.bizDate)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("pg: read transaction: %w", err)
	}
	t.status = Status(status)
	return &t, nil
}

// opRow is a gateway operation as stored.
type opRow struct {
	id, tid     string
	kind        OpKind
	amount      int64
	reason      string
	gwKey       string
	status      OpStatus
	code        ResultCode
	detail      string
	attempts    int
	createdAt   time.Time
	doneAt      time.Time
	lastAttempt time.Time
}

const opColumns = `op_id, tid, kind, amount, reason, gateway_key, status, result_code, result_detail, attempts,
	created_at, done_at, last_attempt_at`

func scanOp(s scanner) (*opRow, error) {
	var o opRow
	var kind, status, code string
	if err := s.Scan(&o.id, &o.tid, &kind, &o.amount, &o.reason, &o.gwKey, &status, &code, &o.detail, &o.attempts,
		sqlstore.ScanTime(&o.createdAt), sqlstore.ScanTime(&o.doneAt), sqlstore.ScanTime(&o.lastAttempt)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("pg: read operation: %w", err)
	}
	o.kind, o.status, o.code = OpKind(kind), OpStatus(status), ResultCode(code)
	return &o, nil
}

func (p *PG) opRow(ctx context.Context, q sqlstore.Queryer, opID string) (*opRow, error) {
	return scanOp(q.QueryRowContext(ctx, `SELECT `+opColumns+` FROM pgw_operations WHERE op_id = $1`, opID))
}

func (o *opRow) public() Operation {
	return Operation{ID: o.id, Kind: o.kind, Amount: o.amount, Reason: o.reason, Status: o.status,
		ResultCode: o.code, ResultDetail: o.detail, Attempts: o.attempts, CreatedAt: o.createdAt, DoneAt: o.doneAt}
}
