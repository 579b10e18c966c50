package saml

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // OAEP digests named by URI
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"

	"github.com/kecis/kecis/ecml"
)

// Algorithm identifiers of the encryption profile (KECIS §8.1). Everything
// else — the CBC modes of AES, 3DES and SEED, and rsa-1_5 — is refused
// outright, never ranked lower: merely accepting a legacy algorithm breaks
// the modern ones ("One Bad Apple", Jager et al.).
const (
	AlgAES128GCM     = NSXEnc11 + "aes128-gcm"
	AlgAES256GCM     = NSXEnc11 + "aes256-gcm"
	AlgRSAOAEPMGF1P  = NSXEnc + "rsa-oaep-mgf1p"
	AlgRSAOAEP       = NSXEnc11 + "rsa-oaep"
	TypeElement      = NSXEnc + "Element"
	algMGF1Prefix    = NSXEnc11 + "mgf1"
	algDigestSHA1    = "http://www.w3.org/2000/09/xmldsig#sha1"
	algDigestSHA256  = "http://www.w3.org/2001/04/xmlenc#sha256"
	algDigestSHA384  = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	algDigestSHA512  = "http://www.w3.org/2001/04/xmlenc#sha512"
	gcmNonceSize     = 12
	gcmTagSize       = 16
	maxPlaintextSize = 64 << 10
)

var oaepDigests = map[string]crypto.Hash{
	algDigestSHA1:   crypto.SHA1,
	algDigestSHA256: crypto.SHA256,
	algDigestSHA384: crypto.SHA384,
	algDigestSHA512: crypto.SHA512,
}

var mgfHashes = map[string]crypto.Hash{
	algMGF1Prefix + "sha1":   crypto.SHA1,
	algMGF1Prefix + "sha224": crypto.SHA224,
	algMGF1Prefix + "sha256": crypto.SHA256,
	algMGF1Prefix + "sha384": crypto.SHA384,
	algMGF1Prefix + "sha512": crypto.SHA512,
}

func digestURI(h crypto.Hash) string {
	for u, hh := range oaepDigests {
		if hh == h {
			return u
		}
	}
	return ""
}

func mgfURI(h crypto.Hash) string {
	for u, hh := range mgfHashes {
		if hh == h {
			return u
		}
	}
	return ""
}

// GCM is AES-GCM content encryption as XML Encryption 1.1 §5.2.4 defines
// it: the CipherValue is the 96-bit IV, the ciphertext and the 128-bit tag.
// It implements crewjam/saml's xmlenc.BlockCipher (Encrypter and Decrypter),
// whose own GCM does not interoperate.
type GCM struct {
	alg     string
	keySize int
	// Rand supplies IVs; nil is crypto/rand.
	Rand io.Reader
}

// AES256GCM and AES128GCM are the content algorithms KECIS allows.
var (
	AES256GCM = GCM{alg: AlgAES256GCM, keySize: 32}
	AES128GCM = GCM{alg: AlgAES128GCM, keySize: 16}
)

func gcmFor(alg string) (GCM, bool) {
	switch alg {
	case AlgAES256GCM:
		return AES256GCM, true
	case AlgAES128GCM:
		return AES128GCM, true
	}
	return GCM{}, false
}

// Algorithm implements xmlenc.Decrypter.
func (g GCM) Algorithm() string { return g.alg }

// KeySize implements xmlenc.BlockCipher.
func (g GCM) KeySize() int { return g.keySize }

func (g GCM) aead(key []byte) (cipher.AEAD, error) {
	if len(key) != g.keySize {
		return nil, errors.New("content key has the wrong size")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Encrypt implements xmlenc.Encrypter: key is the []byte content key; nonce
// (12 bytes) is drawn from Rand when nil. It returns an xenc:EncryptedData
// of Type Element without KeyInfo.
func (g GCM) Encrypt(key any, plaintext []byte, nonce []byte) (*etree.Element, error) {
	k, ok := key.([]byte)
	if !ok {
		return nil, xmlenc.ErrIncorrectKeyType("[]byte")
	}
	a, err := g.aead(k)
	if err != nil {
		return nil, err
	}
	if nonce == nil {
		nonce = make([]byte, gcmNonceSize)
		if _, err := io.ReadFull(randOr(g.Rand), nonce); err != nil {
			return nil, err
		}
	}
	if len(nonce) != gcmNonceSize {
		return nil, errors.New("GCM nonce must be 12 bytes")
	}
	out := a.Seal(append([]byte{}, nonce...), nonce, plaintext, nil)
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NSXEnc)
	ed.CreateAttr("Type", TypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", g.alg)
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(out))
	return ed, nil
}

// Decrypt implements xmlenc.Decrypter: key is the []byte content key and el
// the xenc:EncryptedData whose CipherValue to open.
func (g GCM) Decrypt(key any, el *etree.Element) ([]byte, error) {
	k, ok := key.([]byte)
	if !ok {
		return nil, xmlenc.ErrIncorrectKeyType("[]byte")
	}
	ct, err := cipherValue(el)
	if err != nil {
		return nil, err
	}
	if len(ct) < gcmNonceSize+gcmTagSize {
		return nil, errors.New("GCM ciphertext too short")
	}
	a, err := g.aead(k)
	if err != nil {
		return nil, err
	}
	return a.Open(nil, ct[:gcmNonceSize], ct[gcmNonceSize:], nil)
}

// OAEP is RSA-OAEP key transport (XML Encryption 1.1 §5.5.2): rsa-oaep-mgf1p
// (MGF1 with SHA-1, digest SHA-1 unless DigestMethod says otherwise) or
// xmlenc11#rsa-oaep (digest and MGF named by DigestMethod and xenc11:MGF).
// SHA-1 here is a mask and padding hash, not a signature: it is allowed.
// It implements crewjam/saml's xmlenc.Encrypter (key: the recipient
// *x509.Certificate; plaintext: the content key) and xmlenc.Decrypter (key:
// a crypto.Decrypter holding the RSA private key; el: an xenc:EncryptedKey).
type OAEP struct {
	alg    string
	Digest crypto.Hash
	MGF    crypto.Hash
	// Recipient is written as EncryptedKey/@Recipient: the recipient's entityID.
	Recipient string
	Rand      io.Reader
}

// OAEPMGF1P is rsa-oaep-mgf1p with SHA-1 (the form xmlsec1 1.2 reads).
func OAEPMGF1P(recipient string) OAEP {
	return OAEP{alg: AlgRSAOAEPMGF1P, Digest: crypto.SHA1, MGF: crypto.SHA1, Recipient: recipient}
}

// OAEP11 is xmlenc11#rsa-oaep with SHA-256 digest and MGF1-SHA-256.
func OAEP11(recipient string) OAEP {
	return OAEP{alg: AlgRSAOAEP, Digest: crypto.SHA256, MGF: crypto.SHA256, Recipient: recipient}
}

// Algorithm implements xmlenc.Decrypter.
func (o OAEP) Algorithm() string { return o.alg }

// Encrypt implements xmlenc.Encrypter: it wraps the content key for the
// certificate's RSA key and returns the xenc:EncryptedKey, whose KeyInfo
// names the recipient certificate (KECIS §8.2).
func (o OAEP) Encrypt(key any, plaintext []byte, _ []byte) (*etree.Element, error) {
	cert, ok := key.(*x509.Certificate)
	if !ok {
		return nil, xmlenc.ErrIncorrectKeyType("*x509.Certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 {
		return nil, errors.New("kecis: the recipient certificate needs an RSA key of at least 2048 bits")
	}
	wrapped, err := rsa.EncryptOAEPWithOptions(randOr(o.Rand), pub, plaintext, &rsa.OAEPOptions{Hash: o.Digest, MGFHash: o.MGF})
	if err != nil {
		return nil, err
	}
	ek := etree.NewElement("xenc:EncryptedKey")
	ek.CreateAttr("xmlns:xenc", NSXEnc)
	ek.CreateAttr("xmlns:ds", NSDSig)
	if o.Recipient != "" {
		ek.CreateAttr("Recipient", o.Recipient)
	}
	em := ek.CreateElement("xenc:EncryptionMethod")
	em.CreateAttr("Algorithm", o.alg)
	switch o.alg {
	case AlgRSAOAEPMGF1P:
		if o.Digest != crypto.SHA1 {
			em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestURI(o.Digest))
		}
	case AlgRSAOAEP:
		em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestURI(o.Digest))
		mgf := em.CreateElement("xenc11:MGF")
		mgf.CreateAttr("xmlns:xenc11", NSXEnc11)
		mgf.CreateAttr("Algorithm", mgfURI(o.MGF))
	}
	ek.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(wrapped))
	return ek, nil
}

// Decrypt implements xmlenc.Decrypter: it unwraps the content key of an
// xenc:EncryptedKey with key, a crypto.Decrypter (an *rsa.PrivateKey, or an
// HSM key).
func (o OAEP) Decrypt(key any, ek *etree.Element) ([]byte, error) {
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, xmlenc.ErrIncorrectKeyType("crypto.Decrypter")
	}
	ct, err := cipherValue(ek)
	if err != nil {
		return nil, err
	}
	return d.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: o.Digest, MGFHash: o.MGF})
}

var (
	_ xmlenc.BlockCipher = GCM{}
	_ xmlenc.Encrypter   = OAEP{}
	_ xmlenc.Decrypter   = OAEP{}
)

func randOr(r io.Reader) io.Reader {
	if r != nil {
		return r
	}
	return rand.Reader
}

func cipherValue(el *etree.Element) ([]byte, error) {
	var cd *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == "CipherData" {
			cd = c
		}
	}
	if cd == nil || len(cd.ChildElements()) != 1 || cd.ChildElements()[0].Tag != "CipherValue" {
		return nil, errors.New("CipherData must hold one CipherValue")
	}
	return base64.StdEncoding.DecodeString(stripSpace(cd.ChildElements()[0].Text()))
}

// Encryptor encrypts sensitive ECML elements for one final recipient
// (KECIS §8.2): each becomes an xenc:EncryptedData of Type Element with
// AES-GCM content encryption and an xenc:EncryptedKey, RSA-OAEP, naming the
// recipient's entityID and certificate.
type Encryptor struct {
	// Recipient is the final recipient's entityID; Cert its encryption
	// certificate from metadata.
	Recipient string
	Cert      *x509.Certificate
	// Content is AES256GCM (the default) or AES128GCM.
	Content GCM
	// KeyTransport is AlgRSAOAEPMGF1P (the default, which xmlsec1 1.2 reads)
	// or AlgRSAOAEP (SHA-256 digest and MGF1).
	KeyTransport string
	// Rand supplies content keys and IVs; nil is crypto/rand.
	Rand io.Reader
}

func (e *Encryptor) transport() (OAEP, error) {
	switch e.KeyTransport {
	case "", AlgRSAOAEPMGF1P:
		o := OAEPMGF1P(e.Recipient)
		o.Rand = e.Rand
		return o, nil
	case AlgRSAOAEP:
		o := OAEP11(e.Recipient)
		o.Rand = e.Rand
		return o, nil
	}
	return OAEP{}, fmt.Errorf("kecis: key transport %q is not allowed", e.KeyTransport)
}

// EncryptElement replaces el, in its parent, by its xenc:EncryptedData and
// returns it. The plaintext is el serialised standalone (with the namespace
// declarations it inherits), so that any receiver parses it alike.
func (e *Encryptor) EncryptElement(el *etree.Element) (*etree.Element, error) {
	if e.Cert == nil {
		return nil, errors.New("kecis: no recipient certificate to encrypt for")
	}
	parent := el.Parent()
	if parent == nil {
		return nil, errors.New("kecis: only an element inside a document can be encrypted in place")
	}
	content := e.Content
	if content.alg == "" {
		content = AES256GCM
	}
	content.Rand = e.Rand
	kt, err := e.transport()
	if err != nil {
		return nil, err
	}
	plain, err := Serialize(detachMinimal(el))
	if err != nil {
		return nil, err
	}
	key := make([]byte, content.keySize)
	if _, err := io.ReadFull(randOr(e.Rand), key); err != nil {
		return nil, err
	}
	ed, err := content.Encrypt(key, plain, nil)
	if err != nil {
		return nil, err
	}
	ek, err := kt.Encrypt(e.Cert, key, nil)
	clear(key)
	if err != nil {
		return nil, err
	}
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NSDSig)
	ki.AddChild(ek)
	ed.InsertChildAt(1, ki) // after EncryptionMethod (XML Encryption §3.1)
	parent.InsertChildAt(el.Index(), ed)
	parent.RemoveChild(el)
	return ed, nil
}

// EncryptPayload encrypts, in place, the sensitive elements of a payload
// container (ecml.SensitiveElements); with names, only those whose local
// name is listed. It returns how many it encrypted.
func (e *Encryptor) EncryptPayload(container *etree.Element, names ...string) (int, error) {
	n := 0
	for _, el := range ecml.SensitiveElements(container) {
		if len(names) > 0 && !slices.Contains(names, el.Tag) {
			continue
		}
		if _, err := e.EncryptElement(el); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// DecryptionKey is one of a receiver's encryption keys with its certificate
// as published in metadata (several during a rollover). Cert may be nil
// (a tool holding only the key): the key then matches by its public key.
type DecryptionKey struct {
	Cert *x509.Certificate
	Key  crypto.Decrypter
}

// Decryptor decrypts what is addressed to one participant (KECIS §8.3). It
// implements the receive pipeline's Decrypter. Every failure, whatever its
// cause, is the one ErrDecryption: no padding, tag or format oracle.
type Decryptor struct {
	// EntityID is this participant; an EncryptedKey naming another
	// Recipient is not for us.
	EntityID string
	Keys     []DecryptionKey
	// Limits bound the parse of each plaintext.
	Limits Limits
	// KeepForOthers leaves in place, unchanged, an xenc:EncryptedData every
	// one of whose EncryptedKeys names another Recipient: an element
	// encrypted for a third party travels opaque through this participant
	// (KECIS §8.3, §15.7: the card number a cardholder authentication
	// encrypts for the acquirer, which the merchant passes on). An
	// EncryptedKey without a Recipient, or naming us, still makes the whole
	// element ours to decrypt (or fail on). It needs EntityID; off, every
	// EncryptedData must decrypt.
	KeepForOthers bool
}

// KeepsForOthers reports whether d leaves third parties' elements in place
// (KeepForOthers with an EntityID): the receive pipeline then validates
// the payload accepting the stand-ins that remain (KECIS §14.6).
func (d *Decryptor) KeepsForOthers() bool { return d.KeepForOthers && d.EntityID != "" }

// forOthers reports whether ed is for third parties only: KeyInfo holds at
// least one EncryptedKey and every one names a Recipient other than us.
func (d *Decryptor) forOthers(ed *etree.Element) bool {
	if !d.KeepsForOthers() {
		return false
	}
	n := 0
	for _, c := range ed.ChildElements() {
		if c.Tag != "KeyInfo" {
			continue
		}
		for _, ek := range c.ChildElements() {
			if ek.Tag != "EncryptedKey" {
				continue
			}
			if r := ek.SelectAttrValue("Recipient", ""); r == "" || r == d.EntityID {
				return false
			}
			n++
		}
	}
	return n > 0
}

// DecryptPayload implements Decrypter: it replaces every xenc:EncryptedData
// under payload by the element it hides, after checking the algorithms
// against the allow-list, the recipient, the key, and that the hidden
// element is a sensitive one standing where it belongs.
func (d *Decryptor) DecryptPayload(_ context.Context, payload *etree.Element) error {
	var eds []*etree.Element
	walkAll(payload, func(el *etree.Element) {
		if el != payload && el.Tag == "EncryptedData" {
			if ns, _ := elementNSAny(el); ns == NSXEnc {
				eds = append(eds, el)
			}
		}
	})
	var kept []*etree.Element
	for _, ed := range eds {
		if slices.ContainsFunc(kept, func(k *etree.Element) bool { return isAncestor(k, ed) }) {
			continue // inside an opaque element: not ours to touch
		}
		if d.forOthers(ed) {
			if err := checkOpaque(ed); err != nil {
				return ErrDecryption.WithCause(err)
			}
			kept = append(kept, ed)
			continue
		}
		if err := d.decryptOne(ed); err != nil {
			return ErrDecryption.WithCause(err)
		}
	}
	return nil
}

// checkOpaque is what a participant checks of an element it keeps for a
// third party: an element encryption (Type) made only of the parts KECIS
// uses, so that nothing else rides along unseen.
func checkOpaque(ed *etree.Element) error {
	if ed.SelectAttrValue("Type", "") != TypeElement {
		return errors.New("EncryptedData Type is not Element")
	}
	for _, c := range ed.ChildElements() {
		switch c.Tag {
		case "EncryptionMethod", "KeyInfo", "CipherData", "EncryptionProperties":
		default:
			return fmt.Errorf("unexpected %s in EncryptedData", c.Tag)
		}
	}
	return nil
}

// isAncestor reports whether a is a proper ancestor of el.
func isAncestor(a, el *etree.Element) bool {
	for p := el.Parent(); p != nil; p = p.Parent() {
		if p == a {
			return true
		}
	}
	return false
}

// elementNSAny resolves el's namespace against all its ancestors.
func elementNSAny(el *etree.Element) (string, bool) {
	top := el
	for top.Parent() != nil && top.Parent().Tag != "" {
		top = top.Parent()
	}
	return resolveNS(el, top, el.Space)
}

func (d *Decryptor) decryptOne(ed *etree.Element) error {
	if ed.SelectAttrValue("Type", "") != TypeElement {
		return errors.New("EncryptedData Type is not Element")
	}
	var method, keyInfo *etree.Element
	for _, c := range ed.ChildElements() {
		switch c.Tag {
		case "EncryptionMethod":
			method = c
		case "KeyInfo":
			keyInfo = c
		case "CipherData", "EncryptionProperties":
		default:
			return fmt.Errorf("unexpected %s in EncryptedData", c.Tag)
		}
	}
	if method == nil {
		return errors.New("EncryptedData without EncryptionMethod")
	}
	content, ok := gcmFor(method.SelectAttrValue("Algorithm", ""))
	if !ok {
		return fmt.Errorf("content algorithm %q is not allowed", method.SelectAttrValue("Algorithm", ""))
	}
	if len(method.ChildElements()) > 0 {
		return errors.New("GCM EncryptionMethod takes no parameters")
	}
	if keyInfo == nil {
		return errors.New("EncryptedData without KeyInfo")
	}
	var eks []*etree.Element
	for _, c := range keyInfo.ChildElements() {
		if c.Tag == "EncryptedKey" {
			eks = append(eks, c)
		}
	}
	if len(eks) == 0 {
		return errors.New("no EncryptedKey")
	}
	var key []byte
	var lastErr error = errors.New("no EncryptedKey for this recipient")
	for _, ek := range eks {
		if r := ek.SelectAttrValue("Recipient", ""); r != "" && d.EntityID != "" && r != d.EntityID {
			continue
		}
		k, err := d.unwrap(ek, content.keySize)
		if err == nil {
			key = k
			break
		}
		lastErr = err
	}
	if key == nil {
		return lastErr
	}
	plain, err := content.Decrypt(key, ed)
	clear(key)
	if err != nil {
		return err
	}
	if len(plain) > maxPlaintextSize {
		return errors.New("plaintext too large")
	}
	el, err := d.parsePlaintext(ed, plain)
	if err != nil {
		return err
	}
	parent := ed.Parent()
	parent.InsertChildAt(ed.Index(), el)
	parent.RemoveChild(ed)
	if !ecml.IsSensitive(el) {
		return fmt.Errorf("encrypted element %s is not a sensitive element where it stands", el.FullTag())
	}
	return nil
}

// unwrap decrypts one EncryptedKey with the key its KeyInfo names (or, when
// it names none, the only key there is).
func (d *Decryptor) unwrap(ek *etree.Element, size int) ([]byte, error) {
	var method, keyInfo *etree.Element
	for _, c := range ek.ChildElements() {
		switch c.Tag {
		case "EncryptionMethod":
			method = c
		case "KeyInfo":
			keyInfo = c
		case "CipherData", "ReferenceList", "CarriedKeyName":
		default:
			return nil, fmt.Errorf("unexpected %s in EncryptedKey", c.Tag)
		}
	}
	if method == nil {
		return nil, errors.New("EncryptedKey without EncryptionMethod")
	}
	o, err := oaepFrom(method)
	if err != nil {
		return nil, err
	}
	dk, err := d.selectKey(keyInfo)
	if err != nil {
		return nil, err
	}
	key, err := o.Decrypt(dk.Key, ek)
	if err != nil {
		return nil, err
	}
	if len(key) != size {
		clear(key)
		return nil, errors.New("content key has the wrong size")
	}
	return key, nil
}

func oaepFrom(method *etree.Element) (OAEP, error) {
	alg := method.SelectAttrValue("Algorithm", "")
	var o OAEP
	switch alg {
	case AlgRSAOAEPMGF1P:
		o = OAEP{alg: alg, Digest: crypto.SHA1, MGF: crypto.SHA1}
	case AlgRSAOAEP:
		o = OAEP{alg: alg, Digest: crypto.SHA1, MGF: crypto.SHA1}
	default:
		return o, fmt.Errorf("key transport %q is not allowed", alg)
	}
	for _, p := range method.ChildElements() {
		switch {
		case p.Tag == "DigestMethod":
			h, ok := oaepDigests[p.SelectAttrValue("Algorithm", "")]
			if !ok {
				return o, fmt.Errorf("OAEP digest %q is not allowed", p.SelectAttrValue("Algorithm", ""))
			}
			o.Digest = h
		case p.Tag == "MGF" && alg == AlgRSAOAEP:
			h, ok := mgfHashes[p.SelectAttrValue("Algorithm", "")]
			if !ok {
				return o, fmt.Errorf("MGF %q is not allowed", p.SelectAttrValue("Algorithm", ""))
			}
			o.MGF = h
		default:
			// OAEPparams (a label) and anything else: not in the profile.
			return o, fmt.Errorf("%s is not allowed in an OAEP EncryptionMethod", p.Tag)
		}
	}
	return o, nil
}

func (d *Decryptor) selectKey(keyInfo *etree.Element) (DecryptionKey, error) {
	if keyInfo != nil {
		if c := findDescLocal(keyInfo, "X509Certificate"); c != nil {
			der, err := base64.StdEncoding.DecodeString(stripSpace(c.Text()))
			if err != nil {
				return DecryptionKey{}, err
			}
			for _, k := range d.Keys {
				if k.Cert != nil && bytes.Equal(k.Cert.Raw, der) {
					return k, nil
				}
			}
			// A key held without its certificate matches by public key.
			if named, err := x509.ParseCertificate(der); err == nil {
				for _, k := range d.Keys {
					if k.Cert == nil && publicKeysEqual(k.Key.Public(), named.PublicKey) {
						return k, nil
					}
				}
			}
			return DecryptionKey{}, errors.New("EncryptedKey names a certificate that is not ours")
		}
	}
	if len(d.Keys) == 1 {
		return d.Keys[0], nil
	}
	return DecryptionKey{}, errors.New("EncryptedKey does not name which of our keys it is for")
}

func findDescLocal(el *etree.Element, local string) *etree.Element {
	var found *etree.Element
	walkAll(el, func(e *etree.Element) {
		if found == nil && e.Tag == local {
			found = e
		}
	})
	return found
}

// parsePlaintext parses a decrypted Element in the namespace context of the
// EncryptedData it replaces (XML Encryption §4.3, "decryption transform"),
// with the same limits as a message: no DOCTYPE, no comments, bounded.
func (d *Decryptor) parsePlaintext(ed *etree.Element, plain []byte) (*etree.Element, error) {
	var wrap bytes.Buffer
	wrap.WriteString("<w")
	seen := map[string]bool{}
	for p := ed.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			switch {
			case a.Space == "xmlns" && !seen[a.Key]:
				seen[a.Key] = true
				fmt.Fprintf(&wrap, ` xmlns:%s="%s"`, a.Key, escapeAttr(a.Value))
			case a.Space == "" && a.Key == "xmlns" && !seen[""]:
				seen[""] = true
				fmt.Fprintf(&wrap, ` xmlns="%s"`, escapeAttr(a.Value))
			}
		}
	}
	wrap.WriteString(">")
	wrap.Write(plain)
	wrap.WriteString("</w>")
	root, err := ParseDocument(wrap.Bytes(), d.Limits)
	if err != nil {
		return nil, err
	}
	kids := root.ChildElements()
	if len(kids) != 1 {
		return nil, errors.New("plaintext is not exactly one element")
	}
	for _, t := range root.Child {
		if cd, ok := t.(*etree.CharData); ok && !cd.IsWhitespace() {
			return nil, errors.New("plaintext has text beside its element")
		}
	}
	el := kids[0]
	root.RemoveChild(el)
	return el, nil
}

// escapeAttr escapes a value for a double-quoted XML attribute (Go's %q
// would write Go escapes, which XML reads as other characters).
func escapeAttr(v string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(v))
	return b.String()
}

// payloadContainer finds where a document's ECML lives: the kecis:Payload of
// a message, or the document itself when it is a payload or a bare Ecom.
func payloadContainer(root *etree.Element) (*etree.Element, error) {
	if root.Tag == "Ecom" || (root.Tag == elPayload && is(root, root, NSKECIS, elPayload)) {
		return root, nil
	}
	if p := findPayload(root); p != nil {
		return p, nil
	}
	return nil, errors.New("kecis: the document has no kecis:Payload or Ecom")
}

// EncryptDocument encrypts the sensitive elements of a message (or of a
// bare payload or Ecom) in place; names limits it to those local names. A
// signed message is refused: KECIS encrypts first and signs after, so that
// the signature covers the ciphertext (KECIS §4.5).
func EncryptDocument(root *etree.Element, e *Encryptor, names ...string) (int, error) {
	for _, c := range root.ChildElements() {
		if c.Tag == elSignature {
			return 0, errors.New("kecis: the message is already signed; encrypt first, then sign")
		}
	}
	p, err := payloadContainer(root)
	if err != nil {
		return 0, err
	}
	return e.EncryptPayload(p, names...)
}

// DecryptDocument decrypts every encrypted element of a message (or of a
// bare payload or Ecom) in place.
func DecryptDocument(ctx context.Context, root *etree.Element, d *Decryptor) error {
	p, err := payloadContainer(root)
	if err != nil {
		return err
	}
	return d.DecryptPayload(ctx, p)
}
