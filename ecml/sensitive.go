package ecml

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// This file holds the secret leaf types and the PAN helpers that the whole
// project uses to keep card numbers and other secrets out of logs, error
// messages and stored rows (KECIS §9.11: "no Luhn-valid run of 13 to 19
// digits appears in clear" in any log line, error, stored row or report).

// Redacted is what a [Secret] prints instead of its value.
const Redacted = "[redacted]"

// PAN is a primary account number (ISO/IEC 7812) or another card-like number
// that may be shown as first six and last four digits (PCI DSS 3.4): the card
// number of RFC 4112 note 12 (Card/@Number), the loyalty card number
// (Loyalty/@Number) and the virtual card number (kx:VirtualCard/kx:Number).
//
// A PAN never prints, logs or marshals its value: every fmt verb, String,
// GoString, LogValue and MarshalText give [MaskPAN] of it. The raw value is
// only reachable on purpose, with [PAN.Reveal] or a conversion to string.
type PAN string

// Reveal returns the clear value. Call it only where the number is needed
// (encryption, a network message to the issuer), never to log it.
func (p PAN) Reveal() string { return string(p) }

// Masked returns [MaskPAN] of the value.
func (p PAN) Masked() string { return MaskPAN(string(p)) }

// String implements fmt.Stringer with the masked value.
func (p PAN) String() string { return p.Masked() }

// GoString implements fmt.GoStringer with the masked value.
func (p PAN) GoString() string { return "ecml.PAN(" + strconv.Quote(p.Masked()) + ")" }

// Format implements fmt.Formatter: every verb prints the masked value (%q
// quotes it, %#v prints GoString), so %d or %x cannot reveal the digits.
func (p PAN) Format(f fmt.State, verb rune) { formatLeaf(f, verb, p.Masked(), p.GoString()) }

// LogValue implements slog.LogValuer with the masked value.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.Masked()) }

// MarshalText implements encoding.TextMarshaler with the masked value, so
// that encoding/json and slog's handlers never see the digits.
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// BIN returns the first six digits of the number, the issuer identification
// number that a kecis:Routing hint carries as CardBIN (KECIS §2.2), or ""
// when the value is not 13 to 19 ASCII digits. It shows no digit that
// [PAN.Masked] does not: call it instead of revealing the number to slice it.
func (p PAN) BIN() string {
	if !p.showable() {
		return ""
	}
	return string(p[:6])
}

// Last4 returns the last four digits of the number, the CardLast4 routing
// hint (KECIS §2.2), or "" when the value is not 13 to 19 ASCII digits, by
// the same rule as [PAN.BIN].
func (p PAN) Last4() string {
	if !p.showable() {
		return ""
	}
	return string(p[len(p)-4:])
}

// The length of a card number (RFC 4112 note 12, KECIS §14.4): ISO/IEC 7812
// allows up to 19 digits, and the card networks issue numbers of 13 to 19.
// Validation, masking, [PAN.BIN], [PAN.Last4] and [FindPANs] all take this
// one range.
const (
	MinPANDigits = 13
	MaxPANDigits = 19
)

// LooksLikePAN reports whether s has the shape of a card number: 13 to 19
// ASCII digits ([MinPANDigits], [MaxPANDigits]), Luhn-valid or not.
func LooksLikePAN(s string) bool {
	return len(s) >= MinPANDigits && len(s) <= MaxPANDigits && AllDigits(s)
}

// showable reports whether the value is a card number long enough to show
// its first six and last four digits and still hide some ([LooksLikePAN],
// PCI DSS 3.4): the one rule of [MaskPAN], [PAN.BIN] and [PAN.Last4].
func (p PAN) showable() bool { return LooksLikePAN(string(p)) }

// Secret is a value that is never shown at all: card verification values
// (RFC 4112 note 13), passwords (note 19), track data (notes 50, 51), bank
// account numbers, one-time codes, amount-authentication challenges, birth
// dates and the Korean key-in data. Every fmt verb, String, GoString,
// LogValue and MarshalText give [Redacted] (or "" for an empty value).
type Secret string

// Reveal returns the clear value. Call it only where the value is needed.
func (s Secret) Reveal() string { return string(s) }

// Masked returns [Redacted], or "" when the value is empty.
func (s Secret) Masked() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// String implements fmt.Stringer with [Secret.Masked].
func (s Secret) String() string { return s.Masked() }

// GoString implements fmt.GoStringer with [Secret.Masked].
func (s Secret) GoString() string { return "ecml.Secret(" + strconv.Quote(s.Masked()) + ")" }

// Format implements fmt.Formatter: every verb prints [Secret.Masked].
func (s Secret) Format(f fmt.State, verb rune) { formatLeaf(f, verb, s.Masked(), s.GoString()) }

// LogValue implements slog.LogValuer with [Secret.Masked].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Masked()) }

// MarshalText implements encoding.TextMarshaler with [Secret.Masked].
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Masked()), nil }

// formatLeaf writes a masked leaf for any verb. Width and flags other than
// '#' are deliberately ignored: padding a mask gains nothing.
func formatLeaf(f fmt.State, verb rune, masked, gostring string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = f.Write([]byte(gostring))
	case verb == 'q':
		_, _ = f.Write([]byte(strconv.Quote(masked)))
	default:
		_, _ = f.Write([]byte(masked))
	}
}

// MaskPAN returns the first six and the last four digits of a card number
// with a '*' for every digit in between ("4111111111111111" →
// "411111******1111"), as PCI DSS allows to display. A value that is not 13
// to 19 ASCII digits (too short to hide anything by showing ten digits, or
// not a number at all) is masked entirely as [Redacted]; "" stays "".
func MaskPAN(s string) string {
	switch p := PAN(s); {
	case s == "":
		return ""
	case !p.showable():
		return Redacted
	default:
		return p.BIN() + strings.Repeat("*", len(s)-10) + p.Last4()
	}
}

// LuhnValid reports whether s is at least two ASCII digits whose last digit
// is the Luhn (ISO/IEC 7812-1 Annex B, mod 10) check digit of the others.
func LuhnValid(s string) bool {
	if len(s) < 2 || !AllDigits(s) {
		return false
	}
	return luhnSum(s)%10 == 0
}

// luhnSum is the Luhn sum of an all-digit string.
func luhnSum(s string) int {
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum
}

// LuhnCheckDigit returns the digit that, appended to the all-digit string s,
// makes it Luhn-valid; ok is false when s is empty or not all digits.
func LuhnCheckDigit(s string) (digit byte, ok bool) {
	if s == "" || !AllDigits(s) {
		return 0, false
	}
	sum := luhnSum(s + "0")
	return byte('0' + (10-sum%10)%10), true
}

// FindPANs returns the byte ranges [start, end) of every run of 13 to 19
// ASCII digits in text that is not adjacent to another digit and passes the
// Luhn check: the numbers that KECIS §9.11 forbids in clear anywhere. The
// project's tests scan log output, stored rows and messages with it.
//
// Digits separated by spaces or hyphens ("4111 1111 1111 1111") are not
// joined: KECIS never writes card numbers that way (RFC 4112 note 12 forbids
// separators), and joining would flag every long run of grouped numbers.
//
// A run inside a hex token of 32 or more characters with a hex letter in
// it (a SHA-256 fingerprint, a 128-bit message ID, an HMAC) is part of that
// token, not a card number: about one such token in two hundred holds a
// Luhn-valid run by chance.
func FindPANs(text string) [][2]int {
	var out [][2]int
	for i := 0; ; {
		s, e := nextPAN(text, i)
		if s < 0 {
			return out
		}
		out = append(out, [2]int{s, e})
		i = e
	}
}

// ContainsPAN reports whether [FindPANs] finds anything in text.
func ContainsPAN(text string) bool {
	s, _ := nextPAN(text, 0)
	return s >= 0
}

// nextPAN finds the first card number of text at or after i (-1 if none).
func nextPAN(text string, i int) (int, int) {
	for i < len(text) {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if n := j - i; n >= MinPANDigits && n <= MaxPANDigits && LuhnValid(text[i:j]) && !inHexToken(text, i, j) {
			return i, j
		}
		i = j
	}
	return -1, -1
}

// inHexToken reports whether the digits text[i:j] lie inside a hex token of
// at least 32 characters that holds a hex letter.
func inHexToken(text string, i, j int) bool {
	a, b := i, j
	letter := false
	for a > 0 && isHex(text[a-1]) {
		a--
		letter = letter || !isDigit(text[a])
	}
	for b < len(text) && isHex(text[b]) {
		letter = letter || !isDigit(text[b])
		b++
	}
	return letter && b-a >= 32
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// RandomHex returns n bytes of r as lower-case hex, drawn again while the
// text holds a number [FindPANs] would take for a card number (a Luhn-valid
// run of 13–19 digits, in about 0.3 % of 32-digit draws): identifiers made
// of it are never masked in logs nor flagged by a leak check.
func RandomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		if s := hex.EncodeToString(b); !ContainsPAN(s) {
			return s, nil
		}
	}
}

// RedactPANs returns text with every number [FindPANs] finds replaced by its
// [MaskPAN]. Public fields pass through it before they are printed or
// logged, so that a card number typed into the wrong field does not leak.
func RedactPANs(text string) string {
	spans := FindPANs(text)
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, s := range spans {
		b.WriteString(text[last:s[0]])
		b.WriteString(MaskPAN(text[s[0]:s[1]]))
		last = s[1]
	}
	b.WriteString(text[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// AllDigits reports whether s is one or more ASCII digits '0' to '9': no
// sign, space, separator or other Unicode digit. It is the project's one
// test that a card number, BIN, bank code, code or date part is digits only.
func AllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
