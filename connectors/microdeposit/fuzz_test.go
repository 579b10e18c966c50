package microdeposit

import (
	"strings"
	"testing"
)

// FuzzParseAmounts: whatever a holder types, ParseAmounts answers whole
// positive amounts of at most six digits or an error, and never panics.
func FuzzParseAmounts(f *testing.F) {
	for _, s := range []string{"12 34", "12원, 34원", "１２／３４", "7 KRW and 99", "1.5", "-5", "", "0 0", "12\u00a034", "999999 1"} {
		f.Add(s, "")
	}
	f.Add("12", "34")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := ParseAmounts(a, b)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseAmounts(%q, %q) = nothing and no error", a, b)
		}
		for _, n := range got {
			if n < 1 || n > 999_999 {
				t.Fatalf("ParseAmounts(%q, %q) = %v", a, b, got)
			}
		}
	})
}

// FuzzParseCode: an accepted code is 3 to 8 characters of CodeAlphabet,
// and parsing it again gives it back.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"7KQ2", "7kq2", " 7K-Q2 ", "７ＫＱ２", "7KO2", "", "가나다"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		if len(c) < 3 || len(c) > 8 || strings.Trim(c, CodeAlphabet) != "" {
			t.Fatalf("ParseCode(%q) = %q", s, c)
		}
		if again, err := ParseCode(c); err != nil || again != c {
			t.Fatalf("ParseCode(%q) = %q, then %q, %v", s, c, again, err)
		}
	})
}
