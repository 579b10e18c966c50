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

// kecisAt is kecis with the clock stopped at now and deterministic
// randomness (the IDs envelope sign gives).
func kecisAt(t *testing.T, now time.Time, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runEnv(env{now: func() time.Time { return now }, rand: testutil.NewDetRand(t.Name())}, args, bytes.NewReader(stdin), &out, &errb)
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
			code, signed, stderr := kecisAt(t, testutil.FixedNow, unsigned, "envelope", "sign", "--key", keyPath(key.name), "--cert", certPath(key.name))
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

// TestEnvelopeSignFreshens: envelope sign gives the template a fresh ID and
// an IssueInstant of its clock, so that signing one template twice makes
// two messages a receiver accepts; --keep signs the template's own.
func TestEnvelopeSignFreshens(t *testing.T) {
	tmpl := unsignedRequest(t)
	oldID := tmpl.SelectAttrValue("ID", "")
	unsigned, err := saml.Serialize(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	later := testutil.FixedNow.Add(time.Hour)
	sign := func(extra ...string) *etree.Element {
		t.Helper()
		args := append([]string{"envelope", "sign", "--key", keyPath("merchant-ec"), "--cert", certPath("merchant-ec")}, extra...)
		code, out, stderr := kecisAt(t, later, unsigned, args...)
		if code != 0 {
			t.Fatalf("sign %v: exit %d: %s", extra, code, stderr)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromString(out); err != nil {
			t.Fatal(err)
		}
		// The receiver accepts it at the signer's clock.
		if code, _, stderr := kecis(t, []byte(out), "envelope", "verify", "--trust", certPath("merchant-ec"), "--now", later.Format(time.RFC3339)); code != 0 && len(extra) == 0 {
			t.Fatalf("verify: exit %d: %s", code, stderr)
		}
		return doc.Root()
	}
	a := sign()
	if id := a.SelectAttrValue("ID", ""); id == oldID || !strings.HasPrefix(id, "_") || len(id) != 33 {
		t.Errorf("ID %q: want a fresh one (the template's is %q)", id, oldID)
	}
	if got := a.SelectAttrValue("IssueInstant", ""); got != later.Format(saml.TimeLayout) {
		t.Errorf("IssueInstant %q, want the clock's %q", got, later.Format(saml.TimeLayout))
	}
	// Twice, with the real randomness: two different IDs.
	var ids []string
	for range 2 {
		code, out, stderr := kecis(t, unsigned, "envelope", "sign", "--key", keyPath("merchant-ec"), "--cert", certPath("merchant-ec"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromString(out); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, doc.Root().SelectAttrValue("ID", ""))
	}
	if ids[0] == ids[1] {
		t.Errorf("one template signed twice gave the same ID %s", ids[0])
	}
	k := sign("--keep")
	if k.SelectAttrValue("ID", "") != oldID || k.SelectAttrValue("IssueInstant", "") != testutil.FixedNow.Format(saml.TimeLayout) {
		t.Errorf("--keep: ID %s IssueInstant %s, want the template's %s %s", k.SelectAttrValue("ID", ""), k.SelectAttrValue("IssueInstant", ""),
			oldID, testutil.FixedNow.Format(saml.TimeLayout))
	}
}

// TestEnvelopeInspectExit: inspect exits 1 when it lists a problem (an
// unsigned message, a missing idempotency key), 0 when it sees none, in
// text and in JSON.
func TestEnvelopeInspectExit(t *testing.T) {
	unsigned, err := saml.Serialize(unsignedRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	_, signed, _ := kecisAt(t, testutil.FixedNow, unsigned, "envelope", "sign", "--key", keyPath("merchant-rsa"), "--cert", certPath("merchant-rsa"))
	for _, json := range []bool{false, true} {
		args := []string{"envelope", "inspect"}
		if json {
			args = append(args, "--json")
		}
		code, out, stderr := kecis(t, []byte(signed), args...)
		if code != 0 || stderr != "" {
			t.Errorf("json=%v, signed: exit %d, stderr %q\n%s", json, code, stderr, out)
		}
		code, out, stderr = kecis(t, unsigned, args...)
		if code != 1 || !strings.Contains(out, "unsigned") || !strings.HasPrefix(stderr, "kecis: ") || !strings.HasSuffix(stderr, " problem(s) visible without keys\n") {
			t.Errorf("json=%v, unsigned: exit %d, stderr %q\n%s", json, code, stderr, out)
		}
	}
}

// TestEnvelopeSignFreshensAuthResult: an authentication result's
// AuthnInstant and NotOnOrAfter move with its IssueInstant, so that the
// signed result is valid for as long as the template says.
func TestEnvelopeSignFreshensAuthResult(t *testing.T) {
	ar := &saml.AuthenticationResult{ID: "_ar1", Issuer: "https://issuer.example/kecis", Method: "urn:kecis:authn:card-password", Factors: 1,
		IssueInstant: testutil.FixedNow, AuthnInstant: testutil.FixedNow.Add(-time.Minute), NotOnOrAfter: testutil.FixedNow.Add(5 * time.Minute)}
	el, err := ar.Element()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := saml.Serialize(el)
	if err != nil {
		t.Fatal(err)
	}
	later := testutil.FixedNow.Add(48 * time.Hour)
	code, out, stderr := kecisAt(t, later, tmpl, "envelope", "sign", "--key", keyPath("issuer-ec"), "--cert", certPath("issuer-ec"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(out); err != nil {
		t.Fatal(err)
	}
	r := doc.Root()
	for attr, want := range map[string]time.Time{"IssueInstant": later, "AuthnInstant": later.Add(-time.Minute), "NotOnOrAfter": later.Add(5 * time.Minute)} {
		if got := r.SelectAttrValue(attr, ""); got != want.Format(saml.TimeLayout) {
			t.Errorf("%s = %s, want %s", attr, got, want.Format(saml.TimeLayout))
		}
	}
	if r.SelectAttrValue("ID", "") == "_ar1" {
		t.Error("the ID was kept")
	}
}
