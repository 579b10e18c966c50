package saml

import (
	"crypto/x509"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// staticCerts adapts a certificate list to goxmldsig's store.
type staticCerts []*x509.Certificate

func (s staticCerts) Certificates() ([]*x509.Certificate, error) { return s, nil }

// verifySigned is step 5 of the receive pipeline (KECIS §5.1): the signature
// of a shape-checked element is verified against the issuer's signing
// certificates from metadata. The certificate in KeyInfo only selects among
// them (several are trusted during a key rollover); it is never trusted on
// its own. On success it returns the element goxmldsig re-parsed from the
// verified canonical bytes, without the signature: from here on the pipeline
// uses only that element (KECIS §5.2).
//
// el is the signed element inside tree; tree is not modified.
func verifySigned(el *etree.Element, p *signedParts, trusted []*x509.Certificate, now time.Time) (*etree.Element, *x509.Certificate, error) {
	cert, err := x509.ParseCertificate(p.certDER)
	if err != nil {
		return nil, nil, ErrSignature.WithCausef("KeyInfo certificate: %v", err)
	}
	var match *x509.Certificate
	for _, t := range trusted {
		if t.Equal(cert) {
			match = t
			break
		}
	}
	if match == nil {
		return nil, nil, ErrSignature.WithCausef("KeyInfo certificate %s is not one of the issuer's %d signing certificates", fingerprint(cert), len(trusted))
	}
	alg, err := signatureAlgorithmFor(match.PublicKey)
	if err != nil {
		return nil, nil, ErrAlgorithm.WithCause(err)
	}
	if alg != p.method {
		return nil, nil, ErrAlgorithm.WithCausef("signature method %s does not fit the %s key", p.method, alg)
	}
	// Verify a detached copy: the element must mean the same on its own
	// (standalone rule), and the ECDSA bridge rewrites the copy only.
	work := detach(el)
	if p.method == AlgECDSASHA256 {
		sig := work.ChildElements()[1]
		if err := rewriteSignatureValue(sig, rawToDERP256); err != nil {
			return nil, nil, ErrSignature.WithCause(err)
		}
	}
	ctx := dsig.NewDefaultValidationContext(staticCerts{match})
	ctx.Clock = dsig.NewFakeClockAt(now)
	verified, err := ctx.Validate(work)
	if err != nil {
		return nil, nil, ErrSignature.WithCause(err)
	}
	return verified, match, nil
}

// detach returns a copy of el that carries, on itself, every namespace
// declaration it inherits from its ancestors. Exclusive c14n gives the same
// bytes for both, so a signature verifies the same on the copy.
func detach(el *etree.Element) *etree.Element {
	c := el.Copy()
	declared := map[string]bool{}
	for _, a := range c.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			switch {
			case a.Space == "xmlns" && !declared[a.Key]:
				declared[a.Key] = true
				c.CreateAttr("xmlns:"+a.Key, a.Value)
			case a.Space == "" && a.Key == "xmlns" && !declared[""]:
				declared[""] = true
				c.CreateAttr("xmlns", a.Value)
			}
		}
	}
	return c
}

// detachMinimal returns a copy of el that declares, on itself, the
// namespaces that it or its descendants use and inherit from ancestors —
// and no others. It is how an element is serialised on its own (the
// plaintext of an encrypted element).
func detachMinimal(el *etree.Element) *etree.Element {
	c := el.Copy()
	used := map[string]bool{}
	walkAll(c, func(e *etree.Element) {
		used[e.Space] = true
		for _, a := range e.Attr {
			if a.Space != "" && a.Space != "xmlns" {
				used[a.Space] = true
			}
		}
	})
	for prefix := range used {
		if prefix == "xml" {
			continue
		}
		if _, ok := resolveNS(c, c, prefix); ok && declaredInside(c, prefix) {
			continue
		}
		if ns, ok := resolveNS(el, topOf(el), prefix); ok && ns != "" {
			if prefix == "" {
				c.CreateAttr("xmlns", ns)
			} else {
				c.CreateAttr("xmlns:"+prefix, ns)
			}
		}
	}
	return c
}

// declaredInside reports whether every use of prefix inside c resolves
// without c's ancestors (conservatively: c itself declares it).
func declaredInside(c *etree.Element, prefix string) bool {
	for _, a := range c.Attr {
		if (prefix == "" && a.Space == "" && a.Key == "xmlns") || (a.Space == "xmlns" && a.Key == prefix) {
			return true
		}
	}
	return false
}

func topOf(el *etree.Element) *etree.Element {
	for el.Parent() != nil && el.Parent().Tag != "" {
		el = el.Parent()
	}
	return el
}
