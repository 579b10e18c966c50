package issuer

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
)

// Approve authorises a payment on a card (승인): it checks the card (known
// number, matching expiry, not expired, active), the key-in data when
// given, and the available limit or balance, then takes the amount from
// the available limit, records the approval with a fresh eight-digit
// approval number and queues the cardholder SMS, all in one transaction.
//
// A decline is an *Error with one of the decline codes (DECLINED,
// INSUFFICIENT_FUNDS, INVALID_CARD, EXPIRED, LIMIT_EXCEEDED). Wrong key-in
// data declines with INVALID_CARD and counts against the card;
// Config.MaxKeyInFailures consecutive failures block it. A repeat with the
// same idempotency key and parameters returns the same approval (in its
// current state, Replayed set) or the same decline, with no second
// effect; other parameters give IDEMPOTENCY_CONFLICT. An order of a
// merchant gets at most one approval (DUPLICATE_ORDER).
//
// An approval carrying an authentication value (AuthValue, KECIS
// §15.7.3) is made only if Config.AuthValues finds it bound to this
// payment — the number as sent, the amount, the currency, AuthMerchant and
// the order — and unexpired, and the value was not used before: its id is
// recorded in the approval's transaction, so that it is accepted once.
// Otherwise it is declined with AUTHENTICATION_FAILED, whose message says
// whether the value does not match, has expired or was already used.
//
// A number under one of the issuer's virtual BINs (KECIS §15.4) is
// de-tokenised inside the approval's transaction (connectors/vcn
// AuthorizeTx): its controls — single use, merchant lock (AuthMerchant),
// amount cap and currency, expiry — are checked and its use counted, and
// the approval proceeds on the real card; its expiry must be the virtual
// number's. A single-use number is spent by the attempt even when the
// real card then declines. Refused: an unknown virtual number is
// INVALID_CARD, an expired one EXPIRED, a used or revoked one or one
// locked to another merchant or currency DECLINED, an amount above its
// cap LIMIT_EXCEEDED. The ledger keeps the card's id and the virtual
// number masked, never a number in full.
func (i *Issuer) Approve(ctx context.Context, req ApproveRequest) (*Approval, error) {
	return i.approve(ctx, req, nil)
}

// ApproveVerification makes a verification approval (KECIS §15.2
// approve-verification, §15.3 amount authentication): an approval exactly
// as Approve makes one — the same checks, declines, limit, ledger entry,
// idempotency and approval SMS, whose amount and merchant name the
// cardholder types back to the PG; the descriptor code, when given, after
// the merchant name — marked Verification. Its amount must be at most the
// ceiling and Config.MaxVerificationAmount (LIMIT_EXCEEDED). No log line
// shows its amount or code. Cancel voids it; after the cut-off a Refund
// naming no amount refunds it whole.
func (i *Issuer) ApproveVerification(ctx context.Context, req VerificationRequest) (*Approval, error) {
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if e := checkMoney(req.Ceiling); e != nil {
		return nil, invalid("ceiling: " + e.Message)
	}
	code := req.DescriptorCode.Reveal()
	if code != "" && (len(code) < 4 || len(code) > 10 || !ecml.AllDigits(code)) {
		return nil, invalid("descriptor code must be 4 to 10 digits")
	}
	if req.Ceiling.Currency != req.Amount.Currency {
		return nil, invalid("the amount and the ceiling must be in one currency")
	}
	if req.Amount.Minor > req.Ceiling.Minor {
		return nil, newError(CodeLimitExceeded, "the amount is above the ceiling")
	}
	if req.Amount.Minor > i.maxVerif[req.Amount.Currency] {
		return nil, newError(CodeLimitExceeded, "the amount is above the issuer's maximum for verification approvals")
	}
	return i.approve(ctx, ApproveRequest{MerchantID: req.MerchantID, MerchantName: req.MerchantName, OrderID: req.OrderID,
		Amount: req.Amount, Card: req.Card, IdempotencyKey: req.IdempotencyKey}, &verification{ceiling: req.Ceiling, code: code})
}

// verification is what makes an approval a verification approval.
type verification struct {
	ceiling ecml.Money
	code    string // the descriptor code the SMS shows; "" for none
}

// approve is Approve, and ApproveVerification when v is set.
func (i *Issuer) approve(ctx context.Context, req ApproveRequest, v *verification) (*Approval, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkText("merchant id", req.MerchantID, 64, true); e != nil {
		return nil, e
	}
	if e := checkText("order id", req.OrderID, 128, true); e != nil {
		return nil, e
	}
	if e := checkText("merchant name", req.MerchantName, 64, false); e != nil {
		return nil, e
	}
	if req.MerchantName == "" {
		req.MerchantName = req.MerchantID
	}
	if e := checkText("auth merchant", req.AuthMerchant, 1024, false); e != nil {
		return nil, e
	}
	if e := checkText("auth order", req.AuthOrder, 128, false); e != nil {
		return nil, e
	}
	if len(req.AuthValue) > 64 || strings.Trim(req.AuthValue, base64URL) != "" {
		return nil, invalid("an authentication value is at most 64 characters of base64url")
	}
	if e := checkMoney(req.Amount); e != nil {
		return nil, e
	}
	if req.Installments < 0 || req.Installments > 36 {
		return nil, invalid("installments must be 0 (lump sum) to 36 months")
	}
	if req.Installments == 1 {
		req.Installments = 0
	}
	pan := req.Card.PAN.Reveal()
	expM, expY := req.Card.ExpMonth, normYear(req.Card.ExpYear)
	if expM < 1 || expM > 12 || expY < 2000 || expY > 2099 {
		return nil, invalid("card expiry must be a month 1–12 and a year")
	}
	var prefix, birth string
	auth := AuthNone
	if k := req.Card.KeyIn; k != nil {
		prefix, birth = k.PasswordPrefix.Reveal(), k.BirthDate.Reveal()
		if prefix == "" && birth == "" {
			return nil, invalid("key-in data needs the password digits or the birth date")
		}
		if prefix != "" && (len(prefix) != 2 || !ecml.AllDigits(prefix)) {
			return nil, invalid("password prefix must be the two leading digits of the card password")
		}
		if birth != "" && !validYYMMDD(birth) {
			return nil, invalid("birth date must be a date written YYMMDD")
		}
		auth = AuthKeyIn
	}
	authMerchant := req.AuthMerchant
	if authMerchant == "" {
		authMerchant = req.MerchantID
	}
	authOrder := req.AuthOrder
	if authOrder == "" {
		authOrder = req.OrderID
	}
	if req.AuthValue != "" {
		auth = AuthValue
	}

	now := i.now()
	op := opApprove
	fields := []string{req.MerchantID, req.OrderID, req.MerchantName,
		strconv.FormatInt(req.Amount.Minor, 10), req.Amount.Currency, strconv.Itoa(req.Installments),
		pan, strconv.Itoa(expM), strconv.Itoa(expY), string(auth), prefix, birth}
	if v != nil {
		op = opVerify
		fields = append(fields, strconv.FormatInt(v.ceiling.Minor, 10), v.ceiling.Currency, v.code)
	}
	if req.AuthValue != "" || authMerchant != req.MerchantID {
		fields = append(fields, req.AuthValue, authMerchant)
	}
	if authOrder != req.OrderID {
		fields = append(fields, "auth-order", authOrder)
	}
	fp := i.vault.fingerprint(op, fields...)
	x := &approveTx{req: req, verification: v, pan: pan, panHash: i.vault.panHash(pan), prefix: prefix, birth: birth, expM: expM, expY: expY, auth: auth,
		authMerchant: authMerchant, authOrder: authOrder, now: now, authNow: i.authNow()}
	var out outcome
	for {
		var err error
		out, err = i.idempotent(ctx, merchantScope(req.MerchantID), req.IdempotencyKey, op, fp, now,
			func(ctx context.Context, tx *sql.Tx) (string, *Error, error) { return i.authorize(ctx, tx, x) })
		var slow slowCard
		if errors.As(err, &slow) && !x.delayed {
			// A slow host for this card (SetCardResponseDelay): its
			// transaction found the delay and rolled back; the host
			// decides after it, whether or not the caller still waits.
			ctx = i.sleepDelay(ctx, time.Duration(slow))
			now = i.now()
			x.now, x.authNow, x.delayed = now, i.authNow(), true
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if out.replayed && !x.delayed {
		// A repeat on a slow card is answered after its delay too.
		if d := i.responseDelay(ctx, pan); d > 0 {
			ctx = i.sleepDelay(ctx, d)
		}
	}
	if out.err != nil {
		if !out.replayed {
			args := append([]any{"merchant", req.MerchantID, "order", req.OrderID}, amountAttrs(req.Amount, v != nil)...)
			i.log.InfoContext(ctx, "approval declined", append(args, "code", out.err.Code, "reason", out.err.Message)...)
			if f := x.failure; f != nil {
				i.log.WarnContext(ctx, "key-in verification failed", "card", f.card, "last4", f.last4,
					"attempts", f.attempts)
				if f.blocked {
					i.log.WarnContext(ctx, "card blocked after repeated key-in failures", "card", f.card,
						"last4", f.last4, "attempts", f.attempts)
				}
			}
		}
		return nil, out.err
	}
	// A new approval is what its transaction wrote (x.made); a repeat
	// reads the approval in its current state.
	a := x.made
	if out.replayed {
		var err error
		if a, err = i.approval(ctx, i.db, out.ref, now); err != nil {
			return nil, err
		}
		a.Replayed = true
	}
	if !out.replayed {
		args := append([]any{"approval", a.Number, "merchant", a.MerchantID, "order", a.OrderID}, amountAttrs(a.Amount, a.Verification)...)
		args = append(args, "card", a.CardID, "last4", a.CardLast4, "auth", a.CardholderAuth)
		if a.VirtualCard != "" {
			args = append(args, "virtual", a.VirtualCard)
		}
		i.log.InfoContext(ctx, "approval approved", args...)
		i.deliverAfterCommit(ctx, x.sms)
	}
	return a, nil
}

// amountAttrs are the log attributes of an approval's amount: of a
// verification approval only its currency, since its amount is the
// cardholder's one-time password (KECIS §15.3).
func amountAttrs(m ecml.Money, verification bool) []any {
	if verification {
		return []any{"verification", true, "currency", m.Currency}
	}
	return []any{"amount", m.Minor, "currency", m.Currency}
}

// approveTx is one Approve call: its checked input, and what its
// transaction decided (reset on every run, as WriteTx may rerun it).
type approveTx struct {
	req                ApproveRequest
	verification       *verification // nil but for ApproveVerification
	pan, prefix, birth string
	panHash            []byte // of pan, computed before the transaction holds the writer
	expM, expY         int
	auth               CardholderAuth
	authMerchant       string // the AAV's and a virtual number's merchant
	authOrder          string // the AAV's order
	now                time.Time
	authNow            time.Time // Config.AuthNow: the AAV's expiry

	delayed bool // the card's response delay was served (slowCard)

	sms     queuedSMS     // the approval SMS
	failure *keyInFailure // wrong key-in data, for the log
	made    *Approval     // the approval written, as a read of it after the commit would return it
}

// slowCard ends an approval's transaction that found its card's response
// delay not yet served: approve rolls it back, waits and runs it again.
type slowCard time.Duration

func (s slowCard) Error() string { return "issuer: slow card: " + time.Duration(s).String() }

// sleepDelay waits d, a slow card's response delay, and returns ctx
// without its cancellation: a slow host decides after d whether or not
// the caller still waits.
func (i *Issuer) sleepDelay(ctx context.Context, d time.Duration) context.Context {
	ctx = context.WithoutCancel(ctx)
	i.log.InfoContext(ctx, "slow card: deciding after its response delay", "delay", d)
	time.Sleep(d)
	return ctx
}

type keyInFailure struct {
	card, last4 string
	attempts    int
	blocked     bool
}

// authorize is the transaction of Approve (see idempotent).
func (i *Issuer) authorize(ctx context.Context, tx *sql.Tx, x *approveTx) (string, *Error, error) {
	x.sms, x.failure, x.made = queuedSMS{}, nil, nil
	// The card the number names is read first, for its response delay:
	// a slow host decides nothing before the delay (approve reruns this
	// transaction after it), and a fast card costs no read of its own.
	// A virtual number names no card here; its real card is read below.
	c, cerr := i.cardByPANHash(ctx, tx, x.panHash)
	if cerr == nil && c.ResponseDelay > 0 && !x.delayed {
		return "", nil, slowCard(c.ResponseDelay)
	}
	// The authentication value is checked first: a value replayed on an
	// order that already has an approval is refused as the replay it is
	// (KECIS §15.7.3), not as a duplicate order.
	var aav *usedAuthValue
	var err error
	if x.req.AuthValue != "" {
		var code Code
		var msg string
		if aav, code, msg, err = i.checkAuthValue(ctx, tx, x); err != nil {
			return "", nil, err
		}
		if code != "" {
			return i.decline(ctx, tx, x, "", code, msg)
		}
	}
	var dup int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM issuer_approvals WHERE merchant_id = $1 AND order_id = $2`,
		x.req.MerchantID, x.req.OrderID).Scan(&dup)
	switch {
	case err == nil:
		return "", newError(CodeDuplicateOrder, "this order already has an approval"), nil
	case !errors.Is(err, sql.ErrNoRows):
		return "", nil, fmt.Errorf("issuer: check order: %w", err)
	}

	if !ecml.LuhnValid(x.pan) || len(x.pan) < 13 || len(x.pan) > 19 {
		return i.decline(ctx, tx, x, "", CodeInvalidCard, "invalid card number")
	}
	var virtual string
	var virtualExp time.Time
	if i.vcn != nil && i.vcn.IsVirtual(ecml.PAN(x.pan)) {
		r, err := i.vcn.AuthorizeTx(ctx, tx, ecml.PAN(x.pan), vcn.Use{Merchant: x.authMerchant,
			Amount: x.req.Amount.Minor, Currency: x.req.Amount.Currency})
		if err != nil {
			if code, msg, ok := virtualDecline(err); ok {
				return i.decline(ctx, tx, x, "", code, msg)
			}
			return "", nil, fmt.Errorf("issuer: virtual number: %w", err)
		}
		virtual, virtualExp = ecml.MaskPAN(x.pan), r.Controls.NotOnOrAfter.In(i.loc)
		c, cerr = i.cardByPANHash(ctx, tx, i.vault.panHash(r.Real.Reveal()))
	}
	if errors.Is(cerr, sql.ErrNoRows) {
		return i.decline(ctx, tx, x, "", CodeInvalidCard, "unknown card number")
	}
	if cerr != nil {
		return "", nil, fmt.Errorf("issuer: find card: %w", cerr)
	}
	switch c.Status {
	case CardLost:
		return i.decline(ctx, tx, x, c.ID, CodeDeclined, "card reported lost")
	case CardBlocked:
		return i.decline(ctx, tx, x, c.ID, CodeDeclined, "card blocked")
	}
	expM, expY := c.ExpMonth, c.ExpYear
	if virtual != "" {
		expM, expY = int(virtualExp.Month()), virtualExp.Year()
	}
	if expM != x.expM || expY != x.expY {
		return i.decline(ctx, tx, x, c.ID, CodeInvalidCard, "card expiry does not match")
	}
	if i.expired(c.ExpMonth, c.ExpYear, x.now) {
		return i.decline(ctx, tx, x, c.ID, CodeExpired, "card expired")
	}
	if x.req.Card.KeyIn != nil {
		ok := true
		if x.prefix != "" && !hmac.Equal(i.vault.secretHash("pw2", c.salt, x.prefix), c.pw2Hash) {
			ok = false
		}
		if x.birth != "" && !hmac.Equal(i.vault.secretHash("birth", c.salt, x.birth), c.birthHash) {
			ok = false
		}
		if !ok {
			attempts, blocked, err := i.keyInFailed(ctx, tx, c.ID, x.now)
			if err != nil {
				return "", nil, err
			}
			x.failure = &keyInFailure{card: c.ID, last4: c.Last4, attempts: attempts, blocked: blocked}
			return i.decline(ctx, tx, x, c.ID, CodeInvalidCard, "card password digits or birth date do not match")
		}
		if c.FailedAttempts > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET failed_attempts = 0 WHERE id = $1`, c.ID); err != nil {
				return "", nil, fmt.Errorf("issuer: reset key-in failures: %w", err)
			}
		}
	}
	if x.req.Amount.Currency != c.Currency {
		return i.decline(ctx, tx, x, c.ID, CodeDeclined, "card cannot pay in "+x.req.Amount.Currency)
	}
	res, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET available = available - $1, updated_at = $2
		WHERE id = $3 AND available >= $4`, x.req.Amount.Minor, i.t(x.now), c.ID, x.req.Amount.Minor)
	if err != nil {
		return "", nil, fmt.Errorf("issuer: take limit: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", nil, fmt.Errorf("issuer: take limit: %w", err)
	} else if n == 0 {
		if c.Type == Credit {
			return i.decline(ctx, tx, x, c.ID, CodeLimitExceeded, "credit limit exceeded")
		}
		return i.decline(ctx, tx, x, c.ID, CodeInsufficientFunds, "insufficient balance")
	}
	var code string
	if x.verification != nil {
		code = x.verification.code
	}
	// A fresh eight-digit approval number: drawn, and kept if the row
	// takes it — a number in use inserts nothing and another is drawn.
	var number string
	for try := 0; ; try++ {
		if try == 20 {
			return "", nil, errors.New("issuer: no free approval number found")
		}
		if number, err = randomDigits(i.rand, 8); err != nil {
			return "", nil, err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO issuer_approvals (approval_number, card_id,
			merchant_id, merchant_name, order_id, amount, currency, installments, cardholder_auth,
			refunded_amount, status, approved_at, cutoff_at, verification, virtual_masked)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, $14)
			ON CONFLICT (approval_number) DO NOTHING`,
			number, c.ID, x.req.MerchantID, x.req.MerchantName, x.req.OrderID, x.req.Amount.Minor,
			x.req.Amount.Currency, x.req.Installments, string(x.auth), string(StatusApproved), i.t(x.now),
			i.t(i.CutOffAfter(x.now)), x.verification != nil, virtual)
		if err != nil {
			return "", nil, fmt.Errorf("issuer: insert approval: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", nil, fmt.Errorf("issuer: insert approval: %w", err)
		} else if n == 1 {
			break
		}
	}
	if aav != nil {
		// Single use: a concurrent approval with the same value violates
		// the key, and the rerun (Issuer.write) finds it used.
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_auth_values (id, expires_at) VALUES ($1, $2)`,
			aav.id, i.t(aav.expires)); err != nil {
			return "", nil, fmt.Errorf("issuer: record authentication value: %w", err)
		}
	}
	text := i.smsText(smsApproval, x.req.MerchantName, code, x.req.Amount, x.req.Installments, x.now, c.Last4)
	if x.sms, err = i.enqueueSMS(ctx, tx, smsApproval, number, c.HolderPhone, text, x.now); err != nil {
		return "", nil, err
	}
	d := i.db.Dialect
	x.made = &Approval{Number: number, Status: StatusApproved, MerchantID: x.req.MerchantID, MerchantName: x.req.MerchantName,
		OrderID: x.req.OrderID, Amount: x.req.Amount, Installments: x.req.Installments, CardholderAuth: x.auth,
		CardID: c.ID, CardBIN: c.BIN, CardLast4: c.Last4, CardType: c.Type, VirtualCard: virtual,
		ApprovedAt: stored(d, x.now), CutOffAt: stored(d, i.CutOffAfter(x.now)), Verification: x.verification != nil}
	return number, nil, nil
}

// stored is t as a column written with d.Time reads back (ScanTime).
func stored(d sqlstore.Dialect, t time.Time) time.Time {
	var out time.Time
	_ = sqlstore.ScanTime(&out).Scan(d.Time(t))
	return out
}

// decline records a declined attempt and returns it as the outcome.
func (i *Issuer) decline(ctx context.Context, tx *sql.Tx, x *approveTx, cardID string, code Code, msg string) (string, *Error, error) {
	var card any
	if cardID != "" {
		card = cardID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_declines (merchant_id, order_id, card_id,
		code, reason, amount, currency, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		x.req.MerchantID, x.req.OrderID, card, string(code), msg, x.req.Amount.Minor, x.req.Amount.Currency,
		i.t(x.now)); err != nil {
		return "", nil, fmt.Errorf("issuer: record decline: %w", err)
	}
	return "", newError(code, msg), nil
}

// Cancel voids an approval (승인취소): allowed while it is approved and its
// cut-off has not passed. It restores the card's available limit and
// queues the cardholder SMS. After the cut-off the approval is settled and
// only Refund applies (ALREADY_SETTLED). Idempotent like Approve.
func (i *Issuer) Cancel(ctx context.Context, req CancelRequest) (*Approval, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkText("merchant id", req.MerchantID, 64, true); e != nil {
		return nil, e
	}
	if !validApprovalNumber(req.ApprovalNumber) {
		return nil, invalid("approval number must be eight digits")
	}
	if e := checkText("reason", req.Reason, 200, false); e != nil {
		return nil, e
	}
	now := i.now()
	fp := i.vault.fingerprint(opCancel, req.MerchantID, req.ApprovalNumber, req.Reason)
	var sms queuedSMS
	out, err := i.idempotent(ctx, merchantScope(req.MerchantID), req.IdempotencyKey, opCancel, fp, now,
		func(ctx context.Context, tx *sql.Tx) (string, *Error, error) {
			sms = queuedSMS{}
			a, berr, err := i.approvalForUpdate(ctx, tx, req.MerchantID, req.ApprovalNumber, now)
			if berr != nil || err != nil {
				return "", berr, err
			}
			switch a.Status {
			case StatusCancelled:
				return "", newError(CodeAlreadyCancelled, "the approval is already cancelled"), nil
			case StatusApproved:
			default:
				return "", newError(CodeAlreadySettled, "the approval was settled at its cut-off; refund it instead"), nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE issuer_approvals SET status = $1, cancelled_at = $2
				WHERE approval_number = $3`, string(StatusCancelled), i.t(now), a.Number); err != nil {
				return "", nil, fmt.Errorf("issuer: cancel approval: %w", err)
			}
			phone, err := i.restoreLimit(ctx, tx, a.CardID, a.Amount.Minor, now)
			if err != nil {
				return "", nil, err
			}
			text := i.smsText(smsCancel, a.MerchantName, "", a.Amount, 0, now, a.CardLast4)
			if sms, err = i.enqueueSMS(ctx, tx, smsCancel, a.Number, phone, text, now); err != nil {
				return "", nil, err
			}
			return a.Number, nil, nil
		})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	a, err := i.approval(ctx, i.db, out.ref, now)
	if err != nil {
		return nil, err
	}
	a.Replayed = out.replayed
	if !out.replayed {
		args := append([]any{"approval", a.Number, "merchant", a.MerchantID, "order", a.OrderID}, amountAttrs(a.Amount, a.Verification)...)
		i.log.InfoContext(ctx, "approval cancelled", append(args, "card", a.CardID)...)
		i.deliverAfterCommit(ctx, sms)
	}
	return a, nil
}

// Refund refunds part or all of a settled approval (매출취소 after the
// cut-off). The refunds of an approval never add up to more than its
// amount (REFUND_EXCEEDED); before the cut-off Cancel is the way
// (NOT_SETTLED). A request naming no amount (zero Amount) refunds what
// remains of a verification approval (KECIS §15.2), and of any other is
// AMOUNT_REQUIRED. It restores the card's available limit by the refunded
// amount and queues the cardholder SMS. Idempotent like Approve.
func (i *Issuer) Refund(ctx context.Context, req RefundRequest) (*Refund, error) {
	if e := checkKey(req.IdempotencyKey); e != nil {
		return nil, e
	}
	if e := checkText("merchant id", req.MerchantID, 64, true); e != nil {
		return nil, e
	}
	if !validApprovalNumber(req.ApprovalNumber) {
		return nil, invalid("approval number must be eight digits")
	}
	whole := req.Amount == (ecml.Money{})
	if !whole {
		if e := checkMoney(req.Amount); e != nil {
			return nil, e
		}
	}
	if e := checkText("reason", req.Reason, 200, false); e != nil {
		return nil, e
	}
	now := i.now()
	fp := i.vault.fingerprint(opRefund, req.MerchantID, req.ApprovalNumber,
		strconv.FormatInt(req.Amount.Minor, 10), req.Amount.Currency, req.Reason)
	var sms queuedSMS
	out, err := i.idempotent(ctx, merchantScope(req.MerchantID), req.IdempotencyKey, opRefund, fp, now,
		func(ctx context.Context, tx *sql.Tx) (string, *Error, error) {
			sms = queuedSMS{}
			a, berr, err := i.approvalForUpdate(ctx, tx, req.MerchantID, req.ApprovalNumber, now)
			if berr != nil || err != nil {
				return "", berr, err
			}
			switch a.Status {
			case StatusCancelled:
				return "", newError(CodeAlreadyCancelled, "the approval was cancelled; nothing to refund"), nil
			case StatusApproved:
				return "", newError(CodeNotSettled, "the approval is not settled yet; cancel it instead"), nil
			}
			amount := req.Amount
			if whole {
				if !a.Verification {
					return "", newError(CodeAmountRequired, "a refund needs an amount: only a verification approval is refunded whole without one"), nil
				}
				if a.Refundable() == 0 {
					return "", newError(CodeRefundExceeded, "nothing is left to refund"), nil
				}
				amount = ecml.Money{Minor: a.Refundable(), Currency: a.Amount.Currency}
			}
			if amount.Currency != a.Amount.Currency {
				return "", invalid("refund currency must be " + a.Amount.Currency), nil
			}
			if amount.Minor > a.Refundable() {
				return "", newError(CodeRefundExceeded, "at most "+
					ecml.Money{Minor: a.Refundable(), Currency: a.Amount.Currency}.Display()+" can still be refunded"), nil
			}
			id, err := newID(i.rand, "rfd")
			if err != nil {
				return "", nil, err
			}
			status := StatusPartiallyRefunded
			if a.Refunded+amount.Minor == a.Amount.Minor {
				status = StatusRefunded
			}
			// The approval may still read "approved" in the table if the
			// cut-off passed before the settlement job ran: settle it here.
			res, err := tx.ExecContext(ctx, `UPDATE issuer_approvals SET refunded_amount = refunded_amount + $1,
				status = $2, settled_at = COALESCE(settled_at, cutoff_at)
				WHERE approval_number = $3 AND refunded_amount + $4 <= amount`,
				amount.Minor, string(status), a.Number, amount.Minor)
			if err != nil {
				return "", nil, fmt.Errorf("issuer: refund approval: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return "", nil, fmt.Errorf("issuer: refund approval: %d rows, %v", n, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_refunds (id, approval_number, amount, reason, created_at)
				VALUES ($1, $2, $3, $4, $5)`, id, a.Number, amount.Minor, req.Reason, i.t(now)); err != nil {
				return "", nil, fmt.Errorf("issuer: insert refund: %w", err)
			}
			phone, err := i.restoreLimit(ctx, tx, a.CardID, amount.Minor, now)
			if err != nil {
				return "", nil, err
			}
			text := i.smsText(smsRefund, a.MerchantName, "", amount, 0, now, a.CardLast4)
			if sms, err = i.enqueueSMS(ctx, tx, smsRefund, id, phone, text, now); err != nil {
				return "", nil, err
			}
			return id, nil, nil
		})
	if err != nil {
		return nil, err
	}
	if out.err != nil {
		return nil, out.err
	}
	r, err := i.refund(ctx, out.ref, now)
	if err != nil {
		return nil, err
	}
	r.Replayed = out.replayed
	if !out.replayed {
		args := append([]any{"approval", r.ApprovalNumber, "refund", r.ID, "merchant", req.MerchantID},
			amountAttrs(r.Amount, r.Approval.Verification)...)
		i.log.InfoContext(ctx, "approval refunded", append(args, "status", r.Approval.Status)...)
		i.deliverAfterCommit(ctx, sms)
	}
	return r, nil
}

// restoreLimit gives amount back to a card's available limit and returns
// the holder's phone number for the SMS.
func (i *Issuer) restoreLimit(ctx context.Context, tx *sql.Tx, cardID string, amount int64, now time.Time) (string, error) {
	var phone string
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET available = available + $1, updated_at = $2 WHERE id = $3`,
		amount, i.t(now), cardID); err != nil {
		return "", fmt.Errorf("issuer: restore limit: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT holder_phone FROM issuer_cards WHERE id = $1`, cardID).Scan(&phone); err != nil {
		return "", fmt.Errorf("issuer: restore limit: %w", err)
	}
	return phone, nil
}

// Inquire returns the true state of a merchant's approval, found by its
// number or by the merchant's order ID, with its refunds. An approval
// whose cut-off has passed reads as settled even before Settle ran.
func (i *Issuer) Inquire(ctx context.Context, req InquireRequest) (*Approval, error) {
	if e := checkText("merchant id", req.MerchantID, 64, true); e != nil {
		return nil, e
	}
	if (req.ApprovalNumber == "") == (req.OrderID == "") {
		return nil, invalid("give either an approval number or an order id")
	}
	now := i.now()
	var a *Approval
	err := i.db.ReadTx(ctx, func(tx *sql.Tx) error {
		number := req.ApprovalNumber
		if number == "" {
			err := tx.QueryRowContext(ctx, `SELECT approval_number FROM issuer_approvals
				WHERE merchant_id = $1 AND order_id = $2`, req.MerchantID, req.OrderID).Scan(&number)
			if errors.Is(err, sql.ErrNoRows) {
				return newError(CodeNotFound, "no approval for this order")
			}
			if err != nil {
				return fmt.Errorf("issuer: find order: %w", err)
			}
		}
		var err error
		a, err = i.approval(ctx, tx, number, now)
		if err != nil {
			return err
		}
		if a.MerchantID != req.MerchantID {
			return newError(CodeNotFound, "no such approval")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// MaxCardApprovals bounds one page of CardApprovals.
const MaxCardApprovals = 500

// CardApprovals lists a card's approvals in approval-number order, those
// numbered after after ("" from the first), at most limit (MaxCardApprovals
// if limit ≤ 0 or above it), without their refunds (RefundedAmount has
// their total): the card's ledger, read a page at a time — what a load
// test reconciles its acknowledged payments against.
func (i *Issuer) CardApprovals(ctx context.Context, cardID, after string, limit int) ([]Approval, error) {
	if e := checkText("card id", cardID, 64, true); e != nil {
		return nil, e
	}
	if limit <= 0 || limit > MaxCardApprovals {
		limit = MaxCardApprovals
	}
	now := i.now()
	rows, err := i.db.QueryContext(ctx, approvalSelect+` WHERE a.card_id = $1 AND a.approval_number > $2
		ORDER BY a.approval_number LIMIT $3`, cardID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("issuer: list a card's approvals: %w", err)
	}
	defer rows.Close()
	out := []Approval{}
	for rows.Next() {
		var a Approval
		if err := scanApproval(rows, &a); err != nil {
			return nil, fmt.Errorf("issuer: list a card's approvals: %w", err)
		}
		a.settleView(now)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: list a card's approvals: %w", err)
	}
	return out, nil
}

// RecentApprovals lists the latest approvals, newest first, at most
// limit (50 if limit ≤ 0), without their refunds.
func (i *Issuer) RecentApprovals(ctx context.Context, limit int) ([]Approval, error) {
	if limit <= 0 {
		limit = 50
	}
	now := i.now()
	rows, err := i.db.QueryContext(ctx, approvalSelect+` ORDER BY a.approved_at DESC, a.approval_number LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("issuer: list approvals: %w", err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var a Approval
		if err := scanApproval(rows, &a); err != nil {
			return nil, fmt.Errorf("issuer: list approvals: %w", err)
		}
		a.settleView(now)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: list approvals: %w", err)
	}
	return out, nil
}

const approvalSelect = `SELECT a.approval_number, a.status, a.merchant_id, a.merchant_name, a.order_id,
	a.amount, a.currency, a.refunded_amount, a.installments, a.cardholder_auth, a.card_id, c.bin, c.last4,
	c.card_type, a.approved_at, a.cutoff_at, a.cancelled_at, a.settled_at, COALESCE(a.batch_id, ''), a.verification,
	a.virtual_masked FROM issuer_approvals a JOIN issuer_cards c ON c.id = a.card_id`

func scanApproval(row interface{ Scan(...any) error }, a *Approval) error {
	var status, auth, typ string
	if err := row.Scan(&a.Number, &status, &a.MerchantID, &a.MerchantName, &a.OrderID, &a.Amount.Minor,
		&a.Amount.Currency, &a.Refunded, &a.Installments, &auth, &a.CardID, &a.CardBIN, &a.CardLast4, &typ,
		sqlstore.ScanTime(&a.ApprovedAt), sqlstore.ScanTime(&a.CutOffAt), sqlstore.ScanTime(&a.CancelledAt),
		sqlstore.ScanTime(&a.SettledAt), &a.BatchID, &a.Verification, &a.VirtualCard); err != nil {
		return err
	}
	a.Status, a.CardholderAuth, a.CardType = Status(status), CardholderAuth(auth), CardType(typ)
	return nil
}

// settleView shows an approval whose cut-off passed as settled, as it is
// for the card company even before the settlement job writes it.
func (a *Approval) settleView(now time.Time) {
	if a.Status == StatusApproved && !now.Before(a.CutOffAt) {
		a.Status = StatusSettled
		a.SettledAt = a.CutOffAt
	}
}

// approval reads one approval with its refunds (NOT_FOUND if none).
func (i *Issuer) approval(ctx context.Context, q sqlstore.Queryer, number string, now time.Time) (*Approval, error) {
	var a Approval
	err := scanApproval(q.QueryRowContext(ctx, approvalSelect+` WHERE a.approval_number = $1`, number), &a)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(CodeNotFound, "no such approval")
	}
	if err != nil {
		return nil, fmt.Errorf("issuer: read approval: %w", err)
	}
	a.settleView(now)
	rows, err := q.QueryContext(ctx, `SELECT id, amount, reason, created_at FROM issuer_refunds
		WHERE approval_number = $1 ORDER BY created_at, id`, number)
	if err != nil {
		return nil, fmt.Errorf("issuer: read refunds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := Refund{ApprovalNumber: number, Amount: ecml.Money{Currency: a.Amount.Currency}}
		if err := rows.Scan(&r.ID, &r.Amount.Minor, &r.Reason, sqlstore.ScanTime(&r.CreatedAt)); err != nil {
			return nil, fmt.Errorf("issuer: read refunds: %w", err)
		}
		a.Refunds = append(a.Refunds, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: read refunds: %w", err)
	}
	return &a, nil
}

// approvalForUpdate reads and (on PostgreSQL) locks a merchant's approval
// for Cancel and Refund; another merchant's approval is NOT_FOUND.
func (i *Issuer) approvalForUpdate(ctx context.Context, tx *sql.Tx, merchantID, number string, now time.Time) (*Approval, *Error, error) {
	var a Approval
	err := scanApproval(tx.QueryRowContext(ctx, approvalSelect+` WHERE a.approval_number = $1`+i.forUpdate("a"), number), &a)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && a.MerchantID != merchantID) {
		return nil, newError(CodeNotFound, "no such approval"), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: read approval: %w", err)
	}
	a.settleView(now)
	return &a, nil, nil
}

// refund reads a refund with its approval.
func (i *Issuer) refund(ctx context.Context, id string, now time.Time) (*Refund, error) {
	var number string
	err := i.db.QueryRowContext(ctx, `SELECT approval_number FROM issuer_refunds WHERE id = $1`, id).Scan(&number)
	if err != nil {
		return nil, fmt.Errorf("issuer: read refund: %w", err)
	}
	a, err := i.approval(ctx, i.db, number, now)
	if err != nil {
		return nil, err
	}
	for _, r := range a.Refunds {
		if r.ID == id {
			r.Approval = a
			return &r, nil
		}
	}
	return nil, fmt.Errorf("issuer: refund %s vanished", id)
}

func validApprovalNumber(s string) bool { return len(s) == 8 && ecml.AllDigits(s) }

// base64URL is the alphabet of an authentication value.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// usedAuthValue is an authentication value accepted for an approval.
type usedAuthValue struct {
	id      string
	expires time.Time
}

// checkAuthValue checks an approval's authentication value (KECIS
// §15.7.3) in its transaction: bound to the payment, unexpired, and not
// used before. A refusal is a decline code and message.
func (i *Issuer) checkAuthValue(ctx context.Context, tx *sql.Tx, x *approveTx) (*usedAuthValue, Code, string, error) {
	if i.authValues == nil {
		return nil, CodeAuthenticationFailed, "this issuer checks no authentication values", nil
	}
	id, exp, err := i.authValues.CheckAuthValue(x.req.AuthValue, ecml.PAN(x.pan), x.req.Amount.Minor,
		x.req.Amount.Currency, x.authMerchant, x.authOrder, x.authNow)
	if err != nil {
		if !exp.IsZero() && !x.authNow.Before(exp) {
			return nil, CodeAuthenticationFailed, "the authentication value has expired", nil
		}
		return nil, CodeAuthenticationFailed, "the authentication value does not match the payment", nil
	}
	if id == "" || len(id) > 128 {
		return nil, "", "", errors.New("issuer: the authentication value checker returned no usable id")
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM issuer_auth_values WHERE id = $1`, id).Scan(&one)
	switch {
	case err == nil:
		return nil, CodeAuthenticationFailed, "the authentication value was already used", nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, "", "", fmt.Errorf("issuer: check authentication value: %w", err)
	}
	return &usedAuthValue{id: id, expires: exp}, "", "", nil
}

// authValueGrace is how long after its expiry an authentication value's
// record is kept: an expired value is declined anyway, the grace covers
// clocks that differ between processes.
const authValueGrace = 10 * time.Minute

// Prune deletes the records of authentication values expired for longer
// than a grace of ten minutes and the expired virtual numbers; Run calls
// it. It returns how many rows it deleted.
func (i *Issuer) Prune(ctx context.Context) (int64, error) {
	var n int64
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM issuer_auth_values WHERE expires_at < $1`,
			i.t(i.authNow().Add(-authValueGrace)))
		if err != nil {
			return fmt.Errorf("issuer: prune authentication values: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	if i.vcn != nil {
		m, err := i.vcn.Prune(ctx)
		if err != nil {
			return n, fmt.Errorf("issuer: %w", err)
		}
		n += m
	}
	return n, nil
}
