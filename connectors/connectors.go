// Package connectors is the KECIS adapter SDK a provider mounts next to its
// own API (the serving side: Handler) and the client a merchant's backend
// or a PG uses to call others through the hub (the calling side: Client).
//
// A provider implements small service interfaces, one per service group
// (card.Service, with optional card.Canceler, card.Refunder, card.Inquirer
// detected at run time, in the manner of dex's connector package), and
// turns them into ServiceFuncs by service URI. The Handler terminates
// KECIS: the receive pipeline with the check that the service admits the
// caller (KECIS §13.2), the idempotency authority with the owners of the
// provider's objects (KECIS §13.3), the provider's function, then
// encryption and signature of the answer.
package connectors

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Directory is what the SDK needs of the federation metadata: signing keys
// (to verify), encryption certificates (to encrypt for a recipient) and
// endpoints. saml/metadata.Client implements it.
type Directory interface {
	saml.KeyResolver
	EncryptionCertificate(ctx context.Context, entityID string) (*x509.Certificate, error)
	Endpoint(ctx context.Context, entityID, service, binding string) (metadata.Endpoint, error)
	Lookup(ctx context.Context, entityID string) (*metadata.EntityDescriptor, error)
}

var _ Directory = (*metadata.Client)(nil)

// Request is a verified, decrypted, validated request as a provider's
// function receives it.
type Request struct {
	ID             string
	Service        string
	Issuer         string // the sender (the hub for JSON-facade requests)
	OnBehalfOf     string // the merchant, when the hub sent it on its behalf
	IdempotencyKey string
	Routing        *saml.Routing
	Payload        *ecml.Payload
	AuthResults    []*saml.AuthenticationResult
	// SignedAuthResults are the same results as the signed elements the
	// request embedded, in the same order, to pass on unchanged (KECIS
	// §3.2): a PG forwards the issuer's cardholder authentication with the
	// approval (KECIS §15.7).
	SignedAuthResults []*etree.Element
}

// Merchant is whom the request is for — its caller (KECIS §13.1), the
// owner of what it creates: OnBehalfOf, else the Issuer.
func (r *Request) Merchant() string { return metadata.Caller(r.Issuer, r.OnBehalfOf) }

// Response is a provider's answer; the SDK signs it and encrypts its
// sensitive elements for the requester.
type Response struct {
	Status      saml.Status
	Payload     *ecml.Payload
	AuthResults []*etree.Element
}

// ServiceFunc runs one service. A business refusal is a Response with a
// non-success status (or a *StatusError); any other error becomes
// Responder / ProviderUnavailable, and the key stays retryable.
type ServiceFunc func(ctx context.Context, req *Request) (*Response, error)

// StatusError is a business outcome a function may return as an error:
// a top-level and second-level code and a public message.
type StatusError struct {
	Status saml.Status
}

func (e *StatusError) Error() string { return "kecis: " + e.Status.SubCode + ": " + e.Status.Message }

// Refuse returns a StatusError with Responder (or Requester) and a KECIS
// second-level code.
func Refuse(top, sub, message string) *StatusError {
	return &StatusError{Status: saml.Status{Code: top, SubCode: sub, Message: message}}
}

// AsStatus returns the status of a StatusError in err.
func AsStatus(err error) (saml.Status, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status, true
	}
	return saml.Status{}, false
}
