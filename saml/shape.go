package saml

import (
	"encoding/base64"
	"fmt"

	"github.com/beevik/etree"
)

// signedParts locates, in an unverified tree, what the signature check needs.
type signedParts struct {
	root       *etree.Element
	id         string
	issuer     string
	signature  *etree.Element
	signedInfo *etree.Element
	digest     []byte // DigestValue, decoded
	sigValue   []byte // SignatureValue, decoded
	certDER    []byte
	method     string
}

// messageKind names the root elements the profile knows.
type messageKind int

const (
	kindRequest messageKind = iota + 1
	kindResponse
	kindAuthResult
)

func (k messageKind) local() string {
	switch k {
	case kindRequest:
		return elServiceRequest
	case kindResponse:
		return elServiceResponse
	case kindAuthResult:
		return elAuthenticationResult
	}
	return ""
}

// isIDAttr reports whether an attribute is an identifier an XML processor or
// a signature library might resolve a "#..." reference against.
func isIDAttr(a etree.Attr) bool {
	switch a.Key {
	case "ID", "Id", "id":
		return true
	}
	return false
}

// checkShape is step 4 of the receive pipeline (KECIS §5.1): before any
// cryptography, the tree must have the one shape the profile allows.
//   - the root is the expected KECIS element and declares every namespace it
//     uses;
//   - ID attributes: the root has exactly one, unprefixed "ID"; no namespaced
//     ID attribute anywhere; every SAML ID is unique and no id/Id attribute
//     anywhere repeats the ID of a signed element;
//   - exactly one ds:Signature as the root's second child, right after
//     saml:Issuer; the only other signatures allowed are those of embedded
//     kecis:AuthenticationResult elements, which may stand only as direct
//     children of the root and carry their own, at the same place;
//   - each signature follows the profile exactly (see checkSignatureShape).
//
// It returns the root's signed parts; the embedded results are checked again
// on their own after the message verifies.
func checkShape(root *etree.Element, kind messageKind) (*signedParts, error) {
	if !is(root, root, NSKECIS, kind.local()) {
		return nil, ErrShape.WithCausef("root is %s, want kecis:%s", root.FullTag(), kind.local())
	}
	if err := checkNamespaces(root, root); err != nil {
		return nil, ErrShape.WithCause(err)
	}
	// IDs.
	ids := map[string]int{}
	signedIDs := map[string]bool{}
	var walkErr error
	var walk func(el *etree.Element, depth int)
	walk = func(el *etree.Element, depth int) {
		for _, a := range el.Attr {
			if !isIDAttr(a) {
				continue
			}
			if a.Space != "" {
				walkErr = fmt.Errorf("namespaced ID attribute %s on %s", a.FullKey(), el.Tag)
				return
			}
			ids[a.Value]++
		}
		if depth == 1 && is(el, root, NSKECIS, elAuthenticationResult) {
			signedIDs[el.SelectAttrValue("ID", "")] = true
		}
		for _, c := range el.ChildElements() {
			walk(c, depth+1)
			if walkErr != nil {
				return
			}
		}
	}
	walk(root, 0)
	if walkErr != nil {
		return nil, ErrShape.WithCause(walkErr)
	}
	id := root.SelectAttrValue("ID", "")
	if !validXMLID(id) {
		return nil, ErrShape.WithCausef("root ID missing or not an xs:ID")
	}
	signedIDs[id] = true
	for sid := range signedIDs {
		if sid == "" || ids[sid] != 1 {
			return nil, ErrShape.WithCausef("ID %q of a signed element is missing or not unique", sid)
		}
	}
	for v, n := range ids {
		if n > 1 {
			return nil, ErrShape.WithCausef("ID value %q used %d times", v, n)
		}
	}

	// Signatures: count every ds:Signature in the tree, then check that they
	// stand only where the profile allows.
	allowed := map[*etree.Element]bool{}
	parts, err := signedElementParts(root, root)
	if err != nil {
		return nil, err
	}
	allowed[parts.signature] = true
	for _, c := range root.ChildElements() {
		if is(c, root, NSKECIS, elAuthenticationResult) {
			if kind == kindAuthResult {
				return nil, ErrShape.WithCausef("authentication result nested in an authentication result")
			}
			p, err := signedElementParts(c, root)
			if err != nil {
				return nil, err
			}
			allowed[p.signature] = true
		}
	}
	var stray error
	var find func(el *etree.Element)
	find = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.Tag == elSignature {
				if ns, _ := elementNS(c, root); ns == NSDSig && !allowed[c] {
					stray = fmt.Errorf("signature at %s is not where the profile puts one", c.GetPath())
					return
				}
			}
			if c.Tag == elAuthenticationResult && c.Parent() != root {
				if ns, _ := elementNS(c, root); ns == NSKECIS {
					stray = fmt.Errorf("authentication result at %s is not a child of the root", c.GetPath())
					return
				}
			}
			find(c)
			if stray != nil {
				return
			}
		}
	}
	find(root)
	if stray != nil {
		return nil, ErrShape.WithCause(stray)
	}
	return parts, nil
}

// signedElementParts checks one signed element (the message root or an
// embedded result): saml:Issuer first, ds:Signature second, and the
// signature's own shape.
func signedElementParts(el, top *etree.Element) (*signedParts, error) {
	kids := el.ChildElements()
	if len(kids) < 2 || !is(kids[0], top, NSSAML, elIssuer) {
		return nil, ErrShape.WithCausef("%s: first child must be saml:Issuer", el.Tag)
	}
	if !is(kids[1], top, NSDSig, elSignature) {
		return nil, ErrShape.WithCausef("%s: second child must be ds:Signature (unsigned message?)", el.Tag)
	}
	issuer, err := textOnly(kids[0])
	if err != nil || issuer == "" {
		return nil, ErrShape.WithCausef("%s: empty or structured Issuer", el.Tag)
	}
	for _, a := range kids[0].Attr {
		if a.Space != "xmlns" && !(a.Space == "" && a.Key == "xmlns") && a.Key != "Format" {
			return nil, ErrShape.WithCausef("%s: unexpected attribute %s on Issuer", el.Tag, a.FullKey())
		}
	}
	id := el.SelectAttrValue("ID", "")
	p := &signedParts{root: el, id: id, issuer: issuer, signature: kids[1]}
	if err := checkSignatureShape(kids[1], top, id, p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkSignatureShape enforces the signature profile of KECIS §4.1:
//
//	Signature = SignedInfo SignatureValue KeyInfo
//	SignedInfo = CanonicalizationMethod(exc-c14n) SignatureMethod(rsa-sha256|ecdsa-sha256) Reference
//	Reference URI="#<ID>" = Transforms(enveloped, exc-c14n) DigestMethod(sha256) DigestValue
//	KeyInfo = X509Data = X509Certificate
//
// with no other element or attribute (no ds:Object, no InclusiveNamespaces,
// no XPath or XSLT transform, no second Reference).
func checkSignatureShape(sig, top *etree.Element, id string, p *signedParts) error {
	want := func(el *etree.Element, local string, n int) ([]*etree.Element, error) {
		kids := el.ChildElements()
		if len(kids) != n {
			return nil, ErrShape.WithCausef("%s has %d children, want %d", local, len(kids), n)
		}
		for _, k := range kids {
			if ns, _ := elementNS(k, top); ns != NSDSig {
				return nil, ErrShape.WithCausef("%s holds %s", local, k.FullTag())
			}
		}
		return kids, nil
	}
	onlyAttrs := func(el *etree.Element, names ...string) error {
	next:
		for _, a := range el.Attr {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				continue
			}
			for _, n := range names {
				if a.Space == "" && a.Key == n {
					continue next
				}
			}
			return ErrShape.WithCausef("unexpected attribute %s on ds:%s", a.FullKey(), el.Tag)
		}
		return nil
	}
	algorithm := func(el *etree.Element, tag string) (string, error) {
		if el.Tag != tag {
			return "", ErrShape.WithCausef("found ds:%s where ds:%s belongs", el.Tag, tag)
		}
		if len(el.ChildElements()) != 0 || len(el.Child) > 0 && !onlySpace(el) {
			return "", ErrShape.WithCausef("ds:%s must be empty", tag)
		}
		if err := onlyAttrs(el, "Algorithm"); err != nil {
			return "", err
		}
		return el.SelectAttrValue("Algorithm", ""), nil
	}

	if err := onlyAttrs(sig); err != nil {
		return err
	}
	kids, err := want(sig, "Signature", 3)
	if err != nil {
		return err
	}
	si, sv, ki := kids[0], kids[1], kids[2]
	if si.Tag != "SignedInfo" || sv.Tag != "SignatureValue" || ki.Tag != "KeyInfo" {
		return ErrShape.WithCausef("Signature children are %s, %s, %s", si.Tag, sv.Tag, ki.Tag)
	}
	for _, e := range []*etree.Element{si, sv, ki} {
		if err := onlyAttrs(e); err != nil {
			return err
		}
	}
	siKids, err := want(si, "SignedInfo", 3)
	if err != nil {
		return err
	}
	c14n, err := algorithm(siKids[0], "CanonicalizationMethod")
	if err != nil {
		return err
	}
	if c14n != AlgExcC14N {
		return ErrAlgorithm.WithCausef("canonicalization %q", c14n)
	}
	method, err := algorithm(siKids[1], "SignatureMethod")
	if err != nil {
		return err
	}
	if method != AlgRSASHA256 && method != AlgECDSASHA256 {
		return ErrAlgorithm.WithCausef("signature method %q", method)
	}
	p.method = method
	ref := siKids[2]
	if ref.Tag != "Reference" {
		return ErrShape.WithCausef("SignedInfo's third child is ds:%s", ref.Tag)
	}
	if err := onlyAttrs(ref, "URI"); err != nil {
		return err
	}
	if uri := ref.SelectAttrValue("URI", ""); uri != "#"+id {
		return ErrShape.WithCausef("reference %q does not name the signed element #%s", uri, id)
	}
	refKids, err := want(ref, "Reference", 3)
	if err != nil {
		return err
	}
	if refKids[0].Tag != "Transforms" || refKids[1].Tag != "DigestMethod" || refKids[2].Tag != "DigestValue" {
		return ErrShape.WithCausef("Reference children are not Transforms, DigestMethod, DigestValue")
	}
	if err := onlyAttrs(refKids[0]); err != nil {
		return err
	}
	tr, err := want(refKids[0], "Transforms", 2)
	if err != nil {
		return err
	}
	t1, err := algorithm(tr[0], "Transform")
	if err != nil {
		return err
	}
	t2, err := algorithm(tr[1], "Transform")
	if err != nil {
		return err
	}
	if t1 != AlgEnveloped || t2 != AlgExcC14N {
		return ErrAlgorithm.WithCausef("transforms %q, %q", t1, t2)
	}
	digest, err := algorithm(refKids[1], "DigestMethod")
	if err != nil {
		return err
	}
	if digest != AlgSHA256 {
		return ErrAlgorithm.WithCausef("digest method %q", digest)
	}
	if err := onlyAttrs(refKids[2]); err != nil {
		return err
	}
	dv, err := base64.StdEncoding.DecodeString(stripSpace(refKids[2].Text()))
	if err != nil || len(dv) != 32 || len(refKids[2].ChildElements()) > 0 {
		return ErrShape.WithCausef("DigestValue is not a base64 SHA-256 digest")
	}
	sigv, err := base64.StdEncoding.DecodeString(stripSpace(sv.Text()))
	if err != nil || len(sigv) == 0 || len(sv.ChildElements()) > 0 {
		return ErrShape.WithCausef("SignatureValue is not base64")
	}
	p.signedInfo, p.digest, p.sigValue = si, dv, sigv
	kiKids, err := want(ki, "KeyInfo", 1)
	if err != nil {
		return err
	}
	if kiKids[0].Tag != "X509Data" {
		return ErrShape.WithCausef("KeyInfo holds ds:%s, want ds:X509Data", kiKids[0].Tag)
	}
	xd, err := want(kiKids[0], "X509Data", 1)
	if err != nil {
		return err
	}
	if xd[0].Tag != "X509Certificate" {
		return ErrShape.WithCausef("X509Data holds ds:%s", xd[0].Tag)
	}
	for _, e := range []*etree.Element{kiKids[0], xd[0]} {
		if err := onlyAttrs(e); err != nil {
			return err
		}
	}
	der, err := base64.StdEncoding.DecodeString(stripSpace(xd[0].Text()))
	if err != nil || len(der) == 0 {
		return ErrShape.WithCausef("X509Certificate is not base64")
	}
	p.certDER = der
	return nil
}

func onlySpace(el *etree.Element) bool {
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok || !cd.IsWhitespace() {
			return false
		}
	}
	return true
}
