package saml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"math/big"
	"time"

	"github.com/beevik/etree"
)

// verifySigned is step 5 of the receive pipeline (KECIS §5.1): the signature
// of a shape-checked element is verified against the issuer's signing
// certificates from metadata. The certificate in KeyInfo only selects among
// them (several are trusted during a key rollover); it is never trusted on
// its own.
//
// The digest is computed over the exclusive canonical form of the very tree
// that the rest of the pipeline reads (KECIS §5.2, §9.5): the parse that
// verifies is the parse that is consumed, and everything canonicalization
// would drop without a trace (comments, processing instructions, DOCTYPE
// and entities, duplicate attributes) has been refused in step 3. On
// success it returns the signed element without its signature: el itself
// when inPlace (the pipeline owns the tree), else a detached copy.
func verifySigned(el *etree.Element, p *signedParts, trusted []*x509.Certificate, now time.Time, inPlace bool) (*etree.Element, *x509.Certificate, error) {
	match, err := trustedSigningCert(p.certDER, trusted)
	if err != nil {
		return nil, nil, err
	}
	if now.Before(match.NotBefore) || now.After(match.NotAfter) {
		return nil, nil, ErrSignature.WithCausef("signing certificate %s is not valid at %s", Fingerprint(match), now.Format(time.RFC3339))
	}
	alg, err := signatureAlgorithmFor(match.PublicKey)
	if err != nil {
		return nil, nil, ErrAlgorithm.WithCause(err)
	}
	if alg != p.method {
		return nil, nil, ErrAlgorithm.WithCausef("signature method %s does not fit the %s key", p.method, alg)
	}
	digest := digestExclusive(el, p.signature)
	if subtle.ConstantTimeCompare(digest[:], p.digest) != 1 {
		return nil, nil, ErrSignature.WithCausef("reference digest does not match")
	}
	siHash := digestExclusive(p.signedInfo, nil)
	if err := checkSignatureValue(match.PublicKey, siHash[:], p.sigValue); err != nil {
		return nil, nil, ErrSignature.WithCause(err)
	}
	if inPlace {
		el.RemoveChild(p.signature)
		return el, match, nil
	}
	c := detach(el)
	for _, k := range c.ChildElements() {
		if k.Tag == elSignature && k.Index() == p.signature.Index() {
			c.RemoveChild(k)
			break
		}
	}
	return c, match, nil
}

// trustedSigningCert returns the trusted certificate whose DER encoding is
// der, the KeyInfo certificate — byte for byte, which is what
// x509.Certificate.Equal compares, so that the certificate of every
// message need not be parsed: the trusted ones were parsed from metadata.
// A certificate that is none of them is parsed only to name it in the
// error.
func trustedSigningCert(der []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	for _, t := range trusted {
		if len(der) > 0 && bytes.Equal(t.Raw, der) {
			return t, nil
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, ErrSignature.WithCausef("KeyInfo certificate: %v", err)
	}
	return nil, ErrSignature.WithCausef("KeyInfo certificate %s is not one of the issuer's %d signing certificates", Fingerprint(cert), len(trusted))
}

// checkSignatureValue verifies an rsa-sha256 (PKCS #1 v1.5) or ecdsa-sha256
// (raw r‖s, XMLDSig 1.1 §6.4.3) signature over a SHA-256 hash.
func checkSignatureValue(pub crypto.PublicKey, hash, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, hash, sig)
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return errors.New("ECDSA SignatureValue is not the 64-octet r||s form")
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, hash, r, s) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return errors.New("unsupported key")
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

// staticCerts adapts a certificate list to goxmldsig's certificate store
// (tests compare our verifier with goxmldsig's).
type staticCerts []*x509.Certificate

func (s staticCerts) Certificates() ([]*x509.Certificate, error) { return s, nil }
