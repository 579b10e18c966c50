package saml

import (
	"errors"
	"testing"

	"github.com/beevik/etree"
)

// pgID is a third party (an acquirer) the card is encrypted for; the
// attacker's key pair stands in for its encryption key.
const pgID = "https://pg.example/kecis"

// forPG is an approval whose card is encrypted for the PG, not the issuer.
func (w *world) forPG(t *testing.T, seed string) *etree.Element {
	t.Helper()
	root, err := w.approveRequest(t, seed).Element()
	if err != nil {
		t.Fatal(err)
	}
	w.encryptFor(t, root, &Encryptor{Recipient: pgID, Cert: w.attacker.Cert})
	return root
}

func serialized(t *testing.T, el *etree.Element) string {
	t.Helper()
	b, err := Serialize(el.Copy())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keeping(w *world) *Decryptor {
	d := w.issuerDecryptor()
	d.Keys = d.Keys[1:] // the issuer's own key only
	d.KeepForOthers = true
	return d
}

// TestKeepForOthers: an EncryptedData whose every EncryptedKey names
// another Recipient travels unchanged (KECIS §8.3, §15.7); without the
// option it is the usual ErrDecryption.
func TestKeepForOthers(t *testing.T) {
	w := newWorld(t)
	root := w.forPG(t, "keep")
	ed := root.FindElement(".//EncryptedData")
	before := serialized(t, ed)

	def := keeping(w)
	def.KeepForOthers = false
	if err := def.DecryptPayload(bg, child(root.Copy(), "Payload")); !errors.Is(err, ErrDecryption) {
		t.Fatalf("default: %v, want ErrDecryption", err)
	}
	if err := keeping(w).DecryptPayload(bg, child(root, "Payload")); err != nil {
		t.Fatalf("KeepForOthers: %v", err)
	}
	kept := root.FindElement(".//EncryptedData")
	if kept != ed || serialized(t, kept) != before {
		t.Fatal("the kept element changed")
	}

	// Without an EntityID nobody is "another": everything must decrypt.
	noID := keeping(w)
	noID.EntityID = ""
	if err := noID.DecryptPayload(bg, child(w.forPG(t, "keep-noid"), "Payload")); !errors.Is(err, ErrDecryption) {
		t.Fatalf("no EntityID: %v, want ErrDecryption", err)
	}
}

// TestKeepForOthersAttacks: only an element for third parties alone is
// kept; one an attacker strips or mixes recipients on is decrypted or
// refused as usual.
func TestKeepForOthersAttacks(t *testing.T) {
	w := newWorld(t)
	ekOf := func(root *etree.Element) *etree.Element {
		return root.FindElement(".//EncryptedData/KeyInfo/EncryptedKey")
	}
	for _, tc := range []struct {
		name    string
		build   func(t *testing.T) *etree.Element
		decrypt bool // true: decrypts to a clear Card; false: ErrDecryption
	}{
		{"no-recipient-not-ours", func(t *testing.T) *etree.Element {
			root := w.forPG(t, "a1")
			ekOf(root).RemoveAttr("Recipient")
			return root
		}, false},
		{"no-recipient-ours", func(t *testing.T) *etree.Element {
			root, _ := w.approveRequest(t, "a2").Element()
			w.encryptFor(t, root, &Encryptor{Cert: w.issuer.Cert})
			return root
		}, true},
		{"empty-recipient", func(t *testing.T) *etree.Element {
			root := w.forPG(t, "a3")
			ekOf(root).CreateAttr("Recipient", "")
			return root
		}, false},
		{"mixed-other-and-none", func(t *testing.T) *etree.Element {
			root := w.forPG(t, "a4")
			ek := ekOf(root)
			cp := ek.Copy()
			cp.RemoveAttr("Recipient")
			ek.Parent().AddChild(cp)
			return root
		}, false},
		{"mixed-other-and-us", func(t *testing.T) *etree.Element {
			// Encrypted for us, with a decoy key for the PG in front.
			root, _ := w.approveRequest(t, "a5").Element()
			w.encryptFor(t, root, &Encryptor{Recipient: issuerID, Cert: w.issuer.Cert})
			ek := ekOf(root)
			decoy := ek.Copy()
			decoy.CreateAttr("Recipient", pgID)
			ek.Parent().InsertChildAt(ek.Index(), decoy)
			return root
		}, true},
		{"mixed-other-and-us-not-decryptable", func(t *testing.T) *etree.Element {
			// Claims to be for us too: not kept, and our key cannot open it.
			root := w.forPG(t, "a6")
			ek := ekOf(root)
			cp := ek.Copy()
			cp.CreateAttr("Recipient", issuerID)
			ek.Parent().AddChild(cp)
			return root
		}, false},
		{"opaque-with-extra-child", func(t *testing.T) *etree.Element {
			root := w.forPG(t, "a7")
			root.FindElement(".//EncryptedData").CreateElement("kx:Smuggled")
			return root
		}, false},
		{"opaque-wrong-type", func(t *testing.T) *etree.Element {
			root := w.forPG(t, "a8")
			root.FindElement(".//EncryptedData").CreateAttr("Type", NSXEnc+"Content")
			return root
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.build(t)
			err := keeping(w).DecryptPayload(bg, child(root, "Payload"))
			if !tc.decrypt {
				if !errors.Is(err, ErrDecryption) {
					t.Fatalf("err = %v, want ErrDecryption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if root.FindElement(".//Card") == nil || root.FindElement(".//EncryptedData") != nil {
				t.Fatal("not decrypted")
			}
		})
	}
}

// TestKeepForOthersNested: an EncryptedData hidden inside a kept one is not
// ours to touch; the kept element leaves unchanged.
func TestKeepForOthersNested(t *testing.T) {
	w := newWorld(t)
	root := w.forPG(t, "nested")
	inner, _ := w.approveRequest(t, "nested-inner").Element()
	w.encryptFor(t, inner, &Encryptor{Recipient: issuerID, Cert: w.issuer.Cert})
	ed := root.FindElement(".//EncryptedData")
	ed.FindElement("./KeyInfo").AddChild(inner.FindElement(".//EncryptedData").Copy())
	before := serialized(t, ed)
	if err := keeping(w).DecryptPayload(bg, child(root, "Payload")); err != nil {
		t.Fatal(err)
	}
	if serialized(t, ed) != before {
		t.Fatal("an element inside the kept one was decrypted")
	}
}

// TestReceiveKeepsForOthers: the receive pipeline with a keeping Decryptor
// accepts the stand-in left for the PG and validates the rest; the default
// refuses the message.
func TestReceiveKeepsForOthers(t *testing.T) {
	w := newWorld(t)
	root := w.forPG(t, "receive")
	data, err := w.merchant.Signer.SignToBytes(root)
	if err != nil {
		t.Fatal(err)
	}
	def := w.issuerReceiver()
	if _, err := def.ReceiveRequest(bg, data); !errors.Is(err, ErrDecryption) {
		t.Fatalf("default receiver: %v, want ErrDecryption", err)
	}
	r := w.issuerReceiver()
	r.Decrypter = keeping(w)
	got, err := r.ReceiveRequest(bg, data)
	if err != nil {
		t.Fatalf("%v (%v)", err, AsError(err).Cause())
	}
	pm := got.Request.Payload.Ecom.Payment
	if pm.Card != nil || pm.EncryptedCard == nil {
		t.Fatalf("payment = %+v", pm)
	}
	if pm.EncryptedCard.FindElement("./KeyInfo/EncryptedKey").SelectAttrValue("Recipient", "") != pgID {
		t.Fatal("the kept card lost its recipient")
	}
}
