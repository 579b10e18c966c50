package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

const (
	benchDoc    = "../../saml/testdata/bench/approve-request.xml"
	clearCard   = `<Card Name="HONG GILDONG" Type="VISA" Number="4111111111111111">`
	recipientID = "https://issuer.example/kecis"
)

// xmlsecEncTemplate is an xmlsec1 encryption template in the KECIS profile:
// AES-256-GCM content, rsa-oaep-mgf1p key transport for the recipient.
const xmlsecEncTemplate = `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">` +
	`<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>` +
	`<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey Recipient="` + recipientID + `">` +
	`<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>` +
	`<ds:KeyInfo><ds:X509Data/></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>` +
	`<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>`

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestXMLSecEncryptionInterop: our AES-GCM + rsa-oaep-mgf1p elements
// decrypt with xmlsec1, and we decrypt what xmlsec1 encrypts.
func TestXMLSecEncryptionInterop(t *testing.T) {
	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	doc := readFile(t, benchDoc)
	t.Run("kecis-encrypts-xmlsec1-decrypts", func(t *testing.T) {
		for _, content := range []string{"aes256-gcm", "aes128-gcm"} {
			code, enc, stderr := kecis(t, doc, "envelope", "encrypt", "--recipient-cert", certPath("issuer-rsa"), "--recipient", recipientID, "--content", content)
			if code != 0 {
				t.Fatal(stderr)
			}
			if ecml.ContainsPAN(enc) || !strings.Contains(enc, "xmlenc11#"+content) {
				t.Fatalf("%s: card in clear, or algorithm missing:\n%s", content, enc)
			}
			out, err := exec.Command(xmlsec, "--decrypt", "--privkey-pem", keyPath("issuer-rsa"), writeTemp(t, "enc.xml", []byte(enc))).CombinedOutput()
			if err != nil || !strings.Contains(string(out), clearCard) {
				t.Fatalf("%s: xmlsec1 --decrypt: %v\n%s", content, err, out)
			}
		}
	})
	t.Run("xmlsec1-encrypts-kecis-decrypts", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "xenc.xml")
		b, err := exec.Command(xmlsec, "--encrypt", "--pubkey-cert-pem", certPath("issuer-rsa"), "--session-key", "aes-256",
			"--xml-data", benchDoc, "--node-name", "Card", "--output", out, writeTemp(t, "tmpl.xml", []byte(xmlsecEncTemplate))).CombinedOutput()
		if err != nil {
			t.Fatalf("xmlsec1 --encrypt: %v\n%s", err, b)
		}
		enc := readFile(t, out)
		if ecml.ContainsPAN(string(enc)) {
			t.Fatal("xmlsec1 left the card in clear")
		}
		code, dec, stderr := kecis(t, enc, "envelope", "decrypt", "--key", keyPath("issuer-rsa"), "--cert", certPath("issuer-rsa"), "--recipient", recipientID)
		if code != 0 || !strings.Contains(dec, clearCard) {
			t.Fatalf("kecis envelope decrypt: %d %s\n%s", code, stderr, dec)
		}
		// The wrong key is refused with the one generic error.
		code, _, stderr = kecis(t, enc, "envelope", "decrypt", "--key", keyPath("attacker-rsa"))
		if code != 1 || strings.TrimSpace(stderr) != "refused: encrypted data could not be decrypted" {
			t.Fatalf("wrong key: %d %q", code, stderr)
		}
	})
}

// TestSantuarioEncryptionInterop proves xmlenc11#rsa-oaep (SHA-256 digest
// and MGF1), which xmlsec1 1.2.37 lacks, against Apache Santuario, both ways;
// and rsa-oaep-mgf1p too.
func TestSantuarioEncryptionInterop(t *testing.T) {
	s := testutil.Santuario(t)
	doc := readFile(t, benchDoc)
	for _, kt := range []string{"rsa-oaep", "rsa-oaep-mgf1p"} {
		t.Run("kecis-encrypts-santuario-decrypts/"+kt, func(t *testing.T) {
			code, enc, stderr := kecis(t, doc, "envelope", "encrypt", "--recipient-cert", certPath("issuer-rsa"), "--recipient", recipientID, "--key-transport", kt)
			if code != 0 {
				t.Fatal(stderr)
			}
			dec, err := s.Decrypt(t, keyPath("issuer-rsa"), []byte(enc))
			if err != nil {
				t.Fatalf("Santuario refused our %s: %v\n%s", kt, err, enc)
			}
			if !strings.Contains(string(dec), `Number="4111111111111111"`) {
				t.Fatalf("Santuario did not recover the card:\n%s", dec)
			}
		})
		t.Run("santuario-encrypts-kecis-decrypts/"+kt, func(t *testing.T) {
			enc := s.Encrypt(t, certPath("issuer-rsa"), doc, "Card", kt, recipientID)
			if !strings.Contains(string(enc), "#"+kt+`"`) {
				t.Fatalf("Santuario did not use %s:\n%s", kt, enc)
			}
			code, dec, stderr := kecis(t, enc, "envelope", "decrypt", "--key", keyPath("issuer-rsa"), "--cert", certPath("issuer-rsa"), "--recipient", recipientID)
			if code != 0 || !strings.Contains(dec, `Number="4111111111111111"`) {
				t.Fatalf("kecis could not decrypt Santuario's %s: %s\n%s", kt, stderr, enc)
			}
		})
	}
}
