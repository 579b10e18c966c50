package saml

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"
)

// KeyType names the key algorithms the signature profile allows.
type KeyType string

const (
	KeyRSA   KeyType = "rsa"   // RSA 2048 (rsa-sha256)
	KeyECDSA KeyType = "ecdsa" // ECDSA P-256 (ecdsa-sha256)
)

// GenerateKey makes a new key of the given type from rnd (nil: crypto/rand).
func GenerateKey(t KeyType, rnd io.Reader) (crypto.Signer, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	switch t {
	case KeyRSA:
		return rsa.GenerateKey(rnd, 2048)
	case KeyECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rnd)
	}
	return nil, fmt.Errorf("kecis: key type %q; use rsa or ecdsa", t)
}

// SelfSignedCertificate makes a self-signed certificate for a KECIS signing
// or encryption key: KECIS trusts keys by their presence in the federation
// metadata, not by a CA chain, so self-signed is the norm (as in SAML
// metadata).
func SelfSignedCertificate(key crypto.Signer, commonName string, notBefore time.Time, validity time.Duration, rnd io.Reader) (*x509.Certificate, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	serial, err := rand.Int(rnd, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"KECIS participant"}},
		NotBefore:             notBefore.Add(-time.Hour),
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// EncodeKeyPEM encodes a private key as PKCS#8 PEM.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeCertPEM encodes a certificate as PEM.
func EncodeCertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// ParseKeyPEM reads a PKCS#8, PKCS#1 or SEC 1 private key.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key found")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("%T is not a signing key", k)
			}
			return s, nil
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(b.Bytes)
		}
	}
}

// LoadKey reads the private key of a PEM file ([ParseKeyPEM]). It is the
// one way the project loads a signing or an encryption key from a file.
func LoadKey(path string) (crypto.Signer, error) {
	kd, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(kd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// LoadSigner reads a PEM key and certificate and returns a Signer.
func LoadSigner(keyPath, certPath string) (*Signer, error) {
	key, err := LoadKey(keyPath)
	if err != nil {
		return nil, err
	}
	certs, err := LoadCertificates(certPath)
	if err != nil {
		return nil, err
	}
	return NewSigner(key, certs[0])
}

// LoadDecryptionKey reads an encryption key and, when certPath is not "",
// the certificate the receiver publishes for it with use="encryption"
// (KECIS §8.3): the first certificate of the file, which must hold the
// key's public key. Without a certificate the key matches an EncryptedKey by
// its public key alone (a tool holding only the key).
func LoadDecryptionKey(keyPath, certPath string) (DecryptionKey, error) {
	key, err := LoadKey(keyPath)
	if err != nil {
		return DecryptionKey{}, err
	}
	dk, ok := key.(crypto.Decrypter)
	if !ok {
		return DecryptionKey{}, fmt.Errorf("%s: a %T cannot decrypt", keyPath, key)
	}
	if certPath == "" {
		return DecryptionKey{Key: dk}, nil
	}
	certs, err := LoadCertificates(certPath)
	if err != nil {
		return DecryptionKey{}, err
	}
	if !publicKeysEqual(key.Public(), certs[0].PublicKey) {
		return DecryptionKey{}, fmt.Errorf("%s: the key does not match the certificate %s", keyPath, certPath)
	}
	return DecryptionKey{Cert: certs[0], Key: dk}, nil
}
