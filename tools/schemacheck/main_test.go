package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/xsd/xsdtest"
)

const descriptor = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="urn:kecis:test:a">
  <md:AttributeAuthorityDescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AttributeService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://a.example/soap"/>
  </md:AttributeAuthorityDescriptor>
</md:EntityDescriptor>`

// TestRun: valid documents pass with their counts per root kind; an
// invalid one, a root no schema declares and a file that is not XML each
// fail the run, named.
func TestRun(t *testing.T) {
	xsdtest.Require(t)
	dir := t.TempDir()
	write := func(name, doc string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.xml", descriptor)
	write("b.xml", strings.Replace(descriptor, ":a", ":b", 1))
	write(".capture-123", "half a docu") // the hook's temporary file: not read
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"-java=false", dir}, &out, &errOut); code != 0 {
		t.Fatalf("valid: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "2  {urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor") || !strings.Contains(out.String(), "every document valid") {
		t.Fatalf("valid: %s", out.String())
	}

	write("c.xml", strings.Replace(descriptor, "protocolSupportEnumeration", "protocols", 1))
	write("d.xml", `<x:Unknown xmlns:x="urn:kecis:test:none"/>`)
	write("e.xml", "not xml")
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"-java=false", dir}, &out, &errOut); code != 1 {
		t.Fatalf("invalid: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"c.xml ({urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor):", "line 2:", "no schema declares the root {urn:kecis:test:none}Unknown", "e.xml ():", "not XML", "3 invalid documents, 1 root kinds without a schema"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, errOut.String())
		}
	}

	if code := run(context.Background(), nil, &out, &errOut); code != 2 {
		t.Errorf("no DIR: exit %d", code)
	}
}
