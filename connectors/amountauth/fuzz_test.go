package amountauth

import "testing"

// FuzzParseTyped: whatever a person types, ParseTyped answers an amount
// in the currency's minor units or an error, and never panics; an amount
// it accepts is not negative.
func FuzzParseTyped(f *testing.F) {
	for _, s := range []string{"1234", "1,234원", " 98 765 KRW", "-5", "1.5", "", "０１２", "1,2,3,4", "\u00a01234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseTyped(s, "KRW")
		if err != nil {
			return
		}
		if m.Minor < 0 || m.Currency != "KRW" {
			t.Fatalf("ParseTyped(%q) = %+v", s, m)
		}
	})
}
