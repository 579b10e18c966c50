package issuer

import (
	"bytes"
	"fmt"
	"io"

	kv "github.com/kecis/kecis/internal/vault"
)

// vault holds the keys that protect card data at rest, over
// internal/vault's format.
//
//   - The PAN is sealed with AES-256-GCM under the data key, with the card
//     ID as additional data so that a ciphertext cannot be moved to another
//     row.
//   - Cards are found by HMAC-SHA256 of the PAN under a key derived from
//     the pepper, never by the PAN itself.
//   - The password's two leading digits and the birth date are hashed with
//     a per-card salt under another pepper-derived key: a salted hash of
//     two digits alone would fall to 100 guesses, a keyed one does not
//     without the pepper.
//   - Idempotency fingerprints (which cover card data) use a third key.
type vault struct {
	*kv.Vault
	panKey    kv.Key
	secretKey kv.Key
	fpKey     kv.Key
	authKey   kv.Key // keys the authentication password before argon2id
	pepper    []byte // for keys derived elsewhere (HKDF: virtual numbers)
}

func newVault(dataKey, pepper []byte, rand io.Reader) (*vault, error) {
	v, err := kv.New(dataKey, rand)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if err := kv.CheckPepper(pepper); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	derive := func(label string) kv.Key { return kv.DeriveKey(pepper, "kecis/examples/issuer/"+label) }
	return &vault{
		Vault:     v,
		panKey:    derive("pan-index"),
		secretKey: derive("cardholder-secret"),
		fpKey:     derive("idempotency-fingerprint"),
		authKey:   derive("auth-password"),
		pepper:    bytes.Clone(pepper),
	}, nil
}

// panHash is the look-up key of a card number.
func (v *vault) panHash(pan string) []byte { return v.panKey.Hash(pan) }

func (v *vault) sealPAN(cardID, pan string) ([]byte, error) {
	return v.Seal([]byte(pan), []byte("card:"+cardID))
}

func (v *vault) openPAN(cardID string, sealed []byte) (string, error) {
	pt, err := v.Open(sealed, []byte("card:"+cardID))
	return string(pt), err
}

// domainSealer is the vault as a connectors/vcn Sealer: its additional
// data is prefixed with a domain, so that nothing it seals opens as a
// card number or a TOTP seed, nor the reverse.
type domainSealer struct {
	v      *vault
	domain string
}

func (d domainSealer) Seal(plain, ad []byte) ([]byte, error) {
	return d.v.Seal(plain, append([]byte(d.domain+":"), ad...))
}

func (d domainSealer) Open(sealed, ad []byte) ([]byte, error) {
	return d.v.Open(sealed, append([]byte(d.domain+":"), ad...))
}

// secretHash is the keyed salted hash of a cardholder secret; kind keeps
// the password digits and the birth date apart.
func (v *vault) secretHash(kind string, salt []byte, value string) []byte {
	return v.secretKey.Fingerprint(kind, string(salt), value)
}

// fingerprint is the keyed hash of an operation's parameters.
func (v *vault) fingerprint(op string, fields ...string) []byte {
	return v.fpKey.Fingerprint(append([]string{op}, fields...)...)
}

// IDs (prefix_ and 80 random bits in lower-case base32, whose digits 2–7
// never make a card number for ecml.FindPANs), random digits and random
// bytes come from internal/vault.
var (
	newID        = kv.NewID
	randomDigits = kv.RandomDigits
	randomBytes  = kv.RandomBytes
)
