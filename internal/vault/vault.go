// Package vault is the at-rest protection the simulated companies share
// (examples/issuer's card numbers and TOTP seeds, examples/bank's account
// numbers; KECIS §9.11: no card or account number in clear in a stored
// row): one sealed format, one key derivation, one keyed hash, one
// fingerprint encoding and one ID generator, so that no two of them drift.
//
//   - Seal: AES-256-GCM under the data key with associated data that binds
//     the value to its row, as Version ‖ 12-byte random nonce ‖ ciphertext
//     ‖ 16-byte tag.
//   - DeriveKey: HMAC-SHA256(pepper, label), one key per purpose.
//   - Key.Hash: HMAC-SHA256 of a value (a look-up key for a number that is
//     only stored sealed).
//   - Key.Fingerprint: HMAC-SHA256 of fields each prefixed with its length
//     (4 bytes, big-endian), so that no two field lists collide.
//   - NewID, RandomDigits, RandomBytes: identifiers and secrets from the
//     instance's random source.
//
// The format is pinned by known-answer tests: a database written by an
// earlier build must keep opening. connectors/store.Sealer is a different
// format (no version byte) and is not this one.
package vault

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

// Version is the first byte of every sealed value.
const Version = 1

// ErrOpen is what Open returns for any value that does not open: wrong
// key, another row's associated data, a changed or truncated value, an
// unknown version.
var ErrOpen = errors.New("vault: sealed value does not open (wrong data key or tampered row)")

// Vault seals and opens values under one data key. It is safe for
// concurrent use if its random source is.
type Vault struct {
	aead cipher.AEAD
	rand io.Reader
}

// New returns a Vault under dataKey (32 bytes, AES-256) drawing nonces
// from random.
func New(dataKey []byte, random io.Reader) (*Vault, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("data key must be 32 bytes (AES-256), got %d", len(dataKey))
	}
	if random == nil {
		return nil, errors.New("vault: no random source")
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return &Vault{aead: aead, rand: random}, nil
}

// Seal encrypts plain bound to ad: Version ‖ nonce ‖ AES-256-GCM.
func (v *Vault) Seal(plain, ad []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plain)+v.aead.Overhead())
	out[0] = Version
	nonce := out[1 : 1+n]
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("vault: nonce: %w", err)
	}
	return v.aead.Seal(out, nonce, plain, ad), nil
}

// Open reverses Seal; it returns ErrOpen unless sealed was sealed under
// this key with the same ad and is unchanged.
func (v *Vault) Open(sealed, ad []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != Version {
		return nil, ErrOpen
	}
	pt, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// MinPepper is the shortest pepper DeriveKey's callers accept.
const MinPepper = 32

// CheckPepper reports a pepper shorter than MinPepper.
func CheckPepper(pepper []byte) error {
	if len(pepper) < MinPepper {
		return fmt.Errorf("pepper must be at least %d bytes, got %d", MinPepper, len(pepper))
	}
	return nil
}

// A Key is a secret of one purpose, from DeriveKey.
type Key []byte

// DeriveKey is HMAC-SHA256(pepper, label): one key per label. Labels name
// their owner and purpose ("kecis/examples/bank/account-index").
func DeriveKey(pepper []byte, label string) Key {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Hash is HMAC-SHA256(k, value): the look-up key of a value stored sealed.
func (k Key) Hash(value string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Fingerprint is HMAC-SHA256 under k of the fields, each prefixed with
// its length (4 bytes, big-endian), so that no two lists collide
// ("ab","c" and "a","bc" differ).
func (k Key) Fingerprint(fields ...string) []byte {
	m := hmac.New(sha256.New, k)
	var n [4]byte
	for _, f := range fields {
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// idEncoding is lower-case base32 without padding: its only digits are
// 2–7, so an ID never looks like a card or account number
// (ecml.FindPANs).
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns prefix, "_" and 16 random lower-case base32 characters
// (80 bits).
func NewID(r io.Reader, prefix string) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("vault: random id: %w", err)
	}
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// RandomDigits returns n uniformly random decimal digits: bytes of 250
// and above are dropped (250 = 25·10), so there is no modulo bias.
func RandomDigits(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("vault: random digits: %w", err)
		}
		for _, b := range buf {
			if b < 250 && len(out) < n {
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out), nil
}

// RandomBytes returns n random bytes.
func RandomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("vault: random: %w", err)
	}
	return b, nil
}
