package conformance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/xsd/xsdtest"
	"github.com/kecis/kecis/saml"
)

// TestCheckSchema: the schema check passes the golden response, fails an
// edited one naming the line and the element, and fails a document of
// another root; it never passes a document it could not validate.
func TestCheckSchema(t *testing.T) {
	xsdtest.Require(t)
	good, err := os.ReadFile(filepath.Join("..", "saml", "testdata", "golden", "response-rsa.xml"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(doc []byte) (*C, error) {
		c := &C{Env: &Env{}, ctx: context.Background(), state: map[string]any{}}
		return c, checkSchema(c, doc, saml.NSKECIS, "ServiceResponse", "kecis.xsd", "kecis:ServiceResponseType")
	}
	if c, err := run(good); err != nil {
		t.Fatalf("the golden response: %v", err)
	} else if len(c.evidence) == 0 || !strings.Contains(c.evidence[0].Content, "kecis:ServiceResponseType") {
		t.Errorf("no note of the validation: %+v", c.evidence)
	}
	// A second-level status code without its top-level one: the status
	// is out of SAML's shape.
	bad := bytes.Replace(good, []byte("<samlp:Status>"), []byte("<samlp:Status>\n<samlp:Bogus/>"), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("the golden response has no <samlp:Status>")
	}
	_, err = run(bad)
	if err == nil || !strings.Contains(err.Error(), "Bogus") || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "kecis.xsd") {
		t.Errorf("an unknown element in the status: %v", err)
	}
	req, err := os.ReadFile(filepath.Join("..", "saml", "testdata", "golden", "request-rsa.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(req); err == nil || !strings.Contains(err.Error(), "ServiceRequest") {
		t.Errorf("a request where a response belongs: %v", err)
	}
	if _, err := run([]byte("<kecis:ServiceResponse")); err == nil {
		t.Error("a document that does not parse passed")
	}
}
