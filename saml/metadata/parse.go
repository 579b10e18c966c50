package metadata

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Size caps of the documents this package reads.
const (
	// MaxEntityBytes caps one md:EntityDescriptor (an issuer with hundreds
	// of BIN ranges and a dozen certificates stays far below it).
	MaxEntityBytes = 1 << 20
	// MaxAggregateBytes caps an md:EntitiesDescriptor aggregate (1,000
	// participants take about 7 MB).
	MaxAggregateBytes = 256 << 20
)

// ParseError is a refusal of the strict parser, with the path of the node
// that was refused, e.g.
// /md:EntityDescriptor/md:RoleDescriptor/kecis:Endpoint[3]/@Prio.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string { return "metadata: " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrSigned is the reason FromElement refuses a descriptor that still
// carries a signature: a signed document is read with VerifyEntity or
// VerifyAggregate, never without its signature being checked.
var ErrSigned = errors.New("the descriptor is signed: verify it (VerifyEntity, VerifyAggregate) instead of parsing it")

// Parse reads one md:EntityDescriptor document strictly (see FromElement),
// after the size cap, the refusal of any DOCTYPE, comments and processing
// instructions, and a depth cap (saml.ParseDocument).
func Parse(data []byte) (*EntityDescriptor, error) {
	root, err := parseDocument(data, MaxEntityBytes)
	if err != nil {
		return nil, err
	}
	return FromElement(root)
}

func parseDocument(data []byte, maxBytes int) (*etree.Element, error) {
	root, err := saml.ParseDocument(data, saml.Limits{MaxBytes: maxBytes})
	if err != nil {
		return nil, documentError(err)
	}
	return root, nil
}

// documentError keeps the private cause of a saml refusal: a metadata
// reader is the operator, not an attacker probing a message endpoint.
func documentError(err error) error {
	var se *saml.Error
	if errors.As(err, &se) && se.Cause() != nil {
		return fmt.Errorf("metadata: %s: %w", se.Cause(), err)
	}
	return fmt.Errorf("metadata: %w", err)
}

// FromElement reads an md:EntityDescriptor element strictly: exactly the
// content this package writes (ToElement), in schema order, and nothing
// else — any other element or attribute, in any namespace (an
// md:SPSSODescriptor, a second role descriptor, md:AdditionalMetadataLocation,
// a foreign attribute, text where none belongs) is refused with its path.
// A ds:Signature is refused too (ErrSigned). White space between elements
// is ignored. el may be a document root or a child of an
// md:EntitiesDescriptor.
func FromElement(el *etree.Element) (*EntityDescriptor, error) {
	p := &parser{}
	ed, err := p.entity(el)
	if err != nil {
		return nil, err
	}
	if err := ed.Validate(); err != nil {
		return nil, p.fail(el, err)
	}
	return ed, nil
}

type parser struct{ err error }

func (p *parser) fail(el *etree.Element, err error) error {
	pe := &ParseError{Path: pathOf(el), Err: err}
	if p.err == nil {
		p.err = pe
	}
	return pe
}

func (p *parser) failAttr(el *etree.Element, a etree.Attr, err error) error {
	pe := &ParseError{Path: pathOf(el) + "/@" + a.FullKey(), Err: err}
	if p.err == nil {
		p.err = pe
	}
	return pe
}

// is reports whether el is {ns}local.
func (p *parser) is(el *etree.Element, ns, local string) bool {
	if el.Tag != local {
		return false
	}
	got, ok := lookupPrefix(el, el.Space)
	return ok && got == ns
}

func (p *parser) name(el *etree.Element) string {
	ns, _ := lookupPrefix(el, el.Space)
	return "{" + ns + "}" + el.Tag
}

// children returns el's child elements, refusing text other than white
// space and every other kind of token.
func (p *parser) children(el *etree.Element) []*etree.Element {
	out := make([]*etree.Element, 0, len(el.Child))
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			out = append(out, t)
		case *etree.CharData:
			if !t.IsWhitespace() {
				p.fail(el, errors.New("text is not allowed here"))
			}
		default:
			p.fail(el, fmt.Errorf("%T is not allowed", t))
		}
	}
	return out
}

// text returns the text of a leaf element.
func (p *parser) text(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			return "", p.fail(el, errors.New("text only: no child elements"))
		}
		b.WriteString(cd.Data)
	}
	return b.String(), nil
}

// empty refuses any content in el.
func (p *parser) empty(el *etree.Element) error {
	for _, k := range p.children(el) {
		return p.fail(k, errors.New("no child elements are allowed here"))
	}
	return p.err
}

func (p *parser) noAttrs(el *etree.Element) error { return p.attrs(el).done() }

type attrReader struct {
	p    *parser
	el   *etree.Element
	used []bool
}

func (p *parser) attrs(el *etree.Element) *attrReader {
	return &attrReader{p: p, el: el, used: make([]bool, len(el.Attr))}
}

// get returns the unprefixed attribute name.
func (r *attrReader) get(name string) (string, bool) {
	for i, a := range r.el.Attr {
		if a.Space == "" && a.Key == name {
			r.used[i] = true
			return a.Value, true
		}
	}
	return "", false
}

func (r *attrReader) require(name string) (string, error) {
	v, ok := r.get(name)
	if !ok {
		return "", r.p.fail(r.el, fmt.Errorf("attribute %s is required", name))
	}
	return v, nil
}

// lang returns xml:lang.
func (r *attrReader) lang() (string, bool) {
	for i, a := range r.el.Attr {
		if a.Space == "xml" && a.Key == "lang" {
			r.used[i] = true
			return a.Value, true
		}
	}
	return "", false
}

// xsiType returns the xsi:type attribute, whatever its prefix.
func (r *attrReader) xsiType() (etree.Attr, bool) {
	for i, a := range r.el.Attr {
		if a.Space != "" && a.Space != "xmlns" && a.Key == "type" {
			if ns, _ := lookupPrefix(r.el, a.Space); ns == NSXSI {
				r.used[i] = true
				return a, true
			}
		}
	}
	return etree.Attr{}, false
}

// done refuses every attribute that was not read, except namespace
// declarations.
func (r *attrReader) done() error {
	for i, a := range r.el.Attr {
		if r.used[i] || a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		return r.p.failAttr(r.el, a, errors.New("attribute not allowed here"))
	}
	return nil
}

func (p *parser) attrErr(el *etree.Element, name string, err error) error {
	return p.failAttr(el, etree.Attr{Key: name}, err)
}

func (p *parser) entity(el *etree.Element) (*EntityDescriptor, error) {
	if !p.is(el, NSMD, "EntityDescriptor") {
		return nil, p.fail(el, fmt.Errorf("%s is not an md:EntityDescriptor", p.name(el)))
	}
	ed := &EntityDescriptor{}
	ar := p.attrs(el)
	var err error
	if ed.EntityID, err = ar.require("entityID"); err != nil {
		return nil, err
	}
	if err := checkEntityID(ed.EntityID); err != nil {
		return nil, p.attrErr(el, "entityID", err)
	}
	if v, ok := ar.get("ID"); ok {
		if !isNCName(v) {
			return nil, p.attrErr(el, "ID", fmt.Errorf("%q is not an xs:ID", v))
		}
		ed.ID = v
	}
	if v, ok := ar.get("validUntil"); ok {
		if ed.ValidUntil, err = saml.ParseTime(v); err != nil {
			return nil, p.attrErr(el, "validUntil", err)
		}
	}
	if v, ok := ar.get("cacheDuration"); ok {
		if ed.CacheDuration, err = ParseDuration(v); err != nil {
			return nil, p.attrErr(el, "cacheDuration", err)
		}
	}
	if err := ar.done(); err != nil {
		return nil, err
	}

	kids := p.children(el)
	if p.err != nil {
		return nil, p.err
	}
	i := 0
	for _, k := range kids {
		if p.is(k, NSDSig, "Signature") {
			return nil, p.fail(k, ErrSigned)
		}
	}
	if i < len(kids) && p.is(kids[i], NSMD, "Extensions") {
		if ed.DisplayName, err = p.extensions(kids[i]); err != nil {
			return nil, err
		}
		i++
	}
	if i >= len(kids) || !p.is(kids[i], NSMD, "RoleDescriptor") {
		at := el
		if i < len(kids) {
			at = kids[i]
		}
		return nil, p.fail(at, errors.New("KECIS metadata has exactly one role descriptor, md:RoleDescriptor xsi:type=\"kecis:ParticipantDescriptorType\", after the optional md:Extensions"))
	}
	if err := p.roleDescriptor(kids[i], ed); err != nil {
		return nil, err
	}
	i++
	if i < len(kids) && p.is(kids[i], NSMD, "Organization") {
		if ed.Organization, err = p.decodeOrganization(kids[i]); err != nil {
			return nil, err
		}
		i++
	}
	for ; i < len(kids) && p.is(kids[i], NSMD, "ContactPerson"); i++ {
		c, err := p.contact(kids[i])
		if err != nil {
			return nil, err
		}
		ed.ContactPersons = append(ed.ContactPersons, c)
	}
	if i < len(kids) {
		k := kids[i]
		switch {
		case p.is(k, NSMD, "RoleDescriptor") || strings.HasSuffix(k.Tag, "Descriptor") && p.is(k, NSMD, k.Tag):
			return nil, p.fail(k, fmt.Errorf("%s: KECIS metadata has exactly one role descriptor, the KECIS one", k.FullTag()))
		default:
			return nil, p.fail(k, fmt.Errorf("%s is not allowed here (after md:RoleDescriptor: md:Organization?, md:ContactPerson*)", p.name(k)))
		}
	}
	return ed, nil
}

func (p *parser) extensions(el *etree.Element) (string, error) {
	if err := p.noAttrs(el); err != nil {
		return "", err
	}
	kids := p.children(el)
	if p.err != nil {
		return "", p.err
	}
	if len(kids) != 1 || !p.is(kids[0], NSKECIS, "ParticipantInfo") {
		at := el
		if len(kids) > 0 {
			at = kids[0]
			if len(kids) > 1 && p.is(kids[0], NSKECIS, "ParticipantInfo") {
				at = kids[1]
			}
		}
		return "", p.fail(at, errors.New("md:Extensions holds exactly one kecis:ParticipantInfo"))
	}
	pi := kids[0]
	ar := p.attrs(pi)
	name, err := ar.require("DisplayName")
	if err != nil {
		return "", err
	}
	if err := ar.done(); err != nil {
		return "", err
	}
	if name == "" {
		return "", p.attrErr(pi, "DisplayName", errors.New("empty"))
	}
	if err := checkString("DisplayName", name); err != nil {
		return "", p.attrErr(pi, "DisplayName", err)
	}
	return name, p.empty(pi)
}

func (p *parser) roleDescriptor(el *etree.Element, ed *EntityDescriptor) error {
	ar := p.attrs(el)
	t, ok := ar.xsiType()
	if !ok {
		return p.fail(el, errors.New("xsi:type=\"kecis:ParticipantDescriptorType\" is required"))
	}
	prefix, local, hasPrefix := strings.Cut(t.Value, ":")
	if !hasPrefix {
		prefix, local = "", t.Value
	}
	if ns, ok := lookupPrefix(el, prefix); !ok || ns != NSKECIS || local != ParticipantDescriptorType {
		return p.failAttr(el, t, fmt.Errorf("%q does not name {%s}%s", t.Value, NSKECIS, ParticipantDescriptorType))
	}
	pse, err := ar.require("protocolSupportEnumeration")
	if err != nil {
		return err
	}
	if pse != ProtocolKECIS {
		return p.attrErr(el, "protocolSupportEnumeration", fmt.Errorf("must be %q", ProtocolKECIS))
	}
	roles, err := ar.require("Roles")
	if err != nil {
		return err
	}
	for _, r := range strings.Fields(roles) {
		ed.Roles = append(ed.Roles, Role(r))
	}
	if err := checkRoles(ed.Roles); err != nil {
		return p.attrErr(el, "Roles", err)
	}
	if err := ar.done(); err != nil {
		return err
	}

	kids := p.children(el)
	if p.err != nil {
		return p.err
	}
	const (
		stKeys = iota
		stTLS
		stEndpoints
		stServices
	)
	stage := stKeys
	for _, k := range kids {
		var st int
		switch {
		case p.is(k, NSMD, "KeyDescriptor"):
			st = stKeys
		case p.is(k, NSKECIS, "TLSKeyDescriptor"):
			st = stTLS
		case p.is(k, NSKECIS, "Endpoint"):
			st = stEndpoints
		case p.is(k, NSKECIS, "OfferedService"):
			st = stServices
		default:
			return p.fail(k, fmt.Errorf("%s is not allowed in the KECIS role descriptor (md:KeyDescriptor*, kecis:TLSKeyDescriptor*, kecis:Endpoint*, kecis:OfferedService*)", p.name(k)))
		}
		if st < stage {
			return p.fail(k, errors.New("out of order (md:KeyDescriptor*, kecis:TLSKeyDescriptor*, kecis:Endpoint*, kecis:OfferedService*)"))
		}
		stage = st
		switch st {
		case stKeys, stTLS:
			kd, err := p.key(k, st == stTLS)
			if err != nil {
				return err
			}
			if st == stTLS {
				ed.TLSKeys = append(ed.TLSKeys, kd)
			} else {
				ed.Keys = append(ed.Keys, kd)
			}
		case stEndpoints:
			e, err := p.endpoint(k)
			if err != nil {
				return err
			}
			ed.Endpoints = append(ed.Endpoints, e)
		case stServices:
			s, err := p.service(k)
			if err != nil {
				return err
			}
			ed.Services = append(ed.Services, s)
		}
	}
	return nil
}

func (p *parser) key(el *etree.Element, tls bool) (KeyDescriptor, error) {
	ar := p.attrs(el)
	use, err := ar.require("use")
	if err != nil {
		return KeyDescriptor{}, err
	}
	if err := ar.done(); err != nil {
		return KeyDescriptor{}, err
	}
	kd := KeyDescriptor{Use: KeyUse(use)}
	kids := p.children(el)
	if p.err != nil {
		return kd, p.err
	}
	if len(kids) != 1 || !p.is(kids[0], NSDSig, "KeyInfo") {
		return kd, p.fail(el, errors.New("exactly one ds:KeyInfo with one ds:X509Data holding one ds:X509Certificate"))
	}
	cert, err := p.keyInfo(kids[0])
	if err != nil {
		return kd, err
	}
	kd.Certificate = cert
	if err := checkKey(kd, tls); err != nil {
		return kd, p.fail(el, err)
	}
	return kd, nil
}

func (p *parser) keyInfo(ki *etree.Element) (*x509.Certificate, error) {
	el := ki
	for _, local := range []string{"X509Data", "X509Certificate"} {
		if err := p.noAttrs(el); err != nil {
			return nil, err
		}
		kids := p.children(el)
		if p.err != nil {
			return nil, p.err
		}
		if len(kids) != 1 || !p.is(kids[0], NSDSig, local) {
			return nil, p.fail(el, fmt.Errorf("exactly one ds:%s is allowed here", local))
		}
		el = kids[0]
	}
	if err := p.noAttrs(el); err != nil {
		return nil, err
	}
	text, err := p.text(el)
	if err != nil {
		return nil, err
	}
	der, err := base64.StdEncoding.DecodeString(stripSpace(text))
	if err != nil {
		return nil, p.fail(el, fmt.Errorf("not base64: %v", err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, p.fail(el, err)
	}
	return cert, nil
}

func (p *parser) endpoint(el *etree.Element) (Endpoint, error) {
	ar := p.attrs(el)
	var e Endpoint
	var err error
	if e.Service, err = ar.require("Service"); err != nil {
		return e, err
	}
	if e.Binding, err = ar.require("Binding"); err != nil {
		return e, err
	}
	if e.Location, err = ar.require("Location"); err != nil {
		return e, err
	}
	if v, ok := ar.get("Priority"); ok {
		if !ecml.AllDigits(v) || (len(v) > 1 && v[0] == '0') || len(v) > 5 {
			return e, p.attrErr(el, "Priority", fmt.Errorf("%q is not a non-negative integer", v))
		}
		e.Priority, _ = strconv.Atoi(v)
	}
	if err := ar.done(); err != nil {
		return e, err
	}
	if err := p.empty(el); err != nil {
		return e, err
	}
	if err := checkEndpoint(e); err != nil {
		return e, p.fail(el, err)
	}
	return e, nil
}

func (p *parser) service(el *etree.Element) (OfferedService, error) {
	ar := p.attrs(el)
	var s OfferedService
	var err error
	if s.Service, err = ar.require("Service"); err != nil {
		return s, err
	}
	if v, ok := ar.get("BINs"); ok {
		if s.BINs, err = ParseBINList(v); err != nil || strings.Contains(v, ",") {
			if err == nil {
				err = errors.New("BINs are separated by white space")
			}
			return s, p.attrErr(el, "BINs", err)
		}
	}
	if v, ok := ar.get("BankCodes"); ok {
		s.BankCodes = strings.Fields(v)
		if len(s.BankCodes) == 0 {
			return s, p.attrErr(el, "BankCodes", errors.New("empty"))
		}
	}
	if v, ok := ar.get("Callers"); ok {
		for _, r := range strings.Fields(v) {
			s.Callers = append(s.Callers, Role(r))
		}
		if len(s.Callers) == 0 {
			return s, p.attrErr(el, "Callers", errors.New("empty"))
		}
	}
	if v, ok := ar.get("CallerEntities"); ok {
		s.CallerEntities = strings.Fields(v)
		if len(s.CallerEntities) == 0 {
			return s, p.attrErr(el, "CallerEntities", errors.New("empty"))
		}
	}
	if err := ar.done(); err != nil {
		return s, err
	}
	kids := p.children(el)
	if p.err != nil {
		return s, p.err
	}
	for _, k := range kids {
		if !p.is(k, NSKECIS, "Limit") {
			return s, p.fail(k, fmt.Errorf("%s is not allowed in kecis:OfferedService (kecis:Limit*)", p.name(k)))
		}
		l, err := p.limit(k)
		if err != nil {
			return s, err
		}
		s.Limits = append(s.Limits, l)
	}
	if err := checkService(&s); err != nil {
		return s, p.fail(el, err)
	}
	return s, nil
}

func (p *parser) limit(el *etree.Element) (Limit, error) {
	ar := p.attrs(el)
	var l Limit
	var err error
	if l.Currency, err = ar.require("Currency"); err != nil {
		return l, err
	}
	if _, ok := ecml.MinorUnits(l.Currency); !ok {
		return l, p.attrErr(el, "Currency", fmt.Errorf("%q is not an ISO 4217 code", l.Currency))
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"Min", &l.Min}, {"Max", &l.Max}} {
		v, err := ar.require(f.name)
		if err != nil {
			return l, err
		}
		m, err := ecml.ParseAmount(v, l.Currency)
		if err != nil {
			return l, p.attrErr(el, f.name, err)
		}
		*f.dst = m.Minor
	}
	if err := ar.done(); err != nil {
		return l, err
	}
	return l, p.empty(el)
}

func (p *parser) contact(el *etree.Element) (ContactPerson, error) {
	ar := p.attrs(el)
	var c ContactPerson
	var err error
	if c.Type, err = ar.require("contactType"); err != nil {
		return c, err
	}
	if err := ar.done(); err != nil {
		return c, err
	}
	kids := p.children(el)
	if p.err != nil {
		return c, p.err
	}
	order := []string{"Company", "GivenName", "SurName", "EmailAddress", "TelephoneNumber"}
	stage := 0
	for _, k := range kids {
		for stage < len(order) && !p.is(k, NSMD, order[stage]) {
			stage++
		}
		if stage == len(order) {
			return c, p.fail(k, errors.New("not allowed here (md:Company?, md:GivenName?, md:SurName?, md:EmailAddress*, md:TelephoneNumber*)"))
		}
		if err := p.noAttrs(k); err != nil {
			return c, err
		}
		v, err := p.text(k)
		if err != nil {
			return c, err
		}
		if v == "" {
			return c, p.fail(k, errors.New("empty"))
		}
		switch order[stage] {
		case "Company", "GivenName", "SurName":
			dst := map[string]*string{"Company": &c.Company, "GivenName": &c.GivenName, "SurName": &c.SurName}[order[stage]]
			*dst = v
			stage++ // at most one
		case "EmailAddress":
			c.EmailAddresses = append(c.EmailAddresses, v)
		case "TelephoneNumber":
			c.TelephoneNumbers = append(c.TelephoneNumbers, v)
		}
	}
	if err := checkContact(c); err != nil {
		return c, p.fail(el, err)
	}
	return c, nil
}

// lookupPrefix resolves a namespace prefix ("" for the default namespace)
// in el's scope.
func lookupPrefix(el *etree.Element, prefix string) (string, bool) {
	if prefix == "xml" {
		return nsXML, true
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, a.Value != ""
			}
		}
	}
	return "", prefix == ""
}

// pathOf returns el's path from its root, with a 1-based index where
// siblings share the name: /md:EntityDescriptor/md:RoleDescriptor/kecis:Endpoint[3].
func pathOf(el *etree.Element) string {
	var parts []string
	for e := el; e != nil && e.Tag != ""; e = e.Parent() {
		seg := e.FullTag()
		if parent := e.Parent(); parent != nil {
			n, idx := 0, 0
			for _, s := range parent.ChildElements() {
				if s.FullTag() == e.FullTag() {
					n++
					if s == e {
						idx = n
					}
				}
			}
			if n > 1 {
				seg += "[" + strconv.Itoa(idx) + "]"
			}
		}
		parts = append(parts, seg)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}
