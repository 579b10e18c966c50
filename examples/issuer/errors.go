package issuer

import (
	"errors"
	"net/http"
)

// Code is the issuer's own error and decline code, as its native API
// reports it ({"code":"INSUFFICIENT_FUNDS","message":…}).
type Code string

// Decline codes: the card company refused the approval.
const (
	// CodeDeclined is a refusal without a more precise reason: the card
	// is blocked or reported lost, or the card cannot pay in the currency.
	CodeDeclined Code = "DECLINED"
	// CodeInsufficientFunds: a check card's linked balance or a prepaid
	// card's balance is below the amount.
	CodeInsufficientFunds Code = "INSUFFICIENT_FUNDS"
	// CodeInvalidCard: unknown card number, wrong expiry, or wrong key-in
	// data (the two leading password digits or the birth date).
	CodeInvalidCard Code = "INVALID_CARD"
	// CodeExpired: the card's expiry month has passed.
	CodeExpired Code = "EXPIRED"
	// CodeLimitExceeded: a credit card's available limit is below the
	// amount, or a virtual number's amount cap is.
	CodeLimitExceeded Code = "LIMIT_EXCEEDED"
	// CodeAuthenticationFailed: the approval's authentication value (AAV,
	// KECIS §15.7.3) does not match the payment, has expired or was
	// already used; the message says which.
	CodeAuthenticationFailed Code = "AUTHENTICATION_FAILED"
)

// Other codes: the request was not carried out.
const (
	CodeInvalidRequest      Code = "INVALID_REQUEST"
	CodeNotFound            Code = "NOT_FOUND"
	CodeIdempotencyConflict Code = "IDEMPOTENCY_CONFLICT" // the key was used with other parameters
	CodeDuplicateOrder      Code = "DUPLICATE_ORDER"      // the merchant's order already has an approval
	CodeAlreadyCancelled    Code = "ALREADY_CANCELLED"
	CodeAlreadySettled      Code = "ALREADY_SETTLED"    // a void after the cut-off: refund instead
	CodeNotSettled          Code = "NOT_SETTLED"        // a refund before the cut-off: cancel instead
	CodeRefundExceeded      Code = "REFUND_EXCEEDED"    // refunds would exceed the approved amount
	CodeAmountRequired      Code = "AMOUNT_REQUIRED"    // a refund naming no amount of an approval that is no verification approval
	CodeNotEnrolled         Code = "NOT_ENROLLED"       // the card has no authentication password, TOTP seed or virtual numbers
	CodeNoCA                Code = "NO_CA"              // the issuer has no cardholder CA configured
	CodeUnauthorized        Code = "UNAUTHORIZED"       // HTTP API only: admin token missing or wrong
	CodeMethodNotAllowed    Code = "METHOD_NOT_ALLOWED" // HTTP API only
	CodeInternal            Code = "INTERNAL"
)

// IsDecline reports whether c is one of the six decline codes.
func (c Code) IsDecline() bool {
	switch c {
	case CodeDeclined, CodeInsufficientFunds, CodeInvalidCard, CodeExpired, CodeLimitExceeded, CodeAuthenticationFailed:
		return true
	}
	return false
}

// HTTPStatus is the status the native HTTP API answers c with.
func (c Code) HTTPStatus() int {
	switch {
	case c.IsDecline():
		return http.StatusPaymentRequired
	}
	switch c {
	case CodeInvalidRequest, CodeAmountRequired:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeNotFound:
		return http.StatusNotFound
	case CodeIdempotencyConflict, CodeRefundExceeded:
		return http.StatusUnprocessableEntity
	case CodeDuplicateOrder, CodeAlreadyCancelled, CodeAlreadySettled, CodeNotSettled, CodeNotEnrolled:
		return http.StatusConflict
	case CodeNoCA:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// Error is an outcome of the issuer's business rules: a decline or a
// refused request. Message is public: it never holds card data and may be
// shown to the merchant. Compare with errors.Is against the Err… values,
// which match on Code alone.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "issuer: " + string(e.Code)
	}
	return "issuer: " + string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; they match any *Error with the same Code.
var (
	ErrDeclined             = &Error{Code: CodeDeclined}
	ErrInsufficientFunds    = &Error{Code: CodeInsufficientFunds}
	ErrInvalidCard          = &Error{Code: CodeInvalidCard}
	ErrExpired              = &Error{Code: CodeExpired}
	ErrLimitExceeded        = &Error{Code: CodeLimitExceeded}
	ErrInvalidRequest       = &Error{Code: CodeInvalidRequest}
	ErrNotFound             = &Error{Code: CodeNotFound}
	ErrIdempotencyConflict  = &Error{Code: CodeIdempotencyConflict}
	ErrDuplicateOrder       = &Error{Code: CodeDuplicateOrder}
	ErrAlreadyCancelled     = &Error{Code: CodeAlreadyCancelled}
	ErrAlreadySettled       = &Error{Code: CodeAlreadySettled}
	ErrNotSettled           = &Error{Code: CodeNotSettled}
	ErrRefundExceeded       = &Error{Code: CodeRefundExceeded}
	ErrAmountRequired       = &Error{Code: CodeAmountRequired}
	ErrAuthenticationFailed = &Error{Code: CodeAuthenticationFailed}
	ErrNotEnrolled          = &Error{Code: CodeNotEnrolled}
	ErrNoCA                 = &Error{Code: CodeNoCA}
)

// CodeOf returns the Code of err: that of the *Error it wraps, "" for nil,
// CodeInternal for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func newError(c Code, msg string) *Error { return &Error{Code: c, Message: msg} }

func invalid(msg string) *Error { return newError(CodeInvalidRequest, msg) }
