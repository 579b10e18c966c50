package saml

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
)

// ParseTime reads an xs:dateTime in UTC ("Z"), as SAML core §1.3.3 requires.
func ParseTime(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, fmt.Errorf("time %q is not UTC (Z)", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not an xs:dateTime", s)
	}
	return t.UTC(), nil
}

// attrReader reads the attributes of one element strictly: each known
// attribute once, and anything else (but namespace declarations) refused.
type attrReader struct {
	el   *etree.Element
	used map[string]bool
}

func attrs(el *etree.Element) *attrReader { return &attrReader{el: el, used: map[string]bool{}} }

func (r *attrReader) get(name string) string {
	r.used[name] = true
	return r.el.SelectAttrValue(name, "")
}

func (r *attrReader) done() error {
	for _, a := range r.el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		if a.Space != "" || !r.used[a.Key] {
			return fmt.Errorf("unexpected attribute %s on %s", a.FullKey(), r.el.Tag)
		}
	}
	return nil
}

// childCursor walks an element's children in the order the profile fixes.
type childCursor struct {
	top  *etree.Element
	kids []*etree.Element
	i    int
}

func (c *childCursor) peek(ns, local string) *etree.Element {
	if c.i < len(c.kids) && is(c.kids[c.i], c.top, ns, local) {
		return c.kids[c.i]
	}
	return nil
}

func (c *childCursor) take(ns, local string) *etree.Element {
	if el := c.peek(ns, local); el != nil {
		c.i++
		return el
	}
	return nil
}

func (c *childCursor) rest() error {
	if c.i < len(c.kids) {
		return fmt.Errorf("unexpected element %s", c.kids[c.i].FullTag())
	}
	return nil
}

func textChild(el *etree.Element, what string) (string, error) {
	if el == nil {
		return "", nil
	}
	if err := attrs(el).done(); err != nil {
		return "", err
	}
	s, err := textOnly(el)
	if err != nil {
		return "", err
	}
	if s != strings.TrimSpace(s) || s == "" {
		return "", fmt.Errorf("%s is empty or has surrounding white space", what)
	}
	return s, nil
}

// decodeRequest reads the verified element into a ServiceRequest, with the
// children in the order of KECIS §2.2. The signature is already gone
// (removed by the enveloped-signature transform). The payload is read later,
// after decryption (payloadStage), so that an encrypted element standing
// where it should not meets the decryption refusal like every other
// encryption fault.
func decodeRequest(root *etree.Element) (*ServiceRequest, error) {
	r := &ServiceRequest{}
	a := attrs(root)
	r.ID, r.Version, r.Destination = a.get("ID"), a.get("Version"), a.get("Destination")
	ii := a.get("IssueInstant")
	a.get("Consent")
	if err := a.done(); err != nil {
		return nil, err
	}
	var err error
	if r.IssueInstant, err = ParseTime(ii); err != nil {
		return nil, err
	}
	if r.Destination == "" {
		return nil, fmt.Errorf("the Destination attribute is required")
	}
	c := &childCursor{top: root, kids: root.ChildElements()}
	if r.Issuer, err = decodeIssuer(c.take(NSSAML, elIssuer)); err != nil {
		return nil, err
	}
	if ext := c.take(NSSAMLP, elExtensions); ext != nil {
		r.Extensions = ext.Copy()
	}
	if r.Service, err = textChild(c.take(NSKECIS, elService), "Service"); err != nil {
		return nil, err
	}
	if _, _, ok := SplitService(r.Service); !ok {
		return nil, fmt.Errorf("kecis:Service %q is not a KECIS service URI", r.Service)
	}
	if r.IdempotencyKey, err = textChild(c.take(NSKECIS, elIdempotencyKey), "IdempotencyKey"); err != nil {
		return nil, err
	}
	if n := len(r.IdempotencyKey); n > 255 {
		return nil, fmt.Errorf("IdempotencyKey has %d characters; at most 255", n)
	}
	if r.IdempotencyKey == "" && IsMutation(r.Service) {
		return nil, fmt.Errorf("IdempotencyKey is required for %s", r.Service)
	}
	if r.OnBehalfOf, err = textChild(c.take(NSKECIS, elOnBehalfOf), "OnBehalfOf"); err != nil {
		return nil, err
	}
	if rt := c.take(NSKECIS, elRouting); rt != nil {
		if r.Routing, err = decodeRouting(rt); err != nil {
			return nil, err
		}
	}
	for ar := c.take(NSKECIS, elAuthenticationResult); ar != nil; ar = c.take(NSKECIS, elAuthenticationResult) {
		r.AuthResults = append(r.AuthResults, ar)
	}
	if p := c.take(NSKECIS, elPayload); p != nil {
		if err := attrs(p).done(); err != nil {
			return nil, err
		}
	}
	if err := c.rest(); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeIssuer(el *etree.Element) (string, error) {
	if el == nil {
		return "", fmt.Errorf("saml:Issuer is required")
	}
	a := attrs(el)
	if f := a.get("Format"); f != "" && f != "urn:oasis:names:tc:SAML:2.0:nameid-format:entity" {
		return "", fmt.Errorf("saml:Issuer Format %q; KECIS issuers are entity IDs", f)
	}
	if err := a.done(); err != nil {
		return "", err
	}
	s, err := textOnly(el)
	if err != nil || s == "" || s != strings.TrimSpace(s) {
		return "", fmt.Errorf("saml:Issuer must be a bare entity ID")
	}
	return s, nil
}

func decodeRouting(el *etree.Element) (*Routing, error) {
	a := attrs(el)
	r := &Routing{CardBIN: a.get("CardBIN"), CardLast4: a.get("CardLast4"), BankCode: a.get("BankCode")}
	if err := a.done(); err != nil {
		return nil, err
	}
	if len(el.ChildElements()) > 0 || !onlySpace(el) {
		return nil, fmt.Errorf("Routing must be empty")
	}
	if r.CardBIN != "" && !(ecml.AllDigits(r.CardBIN) && (len(r.CardBIN) == 6 || len(r.CardBIN) == 8)) {
		return nil, fmt.Errorf("Routing CardBIN must be 6 or 8 digits")
	}
	if r.CardLast4 != "" && !(ecml.AllDigits(r.CardLast4) && len(r.CardLast4) == 4) {
		return nil, fmt.Errorf("Routing CardLast4 must be 4 digits")
	}
	if r.BankCode != "" && !(ecml.AllDigits(r.BankCode) && len(r.BankCode) == 3) {
		return nil, fmt.Errorf("Routing BankCode must be 3 digits")
	}
	return r, nil
}

func decodePayload(el *etree.Element) (*ecml.Payload, error) {
	if err := attrs(el).done(); err != nil {
		return nil, err
	}
	p, err := ecml.ParsePayload(el)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return p, nil
}

// decodeResponse reads the verified element into a ServiceResponse (KECIS §2.3).
func decodeResponse(root *etree.Element) (*ServiceResponse, error) {
	r := &ServiceResponse{}
	a := attrs(root)
	r.ID, r.Version, r.Destination, r.InResponseTo = a.get("ID"), a.get("Version"), a.get("Destination"), a.get("InResponseTo")
	ii := a.get("IssueInstant")
	a.get("Consent")
	if err := a.done(); err != nil {
		return nil, err
	}
	var err error
	if r.IssueInstant, err = ParseTime(ii); err != nil {
		return nil, err
	}
	if r.InResponseTo == "" {
		return nil, fmt.Errorf("InResponseTo is required")
	}
	c := &childCursor{top: root, kids: root.ChildElements()}
	if r.Issuer, err = decodeIssuer(c.take(NSSAML, elIssuer)); err != nil {
		return nil, err
	}
	if ext := c.take(NSSAMLP, elExtensions); ext != nil {
		r.Extensions = ext.Copy()
	}
	st := c.take(NSSAMLP, elStatus)
	if st == nil {
		return nil, fmt.Errorf("samlp:Status is required")
	}
	if r.Status, err = decodeStatus(st, root); err != nil {
		return nil, err
	}
	for ar := c.take(NSKECIS, elAuthenticationResult); ar != nil; ar = c.take(NSKECIS, elAuthenticationResult) {
		r.AuthResults = append(r.AuthResults, ar)
	}
	if p := c.take(NSKECIS, elPayload); p != nil {
		if err := attrs(p).done(); err != nil {
			return nil, err
		}
	}
	if err := c.rest(); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeStatus(st, top *etree.Element) (Status, error) {
	var s Status
	if err := attrs(st).done(); err != nil {
		return s, err
	}
	c := &childCursor{top: top, kids: st.ChildElements()}
	code := c.take(NSSAMLP, elStatusCode)
	if code == nil {
		return s, fmt.Errorf("StatusCode is required")
	}
	a := attrs(code)
	s.Code = a.get("Value")
	if err := a.done(); err != nil {
		return s, err
	}
	if !validTopLevel(s.Code) {
		return s, fmt.Errorf("top-level status %q is not one KECIS uses", s.Code)
	}
	cc := &childCursor{top: top, kids: code.ChildElements()}
	if sub := cc.take(NSSAMLP, elStatusCode); sub != nil {
		a := attrs(sub)
		s.SubCode = a.get("Value")
		if err := a.done(); err != nil {
			return s, err
		}
		if s.SubCode == "" || len(sub.ChildElements()) > 0 {
			return s, fmt.Errorf("second-level StatusCode must have a Value and no children")
		}
	}
	if err := cc.rest(); err != nil {
		return s, err
	}
	if m := c.take(NSSAMLP, elStatusMessage); m != nil {
		if err := attrs(m).done(); err != nil {
			return s, err
		}
		msg, err := textOnly(m)
		if err != nil {
			return s, err
		}
		s.Message = msg
	}
	if d := c.take(NSSAMLP, "StatusDetail"); d != nil {
		// StatusDetail may carry anything (SAML core §3.2.2.4); KECIS puts
		// nothing there and reads nothing from it.
		_ = d
	}
	return s, c.rest()
}
