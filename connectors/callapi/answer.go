package callapi

import (
	"net/http"

	"github.com/kecis/kecis/saml"
)

// NewResponse is the answer to a call with its outcome and the provider's
// status (KECIS §6): the status's last segments, the provider's message as
// it sent it, and the English [Reason]. The HTTP status to send it with is
// [HTTPStatus]'s.
func NewResponse(outcome, provider string, st saml.Status) CallResponse {
	return CallResponse{Outcome: outcome, Provider: provider, Status: st.Top(), SubStatus: st.Sub(),
		Message: st.Message, Reason: Reason(st)}
}

// HTTPStatus is the HTTP status of a call's answer (KECIS §12.4), as a
// payments API gives it:
//
//	200  answered Success
//	202  pending (the outcome is unknown), or answered Pending
//	402  answered Declined, InsufficientFunds or LimitExceeded: the payment was refused
//	400  answered a refusal of the request's form: InvalidPayload, InvalidMessage,
//	     RequestUnsupported, RequestVersionTooHigh/TooLow, VersionMismatch
//	409  answered InFlight (the same Idempotency-Key is being processed)
//	422  any other answered refusal, Requester or Responder (InvalidCard, Expired,
//	     PolicyViolation, Duplicate, RequestDenied, IdempotencyConflict…)
//	503  unavailable, or answered ProviderUnavailable or HubUnavailable (the
//	     hub could not record the request, KECIS §12.8)
//
// The body is the CallResponse in every case: the provider's verified
// answer, its sub-status and message, is the merchant's to read.
func HTTPStatus(outcome string, st saml.Status) int {
	switch {
	case outcome == OutcomePending:
		return http.StatusAccepted
	case outcome == OutcomeUnavailable:
		return http.StatusServiceUnavailable
	case st.OK():
		return http.StatusOK
	case st.Code == saml.StatusVersionMismatch:
		return http.StatusBadRequest
	}
	switch st.SubCode {
	case saml.CodeDeclined, saml.CodeInsufficientFunds, saml.CodeLimitExceeded:
		return http.StatusPaymentRequired
	case saml.CodePending:
		return http.StatusAccepted
	case saml.CodeProviderUnavailable, saml.CodeHubUnavailable:
		return http.StatusServiceUnavailable
	case saml.CodeInFlight:
		return http.StatusConflict
	case saml.CodeInvalidPayload, saml.CodeInvalidMessage, saml.StatusRequestUnsupported,
		saml.StatusRequestVersionTooHigh, saml.StatusRequestVersionTooLow:
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

// reasons are the English phrases of the second-level codes (KECIS §6.2),
// by their last segment.
var reasons = map[string]string{
	"Declined":                    "the provider declined",
	"InsufficientFunds":           "insufficient funds: not enough limit or balance",
	"InvalidCard":                 "the card (or key-in data) does not check",
	"Expired":                     "the card, session or result has expired",
	"AuthenticationRequired":      "cardholder authentication is needed first",
	"LimitExceeded":               "an amount or count limit was reached",
	"Pending":                     "the outcome is not known yet: retry with the same Idempotency-Key, or inquire",
	"Duplicate":                   "the operation was already done",
	"ProviderUnavailable":         "the provider did not answer",
	"HubUnavailable":              "the hub could not record the request and sent nothing: retry with the same Idempotency-Key",
	"PolicyViolation":             "refused by federation or provider policy",
	"IdempotencyConflict":         "the Idempotency-Key was used with a different request",
	"InFlight":                    "a request with this Idempotency-Key is being processed",
	"InvalidMessage":              "the message is not valid",
	"InvalidTime":                 "the message's time is outside the accepted window",
	"WrongDestination":            "the message was sent to another endpoint",
	"Replay":                      "the message was already received",
	"NotAuthorized":               "the sender may not send this request",
	"InvalidAuthenticationResult": "an authentication result does not verify",
	"DecryptionFailed":            "the provider could not decrypt the request",
	"InvalidPayload":              "the request's fields are not what the service needs",
	"RequestUnsupported":          "the provider does not support this request",
	"RequestVersionTooHigh":       "the protocol version is too high",
	"RequestVersionTooLow":        "the protocol version is too low",
	"RequestDenied":               "the service does not admit this caller",
}

// Reason is the English phrase of a status (KECIS §6): its second-level
// code's meaning, else its top-level code's; "" for Success. The
// provider's own message, in its own language, stays beside it.
func Reason(st saml.Status) string {
	if st.OK() {
		return ""
	}
	if r, ok := reasons[saml.StatusName(st.SubCode)]; ok && st.SubCode != "" {
		return r
	}
	switch st.Code {
	case saml.StatusRequester:
		return "the provider refused the request"
	case saml.StatusResponder:
		return "the provider could not process the request"
	case saml.StatusVersionMismatch:
		return "the protocol version is not supported"
	}
	return ""
}
