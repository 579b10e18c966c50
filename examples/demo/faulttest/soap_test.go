package faulttest

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// capture is a transport that keeps the last SOAP message sent through it
// (body and headers), to send it again elsewhere.
type capture struct {
	base http.RoundTripper
	mu   sync.Mutex
	body []byte
	hdr  http.Header
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasSuffix(r.URL.Path, "/kecis/soap") {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.body, c.hdr = b, r.Header.Clone()
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return c.base.RoundTrip(r)
}

func (c *capture) last() ([]byte, http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.body, c.hdr
}

// soapClient is m's SOAP client through hubURL (a replica), whose
// transport keeps the last message sent, and m's TLS client key pair.
func (f *fed) soapClient(m *demo.Merchant, hubURL string) (*card.Client, *capture, tls.Certificate) {
	t := f.t
	t.Helper()
	var kp [3]tls.Certificate
	var certs [3]*x509.Certificate
	for i, k := range []string{"signing", "encryption", "tls"} {
		var err error
		if kp[i], err = tls.LoadX509KeyPair(filepath.Join(m.Dir, k, "cert.pem"), filepath.Join(m.Dir, k, "key.pem")); err != nil {
			t.Fatal(err)
		}
		if certs[i], err = x509.ParseCertificate(kp[i].Certificate[0]); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := saml.NewSigner(kp[0].PrivateKey.(crypto.Signer), certs[0])
	if err != nil {
		t.Fatal(err)
	}
	hubSigning := loadCert(t, f.d.HubSigningCert)
	capt := &capture{base: &http.Transport{TLSClientConfig: saml.PinnedTLS(kp[2], []*x509.Certificate{f.hubTLS})}}
	dir := &metadata.Client{HubURL: hubURL, HubCerts: []*x509.Certificate{hubSigning}, HTTP: f.client}
	c, err := connectors.NewClient(connectors.ClientConfig{EntityID: m.EntityID, Signer: signer, Directory: dir,
		Decryption:  []saml.DecryptionKey{{Cert: certs[1], Key: kp[1].PrivateKey.(crypto.Decrypter)}},
		HubEntityID: demo.HubID, HubURL: hubURL, HTTP: &http.Client{Timeout: 20 * time.Second, Transport: capt}, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &card.Client{C: c}, capt, kp[2]
}

// loadCert reads the first certificate of a PEM file.
func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := saml.ParseCertificatesPEM(b)
	if err != nil || len(cs) == 0 {
		t.Fatalf("%s: %v", path, err)
	}
	return cs[0]
}

// postSOAP sends body with hdr to base's SOAP endpoint as the holder of
// cert, and returns the answer.
func (f *fed) postSOAP(base string, cert tls.Certificate, body []byte, hdr http.Header) (int, []byte) {
	t := f.t
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/kecis/soap", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := f.httpClient(cert).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
