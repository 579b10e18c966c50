package pg

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxRequestAmount is the largest amount the PG accepts in one request, in won.
const MaxRequestAmount int64 = 1_000_000_000_000

var (
	midPattern = regexp.MustCompile(`^[A-Z0-9]{4,20}$`)
	binPattern = regexp.MustCompile(`^[0-9]{1,8}$`)
)

// checkKey validates an Idempotency-Key: 1–255 printable ASCII characters
// (the length KECIS §7.1 allows).
func checkKey(k string) *Error {
	if k == "" {
		return newError(CodeIdempotencyKey, "an Idempotency-Key is required")
	}
	if len(k) > 255 {
		return newError(CodeIdempotencyKey, "the Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return newError(CodeIdempotencyKey, "the Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkText validates a free-text field: valid UTF-8, one line, at most
// max characters, non-empty when required.
func checkText(name, v string, max int, required bool) *Error {
	switch {
	case v == "" && required:
		return invalid(name + " is required")
	case !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n"):
		return invalid(name + " must be one line of text")
	case utf8.RuneCountInString(v) > max:
		return invalid(fmt.Sprintf("%s is longer than %d characters", name, max))
	}
	return nil
}

// checkOrderNo: the merchant's order number, 1–64 characters of
// [A-Za-z0-9_.:-].
func checkOrderNo(v string) *Error {
	if v == "" {
		return invalid("orderNo is required")
	}
	if len(v) > 64 {
		return invalid("orderNo is longer than 64 characters")
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.:-", c)) {
			return invalid("orderNo may hold only letters, digits and _ . : -")
		}
	}
	return nil
}

// checkAuthentication bounds the opaque authentication evidence of a
// payment: at most MaxAuthentication items, each 1 to
// MaxAuthenticationLen printable ASCII characters. What they hold is not
// the PG's to read.
func checkAuthentication(items []string) *Error {
	if len(items) > MaxAuthentication {
		return invalid(fmt.Sprintf("authentication has more than %d items", MaxAuthentication))
	}
	for _, a := range items {
		if a == "" || len(a) > MaxAuthenticationLen {
			return invalid(fmt.Sprintf("each item of authentication holds 1 to %d characters", MaxAuthenticationLen))
		}
		for i := 0; i < len(a); i++ {
			if a[i] < 0x21 || a[i] > 0x7e {
				return invalid("each item of authentication is printable ASCII without spaces")
			}
		}
	}
	return nil
}

// checkToken bounds a public token of the payment (aav, merchantRef): at
// most max printable ASCII characters without spaces; empty is absent.
func checkToken(name, v string, max int) *Error {
	if len(v) > max {
		return invalid(fmt.Sprintf("%s holds at most %d characters", name, max))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return invalid(name + " is printable ASCII without spaces")
		}
	}
	return nil
}

func checkMID(v string) *Error {
	if v == "" {
		return invalid("mid is required")
	}
	if !midPattern.MatchString(v) {
		return invalid("mid must be 4–20 upper-case letters and digits")
	}
	return nil
}

func checkAmount(name string, v int64) *Error {
	if v <= 0 || v > MaxRequestAmount {
		return invalid(fmt.Sprintf("%s must be a whole number of won from 1 to %d", name, MaxRequestAmount))
	}
	return nil
}

func checkContract(c Contract) *Error {
	if len(c.BINPrefixes) > 100 {
		return invalid("at most 100 BIN prefixes")
	}
	for _, b := range c.BINPrefixes {
		if !binPattern.MatchString(b) {
			return invalid("a BIN prefix must be 1–8 digits")
		}
	}
	if c.FeeBPS < 0 || c.FeeBPS > 10000 {
		return invalid("feeBps must be 0–10000 basis points")
	}
	if c.MaxAmount < 0 || c.MaxAmount > MaxRequestAmount || c.DailyLimit < 0 || c.DailyLimit > MaxRequestAmount*100 {
		return invalid("maxAmount and dailyLimit must be 0 (no limit) or a positive amount")
	}
	return nil
}

// normCardNo strips the spaces and hyphens people type in card numbers.
func normCardNo(s string) string { return cardNoSeparators.Replace(s) }

// cardNoSeparators drops the spaces and dashes of a card number as typed;
// built once (a Replacer builds its tables on first use: 7 KB a payment).
var cardNoSeparators = strings.NewReplacer(" ", "", "-", "")

// checkCard checks a card number (13–19 digits, Luhn) and its expiry
// against now: the PG refuses what no issuer would approve, without
// asking one.
func (p *PG) checkCard(pan string, month, year int, now time.Time) (int, *Error) {
	if len(pan) < 13 || len(pan) > 19 || !allDigits(pan) {
		return 0, invalid("cardNo must be 13–19 digits")
	}
	if !luhnValid(pan) {
		return 0, newError(CodeInvalidCard, "the card number fails its check digit")
	}
	if year >= 0 && year < 100 {
		year += 2000
	}
	if month < 1 || month > 12 || year < 2000 || year > 2099 {
		return 0, invalid("expMonth must be 1–12 and expYear a year (YY or YYYY)")
	}
	// A card is valid through the last day of its expiry month.
	if end := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, p.loc); !now.Before(end) {
		return 0, newError(CodeCardExpired, "the card has expired")
	}
	return year, nil
}

// luhnValid reports whether the all-digit s ends in its Luhn check digit
// (ISO/IEC 7812-1 Annex B).
func luhnValid(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// redactDigits masks every run of 13 or more digits in s: text from the
// issuer gateway is stored and logged only through it.
func redactDigits(s string) string {
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 13 {
			b.WriteString(MaskCardNo(s[end-run : end]))
		} else {
			b.WriteString(s[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			continue
		}
		flush(i)
		b.WriteByte(s[i])
	}
	flush(len(s))
	out := b.String()
	if len(out) > 512 {
		out = out[:512]
		for !utf8.ValidString(out) {
			out = out[:len(out)-1]
		}
	}
	return out
}
