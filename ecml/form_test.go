package ecml

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func readForm(t *testing.T, name string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(strings.TrimSpace(string(readFixture(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFlatNamesComplete: the field table knows exactly the flat names of
// RFC 4112 §2.1.1 and the KECIS extension names (KECIS §14.7), and the full
// fixtures hold every one of them.
func TestFlatNamesComplete(t *testing.T) {
	var want []string
	for _, line := range strings.Split(string(readFixture(t, "ecml-flat-names.txt")), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	if got := FlatNames(); !slices.Equal(got, want) {
		t.Errorf("FlatNames differs from testdata/ecml-flat-names.txt:\nextra %v\nmissing %v", minus(got, want), minus(want, got))
	}
	form := readForm(t, "full.form")
	for _, n := range want {
		// kx:KeyIn takes a birth date or a business number, never both
		// (KECIS §14.5): the full fixture has the birth date.
		if form.Get(n) == "" && n != "KECIS_KeyIn_BusinessNumber" {
			t.Errorf("full.form lacks %s", n)
		}
		if path, ok := FlatNamePath(n); !ok || !strings.HasPrefix(path, "/") {
			t.Errorf("FlatNamePath(%s) = %q, %v", n, path, ok)
		}
	}
	if _, ok := FlatNamePath("Ecom_Nope"); ok {
		t.Error("FlatNamePath of an unknown name")
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestFormRoundTrips: XML → form, form → Go → form, form → XML → form are
// lossless for the full fixtures.
func TestFormRoundTrips(t *testing.T) {
	form := readForm(t, "full.form")
	if got := fullPayload(t).Form(); !reflect.DeepEqual(got, form) {
		t.Errorf("full.xml → form differs from full.form:\n%s", got.Encode())
	}
	p, err := FromForm(form)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Form(); !reflect.DeepEqual(got, form) {
		t.Errorf("form → Go → form:\n%s", got.Encode())
	}
	xml := mustMarshal(t, p)
	golden(t, "full-from-form.xml", xml)
	back := mustParse(t, xml)
	if got := back.Form(); !reflect.DeepEqual(got, form) {
		t.Errorf("form → XML → form:\n%s", got.Encode())
	}
	if probs := back.Validate(strictOpts); len(probs) > 0 {
		t.Errorf("the form's document has problems: %v", probs)
	}
}

// TestFormXMLKeepsEverythingFlat: the structure a form builds carries only
// what the flat names say (no Mode, ids or extension data without names).
func TestFromFormMinimal(t *testing.T) {
	p, err := FromForm(url.Values{
		"Ecom_Payment_Card_Number":        {testPAN},
		"Ecom_Transaction_Amount":         {"15000"},
		"Ecom_Transaction_CurrencyCode":   {"KRW"},
		"Ecom_Transaction_Settle_Date":    {"1106"},
		"Ecom_Transaction_Effective_Date": {"2611"},
		"Ecom_Device_Type":                {"mobile"},
		"Ecom_ShipTo_Postal_City":         {""}, // empty: same as absent
		"other":                           {"ignored"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Ecom.ShipTo != nil {
		t.Error("an empty field created ShipTo")
	}
	d := p.Ecom.Transaction.Date
	if d.Settle.Month != "11" || d.Settle.Day != "06" || d.Settle.Year != "" || d.Effective.Year != "2026" || d.Effective.Month != "11" {
		t.Errorf("compact dates: %+v %+v", d.Settle, d.Effective)
	}
	golden(t, "minimal-from-form.xml", mustMarshal(t, p))
}

// TestFromFormErrors: unknown Ecom_ names, repeated names and values that
// cannot be stored are reported; the rest is still read.
func TestFromFormErrors(t *testing.T) {
	p, err := FromForm(url.Values{
		"Ecom_Payment_Card_Number":        {testPAN},
		"Ecom_Payment_Card_Nmber":         {"x"},
		"ecom_payment_card_number":        {"y"},
		"Ecom_Transaction_Amount":         {"1", "2"},
		"Ecom_Transaction_Settle_Date":    {"6 Nov"},
		"Ecom_Transaction_Effective_Date": {"261"},
		"Ecom_TransactionComplete":        {"false"},
		"Ecom_User_ID":                    {"a\x00b"},
		"Ecom_ShipTo_Postal_City":         {"Seoul"},
	})
	var fe *FormError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v", err)
	}
	if want := []string{"Ecom_Payment_Card_Nmber", "ecom_payment_card_number"}; !slices.Equal(fe.Unknown, want) {
		t.Errorf("unknown = %v", fe.Unknown)
	}
	var names []string
	for _, pr := range fe.Problems {
		names = append(names, pr.Name)
	}
	if want := []string{"Ecom_TransactionComplete", "Ecom_Transaction_Amount", "Ecom_Transaction_Effective_Date", "Ecom_Transaction_Settle_Date", "Ecom_User_ID"}; !slices.Equal(names, want) {
		t.Errorf("problems = %v", fe.Problems)
	}
	if fe.OnlyUnknown() {
		t.Error("OnlyUnknown")
	}
	if p == nil || p.Ecom.Payment.Card.Number != testPAN || p.Ecom.ShipTo.Postal.City.Value != "Seoul" {
		t.Errorf("known fields not read: %+v", p)
	}
	if p.Ecom.Transaction != nil || p.Ecom.User != nil || p.Ecom.TransactionComplete != nil {
		t.Error("refused fields were stored")
	}
	if strings.Contains(err.Error(), testPAN) {
		t.Error("error quotes the card number")
	}
	// Only unknown names: OnlyUnknown, and the payload is complete.
	p, err = FromForm(url.Values{"Ecom_Foo": {"1"}, "Ecom_TransactionComplete": {""}})
	if !errors.As(err, &fe) || !fe.OnlyUnknown() || p.Ecom.TransactionComplete == nil {
		t.Errorf("err = %v, p = %+v", err, p)
	}
}

// TestFormCompactDates: Form writes the ISO 8583 compact dates from the XML
// parts.
func TestFormCompactDates(t *testing.T) {
	p := &Payload{Ecom: &Ecom{Transaction: &Transaction{Date: &TransactionDate{
		Effective: &Date{Year: "2027", Month: "3"},
		Settle:    &Date{Year: "2026", Month: "1", Day: "9"},
		Capture:   &Date{},
	}}}}
	f := p.Form()
	if f.Get("Ecom_Transaction_Effective_Date") != "2703" || f.Get("Ecom_Transaction_Settle_Date") != "0109" || f.Has("Ecom_Transaction_Capture_Date") {
		t.Errorf("form = %v", f)
	}
}

// TestFormToXMLToFormStable: whatever FromForm accepts survives XML.
func TestFormToXMLToFormStable(t *testing.T) {
	form := readForm(t, "full.form")
	form.Set("Ecom_ShipTo_Postal_City", " spaced\tand\r\nbroken ")
	form.Set("Ecom_Transaction_Date", "<&>\"'")
	p, err := FromForm(form)
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, mustMarshal(t, p))
	if !reflect.DeepEqual(back.Form(), form) {
		t.Errorf("lost:\n%s\n%s", back.Form().Encode(), form.Encode())
	}
	if !bytes.Contains(mustMarshal(t, back), []byte(`Value="&lt;&amp;>&quot;'"`)) {
		t.Error("escaping")
	}
}
