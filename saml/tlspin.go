package saml

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// ErrPinMismatch: the server's TLS certificate is not one of the pinned ones.
var ErrPinMismatch = errors.New("kecis: the server's TLS certificate is not the one its metadata publishes")

// PinnedTLS is the TLS client configuration of the SOAP binding between
// participants: it presents cert (when given) and accepts only a server
// whose leaf certificate is one of pins — the certificates the server's
// metadata publishes. The federation, not a CA, is the trust anchor.
func PinnedTLS(cert tls.Certificate, pins []*x509.Certificate) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} // replaced by the pin check below
	if len(cert.Certificate) > 0 {
		tc.Certificates = []tls.Certificate{cert}
	}
	tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("kecis: the server presented no certificate")
		}
		for _, p := range pins {
			if bytes.Equal(p.Raw, raw[0]) {
				return nil
			}
		}
		return ErrPinMismatch
	}
	return tc
}

// ClientCertFingerprint is the [Fingerprint] of the TLS client certificate
// r was sent with, or "" when it came without one. The hub's router and
// operator API and a provider's back channel identify the caller by it
// (KECIS §10.1, §12).
func ClientCertFingerprint(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return Fingerprint(r.TLS.PeerCertificates[0])
}
