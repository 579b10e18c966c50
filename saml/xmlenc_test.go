package saml

import (
	"bytes"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"

	"github.com/kecis/kecis/ecml"
)

func TestEncryptSignReceive(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name string
		enc  *Encryptor
	}{
		{"aes256-gcm+rsa-oaep-mgf1p", &Encryptor{Recipient: issuerID}},
		{"aes128-gcm+rsa-oaep-mgf1p", &Encryptor{Recipient: issuerID, Content: AES128GCM}},
		{"aes256-gcm+xmlenc11-rsa-oaep", &Encryptor{Recipient: issuerID, KeyTransport: AlgRSAOAEP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.enc.Cert = w.issuer.Cert
			data := w.sealedApprove(t, "enc-"+tc.name, tc.enc, nil)
			if ecml.ContainsPAN(string(data)) {
				t.Fatalf("a card number is in clear in the encrypted message")
			}
			if !bytes.Contains(data, []byte(tc.enc.transportAlg())) {
				t.Fatalf("key transport %s not used", tc.enc.transportAlg())
			}
			got, err := w.issuerReceiver().ReceiveRequest(bg, data)
			if err != nil {
				t.Fatalf("%v (%v)", err, AsError(err).Cause())
			}
			card := got.Request.Payload.Ecom.Payment.Card
			if card == nil || card.Number.Reveal() != "4111111111111111" || card.ExpDate == nil || card.ExpDate.Year != "2030" {
				t.Fatalf("decrypted card = %+v", card)
			}
			// The hub, which decrypts nothing, accepts the stand-in and sees no card.
			hub := w.issuerReceiver()
			hub.Decrypter = nil
			hub.Replay = NewMemoryReplayCache(w.clock.Now)
			relayed, err := hub.ReceiveRequest(bg, data)
			if err != nil {
				t.Fatalf("hub: %v (%v)", err, AsError(err).Cause())
			}
			if relayed.Request.Payload.Ecom.Payment.Card != nil || relayed.Request.Payload.Ecom.Payment.EncryptedCard == nil {
				t.Fatal("the hub should see only the encrypted stand-in")
			}
		})
	}
}

func (e *Encryptor) transportAlg() string {
	if e.KeyTransport == "" {
		return AlgRSAOAEPMGF1P
	}
	return e.KeyTransport
}

// TestDecryptionKeyRollover: the receiver holds two keys; the EncryptedKey's
// KeyInfo names the certificate, which selects the key.
func TestDecryptionKeyRollover(t *testing.T) {
	w := newWorld(t)
	d := w.issuerDecryptor()
	for _, cert := range d.Keys {
		root, _ := w.approveRequest(t, "rollover").Element()
		w.encryptFor(t, root, &Encryptor{Recipient: issuerID, Cert: cert.Cert})
		if err := d.DecryptPayload(bg, child(root, "Payload")); err != nil {
			t.Fatalf("key %s: %v", cert.Cert.Subject, err)
		}
		if root.FindElement(".//Card") == nil {
			t.Fatal("card not restored")
		}
	}
	// A key we no longer hold: refused.
	only := &Decryptor{EntityID: issuerID, Keys: d.Keys[1:]}
	root, _ := w.approveRequest(t, "rollover-old").Element()
	w.encryptFor(t, root, &Encryptor{Recipient: issuerID, Cert: d.Keys[0].Cert})
	if err := only.DecryptPayload(bg, child(root, "Payload")); err == nil {
		t.Fatal("decrypted with a key we do not hold")
	}
}

// TestEncryptedOutputsHoldNoPAN scans every encrypted output of this file's
// tests and of the attack corpus for Luhn-valid 13–19 digit runs.
func TestEncryptedOutputsHoldNoPAN(t *testing.T) {
	withoutCapture(t) // builds the attack corpus's encryption cases
	w := newWorld(t)
	for _, kt := range []string{AlgRSAOAEPMGF1P, AlgRSAOAEP} {
		for i := 0; i < 20; i++ {
			data := w.sealedApprove(t, "scan", &Encryptor{Recipient: issuerID, Cert: w.issuer.Cert, KeyTransport: kt}, nil)
			if spans := ecml.FindPANs(string(data)); len(spans) > 0 {
				t.Fatalf("Luhn-valid run in encrypted output: %q", string(data)[spans[0][0]:spans[0][1]])
			}
		}
	}
	for _, c := range attackCases() {
		if c.Class != "encryption" || c.Name == "sensitive-in-clear" {
			continue
		}
		if ecml.ContainsPAN(string(c.build(t, w))) {
			t.Errorf("%s: encrypted fixture holds a card number in clear", c.Name)
		}
	}
}

// legacyEncrypt replaces the Card with an EncryptedData made by crewjam's
// xmlenc with a legacy algorithm, for the attack fixtures.
func legacyEncrypt(t testing.TB, w *world, root *etree.Element, rsa xmlenc.RSA, block xmlenc.BlockCipher) {
	t.Helper()
	card := root.FindElement(".//Card")
	plain, _ := Serialize(detach(card))
	rsa.BlockCipher = block
	ed, err := rsa.Encrypt(w.issuer.Cert, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	ed.CreateAttr("Type", TypeElement)
	p := card.Parent()
	p.InsertChildAt(card.Index(), ed)
	p.RemoveChild(card)
}

// fakeCipher replaces the Card with an EncryptedData claiming alg, for
// algorithms no Go library writes (SEED).
func fakeCipher(root *etree.Element, alg string) {
	card := root.FindElement(".//Card")
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NSXEnc)
	ed.CreateAttr("Type", TypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", alg)
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(strings.Repeat("QUJD", 16))
	p := card.Parent()
	p.InsertChildAt(card.Index(), ed)
	p.RemoveChild(card)
}

func cipherValueEl(ed *etree.Element) *etree.Element {
	return ed.FindElement("./xenc:CipherData/xenc:CipherValue")
}

// The decrypted element is parsed in the namespace context of the
// EncryptedData it replaces; a declaration whose URI holds characters XML
// escapes (&) or non-ASCII ones must be carried over as XML, not as a Go
// string literal.
func TestDecryptInEscapedNamespaceContext(t *testing.T) {
	w := newWorld(t)
	d := w.issuerDecryptor()
	root, _ := w.approveRequest(t, "ns-context").Element()
	root.CreateAttr("xmlns:odd", "urn:x:a=1&b=\u00e9")
	w.encryptFor(t, root, &Encryptor{Recipient: issuerID, Cert: d.Keys[0].Cert})
	doc := etree.NewDocument()
	doc.SetRoot(root)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseDocument(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DecryptPayload(bg, child(again, "Payload")); err != nil {
		t.Fatalf("decrypt: %v (%v)", err, AsError(err).Cause())
	}
	if again.FindElement(".//Card") == nil {
		t.Fatal("card not restored")
	}
}
