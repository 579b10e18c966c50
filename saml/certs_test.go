package saml

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http/httptest"
	"testing"
)

func TestFingerprint(t *testing.T) {
	c := loadParty(t, "merchant-rsa", merchantID).Cert
	sum := sha256.Sum256(c.Raw)
	if got, want := Fingerprint(c), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Fingerprint = %s, want %s", got, want)
	}
}

func TestClientCertFingerprint(t *testing.T) {
	c := loadParty(t, "issuer-ec", issuerID).Cert
	r := httptest.NewRequest("POST", "https://hub.example/kecis/soap", nil)
	if got := ClientCertFingerprint(r); got != "" {
		t.Fatalf("no TLS: %q, want \"\"", got)
	}
	r.TLS = &tls.ConnectionState{}
	if got := ClientCertFingerprint(r); got != "" {
		t.Fatalf("TLS without a client certificate: %q, want \"\"", got)
	}
	r.TLS.PeerCertificates = []*x509.Certificate{c, loadParty(t, "merchant-rsa", merchantID).Cert}
	if got := ClientCertFingerprint(r); got != Fingerprint(c) {
		t.Fatalf("the leaf's fingerprint: %q, want %q", got, Fingerprint(c))
	}
}
