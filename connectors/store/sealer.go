package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Sealer seals values an adapter keeps at rest (KECIS §9.11: no card
// number or outcome in clear in a stored row): AES-256-GCM with a random
// nonce, and associated data that binds a sealed value to its row, so
// that a value copied into another row does not open. The adapter store's
// outcomes and the services' own sealed columns (amountauth's card) use
// this one implementation.
type Sealer struct {
	aead cipher.AEAD
	rand io.Reader
}

// NewSealer returns a Sealer under key (32 bytes, the adapter's at-rest
// key). random is the nonce source (crypto/rand when nil).
func NewSealer(key []byte, random io.Reader) (*Sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("adapter store: the at-rest key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	return &Sealer{aead: aead, rand: random}, nil
}

// Seal returns nonce || ciphertext of plain, bound to ad.
func (s *Sealer) Seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("adapter store: nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, ad), nil
}

// Open reverses Seal; it fails when sealed was changed or belongs to
// another ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("adapter store: sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("adapter store: the sealed value does not open: %w", err)
	}
	return plain, nil
}
