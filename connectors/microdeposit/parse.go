package microdeposit

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
)

// maxEntry bounds what a holder may type in one field.
const maxEntry = 64

func validBankCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// errNotAmounts is ParseAmounts' refusal.
var errNotAmounts = errors.New("type the two amounts as they appear on your statement, such as 12 and 34")

// ParseAmounts reads the amounts a holder typed, in one field or several:
// whole numbers of won (1 to 6 digits, ASCII or full-width), separated by
// spaces, commas, slashes, semicolons, "+" or "와"/"and", each optionally
// followed by 원 or KRW. It answers every amount found (the caller wants
// two) and refuses anything else — a decimal point, a sign, letters —
// rather than guess.
func ParseAmounts(fields ...string) ([]int64, error) {
	var out []int64
	for _, f := range fields {
		if len(f) > maxEntry {
			return nil, errNotAmounts
		}
		s := strings.Map(func(r rune) rune {
			switch {
			case r >= '０' && r <= '９':
				return '0' + (r - '０')
			case unicode.IsSpace(r), r == ',', r == '/', r == ';', r == '+', r == '，', r == '、', r == '／', r == '；', r == '＋':
				return ' '
			}
			return r
		}, f)
		s = strings.NewReplacer("KRW", " ", "krw", " ", "원", " ", "와", " ", "과", " ", " and ", " ").Replace(" " + s + " ")
		for _, w := range strings.Fields(s) {
			if len(w) > 6 {
				return nil, errNotAmounts
			}
			for _, r := range w {
				if r < '0' || r > '9' {
					return nil, errNotAmounts
				}
			}
			n, _ := strconv.ParseInt(w, 10, 64)
			if n <= 0 {
				return nil, errNotAmounts
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errNotAmounts
	}
	return out, nil
}

// errNotCode is ParseCode's refusal.
var errNotCode = errors.New("type the code shown before the name on your statement, such as 7KQ2")

// ParseCode reads a code a holder typed: its characters of CodeAlphabet,
// in either case, full-width or not, with spaces or hyphens ignored; 3 to
// 8 of them.
func ParseCode(s string) (string, error) {
	if len(s) > maxEntry {
		return "", errNotCode
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '！' && r <= '～': // full-width ASCII
			r -= '！' - '!'
		}
		switch {
		case unicode.IsSpace(r) || r == '-':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > unicode.MaxASCII || !strings.ContainsRune(CodeAlphabet, r) {
			return "", errNotCode
		}
		b.WriteRune(r)
	}
	c := b.String()
	if len(c) < 3 || len(c) > 8 {
		return "", errNotCode
	}
	return c, nil
}
