package ecml

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func TestMaskPAN(t *testing.T) {
	for in, want := range map[string]string{
		"4111111111111111":     "411111******1111",
		"6011000990139424124":  "601100*********4124",
		"3782822463100005":     "378282******0005",
		"4111111111111":        "411111***1111",
		"411111111111":         Redacted, // 12 digits: too short to show ten
		"4111-1111-1111-1111":  Redacted,
		"41111111111111111111": Redacted,
		"abc":                  Redacted,
		"":                     "",
	} {
		if got := MaskPAN(in); got != want {
			t.Errorf("MaskPAN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPANBINLast4(t *testing.T) {
	for in, want := range map[string][2]string{
		"4111111111111111":     {"411111", "1111"},
		"6011000990139424124":  {"601100", "4124"},
		"4111111111111":        {"411111", "1111"},
		"411111111111":         {"", ""}, // 12 digits: MaskPAN shows none either
		"4111-1111-1111-1111":  {"", ""},
		"41111111111111111111": {"", ""},
		"411111111111a111":     {"", ""},
		"":                     {"", ""},
	} {
		p := PAN(in)
		if got := [2]string{p.BIN(), p.Last4()}; got != want {
			t.Errorf("PAN(%q): BIN, Last4 = %q, want %q", in, got, want)
		}
		if m := p.Masked(); want[0] != "" && (m[:6] != want[0] || m[len(m)-4:] != want[1]) {
			t.Errorf("PAN(%q): Masked %q shows other digits than BIN and Last4", in, m)
		}
	}
}

// TestPANLengthOneRule: a card number is 13 to 19 digits (KECIS §14.4)
// for validation, masking, BIN and last four, the leak scan and
// LooksLikePAN alike — a Luhn-valid number of every length from 11 to 21
// digits is accepted by each of them exactly when the others accept it.
func TestPANLengthOneRule(t *testing.T) {
	for n := 11; n <= 21; n++ {
		body := strings.Repeat("4", 6) + strings.Repeat("1", n-7)
		d, ok := LuhnCheckDigit(body)
		if !ok {
			t.Fatal(body)
		}
		num := body + string(d)
		in := n >= MinPANDigits && n <= MaxPANDigits
		p := fullPayload(t)
		p.Ecom.Payment.Card.Number = PAN(num)
		probs := p.Validate(strictOpts)
		valid := len(probs) == 0
		shows := PAN(num).BIN() == "444444" && PAN(num).Last4() == num[n-4:] && MaskPAN(num) != Redacted
		found := ContainsPAN("x " + num + " y")
		if valid != in || shows != in || found != in || LooksLikePAN(num) != in {
			t.Errorf("%d digits: valid %v (%v), shown %v, found %v, LooksLikePAN %v; want all %v",
				n, valid, probs, shows, found, LooksLikePAN(num), in)
		}
	}
}

func TestAllDigits(t *testing.T) {
	for in, want := range map[string]bool{
		"0": true, "0123456789": true, "": false, " 1": false, "1 ": false, "-1": false,
		"+1": false, "1.0": false, "1e3": false, "１２": false, "٣": false, "12a": false,
	} {
		if got := AllDigits(in); got != want {
			t.Errorf("AllDigits(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLuhn(t *testing.T) {
	for in, want := range map[string]bool{
		"4111111111111111": true, "4111111111111112": false, "79927398713": true,
		"0": false, "00": true, "": false, "4111 1111": false, "１２": false,
		"4041430421234560": true, "1234098712340987": false, // the VCN paper's sample real card is not Luhn-valid
	} {
		if got := LuhnValid(in); got != want {
			t.Errorf("LuhnValid(%q) = %v", in, got)
		}
	}
	if d, ok := LuhnCheckDigit("404143042123456"); !ok || d != '0' {
		t.Errorf("LuhnCheckDigit = %c, %v", d, ok)
	}
	if _, ok := LuhnCheckDigit("12a"); ok {
		t.Error("LuhnCheckDigit of non-digits")
	}
}

func TestFindPANs(t *testing.T) {
	for _, tc := range []struct {
		text string
		want [][2]int
	}{
		{"card 4111111111111111 end", [][2]int{{5, 21}}},
		{"x4111111111111111y", [][2]int{{1, 17}}},
		{`{"n":"4111111111111111","m":"6011000990139424124"}`, [][2]int{{6, 22}, {29, 48}}},
		{"4111111111111112", nil},                        // Luhn fails
		{"123456789015", nil},                            // 12 digits: below 13
		{"41111111111111111111", nil},                    // 20 digits: one run, too long
		{"94111111111111111", nil},                       // the run counts as a whole
		{"4111-1111-1111-1111 4111 1111 1111 1111", nil}, // separators are not joined
		{"4222222222222", [][2]int{{0, 13}}},
		{"", nil},
	} {
		got := FindPANs(tc.text)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FindPANs(%q) = %v, want %v", tc.text, got, tc.want)
		}
		if ContainsPAN(tc.text) != (len(tc.want) > 0) {
			t.Errorf("ContainsPAN(%q)", tc.text)
		}
	}
	if got := RedactPANs("a 4111111111111111 b 6011000990139424124"); got != "a 411111******1111 b 601100*********4124" {
		t.Errorf("RedactPANs = %q", got)
	}
	if s := "nothing here 12345"; RedactPANs(s) != s {
		t.Error("RedactPANs changed clean text")
	}
}

// verbs are the formats every masked value is printed with.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q", "%20s", "%-8v", "%T"}

// assertMasked fails when out shows the test card number in clear, in hex
// or as a Luhn-valid run.
func assertMasked(t *testing.T, what, out string) {
	t.Helper()
	hexPAN := hex.EncodeToString([]byte(testPAN))
	if strings.Contains(out, testPAN) || strings.Contains(strings.ToLower(out), hexPAN) || ContainsPAN(out) {
		t.Errorf("%s shows the card number: %s", what, out)
	}
}

func TestLeavesMask(t *testing.T) {
	for _, v := range []any{PAN(testPAN), Secret(testPAN)} {
		for _, verb := range verbs {
			assertMasked(t, fmt.Sprintf("%T %s", v, verb), fmt.Sprintf(verb, v))
		}
	}
	if got := fmt.Sprintf("%v|%d|%q|%#v", PAN(testPAN), PAN(testPAN), PAN(testPAN), PAN(testPAN)); got != `411111******1111|411111******1111|"411111******1111"|ecml.PAN("411111******1111")` {
		t.Errorf("PAN formats: %s", got)
	}
	if got := fmt.Sprintf("%v|%x|%#v|%v", Secret("123"), Secret("123"), Secret("123"), Secret("")); got != `[redacted]|[redacted]|ecml.Secret("[redacted]")|` {
		t.Errorf("Secret formats: %s", got)
	}
	b, _ := json.Marshal(map[string]any{"p": PAN(testPAN), "s": Secret("x")})
	if string(b) != `{"p":"411111******1111","s":"[redacted]"}` {
		t.Errorf("json: %s", b)
	}
	if PAN(testPAN).Reveal() != testPAN || Secret("x").Reveal() != "x" {
		t.Error("Reveal")
	}
}

// modelTypes walks the type graph of Payload: every struct type of this
// package a payload can hold.
func modelTypes() []reflect.Type {
	var out []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Payload]().PkgPath() || seen[t] {
			return
		}
		seen[t] = true
		out = append(out, t)
		for i := 0; i < t.NumField(); i++ {
			walk(t.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[Payload]())
	return out
}

// fill sets every string of v to the test card number, allocates every
// pointer and puts one element in every slice.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(testPAN)
	case reflect.Pointer:
		if v.Type() == elementType {
			el := etree.NewElement("xenc:EncryptedData")
			el.CreateAttr("Number", testPAN)
			el.SetText(testPAN)
			v.Set(reflect.ValueOf(el))
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i))
		}
	}
}

// TestEveryTypeRedacts: every type a payload can hold has the masking
// methods, and no way of printing or logging it, as a value or a pointer,
// alone or inside another struct, shows a card number, even one typed into
// a public field.
func TestEveryTypeRedacts(t *testing.T) {
	types := modelTypes()
	if len(types) < 30 {
		t.Fatalf("only %d types found", len(types))
	}
	ifaces := map[string]reflect.Type{
		"fmt.Stringer":   reflect.TypeFor[fmt.Stringer](),
		"fmt.GoStringer": reflect.TypeFor[fmt.GoStringer](),
		"fmt.Formatter":  reflect.TypeFor[fmt.Formatter](),
		"slog.LogValuer": reflect.TypeFor[slog.LogValuer](),
		"json.Marshaler": reflect.TypeFor[json.Marshaler](),
	}
	for _, typ := range types {
		t.Run(typ.Name(), func(t *testing.T) {
			for name, it := range ifaces {
				if !typ.Implements(it) {
					t.Errorf("%s does not implement %s", typ, name)
				}
			}
			ptr := reflect.New(typ)
			fill(ptr.Elem())
			for _, x := range []any{ptr.Elem().Interface(), ptr.Interface()} {
				for _, verb := range verbs {
					assertMasked(t, fmt.Sprintf("%T %s", x, verb), fmt.Sprintf(verb, x))
				}
				wrapper := struct{ Inner any }{x}
				for _, verb := range verbs {
					assertMasked(t, "wrapped "+verb, fmt.Sprintf(verb, wrapper))
				}
				var buf bytes.Buffer
				for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
					l := slog.New(h)
					l.Info("payload", "value", x)
					l.Info("payload", slog.Any("wrapper", wrapper))
					l.Info("payload", slog.Group("g", slog.Any("v", x)))
				}
				assertMasked(t, "slog", buf.String())
				if !strings.Contains(buf.String(), "value") {
					t.Error("nothing logged")
				}
				b, err := json.Marshal(x)
				if err != nil {
					t.Fatal(err)
				}
				assertMasked(t, "json", string(b))
			}
		})
	}
}

// TestDescribe pins the look of a masked value.
func TestDescribe(t *testing.T) {
	p := &Payload{
		Ecom:         &Ecom{Payment: &Payment{Card: &Card{Type: "VISA", Number: testPAN, Verification: "123", ExpDate: &Date{Month: "12", Year: "2029"}}}},
		BankAccounts: []*BankAccount{{BankCode: "004", AccountNumber: "123-456"}},
		KeyIn:        &KeyIn{PasswordPrefix: "12"},
	}
	got := fmt.Sprint(p)
	want := "{Ecom:&{Payment:&{Card:&{Type:VISA Number:411111******1111 Verification:[redacted] ExpDate:&{Month:12 Year:2029}}}} BankAccounts:[&{BankCode:004 AccountNumber:[redacted]}] KeyIn:&{PasswordPrefix:[redacted]}}"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	gs := fmt.Sprintf("%#v", p.Ecom.Payment)
	if gs != `ecml.Payment{Card:&ecml.Card{Type:"VISA", Number:ecml.PAN("411111******1111"), Verification:ecml.Secret("[redacted]"), ExpDate:&ecml.Date{Month:"12", Year:"2029"}}}` {
		t.Errorf("GoString: %s", gs)
	}
	var nilCard *Card
	if s := fmt.Sprint(nilCard); s != "<nil>" {
		t.Errorf("nil: %s", s)
	}
	enc := &Payment{EncryptedCard: etree.NewElement("xenc:EncryptedData")}
	if s := enc.String(); s != "{EncryptedCard:<xenc:EncryptedData …>}" {
		t.Errorf("stand-in: %s", s)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("m", "card", p.Ecom.Payment.Card)
	if want := `{"level":"INFO","msg":"m","card":{"Type":"VISA","Number":"411111******1111","Verification":"[redacted]","ExpDate":{"Month":"12","Year":"2029"}}}` + "\n"; buf.String() != want {
		t.Errorf("slog json: %s", buf.String())
	}
}

// TestNoSecretInFixtureOutputs: the full fixture, printed every way, shows
// no card number; its form (the raw data, on purpose) does.
func TestNoSecretInFixtureOutputs(t *testing.T) {
	p := fullPayload(t)
	for _, verb := range verbs {
		assertMasked(t, verb, fmt.Sprintf(verb, p))
	}
	for _, s := range []string{"correct horse", "123-456-789012", "482913", "850815", "742"} {
		if strings.Contains(fmt.Sprintf("%+v", p), s) {
			t.Errorf("%q shown", s)
		}
	}
	if !strings.Contains(p.Form().Encode(), testPAN) {
		t.Error("Form should carry the raw values")
	}
}
