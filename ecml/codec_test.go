package ecml

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// TestRoundTripFull: XML → Go → XML is byte-exact for the canonical fixture
// holding every field, and the fixture is valid.
func TestRoundTripFull(t *testing.T) {
	data := readFixture(t, "full.xml")
	p := mustParse(t, data)
	if got := mustMarshal(t, p); !bytes.Equal(got, data) {
		t.Errorf("round trip differs:\n%s", got)
	}
	if probs := p.Validate(strictOpts); len(probs) > 0 {
		t.Errorf("full.xml has problems: %v", probs)
	}
}

// TestRoundTripEncrypted: stand-ins in every sensitive slot and unknown
// extension elements come back in the same places.
func TestRoundTripEncrypted(t *testing.T) {
	data := readFixture(t, "encrypted.xml")
	p := mustParse(t, data)
	if got := mustMarshal(t, p); !bytes.Equal(got, data) {
		t.Errorf("round trip differs:\n%s", got)
	}
	e := p.Ecom
	for name, el := range map[string]*etree.Element{
		"EncryptedCard":          e.Payment.EncryptedCard,
		"EncryptedLoyalty":       e.EncryptedLoyalty,
		"EncryptedPassword":      e.User.EncryptedPassword,
		"EncryptedTrack1":        e.Transaction.Data.EncryptedTrack1,
		"EncryptedTrack2":        e.Transaction.Data.EncryptedTrack2,
		"EncryptedBirthDate":     p.UserData.EncryptedBirthDate,
		"EncryptedAccountNumber": p.BankAccounts[0].EncryptedAccountNumber,
		"EncryptedChallenge":     p.AmountAuth.EncryptedChallenge,
		"EncryptedNumber":        p.VirtualCard.EncryptedNumber,
		"EncryptedOneTimeCode":   p.EncryptedOneTimeCode,
		"EncryptedKeyIn":         p.EncryptedKeyIn,
	} {
		if el == nil || !isStandIn(el) {
			t.Errorf("%s: not kept as a stand-in: %v", name, el)
		}
	}
	if len(p.Unknown) != 2 || p.Unknown[0].Tag != "Future" || p.Unknown[1].Tag != "Another" {
		t.Errorf("unknown elements: %v", p.Unknown)
	}
	// Stand-ins are accepted only when allowed, and refused when not.
	if probs := p.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireEncrypted: true, RequireSchemaVersion: true}); len(probs) > 0 {
		t.Errorf("encrypted.xml with AllowEncrypted: %v", probs)
	}
	probs := p.Validate(ValidateOptions{Now: testNow})
	if len(probs) != 11 {
		t.Errorf("without AllowEncrypted: want 11 problems, got %d: %v", len(probs), probs)
	}
}

// TestStandInPositions: a stand-in takes the first sensitive slot after the
// last element read, and every arrangement round-trips exactly.
func TestStandInPositions(t *testing.T) {
	const enc = `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"/>`
	for _, tc := range []struct {
		name, data string
		check      func(d *Data) bool
	}{
		{"lone", `<Trace>1</Trace>` + enc, func(d *Data) bool { return d.EncryptedTrack1 != nil && d.Track2 == nil }},
		{"enc-then-clear", enc + `<Track2>x</Track2>`, func(d *Data) bool { return d.EncryptedTrack1 != nil && d.Track2 != nil }},
		{"clear-then-enc", `<Track1>x</Track1>` + enc, func(d *Data) bool { return d.Track1 != nil && d.EncryptedTrack2 != nil }},
		{"both", enc + enc, func(d *Data) bool { return d.EncryptedTrack1 != nil && d.EncryptedTrack2 != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `<Ecom><Transaction><Data>` + tc.data + `</Data></Transaction></Ecom>`
			p := mustParseString(t, doc)
			if !tc.check(p.Ecom.Transaction.Data) {
				t.Errorf("slots: %+v", p.Ecom.Transaction.Data)
			}
			out := mustMarshal(t, p)
			if got := mustMarshal(t, mustParse(t, out)); !bytes.Equal(got, out) {
				t.Errorf("not stable:\n%s\n%s", out, got)
			}
			if !bytes.Contains(unindent(out), []byte(tc.data)) {
				t.Errorf("order changed:\n%s", out)
			}
		})
	}
	// Top level: a lone stand-in takes the kx:OneTimeCode slot; with a clear
	// code before it, the kx:KeyIn slot; a third goes with the unknown ones.
	p := mustParseString(t, `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"><Ecom/><kx:OneTimeCode>1234</kx:OneTimeCode>`+enc+`</kecis:Payload>`)
	if p.OneTimeCode != "1234" || p.EncryptedKeyIn == nil || p.EncryptedOneTimeCode != nil {
		t.Errorf("top-level slots: %+v", p)
	}
	p = mustParseString(t, `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"><Ecom/>`+enc+enc+enc+`</kecis:Payload>`)
	if p.EncryptedOneTimeCode == nil || p.EncryptedKeyIn == nil || len(p.Unknown) != 1 {
		t.Errorf("three stand-ins: %+v", p)
	}
}

// unindent removes the white space between tags, to compare orders.
func unindent(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		out = append(out, bytes.TrimSpace(line)...)
	}
	return out
}

// TestStandInNamespaces: a stand-in whose prefix is declared on an ancestor
// is kept self-contained, and written without redundant declarations.
func TestStandInNamespaces(t *testing.T) {
	doc := `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">` +
		`<Ecom><Payment><xenc:EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element"><ds:KeyInfo/></xenc:EncryptedData></Payment></Ecom>` +
		`<kx:Future/></kecis:Payload>`
	p := mustParseString(t, doc)
	enc := p.Ecom.Payment.EncryptedCard
	if enc.Parent() != nil {
		t.Error("stand-in is not detached")
	}
	for _, prefix := range []string{"xenc", "ds"} {
		if uri, ok := lookupPrefix(enc, prefix); !ok || uri == "" {
			t.Errorf("detached stand-in does not declare %s", prefix)
		}
	}
	// Written into a message whose root declares xenc, the copy drops it.
	root := etree.NewElement("kecis:Payload")
	root.CreateAttr("xmlns:kecis", ProtocolNamespace)
	root.CreateAttr("xmlns:xenc", XMLEncNamespace)
	if err := p.AppendTo(root); err != nil {
		t.Fatal(err)
	}
	doc2 := etree.NewDocumentWithRoot(root)
	s, _ := doc2.WriteToString()
	if strings.Count(s, `xmlns:xenc=`) != 1 || strings.Count(s, `xmlns:ds=`) != 1 {
		t.Errorf("declarations not pruned: %s", s)
	}
	// The result reads back to the same payload.
	p2, err := ParsePayload(root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMarshal(t, p2), mustMarshal(t, p)) {
		t.Error("AppendTo + ParsePayload changed the payload")
	}
}

// TestAppendToDefaultNamespace: Ecom stays in no namespace inside a
// container under a default namespace, and kx is declared where needed.
func TestAppendToDefaultNamespace(t *testing.T) {
	p := fullPayload(t)
	for _, tc := range []struct {
		name  string
		build func() *etree.Element
	}{
		{"default-ns", func() *etree.Element {
			e := etree.NewElement("Payload")
			e.CreateAttr("xmlns", ProtocolNamespace)
			return e
		}},
		{"kx-bound-elsewhere", func() *etree.Element {
			outer := etree.NewElement("kecis:ServiceRequest")
			outer.CreateAttr("xmlns:kecis", ProtocolNamespace)
			outer.CreateAttr("xmlns:kx", "urn:example:other")
			return outer.CreateElement("kecis:Payload")
		}},
		{"kx-bound-on-container", func() *etree.Element {
			e := etree.NewElement("kecis:Payload")
			e.CreateAttr("xmlns:kecis", ProtocolNamespace)
			e.CreateAttr("xmlns:kx", "urn:example:other")
			return e
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.build()
			if err := p.AppendTo(c); err != nil {
				t.Fatal(err)
			}
			// Serialise the whole tree and read it back.
			top := c
			for top.Parent() != nil {
				top = top.Parent()
			}
			doc := etree.NewDocumentWithRoot(top)
			s, err := doc.WriteToString()
			if err != nil {
				t.Fatal(err)
			}
			d2 := etree.NewDocument()
			if err := d2.ReadFromString(s); err != nil {
				t.Fatal(err)
			}
			var c2 *etree.Element
			if d2.Root().Tag == "Payload" {
				c2 = d2.Root()
			} else {
				c2 = d2.Root().ChildElements()[0]
			}
			p2, err := ParsePayload(c2)
			if err != nil {
				t.Fatalf("%v\n%s", err, s)
			}
			if !bytes.Equal(mustMarshal(t, p2), mustMarshal(t, p)) {
				t.Errorf("payload changed:\n%s", s)
			}
		})
	}
}

// TestAppendToRefusesBadCharacters: a value XML cannot carry is an error
// and leaves the container untouched.
func TestAppendToRefusesBadCharacters(t *testing.T) {
	p := &Payload{Ecom: &Ecom{ConsumerOrderID: "A\x01B"}, Device: &Device{ID: "d"}}
	c := etree.NewElement("c")
	err := p.AppendTo(c)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Path != "/Ecom/@ConsumerOrderID" {
		t.Fatalf("err = %v", err)
	}
	if len(c.Child) != 0 || len(c.Attr) != 0 {
		t.Error("container changed")
	}
	if _, err := p.MarshalDocument(); err == nil {
		t.Error("MarshalDocument accepted a control character")
	}
}

// TestMarshalShapes: a bare Ecom when nothing else is there, a container
// otherwise; golden files pin the exact bytes.
func TestMarshalShapes(t *testing.T) {
	bare := &Payload{Ecom: &Ecom{SchemaVersion: SchemaVersion, Transaction: &Transaction{Currency: "KRW", Amount: "15000", Type: "debit"}}}
	golden(t, "bare.xml", mustMarshal(t, bare))
	withExt := &Payload{Ecom: bare.Ecom, Escrow: &Escrow{State: EscrowShipped}}
	golden(t, "container.xml", mustMarshal(t, withExt))
	golden(t, "empty.xml", mustMarshal(t, &Payload{}))
	// Values with characters that need references survive.
	odd := &Payload{Ecom: &Ecom{ConsumerOrderID: "a\tb\r\nc\"<&>'", ShipTo: &Address{Postal: &Postal{City: &Text{Value: " \r\n "}, Company: &Text{Value: "x\ry"}}}}}
	out := mustMarshal(t, odd)
	golden(t, "escapes.xml", out)
	back := mustParse(t, out)
	if back.Ecom.ConsumerOrderID != odd.Ecom.ConsumerOrderID || back.Ecom.ShipTo.Postal.City.Value != " \r\n " || back.Ecom.ShipTo.Postal.Company.Value != "x\ry" {
		t.Errorf("values changed: %q %q %q", back.Ecom.ConsumerOrderID, back.Ecom.ShipTo.Postal.City.Value, back.Ecom.ShipTo.Postal.Company.Value)
	}
}

// TestParseErrors: every structural refusal, with its path.
func TestParseErrors(t *testing.T) {
	const kx = `xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"`
	deep := strings.Repeat("<kx:Future>", 70) + strings.Repeat("</kx:Future>", 70)
	for _, tc := range []struct {
		name, doc, path, msg string
	}{
		{"doctype", `<!DOCTYPE Ecom><Ecom/>`, "", "DOCTYPE"},
		{"doctype-entity", `<!DOCTYPE Ecom [<!ENTITY a "b">]><Ecom>&a;</Ecom>`, "", "DOCTYPE"},
		{"depth", `<kecis:Payload ` + kx + `><Ecom/>` + deep + `</kecis:Payload>`, "", "deeper than 64"},
		{"not-xml", `<Ecom>`, "", "not well-formed"},
		{"undefined-entity", `<Ecom>&nbsp;</Ecom>`, "", "not well-formed"},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><Ecom/>`, "", "not well-formed"},
		{"invalid-utf8", "<Ecom ConsumerOrderID=\"\xff\"/>", "", "not UTF-8"},
		{"comment-before", `<!-- hi --><Ecom/>`, "", "comment outside"},
		{"comment-after", `<Ecom/><!-- hi -->`, "", "comment outside"},
		{"pi-after", `<Ecom/><?pi x?>`, "", "processing instruction"},
		{"pi-before", `<?pi x?><Ecom/>`, "", "processing instruction"},
		{"two-roots", `<Ecom/><Ecom/>`, "", "more than one root"},
		{"text-outside", `<Ecom/>junk`, "", "text outside"},
		{"no-root", ` `, "", "no root"},
		{"wrong-root", `<Foo/>`, "/Foo", "root element"},
		{"namespaced-ecom", `<Ecom xmlns="urn:x"/>`, "/{urn:x}Ecom", "root element"},
		{"unbound-root", `<x:Ecom/>`, "/x:Ecom", "not bound"},
		{"container-attr", `<kecis:Payload ` + kx + ` Foo="1"/>`, "/@Foo", "unexpected attribute"},
		{"unknown-attr", `<Ecom Foo="1"/>`, "/Ecom/@Foo", "unexpected attribute"},
		{"prefixed-attr", `<Ecom xml:lang="ko"/>`, "/Ecom/@xml:lang", "unexpected attribute"},
		{"dup-attr", `<Ecom Mode="Query" Mode="Assert"/>`, "/Ecom/@Mode", "repeated attribute"},
		{"unknown-child", `<Ecom><Foo/></Ecom>`, "/Ecom/Foo", "unexpected element"},
		{"foreign-child", `<Ecom><f:Foo xmlns:f="urn:f"/></Ecom>`, "/Ecom/f:Foo", "namespace urn:f"},
		{"ext-in-ecom", `<Ecom xmlns:kx="urn:kecis:ecml-ext:1.0"><kx:Device/></Ecom>`, "/Ecom/kx:Device", "unexpected element"},
		{"unbound-child", `<Ecom><q:Foo/></Ecom>`, "/Ecom/q:Foo", "not bound"},
		{"dup-singleton", `<Ecom><Payment/><Payment/></Ecom>`, "/Ecom/Payment", "repeated element"},
		{"dup-ecom", `<kecis:Payload ` + kx + `><Ecom/><Ecom/></kecis:Payload>`, "/Ecom", "repeated element"},
		{"order", `<Ecom><Transaction/><Payment/></Ecom>`, "/Ecom/Payment", "out of order"},
		{"order-ext", `<kecis:Payload ` + kx + `><kx:Escrow State="funded"/><kx:Device/></kecis:Payload>`, "/kx:Device", "out of order"},
		{"order-cardauth", `<kecis:Payload ` + kx + `><kx:OneTimeCode>1234</kx:OneTimeCode><kx:CardAuth/></kecis:Payload>`, "/kx:CardAuth", "out of order"},
		{"cardauth-child", `<kecis:Payload ` + kx + `><kx:CardAuth><kx:X/></kx:CardAuth></kecis:Payload>`, "/kx:CardAuth/kx:X", "unexpected element"},
		{"cardauth-attr", `<kecis:Payload ` + kx + `><kx:CardAuth Amount="1"/></kecis:Payload>`, "/kx:CardAuth/@Amount", "unexpected attribute"},
		{"unknown-before-known", `<kecis:Payload ` + kx + `><kx:Future/><kx:Escrow/></kecis:Payload>`, "/kx:Escrow", "out of order"},
		{"text-in-element-only", `<Ecom><Payment>card</Payment></Ecom>`, "/Ecom/Payment", "unexpected text"},
		{"text-in-address", `<Ecom><ShipTo>somewhere</ShipTo></Ecom>`, "/Ecom/ShipTo", "unexpected text"},
		{"text-in-empty", `<Ecom><Payment><Card Number="1"><ExpDate>x</ExpDate></Card></Payment></Ecom>`, "/Ecom/Payment/Card/ExpDate", "unexpected text"},
		{"child-in-text", `<Ecom><User><UserID><b/></UserID></User></Ecom>`, "/Ecom/User/UserID/b", "unexpected element"},
		{"comment-in-text", `<Ecom><User><UserID>alice<!---->@evil</UserID></User></Ecom>`, "/Ecom/User/UserID", "comments"},
		{"comment-in-ecom", `<Ecom><!-- x --></Ecom>`, "/Ecom", "comments"},
		{"pi-in-ecom", `<Ecom><?x y?></Ecom>`, "/Ecom", "processing instructions"},
		{"other-ns-in-container", `<kecis:Payload ` + kx + `><kecis:Other/></kecis:Payload>`, "/kecis:Other", "unexpected element"},
		{"standin-type", `<Ecom><Payment><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Content"/></Payment></Ecom>`, "/Ecom/Payment/xenc:EncryptedData/@Type", "must be"},
		{"standin-public-slot", `<Ecom><ShipTo><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"/></ShipTo></Ecom>`, "/Ecom/ShipTo/xenc:EncryptedData", "only where a sensitive"},
		{"standin-and-clear", `<Ecom><Payment><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"/><Card/></Payment></Ecom>`, "/Ecom/Payment/Card", "repeated"},
		{"directive-in-unknown", `<kecis:Payload ` + kx + `><kx:Future><!ELEMENT x ANY></kx:Future></kecis:Payload>`, "/kx:Future", "directives"},
		{"mode-on-ext-date", `<kecis:Payload ` + kx + `><kx:VirtualCard><kx:ExpDate Mode="Query"/></kx:VirtualCard></kecis:Payload>`, "/kx:VirtualCard/kx:ExpDate/@Mode", "unexpected attribute"},
		{"bankaccount-index", `<kecis:Payload ` + kx + `><kx:BankAccount/><kx:BankAccount Foo="x"/></kecis:Payload>`, "/kx:BankAccount[2]/@Foo", "unexpected attribute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tc.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a ParseError", err)
			}
			if pe.Path != tc.path || !strings.Contains(pe.Message, tc.msg) {
				t.Errorf("got %q: %q; want %q: …%s…", pe.Path, pe.Message, tc.path, tc.msg)
			}
		})
	}
}

func TestParseDocumentSize(t *testing.T) {
	big := append([]byte("<Ecom ConsumerOrderID=\""), bytes.Repeat([]byte("a"), MaxDocumentSize)...)
	big = append(big, "\"/>"...)
	if _, err := ParseDocument(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
	// A byte order mark and an XML declaration are fine.
	if _, err := ParseDocument([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Ecom/>\n")); err != nil {
		t.Error(err)
	}
}

// TestParseDepthLimit: nesting up to MaxDepth is accepted.
func TestParseDepthLimit(t *testing.T) {
	const kx = `xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"`
	n := MaxDepth - 1 // the container is the first level
	doc := `<kecis:Payload ` + kx + `><Ecom/>` + strings.Repeat("<kx:Future>", n) + strings.Repeat("</kx:Future>", n) + `</kecis:Payload>`
	if _, err := ParseDocument([]byte(doc)); err != nil {
		t.Errorf("depth %d refused: %v", MaxDepth, err)
	}
}

// TestParseErrorsNeverQuoteSecrets: an element name carrying a card number
// does not leak through the error.
func TestParseErrorsNeverQuoteSecrets(t *testing.T) {
	_, err := ParseDocument([]byte(`<Ecom><x` + testPAN + `/></Ecom>`))
	if err == nil || strings.Contains(err.Error(), testPAN) || !strings.Contains(err.Error(), MaskPAN(testPAN)) {
		t.Errorf("err = %v", err)
	}
}

// TestUnknownExtensionPreserved: unknown extension elements keep their
// content, attributes, namespaces and order.
func TestUnknownExtensionPreserved(t *testing.T) {
	doc := `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"><Ecom/>` +
		`<kx:B a="1"><kx:C>text</kx:C><o:D xmlns:o="urn:o"/></kx:B><ext:A xmlns:ext="urn:kecis:ecml-ext:1.0" z="2"/><kx:B a="3"/></kecis:Payload>`
	p := mustParseString(t, doc)
	if len(p.Unknown) != 3 {
		t.Fatalf("unknown = %d", len(p.Unknown))
	}
	var names []string
	for _, u := range p.Unknown {
		names = append(names, u.FullTag()+plainAttr(u, "a")+plainAttr(u, "z"))
	}
	if got := strings.Join(names, ","); got != "kx:B1,ext:A2,kx:B3" {
		t.Errorf("order: %s", got)
	}
	out := mustMarshal(t, p)
	golden(t, "unknown.xml", out)
	p2 := mustParse(t, out)
	if !bytes.Equal(mustMarshal(t, p2), out) {
		t.Error("not stable")
	}
	if p2.Unknown[0].FindElement("kx:C").Text() != "text" {
		t.Error("content lost")
	}
}

// TestSensitiveElements: the list, in document order, from a clear payload;
// nothing from an encrypted one.
func TestSensitiveElements(t *testing.T) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(readFixture(t, "full.xml")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, el := range SensitiveElements(doc.Root()) {
		got = append(got, el.GetPath())
		if !IsSensitive(el) {
			t.Errorf("IsSensitive(%s) = false", el.GetPath())
		}
	}
	want := []string{
		"/Payload/Ecom/Payment/Card",
		"/Payload/Ecom/Loyalty",
		"/Payload/Ecom/User/Password",
		"/Payload/Ecom/Transaction/Data/Track1",
		"/Payload/Ecom/Transaction/Data/Track2",
		"/Payload/UserData/BirthDate",
		"/Payload/BankAccount/AccountNumber",
		"/Payload/BankAccount/AccountNumber",
		"/Payload/AmountAuth/Challenge",
		"/Payload/VirtualCard/Number",
		"/Payload/OneTimeCode",
		"/Payload/KeyIn",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s", strings.Join(got, "\n"))
	}
	// A bare Ecom works as the container too.
	if n := len(SensitiveElements(doc.Root().SelectElement("Ecom"))); n != 5 {
		t.Errorf("bare Ecom: %d", n)
	}
	// Replace each with a stand-in, as the envelope layer does: nothing is
	// left, and the result parses with every slot encrypted.
	for _, el := range SensitiveElements(doc.Root()) {
		enc := etree.NewElement("xenc:EncryptedData")
		enc.CreateAttr("xmlns:xenc", XMLEncNamespace)
		enc.CreateAttr("Type", XMLEncElementType)
		el.Parent().InsertChildAt(el.Index(), enc)
		el.Parent().RemoveChild(el)
	}
	if left := SensitiveElements(doc.Root()); len(left) != 0 {
		t.Errorf("left in clear: %d", len(left))
	}
	p, err := ParsePayload(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	if probs := p.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireEncrypted: true}); len(probs) != 0 {
		t.Errorf("problems: %v", probs)
	}
	if p.Ecom.Payment.EncryptedCard == nil || p.EncryptedOneTimeCode == nil || p.EncryptedKeyIn == nil ||
		p.BankAccounts[1].EncryptedAccountNumber == nil || p.Ecom.Transaction.Data.EncryptedTrack2 == nil {
		t.Errorf("slots: %+v", p)
	}
}

func TestIsSensitive(t *testing.T) {
	doc := etree.NewDocument()
	err := doc.ReadFromString(`<r xmlns:kx="urn:kecis:ecml-ext:1.0"><Other><Card/><Password/></Other><kx:Other><kx:Number/></kx:Other><Payment><Card/></Payment><kx:Device/></r>`)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"Other/Card":         false,
		"Other/Password":     false,
		"kx:Other/kx:Number": false,
		"Payment/Card":       true,
		"kx:Device":          false,
	} {
		if got := IsSensitive(doc.Root().FindElement(path)); got != want {
			t.Errorf("%s: %v", path, got)
		}
	}
	// Detached elements are judged by name.
	for _, tag := range []string{"Card", "Loyalty", "Password", "Track1", "Track2"} {
		if !IsSensitive(etree.NewElement(tag)) {
			t.Errorf("detached %s", tag)
		}
	}
	kx := etree.NewElement("kx:Number")
	kx.CreateAttr("xmlns:kx", ExtNamespace)
	if !IsSensitive(kx) || IsSensitive(nil) || IsSensitive(etree.NewElement("Trace")) {
		t.Error("detached kx:Number / nil / Trace")
	}
}

// TestSensitivePaths: the listing covers the sensitive elements and every
// PAN or Secret field of the model.
func TestSensitivePaths(t *testing.T) {
	got := strings.Join(SensitivePaths(), "\n")
	golden(t, "sensitive-paths.txt", []byte(got+"\n"))
	for _, p := range sensitiveElements {
		if !strings.Contains(got, p) {
			t.Errorf("missing %s", p)
		}
	}
	for _, p := range []string{"/Ecom/Payment/Card/@Number", "/Ecom/Payment/Card/@Verification", "/kx:KeyIn/@PasswordPrefix"} {
		if !strings.Contains(got, p+"\n") {
			t.Errorf("missing %s", p)
		}
	}
}

func ExampleParseDocument() {
	p, err := ParseDocument([]byte(`<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0">
  <Transaction Currency="KRW" Type="debit" Amount="15000"/>
</Ecom>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	m, _ := p.Ecom.Transaction.Money()
	fmt.Println(m)
	// Output: 15000 KRW
}

// TestCardAuth: kx:CardAuth (KECIS §15.7) reads, writes back in its slot
// (after kx:Escrow, before kx:OneTimeCode), maps to its flat names, and its
// defaults read as the contract says.
func TestCardAuth(t *testing.T) {
	const doc = `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"><Ecom/>` +
		`<kx:Escrow State="funded"/><kx:CardAuth Acquirer="https://pg.example.kr/kecis" VirtualCard="true" Use="multi" MerchantLock="false" NotOnOrAfter="2026-11-05T10:30:00+09:00"/>` +
		`<kx:OneTimeCode>1234</kx:OneTimeCode></kecis:Payload>`
	p := mustParseString(t, doc)
	want := CardAuth{Acquirer: "https://pg.example.kr/kecis", VirtualCard: "true", Use: CardAuthMultiUse, MerchantLock: "false", NotOnOrAfter: "2026-11-05T10:30:00+09:00"}
	if p.CardAuth == nil || *p.CardAuth != want {
		t.Fatalf("CardAuth = %#v", p.CardAuth)
	}
	if !p.CardAuth.WantsVirtual() || p.CardAuth.SingleUse() || p.CardAuth.MerchantLocked() {
		t.Errorf("helpers: virtual %v single %v locked %v", p.CardAuth.WantsVirtual(), p.CardAuth.SingleUse(), p.CardAuth.MerchantLocked())
	}
	if exp, ok := p.CardAuth.Expiry(); !ok || !exp.Equal(time.Date(2026, 11, 5, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("Expiry = %v %v", exp, ok)
	}
	out, err := p.MarshalDocument()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if i, j, k := strings.Index(s, "kx:Escrow"), strings.Index(s, "kx:CardAuth"), strings.Index(s, "kx:OneTimeCode"); !(i < j && j < k) {
		t.Errorf("order: %s", s)
	}
	back := mustParseString(t, s)
	if back.CardAuth == nil || *back.CardAuth != want {
		t.Errorf("round trip: %#v", back.CardAuth)
	}
	form := back.Form()
	for name, v := range map[string]string{
		"KECIS_CardAuth_Acquirer": want.Acquirer, "KECIS_CardAuth_VirtualCard": "true", "KECIS_CardAuth_Use": "multi",
		"KECIS_CardAuth_MerchantLock": "false", "KECIS_CardAuth_NotOnOrAfter": want.NotOnOrAfter,
	} {
		if got := form.Get(name); got != v {
			t.Errorf("Form %s = %q, want %q", name, got, v)
		}
	}
	// Absent attributes: real number, single use, merchant-locked, no expiry.
	var none *CardAuth
	empty := &CardAuth{}
	for _, c := range []*CardAuth{none, empty} {
		if c.WantsVirtual() || !c.SingleUse() || !c.MerchantLocked() {
			t.Errorf("defaults of %#v", c)
		}
		if _, ok := c.Expiry(); ok {
			t.Errorf("Expiry of %#v", c)
		}
	}
}
