package saml

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
)

// AuthenticationResult is kecis:AuthenticationResult (KECIS §3): a result one
// participant asserts and another relies on later — an issuer's cardholder
// authentication, a PG's amount authentication. It carries its own ID and
// its own enveloped signature, as a SAML assertion does inside a response,
// and is embedded unchanged in the later request that relies on it.
//
//	<kecis:AuthenticationResult ID IssueInstant Version AuthnInstant NotOnOrAfter>
//	  <saml:Issuer/> <ds:Signature/>
//	  <kecis:Method Factors="2">urn:kecis:authn:...</kecis:Method>
//	  <kecis:BoundTo Amount Currency Merchant OrderID CardRef/>
//	</kecis:AuthenticationResult>
type AuthenticationResult struct {
	ID           string
	Version      string
	IssueInstant time.Time
	Issuer       string
	// Method is the authentication method URI, e.g.
	// urn:kecis:authn:card-password, urn:kecis:authn:tls-client-certificate.
	Method string
	// Factors is the number of independent factors the method used.
	Factors int
	// The transaction the result is bound to (all public fields).
	Amount   string // ECML amount form, as Transaction/@Amount
	Currency string
	Merchant string // the merchant's entity ID
	OrderID  string
	CardRef  string // a masked card number or an issuer's card token; never a PAN
	// AuthnInstant is when the authentication happened; NotOnOrAfter ends
	// the result's validity.
	AuthnInstant time.Time
	NotOnOrAfter time.Time
}

// Element builds the unsigned element; it declares its own namespaces so it
// can travel on its own (KECIS §2.5).
func (a *AuthenticationResult) Element() (*etree.Element, error) {
	if !validXMLID(a.ID) || a.Issuer == "" || a.Method == "" || a.IssueInstant.IsZero() || a.NotOnOrAfter.IsZero() {
		return nil, errors.New("kecis: authentication result needs ID, Issuer, Method, IssueInstant and NotOnOrAfter")
	}
	if a.CardRef != "" && ecml.LooksLikePAN(a.CardRef) {
		return nil, errors.New("kecis: authentication result CardRef must not be a card number")
	}
	root := etree.NewElement(prefixKECIS + ":" + elAuthenticationResult)
	root.CreateAttr("xmlns:"+prefixKECIS, NSKECIS)
	root.CreateAttr("xmlns:"+prefixSAML, NSSAML)
	root.CreateAttr("ID", a.ID)
	v := a.Version
	if v == "" {
		v = SAMLVersion
	}
	root.CreateAttr("Version", v)
	root.CreateAttr("IssueInstant", a.IssueInstant.UTC().Format(TimeLayout))
	if !a.AuthnInstant.IsZero() {
		root.CreateAttr("AuthnInstant", a.AuthnInstant.UTC().Format(TimeLayout))
	}
	root.CreateAttr("NotOnOrAfter", a.NotOnOrAfter.UTC().Format(TimeLayout))
	addText(root, prefixSAML+":"+elIssuer, a.Issuer)
	m := addText(root, prefixKECIS+":Method", a.Method)
	if a.Factors > 0 {
		m.CreateAttr("Factors", fmt.Sprint(a.Factors))
	}
	b := root.CreateElement(prefixKECIS + ":BoundTo")
	for _, kv := range [][2]string{{"Amount", a.Amount}, {"Currency", a.Currency}, {"Merchant", a.Merchant}, {"OrderID", a.OrderID}, {"CardRef", a.CardRef}} {
		if kv[1] != "" {
			b.CreateAttr(kv[0], kv[1])
		}
	}
	return root, nil
}

// Sign builds and signs the result, returning the signed element ready to
// be embedded in a message.
func (a *AuthenticationResult) Sign(s *Signer) (*etree.Element, error) {
	el, err := a.Element()
	if err != nil {
		return nil, err
	}
	if err := s.Sign(el); err != nil {
		return nil, err
	}
	return el, nil
}

// DetachAuthResult returns a copy of an embedded, signed
// kecis:AuthenticationResult that declares on itself every namespace it
// inherits, so that it can be embedded unchanged in a later message
// (KECIS §3.2: a merchant passes the issuer's result on with its
// card:approve); its signature verifies the same on the copy.
func DetachAuthResult(el *etree.Element) *etree.Element { return detach(el) }

func decodeAuthResult(el *etree.Element) (*AuthenticationResult, error) {
	r := &AuthenticationResult{}
	a := attrs(el)
	r.ID, r.Version = a.get("ID"), a.get("Version")
	ii, ai, noa := a.get("IssueInstant"), a.get("AuthnInstant"), a.get("NotOnOrAfter")
	if err := a.done(); err != nil {
		return nil, err
	}
	var err error
	if r.IssueInstant, err = ParseTime(ii); err != nil {
		return nil, err
	}
	if r.NotOnOrAfter, err = ParseTime(noa); err != nil {
		return nil, err
	}
	if ai != "" {
		if r.AuthnInstant, err = ParseTime(ai); err != nil {
			return nil, err
		}
	}
	c := &childCursor{top: el, kids: el.ChildElements()}
	if r.Issuer, err = decodeIssuer(c.take(NSSAML, elIssuer)); err != nil {
		return nil, err
	}
	m := c.take(NSKECIS, "Method")
	if m == nil {
		return nil, errors.New("kecis:Method is required")
	}
	ma := attrs(m)
	if f := ma.get("Factors"); f != "" {
		if _, err := fmt.Sscanf(f, "%d", &r.Factors); err != nil || r.Factors < 1 || r.Factors > 9 || fmt.Sprint(r.Factors) != f {
			return nil, fmt.Errorf("kecis:Method Factors %q is not a small positive integer", f)
		}
	}
	if err := ma.done(); err != nil {
		return nil, err
	}
	if r.Method, err = textOnly(m); err != nil || r.Method == "" {
		return nil, errors.New("kecis:Method must be a URI")
	}
	if b := c.take(NSKECIS, "BoundTo"); b != nil {
		ba := attrs(b)
		r.Amount, r.Currency, r.Merchant, r.OrderID, r.CardRef = ba.get("Amount"), ba.get("Currency"), ba.get("Merchant"), ba.get("OrderID"), ba.get("CardRef")
		if err := ba.done(); err != nil {
			return nil, err
		}
		if len(b.ChildElements()) > 0 || !onlySpace(b) {
			return nil, errors.New("BoundTo must be empty")
		}
	}
	if err := c.rest(); err != nil {
		return nil, err
	}
	if r.Version != SAMLVersion {
		return nil, fmt.Errorf("unsupported Version %q", r.Version)
	}
	return r, nil
}

// VerifyAuthenticationResult verifies a signed kecis:AuthenticationResult on
// its own, with its issuer's signing keys, and checks its validity at now
// (with skew). It returns the result decoded from the verified element only.
// el may be standalone or embedded in a verified message; it is not
// modified. (KECIS §3.2)
func VerifyAuthenticationResult(ctx context.Context, el *etree.Element, keys KeyResolver, now time.Time, skew time.Duration) (*AuthenticationResult, *etree.Element, error) {
	top := detach(el)
	parts, err := checkShape(top, kindAuthResult)
	if err != nil {
		return nil, nil, ErrAuthResult.WithCause(AsError(err))
	}
	certs, err := keys.SigningCertificates(ctx, parts.issuer)
	if err != nil {
		return nil, nil, ErrAuthResult.WithCausef("issuer %q: %v", parts.issuer, err)
	}
	verified, _, err := verifySigned(top, parts, certs, now, true)
	if err != nil {
		return nil, nil, ErrAuthResult.WithCause(err)
	}
	r, err := decodeAuthResult(verified)
	if err != nil {
		return nil, nil, ErrAuthResult.WithCause(err)
	}
	if r.IssueInstant.After(now.Add(skew)) {
		return nil, nil, ErrAuthResult.WithCausef("issued in the future")
	}
	if !now.Add(-skew).Before(r.NotOnOrAfter) {
		return nil, nil, ErrAuthResult.WithCausef("expired at %s", r.NotOnOrAfter.Format(TimeLayout))
	}
	return r, verified, nil
}
