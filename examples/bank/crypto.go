package bank

import (
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

// vault holds the keys that protect account numbers at rest (KECIS §8.1,
// §9.11: an account number is sensitive).
//
//   - A number is sealed with AES-256-GCM under the data key, the row's id
//     as additional data so that a ciphertext cannot be moved to another
//     row: version byte ‖ 12-byte nonce ‖ ciphertext ‖ tag.
//   - Accounts are found by HMAC-SHA256 of the number's digits under a key
//     derived from the pepper, never by the number.
//   - Idempotency and credit fingerprints (which cover numbers) use another
//     key, and login passwords a third (internal/passwordhash).
type vault struct {
	aead    cipher.AEAD
	numKey  []byte
	fpKey   []byte
	pwKey   []byte
	sessKey []byte
	rand    io.Reader
}

const sealVersion = 1

func newVault(dataKey, pepper []byte, rand io.Reader) (*vault, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("bank: data key must be 32 bytes (AES-256), got %d", len(dataKey))
	}
	if len(pepper) < 32 {
		return nil, fmt.Errorf("bank: pepper must be at least 32 bytes, got %d", len(pepper))
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("bank: data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("bank: data key: %w", err)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte("kecis/examples/bank/" + label))
		return m.Sum(nil)
	}
	return &vault{aead: aead, numKey: derive("account-index"), fpKey: derive("fingerprint"),
		pwKey: derive("login-password"), sessKey: derive("session"), rand: rand}, nil
}

// numberHash is the look-up key of an account number (its digits).
func (v *vault) numberHash(digits string) []byte {
	m := hmac.New(sha256.New, v.numKey)
	m.Write([]byte(digits))
	return m.Sum(nil)
}

// seal encrypts plain bound to ad: version ‖ nonce ‖ AES-256-GCM.
func (v *vault) seal(plain, ad string) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("bank: nonce: %w", err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return v.aead.Seal(out, nonce, []byte(plain), []byte(ad)), nil
}

var errOpen = errors.New("bank: stored account number does not decrypt (wrong data key or tampered row)")

func (v *vault) open(sealed []byte, ad string) (string, error) {
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != sealVersion {
		return "", errOpen
	}
	pt, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(ad))
	if err != nil {
		return "", errOpen
	}
	return string(pt), nil
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
// 2–7, so an ID never looks like an account or card number.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix_ and 16 random base32 characters (80 bits).
func newID(r io.Reader, prefix string) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("bank: random id: %w", err)
	}
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("bank: random digits: %w", err)
		}
		for _, b := range buf {
			if b < 250 && len(out) < n {
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out), nil
}

// AccountDigits returns the digits of an account number written with
// optional single hyphens between groups (KECIS §14.5: 6 to 20 digits),
// and whether it is one.
func AccountDigits(s string) (string, bool) {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") || len(s) > 24 {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c != '-':
			return "", false
		}
	}
	d := b.String()
	return d, len(d) >= 6 && len(d) <= 20
}

// FormatAccount writes 12 digits as the bank prints them, 3-3-6
// (110-123-456789); other lengths unchanged.
func FormatAccount(digits string) string {
	if len(digits) != 12 {
		return digits
	}
	return digits[:3] + "-" + digits[3:6] + "-" + digits[6:]
}

// MaskAccount shows an account number as its last four digits only:
// ****-6789.
func MaskAccount(last4 string) string { return "****-" + last4 }
