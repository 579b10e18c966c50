package saml

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
)

// TimeLayout is the xs:dateTime form KECIS writes: UTC, "Z", millisecond
// precision (SAML core §1.3.3 requires UTC).
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Routing holds public routing hints (KECIS §2.2): never a secret, so that a
// router needs no decryption to route.
type Routing struct {
	CardBIN   string // the first 6 or 8 digits of the card number
	CardLast4 string // the last 4 digits
	BankCode  string // a Korean bank code (3 digits)
}

func (r *Routing) empty() bool {
	return r == nil || (r.CardBIN == "" && r.CardLast4 == "" && r.BankCode == "")
}

// ServiceRequest is kecis:ServiceRequest (KECIS §2.2), a protocol message of
// a type derived from samlp:RequestAbstractType (SAML core §3.2.1).
type ServiceRequest struct {
	ID           string
	Version      string
	IssueInstant time.Time
	Destination  string
	Issuer       string
	// Extensions is an optional samlp:Extensions element, preserved as is.
	Extensions *etree.Element
	Service    string
	// IdempotencyKey is required on every operation that changes state
	// (KECIS §7.1): a retry is a new message with the same key.
	IdempotencyKey string
	// OnBehalfOf names the merchant when the hub builds the request on its
	// JSON facade; accepted only from the hub (KECIS §2.2).
	OnBehalfOf string
	Routing    *Routing
	// AuthResults are embedded, separately signed kecis:AuthenticationResult
	// elements this request relies on (KECIS §3), kept byte-for-byte as the
	// verified tree holds them.
	AuthResults []*etree.Element
	Payload     *ecml.Payload
}

// ServiceResponse is kecis:ServiceResponse (KECIS §2.3), of a type derived
// from samlp:StatusResponseType (SAML core §3.2.2).
type ServiceResponse struct {
	ID           string
	Version      string
	IssueInstant time.Time
	Destination  string
	InResponseTo string
	Issuer       string
	Extensions   *etree.Element
	Status       Status
	AuthResults  []*etree.Element
	Payload      *ecml.Payload
}

// IDSource makes message IDs: "_" and 32 hex digits from 128 random bits
// (SAML core §1.3.4 asks for at least 128 bits). Rand defaults to
// crypto/rand; tests inject a fixed reader.
type IDSource struct{ Rand io.Reader }

// NewID returns a fresh, unguessable xs:ID value.
func (s IDSource) NewID() (string, error) {
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	// Redrawn in the rare case the hex would hold a card-number-like run:
	// message IDs are logged and stored in clear.
	h, err := ecml.RandomHex(r, 16)
	if err != nil {
		return "", fmt.Errorf("kecis: reading randomness for a message ID: %w", err)
	}
	return "_" + h, nil
}

// Builder fills in the envelope fields that every new message needs: a
// fresh ID, the version and the issue instant from an injected clock.
type Builder struct {
	Issuer string
	Now    func() time.Time
	IDs    IDSource
}

func (b *Builder) now() time.Time {
	if b.Now != nil {
		return b.Now().UTC()
	}
	return time.Now().UTC()
}

// NewRequest starts a request from this builder's issuer to destination.
func (b *Builder) NewRequest(destination, service string) (*ServiceRequest, error) {
	id, err := b.IDs.NewID()
	if err != nil {
		return nil, err
	}
	return &ServiceRequest{
		ID: id, Version: SAMLVersion, IssueInstant: b.now(), Destination: destination,
		Issuer: b.Issuer, Service: service,
	}, nil
}

// NewResponse starts a response to req, addressed back to its issuer's
// endpoint destination (which may be empty on the SOAP back channel).
func (b *Builder) NewResponse(inResponseTo, destination string, st Status) (*ServiceResponse, error) {
	id, err := b.IDs.NewID()
	if err != nil {
		return nil, err
	}
	return &ServiceResponse{
		ID: id, Version: SAMLVersion, IssueInstant: b.now(), Destination: destination,
		InResponseTo: inResponseTo, Issuer: b.Issuer, Status: st,
	}, nil
}

func newRoot(local string) *etree.Element {
	root := etree.NewElement(prefixKECIS + ":" + local)
	// The standalone rule (KECIS §2.5): the root declares every namespace
	// the message uses.
	root.CreateAttr("xmlns:"+prefixKECIS, NSKECIS)
	root.CreateAttr("xmlns:"+prefixSAML, NSSAML)
	root.CreateAttr("xmlns:"+prefixSAMLP, NSSAMLP)
	return root
}

func addText(parent *etree.Element, tag, text string) *etree.Element {
	el := parent.CreateElement(tag)
	el.SetText(text)
	return el
}

// Element builds the unsigned XML of the request, children in the order of
// KECIS §2.2. It checks the fields a well-formed request needs.
func (r *ServiceRequest) Element() (*etree.Element, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	root := newRoot(elServiceRequest)
	root.CreateAttr("ID", r.ID)
	root.CreateAttr("Version", r.Version)
	root.CreateAttr("IssueInstant", r.IssueInstant.UTC().Format(TimeLayout))
	root.CreateAttr("Destination", r.Destination)
	addText(root, prefixSAML+":"+elIssuer, r.Issuer)
	if r.Extensions != nil {
		root.AddChild(r.Extensions.Copy())
	}
	addText(root, prefixKECIS+":"+elService, r.Service)
	if r.IdempotencyKey != "" {
		addText(root, prefixKECIS+":"+elIdempotencyKey, r.IdempotencyKey)
	}
	if r.OnBehalfOf != "" {
		addText(root, prefixKECIS+":"+elOnBehalfOf, r.OnBehalfOf)
	}
	if !r.Routing.empty() {
		rt := root.CreateElement(prefixKECIS + ":" + elRouting)
		if r.Routing.CardBIN != "" {
			rt.CreateAttr("CardBIN", r.Routing.CardBIN)
		}
		if r.Routing.CardLast4 != "" {
			rt.CreateAttr("CardLast4", r.Routing.CardLast4)
		}
		if r.Routing.BankCode != "" {
			rt.CreateAttr("BankCode", r.Routing.BankCode)
		}
	}
	for _, ar := range r.AuthResults {
		root.AddChild(ar.Copy())
	}
	if r.Payload != nil {
		p := root.CreateElement(prefixKECIS + ":" + elPayload)
		if err := r.Payload.AppendTo(p); err != nil {
			return nil, fmt.Errorf("kecis: payload: %w", err)
		}
	}
	return root, nil
}

func (r *ServiceRequest) check() error {
	var missing []string
	if r.ID == "" || !validXMLID(r.ID) {
		missing = append(missing, "ID")
	}
	if r.Version == "" {
		missing = append(missing, "Version")
	}
	if r.IssueInstant.IsZero() {
		missing = append(missing, "IssueInstant")
	}
	if r.Destination == "" {
		missing = append(missing, "Destination")
	}
	if r.Issuer == "" {
		missing = append(missing, "Issuer")
	}
	if r.Service == "" {
		missing = append(missing, "Service")
	}
	if r.IdempotencyKey == "" && IsMutation(r.Service) {
		missing = append(missing, "IdempotencyKey (required: "+r.Service+" changes state)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("kecis: request lacks %s", strings.Join(missing, ", "))
	}
	if n := len(r.IdempotencyKey); n > 255 {
		return fmt.Errorf("kecis: idempotency key is %d characters; at most 255", n)
	}
	return nil
}

// Element builds the unsigned XML of the response (KECIS §2.3).
func (r *ServiceResponse) Element() (*etree.Element, error) {
	var missing []string
	if r.ID == "" || !validXMLID(r.ID) {
		missing = append(missing, "ID")
	}
	if r.InResponseTo == "" {
		missing = append(missing, "InResponseTo")
	}
	if r.Issuer == "" {
		missing = append(missing, "Issuer")
	}
	if !validTopLevel(r.Status.Code) {
		missing = append(missing, "Status (a top-level SAML code)")
	}
	if r.IssueInstant.IsZero() {
		missing = append(missing, "IssueInstant")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kecis: response lacks %s", strings.Join(missing, ", "))
	}
	root := newRoot(elServiceResponse)
	root.CreateAttr("ID", r.ID)
	root.CreateAttr("InResponseTo", r.InResponseTo)
	root.CreateAttr("Version", r.Version)
	root.CreateAttr("IssueInstant", r.IssueInstant.UTC().Format(TimeLayout))
	if r.Destination != "" {
		root.CreateAttr("Destination", r.Destination)
	}
	addText(root, prefixSAML+":"+elIssuer, r.Issuer)
	if r.Extensions != nil {
		root.AddChild(r.Extensions.Copy())
	}
	st := root.CreateElement(prefixSAMLP + ":" + elStatus)
	code := st.CreateElement(prefixSAMLP + ":" + elStatusCode)
	code.CreateAttr("Value", r.Status.Code)
	if r.Status.SubCode != "" {
		code.CreateElement(prefixSAMLP+":"+elStatusCode).CreateAttr("Value", r.Status.SubCode)
	}
	if r.Status.Message != "" {
		addText(st, prefixSAMLP+":"+elStatusMessage, r.Status.Message)
	}
	for _, ar := range r.AuthResults {
		root.AddChild(ar.Copy())
	}
	if r.Payload != nil {
		p := root.CreateElement(prefixKECIS + ":" + elPayload)
		if err := r.Payload.AppendTo(p); err != nil {
			return nil, fmt.Errorf("kecis: payload: %w", err)
		}
	}
	return root, nil
}

// validXMLID reports whether s can be an xs:ID that a same-document
// reference "#s" names (the form goxmldsig and xmlsec1 both resolve).
func validXMLID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case i > 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')):
		default:
			return false
		}
	}
	return true
}
