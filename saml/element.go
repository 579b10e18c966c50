package saml

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/beevik/etree"
)

// VerifyElement verifies a signed element that is not a KECIS message —
// SAML metadata (an md:EntityDescriptor or md:EntitiesDescriptor), an
// evidence record — with the signature profile of KECIS §4: exactly one
// ds:Signature in the whole subtree, a direct child of root, of the exact
// shape of §4.1, referencing root's ID; unique IDs; the signer among
// trusted. root is typically a freshly parsed document root
// (ParseDocument); it is verified and consumed in place: on success the
// signature is removed and root returned, with the certificate that signed.
func VerifyElement(root *etree.Element, trusted []*x509.Certificate, now time.Time) (*etree.Element, *x509.Certificate, error) {
	if err := checkNamespaces(root, root); err != nil {
		return nil, nil, ErrShape.WithCause(err)
	}
	id := root.SelectAttrValue("ID", "")
	if !validXMLID(id) {
		return nil, nil, ErrShape.WithCausef("root ID missing or not an xs:ID")
	}
	var sigs []*etree.Element
	ids := map[string]int{}
	var idErr error
	walkAll(root, func(el *etree.Element) {
		for _, a := range el.Attr {
			if isIDAttr(a) {
				if a.Space != "" {
					idErr = fmt.Errorf("namespaced ID attribute %s", a.FullKey())
				}
				ids[a.Value]++
			}
		}
		if el.Tag == elSignature {
			if ns, _ := elementNS(el, root); ns == NSDSig {
				sigs = append(sigs, el)
			}
		}
	})
	if idErr != nil {
		return nil, nil, ErrShape.WithCause(idErr)
	}
	for v, n := range ids {
		if n > 1 {
			return nil, nil, ErrShape.WithCausef("ID value %q used %d times", v, n)
		}
	}
	if len(sigs) != 1 || sigs[0].Parent() != root {
		return nil, nil, ErrShape.WithCausef("%d signatures; exactly one, a child of the signed element, is allowed", len(sigs))
	}
	p := &signedParts{root: root, id: id, signature: sigs[0]}
	if err := checkSignatureShape(sigs[0], root, id, p); err != nil {
		return nil, nil, err
	}
	return verifySigned(root, p, trusted, now, true)
}
