package pg

import (
	"errors"
	"net/http"
)

// ResultCode is the PG's own four-digit result code, as its native API
// reports it in resultCode ("0000" is success). The first digit is the
// class: 1 request, 2 outcome not (yet) known, 3 business refusal (by the
// PG's contract rules or by the card issuer), 9 system.
type ResultCode string

// Success.
const (
	CodeSuccess ResultCode = "0000" // 정상처리
)

// Request errors: the request was not carried out; correct it.
const (
	CodeInvalidRequest      ResultCode = "1001" // a field is missing or malformed
	CodeUnauthorized        ResultCode = "1002" // X-PG-Key (or the admin token) missing or wrong
	CodeMerchantInactive    ResultCode = "1003" // the merchant is suspended or terminated
	CodeIdempotencyKey      ResultCode = "1004" // Idempotency-Key missing or malformed
	CodeIdempotencyConflict ResultCode = "1005" // the key was used for another request
	CodeDuplicateOrder      ResultCode = "1006" // the order already has a live transaction
	CodeNotFound            ResultCode = "1007" // no such transaction (or merchant)
	CodeUnsupported         ResultCode = "1008" // no such endpoint or method
)

// Outcome not (yet) known.
const (
	// CodePending: the issuer has not answered (gateway timeout, pending
	// or unavailable). Nothing is decided: the PG finds the truth by
	// inquiry (ResolvePending) and the transaction shows it; a retry with
	// the same Idempotency-Key also inquires. Never treat it as a decline.
	CodePending ResultCode = "2001"
	// CodeNotProcessed: the issuer gateway refused the request before any
	// issuer saw it, or, after the pending grace period, the issuer has no
	// record of it: nothing was charged. Retry with a new Idempotency-Key.
	CodeNotProcessed ResultCode = "2002"
	// CodeOperationPending: an earlier cancel or refund of this
	// transaction still awaits the issuer's answer.
	CodeOperationPending ResultCode = "2003"
)

// Business refusals by the PG's own rules (the issuer was not asked).
const (
	CodeBINNotAllowed    ResultCode = "3001" // the card's BIN is not in the merchant's contract
	CodeOverMaxAmount    ResultCode = "3002" // above the contract's per-transaction maximum
	CodeDailyLimit       ResultCode = "3003" // the merchant's daily limit would be exceeded
	CodeRefundExceeded   ResultCode = "3004" // above the refundable balance
	CodeAlreadyCancelled ResultCode = "3005" // already cancelled or fully refunded
	CodeNotCancellable   ResultCode = "3006" // the transaction was never approved
)

// Business refusals by the card issuer (mapped from the gateway's
// sub_status), and the PG's own card checks that mirror them.
const (
	CodeCardDeclined      ResultCode = "3011" // Declined
	CodeInsufficientFunds ResultCode = "3012" // InsufficientFunds: balance or limit too low
	CodeInvalidCard       ResultCode = "3013" // InvalidCard, or a number failing the Luhn check
	CodeCardExpired       ResultCode = "3014" // Expired
	CodeLimitExceeded     ResultCode = "3015" // LimitExceeded
	CodeNoIssuer          ResultCode = "3016" // no issuer takes this card (gateway: no route)
	CodeAuthRequired      ResultCode = "3017" // AuthenticationRequired: cardholder authentication needed
	CodeIssuerRefused     ResultCode = "3019" // any other refusal (PolicyViolation on approve, …)
	CodeAfterSettlement   ResultCode = "3020" // cancel refused: the approval is settled; refund instead
	// CodeBeforeSettlement: a partial refund refused, the approval is not
	// settled yet: refund after the settlement, or cancel the whole payment.
	CodeBeforeSettlement ResultCode = "3021"
	// CodeCancelInstead: a refund of the whole balance refused, the
	// approval is not settled yet: cancel it instead.
	CodeCancelInstead ResultCode = "3022"
)

// System error.
const (
	CodeSystemError ResultCode = "9999"
)

// codeMessages are the result messages: Korean, as the PG's merchants
// read them, and English for everyone else.
var codeMessages = map[ResultCode]struct{ ko, en string }{
	CodeSuccess:             {"정상처리", "OK"},
	CodeInvalidRequest:      {"요청 값 오류", "invalid request"},
	CodeUnauthorized:        {"인증 실패", "authentication failed"},
	CodeMerchantInactive:    {"사용할 수 없는 가맹점", "merchant not active"},
	CodeIdempotencyKey:      {"Idempotency-Key 오류", "Idempotency-Key missing or malformed"},
	CodeIdempotencyConflict: {"Idempotency-Key 재사용(요청 불일치)", "Idempotency-Key used for another request"},
	CodeDuplicateOrder:      {"중복된 주문번호", "duplicate order number"},
	CodeNotFound:            {"거래 없음", "no such transaction"},
	CodeUnsupported:         {"지원하지 않는 요청", "unsupported request"},
	CodePending:             {"처리 중(결과 확인 필요)", "pending: inquire for the outcome"},
	CodeNotProcessed:        {"미처리(카드사 미접수)", "not processed: no issuer received it, nothing was charged"},
	CodeOperationPending:    {"이전 요청 처리 중", "an earlier request is still pending"},
	CodeBINNotAllowed:       {"계약되지 않은 카드(BIN)", "card (BIN) not in the merchant's contract"},
	CodeOverMaxAmount:       {"1회 결제 한도 초과", "above the per-payment maximum"},
	CodeDailyLimit:          {"가맹점 일 한도 초과", "merchant's daily limit exceeded"},
	CodeRefundExceeded:      {"취소 가능 금액 초과", "above the refundable balance"},
	CodeAlreadyCancelled:    {"이미 취소된 거래", "already cancelled"},
	CodeNotCancellable:      {"취소할 수 없는 거래", "not cancellable: the payment was not approved"},
	CodeCardDeclined:        {"카드 승인 거절", "card declined"},
	CodeInsufficientFunds:   {"잔액(한도) 부족", "insufficient funds"},
	CodeInvalidCard:         {"유효하지 않은 카드", "invalid card"},
	CodeCardExpired:         {"유효기간 만료", "card expired"},
	CodeLimitExceeded:       {"카드 한도 초과", "card limit exceeded"},
	CodeNoIssuer:            {"처리 가능한 카드사 없음", "no issuer for this card"},
	CodeAuthRequired:        {"카드 본인인증 필요", "cardholder authentication required"},
	CodeIssuerRefused:       {"카드사 거절", "refused by the issuer"},
	CodeAfterSettlement:     {"매입 후 취소 불가(환불 요청)", "already settled: refund instead"},
	CodeBeforeSettlement:    {"매입 전 부분환불 불가(매입 후 요청 또는 전체취소)", "not settled yet: refund part after settlement, or cancel the whole payment"},
	CodeCancelInstead:       {"매입 전 환불 불가(취소 요청)", "not settled yet: cancel instead"},
	CodeSystemError:         {"시스템 오류", "system error"},
}

// Message is the code's resultMsg: Korean, as the PG's merchants read it,
// then English — "카드 한도 초과 / card limit exceeded"; "" for an unknown
// code. MessageKO and MessageEN are its halves.
func (c ResultCode) Message() string {
	m, ok := codeMessages[c]
	if !ok {
		return ""
	}
	return m.ko + " / " + m.en
}

// MessageKO is the Korean half of Message.
func (c ResultCode) MessageKO() string { return codeMessages[c].ko }

// MessageEN is the English half of Message.
func (c ResultCode) MessageEN() string { return codeMessages[c].en }

// HTTPStatus is the status the native API answers c with. Outcomes of a
// processed request (success, pending, refusals by contract or issuer) are
// 200 and the body's resultCode tells them apart, as Korean PG APIs do;
// only request errors have their own status.
func (c ResultCode) HTTPStatus() int {
	switch c {
	case CodeInvalidRequest, CodeIdempotencyKey:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeMerchantInactive:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeUnsupported:
		return http.StatusMethodNotAllowed
	case CodeIdempotencyConflict, CodeDuplicateOrder:
		return http.StatusConflict
	case CodeSystemError:
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// Error is a request the PG refused before asking the issuer, or a lookup
// that found nothing. Detail is public (English, never card data) and may
// be shown to the merchant.
type Error struct {
	Code   ResultCode
	Detail string
}

func (e *Error) Error() string {
	s := "pg: " + string(e.Code) + " " + e.Code.Message()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, pg.ErrDailyLimit) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; they match any *Error with the same Code.
var (
	ErrInvalidRequest      = &Error{Code: CodeInvalidRequest}
	ErrUnauthorized        = &Error{Code: CodeUnauthorized}
	ErrMerchantInactive    = &Error{Code: CodeMerchantInactive}
	ErrIdempotencyKey      = &Error{Code: CodeIdempotencyKey}
	ErrIdempotencyConflict = &Error{Code: CodeIdempotencyConflict}
	ErrDuplicateOrder      = &Error{Code: CodeDuplicateOrder}
	ErrNotFound            = &Error{Code: CodeNotFound}
	ErrOperationPending    = &Error{Code: CodeOperationPending}
	ErrBINNotAllowed       = &Error{Code: CodeBINNotAllowed}
	ErrOverMaxAmount       = &Error{Code: CodeOverMaxAmount}
	ErrDailyLimit          = &Error{Code: CodeDailyLimit}
	ErrRefundExceeded      = &Error{Code: CodeRefundExceeded}
	ErrAlreadyCancelled    = &Error{Code: CodeAlreadyCancelled}
	ErrNotCancellable      = &Error{Code: CodeNotCancellable}
	ErrAfterSettlement     = &Error{Code: CodeAfterSettlement}
	ErrBeforeSettlement    = &Error{Code: CodeBeforeSettlement}
	ErrCancelInstead       = &Error{Code: CodeCancelInstead}
	ErrInvalidCard         = &Error{Code: CodeInvalidCard}
	ErrCardExpired         = &Error{Code: CodeCardExpired}
)

// CodeOf returns the result code of err: that of the *Error it wraps, ""
// for nil, CodeSystemError for any other error.
func CodeOf(err error) ResultCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeSystemError
}

func newError(c ResultCode, detail string) *Error { return &Error{Code: c, Detail: detail} }

func invalid(detail string) *Error { return newError(CodeInvalidRequest, detail) }
