package ecml

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// checkFunc checks the syntax of a non-empty value and reports problems at
// path. Checks of public fields may quote the value (through quote, which
// masks card numbers); checks used on sensitive fields never do.
type checkFunc func(v *validator, path, val string)

// hasControl reports a C0 or C1 control character or DEL; multiline allows
// TAB, LF and CR.
func hasControl(s string, multiline bool) bool {
	for _, r := range s {
		if multiline && (r == '\t' || r == '\n' || r == '\r') {
			continue
		}
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return true
		}
	}
	return false
}

func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// checkText: any printable characters (names and addresses may be Korean).
func checkText(v *validator, path, val string) {
	if hasControl(val, false) {
		v.add(path, "holds a control character")
	}
}

// checkMultiline: printable characters and line breaks.
func checkMultiline(v *validator, path, val string) {
	if hasControl(val, true) {
		v.add(path, "holds a control character")
	}
}

// checkASCII: printable ASCII (RFC 4112 note 102), as identifiers and
// ISO 8583 fields are.
func checkASCII(v *validator, path, val string) {
	if !isASCIIPrintable(val) {
		v.add(path, "must be printable ASCII (RFC 4112 note 102)")
	}
}

// checkToken: printable ASCII without spaces.
func checkToken(v *validator, path, val string) {
	if !isASCIIPrintable(val) || strings.Contains(val, " ") {
		v.add(path, "must be printable ASCII without spaces")
	}
}

// checkDigits returns a check for min to max ASCII digits. It never quotes
// the value: it guards secrets (CVV, codes).
func checkDigits(min, max int) checkFunc {
	return func(v *validator, path, val string) {
		if !AllDigits(val) || len(val) < min || len(val) > max {
			if min == max {
				v.add(path, "must be exactly "+strconv.Itoa(min)+" digits")
			} else {
				v.add(path, "must be "+strconv.Itoa(min)+" to "+strconv.Itoa(max)+" digits")
			}
		}
	}
}

// isNameStartChar and isNameChar are the productions of XML 1.0 (5th ed.)
// §2.3.
func isNameStartChar(r rune) bool {
	return r == ':' || r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') ||
		(r >= 0xC0 && r <= 0xD6) || (r >= 0xD8 && r <= 0xF6) || (r >= 0xF8 && r <= 0x2FF) ||
		(r >= 0x370 && r <= 0x37D) || (r >= 0x37F && r <= 0x1FFF) || (r >= 0x200C && r <= 0x200D) ||
		(r >= 0x2070 && r <= 0x218F) || (r >= 0x2C00 && r <= 0x2FEF) || (r >= 0x3001 && r <= 0xD7FF) ||
		(r >= 0xF900 && r <= 0xFDCF) || (r >= 0xFDF0 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0xEFFFF)
}

func isNameChar(r rune) bool {
	return isNameStartChar(r) || r == '-' || r == '.' || (r >= '0' && r <= '9') || r == 0xB7 ||
		(r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}

// isNMTOKEN reports whether s is an XML Nmtoken: name characters only, so no
// space (RFC 4112 DTD: name parts, PostalCode, CountryCode).
func isNMTOKEN(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isNameChar(r) {
			return false
		}
	}
	return true
}

func checkNMTOKEN(v *validator, path, val string) {
	if !isNMTOKEN(val) {
		v.add(path, "must be an XML NMTOKEN: letters, digits, '.', '-', '_', ':' and no spaces (RFC 4112 DTD)")
	}
}

// checkNCName: an xs:ID (the id attributes).
func checkNCName(v *validator, path, val string) {
	for i, r := range val {
		if r == ':' || (i == 0 && !isNameStartChar(r)) || !isNameChar(r) {
			v.add(path, "must be an XML NCName (xs:ID)")
			return
		}
	}
}

func checkCountry(v *validator, path, val string) {
	if !IsCountryCode(val) {
		v.add(path, "must be an upper-case ISO 3166-1 alpha-2 country code (RFC 4112 note 7), not "+quote(val))
	}
}

func checkCurrency(v *validator, path, val string) {
	if _, ok := MinorUnits(val); !ok {
		v.add(path, "must be an upper-case ISO 4217 currency code (RFC 4112 note 28), not "+quote(val))
	}
}

func checkSchemaVersion(v *validator, path, val string) {
	if val != SchemaVersion {
		v.add(path, "must be "+SchemaVersion+" (RFC 4112 §5.2.1), not "+quote(val))
	}
}

// checkLanguage: xs:language, a BCP 47 tag's syntax (1–8 letters, then
// subtags of 1–8 letters or digits).
func checkLanguage(v *validator, path, val string) {
	for i, sub := range strings.Split(val, "-") {
		ok := len(sub) >= 1 && len(sub) <= 8
		for j := 0; ok && j < len(sub); j++ {
			c := sub[j]
			letter := (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
			ok = letter || (i > 0 && isDigit(c))
		}
		if !ok {
			v.add(path, "must be a language tag (xs:language, e.g. ko or ko-KR), not "+quote(val))
			return
		}
	}
}

// checkEmail is a basic check of an addr-spec: one '@', a local part of
// printable ASCII without spaces, and a domain of at least two labels of
// letters, digits and hyphens.
func checkEmail(v *validator, path, val string) {
	local, domain, ok := strings.Cut(val, "@")
	ok = ok && local != "" && len(local) <= 64 && !strings.ContainsAny(local, " @()<>[]\\,;:\"") &&
		isASCIIPrintable(local) && !strings.HasPrefix(local, ".") && !strings.HasSuffix(local, ".") &&
		!strings.Contains(local, "..")
	labels := strings.Split(domain, ".")
	ok = ok && len(labels) >= 2
	for _, l := range labels {
		ok = ok && l != "" && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for i := 0; ok && i < len(l); i++ {
			c := l[i]
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-'
		}
	}
	if !ok {
		v.add(path, "must be an e-mail address (local@domain.example)")
	}
}

// checkPhone: digits with the usual punctuation, an optional leading '+'.
func checkPhone(v *validator, path, val string) {
	digits := 0
	for i := 0; i < len(val); i++ {
		c := val[i]
		switch {
		case isDigit(c):
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			v.add(path, "must be a telephone number: digits, an optional leading '+', spaces, '-', '.', '(' and ')'")
			return
		}
	}
	if digits < 3 {
		v.add(path, "must be a telephone number with at least 3 digits")
	}
}

// checkURI: an absolute URI (xs:anyURI as RFC 4112 uses it, for locations
// that are fetched), ASCII without spaces.
func checkURI(v *validator, path, val string) {
	u, err := url.Parse(val)
	if err != nil || !isASCIIPrintable(val) || strings.Contains(val, " ") || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		v.add(path, "must be an absolute URI (scheme://host/…), ASCII without spaces")
	}
}

// checkBase64: standard base64 (RFC 4112 note 31); white space between the
// characters is allowed, as XML Signature values are often wrapped.
func checkBase64(v *validator, path, val string) {
	compact := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, val)
	if _, err := base64.StdEncoding.Strict().DecodeString(compact); err != nil || compact == "" {
		v.add(path, "must be base64 (RFC 4112 note 31)")
	}
}

// checkEnum returns a check for a case-sensitive choice.
func checkEnum(values ...string) checkFunc {
	return func(v *validator, path, val string) {
		if !slices.Contains(values, val) {
			v.add(path, "must be one of "+strings.Join(values, ", ")+", not "+quote(val))
		}
	}
}

// checkGender: Ecom_UserData_Gender (note 36), M or F, case-insensitive.
func checkGender(v *validator, path, val string) {
	switch val {
	case "M", "F", "m", "f":
	default:
		v.add(path, "must be M or F (RFC 4112 note 36), not "+quote(val))
	}
}

// checkCardType: note 11 and the KECIS registry.
func checkCardType(v *validator, path, val string) {
	if _, ok := NormalizeCardType(val); !ok {
		v.add(path, "unknown card type "+quote(val)+": the first up to four letters must be a code of RFC 4112 note 11 (AMER BANK DC DINE DISC JCB MAST NIKO SAIS UC UCAR VISA) or a KECIS registered extension")
	}
}

// protocols are the tokens of RFC 4112 note 17.
var protocols = []string{"none", "set", "setcert", "iotp", "echeck", "simcard", "phoneid"}

// checkProtocols: Card/@Protocols, space-separated tokens of note 17
// (compared case-insensitively), each at most once, "none" alone.
func checkProtocols(v *validator, path, val string) {
	toks := strings.Split(val, " ")
	var seen []string
	for _, t := range toks {
		lt := strings.ToLower(t)
		switch {
		case t == "":
			v.add(path, "tokens must be separated by single spaces")
			return
		case !slices.Contains(protocols, lt):
			v.add(path, "unknown protocol "+quote(t)+" (RFC 4112 note 17: "+strings.Join(protocols, ", ")+")")
			return
		case slices.Contains(seen, lt):
			v.add(path, "protocol "+quote(t)+" is repeated")
			return
		}
		seen = append(seen, lt)
	}
	if len(seen) > 1 && slices.Contains(seen, "none") {
		v.add(path, `"none" cannot be combined with other protocols`)
	}
}

// checkISODate: YYYY-MM-DD, a valid calendar date.
func checkISODate(v *validator, path, val string) {
	ok := len(val) == 10 && val[4] == '-' && val[7] == '-' && AllDigits(val[:4]) && AllDigits(val[5:7]) && AllDigits(val[8:])
	if ok {
		y, _ := strconv.Atoi(val[:4])
		m, _ := strconv.Atoi(val[5:7])
		d, _ := strconv.Atoi(val[8:])
		ok = y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m)
	}
	if !ok {
		v.add(path, "must be a date YYYY-MM-DD")
	}
}

// checkDateTime: an xs:dateTime with a time zone (Z or ±hh:mm), as SAML
// writes its instants.
func checkDateTime(v *validator, path, val string) {
	if _, err := parseDateTime(val); err != nil {
		v.add(path, "must be an xs:dateTime with a time zone, e.g. 2026-11-05T10:30:00Z")
	}
}

// parseDateTime parses an xs:dateTime with a time zone.
func parseDateTime(val string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, val)
}

// checkRate: a yearly interest rate in percent, 0 to 100 with up to four
// decimals.
func checkRate(v *validator, path, val string) {
	i, f, hasPoint := strings.Cut(val, ".")
	ok := i != "" && len(i) <= 3 && AllDigits(i) && (!hasPoint || (f != "" && len(f) <= 4 && AllDigits(f)))
	if ok {
		n, _ := strconv.Atoi(i)
		ok = n < 100 || (n == 100 && strings.Trim(f, "0") == "")
	}
	if !ok {
		v.add(path, "must be a percentage from 0 to 100 with at most four decimals, e.g. 4.5")
	}
}

// checkSessionID: an opaque identifier, unreserved URI characters.
func checkSessionID(v *validator, path, val string) {
	for i := 0; i < len(val); i++ {
		c := val[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			v.add(path, "must be letters, digits, '-', '.', '_' or '~'")
			return
		}
	}
}

// checkAccountNumber: a bank account number, digits in groups joined by
// single hyphens, 6 to 20 digits. Never quoted.
func checkAccountNumber(v *validator, path, val string) {
	if _, ok := AccountDigits(val); !ok {
		v.add(path, "must be 6 to 20 digits, optionally grouped with single hyphens")
	}
}

// AccountDigits returns the digits of a bank account number written as
// KECIS §14.5 allows — 6 to 20 digits, optionally grouped with single
// hyphens (110-123-456789) — and whether it is one. It is the one rule for
// account numbers: the validator, the banks and the services use it.
func AccountDigits(s string) (string, bool) {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") || len(s) > 24 {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			b.WriteByte(c)
		case c != '-':
			return "", false
		}
	}
	d := b.String()
	if len(d) < 6 || len(d) > 20 {
		return "", false
	}
	return d, true
}

// MaskAccount shows an account number by its last four digits only
// (****-6789), as a log line, a text or a page may (KECIS §9.11); given
// fewer than four digits it shows none.
func MaskAccount(number string) string {
	var d []byte
	for i := 0; i < len(number); i++ {
		if isDigit(number[i]) {
			d = append(d, number[i])
		}
	}
	if len(d) < 4 {
		return "****"
	}
	return "****-" + string(d[len(d)-4:])
}

// checkYYMMDD: a birth date as Korean key-in payments ask for it. The
// century is unknown, so 29 February is accepted in every year divisible by
// four (00 included: 2000 was a leap year). Never quoted.
func checkYYMMDD(v *validator, path, val string) {
	ok := len(val) == 6 && AllDigits(val)
	if ok {
		yy, _ := strconv.Atoi(val[:2])
		m, _ := strconv.Atoi(val[2:4])
		d, _ := strconv.Atoi(val[4:])
		max := 0
		if m >= 1 && m <= 12 {
			max = daysIn(2000+yy, m)
		}
		ok = d >= 1 && d <= max
	}
	if !ok {
		v.add(path, "must be a valid date YYMMDD")
	}
}

// checkBusinessNumber: a Korean business registration number (사업자등록번호):
// ten digits, optionally as 3-2-5 with hyphens, whose last digit is the
// National Tax Service check digit (weights 1 3 7 1 3 7 1 3 5). Never
// quoted.
func checkBusinessNumber(v *validator, path, val string) {
	if !ValidBusinessNumber(val) {
		v.add(path, "must be a 10-digit business registration number with a valid check digit")
	}
}

// ValidBusinessNumber reports whether s is a Korean business registration
// number, "1234567890" or "123-45-67890", with a valid check digit.
func ValidBusinessNumber(s string) bool {
	if len(s) == 12 && s[3] == '-' && s[6] == '-' {
		s = s[:3] + s[4:6] + s[7:]
	}
	if len(s) != 10 || !AllDigits(s) {
		return false
	}
	weights := [9]int{1, 3, 7, 1, 3, 7, 1, 3, 5}
	sum := 0
	for i, w := range weights {
		sum += int(s[i]-'0') * w
	}
	sum += int(s[8]-'0') * 5 / 10
	return (10-sum%10)%10 == int(s[9]-'0')
}

// daysIn returns the number of days of month m (1–12) in year y
// (proleptic Gregorian).
func daysIn(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// hasEdgeSpace reports leading or trailing white space.
func hasEdgeSpace(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return isSpaceRune(first) || isSpaceRune(last)
}

func isSpaceRune(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', 0x85, 0xA0, 0x3000:
		return true
	}
	return false
}
