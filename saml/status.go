package saml

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

// Sub returns the second-level code without the KECIS prefix when it is a
// KECIS code (e.g. "Declined"), or the whole URI otherwise.
func (s Status) Sub() string {
	if len(s.SubCode) > len(KECISStatusPrefix) && s.SubCode[:len(KECISStatusPrefix)] == KECISStatusPrefix {
		return s.SubCode[len(KECISStatusPrefix):]
	}
	return s.SubCode
}

func validTopLevel(code string) bool {
	switch code {
	case StatusSuccess, StatusRequester, StatusResponder, StatusVersionMismatch:
		return true
	}
	return false
}
