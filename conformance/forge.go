package conformance

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // forged SHA-1 digests
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/saml"
)

// The attack builders: what the security module sends and no honest
// implementation writes — signatures and ciphertexts outside the profile,
// keys no participant publishes.

// Algorithm identifiers outside the profile (KECIS §4.2, §8.1).
const (
	algAES128CBC  = saml.NSXEnc + "aes128-cbc"
	algAES256CBC  = saml.NSXEnc + "aes256-cbc"
	algTripleDES  = saml.NSXEnc + "tripledes-cbc"
	algRSA15      = saml.NSXEnc + "rsa-1_5"
	algSHA1Digest = "http://www.w3.org/2000/09/xmldsig#sha1"
)

var sha1Hash = crypto.SHA1

// outsider is a key pair no participant publishes: the signing key of an
// attacker, and a TLS client certificate the participant never saw.
type outsider struct {
	signer *saml.Signer
	tls    tls.Certificate
}

var (
	outsiderOnce sync.Once
	outsiderVal  *outsider
	outsiderErr  error
)

// theOutsider makes the outsider's keys once per process (ECDSA P-256:
// fast to generate).
func theOutsider() (*outsider, error) {
	outsiderOnce.Do(func() {
		mk := func(cn string) (crypto.Signer, *x509.Certificate, error) {
			k, err := saml.GenerateKey(saml.KeyECDSA, nil)
			if err != nil {
				return nil, nil, err
			}
			c, err := saml.SelfSignedCertificate(k, cn, time.Now(), 24*time.Hour, nil)
			return k, c, err
		}
		k, c, err := mk("KECIS conformance outsider")
		if err != nil {
			outsiderErr = err
			return
		}
		s, err := saml.NewSigner(k, c)
		if err != nil {
			outsiderErr = err
			return
		}
		tk, tc, err := mk("KECIS conformance outsider TLS client")
		if err != nil {
			outsiderErr = err
			return
		}
		outsiderVal = &outsider{signer: s, tls: tls.Certificate{Certificate: [][]byte{tc.Raw}, PrivateKey: tk, Leaf: tc}}
	})
	return outsiderVal, outsiderErr
}

// forgeOpts describes a signature outside the profile.
type forgeOpts struct {
	digest     string
	digestHash crypto.Hash
	// target is what the reference digests (default: the root).
	target *etree.Element
}

// forgeSign signs root by hand with s's key, as the profile does except
// where o says otherwise, and puts the signature after saml:Issuer.
func forgeSign(root *etree.Element, s *saml.Signer, o forgeOpts) error {
	if o.digest == "" {
		o.digest, o.digestHash = saml.AlgSHA256, crypto.SHA256
	}
	target := o.target
	if target == nil {
		target = root
	}
	h := o.digestHash.New()
	h.Write(saml.CanonicalizeExclusive(target, nil))
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", saml.NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", saml.AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", s.Algorithm())
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+target.SelectAttrValue("ID", ""))
	trs := ref.CreateElement("ds:Transforms")
	trs.CreateElement("ds:Transform").CreateAttr("Algorithm", saml.AlgEnveloped)
	trs.CreateElement("ds:Transform").CreateAttr("Algorithm", saml.AlgExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", o.digest)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	pos := 0
	for i, t := range root.Child {
		if el, ok := t.(*etree.Element); ok && el.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	root.InsertChildAt(pos, sig)
	sum := crypto.SHA256.New()
	sum.Write(saml.CanonicalizeExclusive(si, nil))
	raw, err := s.Key.Sign(rand.Reader, sum.Sum(nil), crypto.SHA256)
	if err != nil {
		return err
	}
	if _, ok := s.Key.Public().(*ecdsa.PublicKey); ok {
		var v struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(raw, &v); err != nil {
			return err
		}
		out := make([]byte, 64)
		v.R.FillBytes(out[:32])
		v.S.FillBytes(out[32:])
		raw = out
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(raw))
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(s.Cert.Raw))
	return nil
}

// legacyEncrypt replaces el by an xenc:EncryptedData made with algorithms
// the profile refuses: content (AES-CBC, 3DES-CBC, or AES-256-GCM) and key
// transport (rsa-1_5 or rsa-oaep-mgf1p) for the recipient's certificate.
func legacyEncrypt(el *etree.Element, recipient string, cert *x509.Certificate, content, transport string) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the participant's encryption key is not RSA")
	}
	plain, err := saml.Serialize(el.Copy())
	if err != nil {
		return err
	}
	var keyLen int
	switch content {
	case algAES128CBC:
		keyLen = 16
	case algAES256CBC, saml.AlgAES256GCM:
		keyLen = 32
	case algTripleDES:
		keyLen = 24
	default:
		return fmt.Errorf("no legacy content algorithm %s", content)
	}
	key := make([]byte, keyLen)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	var ct []byte
	switch content {
	case saml.AlgAES256GCM:
		b, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(b)
		nonce := make([]byte, g.NonceSize())
		_, _ = rand.Read(nonce)
		ct = g.Seal(nonce, nonce, plain, nil)
	default:
		var b cipher.Block
		if content == algTripleDES {
			b, err = des.NewTripleDESCipher(key)
		} else {
			b, err = aes.NewCipher(key)
		}
		if err != nil {
			return err
		}
		bs := b.BlockSize()
		// XML Encryption §5.2 padding: the last octet counts the padding.
		pad := bs - len(plain)%bs
		padded := append(append([]byte{}, plain...), make([]byte, pad)...)
		padded[len(padded)-1] = byte(pad)
		iv := make([]byte, bs)
		_, _ = rand.Read(iv)
		out := make([]byte, len(padded))
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, padded)
		ct = append(iv, out...)
	}
	var wrapped []byte
	switch transport {
	case algRSA15:
		//lint:ignore SA1019 forges an rsa-1_5 key transport on purpose: the attack document a participant must refuse (KECIS §9)
		wrapped, err = rsa.EncryptPKCS1v15(rand.Reader, pub, key)
	default:
		wrapped, err = rsa.EncryptOAEP(crypto.SHA1.New(), rand.Reader, pub, key, nil)
	}
	if err != nil {
		return err
	}
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", saml.NSXEnc)
	ed.CreateAttr("Type", saml.TypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", content)
	ki := ed.CreateElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", saml.NSDSig)
	ek := ki.CreateElement("xenc:EncryptedKey")
	ek.CreateAttr("Recipient", recipient)
	ek.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", transport)
	ek.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(wrapped))
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
	parent := el.Parent()
	parent.InsertChildAt(el.Index(), ed)
	parent.RemoveChild(el)
	return nil
}

// contentCipherValue returns the CipherValue of an EncryptedData's own
// CipherData (not its key's).
func contentCipherValue(ed *etree.Element) *etree.Element {
	for _, c := range ed.ChildElements() {
		if c.Tag == "CipherData" {
			for _, v := range c.ChildElements() {
				if v.Tag == "CipherValue" {
					return v
				}
			}
		}
	}
	return nil
}

// findLocal returns the first descendant of el with the local name.
func findLocal(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
		if f := findLocal(c, local); f != nil {
			return f
		}
	}
	return nil
}
