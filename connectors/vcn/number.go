package vcn

import (
	"errors"
	"fmt"

	"github.com/kecis/kecis/ecml"
)

// Digits is the length of a virtual card number (KECIS §15.4).
const Digits = 16

// MaxPoolSize is the largest pool: serials 000001–999999 (KECIS §15.4).
const MaxPoolSize = 999_999

// TypeCode returns the paper's code of a card type (KECIS §15.4): 0 credit,
// 1 check, 2 prepaid, 6 other; ok is false for any other type.
func TypeCode(typ string) (code int, ok bool) {
	switch typ {
	case ecml.VirtualCardCredit:
		return 0, true
	case ecml.VirtualCardCheck:
		return 1, true
	case ecml.VirtualCardPrepaid:
		return 2, true
	case ecml.VirtualCardOther:
		return 6, true
	}
	return 0, false
}

// DefaultBINs returns the virtual BINs by card type: the paper's credit BIN
// 404143 and three beside it (KECIS §15.4). They differ from the real BINs
// of examples/issuer (949010, 949020, 949030).
func DefaultBINs() map[string]string {
	return map[string]string{
		ecml.VirtualCardCredit:  "404143",
		ecml.VirtualCardCheck:   "404144",
		ecml.VirtualCardPrepaid: "404145",
		ecml.VirtualCardOther:   "404146",
	}
}

// Parts are the fields of a virtual card number (KECIS §15.4): the 6-digit
// virtual BIN, the day of the year of issue (1–366) and the 6-digit serial
// (1–999999); the 16th digit is the Luhn check digit.
type Parts struct {
	BIN    string
	Day    int
	Serial int
}

// errFormat is Parse's error; it never holds a digit of its input.
var errFormat = errors.New("vcn: not a virtual card number (16 digits: BIN, day of the year, serial, Luhn check digit)")

// Parse splits a virtual card number into its parts (KECIS §15.4): 16 ASCII
// digits, a day of the year 001–366, a serial 000001–999999 and a valid Luhn
// check digit. Whether the BIN is one of an issuer's is Service.IsVirtual's
// question, not Parse's. The error never shows the number.
func Parse(number ecml.PAN) (Parts, error) {
	s := number.Reveal()
	if len(s) != Digits || !ecml.AllDigits(s) || !ecml.LuhnValid(s) {
		return Parts{}, errFormat
	}
	day := atoi(s[6:9])
	serial := atoi(s[9:15])
	if day < 1 || day > 366 || serial < 1 || serial > MaxPoolSize {
		return Parts{}, errFormat
	}
	return Parts{BIN: s[:6], Day: day, Serial: serial}, nil
}

// Format writes the virtual card number of p (KECIS §15.4): BIN, the day as
// three digits, the serial as six, and the Luhn check digit.
func Format(p Parts) (ecml.PAN, error) {
	if len(p.BIN) != 6 || !ecml.AllDigits(p.BIN) {
		return "", errors.New("vcn: a virtual BIN is 6 digits")
	}
	if p.Day < 1 || p.Day > 366 || p.Serial < 1 || p.Serial > MaxPoolSize {
		return "", errors.New("vcn: day or serial out of range")
	}
	body := fmt.Sprintf("%s%03d%06d", p.BIN, p.Day, p.Serial)
	d, _ := ecml.LuhnCheckDigit(body)
	return ecml.PAN(body + string(d)), nil
}

// atoi reads an all-digit string.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
