// Package devpki makes the development keys a fresh machine needs to run
// KECIS: signing and encryption keys, TLS server certificates (with the
// loopback names) and TLS client certificates, all self-signed — KECIS
// trusts certificates because the federation metadata lists them, not
// because a CA signed them. Never for production keys: those come from the
// operator's HSM or key management.
package devpki

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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Kind selects what a certificate is for.
type Kind int

const (
	// Signing: an ECDSA P-256 key for XML signatures.
	Signing Kind = iota
	// Encryption: an RSA 2048 key (RSA-OAEP key transport needs RSA).
	Encryption
	// TLSServer: ECDSA P-256 with the loopback names as SANs.
	TLSServer
	// TLSClient: ECDSA P-256 for client authentication.
	TLSClient
)

// Ensure writes key.pem and cert.pem into dir unless both exist, and
// reports whether it generated them.
func Ensure(dir string, kind Kind, commonName string, hosts []string, now time.Time) (bool, error) {
	kp, cp := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	_, e1 := os.Stat(kp)
	_, e2 := os.Stat(cp)
	if e1 == nil && e2 == nil {
		return false, nil
	}
	if (e1 == nil) != (e2 == nil) {
		return false, fmt.Errorf("%s holds only one of key.pem and cert.pem; delete it to start afresh", dir)
	}
	keyPEM, certPEM, err := Generate(kind, commonName, hosts, now)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	if err := os.WriteFile(kp, keyPEM, 0o600); err != nil {
		return false, err
	}
	return true, os.WriteFile(cp, certPEM, 0o644)
}

// Generate returns a PEM key and self-signed certificate.
func Generate(kind Kind, commonName string, hosts []string, now time.Time) (keyPEM, certPEM []byte, err error) {
	var key crypto.Signer
	if kind == Encryption {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"KECIS development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(2 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
	}
	switch kind {
	case Signing:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	case Encryption:
		tmpl.KeyUsage = x509.KeyUsageKeyEncipherment
	case TLSServer:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	case TLSClient:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, nil, errors.New("devpki: unknown kind")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// LoopbackHosts are the names a development TLS server certificate carries.
var LoopbackHosts = []string{"127.0.0.1", "::1", "localhost"}
