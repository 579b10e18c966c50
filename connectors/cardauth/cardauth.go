// Package cardauth is the issuer's cardholder authentication (KECIS
// §15.7): the 3-D Secure (안심클릭) / ISP step in which the issuer, not the
// merchant, authenticates its cardholder, with stronger factors for larger
// amounts, and vouches for it with an issuer-signed
// kecis:AuthenticationResult (KECIS §3) and an authentication value (AAV)
// that it checks again when the purchase is approved.
//
// Both services are front-channel services (KECIS §10.2, HTTP-POST): the
// merchant's checkout sends the cardholder's browser to the issuer's page
// (Engine.Handler) with the merchant's signed kecis:ServiceRequest as
// SAMLRequest; the page runs the SDK's receive pipeline on it
// (connectors.Handler.ReceiveFront, KECIS §5, §13.2), keeps a short-lived
// transaction bound to the browser by a cookie, asks for the card number
// and the card password — and, when the Policy wants it, a second factor:
// a TOTP code or a TLS client certificate on the dedicated mutual-TLS
// endpoint (Engine.CertHandler) — and posts the signed response to the
// requester's own HTTP-POST endpoint for the service from metadata, never
// to an address from the request.
//
//   - cardauth:authenticate answers the card number (real, or a virtual
//     one, KECIS §15.4) encrypted for the acquirer the merchant named, the
//     AAV and the signed result;
//   - vcn:issue answers a virtual number for the cardholder's own use,
//     shown on the page and encrypted for the requester.
//
// No card number, password, code or seed is ever in a log line, an error
// or a stored row: the transaction keeps a card reference and the masked
// number only.
package cardauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Service URIs (KECIS §15.7.1, §15.4).
const (
	ServiceAuthenticate = saml.ServicePrefix + "cardauth:authenticate"
	ServiceVCNIssue     = saml.ServicePrefix + "vcn:issue"
)

// Authentication method URIs of the result (KECIS §3.1, §15.7.2).
const (
	// MethodPassword: the card's authentication password (1 factor).
	MethodPassword = "urn:kecis:authn:card-password"
	// MethodClientCert: the password and a TLS client certificate the
	// issuer issued to the cardholder (2 factors).
	MethodClientCert = "urn:kecis:authn:tls-client-certificate"
	// MethodTOTP: the password and an RFC 6238 code (2 factors).
	MethodTOTP = "urn:kecis:authn:totp"
)

// Factor is one authentication factor a Policy may ask for.
type Factor string

// The factors (KECIS §15.7.2).
const (
	FactorPassword   Factor = "password"
	FactorClientCert Factor = "client-certificate"
	FactorTOTP       Factor = "totp"
)

// Card is one of the issuer's cards as the page needs it: never the
// number. Ref is the issuer's reference (a token, not a number); Masked
// the number masked (ecml.MaskPAN); TOTP whether the cardholder has a TOTP
// seed enrolled.
type Card struct {
	Ref, Type, Masked string
	ExpMonth, ExpYear int
	TOTP              bool
}

// VirtualControls are the controls of a virtual number (KECIS §15.4):
// single use, the merchant it is locked to ("" any), the amount cap in
// minor units (0 none) and its currency, and its end of validity. Its type
// is identical to connectors/vcn.Controls'.
type VirtualControls = struct {
	SingleUse    bool
	Merchant     string
	MaxAmount    int64
	Currency     string
	NotOnOrAfter time.Time
}

// VirtualNumber is a virtual number the issuer issued (KECIS §15.4).
type VirtualNumber struct {
	Number            ecml.PAN
	Type              string
	ExpMonth, ExpYear int
	Controls          VirtualControls
}

// Cardholders is the issuer's side of the page: its cards and their
// credentials. examples/issuer/kecisadapter implements it over the
// issuer. Every method is safe for concurrent use; none puts a number,
// password, code or seed in an error.
type Cardholders interface {
	// FindCard returns the issuer's active card with this number;
	// ErrUnknownCard when it is not the issuer's or not active.
	FindCard(ctx context.Context, pan ecml.PAN) (*Card, error)
	// CardNumber returns the number of a card.
	CardNumber(ctx context.Context, ref string) (ecml.PAN, error)
	// CheckPassword checks the card's authentication password: nil, a
	// *FactorError (wrong; Left attempts remain) or ErrLocked. It counts
	// failures and locks at the issuer's limit.
	CheckPassword(ctx context.Context, ref string, pw ecml.Secret) error
	// CheckTOTP checks an RFC 6238 code, with the same contract; a code
	// (time step) used once is refused.
	CheckTOTP(ctx context.Context, ref string, code ecml.Secret) error
	// CertificateCard returns the card a client certificate was issued
	// for, after cardauth checked its chain and revocation (CertVerifier);
	// ErrUnknownCard when it names none.
	CertificateCard(ctx context.Context, cert *x509.Certificate) (ref string, err error)
	// IssueVirtual issues a virtual number for a card (KECIS §15.4).
	IssueVirtual(ctx context.Context, ref string, c VirtualControls) (*VirtualNumber, error)
}

// Errors of Cardholders.
var (
	// ErrUnknownCard: not this issuer's card, or not active.
	ErrUnknownCard = errors.New("cardauth: unknown card")
	// ErrLocked: the card's authentication is locked until the issuer
	// unlocks it.
	ErrLocked = errors.New("cardauth: the card's authentication is locked")
)

// FactorError is a wrong password or code; Left attempts remain before the
// lock (0: this failure locked it).
type FactorError struct {
	Left int
}

func (e *FactorError) Error() string {
	return fmt.Sprintf("cardauth: wrong credential, %d attempts left", e.Left)
}
