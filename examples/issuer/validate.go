package issuer

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kecis/kecis/ecml"
)

// checkText validates a free-text field a client sends: one line of valid
// UTF-8, at most max characters, and never a card number (which would
// otherwise reach logs, rows and SMS in clear).
func checkText(field, s string, max int, required bool) *Error {
	if s == "" {
		if required {
			return invalid(field + " is required")
		}
		return nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return invalid(field + " must be valid UTF-8 of at most " + strconv.Itoa(max) + " characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field + " must not contain control characters")
		}
	}
	if ecml.ContainsPAN(s) {
		return invalid(field + " must not contain a card number")
	}
	return nil
}

// checkKey validates an idempotency key: 1–255 printable ASCII characters.
func checkKey(k string) *Error {
	if k == "" {
		return invalid("an idempotency key is required")
	}
	if len(k) > 255 {
		return invalid("idempotency key longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return invalid("idempotency key must be printable ASCII")
		}
	}
	if ecml.ContainsPAN(k) {
		return invalid("idempotency key must not contain a card number")
	}
	return nil
}

// checkMoney validates an amount: positive, in a currency with ISO 4217
// minor units.
func checkMoney(m ecml.Money) *Error {
	if _, ok := ecml.MinorUnits(m.Currency); !ok {
		return invalid("unknown currency " + strconv.Quote(m.Currency))
	}
	if m.Minor <= 0 {
		return invalid("amount must be positive")
	}
	return nil
}

// normalizePhone returns a Korean mobile number as digits only
// ("010-1234-5678" → "01012345678").
func normalizePhone(s string) (string, bool) {
	d := strings.NewReplacer("-", "", " ", "").Replace(s)
	if !ecml.AllDigits(d) || len(d) < 10 || len(d) > 11 || !strings.HasPrefix(d, "01") {
		return "", false
	}
	return d, true
}

// validYYMMDD reports whether s is a calendar date written YYMMDD.
func validYYMMDD(s string) bool {
	if len(s) != 6 || !ecml.AllDigits(s) {
		return false
	}
	_, err := time.Parse("060102", s)
	return err == nil
}

// normYear reads a two-digit year as 20YY.
func normYear(y int) int {
	if y >= 0 && y < 100 {
		return 2000 + y
	}
	return y
}
