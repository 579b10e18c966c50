package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const ecmlTestPAN = "4111111111111111"

// ecmlRun drives the CLI in process.
func ecmlRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

const ecmlValidDoc = `<?xml version="1.0" encoding="UTF-8"?>
<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0">
  <Payment>
    <Card Type="VISA" Number="4111111111111111">
      <ExpDate Month="12" Year="2029"/>
    </Card>
  </Payment>
  <Transaction Currency="KRW" Type="debit" Amount="15000"/>
</Ecom>
`

func TestEcmlValidateReportsEveryProblem(t *testing.T) {
	doc := strings.NewReplacer(
		`Number="4111111111111111"`, `Number="4111111111111112"`,
		`Currency="KRW"`, `Currency="XYZ"`,
		`Amount="15000"`, `Amount="-15000"`,
	).Replace(ecmlValidDoc)
	code, stdout, stderr := ecmlRun(t, doc, "ecml", "validate", "--now", "2026-11-05T00:00:00Z")
	if code != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, path := range []string{"/Ecom/Payment/Card/@Number: ", "/Ecom/Transaction/@Amount: ", "/Ecom/Transaction/@Currency: "} {
		if !strings.Contains(stdout, path) {
			t.Errorf("output lacks %s\n%s", path, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n != 3 {
		t.Errorf("%d lines:\n%s", n, stdout)
	}
	if strings.Contains(stdout+stderr, "4111111111111112") || strings.Contains(stdout+stderr, ecmlTestPAN) {
		t.Error("the output shows the card number")
	}
	if !strings.Contains(stdout, "411111******1112") {
		t.Errorf("masked number missing:\n%s", stdout)
	}
}

func TestEcmlValidateRefusesKRWFraction(t *testing.T) {
	doc := strings.Replace(ecmlValidDoc, `Amount="15000"`, `Amount="100.5"`, 1)
	code, stdout, _ := ecmlRun(t, doc, "ecml", "validate", "--now", "2026-11-05T00:00:00Z")
	if code != 1 || !strings.HasPrefix(stdout, "/Ecom/Transaction/@Amount: ") {
		t.Errorf("exit %d, output %q", code, stdout)
	}
	// An all-zero fraction is accepted for a zero-decimal currency.
	doc = strings.Replace(ecmlValidDoc, `Amount="15000"`, `Amount="15000.00"`, 1)
	if code, stdout, _ := ecmlRun(t, doc, "ecml", "validate", "--now", "2026-11-05T00:00:00Z"); code != 0 || stdout != "" {
		t.Errorf("exit %d, output %q", code, stdout)
	}
}

func TestEcmlValidateValidAndFile(t *testing.T) {
	if code, stdout, stderr := ecmlRun(t, ecmlValidDoc, "ecml", "validate", "--now", "2026-11-05T00:00:00Z"); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("exit %d, %q, %q", code, stdout, stderr)
	}
	file := filepath.Join(t.TempDir(), "order.xml")
	if err := os.WriteFile(file, []byte(ecmlValidDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := ecmlRun(t, "", "ecml", "validate", "--now", "2026-11-05T00:00:00Z", file); code != 0 {
		t.Errorf("file: exit %d, %q", code, stderr)
	}
	if code, _, _ := ecmlRun(t, ecmlValidDoc, "ecml", "validate", "--now", "2026-11-05T00:00:00Z", "-"); code != 0 {
		t.Errorf("stdin as -: exit %d", code)
	}
	if code, _, stderr := ecmlRun(t, "", "ecml", "validate", filepath.Join(t.TempDir(), "missing.xml")); code != 1 || stderr == "" {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

func TestEcmlValidateClock(t *testing.T) {
	code, stdout, _ := ecmlRun(t, ecmlValidDoc, "ecml", "validate", "--now", "2030-01-01T00:00:00Z")
	if code != 1 || !strings.HasPrefix(stdout, "/Ecom/Payment/Card/ExpDate: ") {
		t.Errorf("expired: exit %d, %q", code, stdout)
	}
	if code, _, stderr := ecmlRun(t, ecmlValidDoc, "ecml", "validate", "--now", "yesterday"); code != 2 || !strings.Contains(stderr, "RFC 3339") {
		t.Errorf("bad --now: exit %d, %q", code, stderr)
	}
}

func TestEcmlValidateUnparseable(t *testing.T) {
	for _, in := range []string{"not xml", "<!DOCTYPE Ecom><Ecom/>", "<Ecom><Foo/></Ecom>", `<Ecom><Payment><Card Number="4111111111111111" Foo="1"/></Payment></Ecom>`} {
		code, stdout, stderr := ecmlRun(t, in, "ecml", "validate")
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "kecis: ecml: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", in, code, stdout, stderr)
		}
		if strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, ecmlTestPAN) {
			t.Errorf("%q: stderr %q", in, stderr)
		}
	}
}

func TestEcmlFormRoundTrip(t *testing.T) {
	form := url.Values{
		"Ecom_ShipTo_Postal_Name_First":   {"Gildong"},
		"Ecom_ShipTo_Postal_Name_Last":    {"Hong"},
		"Ecom_ShipTo_Postal_City":         {"Seoul"},
		"Ecom_ShipTo_Postal_CountryCode":  {"KR"},
		"Ecom_Payment_Card_Number":        {ecmlTestPAN},
		"Ecom_Payment_Card_ExpDate_Month": {"12"},
		"Ecom_Payment_Card_ExpDate_Year":  {"2029"},
		"Ecom_Transaction_Amount":         {"15000"},
		"Ecom_Transaction_CurrencyCode":   {"KRW"},
		"Ecom_Transaction_Settle_Date":    {"1106"},
		"Ecom_UserData_Gender":            {"F"},
		"Ecom_Device_ID":                  {"device-1"},
		"Ecom_SchemaVersion":              {"urn:ietf:params:ecml:v2.0"},
		"Ecom_TransactionComplete":        {"true"},
	}
	code, xml, stderr := ecmlRun(t, form.Encode()+"\n", "ecml", "from-form")
	if code != 0 || stderr != "" {
		t.Fatalf("from-form: exit %d, %q", code, stderr)
	}
	if !strings.Contains(xml, "<kecis:Payload") || !strings.Contains(xml, `<kx:UserData Gender="F"/>`) {
		t.Errorf("from-form output:\n%s", xml)
	}
	if code, stdout, _ := ecmlRun(t, xml, "ecml", "validate", "--now", "2026-11-05T00:00:00Z"); code != 0 {
		t.Errorf("the converted document does not validate:\n%s", stdout)
	}
	code, back, stderr := ecmlRun(t, xml, "ecml", "to-form")
	if code != 0 || stderr != "" {
		t.Fatalf("to-form: exit %d, %q", code, stderr)
	}
	if back != form.Encode()+"\n" {
		t.Errorf("round trip:\n%s\n%s", back, form.Encode())
	}
}

func TestEcmlFromFormUnknownNames(t *testing.T) {
	in := "Ecom_Payment_Card_Nmber=1&Ecom_Transaction_Amount=15000&Ecom_Transaction_CurrencyCode=KRW&submit=Pay"
	code, stdout, stderr := ecmlRun(t, in, "ecml", "from-form")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "Ecom_Payment_Card_Nmber") || strings.Contains(stderr, "submit") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = ecmlRun(t, in, "ecml", "from-form", "--allow-unknown")
	if code != 0 || !strings.Contains(stdout, `Amount="15000"`) || !strings.Contains(stderr, "Ecom_Payment_Card_Nmber") {
		t.Errorf("--allow-unknown: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// A repeated name is refused even with --allow-unknown.
	code, _, stderr = ecmlRun(t, "Ecom_User_ID=a&Ecom_User_ID=b", "ecml", "from-form", "--allow-unknown")
	if code != 1 || !strings.Contains(stderr, "Ecom_User_ID") {
		t.Errorf("repeated: exit %d, %q", code, stderr)
	}
	if code, _, stderr := ecmlRun(t, "a=%zz", "ecml", "from-form"); code != 1 || !strings.Contains(stderr, "urlencoded") {
		t.Errorf("bad encoding: exit %d, %q", code, stderr)
	}
}

func TestEcmlHelp(t *testing.T) {
	for _, sub := range []string{"validate", "from-form", "to-form"} {
		code, stdout, _ := ecmlRun(t, "", "ecml", sub, "--help")
		if code != 0 || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%s --help: exit %d\n%s", sub, code, stdout)
		}
	}
}
