package callapi

import (
	"net/http"

	"github.com/kecis/kecis/connectors/httpserver"
)

// The problems of the call API that the hub's facade and the sidecar's
// caller both answer (RFC 9457, KECIS §12.4). Each server adds its own
// (the facade: authentication, encrypted cards, idempotency refusals; the
// sidecar: its metadata and recipient).
var (
	ProblemUnknownService = httpserver.NewProblem("unknown-service", http.StatusNotFound,
		"this service is not offered on this API")
	ProblemIdempotencyKeyMissing = httpserver.NewProblem("idempotency-key-missing", http.StatusBadRequest,
		"an Idempotency-Key header is required for an operation that changes state")
	ProblemIdempotencyKeyInvalid = httpserver.NewProblem("idempotency-key-invalid", http.StatusBadRequest,
		"the Idempotency-Key is longer than 255 characters")
	ProblemBadRequest = httpserver.ProblemBadRequest
	// ProblemTooLarge and ProblemUnreadable are what ReadBody answers, as
	// the hub's own endpoints do.
	ProblemTooLarge      = httpserver.ProblemTooLarge
	ProblemUnreadable    = httpserver.ProblemUnreadable
	ProblemInvalidFields = httpserver.NewProblem("invalid-fields", http.StatusBadRequest,
		"the ECML fields are not valid")
	// ProblemUnknownEncrypted is an encrypted member the server does not
	// take: the facade takes only encrypted.card, the sidecar's caller none
	// (it encrypts the card itself); the detail says which.
	ProblemUnknownEncrypted = httpserver.NewProblem("unknown-encrypted", http.StatusBadRequest,
		"encrypted holds a member this API does not take; the detail says what it takes")
	ProblemMissingFields = httpserver.NewProblem("missing-fields", http.StatusBadRequest,
		"the request lacks fields its service requires")
	ProblemCardNumberInField = httpserver.NewProblem("card-number-in-field", http.StatusBadRequest,
		"a public field holds a run of 13 to 19 digits that passes the Luhn check: it reads as a card number, "+
			"which no public field may carry (KECIS §9.11)")
	ProblemClearSensitive = httpserver.NewProblem("clear-card-refused", http.StatusBadRequest,
		"sensitive fields in clear are refused (card, track data, password, birth date: KECIS §8.1): "+
			"encrypt the card for the provider in the browser (POST /v1/routes names the provider and its certificate)")
	ProblemNoRoute = httpserver.NewProblem("no-route", http.StatusUnprocessableEntity,
		"no provider can take this request")
	ProblemInternal = httpserver.ProblemInternal
	// ProblemInvalidAuthenticationResult is an item of
	// authentication_results that is not the base64 of one
	// kecis:AuthenticationResult element (ParseAuthenticationResults);
	// the detail names the item and what is wrong.
	ProblemInvalidAuthenticationResult = httpserver.NewProblem("invalid-authentication-result", http.StatusBadRequest,
		"an item of authentication_results is not the base64 of a kecis:AuthenticationResult element")
)
