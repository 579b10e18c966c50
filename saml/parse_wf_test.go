package saml

import (
	"errors"
	"strings"
	"testing"
)

// issue12Item9 is the input on which FuzzCanonicalizeExclusive failed
// (testdata/fuzz/FuzzCanonicalizeExclusive/issue12-item9): encoding/xml
// read it, and we canonicalised a:0 as an attribute in no namespace.
const issue12Item9 = `<A xmlns00="00000" xmlns:a="" a:0="0"A0="0"/>`

// TestParseRefusesIssue12Item9: the fuzzed document is refused, and so is
// each of its three faults on its own; its fourth oddity, the attribute
// xmlns00, is only a reserved name and stays accepted.
func TestParseRefusesIssue12Item9(t *testing.T) {
	if _, err := ParseDocument([]byte(issue12Item9), Limits{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("issue 12 item 9 input: %v, want malformed", err)
	}
	for _, c := range []struct{ doc, cause string }{
		{`<A A0="0"B0="0"/>`, "no white space before attribute"},
		{`<A xmlns:a="urn:a" a:b="0"A0="0"/>`, "no white space before attribute"},
		{`<A xmlns:a=""/>`, "cannot be undeclared"},
		{`<A xmlns:a="urn:a" a:0="0"/>`, "not a qualified name"},
	} {
		_, err := ParseDocument([]byte(c.doc), Limits{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(AsError(err).Cause().Error(), c.cause) {
			t.Errorf("%s: %v, want malformed (%s)", c.doc, causeOf(err), c.cause)
		}
	}
	// Names beginning with "xml" are reserved, and Namespaces in XML §3
	// says processors must not treat them as fatal errors: xmlns00 is an
	// ordinary attribute for us, goxmldsig and xmlsec1 alike.
	root, err := ParseDocument([]byte(`<A xmlns00="00000" xmlns:a="urn:a" a:b="0" A0="0"/>`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	const want = `<A xmlns:a="urn:a" A0="0" xmlns00="00000" a:b="0"></A>`
	if got := string(CanonicalizeExclusive(root, nil)); got != want {
		t.Fatalf("c14n %s, want %s", got, want)
	}
	if g, ok := goxmldsigExcC14N(t, root); !ok || string(g) != want {
		t.Fatalf("goxmldsig %s, want %s", g, want)
	}
}

func causeOf(err error) string {
	if err == nil {
		return "accepted"
	}
	if c := AsError(err).Cause(); c != nil {
		return err.Error() + ": " + c.Error()
	}
	return err.Error()
}

// TestParseRefusesNotWellFormed: what encoding/xml reads although XML 1.0
// with Namespaces 1.0 says it is not well-formed, or Canonical XML must fail
// on, is refused before anything else sees it.
func TestParseRefusesNotWellFormed(t *testing.T) {
	for _, c := range []struct{ doc, cause string }{
		// XML 1.0 §3.1: white space between attributes.
		{`<a b="1"c="2"/>`, "no white space"},
		{`<a b='1'c="2"></a>`, "no white space"},
		{`<r><a xmlns:p="urn:p" p:b="1"p:c="2"/></r>`, "no white space"},
		// QNames: both parts NCNames.
		{`<a:0 xmlns:a="urn:a"/>`, "not a qualified name"},
		{`<a xmlns:a="urn:a" a:-b="1"/>`, "not a qualified name"},
		{`<a xmlns:a="urn:a" a:.b="1"/>`, "not a qualified name"},
		{`<a xmlns:0="urn:a"/>`, "not a qualified name"},
		// Namespace constraints (Namespaces in XML 1.0 §3).
		{`<a xmlns:p=""/>`, "cannot be undeclared"},
		{`<a xmlns:p="urn:p"><b xmlns:p=""/></a>`, "cannot be undeclared"},
		{`<p:a/>`, `prefix "p" of element`},
		{`<a p:b="1"/>`, `prefix "p" of attribute`},
		{`<r><p:a xmlns:p="urn:p"/><p:b/></r>`, `prefix "p" of element`},
		{`<xmlns:a/>`, "prefix xmlns"},
		{`<a xmlns:xmlns="urn:x"/>`, "xmlns must not be declared"},
		{`<a xmlns:xml="urn:x"/>`, "prefix xml can be bound only"},
		{`<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>`, "only to the prefix xml"},
		{`<a xmlns="http://www.w3.org/XML/1998/namespace"/>`, "only to the prefix xml"},
		{`<a xmlns:p="http://www.w3.org/2000/xmlns/"/>`, "must not be declared"},
		{`<a xmlns="http://www.w3.org/2000/xmlns/"/>`, "must not be declared"},
		// Attributes unique by expanded name.
		{`<a xmlns:p="urn:x" xmlns:q="urn:x" p:b="1" q:b="2"/>`, "expanded name"},
		{`<a xmlns:p="urn:x"><b xmlns:q="urn:x" p:c="1" q:c="2"/></a>`, "expanded name"},
		{`<a a1="" a2="" a3="" a4="" a5="" a6="" a7="" a8="" xmlns:p="urn:x" xmlns:q="urn:x" p:c="1" q:c="2"/>`, "expanded name"},
		{`<a a1="" a2="" a3="" a4="" a5="" a6="" a7="" a8="" a9="" a1=""/>`, "duplicate attribute a1"},
		{`<a xmlns="urn:x" xmlns="urn:y"/>`, "duplicate attribute xmlns"},
		{`<a xmlns:p="urn:x" xmlns:p="urn:y"/>`, "duplicate attribute xmlns:p"},
		// Canonical XML 1.0 §2: relative namespace URIs fail (xmlsec1 does).
		{`<a xmlns="foo"/>`, "not an absolute URI"},
		{`<a xmlns:p="foo" p:b="1"/>`, "not an absolute URI"},
		{`<a xmlns:p="urn:a b"/>`, "not an absolute URI"},
		{`<a xmlns:p=":x"/>`, "not an absolute URI"},
		{"<a xmlns:p=\"urn:a\tb\"/>", "not an absolute URI"},
		// XML 1.0 §2.8: the XML declaration.
		{`<?xml encoding="UTF-8"?><a/>`, "version"},
		{`<?xml version="1.0"encoding="UTF-8"?><a/>`, "no white space"},
		{`<?xml encoding="UTF-8" version="1.0"?><a/>`, "version must come first"},
		{`<?xml version="1.0" standalone="yes" encoding="UTF-8"?><a/>`, "misplaced"},
		{`<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, "UTF-8"},
		{`<?xml version="1.0" standalone="maybe"?><a/>`, "standalone"},
		{`<?xml version="1.0" foo="bar"?><a/>`, "misplaced"},
	} {
		_, err := ParseDocument([]byte(c.doc), Limits{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(AsError(err).Cause().Error(), c.cause) {
			t.Errorf("%s: %s, want malformed (%s)", c.doc, causeOf(err), c.cause)
		}
	}
}

// TestParseAcceptsWellFormed: the checks refuse nothing XML with
// namespaces allows and KECIS messages or metadata may hold.
func TestParseAcceptsWellFormed(t *testing.T) {
	for _, doc := range []string{
		`<a/>`,
		`<?xml version="1.0"?><a/>`,
		`<?xml version='1.0' encoding='utf-8' standalone='no'?>` + "\n<a/>\n",
		"<?xml version = \"1.0\"\tencoding=\"UTF-8\" ?><a/>",
		"<a\n  b = \"1\"\tc='2'\r\n d=\"&gt;/&quot;'\" />",
		`<a b="1" c="a > b"></a >`,
		`<a xml:lang="ko" xml:space="preserve"><xml:b/></a>`,
		`<a xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:lang="ko"/>`,
		`<a xmlns=""/>`,
		`<a xmlns="urn:d"><b xmlns=""/></a>`,
		`<xmlfoo:a xmlns:xmlfoo="urn:x" xmlfoo:b="1" xmlns00="0" xmlbar="1"/>`,
		`<a xmlns:p="urn:x" xmlns:q="urn:y" p:b="1" q:b="2"/>`,
		`<a xmlns:p="urn:x"><p:b xmlns:p="urn:y" p:c="1"/><p:d/></a>`,
		`<a xmlns:p="https://example.com/ns?x=1#f" xmlns:q="urn:oasis:names:tc:SAML:2.0:assertion"/>`,
		`<é xmlns:ü="urn:u" ü:ñ="1" _.-·="2"/>`,
		`<a><![CDATA[<b c="1"d="2">]]></a>`,
		`<a b="&lt;c d=&quot;1&quot;e=&quot;2&quot;>"/>`,
	} {
		if _, err := ParseDocument([]byte(doc), Limits{}); err != nil {
			t.Errorf("%q: %s", doc, causeOf(err))
		}
	}
}

// TestParseNormalisesAttributeValues: XML 1.0 §3.3.3 turns every raw tab,
// line feed and carriage return (a CR LF pair counting as one) in an
// attribute value into a space; a character reference keeps its character.
// encoding/xml does not, so ParseDocument does: otherwise a value wrapped
// over lines would canonicalise to x&#xA;y here and to "x y" in xmlsec1.
func TestParseNormalisesAttributeValues(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"<a b=\"x\ty\"/>", "x y"},
		{"<a b=\"x\ny\"/>", "x y"},
		{"<a b=\"x\r\ny\"/>", "x y"},
		{"<a b=\"x\ry\"/>", "x y"},
		{"<a b=\"x\r\r\ny\"/>", "x  y"},
		{"<a b=\" 404143\n        411111 \"/>", " 404143         411111 "},
		{"<a b='&#9;x&#10;&#13;\ty&#xA;&amp;&lt;&gt;&quot;&apos;'/>", "\tx\n\r y\n&<>\"'"},
		{"<a b=\"x&#x1F600;\ny\"/>", "x\U0001F600 y"},
	} {
		root, err := ParseDocument([]byte(c.doc), Limits{})
		if err != nil {
			t.Errorf("%q: %s", c.doc, causeOf(err))
			continue
		}
		if got := root.SelectAttrValue("b", ""); got != c.want {
			t.Errorf("%q: value %q, want %q", c.doc, got, c.want)
		}
	}
}
