package metadata_test

import (
	"bytes"
	"encoding/xml"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The package uses exactly one crewjam/saml type, Organization (with its
// LocalizedName and LocalizedURI), through encoding/xml. These tests prove
// that this is lossless in both directions for every md:Organization the
// strict parser admits, and show why the other crewjam types are not used.

// orgElement returns the md:Organization element of a parsed document.
func orgElement(t *testing.T, doc []byte) *etree.Element {
	t.Helper()
	root, err := saml.ParseDocument(doc, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Organization" {
			return c
		}
	}
	t.Fatalf("no md:Organization in\n%s", doc)
	return nil
}

// TestCrewjamOrganizationXMLRoundTrip: XML → crewjam.Organization → XML
// keeps the exclusive canonical form of md:Organization (what a signature
// covers), for tricky content: several languages, markup characters,
// character references, CDATA, white space at the ends, astral-plane
// characters, a region subtag.
func TestCrewjamOrganizationXMLRoundTrip(t *testing.T) {
	base := simpleXML(t)
	for _, org := range []string{
		`<md:Organization><md:OrganizationName xml:lang="en">Example PG</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">Example</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://pg.example/</md:OrganizationURL></md:Organization>`,
		`<md:Organization><md:OrganizationName xml:lang="ko">주식회사 예시</md:OrganizationName><md:OrganizationName xml:lang="en">Example Co., Ltd.</md:OrganizationName><md:OrganizationName xml:lang="ko-KR">예시</md:OrganizationName><md:OrganizationDisplayName xml:lang="ko">예시 &amp; 동료들 &lt;PG&gt; "quoted" 'single'</md:OrganizationDisplayName><md:OrganizationDisplayName xml:lang="en">  spaces at both ends  </md:OrganizationDisplayName><md:OrganizationURL xml:lang="ko">https://pg.example/ko?a=1&amp;b=2</md:OrganizationURL><md:OrganizationURL xml:lang="en">https://pg.example/en</md:OrganizationURL></md:Organization>`,
		`<md:Organization><md:OrganizationName xml:lang="en">&#xAC00;&#44032;&#x1F4B3; card]]&gt;</md:OrganizationName><md:OrganizationDisplayName xml:lang="en"><![CDATA[<CDATA & co>]]></md:OrganizationDisplayName><md:OrganizationURL xml:lang="x-private">urn:example:org</md:OrganizationURL></md:Organization>`,
		"<md:Organization>\n  <md:OrganizationName xml:lang=\"en\">A</md:OrganizationName>\n  <md:OrganizationDisplayName xml:lang=\"en\">B</md:OrganizationDisplayName>\n  <md:OrganizationURL xml:lang=\"en\">https://c.example/</md:OrganizationURL>\n</md:Organization>",
	} {
		doc := []byte(strings.Replace(base, `</md:RoleDescriptor>`, `</md:RoleDescriptor>`+org, 1))
		ed, err := metadata.Parse(doc)
		if err != nil {
			t.Fatalf("%v\n%s", err, org)
		}
		out, err := metadata.MarshalCompact(ed)
		if err != nil {
			t.Fatal(err)
		}
		in, got := orgElement(t, doc), orgElement(t, out)
		stripIndent(in)
		if a, b := saml.CanonicalizeExclusive(in, nil), saml.CanonicalizeExclusive(got, nil); !bytes.Equal(a, b) {
			t.Fatalf("md:Organization changed:\n%s\n---\n%s", a, b)
		}
		// And through encoding/xml directly, into crewjam's type and back.
		var direct crewjam.Organization
		if err := xml.Unmarshal([]byte(strings.Replace(org, "<md:Organization>", `<md:Organization xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">`, 1)), &direct); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&direct, ed.Organization) {
			t.Fatalf("encoding/xml read %+v, the package %+v", direct, ed.Organization)
		}
	}
}

// stripIndent removes white-space-only text between elements (our marshal
// form is compact; white space between elements is not content).
func stripIndent(el *etree.Element) {
	for i := len(el.Child) - 1; i >= 0; i-- {
		if cd, ok := el.Child[i].(*etree.CharData); ok && cd.IsWhitespace() && len(el.ChildElements()) > 0 {
			el.RemoveChildAt(i)
		}
	}
	for _, c := range el.ChildElements() {
		stripIndent(c)
	}
}

// TestCrewjamOrganizationGoRoundTrip: crewjam.Organization → XML →
// crewjam.Organization gives the same value and the same bytes, for random
// values over an alphabet of the characters that XML treats specially.
func TestCrewjamOrganizationGoRoundTrip(t *testing.T) {
	alphabet := []rune("aZ09 &<>\"'%;]]>#\u00a0가힣€\U0001F4B3=:/?")
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		for {
			n := 1 + r.IntN(24)
			var b strings.Builder
			for range n {
				b.WriteRune(alphabet[r.IntN(len(alphabet))])
			}
			if strings.TrimSpace(b.String()) != "" { // a name of spaces is refused
				return b.String()
			}
		}
	}
	langs := []string{"ko", "en", "ko-KR", "en-US", "zh-Hant-TW", "x-kecis"}
	names := func() []crewjam.LocalizedName {
		out := make([]crewjam.LocalizedName, 1+r.IntN(3))
		for i := range out {
			out[i] = crewjam.LocalizedName{Lang: langs[r.IntN(len(langs))], Value: str()}
		}
		return out
	}
	ed := simple(t)
	for range 500 {
		org := &crewjam.Organization{OrganizationNames: names(), OrganizationDisplayNames: names()}
		for range 1 + r.IntN(2) {
			org.OrganizationURLs = append(org.OrganizationURLs, crewjam.LocalizedURI{Lang: langs[r.IntN(len(langs))], Value: "https://pg.example/" + url.PathEscape(str())})
		}
		ed.Organization = org
		b1, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatalf("%+v: %v", org, err)
		}
		back, err := metadata.Parse(b1)
		if err != nil {
			t.Fatalf("%v\n%s", err, b1)
		}
		if !reflect.DeepEqual(back.Organization, org) {
			t.Fatalf("value changed:\n%+v\n%+v", org, back.Organization)
		}
		b2, _ := metadata.Marshal(back)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("bytes changed:\n%s\n%s", b1, b2)
		}
	}
}

// TestCrewjamContactPersonIsLossy shows why md:ContactPerson is KECIS's own
// type: crewjam's writes absent names as empty elements, so absent and
// empty cannot be told apart, and it drops md:Extensions.
func TestCrewjamContactPersonIsLossy(t *testing.T) {
	in := `<ContactPerson xmlns="urn:oasis:names:tc:SAML:2.0:metadata" contactType="technical"><Extensions><x:Pager xmlns:x="urn:x">1</x:Pager></Extensions><EmailAddress>mailto:ops@pg.example</EmailAddress></ContactPerson>`
	var c crewjam.ContactPerson
	if err := xml.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	out, err := xml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "<Company></Company>") || strings.Contains(string(out), "Pager") {
		t.Fatalf("crewjam/saml's ContactPerson became lossless; consider using it:\n%s", out)
	}
	// Ours keeps absent as absent.
	doc := strings.Replace(simpleXML(t), `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:ContactPerson contactType="technical"><md:EmailAddress>mailto:ops@pg.example</md:EmailAddress></md:ContactPerson>`, 1)
	ed, err := metadata.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := metadata.MarshalCompact(ed)
	if string(back) != doc {
		t.Fatalf("ContactPerson changed:\n%s\n%s", doc, back)
	}
}

// TestCrewjamEntityDescriptorLosesKECIS shows why EntityDescriptor is
// KECIS's own type (KECIS §11.1): read into crewjam/saml's
// EntityDescriptor and written back, a KECIS descriptor loses its
// md:Extensions (the display name), its typed role descriptor's content
// (roles, TLS keys, endpoints, offered services) and all but one contact.
func TestCrewjamEntityDescriptorLosesKECIS(t *testing.T) {
	ed := participants()[3] // has an organization and a contact
	ed2 := *ed
	ed2.ContactPersons = append(ed2.ContactPersons, metadata.ContactPerson{Type: "support", EmailAddresses: []string{"mailto:help@x.example"}})
	in, err := metadata.MarshalCompact(&ed2)
	if err != nil {
		t.Fatal(err)
	}
	var c crewjam.EntityDescriptor
	if err := xml.Unmarshal(in, &c); err != nil {
		t.Fatal(err)
	}
	out, err := xml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, lost := range []string{"ParticipantInfo", "ParticipantDescriptorType", "Roles=", "TLSKeyDescriptor", "Endpoint", "OfferedService", "BINs"} {
		if strings.Contains(string(out), lost) {
			t.Errorf("crewjam/saml now keeps %s; revisit the decision", lost)
		}
	}
	if n := strings.Count(string(out), "<ContactPerson"); n != 1 {
		t.Errorf("crewjam/saml now keeps %d of 2 contacts; revisit the decision", n)
	}
}
