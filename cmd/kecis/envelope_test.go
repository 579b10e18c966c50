package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

const (
	keysDir     = "../../saml/testdata/keys"
	destination = "https://issuer.example/kecis/soap"
	nowFlag     = "2026-11-22T10:00:00Z"
)

func keyPath(name string) string  { return filepath.Join(keysDir, name+".key.pem") }
func certPath(name string) string { return filepath.Join(keysDir, name+".cert.pem") }

// unsignedRequest builds a card cancellation from the merchant, unsigned.
func unsignedRequest(t *testing.T) *etree.Element {
	t.Helper()
	b := &saml.Builder{Issuer: "https://merchant.example/kecis", Now: func() time.Time { return testutil.FixedNow }, IDs: saml.IDSource{Rand: testutil.NewDetRand("cli")}}
	req, err := b.NewRequest(destination, saml.ServiceURI("card", "cancel"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "order-1-cancel"
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0"><Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="ORDER-1"><Transaction Amount="15000" Currency="KRW" Type="credit"><Id Reference="APV0001"/></Transaction></Ecom></kecis:Payload>`); err != nil {
		t.Fatal(err)
	}
	if req.Payload, err = ecml.ParsePayload(doc.Root()); err != nil {
		t.Fatal(err)
	}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func kecis(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestXMLSecInterop proves the signature profile against xmlsec1, the C
// reference implementation, in both directions and for both key types.
func TestXMLSecInterop(t *testing.T) {
	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	unsigned, err := saml.Serialize(unsignedRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []struct{ name, method string }{
		{"merchant-rsa", saml.AlgRSASHA256},
		{"merchant-ec", saml.AlgECDSASHA256},
	} {
		t.Run(key.name+"/kecis-signs-xmlsec1-verifies", func(t *testing.T) {
			code, signed, stderr := kecis(t, unsigned, "envelope", "sign", "--key", keyPath(key.name), "--cert", certPath(key.name))
			if code != 0 {
				t.Fatalf("kecis envelope sign: %d %s", code, stderr)
			}
			f := writeTemp(t, "signed.xml", []byte(signed))
			cmd := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", certPath(key.name),
				"--id-attr:ID", "urn:kecis:protocol:1.0:ServiceRequest", "--enabled-reference-uris", "same-doc", f)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("xmlsec1 --verify refused our signature: %v\n%s\n%s", err, out, signed)
			}
			// The check is not vacuous: xmlsec1 refuses a tampered copy.
			tampered := writeTemp(t, "tampered.xml", []byte(strings.Replace(signed, `Amount="15000"`, `Amount="15001"`, 1)))
			if out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", certPath(key.name),
				"--id-attr:ID", "urn:kecis:protocol:1.0:ServiceRequest", tampered).CombinedOutput(); err == nil {
				t.Fatalf("xmlsec1 accepted a tampered message:\n%s", out)
			}
			// Our own verifier agrees.
			if code, _, stderr := kecis(t, []byte(signed), "envelope", "verify", "--trust", certPath(key.name), "--now", nowFlag, "--destination", destination); code != 0 {
				t.Fatalf("kecis envelope verify: %s", stderr)
			}
		})
		t.Run(key.name+"/xmlsec1-signs-kecis-verifies", func(t *testing.T) {
			tmpl := signatureTemplate(t, key.method)
			f := writeTemp(t, "tmpl.xml", tmpl)
			out := filepath.Join(t.TempDir(), "out.xml")
			cmd := exec.Command(xmlsec, "--sign", "--privkey-pem", keyPath(key.name)+","+certPath(key.name),
				"--id-attr:ID", "urn:kecis:protocol:1.0:ServiceRequest", "--output", out, f)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("xmlsec1 --sign: %v\n%s", err, b)
			}
			signed, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			code, verified, stderr := kecis(t, signed, "envelope", "verify", "--trust", certPath(key.name), "--now", nowFlag, "--destination", destination)
			if code != 0 {
				t.Fatalf("kecis envelope verify refused xmlsec1's signature: %s\n%s", stderr, signed)
			}
			if !strings.Contains(verified, "order-1-cancel") || strings.Contains(verified, "SignatureValue") {
				t.Fatalf("verify printed something else than the verified element without its signature:\n%s", verified)
			}
			// A wrong trust anchor is refused, with the category only.
			code, _, stderr = kecis(t, signed, "envelope", "verify", "--trust", certPath("attacker-rsa"), "--now", nowFlag)
			if code != 1 || strings.TrimSpace(stderr) != "refused: message could not be verified" {
				t.Fatalf("untrusted key: exit %d, stderr %q", code, stderr)
			}
		})
	}
}

// signatureTemplate is the unsigned request with an xmlsec1 signature
// template where the profile puts the signature.
func signatureTemplate(t *testing.T, method string) []byte {
	t.Helper()
	root := unsignedRequest(t)
	id := root.SelectAttrValue("ID", "")
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", saml.NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", saml.AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", method)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	tr := ref.CreateElement("ds:Transforms")
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", saml.AlgEnveloped)
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", saml.AlgExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", saml.AlgSHA256)
	ref.CreateElement("ds:DigestValue")
	sig.CreateElement("ds:SignatureValue")
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	root.InsertChildAt(1, sig)
	b, err := saml.Serialize(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
