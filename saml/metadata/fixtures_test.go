package metadata_test

import (
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const keysDir = "../../saml/testdata/keys"

func certPath(name string) string { return filepath.Join(keysDir, name+".cert.pem") }

func loadSigner(t testing.TB, name string) *saml.Signer {
	t.Helper()
	s, err := saml.LoadSigner(filepath.Join(keysDir, name+".key.pem"), certPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	c, err := saml.LoadCertificates(certPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// hub is the federation hub's metadata signer (issuer-rsa plays the hub).
func hub(t testing.TB) *saml.Signer { return loadSigner(t, "issuer-rsa") }

var now = testutil.FixedNow

// participants are the 1,000 generated participants, shared by every test
// of the package (generating them takes a few milliseconds, but their
// descriptors are compared and signed many times).
var participants = sync.OnceValue(func() []*metadata.EntityDescriptor {
	return metadatatest.GenerateParticipants(1000, 2026)
})

// withValidity returns a copy of ed with validUntil and cacheDuration.
func withValidity(ed *metadata.EntityDescriptor, validFor, cache time.Duration) *metadata.EntityDescriptor {
	c := *ed
	c.ValidUntil, c.CacheDuration = now.Add(validFor), cache
	return &c
}
