package saml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
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
// root and declare every namespace it uses (KECIS §2.5).
func (s *Signer) Sign(root *etree.Element) error {
	id := root.SelectAttrValue("ID", "")
	if !validXMLID(id) {
		return errors.New("kecis: the element to sign needs a valid ID attribute")
	}
	if root.SelectElement(prefixDSig+":"+elSignature) != nil {
		return errors.New("kecis: the element is already signed")
	}
	ctx, err := dsig.NewSigningContext(s.Key, [][]byte{s.Cert.Raw})
	if err != nil {
		return err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	ctx.Prefix = prefixDSig
	if err := ctx.SetSignatureMethod(s.alg); err != nil {
		return err
	}
	sig, err := ctx.ConstructSignature(root, true)
	if err != nil {
		return fmt.Errorf("kecis: signing: %w", err)
	}
	if s.alg == AlgECDSASHA256 {
		// goxmldsig writes the ASN.1 DER form of (r, s); XML Signature 1.1
		// §6.4.3 requires the raw r‖s octets that xmlsec1 and Santuario read.
		if err := rewriteSignatureValue(sig, derToRawP256); err != nil {
			return err
		}
	}
	insertAfterIssuer(root, sig)
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

func rewriteSignatureValue(sig *etree.Element, conv func([]byte) ([]byte, error)) error {
	var sv *etree.Element
	for _, c := range sig.ChildElements() {
		if c.Tag == "SignatureValue" {
			sv = c
		}
	}
	if sv == nil {
		return errors.New("kecis: signature has no SignatureValue")
	}
	raw, err := base64.StdEncoding.DecodeString(stripSpace(sv.Text()))
	if err != nil {
		return err
	}
	out, err := conv(raw)
	if err != nil {
		return err
	}
	sv.SetText(base64.StdEncoding.EncodeToString(out))
	return nil
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

// rawToDERP256 converts the XML Signature 1.1 r‖s form into ASN.1 DER for
// Go's verifier. Only the exact 64-octet P-256 form is accepted.
func rawToDERP256(raw []byte) ([]byte, error) {
	if len(raw) != 64 {
		return nil, errors.New("kecis: ECDSA SignatureValue is not the 64-octet r||s form")
	}
	return asn1.Marshal(ecdsaSig{R: new(big.Int).SetBytes(raw[:32]), S: new(big.Int).SetBytes(raw[32:])})
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
