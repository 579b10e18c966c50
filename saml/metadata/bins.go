package metadata

import (
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
)

// maxBINDigits is the longest BIN prefix (ISO/IEC 7812-1:2017 issuer
// identification numbers have 8 digits).
const maxBINDigits = 8

// BINRange is an inclusive range of card-number prefixes of one length:
// "404143" (From == To) or "411111-411199". A card matches when its first
// len(From) digits lie in [From, To].
type BINRange struct {
	From, To string
}

// String returns the compact form: "404143" or "411111-411199".
func (r BINRange) String() string {
	if r.From == r.To {
		return r.From
	}
	return r.From + "-" + r.To
}

// Contains reports whether a card BIN (or a longer prefix of the card
// number) falls in the range. A BIN shorter than the range's prefixes does
// not match: it cannot be decided.
func (r BINRange) Contains(bin string) bool {
	n := len(r.From)
	if len(bin) < n || !ecml.AllDigits(bin) {
		return false
	}
	p := bin[:n]
	return p >= r.From && p <= r.To // same length, digits: lexical order is numeric order
}

// BINList is the compact BIN list of an offered service, written as one
// attribute: "404143 411111-411199".
type BINList []BINRange

// Contains reports whether any range contains bin.
func (l BINList) Contains(bin string) bool {
	for _, r := range l {
		if r.Contains(bin) {
			return true
		}
	}
	return false
}

// String returns the compact form, ranges separated by single spaces.
func (l BINList) String() string {
	var b strings.Builder
	for i, r := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// ParseBINList reads the compact form: prefixes of 1 to 8 digits and
// ranges "FROM-TO" of two prefixes of the same length with FROM <= TO,
// separated by white space (an xs:list). Commas are accepted as separators
// too, for command lines.
func ParseBINList(s string) (BINList, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ',' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty BIN list")
	}
	out := make(BINList, 0, len(fields))
	for _, f := range fields {
		r, err := parseBINRange(f)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseBINRange(f string) (BINRange, error) {
	from, to, isRange := strings.Cut(f, "-")
	if !isRange {
		to = from
	}
	for _, p := range []string{from, to} {
		if p == "" || len(p) > maxBINDigits || !ecml.AllDigits(p) {
			return BINRange{}, fmt.Errorf("BIN %q: a BIN is 1 to %d digits", f, maxBINDigits)
		}
	}
	if len(from) != len(to) {
		return BINRange{}, fmt.Errorf("BIN range %q: both ends need the same number of digits", f)
	}
	if from > to {
		return BINRange{}, fmt.Errorf("BIN range %q: the start is above the end", f)
	}
	return BINRange{From: from, To: to}, nil
}

func (l BINList) validate() error {
	for _, r := range l {
		if !ecml.AllDigits(r.From) || !ecml.AllDigits(r.To) {
			return fmt.Errorf("BIN range %q: digits only", r.From+"-"+r.To)
		}
		if _, err := parseBINRange(r.String()); err != nil {
			return err
		}
	}
	return nil
}
