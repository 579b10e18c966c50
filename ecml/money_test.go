package ecml

import (
	"errors"
	"math"
	"testing"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in, cur string
		minor   int64
		err     error // nil: valid
	}{
		{"15000", "KRW", 15000, nil},
		{"15000.00", "KRW", 15000, nil},
		{"15000.0", "KRW", 15000, nil},
		{"15000.000", "KRW", 15000, nil},
		{"0", "KRW", 0, nil},
		{"100.5", "KRW", 0, ErrAmountSyntax},
		{"100.", "KRW", 0, ErrAmountSyntax},
		{"1000", "JPY", 1000, nil},
		{"12.34", "USD", 1234, nil},
		{"0.05", "USD", 5, nil},
		{"0.00", "USD", 0, nil},
		{"12.3", "USD", 0, ErrAmountSyntax},
		{"12.345", "USD", 0, ErrAmountSyntax},
		{"12", "USD", 0, ErrAmountSyntax},
		{"1.234", "BHD", 1234, nil},
		{"1.23", "BHD", 0, ErrAmountSyntax},
		{"1.2345", "CLF", 12345, nil},
		{"1.0000", "UYW", 10000, nil},
		{"-5", "KRW", 0, ErrAmountSyntax},
		{"-12.34", "USD", 0, ErrAmountSyntax},
		{"+5", "KRW", 0, ErrAmountSyntax},
		{"1e3", "KRW", 0, ErrAmountSyntax},
		{"1E3", "KRW", 0, ErrAmountSyntax},
		{"0x10", "KRW", 0, ErrAmountSyntax},
		{"1,000", "KRW", 0, ErrAmountSyntax},
		{"1_000", "KRW", 0, ErrAmountSyntax},
		{"", "KRW", 0, ErrAmountSyntax},
		{" 15000", "KRW", 0, ErrAmountSyntax},
		{"15000 ", "KRW", 0, ErrAmountSyntax},
		{"150 00", "KRW", 0, ErrAmountSyntax},
		{"15000KRW", "KRW", 0, ErrAmountSyntax},
		{"₩15000", "KRW", 0, ErrAmountSyntax},
		{"１５", "KRW", 0, ErrAmountSyntax},
		{".50", "USD", 0, ErrAmountSyntax},
		{"1..2", "USD", 0, ErrAmountSyntax},
		{"1.2.3", "USD", 0, ErrAmountSyntax},
		{"012", "KRW", 0, ErrAmountSyntax},
		{"00.50", "USD", 0, ErrAmountSyntax},
		{"NaN", "KRW", 0, ErrAmountSyntax},
		{"Inf", "KRW", 0, ErrAmountSyntax},
		{"9223372036854775807", "KRW", math.MaxInt64, nil},
		{"9223372036854775808", "KRW", 0, ErrAmountRange},
		{"99999999999999999999999", "KRW", 0, ErrAmountRange},
		{"92233720368547758.07", "USD", math.MaxInt64, nil},
		{"92233720368547758.08", "USD", 0, ErrAmountRange},
		{"15000", "krw", 0, ErrUnknownCurrency},
		{"15000", "XYZ", 0, ErrUnknownCurrency},
		{"15000", "XAU", 0, ErrUnknownCurrency},
		{"15000", "", 0, ErrUnknownCurrency},
	} {
		m, err := ParseAmount(tc.in, tc.cur)
		switch {
		case tc.err == nil && err != nil:
			t.Errorf("ParseAmount(%q, %s): %v", tc.in, tc.cur, err)
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("ParseAmount(%q, %s) = %v, %v; want %v", tc.in, tc.cur, m, err, tc.err)
		case tc.err == nil && (m.Minor != tc.minor || m.Currency != tc.cur):
			t.Errorf("ParseAmount(%q, %s) = %v", tc.in, tc.cur, m)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		m    Money
		want string
		err  error
	}{
		{Money{15000, "KRW"}, "15000", nil},
		{Money{0, "KRW"}, "0", nil},
		{Money{1234, "USD"}, "12.34", nil},
		{Money{5, "USD"}, "0.05", nil},
		{Money{0, "USD"}, "0.00", nil},
		{Money{1234, "BHD"}, "1.234", nil},
		{Money{1, "CLF"}, "0.0001", nil},
		{Money{math.MaxInt64, "USD"}, "92233720368547758.07", nil},
		{Money{-1, "USD"}, "", ErrAmountRange},
		{Money{1, "XYZ"}, "", ErrUnknownCurrency},
	} {
		got, err := FormatAmount(tc.m)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("FormatAmount(%v) = %q, %v", tc.m, got, err)
		}
		if err == nil {
			back, err := ParseAmount(got, tc.m.Currency)
			if err != nil || back != tc.m {
				t.Errorf("ParseAmount(FormatAmount(%v)) = %v, %v", tc.m, back, err)
			}
		}
	}
	if s := (Money{1234, "USD"}).String(); s != "12.34 USD" {
		t.Errorf("String = %q", s)
	}
	if s := (Money{1, "XYZ"}).String(); s == "" {
		t.Error("String of invalid money")
	}
}

func TestMinorUnits(t *testing.T) {
	for code, want := range map[string]int{
		"KRW": 0, "JPY": 0, "VND": 0, "ISK": 0, "CLP": 0, "XOF": 0, "UYI": 0,
		"USD": 2, "EUR": 2, "CNY": 2, "GBP": 2, "XCG": 2, "ZWG": 2, "SLE": 2, "VED": 2,
		"BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3,
		"CLF": 4, "UYW": 4,
	} {
		if got, ok := MinorUnits(code); !ok || got != want {
			t.Errorf("MinorUnits(%s) = %d, %v", code, got, ok)
		}
	}
	for _, code := range []string{"XAU", "XDR", "XTS", "XXX", "HRK", "SLL", "ANG", "VEF", "usd", "US", ""} {
		if _, ok := MinorUnits(code); ok {
			t.Errorf("MinorUnits(%q) accepted", code)
		}
	}
	if n := len(iso4217); n < 160 || n > 185 {
		t.Errorf("%d currencies", n)
	}
}

func TestTypedAccessors(t *testing.T) {
	var tx Transaction
	if err := tx.SetMoney(Money{1234, "USD"}); err != nil || tx.Amount != "12.34" || tx.Currency != "USD" {
		t.Errorf("SetMoney: %v %+v", err, tx)
	}
	if err := tx.SetMoney(Money{-1, "USD"}); err == nil || tx.Amount != "12.34" {
		t.Error("SetMoney(-1) changed the transaction")
	}
	if m, err := tx.Money(); err != nil || m != (Money{1234, "USD"}) {
		t.Errorf("Money = %v, %v", m, err)
	}
	var terms Terms
	if err := terms.SetPrincipal(Money{1000000, "KRW"}); err != nil || terms.Principal != "1000000" {
		t.Error(err)
	}
	if m, err := terms.PrincipalMoney(); err != nil || m.Minor != 1000000 {
		t.Error(m, err)
	}
	var aa AmountAuth
	if err := aa.SetCeiling(Money{1000, "KRW"}); err != nil {
		t.Fatal(err)
	}
	if err := aa.SetChallenge(Money{742, "USD"}); err == nil {
		t.Error("challenge in another currency")
	}
	if err := aa.SetChallenge(Money{742, "KRW"}); err != nil || aa.Challenge.Reveal() != "742" {
		t.Error(err)
	}
	if c, _ := aa.CeilingMoney(); c.Minor != 1000 {
		t.Error(c)
	}
	if c, _ := aa.ChallengeMoney(); c.Minor != 742 {
		t.Error(c)
	}
}

func TestMoneyGroupedAndDisplay(t *testing.T) {
	for _, c := range []struct {
		m                Money
		grouped, display string
	}{
		{Money{0, "KRW"}, "0", "0원"},
		{Money{15000, "KRW"}, "15,000", "15,000원"},
		{Money{1234, "BHD"}, "1.234", "BHD 1.234"},
		{Money{999, "KRW"}, "999", "999원"},
		{Money{1000000, "KRW"}, "1,000,000", "1,000,000원"},
		{Money{123456, "USD"}, "1,234.56", "USD 1,234.56"},
		{Money{5, "USD"}, "0.05", "USD 0.05"},
		{Money{1234567, "BHD"}, "1,234.567", "BHD 1,234.567"},
		{Money{1234, "XAU"}, "1,234", "XAU 1,234"}, // no minor unit: its minor units
	} {
		if g, d := c.m.Grouped(), c.m.Display(); g != c.grouped || d != c.display {
			t.Errorf("%+v: Grouped %q Display %q, want %q %q", c.m, g, d, c.grouped, c.display)
		}
	}
}
