package saml

import "strings"

// Top-level status codes (SAML core §3.2.2.2). KECIS uses only these four at
// the top level; every business outcome is a second-level code (KECIS §6).
const (
	StatusSuccess         = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester       = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder       = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusVersionMismatch = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch"
)

// Second-level status codes of SAML core §3.2.2.2 that KECIS reuses.
const (
	StatusRequestUnsupported    = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
	StatusRequestVersionTooHigh = "urn:oasis:names:tc:SAML:2.0:status:RequestVersionTooHigh"
	StatusRequestVersionTooLow  = "urn:oasis:names:tc:SAML:2.0:status:RequestVersionTooLow"
	// StatusRequestDenied refuses a caller the service does not admit
	// (KECIS §13.2).
	StatusRequestDenied = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
)

// KECISStatusPrefix starts every KECIS second-level status code (KECIS §6.2).
const KECISStatusPrefix = "urn:kecis:status:"

// KECIS second-level status codes (KECIS §6.2). Business outcomes first, then
// the protocol refusals a receiver signs after verification.
const (
	CodeDeclined               = KECISStatusPrefix + "Declined"
	CodeInsufficientFunds      = KECISStatusPrefix + "InsufficientFunds"
	CodeInvalidCard            = KECISStatusPrefix + "InvalidCard"
	CodeAuthenticationRequired = KECISStatusPrefix + "AuthenticationRequired"
	CodePending                = KECISStatusPrefix + "Pending"
	CodeExpired                = KECISStatusPrefix + "Expired"
	CodeDuplicate              = KECISStatusPrefix + "Duplicate"
	CodeProviderUnavailable    = KECISStatusPrefix + "ProviderUnavailable"
	CodeLimitExceeded          = KECISStatusPrefix + "LimitExceeded"
	CodePolicyViolation        = KECISStatusPrefix + "PolicyViolation"
	CodeIdempotencyConflict    = KECISStatusPrefix + "IdempotencyConflict"
	CodeInFlight               = KECISStatusPrefix + "InFlight"

	// CodeHubUnavailable: the hub could not record the request (its
	// database failed or refused the write) and forwarded nothing; the
	// sender retries with the same idempotency key (KECIS §12.8).
	CodeHubUnavailable = KECISStatusPrefix + "HubUnavailable"

	// Protocol refusals after signature verification (KECIS §5.3).
	CodeInvalidMessage              = KECISStatusPrefix + "InvalidMessage"
	CodeInvalidTime                 = KECISStatusPrefix + "InvalidTime"
	CodeWrongDestination            = KECISStatusPrefix + "WrongDestination"
	CodeReplay                      = KECISStatusPrefix + "Replay"
	CodeNotAuthorized               = KECISStatusPrefix + "NotAuthorized"
	CodeInvalidPayload              = KECISStatusPrefix + "InvalidPayload"
	CodeDecryptionFailed            = KECISStatusPrefix + "DecryptionFailed"
	CodeInvalidAuthenticationResult = KECISStatusPrefix + "InvalidAuthenticationResult"
)

// Status is samlp:Status: a top-level code, an optional second-level code and
// an optional human-readable message (SAML core §3.2.2.1).
type Status struct {
	Code    string // top-level, one of the Status* constants
	SubCode string // optional second-level code
	Message string // optional samlp:StatusMessage; never holds a secret
}

// OK reports whether the top-level code is Success.
func (s Status) OK() bool { return s.Code == StatusSuccess }

// Top returns the last segment of the top-level code (KECIS §6.1):
// "Requester" for urn:oasis:names:tc:SAML:2.0:status:Requester, "" when
// there is none.
func (s Status) Top() string { return StatusName(s.Code) }

// Sub returns the second-level code (KECIS §6.2) without the KECIS prefix
// when it is a KECIS code (e.g. "Declined"), or the whole URI otherwise (a SAML
// second-level code such as RequestDenied stays a full URI).
func (s Status) Sub() string {
	if name, ok := strings.CutPrefix(s.SubCode, KECISStatusPrefix); ok && name != "" {
		return name
	}
	return s.SubCode
}

// Short is the status as reports and logs print it: [Status.Top], then "/"
// and the last segment of the second-level code when there is one
// ("Requester/RequestDenied", "Success"). It never holds the message.
func (s Status) Short() string {
	if s.SubCode == "" {
		return s.Top()
	}
	return s.Top() + "/" + StatusName(s.SubCode)
}

// StatusName returns the last segment of a status code URI, top-level or
// second-level, SAML's or KECIS's: what follows its last ':' ("Declined"
// for urn:kecis:status:Declined). A string without ':' is returned whole.
func StatusName(code string) string { return code[strings.LastIndexByte(code, ':')+1:] }

func validTopLevel(code string) bool {
	switch code {
	case StatusSuccess, StatusRequester, StatusResponder, StatusVersionMismatch:
		return true
	}
	return false
}
