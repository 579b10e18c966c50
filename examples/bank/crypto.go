package bank

import (
	"fmt"
	"io"

	kv "github.com/kecis/kecis/internal/vault"
)

// vault holds the keys that protect account numbers at rest (KECIS §8.1,
// §9.11: an account number is sensitive), over internal/vault's format.
//
//   - A number is sealed with AES-256-GCM under the data key, the row's id
//     as additional data so that a ciphertext cannot be moved to another
//     row.
//   - Accounts are found by HMAC-SHA256 of the number's digits under a key
//     derived from the pepper, never by the number.
//   - Idempotency and credit fingerprints (which cover numbers) use another
//     key, login passwords a third (internal/passwordhash) and session
//     cookies a fourth.
type vault struct {
	*kv.Vault
	numKey, fpKey, pwKey, sessKey kv.Key
}

func newVault(dataKey, pepper []byte, rand io.Reader) (*vault, error) {
	v, err := kv.New(dataKey, rand)
	if err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	if err := kv.CheckPepper(pepper); err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	derive := func(label string) kv.Key { return kv.DeriveKey(pepper, "kecis/examples/bank/"+label) }
	return &vault{Vault: v, numKey: derive("account-index"), fpKey: derive("fingerprint"),
		pwKey: derive("login-password"), sessKey: derive("session")}, nil
}

// numberHash is the look-up key of an account number (its digits).
func (v *vault) numberHash(digits string) []byte { return v.numKey.Hash(digits) }

// seal seals an account number bound to its row (ad).
func (v *vault) seal(plain, ad string) ([]byte, error) { return v.Seal([]byte(plain), []byte(ad)) }

func (v *vault) open(sealed []byte, ad string) (string, error) {
	pt, err := v.Open(sealed, []byte(ad))
	return string(pt), err
}

// fingerprint is the keyed hash of an operation's parameters.
func (v *vault) fingerprint(op string, fields ...string) []byte {
	return v.fpKey.Fingerprint(append([]string{op}, fields...)...)
}

// IDs (prefix_ and 80 random bits in lower-case base32, which never looks
// like an account number) and random digits come from internal/vault.
var (
	newID        = kv.NewID
	randomDigits = kv.RandomDigits
)

// FormatAccount writes 12 digits as the bank prints them, 3-3-6
// (110-123-456789); other lengths unchanged.
func FormatAccount(digits string) string {
	if len(digits) != 12 {
		return digits
	}
	return digits[:3] + "-" + digits[3:6] + "-" + digits[6:]
}
