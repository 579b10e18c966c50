package saml

import (
	"crypto/x509"
	"testing"
)

func TestVerifyElementMetadataLike(t *testing.T) {
	withoutCapture(t) // signs a descriptor without a role, which the schema refuses
	w := newWorld(t)
	doc := `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_m1" entityID="https://issuer.example/kecis"><md:Extensions/></md:EntityDescriptor>`
	root, err := ParseDocument([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.issuer.Signer.Sign(root); err != nil {
		t.Fatal(err)
	}
	if root.ChildElements()[0].Tag != "Signature" {
		t.Fatal("metadata signature must be the first child")
	}
	data := ser(t, root)
	r2, _ := ParseDocument(data, Limits{})
	if _, _, err := VerifyElement(r2, []*x509.Certificate{w.issuer.Cert}, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r3, _ := ParseDocument(data, Limits{})
	if _, _, err := VerifyElement(r3, []*x509.Certificate{w.merchant.Cert}, w.clock.Now()); err == nil {
		t.Fatal("wrong key accepted")
	}
}
