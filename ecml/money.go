package ecml

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money is an amount in minor units of an ISO 4217 currency (cents for USD,
// won for KRW, fils for BHD): integers only, never floating point (KECIS
// §14.3; the stripe-go convention).
type Money struct {
	Minor    int64  // amount in minor units; KECIS amounts are never negative
	Currency string // ISO 4217 alpha-3, upper case
}

// String returns the wire form and the currency ("12.34 USD"), or a
// description of why there is none.
func (m Money) String() string {
	s, err := FormatAmount(m)
	if err != nil {
		return fmt.Sprintf("%d minor units of %q (invalid)", m.Minor, m.Currency)
	}
	return s + " " + m.Currency
}

// Grouped writes the amount as people read it, without its currency: the
// whole part grouped by thousands with commas, the minor unit after a
// period ("15,000" KRW, "1,234.56" USD). An amount FormatAmount refuses
// is written as its minor units.
func (m Money) Grouped() string {
	s, err := FormatAmount(m)
	if err != nil {
		s = strconv.FormatInt(m.Minor, 10)
	}
	sign := ""
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		sign, s = "-", rest
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var g strings.Builder
	g.WriteString(sign)
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			g.WriteByte(',')
		}
		g.WriteByte(whole[i])
	}
	if hasFrac {
		g.WriteString("." + frac)
	}
	return g.String()
}

// Display writes the amount as a Korean cardholder reads it in a text or
// on a page: "15,000원" for KRW, "USD 1,234.56" for another currency.
func (m Money) Display() string {
	if m.Currency == "KRW" {
		return m.Grouped() + "원"
	}
	return m.Currency + " " + m.Grouped()
}

// Errors of ParseAmount and FormatAmount. They never quote the amount: an
// amount can be a secret (the amount-authentication challenge).
var (
	ErrUnknownCurrency = errors.New("ecml: not an ISO 4217 currency code with minor units")
	ErrAmountSyntax    = errors.New("ecml: amount syntax")
	ErrAmountRange     = errors.New("ecml: amount out of range")
)

// ParseAmount reads a Transaction/@Amount (RFC 4112 note 27, "two integer
// numbers with a period in between", with no currency mark) in the exact form
// of KECIS §14.3:
//
//   - a currency with n > 0 minor-unit digits (ISO 4217) takes an integer
//     part, a period and exactly n digits: USD "12.34", BHD "1.234";
//   - a zero-decimal currency (KRW, JPY…) takes an integer only: "15000"; a
//     receiver also accepts an all-zero fraction of any length ("15000.0",
//     "15000.00"), because "15000.00" KRW, though it suggests sub-units that
//     do not exist, means the same amount;
//   - the integer part is "0" or starts with a non-zero digit (one wire form
//     per amount, so that fingerprints over the public fields agree).
//
// Everything else is an error: another count of fraction digits ("12.3" USD,
// "100.5" KRW), an empty part ("12.", ".5"), a sign ('-' or '+'), an
// exponent or any other letter, spaces, an empty string, and amounts beyond
// int64 minor units. currency must be an upper-case code of [MinorUnits].
func ParseAmount(s, currency string) (Money, error) {
	n, ok := MinorUnits(currency)
	if !ok {
		return Money{}, ErrUnknownCurrency
	}
	intPart, frac, hasPoint, err := splitAmount(s)
	if err != nil {
		return Money{}, err
	}
	switch {
	case n == 0 && hasPoint:
		if strings.Trim(frac, "0") != "" {
			return Money{}, fmt.Errorf("%w: %s has no minor units, so a fraction must be all zeros", ErrAmountSyntax, currency)
		}
		frac = ""
	case n > 0 && !hasPoint:
		return Money{}, fmt.Errorf("%w: %s needs a period and exactly %d fraction digits", ErrAmountSyntax, currency, n)
	case n > 0 && len(frac) != n:
		return Money{}, fmt.Errorf("%w: %d fraction digits, %s needs exactly %d", ErrAmountSyntax, len(frac), currency, n)
	}
	minor, err := strconv.ParseUint(intPart+frac, 10, 63)
	if err != nil || minor > math.MaxInt64 {
		return Money{}, fmt.Errorf("%w: more than %d minor units", ErrAmountRange, int64(math.MaxInt64))
	}
	return Money{Minor: int64(minor), Currency: currency}, nil
}

// splitAmount checks the syntax that does not depend on the currency: an
// integer part of digits without a superfluous leading zero and, after an
// optional period, a non-empty fraction of digits.
func splitAmount(s string) (intPart, frac string, hasPoint bool, err error) {
	if s == "" {
		return "", "", false, fmt.Errorf("%w: empty", ErrAmountSyntax)
	}
	intPart, frac, hasPoint = strings.Cut(s, ".")
	switch {
	case intPart == "":
		err = fmt.Errorf("%w: no digits before the period", ErrAmountSyntax)
	case !AllDigits(intPart) || (hasPoint && frac != "" && !AllDigits(frac)):
		err = fmt.Errorf("%w: only the digits 0-9 and one period are allowed (no sign, exponent, space or separator)", ErrAmountSyntax)
	case len(intPart) > 1 && intPart[0] == '0':
		err = fmt.Errorf("%w: leading zero", ErrAmountSyntax)
	case hasPoint && frac == "":
		err = fmt.Errorf("%w: no digits after the period", ErrAmountSyntax)
	}
	return intPart, frac, hasPoint, err
}

// FormatAmount writes m in the form [ParseAmount] reads: exactly the
// currency's minor-unit digits after a period, and no period at all for a
// zero-decimal currency (KRW "15000", USD "12.34"). Negative amounts and
// unknown currencies are errors.
func FormatAmount(m Money) (string, error) {
	n, ok := MinorUnits(m.Currency)
	if !ok {
		return "", ErrUnknownCurrency
	}
	if m.Minor < 0 {
		return "", fmt.Errorf("%w: negative", ErrAmountRange)
	}
	digits := strconv.FormatInt(m.Minor, 10)
	if n == 0 {
		return digits, nil
	}
	if len(digits) <= n {
		digits = strings.Repeat("0", n-len(digits)+1) + digits
	}
	return digits[:len(digits)-n] + "." + digits[len(digits)-n:], nil
}

// MinorUnits returns the number of minor-unit digits of an active ISO 4217
// currency (KRW 0, USD 2, BHD 3, CLF 4), and false for anything else,
// including lower-case codes and the codes without minor units (precious
// metals XAU…, XDR, the testing code XTS, XXX).
func MinorUnits(code string) (int, bool) {
	n, ok := iso4217[code]
	return int(n), ok
}

// Money returns the transaction amount, read with [ParseAmount] in the
// transaction's currency.
func (t *Transaction) Money() (Money, error) {
	return ParseAmount(t.Amount, t.Currency)
}

// SetMoney sets Amount and Currency from m, written with [FormatAmount]; on
// error the transaction is unchanged.
func (t *Transaction) SetMoney(m Money) error {
	s, err := FormatAmount(m)
	if err != nil {
		return err
	}
	t.Amount, t.Currency = s, m.Currency
	return nil
}

// PrincipalMoney returns the loan principal of mutual-agreement terms.
func (t *Terms) PrincipalMoney() (Money, error) {
	return ParseAmount(t.Principal, t.Currency)
}

// SetPrincipal sets Principal and Currency from m.
func (t *Terms) SetPrincipal(m Money) error {
	s, err := FormatAmount(m)
	if err != nil {
		return err
	}
	t.Principal, t.Currency = s, m.Currency
	return nil
}

// CeilingMoney returns the public ceiling of an amount authentication.
func (a *AmountAuth) CeilingMoney() (Money, error) {
	return ParseAmount(a.Ceiling, a.Currency)
}

// SetCeiling sets Ceiling and Currency from m.
func (a *AmountAuth) SetCeiling(m Money) error {
	s, err := FormatAmount(m)
	if err != nil {
		return err
	}
	a.Ceiling, a.Currency = s, m.Currency
	return nil
}

// ChallengeMoney returns the secret challenge amount, in the ceiling's
// currency.
func (a *AmountAuth) ChallengeMoney() (Money, error) {
	return ParseAmount(string(a.Challenge), a.Currency)
}

// SetChallenge sets the secret challenge amount; m must be in the ceiling's
// currency when one is set.
func (a *AmountAuth) SetChallenge(m Money) error {
	if a.Currency != "" && m.Currency != a.Currency {
		return fmt.Errorf("ecml: challenge currency differs from the ceiling's")
	}
	s, err := FormatAmount(m)
	if err != nil {
		return err
	}
	a.Challenge, a.Currency = Secret(s), m.Currency
	return nil
}
