package saml

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// The attack corpus (KECIS §9): each fixture under testdata/attacks/ is a
// message built from a published attack class, adapted to KECIS, with the
// refusal it must meet. `go test ./saml -run TestAttackCorpus -update`
// regenerates the fixtures (RSA PKCS#1 v1.5 signatures, a fixed clock and
// fixed IDs make them byte-stable).

type attackCase struct {
	Name        string `json:"name"`
	Class       string `json:"class"`
	Description string `json:"description"`
	Kind        string `json:"kind"`            // request | response
	Setup       string `json:"setup,omitempty"` // deliver-first | pending
	Reason      string `json:"reason"`          // the Error.Reason it must be refused with
	Stage       string `json:"stage"`

	build func(t *testing.T, w *world) []byte
}

func parseRoot(t testing.TB, data []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

func ser(t testing.TB, root *etree.Element) []byte {
	t.Helper()
	b, err := Serialize(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func child(el *etree.Element, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

func setAmount(root *etree.Element, amount string) {
	if tx := root.FindElement(".//Transaction"); tx != nil {
		tx.CreateAttr("Amount", amount)
	}
}

// signedCancel is the honest, merchant-signed request attacks start from.
func signedCancel(t testing.TB, w *world, seed string) []byte {
	return signRequest(t, w.cancelRequest(t, seed), w.merchant.Signer)
}

// authResult is a cardholder-authentication result the issuer signed.
func (w *world) authResult(t testing.TB, seed string, signer *Signer, issuer string) *etree.Element {
	t.Helper()
	id, _ := w.builder(issuer, seed).IDs.NewID()
	ar := &AuthenticationResult{
		ID: id, IssueInstant: w.clock.Now().Add(-time.Minute), Issuer: issuer,
		Method: "urn:kecis:authn:card-password", Factors: 1,
		Amount: "15000", Currency: "KRW", Merchant: merchantID, OrderID: "ORDER-20261122-0001", CardRef: "411111******1111",
		AuthnInstant: w.clock.Now().Add(-time.Minute), NotOnOrAfter: w.clock.Now().Add(10 * time.Minute),
	}
	el, err := ar.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// withAuthResult builds an approve-style request embedding ar; mutate may
// tamper with the tree before the merchant (a participant who signs the
// outer message honestly but lies inside) signs it.
func (w *world) withAuthResult(t testing.TB, seed string, ar *etree.Element, mutate func(root *etree.Element)) []byte {
	t.Helper()
	req := w.cancelRequest(t, seed)
	req.Service = ServiceURI("card", "approve")
	req.AuthResults = []*etree.Element{ar}
	root, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(root)
	}
	if err := w.merchant.Signer.Sign(root); err != nil {
		t.Fatal(err)
	}
	return ser(t, root)
}

// encCase is an encryption attack on a merchant-signed card approval.
func encCase(name, desc string, tamper func(t *testing.T, w *world, root *etree.Element)) attackCase {
	return attackCase{Name: name, Class: "encryption", Kind: "request", Reason: "decryption", Stage: AfterVerification.String(),
		Description: desc,
		build: func(t *testing.T, w *world) []byte {
			root, err := w.approveRequest(t, name).Element()
			if err != nil {
				t.Fatal(err)
			}
			tamper(t, w, root)
			if err := w.merchant.Signer.Sign(root); err != nil {
				t.Fatal(err)
			}
			return ser(t, root)
		}}
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(stripSpace(s)) }
func base64Encode(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

func arOf(root *etree.Element) *etree.Element { return child(root, "AuthenticationResult") }

func attackCases() []attackCase {
	pre, post := BeforeVerification.String(), AfterVerification.String()
	return []attackCase{
		// XML Signature Wrapping (Somorovsky et al. 2012), SAMLRaider transforms.
		{Name: "xsw1-clone-inside-signature", Class: "XSW1", Kind: "request", Reason: "shape", Stage: pre,
			Description: "signed request cloned into its own Signature; the root altered (amount) and given a new ID",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "xsw1"))
				sig := child(root, "Signature")
				clone := root.Copy()
				clone.RemoveChild(child(clone, "Signature"))
				sig.AddChild(clone)
				root.CreateAttr("ID", "_evil_response_ID")
				setAmount(root, "1")
				return ser(t, root)
			}},
		{Name: "xsw2-clone-before-signature", Class: "XSW2", Kind: "request", Reason: "shape", Stage: pre,
			Description: "signed request cloned as a sibling before the Signature; the root altered and given a new ID",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "xsw2"))
				clone := root.Copy()
				clone.RemoveChild(child(clone, "Signature"))
				root.InsertChildAt(child(root, "Signature").Index(), clone)
				root.CreateAttr("ID", "_evil_response_ID")
				setAmount(root, "1")
				return ser(t, root)
			}},
		{Name: "xsw3-unsigned-result-before-signed", Class: "XSW3", Kind: "request", Reason: "shape", Stage: pre,
			Description: "an unsigned, forged authentication result inserted before the issuer-signed one",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw3-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw3", ar, func(root *etree.Element) {
					evil := arOf(root).Copy()
					evil.RemoveChild(child(evil, "Signature"))
					evil.CreateAttr("ID", "_evil_assertion_ID")
					child(evil, "BoundTo").CreateAttr("Amount", "9900000")
					root.InsertChildAt(arOf(root).Index(), evil)
				})
			}},
		{Name: "xsw4-signed-result-inside-forged", Class: "XSW4", Kind: "request", Reason: "shape", Stage: pre,
			Description: "a forged result appended to the message with the signed original moved inside it",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw4-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw4", ar, func(root *etree.Element) {
					orig := arOf(root)
					evil := orig.Copy()
					evil.RemoveChild(child(evil, "Signature"))
					evil.CreateAttr("ID", "_evil_assertion_ID")
					root.RemoveChild(orig)
					evil.AddChild(orig)
					root.InsertChildAt(child(root, "Payload").Index(), evil)
				})
			}},
		{Name: "xsw5-modified-result-plus-unsigned-copy", Class: "XSW5", Kind: "request", Reason: "shape", Stage: pre,
			Description: "the signed result modified in place (new ID, keeps its signature) and an unsigned copy of the original appended",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw5-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw5", ar, func(root *etree.Element) {
					orig := arOf(root)
					cp := orig.Copy()
					cp.RemoveChild(child(cp, "Signature"))
					orig.CreateAttr("ID", "_evil_assertion_ID")
					child(orig, "BoundTo").CreateAttr("Amount", "9900000")
					root.AddChild(cp)
				})
			}},
		{Name: "xsw5b-modified-result-in-place", Class: "XSW5", Kind: "request", Reason: "auth_result", Stage: post,
			Description: "the signed result's bound amount modified in place; the outer message honestly signed by the merchant",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw5b-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw5b", ar, func(root *etree.Element) {
					child(arOf(root), "BoundTo").CreateAttr("Amount", "9900000")
				})
			}},
		{Name: "xsw6-copy-inside-result-signature", Class: "XSW6", Kind: "request", Reason: "shape", Stage: pre,
			Description: "the signed result modified (new ID) with an unsigned copy of the original inside its Signature",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw6-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw6", ar, func(root *etree.Element) {
					orig := arOf(root)
					cp := orig.Copy()
					cp.RemoveChild(child(cp, "Signature"))
					child(orig, "Signature").AddChild(cp)
					orig.CreateAttr("ID", "_evil_assertion_ID")
				})
			}},
		{Name: "xsw7-forged-result-in-extensions", Class: "XSW7", Kind: "request", Reason: "shape", Stage: pre,
			Description: "an unsigned forged result placed in a samlp:Extensions element before the signed one",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw7-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw7", ar, func(root *etree.Element) {
					evil := arOf(root).Copy()
					evil.RemoveChild(child(evil, "Signature"))
					evil.CreateAttr("ID", "_evil_assertion_ID")
					ext := etree.NewElement("samlp:Extensions")
					ext.AddChild(evil)
					root.InsertChildAt(1, ext)
				})
			}},
		{Name: "xsw8-original-in-signature-object", Class: "XSW8", Kind: "request", Reason: "shape", Stage: pre,
			Description: "the original result copied into a ds:Object inside its Signature while the forged one keeps the signature",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw8-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw8", ar, func(root *etree.Element) {
					orig := arOf(root)
					cp := orig.Copy()
					cp.RemoveChild(child(cp, "Signature"))
					obj := child(orig, "Signature").CreateElement("ds:Object")
					obj.AddChild(cp)
					child(orig, "BoundTo").CreateAttr("Amount", "9900000")
				})
			}},
		{Name: "signed-message-inside-extensions", Class: "XSW (Extensions)", Kind: "request", Reason: "shape", Stage: pre,
			Description: "an attacker's unsigned request carrying the victim's signed request inside samlp:Extensions (OneUptime#2949)",
			build: func(t *testing.T, w *world) []byte {
				victim := parseRoot(t, signedCancel(t, w, "ext-victim"))
				evil, _ := w.cancelRequest(t, "ext-evil").Element()
				setAmount(evil, "9900000")
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(victim)
				evil.InsertChildAt(1, ext)
				return ser(t, evil)
			}},
		{Name: "signature-moved-into-extensions", Class: "XSW (Extensions)", Kind: "request", Reason: "shape", Stage: pre,
			Description: "the request's own signature moved into samlp:Extensions",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "sig-ext"))
				sig := child(root, "Signature")
				root.RemoveChild(sig)
				ext := etree.NewElement("samlp:Extensions")
				ext.CreateAttr("xmlns:samlp", NSSAMLP) // signing left the root in canonical form, without unused declarations
				ext.AddChild(sig)
				root.InsertChildAt(1, ext)
				return ser(t, root)
			}},
		// The two above, and XSW3, made schema-valid (KECIS §9.12): every
		// element where the schema puts it, the forged element carrying a
		// copy of the genuine signature. A verifier that checks "a
		// signature in the document verifies" and then reads another
		// element is fooled by both; the schema cannot tell.
		{Name: "xsw-valid-signed-message-in-extensions", Class: "XSW (Extensions, schema-valid)", Kind: "request", Reason: "shape", Stage: pre,
			Description: "an attacker's request (amount changed, new ID) carrying a copy of the victim's signature, the victim's signed request intact in samlp:Extensions after it: valid against the schemas",
			build: func(t *testing.T, w *world) []byte {
				victim := parseRoot(t, signedCancel(t, w, "ext-valid-victim"))
				evil, _ := w.cancelRequest(t, "ext-valid-evil").Element()
				setAmount(evil, "9900000")
				sig := child(victim, "Signature").Copy()
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(victim)
				// Issuer, Signature, Extensions: samlp:RequestAbstractType's order.
				evil.InsertChildAt(1, sig)
				evil.InsertChildAt(2, ext)
				return ser(t, evil)
			}},
		{Name: "xsw-valid-forged-result-with-copied-signature", Class: "XSW3 (schema-valid)", Kind: "request", Reason: "shape", Stage: pre,
			Description: "a forged authentication result (new ID, bound amount raised) carrying a copy of the issuer's signature, inserted before the signed original: valid against the schemas",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "xsw-valid-ar", w.issuer.Signer, issuerID)
				return w.withAuthResult(t, "xsw-valid", ar, func(root *etree.Element) {
					evil := arOf(root).Copy()
					evil.CreateAttr("ID", "_evil_assertion_ID")
					child(evil, "BoundTo").CreateAttr("Amount", "9900000")
					root.InsertChildAt(arOf(root).Index(), evil)
				})
			}},
		{Name: "two-signatures", Class: "multiple signatures", Kind: "request", Reason: "shape", Stage: pre,
			Description: "a second, attacker-made signature over the root appended to a validly signed request (CVE-2022-41912 class)",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "two-sigs"))
				other := root.Copy()
				other.RemoveChild(child(other, "Signature"))
				if err := w.attacker.Signer.Sign(other); err != nil {
					t.Fatal(err)
				}
				root.AddChild(child(other, "Signature").Copy())
				return ser(t, root)
			}},
		{Name: "unsigned", Class: "fail-open", Kind: "request", Reason: "shape", Stage: pre,
			Description: "a request with no signature at all",
			build: func(t *testing.T, w *world) []byte {
				el, _ := w.cancelRequest(t, "unsigned").Element()
				return ser(t, el)
			}},
		{Name: "duplicate-id", Class: "ID confusion", Kind: "request", Reason: "shape", Stage: pre,
			Description: "an element inside the payload carries the root's ID",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "dup-id"))
				root.FindElement(".//Ecom").CreateAttr("id", root.SelectAttrValue("ID", ""))
				return ser(t, root)
			}},
		{Name: "namespaced-id", Class: "ID confusion", Kind: "request", Reason: "shape", Stage: pre,
			Description: "a namespaced ID attribute beside the root's ID (The Fragile Lock: attribute pollution)",
			build: func(t *testing.T, w *world) []byte {
				root := parseRoot(t, signedCancel(t, w, "ns-id"))
				root.CreateAttr("xmlns:x", "urn:x")
				root.CreateAttr("x:ID", "_other")
				return ser(t, root)
			}},
		{Name: "comment-injection", Class: "comment injection", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "a comment inserted inside a signed text value (alice@evil.com<!---->.attacker.com); exclusive c14n drops it, so the signature still verifies",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "comment")
				req.IdempotencyKey = "alice@evil.com.attacker.com"
				data := signRequest(t, req, w.merchant.Signer)
				return bytes.Replace(data, []byte("alice@evil.com.attacker.com"), []byte("alice@evil.com<!---->.attacker.com"), 1)
			}},
		{Name: "doctype-xxe", Class: "XXE", Kind: "request", Reason: "doctype", Stage: pre,
			Description: "an external entity in a DOCTYPE, referenced from a signed value",
			build: func(t *testing.T, w *world) []byte {
				data := signedCancel(t, w, "xxe")
				return append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>`+"\n"), bytes.Replace(data, []byte("order-20261122-0001-cancel"), []byte("&x;"), 1)...)
			}},
		{Name: "billion-laughs", Class: "entity expansion", Kind: "request", Reason: "doctype", Stage: pre,
			Description: "nested internal entities (billion laughs)",
			build: func(t *testing.T, w *world) []byte {
				var b strings.Builder
				b.WriteString(`<!DOCTYPE lolz [<!ENTITY lol "lol">`)
				prev := "lol"
				for i := 1; i <= 9; i++ {
					name := "lol" + string(rune('0'+i))
					b.WriteString(`<!ENTITY ` + name + ` "` + strings.Repeat("&"+prev+";", 10) + `">`)
					prev = name
				}
				b.WriteString("]>\n")
				data := signedCancel(t, w, "laughs")
				return append([]byte(b.String()), bytes.Replace(data, []byte("order-20261122-0001-cancel"), []byte("&lol9;"), 1)...)
			}},
		{Name: "excessive-depth", Class: "resource exhaustion", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "10,000 nested elements inside the payload",
			build: func(t *testing.T, w *world) []byte {
				data := signedCancel(t, w, "depth")
				deep := strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000)
				return bytes.Replace(data, []byte("</Ecom>"), []byte(deep+"</Ecom>"), 1)
			}},
		{Name: "oversize", Class: "resource exhaustion", Kind: "request", Reason: "too_large", Stage: pre,
			Description: "a 2 MiB request (the cap is 1 MiB)",
			build: func(t *testing.T, w *world) []byte {
				data := signedCancel(t, w, "oversize")
				pad := `<kx:Pad xmlns:kx="urn:kecis:ecml-ext:1.0">` + strings.Repeat("A", 2<<20) + `</kx:Pad>`
				return bytes.Replace(data, []byte("</kecis:Payload>"), []byte(pad+"</kecis:Payload>"), 1)
			}},
		{Name: "sha1-signature", Class: "weak algorithm", Kind: "request", Reason: "algorithm", Stage: pre,
			Description: "rsa-sha1 signature with a sha1 digest, otherwise valid",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "sha1").Element()
				forgeSign(t, root, forgeOpts{key: w.merchant.Signer.Key, cert: w.merchant.Cert,
					sigMethod: "http://www.w3.org/2000/09/xmldsig#rsa-sha1", sigHash: crypto.SHA1,
					digest: "http://www.w3.org/2000/09/xmldsig#sha1", digestHash: crypto.SHA1})
				return ser(t, root)
			}},
		{Name: "sha1-digest", Class: "weak algorithm", Kind: "request", Reason: "algorithm", Stage: pre,
			Description: "rsa-sha256 signature over a reference with a sha1 digest",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "sha1d").Element()
				forgeSign(t, root, forgeOpts{key: w.merchant.Signer.Key, cert: w.merchant.Cert,
					digest: "http://www.w3.org/2000/09/xmldsig#sha1", digestHash: crypto.SHA1})
				return ser(t, root)
			}},
		{Name: "inclusive-c14n", Class: "algorithm outside the profile", Kind: "request", Reason: "algorithm", Stage: pre,
			Description: "inclusive canonicalization instead of exclusive",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "c14n").Element()
				forgeSign(t, root, forgeOpts{key: w.merchant.Signer.Key, cert: w.merchant.Cert,
					c14n: "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"})
				return ser(t, root)
			}},
		{Name: "xslt-transform", Class: "XSLT/XPath transform", Kind: "request", Reason: "algorithm", Stage: pre,
			Description: "an XSLT transform in the reference (SAML core §5.4.4 restricts transforms)",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "xslt").Element()
				forgeSign(t, root, forgeOpts{key: w.merchant.Signer.Key, cert: w.merchant.Cert,
					transforms: []string{AlgEnveloped, "http://www.w3.org/TR/1999/REC-xslt-19991116"}})
				return ser(t, root)
			}},
		{Name: "reference-to-payload", Class: "reference to another element", Kind: "request", Reason: "shape", Stage: pre,
			Description: "the signature's reference digests the payload's Ecom element, not the root",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "ref-other").Element()
				ecom := root.FindElement(".//Ecom")
				ecom.CreateAttr("ID", "_payload")
				forgeSign(t, root, forgeOpts{key: w.merchant.Signer.Key, cert: w.merchant.Cert, target: ecom})
				return ser(t, root)
			}},
		{Name: "untrusted-key", Class: "wrong key", Kind: "request", Reason: "signature", Stage: pre,
			Description: "a request claiming the merchant as issuer, signed by an attacker's key with its own certificate in KeyInfo",
			build: func(t *testing.T, w *world) []byte {
				return signRequest(t, w.cancelRequest(t, "untrusted"), w.attacker.Signer)
			}},
		{Name: "other-participants-key", Class: "wrong key", Kind: "request", Reason: "signature", Stage: pre,
			Description: "a request claiming the merchant as issuer, signed by another participant's (the issuer's) valid key",
			build: func(t *testing.T, w *world) []byte {
				return signRequest(t, w.cancelRequest(t, "other-key"), w.issuer.Signer)
			}},
		{Name: "tampered-amount", Class: "tampering", Kind: "request", Reason: "signature", Stage: pre,
			Description: "the amount changed after signing",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "tamper"), []byte(`Amount="15000"`), []byte(`Amount="1500000"`), 1)
			}},
		{Name: "ecdsa-der-signature-value", Class: "encoding confusion", Kind: "request", Reason: "signature", Stage: pre,
			Description: "an ECDSA SignatureValue in ASN.1 DER instead of the XMLDSig 1.1 raw r||s form",
			build: func(t *testing.T, w *world) []byte {
				root, _ := w.cancelRequest(t, "ecdsa-der").Element()
				forgeSign(t, root, forgeOpts{key: w.merchantEC.Signer.Key, cert: w.merchantEC.Cert,
					sigMethod: AlgECDSASHA256, sigHash: crypto.SHA256})
				return ser(t, root)
			}},
		{Name: "unknown-issuer", Class: "unknown issuer", Kind: "request", Reason: "unknown_issuer", Stage: pre,
			Description: "a well-signed request from an entity that is not a participant",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "unknown")
				req.Issuer = attackerID
				return signRequest(t, req, w.attacker.Signer)
			}},
		{Name: "expired", Class: "protocol: time", Kind: "request", Reason: "time", Stage: post,
			Description: "IssueInstant ten minutes in the past (skew is three)",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "expired")
				req.IssueInstant = req.IssueInstant.Add(-10 * time.Minute)
				return signRequest(t, req, w.merchant.Signer)
			}},
		{Name: "future-dated", Class: "protocol: time", Kind: "request", Reason: "time", Stage: post,
			Description: "IssueInstant ten minutes in the future",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "future")
				req.IssueInstant = req.IssueInstant.Add(10 * time.Minute)
				return signRequest(t, req, w.merchant.Signer)
			}},
		{Name: "wrong-destination", Class: "protocol: Destination", Kind: "request", Reason: "destination", Stage: post,
			Description: "a request signed for another recipient, delivered here",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "wrong-dest")
				req.Destination = "https://other-issuer.example/kecis/soap"
				return signRequest(t, req, w.merchant.Signer)
			}},
		{Name: "replayed-id", Class: "protocol: replay", Kind: "request", Setup: "deliver-first", Reason: "replay", Stage: post,
			Description: "a valid request delivered a second time",
			build: func(t *testing.T, w *world) []byte {
				return signedCancel(t, w, "replay")
			}},
		{Name: "wrong-version", Class: "protocol: version", Kind: "request", Reason: "version", Stage: post,
			Description: "Version 3.0",
			build: func(t *testing.T, w *world) []byte {
				req := w.cancelRequest(t, "version")
				req.Version = "3.0"
				return signRequest(t, req, w.merchant.Signer)
			}},
		{Name: "in-response-to-mismatch", Class: "protocol: InResponseTo", Kind: "response", Setup: "pending", Reason: "in_response_to", Stage: post,
			Description: "a valid response to a request that was never sent",
			build: func(t *testing.T, w *world) []byte {
				resp, _ := w.builder(issuerID, "irt").NewResponse("_never_sent_0000000000000000000000", "", Status{Code: StatusSuccess})
				return signResponse(t, resp, w.issuer.Signer)
			}},
		{Name: "auth-result-untrusted-issuer", Class: "embedded result", Kind: "request", Reason: "auth_result", Stage: post,
			Description: "an embedded authentication result signed by a non-participant",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "ar-untrusted", w.attacker.Signer, attackerID)
				return w.withAuthResult(t, "ar-untrusted-msg", ar, nil)
			}},
		{Name: "auth-result-forged-issuer", Class: "embedded result", Kind: "request", Reason: "auth_result", Stage: post,
			Description: "an embedded result naming the issuer but signed by the merchant's own key",
			build: func(t *testing.T, w *world) []byte {
				ar := w.authResult(t, "ar-forged", w.merchant.Signer, issuerID)
				return w.withAuthResult(t, "ar-forged-msg", ar, nil)
			}},
		// XML Encryption (KECIS §8, §9.9): Jager & Somorovsky's CBC oracle,
		// "One Bad Apple" backwards-compatibility attacks, tampering. Every
		// one must meet the same refusal (no oracle).
		encCase("enc-aes128-cbc", "the card encrypted with AES-128-CBC (XML Encryption 1.0)", func(t *testing.T, w *world, root *etree.Element) {
			legacyEncrypt(t, w, root, xmlenc.OAEP(), xmlenc.AES128CBC)
		}),
		encCase("enc-aes256-cbc", "the card encrypted with AES-256-CBC", func(t *testing.T, w *world, root *etree.Element) {
			legacyEncrypt(t, w, root, xmlenc.OAEP(), xmlenc.AES256CBC)
		}),
		encCase("enc-3des-cbc", "the card encrypted with Triple DES (CBC)", func(t *testing.T, w *world, root *etree.Element) {
			legacyEncrypt(t, w, root, xmlenc.OAEP(), xmlenc.TripleDES)
		}),
		encCase("enc-seed-cbc", "the card claimed encrypted with SEED-128-CBC (RFC 6931 gives SEED only a CBC identifier)", func(t *testing.T, w *world, root *etree.Element) {
			fakeCipher(root, "http://www.w3.org/2007/05/xmldsig-more#seed128-cbc")
		}),
		encCase("enc-rsa-1_5", "AES-256-GCM content with the key wrapped by RSA PKCS#1 v1.5 (rsa-1_5)", func(t *testing.T, w *world, root *etree.Element) {
			legacyEncrypt(t, w, root, xmlenc.PKCS1v15(), AES256GCM)
		}),
		encCase("enc-flipped-tag", "a correctly encrypted card whose GCM tag has one bit flipped", func(t *testing.T, w *world, root *etree.Element) {
			w.encryptFor(t, root, nil)
			cv := cipherValueEl(root.FindElement(".//Payment/xenc:EncryptedData"))
			b, _ := base64Decode(cv.Text())
			b[len(b)-1] ^= 0x01
			cv.SetText(base64Encode(b))
		}),
		encCase("enc-truncated", "a correctly encrypted card whose ciphertext is truncated to 20 bytes", func(t *testing.T, w *world, root *etree.Element) {
			w.encryptFor(t, root, nil)
			cv := cipherValueEl(root.FindElement(".//Payment/xenc:EncryptedData"))
			b, _ := base64Decode(cv.Text())
			cv.SetText(base64Encode(b[:20]))
		}),
		encCase("enc-wrong-recipient", "the card encrypted for another participant (the merchant's own key and entityID)", func(t *testing.T, w *world, root *etree.Element) {
			w.encryptFor(t, root, &Encryptor{Recipient: merchantID, Cert: w.merchant.Cert})
		}),
		encCase("enc-not-sensitive", "the Transaction (amount and currency, which policy must see) encrypted as well as the card", func(t *testing.T, w *world, root *etree.Element) {
			tx := root.FindElement(".//Transaction")
			if _, err := (&Encryptor{Recipient: issuerID, Cert: w.issuer.Cert}).EncryptElement(tx); err != nil {
				t.Fatal(err)
			}
			w.encryptFor(t, root, nil)
		}),
		encCase("sensitive-in-clear", "a card approval whose card travels in clear", func(t *testing.T, w *world, root *etree.Element) {}),
		// The published encoding/xml round-trip inputs (mattermost/xml-roundtrip-validator).
		{Name: "roundtrip-colon-element", Class: "round-trip instability", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "an element name with two colons (<x::Element>) inside a signed request",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "rt1"), []byte("</Ecom>"), []byte("<x::Element></::Element></Ecom>"), 1)
			}},
		{Name: "roundtrip-colon-attribute", Class: "round-trip instability", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "an attribute named ::attr inside a signed request",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "rt2"), []byte("<Ecom "), []byte(`<Ecom ::attr="foo" `), 1)
			}},
		{Name: "roundtrip-empty-attribute", Class: "round-trip instability", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "attributes with empty names (:=, x:=) inside a signed request",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "rt3"), []byte("<Ecom "), []byte(`<Ecom :="value" x:="value" `), 1)
			}},
		{Name: "roundtrip-empty-xmlns", Class: "round-trip instability", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "an xmlns: declaration with an empty prefix",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "rt4"), []byte("<Ecom "), []byte(`<Ecom xmlns:="y" `), 1)
			}},
		{Name: "roundtrip-bad-directive", Class: "round-trip instability", Kind: "request", Reason: "doctype", Stage: pre,
			Description: "a directive that encoding/xml re-serialises differently (<! <<!-- -->!-- x --> y>)",
			build: func(t *testing.T, w *world) []byte {
				return bytes.Replace(signedCancel(t, w, "rt5"), []byte("</Ecom>"), []byte("<! <<!-- -->!-- x --> y></Ecom>"), 1)
			}},
		{Name: "roundtrip-colon-root", Class: "round-trip instability", Kind: "request", Reason: "malformed", Stage: pre,
			Description: "a root element name with two colons",
			build: func(t *testing.T, w *world) []byte {
				data := signedCancel(t, w, "rt6")
				data = bytes.Replace(data, []byte("<kecis:ServiceRequest"), []byte("<kecis::ServiceRequest"), 1)
				return bytes.Replace(data, []byte("</kecis:ServiceRequest>"), []byte("</kecis::ServiceRequest>"), 1)
			}},
	}
}

func attackDir() string { return filepath.Join("testdata", "attacks") }

// TestAttackCorpus runs every fixture through the receive pipeline and
// checks it is refused with the expected reason, at the expected stage,
// with a public message that names the category only.
func TestAttackCorpus(t *testing.T) {
	cases := attackCases()
	if *update {
		w := newWorld(t)
		if err := os.MkdirAll(attackDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		var manifest []attackCase
		for _, c := range cases {
			data := c.build(t, w)
			if err := os.WriteFile(filepath.Join(attackDir(), c.Name+".xml"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			manifest = append(manifest, c)
		}
		sort.Slice(manifest, func(i, j int) bool { return manifest[i].Name < manifest[j].Name })
		b, _ := json.MarshalIndent(manifest, "", "  ")
		if err := os.WriteFile(filepath.Join(attackDir(), "manifest.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(attackDir(), "manifest.json"))
	if err != nil {
		t.Fatalf("%v (run go test ./saml -run TestAttackCorpus -update)", err)
	}
	var manifest []attackCase
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != len(cases) {
		t.Fatalf("manifest has %d fixtures, the generator %d: regenerate with -update", len(manifest), len(cases))
	}
	publicTexts := map[string]bool{}
	for _, e := range allErrors {
		publicTexts[e.Public] = true
	}
	for _, c := range manifest {
		t.Run(c.Name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(attackDir(), c.Name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t)
			var consumed any
			switch c.Kind {
			case "request":
				rc := w.issuerReceiver()
				if c.Setup == "deliver-first" {
					if _, err := rc.ReceiveRequest(bg, data); err != nil {
						t.Fatalf("first delivery refused: %v", err)
					}
				}
				got, rerr := rc.ReceiveRequest(bg, data)
				consumed, err = got, rerr
			case "response":
				got, rerr := w.merchantReceiver(NewMemoryPending(w.clock.Now)).ReceiveResponse(bg, data)
				consumed, err = got, rerr
			}
			if err == nil {
				t.Fatalf("accepted: %+v", consumed)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not a pipeline error: %v", err)
			}
			if e.Reason != c.Reason || e.Stage.String() != c.Stage {
				t.Fatalf("refused as %s/%s (%v), want %s/%s", e.Reason, e.Stage, e.Cause(), c.Reason, c.Stage)
			}
			t.Logf("refused: %s/%s: %v", e.Reason, e.Stage, e.Cause())
			if !publicTexts[e.Public] {
				t.Errorf("public text %q is not one of the category texts", e.Public)
			}
			if strings.Contains(e.Error(), "4111111111111111") || (e.Cause() != nil && strings.Contains(e.Cause().Error(), "4111111111111111")) {
				t.Errorf("error reveals a card number")
			}
		})
	}
}

// allErrors lists every refusal value, so tests can check that public texts
// come only from them.
var allErrors = []*Error{
	ErrTooLarge, ErrDoctype, ErrMalformed, ErrShape, ErrAlgorithm, ErrUnknownIssuer, ErrSignature, ErrInternal,
	ErrVersion, ErrStructure, ErrTime, ErrDestination, ErrReplay, ErrNotAuthorized, ErrUnknownService,
	ErrInResponseTo, ErrAuthResult, ErrDecryption, ErrPayload, ErrStore,
}
