package metadata_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const simpleID = "https://pg.example/kecis"

func simple(t testing.TB) *metadata.EntityDescriptor {
	t.Helper()
	return metadatatest.Simple(simpleID, loadCert(t, "merchant-rsa"), loadCert(t, "merchant-ec"))
}

func simpleXML(t testing.TB) string {
	t.Helper()
	b, err := metadata.MarshalCompact(simple(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRoundTripGenerated: for every generated participant, Go → XML → Go →
// XML gives the same bytes (indented; compact for every tenth), and the
// second Go value holds the same certificates.
func TestRoundTripGenerated(t *testing.T) {
	for i, ed := range participants() {
		forms := []func(*metadata.EntityDescriptor) ([]byte, error){metadata.Marshal}
		if i%10 == 0 {
			forms = append(forms, metadata.MarshalCompact)
		}
		for _, marshal := range forms {
			b1, err := marshal(ed)
			if err != nil {
				t.Fatalf("%s: %v", ed.EntityID, err)
			}
			back, err := metadata.Parse(b1)
			if err != nil {
				t.Fatalf("%s: %v\n%s", ed.EntityID, err, b1)
			}
			b2, err := marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("%s: round trip changed the document:\n%s\n---\n%s", ed.EntityID, b1, b2)
			}
			if len(back.Keys) != len(ed.Keys) || !back.Keys[0].Certificate.Equal(ed.Keys[0].Certificate) || len(back.Endpoints) != 10 {
				t.Fatalf("%s: keys or endpoints lost", ed.EntityID)
			}
		}
	}
}

// TestRoundTripForeignForm: a descriptor written by hand — other prefixes,
// a default namespace, line-wrapped base64, attributes in another order,
// white space — reads into the same value as our own form, and from then
// on our form round-trips byte for byte.
func TestRoundTripForeignForm(t *testing.T) {
	ed := simple(t)
	ed.ValidUntil = now.Add(48 * time.Hour)
	ed.CacheDuration = 90 * time.Minute
	ours, err := metadata.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	cert := ed.Keys[0].Certificate // encryption (pool RSA)
	der := cert.Raw
	b64 := base64Wrapped(der)
	sig1 := base64Wrapped(ed.Keys[1].Certificate.Raw)
	sig2 := base64Wrapped(ed.Keys[2].Certificate.Raw)
	tlsc := base64Wrapped(ed.TLSKeys[0].Certificate.Raw)
	tlss := base64Wrapped(ed.TLSKeys[1].Certificate.Raw)
	foreign := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"
    cacheDuration="PT5400S" validUntil="` + now.Add(48*time.Hour).Format("2006-01-02T15:04:05Z") + `"
    entityID="https://pg.example/kecis">
  <Extensions><p:ParticipantInfo xmlns:p="urn:kecis:protocol:1.0" DisplayName="Test participant https://pg.example/kecis"/></Extensions>
  <RoleDescriptor xmlns:k="urn:kecis:protocol:1.0" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:sig="http://www.w3.org/2000/09/xmldsig#"
      Roles="  pg " protocolSupportEnumeration="urn:kecis:protocol:1.0" i:type="k:ParticipantDescriptorType">
    <KeyDescriptor use="encryption"><sig:KeyInfo><sig:X509Data><sig:X509Certificate>
` + b64 + `
    </sig:X509Certificate></sig:X509Data></sig:KeyInfo></KeyDescriptor>
    <KeyDescriptor use="signing"><sig:KeyInfo><sig:X509Data><sig:X509Certificate>` + sig1 + `</sig:X509Certificate></sig:X509Data></sig:KeyInfo></KeyDescriptor>
    <KeyDescriptor use="signing"><sig:KeyInfo><sig:X509Data><sig:X509Certificate>` + sig2 + `</sig:X509Certificate></sig:X509Data></sig:KeyInfo></KeyDescriptor>
    <k:TLSKeyDescriptor use="client"><sig:KeyInfo><sig:X509Data><sig:X509Certificate>` + tlsc + `</sig:X509Certificate></sig:X509Data></sig:KeyInfo></k:TLSKeyDescriptor>
    <k:TLSKeyDescriptor use="server"><sig:KeyInfo><sig:X509Data><sig:X509Certificate>` + tlss + `</sig:X509Certificate></sig:X509Data></sig:KeyInfo></k:TLSKeyDescriptor>
    <k:Endpoint Location="https://pg.example/kecis/soap" Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Service="*"></k:Endpoint>
    <k:OfferedService BINs=" 404143
        411111-411199 " Callers=" merchant
        pg tester" Service="urn:kecis:service:card:approve"><k:Limit Max="10000000.00" Min="100" Currency="KRW"/></k:OfferedService>
    <k:OfferedService Service="urn:kecis:service:card:cancel"/>
  </RoleDescriptor>
</EntityDescriptor>`
	got, err := metadata.Parse([]byte(foreign))
	if err != nil {
		t.Fatal(err)
	}
	again, err := metadata.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, ours) {
		t.Fatalf("the foreign form does not read into the same descriptor:\n%s\n---\n%s", again, ours)
	}
}

func base64Wrapped(der []byte) string {
	s := strings.TrimSpace(string(saml.EncodeCertPEM(&x509.Certificate{Raw: der})))
	s = strings.TrimPrefix(s, "-----BEGIN CERTIFICATE-----\n")
	return strings.TrimSuffix(s, "\n-----END CERTIFICATE-----")
}

// TestStrictRefusals: everything the package does not model is refused,
// with the path of the node.
func TestStrictRefusals(t *testing.T) {
	base := simpleXML(t)
	weak, err := os.ReadFile(certPath("weak-rsa1024"))
	if err != nil {
		t.Fatal(err)
	}
	weakB64 := base64Wrapped(mustCert(t, weak).Raw)
	firstSigning := func(s string) string { // the first signing certificate's base64
		i := strings.Index(s, `<md:KeyDescriptor use="signing">`)
		j := strings.Index(s[i:], "<ds:X509Certificate>") + i + len("<ds:X509Certificate>")
		k := strings.Index(s[j:], "</ds:X509Certificate>") + j
		return s[j:k]
	}
	sigB64 := firstSigning(base)
	ep := `<kecis:Endpoint Service="*" Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://pg.example/kecis/soap" Priority="0"/>`
	if !strings.Contains(base, ep) {
		t.Fatalf("fixture changed:\n%s", base)
	}
	rd := `<md:RoleDescriptor xsi:type="kecis:ParticipantDescriptorType" protocolSupportEnumeration="urn:kecis:protocol:1.0" Roles="pg">`
	cases := []struct {
		name, old, new, want string
	}{
		{"doctype", `<md:EntityDescriptor`, `<!DOCTYPE x [<!ENTITY e "x">]><md:EntityDescriptor`, "DOCTYPE"},
		{"comment", `</md:RoleDescriptor>`, `<!-- hi --></md:RoleDescriptor>`, "comment"},
		{"unknown attribute on an endpoint", ep, strings.Replace(ep, `Priority="0"`, `Priority="0" Weight="3"`, 1), "/md:EntityDescriptor/md:RoleDescriptor/kecis:Endpoint/@Weight: attribute not allowed"},
		{"foreign attribute", rd, strings.Replace(rd, `Roles="pg"`, `Roles="pg" xmlns:x="urn:x" x:y="1"`, 1), "/md:EntityDescriptor/md:RoleDescriptor/@x:y"},
		{"unknown kecis element", ep, ep + `<kecis:Fee Amount="1"/>`, "/md:EntityDescriptor/md:RoleDescriptor/kecis:Fee: {urn:kecis:protocol:1.0}Fee is not allowed"},
		{"SPSSODescriptor", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>`, "/md:EntityDescriptor/md:SPSSODescriptor: md:SPSSODescriptor: KECIS metadata has exactly one role descriptor"},
		{"second role descriptor", `</md:RoleDescriptor>`, `</md:RoleDescriptor>` + rd + `</md:RoleDescriptor>`, "md:RoleDescriptor[2]: md:RoleDescriptor: KECIS metadata has exactly one role descriptor"},
		{"IDP before ours", rd, `<md:IDPSSODescriptor protocolSupportEnumeration="x"/>` + rd, "/md:EntityDescriptor/md:IDPSSODescriptor: KECIS metadata has exactly one role descriptor"},
		{"other xsi:type", `xsi:type="kecis:ParticipantDescriptorType"`, `xsi:type="kecis:OtherType"`, "/md:RoleDescriptor/@xsi:type"},
		{"xsi:type prefix bound elsewhere", `xsi:type="kecis:ParticipantDescriptorType"`, `xmlns:k2="urn:other" xsi:type="k2:ParticipantDescriptorType"`, "/@xsi:type"},
		{"no xsi:type", `xsi:type="kecis:ParticipantDescriptorType" `, ``, "xsi:type=\"kecis:ParticipantDescriptorType\" is required"},
		{"text in the role descriptor", ep, ep + `oops`, "/md:RoleDescriptor: text is not allowed"},
		{"unknown role", `Roles="pg"`, `Roles="pg acquirer"`, `/@Roles: unknown role "acquirer"`},
		{"no role", `Roles="pg"`, `Roles=" "`, `/@Roles: no role`},
		{"duplicate role", `Roles="pg"`, `Roles="pg pg"`, `listed twice`},
		{"other protocol", `protocolSupportEnumeration="urn:kecis:protocol:1.0"`, `protocolSupportEnumeration="urn:kecis:protocol:1.0 urn:oasis:names:tc:SAML:2.0:protocol"`, "/@protocolSupportEnumeration"},
		{"BIN range of unequal lengths", `BINs="404143 411111-411199"`, `BINs="404143 4111-411199"`, `/kecis:OfferedService[1]/@BINs: BIN range "4111-411199"`},
		{"BIN range reversed", `BINs="404143 411111-411199"`, `BINs="411199-411111"`, "start is above the end"},
		{"BIN too long", `BINs="404143 411111-411199"`, `BINs="404143123"`, "1 to 8 digits"},
		{"BIN with letters", `BINs="404143 411111-411199"`, `BINs="40414x"`, "1 to 8 digits"},
		{"empty BINs", `BINs="404143 411111-411199"`, `BINs=""`, "empty BIN list"},
		{"limit min above max", `Min="100" Max="10000000"`, `Min="100000" Max="100"`, "Min <= Max"},
		{"KRW with a fraction", `Min="100" Max="10000000"`, `Min="100.5" Max="10000000"`, "/kecis:Limit/@Min"},
		{"unknown currency", `Currency="KRW"`, `Currency="KRX"`, "/kecis:Limit/@Currency"},
		{"two limits in one currency", `<kecis:Limit Currency="KRW" Min="100" Max="10000000"/>`, `<kecis:Limit Currency="KRW" Min="100" Max="10000000"/><kecis:Limit Currency="KRW" Min="1" Max="2"/>`, "two KRW limits"},
		{"caller role", `Callers="merchant pg tester"`, `Callers="merchant shop"`, `caller role "shop"`},
		{"caller entities without roles", `Callers="merchant pg tester"`, `CallerEntities="https://pg.example"`, `CallerEntities needs Callers`},
		{"caller entity not a URI", `Callers="merchant pg tester"`, `Callers="pg" CallerEntities="pg.example"`, `not an absolute URI`},
		{"empty callers", `Callers="merchant pg tester"`, `Callers=" "`, `empty`},
		{"bank code", `<kecis:OfferedService Service="urn:kecis:service:card:cancel"/>`, `<kecis:OfferedService Service="urn:kecis:service:card:cancel" BankCodes="04"/>`, `bank code "04"`},
		{"service not a KECIS URI", `Service="urn:kecis:service:card:cancel"`, `Service="card:cancel"`, "not a KECIS service URI"},
		{"service offered twice", `Service="urn:kecis:service:card:cancel"`, `Service="urn:kecis:service:card:approve"`, "offered twice"},
		{"endpoint over ftp", `Location="https://pg.example/kecis/soap"`, `Location="ftp://pg.example/kecis/soap"`, "not an absolute http(s) URL"},
		{"endpoint priority", `Priority="0"`, `Priority="-1"`, "/kecis:Endpoint/@Priority"},
		{"endpoint with a bracket in the path", `Location="https://pg.example/kecis/soap"`, `Location="https://pg.example/kecis/so]ap"`, "not an absolute http(s) URL"},
		{"endpoint with a space", `Location="https://pg.example/kecis/soap"`, `Location="https://pg.example/ke cis"`, "not an absolute http(s) URL"},
		{"endpoint with a brace", `Location="https://pg.example/kecis/soap"`, `Location="https://pg.example/{kecis}"`, "not an absolute http(s) URL"},
		{"endpoint with a bad percent", `Location="https://pg.example/kecis/soap"`, `Location="https://pg.example/kecis/%zz"`, "not an absolute http(s) URL"},
		{"caller entity with a quote", `Callers="merchant pg tester"`, `Callers="pg" CallerEntities="https://pg.example/&lt;x"`, `not an absolute URI`},
		{"organization URL with two fragments", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:Organization><md:OrganizationName xml:lang="en">A</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">A</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://a/#b#c</md:OrganizationURL></md:Organization>`, "is not an absolute URI"},
		{"endpoint with content", ep, strings.Replace(ep, `/>`, `><kecis:Note/></kecis:Endpoint>`, 1), "/kecis:Endpoint/kecis:Note: no child elements"},
		{"endpoint before keys", ep, ``, ""}, // placeholder replaced below
		{"key use both", `<md:KeyDescriptor use="encryption">`, `<md:KeyDescriptor>`, "/md:KeyDescriptor[1]: attribute use is required"},
		{"key use unknown", `<md:KeyDescriptor use="encryption">`, `<md:KeyDescriptor use="tls">`, `key use "tls"`},
		{"EncryptionMethod", `</ds:KeyInfo></md:KeyDescriptor>`, `</ds:KeyInfo><md:EncryptionMethod Algorithm="x"/></md:KeyDescriptor>`, "exactly one ds:KeyInfo"},
		{"two certificates in one X509Data", `<ds:X509Certificate>` + sigB64, `<ds:X509Certificate>` + sigB64 + `</ds:X509Certificate><ds:X509Certificate>` + sigB64, "exactly one ds:X509Certificate"},
		{"KeyName", `<ds:KeyInfo>`, `<ds:KeyInfo><ds:KeyName>k</ds:KeyName>`, "exactly one ds:X509Data"},
		{"not base64", `<ds:X509Certificate>` + sigB64, `<ds:X509Certificate>!!` + sigB64, "not base64"},
		{"weak signing key", sigB64, weakB64, "RSA of 1024 bits"},
		{"signed", rd, `<ds:Signature/>` + rd, "the descriptor is signed"},
		{"extensions with something else", `<kecis:ParticipantInfo`, `<x:Other xmlns:x="urn:x"/><kecis:ParticipantInfo`, "/md:Extensions/x:Other: md:Extensions holds exactly one kecis:ParticipantInfo"},
		{"empty display name", `DisplayName="Test participant https://pg.example/kecis"`, `DisplayName=""`, "/kecis:ParticipantInfo/@DisplayName: empty"},
		{"validUntil not UTC", `entityID="https://pg.example/kecis"`, `entityID="https://pg.example/kecis" validUntil="2026-11-23T10:00:00+09:00"`, "/@validUntil: time"},
		{"cacheDuration in months", `entityID="https://pg.example/kecis"`, `entityID="https://pg.example/kecis" cacheDuration="P1M"`, "years and months"},
		{"relative entityID", `entityID="https://pg.example/kecis"`, `entityID="pg.example"`, "/@entityID"},
		{"AdditionalMetadataLocation", `</md:EntityDescriptor>`, `<md:AdditionalMetadataLocation namespace="urn:x">https://x</md:AdditionalMetadataLocation></md:EntityDescriptor>`, "/md:AdditionalMetadataLocation: {urn:oasis:names:tc:SAML:2.0:metadata}AdditionalMetadataLocation is not allowed here"},
		{"organization with extensions", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:Organization><md:Extensions/><md:OrganizationName xml:lang="en">A</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">A</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://a</md:OrganizationURL></md:Organization>`, "/md:Organization/md:Extensions: unexpected element"},
		{"organization without lang", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:Organization><md:OrganizationName>A</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">A</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://a</md:OrganizationURL></md:Organization>`, "/md:OrganizationName: xml:lang is required"},
		{"organization without URL", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:Organization><md:OrganizationName xml:lang="en">A</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">A</md:OrganizationDisplayName></md:Organization>`, "md:OrganizationURL is required"},
		{"contact with unknown child", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:ContactPerson contactType="technical"><md:Nickname>x</md:Nickname></md:ContactPerson>`, "/md:ContactPerson/md:Nickname: not allowed here"},
		{"contact type", `</md:RoleDescriptor>`, `</md:RoleDescriptor><md:ContactPerson contactType="sales"/>`, `contact type "sales"`},
		{"no signing key", "", "", "no signing key"}, // built below
		{"not metadata", `<md:EntityDescriptor`, `<md:EntitiesDescriptor`, "not an md:EntityDescriptor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := base
			switch c.name {
			case "endpoint before keys":
				doc = strings.Replace(doc, ep, "", 1)
				doc = strings.Replace(doc, rd, rd+ep, 1)
				c.want = "/md:RoleDescriptor/md:KeyDescriptor[1]: out of order"
			case "no signing key":
				ed := simple(t)
				ed.Keys = ed.Keys[:1]
				if _, err := metadata.Marshal(ed); err == nil || !strings.Contains(err.Error(), "no signing key") {
					t.Fatalf("Marshal wrote a descriptor without a signing key: %v", err)
				}
				doc = cutSigningKeys(base)
			case "not metadata":
				doc = strings.Replace(strings.Replace(doc, c.old, c.new, 1), `</md:EntityDescriptor>`, `</md:EntitiesDescriptor>`, 1)
			default:
				if !strings.Contains(doc, c.old) {
					t.Fatalf("fixture lacks %q", c.old)
				}
				doc = strings.Replace(doc, c.old, c.new, 1)
			}
			_, err := metadata.Parse([]byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func cutSigningKeys(s string) string {
	for {
		i := strings.Index(s, `<md:KeyDescriptor use="signing">`)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], `</md:KeyDescriptor>`) + i + len(`</md:KeyDescriptor>`)
		s = s[:i] + s[j:]
	}
}

func mustCert(t testing.TB, pemData []byte) *x509.Certificate {
	t.Helper()
	cs, err := saml.ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// TestParseErrorPath: the refusal is a *ParseError carrying the path.
func TestParseErrorPath(t *testing.T) {
	doc := strings.Replace(simpleXML(t), `<kecis:OfferedService Service="urn:kecis:service:card:cancel"/>`, `<kecis:OfferedService Service="urn:kecis:service:card:cancel" Extra="1"/>`, 1)
	_, err := metadata.Parse([]byte(doc))
	var pe *metadata.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%T %v", err, err)
	}
	if want := "/md:EntityDescriptor/md:RoleDescriptor/kecis:OfferedService[2]/@Extra"; pe.Path != want {
		t.Fatalf("path %q, want %q", pe.Path, want)
	}
}

func TestAccessors(t *testing.T) {
	ed := simple(t)
	ed.Endpoints = []metadata.Endpoint{
		{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://pg.example/dr", Priority: 10},
		{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://pg.example/main", Priority: 1},
		{Service: saml.ServiceURI("card", "approve"), Binding: saml.BindingSOAP, Location: "https://pg.example/approve-b", Priority: 7},
		{Service: saml.ServiceURI("card", "approve"), Binding: saml.BindingSOAP, Location: "https://pg.example/approve-a", Priority: 3},
		{Service: metadata.AnyService, Binding: saml.BindingHTTPPOST, Location: "https://pg.example/post"},
	}
	if got := len(ed.SigningCertificates()); got != 2 {
		t.Fatalf("%d signing certificates", got)
	}
	if len(ed.EncryptionCertificates()) != 1 || len(ed.TLSClientCertificates()) != 1 || len(ed.TLSServerCertificates()) != 1 {
		t.Fatal("certificate accessors")
	}
	locs := func(eps []metadata.Endpoint) string {
		var s []string
		for _, e := range eps {
			s = append(s, strings.TrimPrefix(e.Location, "https://pg.example/"))
		}
		return strings.Join(s, " ")
	}
	if got := locs(ed.EndpointsFor(saml.ServiceURI("card", "approve"), saml.BindingSOAP)); got != "approve-a approve-b main dr" {
		t.Fatalf("approve over SOAP: %s", got)
	}
	if e, ok := ed.Endpoint(saml.ServiceURI("card", "cancel"), saml.BindingSOAP); !ok || e.Location != "https://pg.example/main" {
		t.Fatalf("cancel falls back to *: %+v", e)
	}
	if e, ok := ed.Endpoint(saml.ServiceURI("card", "cancel"), saml.BindingHTTPPOST); !ok || e.Location != "https://pg.example/post" {
		t.Fatalf("POST: %+v", e)
	}
	if _, ok := ed.Endpoint(saml.ServiceURI("card", "cancel"), "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"); ok {
		t.Fatal("an unpublished binding has an endpoint")
	}
	if !ed.HasLocation("https://pg.example/dr") || ed.HasLocation("https://attacker.example/") {
		t.Fatal("HasLocation")
	}
	approve, ok := ed.Offers(saml.ServiceURI("card", "approve"))
	if !ok {
		t.Fatal("approve not offered")
	}
	if _, ok := ed.Offers(saml.ServiceURI("card", "refund")); ok {
		t.Fatal("refund offered")
	}
	for _, c := range []struct {
		m    ecml.Money
		want bool
	}{
		{ecml.Money{Minor: 100, Currency: "KRW"}, true},
		{ecml.Money{Minor: 99, Currency: "KRW"}, false},
		{ecml.Money{Minor: 10_000_000, Currency: "KRW"}, true},
		{ecml.Money{Minor: 10_000_001, Currency: "KRW"}, false},
		{ecml.Money{Minor: 1000, Currency: "USD"}, false},
	} {
		if approve.Admits(c.m) != c.want {
			t.Errorf("Admits(%s) = %v", c.m, !c.want)
		}
	}
	for bin, want := range map[string]bool{"404143": true, "40414399": true, "411111": true, "411150": true, "411199": true, "411200": false, "404144": false, "4041": false} {
		if _, _, why := ed.Serves(metadata.Query{Service: approve.Service, CardBIN: bin}); (why == "") != want {
			t.Errorf("Serves(BIN %s): %q", bin, why)
		}
	}
	cancel, _ := ed.Offers(saml.ServiceURI("card", "cancel"))
	if _, _, why := ed.Serves(metadata.Query{Service: cancel.Service, CardBIN: "999999"}); why != "" || !cancel.Admits(ecml.Money{Minor: 1, Currency: "USD"}) || !cancel.AdmitsBank("004") {
		t.Fatal("a service without limits admits everything")
	}
	if !ed.HasRole(metadata.RolePG) || ed.HasRole(metadata.RoleIssuer) {
		t.Fatal("HasRole")
	}
}

func TestEncryptionCertificateNewest(t *testing.T) {
	ed := simple(t)
	mk := func(from time.Time, validity time.Duration) *x509.Certificate {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c, err := saml.SelfSignedCertificate(k, "enc", from, validity, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	older := mk(now.Add(-300*24*time.Hour), 365*24*time.Hour) // expires in 65 days
	newer := mk(now.Add(-24*time.Hour), 730*24*time.Hour)     // the rollover's new key
	future := mk(now.Add(30*24*time.Hour), 3650*24*time.Hour) // not yet valid
	ed.Keys = append(ed.Keys[1:],                             // drop the pool key
		metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: older},
		metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: future},
		metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: newer})
	if c, ok := ed.EncryptionCertificate(now); !ok || !c.Equal(newer) {
		t.Fatal("EncryptionCertificate did not pick the valid one that expires last")
	}
	if _, ok := ed.EncryptionCertificate(now.Add(20 * 365 * 24 * time.Hour)); ok {
		t.Fatal("an expired certificate was picked")
	}
}

func TestBINList(t *testing.T) {
	l, err := metadata.ParseBINList("404143, 411111-411199 5 2221-2720\t35")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "404143 411111-411199 5 2221-2720 35" {
		t.Fatalf("String %q", got)
	}
	for bin, want := range map[string]bool{"404143": true, "511111": true, "222100": true, "272099": true, "272100": false, "356789": true, "4": false, "40414x": false} {
		if l.Contains(bin) != want {
			t.Errorf("Contains(%s) = %v", bin, !want)
		}
	}
}

func TestDuration(t *testing.T) {
	for s, d := range map[string]time.Duration{
		"PT1H": time.Hour, "P1D": 24 * time.Hour, "P1DT12H": 36 * time.Hour, "PT1H30M": 90 * time.Minute,
		"PT0.5S": 500 * time.Millisecond, "PT0S": 0, "P2DT3H4M5.006S": 51*time.Hour + 4*time.Minute + 5006*time.Millisecond,
	} {
		got, err := metadata.ParseDuration(s)
		if err != nil || got != d {
			t.Errorf("ParseDuration(%s) = %v, %v", s, got, err)
		}
		if back := metadata.FormatDuration(d); back != s {
			t.Errorf("FormatDuration(%v) = %s, want %s", d, back, s)
		}
	}
	if got, _ := metadata.ParseDuration("PT5400S"); got != 90*time.Minute {
		t.Errorf("PT5400S = %v", got)
	}
	for _, s := range []string{"", "P", "PT", "-PT1H", "P1Y", "P1M", "PT1.5H", "1H", "PT1H ", "P1W"} {
		if _, err := metadata.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
}

func TestMDQEncoding(t *testing.T) {
	for _, id := range []string{
		"https://pg.example/kecis",
		"https://p0042.issuer.example/kecis?tenant=a&x=1#frag",
		"urn:kecis:participant:국민카드",
		"https://pg.example/kecis/%41",
	} {
		seg := metadata.EncodeMDQ(id)
		if strings.ContainsAny(seg, "/:?#&{}") {
			t.Errorf("EncodeMDQ(%s) = %s leaves a reserved character", id, seg)
		}
		back, transformed, err := metadata.DecodeMDQ(seg)
		if err != nil || back != id || transformed {
			t.Errorf("DecodeMDQ(EncodeMDQ(%s)) = %q %v %v", id, back, transformed, err)
		}
		if !metadata.MatchesMDQ(back, id) {
			t.Error("MatchesMDQ")
		}
		sha := metadata.SHA1ID(id)
		for _, s := range []string{sha, metadata.EncodeMDQ(sha), strings.ToUpper(sha[6:])} {
			if s == strings.ToUpper(sha[6:]) {
				s = "{sha1}" + s
			}
			got, transformed, err := metadata.DecodeMDQ(s)
			if err != nil || !transformed || got != sha || !metadata.MatchesMDQ(got, id) {
				t.Errorf("DecodeMDQ(%s) = %q %v %v", s, got, transformed, err)
			}
		}
	}
	// The transformed identifier: {sha1} + the hex SHA-1 of the entityID's
	// bytes (the value from sha1sum).
	if got := metadata.SHA1ID("https://sp.example.org/shibboleth"); got != "{sha1}657cf08a6730ac2e70ce094b8262cdf79ce25120" {
		t.Fatalf("SHA1ID %s", got)
	}
	if got := metadata.EncodeMDQ("https://a.example/x y"); got != "https%3A%2F%2Fa.example%2Fx%20y" {
		t.Fatalf("EncodeMDQ %s", got)
	}
	for _, bad := range []string{"", "%zz", "{sha1}abc", "{sha1}" + strings.Repeat("g", 40), "relative/path", "https%3A%2F%2Fa.example%2Fx%0Ay"} {
		if _, _, err := metadata.DecodeMDQ(bad); err == nil {
			t.Errorf("DecodeMDQ(%q) accepted", bad)
		}
	}
}
