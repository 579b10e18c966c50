package saml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/beevik/etree"
)

// Signer signs KECIS messages with one key and its certificate (KECIS §4).
// Key is any crypto.Signer, so keys held in an HSM or a cloud KMS work.
type Signer struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	alg  string
}

// NewSigner checks that key matches cert and is allowed by the signature
// profile: RSA of at least 2048 bits (rsa-sha256) or ECDSA P-256
// (ecdsa-sha256).
func NewSigner(key crypto.Signer, cert *x509.Certificate) (*Signer, error) {
	if key == nil || cert == nil {
		return nil, errors.New("kecis: signer needs a key and a certificate")
	}
	alg, err := signatureAlgorithmFor(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("kecis: the signing key does not match the certificate")
	}
	return &Signer{Key: key, Cert: cert, alg: alg}, nil
}

// Algorithm returns the SignatureMethod URI this signer writes.
func (s *Signer) Algorithm() string { return s.alg }

// signatureAlgorithmFor returns the profile's SignatureMethod for a public
// key, or an error for a key the profile does not allow.
func signatureAlgorithmFor(pub any) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSASigningBits || n > maxRSASigningBits {
			return "", fmt.Errorf("kecis: RSA key of %d bits; the profile allows %d to %d", n, minRSASigningBits, maxRSASigningBits)
		}
		return AlgRSASHA256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("kecis: ECDSA key on %s; the profile allows P-256 only", k.Curve.Params().Name)
		}
		return AlgECDSASHA256, nil
	}
	return "", fmt.Errorf("kecis: %T keys cannot sign KECIS messages", pub)
}

func publicKeysEqual(a, b any) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// Sign adds the enveloped signature of KECIS §4 to root, in place: exclusive
// c14n, one reference to the root's ID, SHA-256, KeyInfo carrying the
// certificate, placed right after saml:Issuer. root must be the document's
// root (or an element that declares every namespace it uses, KECIS §2.5).
// The rest of root is left exactly as it was.
func (s *Signer) Sign(root *etree.Element) error {
	id := root.SelectAttrValue("ID", "")
	if !validXMLID(id) {
		return errors.New("kecis: the element to sign needs a valid ID attribute")
	}
	for _, c := range root.ChildElements() {
		if c.Tag == elSignature {
			return errors.New("kecis: the element is already signed")
		}
	}
	digest := digestExclusive(root, nil)

	sig := etree.NewElement(prefixDSig + ":" + elSignature)
	sig.CreateAttr("xmlns:"+prefixDSig, NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", s.alg)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	tr := ref.CreateElement("ds:Transforms")
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", AlgEnveloped)
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", AlgExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", AlgSHA256)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest[:]))
	insertAfterIssuer(root, sig)

	siHash := digestExclusive(si, nil)
	raw, err := s.Key.Sign(rand.Reader, siHash[:], crypto.SHA256)
	if err != nil {
		root.RemoveChild(sig)
		return fmt.Errorf("kecis: signing: %w", err)
	}
	if s.alg == AlgECDSASHA256 {
		// A crypto.Signer returns the ASN.1 DER form of (r, s); XML
		// Signature 1.1 §6.4.3 requires the raw r‖s octets that xmlsec1 and
		// Santuario read.
		if raw, err = derToRawP256(raw); err != nil {
			root.RemoveChild(sig)
			return err
		}
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(raw))
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(s.Cert.Raw))
	captureSigned(root) // the test hook of scripts/test.sh; nothing in other builds (capture.go)
	return nil
}

// insertAfterIssuer places sig as the child right after the first element
// child (saml:Issuer), where the profile puts it (SAML core §3.2.1 order).
func insertAfterIssuer(root, sig *etree.Element) {
	for i, t := range root.Child {
		if el, ok := t.(*etree.Element); ok && el.Tag == elIssuer {
			root.InsertChildAt(i+1, sig)
			return
		}
	}
	root.InsertChildAt(0, sig)
}

// SignToBytes signs root and serialises the standalone document: UTF-8,
// no XML declaration, no comments or processing instructions (KECIS §2.5).
func (s *Signer) SignToBytes(root *etree.Element) ([]byte, error) {
	if err := s.Sign(root); err != nil {
		return nil, err
	}
	return Serialize(root)
}

// Serialize writes root as a standalone KECIS document.
func Serialize(root *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(root)
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type ecdsaSig struct{ R, S *big.Int }

// derToRawP256 converts an ASN.1 ECDSA-Sig-Value into the 64-octet r‖s form.
func derToRawP256(der []byte) ([]byte, error) {
	var v ecdsaSig
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return nil, errors.New("kecis: malformed ECDSA signature")
	}
	if v.R.BitLen() > 256 || v.S.BitLen() > 256 {
		return nil, errors.New("kecis: ECDSA signature too large for P-256")
	}
	out := make([]byte, 64)
	v.R.FillBytes(out[:32])
	v.S.FillBytes(out[32:])
	return out, nil
}

func stripSpace(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}
