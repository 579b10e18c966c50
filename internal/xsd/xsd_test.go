package xsd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/xsd"
	"github.com/kecis/kecis/internal/xsd/xsdtest"
)

// entity is a minimal valid SAML metadata document, over several lines so
// that line numbers mean something.
const entity = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="urn:kecis:test:a">
  <md:AttributeAuthorityDescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AttributeService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://a.example/soap"/>
  </md:AttributeAuthorityDescriptor>
</md:EntityDescriptor>`

// secret stands for a card number in a document: no Problem may repeat it.
const secret = "4111111111111111"

func TestValidate(t *testing.T) {
	v := xsdtest.Require(t)
	ctx := context.Background()
	ps, err := v.Validate(ctx, []byte(entity))
	if err != nil || ps != nil {
		t.Fatalf("a valid descriptor: %v, %v", ps, err)
	}

	// A bad attribute value on line 1, an unknown child on line 3.
	bad := strings.Replace(entity, `entityID="urn:kecis:test:a"`, `entityID="urn:kecis:test:a" validUntil="`+secret+`"`, 1)
	bad = strings.Replace(bad, "<md:AttributeService ", "<md:Unknown/><md:AttributeService ", 1)
	ps, err = v.Validate(ctx, []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Line != 1 || !strings.Contains(ps[0].Message, "validUntil") || ps[1].Line != 3 || !strings.Contains(ps[1].Message, "Unknown") {
		t.Fatalf("problems: %q", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.Message, secret) {
			t.Errorf("the message repeats the value: %s", p)
		}
	}

	// Not well-formed: the problem has the line, and libxml2's echo of the
	// document's line (with its content) is not kept.
	ps, err = v.Validate(ctx, []byte("<a>\n<b>"+secret+"</c></a>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 || ps[0].Line != 2 || !strings.Contains(ps[0].Message, "parser error") {
		t.Fatalf("not well-formed: %q", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.Message, secret) {
			t.Errorf("the message repeats the document: %s", p)
		}
	}

	// An entity reference: libxml2 cannot validate it, so it is invalid
	// (a problem of the document, not an error of the run).
	ps, err = v.Validate(ctx, []byte("<!DOCTYPE a [<!ENTITY e \"x\">]>\n"+strings.Replace(entity, `</md:AttributeAuthorityDescriptor>`, `</md:AttributeAuthorityDescriptor><md:Organization><md:OrganizationName xml:lang="en">&e;</md:OrganizationName></md:Organization>`, 1)))
	if err != nil || len(ps) == 0 || !strings.Contains(strings.ToLower(ps[len(ps)-1].Message), "internal error") {
		t.Fatalf("an entity reference: %q, %v", ps, err)
	}

	// A root the schemas do not declare.
	ps, err = v.Validate(ctx, []byte(`<x:Foo xmlns:x="urn:kecis:test:none"/>`))
	if err != nil {
		t.Fatal(err)
	}
	if !xsd.NoSchema(ps) {
		t.Fatalf("an undeclared root: %q", ps)
	}
}

// TestValidateFiles: more files than one batch; the valid ones have no
// entry, every invalid one its problems.
func TestValidateFiles(t *testing.T) {
	v := xsdtest.Require(t)
	dir := t.TempDir()
	var paths []string
	invalid := map[string]bool{}
	for i := range xsd.BatchSize + 3 {
		doc := strings.Replace(entity, "urn:kecis:test:a", fmt.Sprintf("urn:kecis:test:%d", i), 1)
		if i%150 == 7 {
			doc = strings.Replace(doc, "protocolSupportEnumeration=", "protocolSupport=", 1)
		}
		// A colon in the name: xmllint's "PATH:LINE:" is read by path.
		p := filepath.Join(dir, fmt.Sprintf("doc:%03d.xml", i))
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		if i%150 == 7 {
			invalid[p] = true
		}
	}
	res, err := v.ValidateFiles(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(invalid) {
		t.Fatalf("%d invalid files reported, want %d: %v", len(res), len(invalid), res)
	}
	for p := range invalid {
		if ps := res[p]; len(ps) == 0 || ps[0].Line != 2 {
			t.Errorf("%s: %q", p, ps)
		}
	}
	if _, err := v.ValidateFiles(context.Background(), []string{filepath.Join(dir, "missing.xml")}); err == nil {
		t.Fatal("a missing file passed")
	}
	if _, err := v.ValidateFiles(context.Background(), []string{"-"}); err == nil {
		t.Fatal("a path '-' was accepted")
	}
}

func TestRootKind(t *testing.T) {
	for _, tc := range []struct{ doc, ns, local string }{
		{entity, "urn:oasis:names:tc:SAML:2.0:metadata", "EntityDescriptor"},
		{`<?xml version="1.0"?><!-- c --><ServiceRequest xmlns="urn:kecis:protocol:1.0" ID="a"/>`, "urn:kecis:protocol:1.0", "ServiceRequest"},
		{`<Ecom><Ecom_SchemaVersion/></Ecom>`, "", "Ecom"},
	} {
		ns, local, err := xsd.RootKind([]byte(tc.doc))
		if err != nil || ns != tc.ns || local != tc.local {
			t.Errorf("%.40s: {%s}%s, %v", tc.doc, ns, local, err)
		}
	}
	for _, doc := range []string{"", "not xml", `<p:a/>`, "<!-- only -->"} {
		if ns, local, err := xsd.RootKind([]byte(doc)); err == nil {
			t.Errorf("%q: {%s}%s", doc, ns, local)
		}
	}
}

func TestHasSchema(t *testing.T) {
	xsdtest.Require(t)
	for _, tc := range []struct {
		ns, local string
		want      bool
	}{
		{"urn:oasis:names:tc:SAML:2.0:metadata", "EntityDescriptor", true},
		{"urn:oasis:names:tc:SAML:2.0:metadata", "EntitiesDescriptor", true},
		{"urn:oasis:names:tc:SAML:2.0:protocol", "Response", true},
		{"urn:oasis:names:tc:SAML:2.0:metadata", "NoSuchThing", false},
		{"urn:kecis:test:none", "Foo", false},
		{"", "NoSuchRoot", false},
	} {
		if got := xsd.HasSchema(tc.ns, tc.local); got != tc.want {
			t.Errorf("HasSchema(%q, %q) = %v", tc.ns, tc.local, got)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, msg := range []string{
		"Element '{urn:x}Amount': [facet 'pattern'] The value '" + secret + "' is not accepted by the pattern '[0-9]{1,3}'.",
		"Element '{urn:x}Amount': '" + secret + "' is not a valid value of the atomic type 'xs:integer'.",
		"Element '{urn:x}A', attribute 'validUntil': '" + secret + "' is not a valid value of the atomic type 'xs:dateTime'.",
		"Element '{urn:x}Code': [facet 'length'] The value '" + secret + "' has a length of '16'; this differs from the allowed length of '4'.",
		"Element '{urn:x}Kind': [facet 'enumeration'] The value '" + secret + "' is not an element of the set {'a', 'b'}.",
		"Element '{urn:x}N': [facet 'maxInclusive'] The value '" + secret + "' is greater than the maximum value allowed ('9').",
		"Element '{urn:x}A': Duplicate key-sequence ['" + secret + "'] in unique identity-constraint '{urn:x}u'.",
		"Element '{urn:x}F': The value '" + secret + "' does not match the fixed value constraint 'x'.",
		"Element '{urn:x}Q': The value 'it's " + secret + "' is not accepted by the pattern 'x'.",
	} {
		got := xsd.Redact(msg)
		if strings.Contains(got, secret) || !strings.Contains(got, "{urn:x}") {
			t.Errorf("Redact(%q) = %q", msg, got)
		}
	}
	// Names, types and facets stay.
	const keep = "Element '{urn:x}Foo': This element is not expected. Expected is ( {urn:x}Bar )."
	if got := xsd.Redact(keep); got != keep {
		t.Errorf("Redact(%q) = %q", keep, got)
	}
}

// TestAvailable: without xmllint on PATH, Available says which packages
// to install, and a Validator says the same.
func TestAvailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := xsd.Available()
	if err == nil || !strings.Contains(err.Error(), xsd.Packages) {
		t.Fatalf("Available without xmllint: %v", err)
	}
	if _, err := (&xsd.Validator{}).Validate(context.Background(), []byte(entity)); err == nil || !strings.Contains(err.Error(), "libxml2-utils") {
		t.Fatalf("Validate without xmllint: %v", err)
	}
}
