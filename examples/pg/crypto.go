package pg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// vault holds the keys that protect the PG's data at rest.
//
//   - Buyer details are sealed with AES-256-GCM under a key derived from
//     Config.DataKey, with the TID as additional data so that a ciphertext
//     cannot be moved to another row: version byte ‖ 12-byte nonce ‖
//     ciphertext ‖ tag.
//   - Idempotency fingerprints cover the card number, so they are
//     HMAC-SHA256 under another derived key: an unkeyed hash of a card
//     number whose first six and last four digits are stored beside it
//     falls to about 10^5 guesses.
//   - API keys are 160 random bits; the PG keeps their SHA-256 only.
type vault struct {
	aead  cipher.AEAD
	fpKey []byte
	rand  io.Reader
}

const sealVersion = 1

func newVault(dataKey []byte, rand io.Reader) (*vault, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("pg: config: data key must be 32 bytes, got %d", len(dataKey))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, dataKey)
		m.Write([]byte("kecis/examples/pg/" + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("buyer-encryption"))
	if err != nil {
		return nil, fmt.Errorf("pg: data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pg: data key: %w", err)
	}
	return &vault{aead: aead, fpKey: derive("idempotency-fingerprint"), rand: rand}, nil
}

// buyerText is the plaintext of b's sealed form (JSON); nil for an empty
// Buyer, which is stored as NULL. Payments encode it before they wait for
// the database's writer.
func buyerText(b Buyer) ([]byte, error) {
	if b.empty() {
		return nil, nil
	}
	return json.Marshal(b)
}

// sealBuyer encrypts pt, a buyerText, for the row of tid under a fresh
// nonce; nil for nil pt. The AAD binds it to tid, which is drawn inside
// the write transaction: so is the nonce, once per attempt.
func (v *vault) sealBuyer(tid string, pt []byte) ([]byte, error) {
	if pt == nil {
		return nil, nil
	}
	// version ‖ nonce ‖ ciphertext in one allocation.
	n := v.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(pt)+v.aead.Overhead())
	out[0] = sealVersion
	nonce := out[1:]
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("pg: nonce: %w", err)
	}
	return v.aead.Seal(out, nonce, pt, []byte("buyer:"+tid)), nil
}

var errOpen = errors.New("pg: stored buyer data does not decrypt (wrong data key or tampered row)")

func (v *vault) openBuyer(tid string, sealed []byte) (Buyer, error) {
	var b Buyer
	if len(sealed) == 0 {
		return b, nil
	}
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != sealVersion {
		return b, errOpen
	}
	pt, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte("buyer:"+tid))
	if err != nil {
		return b, errOpen
	}
	if err := json.Unmarshal(pt, &b); err != nil {
		return b, errOpen
	}
	return b, nil
}

// fingerprint is the keyed hash of an operation's parameters, each field
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

// apiKeyHash is what the PG stores of an API key.
func apiKeyHash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// idEncoding is base32 without padding, lower-cased: its only digits are
// 2–7, so a random token never looks like a card number.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomToken returns n random bytes in lower-case base32.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("pg: random: %w", err)
	}
	return strings.ToLower(idEncoding.EncodeToString(b)), nil
}

// newAPIKey returns a fresh merchant API key, "pgk_" and 32 base32
// characters (160 bits).
func newAPIKey(r io.Reader) (string, error) {
	t, err := randomToken(r, 20)
	if err != nil {
		return "", err
	}
	return "pgk_" + t, nil
}
