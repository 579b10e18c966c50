package microdeposit

import (
	"slices"
	"testing"

	"github.com/kecis/kecis/ecml"
)

func TestParseAmounts(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []int64
	}{
		{[]string{"12 34"}, []int64{12, 34}},
		{[]string{"12, 34"}, []int64{12, 34}},
		{[]string{"12원 34원"}, []int64{12, 34}},
		{[]string{"12원과 34원"}, []int64{12, 34}},
		{[]string{"１２／３４"}, []int64{12, 34}},
		{[]string{" 7 KRW", "99"}, []int64{7, 99}},
		{[]string{"12", ""}, []int64{12}},
		{[]string{"1.5"}, nil},
		{[]string{"-5 6"}, nil},
		{[]string{"0 6"}, nil},
		{[]string{"12 abc"}, nil},
		{[]string{"1234567"}, nil},
		{[]string{"", " "}, nil},
	} {
		got, err := ParseAmounts(c.in...)
		if (err != nil) != (c.want == nil) || !slices.Equal(got, c.want) {
			t.Errorf("ParseAmounts(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]string{
		"7KQ2": "7KQ2", "7kq2": "7KQ2", " 7K-Q2 ": "7KQ2", "７ＫＱ２": "7KQ2",
		"7KO2": "", "7K": "", "7KQ2ABCDE": "", "7KQ2!": "", "": "", "가나다라": "",
	} {
		got, err := ParseCode(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestAccountDigits(t *testing.T) {
	for in, want := range map[string]string{
		"110-234-567890": "110234567890", "110234": "110234", "12345": "", "-110234": "", "110--234": "",
		"110 234 567": "", "123456789012345678901": "",
	} {
		got, ok := ecml.AccountDigits(in)
		if got != want || ok != (want != "") {
			t.Errorf("ecml.AccountDigits(%q) = %q, %v", in, got, ok)
		}
	}
}
