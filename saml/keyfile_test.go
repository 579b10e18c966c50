package saml

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDecryptionKey(t *testing.T) {
	key := func(name string) string { return filepath.Join("testdata", "keys", name+".key.pem") }
	cert := func(name string) string { return filepath.Join("testdata", "keys", name+".cert.pem") }

	dk, err := LoadDecryptionKey(key("issuer-rsa"), cert("issuer-rsa"))
	if err != nil || dk.Cert == nil || dk.Key == nil || !publicKeysEqual(dk.Key.Public(), dk.Cert.PublicKey) {
		t.Fatalf("key and certificate: %+v, %v", dk, err)
	}
	if dk, err := LoadDecryptionKey(key("issuer-rsa"), ""); err != nil || dk.Cert != nil || dk.Key == nil {
		t.Fatalf("the key alone: %+v, %v", dk, err)
	}
	for name, c := range map[string]struct{ key, cert, want string }{
		"another key's certificate": {key("issuer-rsa"), cert("merchant-rsa"), "does not match"},
		"an ECDSA key":              {key("issuer-ec"), cert("issuer-ec"), "cannot decrypt"},
		"no key file":               {key("nobody"), cert("issuer-rsa"), "no such file"},
		"a certificate as the key":  {cert("issuer-rsa"), cert("issuer-rsa"), "no private key"},
	} {
		if _, err := LoadDecryptionKey(c.key, c.cert); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
