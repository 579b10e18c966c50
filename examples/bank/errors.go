package bank

import (
	"errors"
	"net/http"
)

// Code is the bank's own error code, as its native API reports it
// ({"code":"INSUFFICIENT_FUNDS","message":…}).
type Code string

// Refusals of a movement.
const (
	// CodeNoSuchAccount: the account is unknown, closed, or not at this
	// bank — one answer for all, so that no caller learns which (KECIS
	// §15.8: credit is no oracle of accounts).
	CodeNoSuchAccount Code = "NO_SUCH_ACCOUNT"
	// CodeInsufficientFunds: the balance is below the amount.
	CodeInsufficientFunds Code = "INSUFFICIENT_FUNDS"
	// CodeLimitExceeded: the amount is above the account's per-transfer
	// limit (outgoing) or the bank's (incoming credits).
	CodeLimitExceeded Code = "LIMIT_EXCEEDED"
	// CodeDuplicate: another bank's reference was credited already with
	// other content (KECIS §15.8).
	CodeDuplicate Code = "DUPLICATE"
	// CodeAlreadyReversed: a ReverseOut of a transfer reversed already
	// under another key, or of one its payee's bank credited.
	CodeAlreadyReversed Code = "ALREADY_REVERSED"
	CodeAlreadyCredited Code = "ALREADY_CREDITED"
)

// Other codes.
const (
	CodeInvalidRequest      Code = "INVALID_REQUEST"
	CodeNotFound            Code = "NOT_FOUND"
	CodeIdempotencyConflict Code = "IDEMPOTENCY_CONFLICT" // the key was used with other parameters
	CodeLoginTaken          Code = "LOGIN_TAKEN"
	CodeLoginFailed         Code = "LOGIN_FAILED" // wrong login or password (one answer for both)
	CodeLocked              Code = "LOCKED"       // too many login failures: UnlockCustomer
	CodeUnauthorized        Code = "UNAUTHORIZED" // HTTP API only: admin token missing or wrong
	CodeMethodNotAllowed    Code = "METHOD_NOT_ALLOWED"
	CodeInternal            Code = "INTERNAL"
)

// HTTPStatus is the status the native HTTP API answers c with.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeNoSuchAccount, CodeInsufficientFunds, CodeLimitExceeded:
		return http.StatusPaymentRequired
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeUnauthorized, CodeLoginFailed:
		return http.StatusUnauthorized
	case CodeLocked:
		return http.StatusForbidden
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeNotFound:
		return http.StatusNotFound
	case CodeIdempotencyConflict:
		return http.StatusUnprocessableEntity
	case CodeDuplicate, CodeAlreadyReversed, CodeAlreadyCredited, CodeLoginTaken:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// Error is an outcome of the bank's rules. Message is public: it never
// holds an account number or a password. Compare with errors.Is against
// the Err… values, which match on Code alone.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "bank: " + string(e.Code)
	}
	return "bank: " + string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrNoSuchAccount       = &Error{Code: CodeNoSuchAccount}
	ErrInsufficientFunds   = &Error{Code: CodeInsufficientFunds}
	ErrLimitExceeded       = &Error{Code: CodeLimitExceeded}
	ErrDuplicate           = &Error{Code: CodeDuplicate}
	ErrAlreadyReversed     = &Error{Code: CodeAlreadyReversed}
	ErrAlreadyCredited     = &Error{Code: CodeAlreadyCredited}
	ErrInvalidRequest      = &Error{Code: CodeInvalidRequest}
	ErrNotFound            = &Error{Code: CodeNotFound}
	ErrIdempotencyConflict = &Error{Code: CodeIdempotencyConflict}
	ErrLoginTaken          = &Error{Code: CodeLoginTaken}
	ErrLoginFailed         = &Error{Code: CodeLoginFailed}
	ErrLocked              = &Error{Code: CodeLocked}
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

// noSuchAccount is the one answer for an account that is unknown, closed
// or not at this bank.
func noSuchAccount() *Error { return newError(CodeNoSuchAccount, "no such account") }
