package sms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
)

// ErrInvalidNumber is wrapped by every error about a malformed phone number
// or caller number. The errors never repeat the number itself: phone numbers
// are personal data, and errors end up in logs.
var ErrInvalidNumber = errors.New("sms: invalid phone number")

// KoreaCountryCode is the E.164 country code of the Republic of Korea.
const KoreaCountryCode = "82"

// NormalizePhone returns the E.164 form ("+821012345678") of a recipient
// number.
//
// Accepted inputs, with any spaces, hyphens, dots and parentheses:
//   - Korean mobile numbers in national format: 010-1234-5678, and the
//     legacy prefixes 011, 016, 017, 018 and 019 with a three- or
//     four-digit middle part (011-123-4567);
//   - international numbers with a leading '+' or the international prefix
//     00 (+82 10-1234-5678, 0082-10-1234-5678, +1 415 555 0123); a Korean
//     number written with its trunk zero after the country code
//     (+82 010-1234-5678) is accepted too;
//   - Korean mobile numbers with the country code but no '+' (821012345678).
//
// Korean numbers must be mobile numbers (SMS reaches no landline); numbers
// of other countries are checked only for E.164 shape (a country code that
// does not start with 0, at most 15 digits in all).
func NormalizePhone(s string) (string, error) {
	digits, plus, err := phoneDigits(s)
	if err != nil {
		return "", err
	}
	var intl string // country code and national number
	switch {
	case plus:
		intl = digits
	case strings.HasPrefix(digits, "00"):
		intl = digits[2:]
	case strings.HasPrefix(digits, "0"):
		intl = KoreaCountryCode + digits[1:]
	case strings.HasPrefix(digits, KoreaCountryCode):
		intl = digits
	default:
		return "", fmt.Errorf("%w: give a Korean mobile number (010-…) or an international number with '+' and its country code", ErrInvalidNumber)
	}
	if national, ok := strings.CutPrefix(intl, KoreaCountryCode); ok {
		national = strings.TrimPrefix(national, "0") // +82 010-… → +82 10-…
		if !koreanMobile("0" + national) {
			return "", fmt.Errorf("%w: not a Korean mobile number (010, 011, 016, 017, 018 or 019)", ErrInvalidNumber)
		}
		return "+" + KoreaCountryCode + national, nil
	}
	if len(intl) < 8 || len(intl) > 15 || intl[0] == '0' {
		return "", fmt.Errorf("%w: not an E.164 number", ErrInvalidNumber)
	}
	return "+" + intl, nil
}

// phoneDigits strips the separators people write in phone numbers and
// reports whether the number started with '+'.
func phoneDigits(s string) (digits string, plus bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, fmt.Errorf("%w: empty", ErrInvalidNumber)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			plus = true
		case r == '-' || r == ' ' || r == '.' || r == '(' || r == ')':
		default:
			return "", false, fmt.Errorf("%w: unexpected character", ErrInvalidNumber)
		}
	}
	if b.Len() == 0 {
		return "", false, fmt.Errorf("%w: no digits", ErrInvalidNumber)
	}
	if b.Len() > 20 {
		return "", false, fmt.Errorf("%w: too long", ErrInvalidNumber)
	}
	return b.String(), plus, nil
}

// koreanMobile reports whether national (digits, with the trunk zero) is a
// Korean mobile number: 010 and eight digits, or 011/016/017/018/019 and
// seven or eight digits.
func koreanMobile(national string) bool {
	if len(national) < 3 || !ecml.AllDigits(national) {
		return false
	}
	switch national[:3] {
	case "010":
		return len(national) == 11
	case "011", "016", "017", "018", "019":
		return len(national) == 10 || len(national) == 11
	}
	return false
}

// IsKoreanMobile reports whether s (in any form [NormalizePhone] accepts) is
// a Korean mobile number.
func IsKoreanMobile(s string) bool {
	e, err := NormalizePhone(s)
	return err == nil && strings.HasPrefix(e, "+"+KoreaCountryCode)
}

// National returns the Korean national form of a number without separators
// ("+821012345678" → "01012345678"), the form many Korean gateways expect;
// other countries' numbers are returned in E.164. It returns "" for a
// number [NormalizePhone] refuses.
func National(s string) string {
	e, err := NormalizePhone(s)
	if err != nil {
		return ""
	}
	if n, ok := strings.CutPrefix(e, "+"+KoreaCountryCode); ok {
		return "0" + n
	}
	return e
}

// FormatPhone returns a number for display: Korean mobiles in the usual
// national grouping ("010-1234-5678", "011-123-4567"), other numbers in
// E.164. It returns "" for a number [NormalizePhone] refuses.
func FormatPhone(s string) string {
	n := National(s)
	if n == "" || strings.HasPrefix(n, "+") {
		return n
	}
	return n[:3] + "-" + n[3:len(n)-4] + "-" + n[len(n)-4:]
}

// MaskPhone returns a number fit for logs: a Korean mobile keeps its prefix
// and last four digits ("010-****-5678"), another E.164 number its first
// two digits and last four ("+14*****0123"). Anything else keeps at most
// its last four digits.
func MaskPhone(s string) string {
	if s == "" {
		return ""
	}
	if n := National(s); n != "" {
		if strings.HasPrefix(n, "+") {
			return n[:3] + strings.Repeat("*", len(n)-7) + n[len(n)-4:]
		}
		mid := len(n) - 7
		return n[:3] + "-" + strings.Repeat("*", mid) + "-" + n[len(n)-4:]
	}
	var d []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i])
		}
	}
	if len(d) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(d)-4) + string(d[len(d)-4:])
}

// NormalizeCallerID returns a sender's caller number or short code in the
// form carriers register it: digits only, without separators ("1588-1234" →
// "15881234", "02-123-4567" → "021234567"), or E.164 when it starts with
// '+'. A caller number has 3 to 15 digits.
func NormalizeCallerID(s string) (string, error) {
	digits, plus, err := phoneDigits(s)
	if err != nil {
		return "", err
	}
	if plus {
		return NormalizePhone(s)
	}
	if len(digits) < 3 || len(digits) > 15 {
		return "", fmt.Errorf("%w: a caller number has 3 to 15 digits", ErrInvalidNumber)
	}
	return digits, nil
}
