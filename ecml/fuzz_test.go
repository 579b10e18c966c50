package ecml

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ as well as here.

// FuzzParseDocument: whatever ParseDocument accepts validates without
// panicking, marshals, and reads back to the same bytes and the same
// problems; no problem message shows a card number.
func FuzzParseDocument(f *testing.F) {
	for _, name := range []string{"full.xml", "encrypted.xml", "invalid.xml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<Ecom/>`))
	f.Add([]byte(`<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0"><Transaction Currency="KRW" Amount="100.5"/></Ecom>`))
	f.Add([]byte(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0" xmlns:kx="urn:kecis:ecml-ext:1.0"><Ecom/><kx:Future a="1"><kx:X/></kx:Future></kecis:Payload>`))
	f.Add([]byte(`<!DOCTYPE Ecom><Ecom/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseDocument(data)
		if err != nil {
			if p != nil {
				t.Fatal("payload with an error")
			}
			return
		}
		probs := p.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireSchemaVersion: true})
		for _, pr := range probs {
			if ContainsPAN(pr.Path) || ContainsPAN(pr.Message) {
				t.Fatalf("problem shows a card number: %v", pr)
			}
		}
		out, err := p.MarshalDocument()
		if err != nil {
			t.Fatalf("MarshalDocument: %v", err)
		}
		p2, err := ParseDocument(out)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
		out2, err := p2.MarshalDocument()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		probs2 := p2.Validate(ValidateOptions{Now: testNow, AllowEncrypted: true, RequireSchemaVersion: true})
		if !reflect.DeepEqual(probs, probs2) {
			t.Fatalf("problems changed:\n%v\n%v", probs, probs2)
		}
		if !reflect.DeepEqual(p.Form(), p2.Form()) {
			t.Fatal("form changed")
		}
		if s := p.String(); ContainsPAN(s) {
			t.Fatalf("String shows a card number: %s", s)
		}
	})
}

// FuzzFromForm: FromForm never fails to give a payload; what it stores
// survives Form, XML and back.
func FuzzFromForm(f *testing.F) {
	full, err := os.ReadFile(filepath.Join("testdata", "full.form"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(strings.TrimSpace(string(full)))
	f.Add("Ecom_Payment_Card_Number=4111111111111111&Ecom_Transaction_Amount=15000&Ecom_Transaction_CurrencyCode=KRW")
	f.Add("Ecom_Transaction_Settle_Date=1106&Ecom_Transaction_Effective_Date=2611&Ecom_TransactionComplete=")
	f.Add("Ecom_Foo=1&ecom_bar=2&Ecom_User_ID=a&Ecom_User_ID=b&other=x")
	f.Add("Ecom_ShipTo_Postal_City=%20a%0D%0Ab%09&Ecom_UserData_Gender=F&Ecom_Device_ID=d")
	f.Fuzz(func(t *testing.T, query string) {
		v, _ := url.ParseQuery(query)
		p, _ := FromForm(v)
		if p == nil {
			t.Fatal("nil payload")
		}
		form := p.Form()
		p2, err := FromForm(form)
		if err != nil {
			t.Fatalf("FromForm(Form()): %v", err)
		}
		if !reflect.DeepEqual(p2.Form(), form) {
			t.Fatalf("form → Go → form:\n%v\n%v", form, p2.Form())
		}
		out, err := p.MarshalDocument()
		if err != nil {
			t.Fatalf("MarshalDocument: %v", err)
		}
		p3, err := ParseDocument(out)
		if err != nil {
			t.Fatalf("ParseDocument: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(p3.Form(), form) {
			t.Fatalf("form → XML → form:\n%v\n%v\n%s", form, p3.Form(), out)
		}
		p.Validate(ValidateOptions{Now: testNow})
	})
}

// FuzzParseAmount: an accepted amount is exactly the canonical form (or a
// zero-decimal amount with an all-zero fraction), and formats back to it.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"15000", "15000.00", "100.5", "12.34", "12.3", "1.234", "-5", "+5", "1e3", "9223372036854775808", "", " 1", "0", "0.00", "00", "1.", ".1"} {
		for _, c := range []string{"KRW", "USD", "BHD", "CLF", "XYZ"} {
			f.Add(s, c)
		}
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		m, err := ParseAmount(s, cur)
		if err != nil {
			return
		}
		if m.Minor < 0 || m.Currency != cur {
			t.Fatalf("ParseAmount(%q, %q) = %v", s, cur, m)
		}
		out, err := FormatAmount(m)
		if err != nil {
			t.Fatalf("FormatAmount(%v): %v", m, err)
		}
		n, _ := MinorUnits(cur)
		want := s
		if n == 0 {
			want, _, _ = strings.Cut(s, ".")
		}
		if out != want {
			t.Fatalf("ParseAmount(%q, %s) formats as %q", s, cur, out)
		}
		if back, err := ParseAmount(out, cur); err != nil || back != m {
			t.Fatalf("reparse %q: %v %v", out, back, err)
		}
	})
}
