package broken

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"
	_ "crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// lenientDecrypter is the AcceptsCBC flaw: a decrypter in the manner of
// XML Encryption 1.0 libraries, which opens whatever algorithm the sender
// chose — AES-CBC, 3DES-CBC and AES-GCM content; rsa-oaep-mgf1p,
// xmlenc11#rsa-oaep and rsa-1_5 key transport. It still checks that what
// it decrypted is a sensitive element.
type lenientDecrypter struct{ key *rsa.PrivateKey }

func (d *lenientDecrypter) DecryptPayload(_ context.Context, payload *etree.Element) error {
	var eds []*etree.Element
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.Tag == "EncryptedData" {
				eds = append(eds, c)
				continue
			}
			walk(c)
		}
	}
	walk(payload)
	for _, ed := range eds {
		if err := d.one(ed); err != nil {
			return saml.ErrDecryption.WithCause(err)
		}
	}
	return nil
}

func child(el *etree.Element, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

func cipherValue(el *etree.Element) ([]byte, error) {
	cd := child(el, "CipherData")
	if cd == nil || child(cd, "CipherValue") == nil {
		return nil, errors.New("no CipherValue")
	}
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(child(cd, "CipherValue").Text()), ""))
}

var hashes = map[string]crypto.Hash{
	"http://www.w3.org/2000/09/xmldsig#sha1":        crypto.SHA1,
	"http://www.w3.org/2001/04/xmlenc#sha256":       crypto.SHA256,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": crypto.SHA384,
	"http://www.w3.org/2001/04/xmlenc#sha512":       crypto.SHA512,
	"http://www.w3.org/2009/xmlenc11#mgf1sha1":      crypto.SHA1,
	"http://www.w3.org/2009/xmlenc11#mgf1sha256":    crypto.SHA256,
	"http://www.w3.org/2009/xmlenc11#mgf1sha384":    crypto.SHA384,
	"http://www.w3.org/2009/xmlenc11#mgf1sha512":    crypto.SHA512,
}

func (d *lenientDecrypter) one(ed *etree.Element) error {
	method := child(ed, "EncryptionMethod")
	ki := child(ed, "KeyInfo")
	if method == nil || ki == nil || child(ki, "EncryptedKey") == nil {
		return errors.New("incomplete EncryptedData")
	}
	ek := child(ki, "EncryptedKey")
	em := child(ek, "EncryptionMethod")
	if em == nil {
		return errors.New("incomplete EncryptedKey")
	}
	wrapped, err := cipherValue(ek)
	if err != nil {
		return err
	}
	var key []byte
	switch alg := em.SelectAttrValue("Algorithm", ""); alg {
	case saml.NSXEnc + "rsa-1_5":
		//lint:ignore SA1019 the deliberately broken legacy decrypter accepts rsa-1_5 key transport, the attack the suite shows a participant must refuse (KECIS §9)
		key, err = rsa.DecryptPKCS1v15(rand.Reader, d.key, wrapped)
	case saml.AlgRSAOAEPMGF1P, saml.AlgRSAOAEP:
		h, mgf := crypto.SHA1, crypto.SHA1
		for _, p := range em.ChildElements() {
			if v, ok := hashes[p.SelectAttrValue("Algorithm", "")]; ok {
				if p.Tag == "MGF" {
					mgf = v
				} else {
					h = v
				}
			}
		}
		key, err = d.key.Decrypt(rand.Reader, wrapped, &rsa.OAEPOptions{Hash: h, MGFHash: mgf})
	default:
		return fmt.Errorf("key transport %s", alg)
	}
	if err != nil {
		return err
	}
	ct, err := cipherValue(ed)
	if err != nil {
		return err
	}
	var plain []byte
	switch alg := method.SelectAttrValue("Algorithm", ""); alg {
	case saml.AlgAES128GCM, saml.AlgAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			return err
		}
		if len(ct) < 12+16 {
			return errors.New("short")
		}
		if plain, err = g.Open(nil, ct[:12], ct[12:], nil); err != nil {
			return err
		}
	case saml.NSXEnc + "aes128-cbc", saml.NSXEnc + "aes192-cbc", saml.NSXEnc + "aes256-cbc", saml.NSXEnc + "tripledes-cbc":
		var b cipher.Block
		if strings.HasSuffix(alg, "tripledes-cbc") {
			b, err = des.NewTripleDESCipher(key)
		} else {
			b, err = aes.NewCipher(key)
		}
		if err != nil {
			return err
		}
		bs := b.BlockSize()
		if len(ct) < 2*bs || len(ct)%bs != 0 {
			return errors.New("bad CBC length")
		}
		plain = make([]byte, len(ct)-bs)
		cipher.NewCBCDecrypter(b, ct[:bs]).CryptBlocks(plain, ct[bs:])
		pad := int(plain[len(plain)-1])
		if pad == 0 || pad > bs {
			return errors.New("bad padding")
		}
		plain = plain[:len(plain)-pad]
	default:
		return fmt.Errorf("content algorithm %s", alg)
	}
	root, err := saml.ParseDocument(plain, saml.Limits{})
	if err != nil {
		return err
	}
	parent := ed.Parent()
	parent.InsertChildAt(ed.Index(), root)
	parent.RemoveChild(ed)
	if !ecml.IsSensitive(root) {
		return fmt.Errorf("%s is not a sensitive element", root.Tag)
	}
	return nil
}

// serverCert makes the provider's TLS server certificate for loopback.
func serverCert(now time.Time) (tls.Certificate, *x509.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "KECIS broken provider TLS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}, leaf, nil
}
