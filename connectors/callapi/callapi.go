// Package callapi is the JSON call API of KECIS: the bodies a merchant
// posts to the hub's JSON facade — POST /v1/{group}/{operation} and
// POST /v1/routes (KECIS §12.4) — and the answers it gets back. The
// sidecar's local calling endpoint speaks the same API to a provider's
// backend (docs/sidecar.md), and the facade's OpenAPI description
// (GET /v1/openapi.json) is checked against these types. One declaration
// for the three: the types, the strict decoder, the checks of the fields
// against what their service requires, the problems both servers answer
// and the HTTP status of every answer.
//
// The package is a leaf of the hub: it imports nothing of federation/.
package callapi

// CallRequest is the body of POST /v1/{group}/{operation}.
type CallRequest struct {
	// Recipient names the provider; empty: the routing rules choose (the
	// hub) or the federation metadata by card BIN or bank code (the
	// sidecar).
	Recipient string `json:"recipient,omitempty"`
	// Fields are flat ECML fields (RFC 4112 §2.1 names: Ecom_*), every
	// value a JSON string.
	Fields map[string]string `json:"fields"`
	// Encrypted holds sensitive elements the merchant's page encrypted for
	// the provider: "card" → an xenc:EncryptedData standing for
	// Payment/Card (KECIS §8.1). The hub's facade only.
	Encrypted map[string]string `json:"encrypted,omitempty"`
	// Routing hints: the card's BIN and last four digits, a bank code.
	Routing *RoutingHints `json:"routing,omitempty"`
	// AuthenticationResults are signed kecis:AuthenticationResult
	// elements to embed in the request unchanged (KECIS §3.2), each the
	// base64 of the element's XML — an amount authentication's result on
	// the purchase it verified (KECIS §15.3), an issuer's cardholder
	// authentication on the approval it allows —, so that the recipient
	// and the hub's policy see it. At most MaxAuthenticationResults, each
	// at most MaxAuthenticationResultLen characters. The hub's facade and
	// the sidecar's caller take them (DecodeOptions.AuthenticationResults);
	// the recipient verifies each with its issuer's keys.
	AuthenticationResults []string `json:"authentication_results,omitempty"`
}

// Bounds of CallRequest.AuthenticationResults: a signed result with its
// certificate is about 4 KB of base64.
const (
	MaxAuthenticationResults   = 4
	MaxAuthenticationResultLen = 12 << 10
)

// RoutingHints are public (KECIS §2.2, kecis:Routing).
type RoutingHints struct {
	CardBIN   string `json:"card_bin,omitempty"`
	CardLast4 string `json:"card_last4,omitempty"`
	BankCode  string `json:"bank_code,omitempty"`
}

// Outcomes of a call, as CallResponse.Outcome says them.
const (
	// OutcomeAnswered: the provider's verified answer, whatever its status.
	OutcomeAnswered = "answered"
	// OutcomePending: the provider did not answer in time; the outcome is
	// unknown (retry with the same Idempotency-Key, or inquire).
	OutcomePending = "pending"
	// OutcomeUnavailable: the provider could not be reached.
	OutcomeUnavailable = "unavailable"
)

// CallResponse is the answer to POST /v1/{group}/{operation}, sent with
// the HTTP status [HTTPStatus] gives.
type CallResponse struct {
	Outcome string `json:"outcome"` // answered, pending, unavailable
	Status  string `json:"status"`  // Success, Requester, Responder, VersionMismatch
	// SubStatus is the second-level code (KECIS §6.2): Declined,
	// InsufficientFunds…
	SubStatus string `json:"sub_status,omitempty"`
	// Message is the provider's own text (samlp:StatusMessage), in its
	// language, as it sent it.
	Message string `json:"message,omitempty"`
	// Reason is the English phrase of the status ([Reason]).
	Reason      string            `json:"reason,omitempty"`
	Provider    string            `json:"provider"`
	RequestID   string            `json:"request_id"`
	ResponseID  string            `json:"response_id,omitempty"`
	RoutingNote string            `json:"routing,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
	// AuthenticationResults are the signed kecis:AuthenticationResult
	// elements the answer embeds (KECIS §3), each the base64 of its XML as
	// it travelled: evidence the caller may keep, or embed in a later
	// request (CallRequest.AuthenticationResults).
	AuthenticationResults []string `json:"authentication_results,omitempty"`
}

// RouteRequest is the body of POST /v1/routes.
type RouteRequest struct {
	Service  string `json:"service"`
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	CardBIN  string `json:"card_bin,omitempty"`
	BankCode string `json:"bank_code,omitempty"`
}

// RouteResponse tells the merchant's page whom to encrypt the card for.
type RouteResponse struct {
	Recipient             string `json:"recipient"`
	EncryptionCertificate string `json:"encryption_certificate"` // PEM
	Routing               string `json:"routing"`
}
