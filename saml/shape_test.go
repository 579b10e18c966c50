package saml

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/beevik/etree"
)

// TestVerifiedElementHasWholeText shows the second, independent defence
// against comment injection (KECIS §9.2): even when the comment refusal of
// step 3 is bypassed, the verified element is re-parsed from canonical
// bytes, so the consumed value is the whole signed string.
func TestVerifiedElementHasWholeText(t *testing.T) {
	w := newWorld(t)
	req := w.cancelRequest(t, "whole-text")
	req.IdempotencyKey = "alice@evil.com.attacker.com"
	data := bytes.Replace(signRequest(t, req, w.merchant.Signer), []byte("alice@evil.com.attacker.com"), []byte("alice@evil.com<!---->.attacker.com"), 1)

	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil { // no checkTokens
		t.Fatal(err)
	}
	root := doc.Root()
	if first, ok := root.FindElement("./kecis:IdempotencyKey").Child[0].(*etree.CharData); !ok || first.Data != "alice@evil.com" {
		t.Fatalf("precondition: the first text node should be the truncated value")
	}
	parts, err := checkShape(root, kindRequest)
	if err != nil {
		t.Fatal(err)
	}
	verified, _, err := verifySigned(root, parts, []*x509.Certificate{w.merchant.Cert}, w.clock.Now(), true)
	if err != nil {
		t.Fatalf("the comment does not break the signature, so this must verify: %v", err)
	}
	got, err := decodeRequest(verified)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdempotencyKey != "alice@evil.com.attacker.com" {
		t.Fatalf("consumed %q, want the whole signed value", got.IdempotencyKey)
	}
}

// TestNamespacesDeclaredOutsideRoot: a signed element that relies on a
// declaration of its container (a SOAP envelope, say) is refused (KECIS §2.5).
func TestNamespacesDeclaredOutsideRoot(t *testing.T) {
	w := newWorld(t)
	signed := parseRoot(t, signedCancel(t, w, "outside-ns"))
	// Move the saml declaration from the Issuer to a wrapper.
	wrapper := etree.NewElement("soap:Body")
	wrapper.CreateAttr("xmlns:soap", NSSOAP11)
	wrapper.CreateAttr("xmlns:saml", NSSAML)
	iss := child(signed, "Issuer")
	iss.RemoveAttr("xmlns:saml")
	signed.RemoveAttr("xmlns:saml")
	wrapper.AddChild(signed)
	_, err := checkShape(signed, kindRequest)
	if !errors.Is(err, ErrShape) {
		t.Fatalf("got %v, want shape refusal", err)
	}
}

func TestParseDocumentRefusals(t *testing.T) {
	for name, doc := range map[string]string{
		"two roots":            `<a/><b/>`,
		"text outside":         `<a/>x`,
		"pi inside":            `<a><?php x?></a>`,
		"pi outside":           `<?php x?><a/>`,
		"comment outside":      `<!-- c --><a/>`,
		"latin-1":              `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
		"duplicate attr":       `<a x="1" x="2"/>`,
		"empty":                ``,
		"unclosed":             `<a>`,
		"cdata ok but doctype": `<!DOCTYPE a><a/>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseDocument([]byte(doc), Limits{}); err == nil {
				t.Fatalf("accepted %q", doc)
			} else if AsError(err).Stage != BeforeVerification {
				t.Fatalf("wrong stage")
			}
		})
	}
	if _, err := ParseDocument([]byte(`<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<a x="1"><![CDATA[ok]]></a>`), Limits{}); err != nil {
		t.Fatalf("refused a plain document: %v", err)
	}
}
