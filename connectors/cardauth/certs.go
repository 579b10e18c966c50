package cardauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// CertVerifier checks a cardholder's TLS client certificate (KECIS
// §15.7.2): its chain to the issuer's cardholder CA (Roots) for
// ExtKeyUsageClientAuth, then the CA's revocation list — signed by the CA
// that issued the certificate, NextUpdate not passed, the serial not on
// it. Which card the certificate is for is the issuer's to say
// (Cardholders.CertificateCard).
type CertVerifier struct {
	Roots *x509.CertPool
	// CRL returns the CA's current revocation list.
	CRL func(ctx context.Context) (*x509.RevocationList, error)
}

// Errors of Verify (wrapped with the cause).
var (
	ErrCertUntrusted = errors.New("cardauth: the client certificate is not the issuer's cardholder certificate")
	ErrCertRevoked   = errors.New("cardauth: the client certificate is revoked")
	ErrCRLUnusable   = errors.New("cardauth: the revocation list cannot be used")
)

// Verify checks chain (the leaf first, then intermediates, as the TLS
// handshake presented them) at now and returns the leaf.
func (v *CertVerifier) Verify(ctx context.Context, chain []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if v == nil || v.Roots == nil || v.CRL == nil {
		return nil, fmt.Errorf("%w: no cardholder CA configured", ErrCertUntrusted)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: none presented", ErrCertUntrusted)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	paths, err := leaf.Verify(x509.VerifyOptions{Roots: v.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertUntrusted, err)
	}
	crl, err := v.CRL(ctx)
	if err != nil || crl == nil {
		return nil, fmt.Errorf("%w: %v", ErrCRLUnusable, err)
	}
	if crl.NextUpdate.IsZero() || !now.Before(crl.NextUpdate) {
		return nil, fmt.Errorf("%w: stale (next update %s)", ErrCRLUnusable, crl.NextUpdate.Format(time.RFC3339))
	}
	// The leaf's issuer in the verified path signs the list.
	if len(paths) == 0 || len(paths[0]) < 2 {
		return nil, fmt.Errorf("%w: the certificate is a CA of its own", ErrCertUntrusted)
	}
	issuer := paths[0][1]
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("%w: not signed by the certificate's CA: %v", ErrCRLUnusable, err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return nil, ErrCertRevoked
		}
	}
	return leaf, nil
}
