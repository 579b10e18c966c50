package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/xsd/xsdtest"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// TestMetadataSchema: what the demo federation's hub publishes — the
// signed aggregate (GET /kecis/metadata) and every participant's
// descriptor from the Metadata Query endpoint, the hub's own among them —
// is valid against the KECIS 1.0 XML Schemas
// (docs/spec/schema), checked with xmllint.
func TestMetadataSchema(t *testing.T) {
	v := xsdtest.Require(t)
	dir := t.TempDir()
	d, err := Start(context.Background(), Config{Dir: dir, Tester: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ca, err := os.ReadFile(d.HubTLSCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get(d.HubURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, b)
		}
		return b
	}

	out := t.TempDir()
	var paths []string
	save := func(name string, b []byte) {
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	agg := get(metadata.AggregatePath)
	save("aggregate.xml", agg)
	pem, err := os.ReadFile(d.HubSigningCert)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	a, err := metadata.VerifyAggregate(agg, certs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entities) < 8 {
		t.Fatalf("the demo's aggregate lists %d participants", len(a.Entities))
	}
	for i, ed := range a.Entities {
		save(fmt.Sprintf("mdq-%02d.xml", i), get(metadata.EntitiesPath+metadata.EncodeMDQ(ed.EntityID)))
	}
	res, err := v.ValidateFiles(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	for p, ps := range res {
		for _, pr := range ps {
			t.Errorf("%s: %s", filepath.Base(p), pr)
		}
	}
	t.Logf("the aggregate (%d participants, %d bytes) and %d Metadata Query documents: valid", len(a.Entities), len(agg), len(paths)-1)
}
