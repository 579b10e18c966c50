package issuer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// vault holds the keys that protect card data at rest.
//
//   - The PAN is sealed with AES-256-GCM under the data key, with the card
//     ID as additional data so that a ciphertext cannot be moved to another
//     row: version byte ‖ 12-byte nonce ‖ ciphertext ‖ tag.
//   - Cards are found by HMAC-SHA256 of the PAN under a key derived from
//     the pepper, never by the PAN itself.
//   - The password's two leading digits and the birth date are hashed with
//     a per-card salt under another pepper-derived key: a salted hash of
//     two digits alone would fall to 100 guesses, a keyed one does not
//     without the pepper.
//   - Idempotency fingerprints (which cover card data) use a third key.
type vault struct {
	aead      cipher.AEAD
	panKey    []byte
	secretKey []byte
	fpKey     []byte
	authKey   []byte // keys the authentication password before argon2id
	pepper    []byte // for keys derived elsewhere (HKDF: virtual numbers)
	rand      io.Reader
}

const sealVersion = 1

func newVault(dataKey, pepper []byte, rand io.Reader) (*vault, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("issuer: data key must be 32 bytes (AES-256), got %d", len(dataKey))
	}
	if len(pepper) < 32 {
		return nil, fmt.Errorf("issuer: pepper must be at least 32 bytes, got %d", len(pepper))
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("issuer: data key: %w", err)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte("kecis/examples/issuer/" + label))
		return m.Sum(nil)
	}
	return &vault{
		aead:      aead,
		panKey:    derive("pan-index"),
		secretKey: derive("cardholder-secret"),
		fpKey:     derive("idempotency-fingerprint"),
		authKey:   derive("auth-password"),
		pepper:    bytes.Clone(pepper),
		rand:      rand,
	}, nil
}

// panHash is the look-up key of a card number.
func (v *vault) panHash(pan string) []byte {
	m := hmac.New(sha256.New, v.panKey)
	m.Write([]byte(pan))
	return m.Sum(nil)
}

func (v *vault) sealPAN(cardID, pan string) ([]byte, error) {
	return v.seal([]byte(pan), []byte("card:"+cardID))
}

// seal encrypts plain bound to ad: version ‖ nonce ‖ AES-256-GCM.
func (v *vault) seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("issuer: nonce: %w", err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return v.aead.Seal(out, nonce, plain, ad), nil
}

var errOpen = errors.New("issuer: stored secret does not decrypt (wrong data key or tampered row)")

func (v *vault) openPAN(cardID string, sealed []byte) (string, error) {
	pt, err := v.open(sealed, []byte("card:"+cardID))
	return string(pt), err
}

func (v *vault) open(sealed, ad []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errOpen
	}
	pt, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// domainSealer is the vault as a connectors/vcn Sealer: its additional
// data is prefixed with a domain, so that nothing it seals opens as a
// card number or a TOTP seed, nor the reverse.
type domainSealer struct {
	v      *vault
	domain string
}

func (d domainSealer) Seal(plain, ad []byte) ([]byte, error) {
	return d.v.seal(plain, append([]byte(d.domain+":"), ad...))
}

func (d domainSealer) Open(sealed, ad []byte) ([]byte, error) {
	return d.v.open(sealed, append([]byte(d.domain+":"), ad...))
}

// secretHash is the keyed salted hash of a cardholder secret; kind keeps
// the password digits and the birth date apart.
func (v *vault) secretHash(kind string, salt []byte, value string) []byte {
	m := hmac.New(sha256.New, v.secretKey)
	writeField(m, kind)
	writeField(m, string(salt))
	writeField(m, value)
	return m.Sum(nil)
}

// fingerprint is the keyed hash of an operation's parameters, fields
// length-prefixed so that no two parameter lists collide.
func (v *vault) fingerprint(op string, fields ...string) []byte {
	m := hmac.New(sha256.New, v.fpKey)
	writeField(m, op)
	for _, f := range fields {
		writeField(m, f)
	}
	return m.Sum(nil)
}

func writeField(w io.Writer, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	w.Write(n[:])
	io.WriteString(w, s)
}

// idEncoding is lower-case base32 without padding: its only digits are
// 2–7, so an ID never looks like a card number to ecml.FindPANs.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix_ and 16 random base32 characters (80 bits).
func newID(r io.Reader, prefix string) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("issuer: random id: %w", err)
	}
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("issuer: random digits: %w", err)
		}
		for _, b := range buf {
			if b < 250 && len(out) < n { // 250 = 25·10: no modulo bias
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out), nil
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("issuer: random: %w", err)
	}
	return b, nil
}
