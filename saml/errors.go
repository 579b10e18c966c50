package saml

import (
	"errors"
	"fmt"
	"log/slog"
)

// Stage tells where in the receive pipeline a message was refused, which
// decides how the refusal is answered (KECIS §5.3).
type Stage int

const (
	// BeforeVerification: the message's signature was not (yet) verified.
	// Nothing in it can be trusted, not even its ID: the answer is a cheap,
	// unsigned, generic fault and never a signed message.
	BeforeVerification Stage = iota + 1
	// AfterVerification: the message verified against its issuer's keys;
	// the refusal is a signed ServiceResponse with Requester or Responder and
	// a second-level code, InResponseTo the message's ID.
	AfterVerification
)

func (s Stage) String() string {
	switch s {
	case BeforeVerification:
		return "before-verification"
	case AfterVerification:
		return "after-verification"
	}
	return "unknown"
}

// Error is a refusal of the receive pipeline, in the manner of fosite's
// RFC6749Error: a shared value names the category (Reason, public message,
// status codes), and With* copies attach the private cause that goes to the
// log and never to the sender.
type Error struct {
	// Reason is the stable, machine-readable category; it labels the refusal
	// counter and the log line.
	Reason string
	// Public is what the sender is told. It names the category only.
	Public string
	// Stage is where the pipeline refused.
	Stage Stage
	// Status and SubStatus are the codes of the signed refusal (only for
	// AfterVerification).
	Status    string
	SubStatus string

	// cause is private: logged, never sent. It must not hold secrets either.
	cause error
	// Message fields known at refusal time, for the log (all public).
	Issuer string
	ID     string
}

// Error implements error with the public text and the reason, never the cause.
func (e *Error) Error() string {
	return fmt.Sprintf("kecis: %s (%s)", e.Public, e.Reason)
}

// Unwrap returns the private cause.
func (e *Error) Unwrap() error { return e.cause }

// Is matches errors of the same Reason, so that errors.Is(err, ErrReplay)
// holds for every copy of ErrReplay.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Cause returns the private cause for logging.
func (e *Error) Cause() error { return e.cause }

// WithCause returns a copy carrying the private cause.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.cause = err
	return &c
}

// WithCausef is WithCause(fmt.Errorf(...)).
func (e *Error) WithCausef(format string, args ...any) *Error {
	return e.WithCause(fmt.Errorf(format, args...))
}

// withMessage returns a copy that records the (possibly unverified) issuer
// and ID of the refused message for the log.
func (e *Error) withMessage(issuer, id string) *Error {
	c := *e
	c.Issuer, c.ID = issuer, id
	return &c
}

// Status returns the signed refusal's samlp:Status. The message is the public
// category only.
func (e *Error) StatusValue() Status {
	return Status{Code: e.Status, SubCode: e.SubStatus, Message: e.Public}
}

// LogValue puts the reason, stage and private cause in structured logs.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("reason", e.Reason),
		slog.String("stage", e.Stage.String()),
	}
	if e.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", e.Issuer))
	}
	if e.ID != "" {
		attrs = append(attrs, slog.String("id", e.ID))
	}
	if e.cause != nil {
		attrs = append(attrs, slog.String("cause", e.cause.Error()))
	}
	return slog.GroupValue(attrs...)
}

// AsError returns the pipeline error inside err, or a generic pre-verification
// error for anything else (an unknown error never reaches a sender as text).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal.WithCause(err)
}

func preErr(reason, public string) *Error {
	return &Error{Reason: reason, Public: public, Stage: BeforeVerification}
}

func postErr(reason, public, status, sub string) *Error {
	return &Error{Reason: reason, Public: public, Stage: AfterVerification, Status: status, SubStatus: sub}
}

// Refusals before verification (KECIS §5.3.1). Their public texts are
// deliberately coarse: the sender learns the category, an attacker nothing
// about which check stopped it.
var (
	ErrTooLarge      = preErr("too_large", "message too large")
	ErrDoctype       = preErr("doctype", "malformed message")
	ErrMalformed     = preErr("malformed", "malformed message")
	ErrShape         = preErr("shape", "message does not follow the KECIS profile")
	ErrAlgorithm     = preErr("algorithm", "message does not follow the KECIS profile")
	ErrUnknownIssuer = preErr("unknown_issuer", "message could not be verified")
	ErrSignature     = preErr("signature", "message could not be verified")
	ErrInternal      = preErr("internal", "message could not be processed")
)

// Refusals after verification (KECIS §5.3.2), answered by a signed status.
var (
	ErrVersion        = postErr("version", "unsupported protocol version", StatusVersionMismatch, StatusRequestVersionTooHigh)
	ErrStructure      = postErr("structure", "message does not follow the KECIS profile", StatusRequester, CodeInvalidMessage)
	ErrTime           = postErr("time", "message is outside its acceptance window", StatusRequester, CodeInvalidTime)
	ErrDestination    = postErr("destination", "message is not addressed to this endpoint", StatusRequester, CodeWrongDestination)
	ErrReplay         = postErr("replay", "message ID was already used", StatusRequester, CodeReplay)
	ErrNotAuthorized  = postErr("not_authorized", "issuer is not allowed this service", StatusRequester, CodeNotAuthorized)
	ErrUnknownService = postErr("unknown_service", "service is not offered here", StatusRequester, StatusRequestUnsupported)
	// ErrCallerDenied: the service does not admit the caller (KECIS §13.2).
	ErrCallerDenied = postErr("caller_denied", "the caller is not admitted to this service", StatusRequester, StatusRequestDenied)
	ErrInResponseTo = postErr("in_response_to", "response does not answer a pending request", StatusRequester, CodeInvalidMessage)
	ErrAuthResult   = postErr("auth_result", "embedded authentication result is not valid", StatusRequester, CodeInvalidAuthenticationResult)
	ErrDecryption   = postErr("decryption", "encrypted data could not be decrypted", StatusRequester, CodeDecryptionFailed)
	ErrPayload      = postErr("payload", "payload is not valid ECML", StatusRequester, CodeInvalidPayload)
	ErrStore        = postErr("store", "temporarily unable to process the message", StatusResponder, CodeProviderUnavailable)
)
