package telecom

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/kecis/kecis/connectors/sms"
)

// HolderOutcome is the answer of the phone-holder check (KECIS §15.10,
// "phone:holder-check"): whether a phone number belongs to a name. The
// check never tells the holder's name.
type HolderOutcome string

const (
	// HolderMatch: the line is active and its holder's name is the name
	// given, after normalisation ([MatchName]).
	HolderMatch HolderOutcome = "match"
	// HolderCloseMatch: the names differ by one character, or by the
	// order of family and given name.
	HolderCloseMatch HolderOutcome = "close-match"
	// HolderNoMatch: another name, or no name given.
	HolderNoMatch HolderOutcome = "no-match"
	// HolderNotPossible: the number is not an active line of this carrier
	// (unknown, suspended or terminated): nothing can be said.
	HolderNotPossible HolderOutcome = "not-possible"
)

// HolderCheck answers the carrier's phone-holder check: whether phone is
// an active line held by name, as [MatchName] compares them. An unknown,
// suspended or terminated line is HolderNotPossible, whatever the name.
// A number that is no mobile number fails with ErrInvalid. The line's
// holder name is never returned nor logged, and the number is logged
// masked.
func (t *Telecom) HolderCheck(ctx context.Context, phone, name string) (HolderOutcome, error) {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return "", invalid(err)
	}
	var holder, status string
	err = t.db.QueryRowContext(ctx, `SELECT holder_name, status FROM telecom_subscribers WHERE phone = $1`, p).Scan(&holder, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		status = ""
	case err != nil:
		return "", fmt.Errorf("telecom: holder check of %s: %w", sms.MaskPhone(p), err)
	}
	out := HolderNotPossible
	if status == string(SubscriberActive) {
		out = MatchName(holder, name)
	}
	t.log.InfoContext(ctx, "telecom: holder check", "phone", sms.MaskPhone(p), "outcome", out)
	return out, nil
}

// HolderMatches reports whether phone is an active line held by name: a
// [HolderCheck] that answers HolderMatch.
func (t *Telecom) HolderMatches(ctx context.Context, phone, name string) (bool, error) {
	out, err := t.HolderCheck(ctx, phone, name)
	return out == HolderMatch, err
}

// MatchName compares the name given for a line with its holder's name
// (KECIS §15.10). Both are normalised first ([normalizeName]: Unicode NFKC,
// without white space or invisible format characters, in upper case), so
// that "홍 길동" is "홍길동", "john  smith" is "JOHN SMITH" and "홍Gildong"
// is "홍 Gildong". Then:
//
//   - the same normalised name is HolderMatch;
//   - a name differing by one character (one replaced, added or left out,
//     a Hangul syllable counting as one), when the shorter has at least
//     two, is HolderCloseMatch;
//   - family and given name in the other order is HolderCloseMatch: the
//     one name is the other turned around at a word boundary of either (a
//     space, or a change between Hangul and Latin letters), or, for names
//     written in Hangul alone, around a family name of one or two
//     syllables ("길동홍" for "홍길동", "Gildong Hong" for "HONG GILDONG");
//   - anything else, and an empty name, is HolderNoMatch.
//
// It is symmetric, and never HolderNotPossible: that is the line's
// status, not the name's.
func MatchName(holder, given string) HolderOutcome {
	h, hcuts := nameRunes(holder)
	g, gcuts := nameRunes(given)
	if len(g) == 0 || len(h) == 0 {
		return HolderNoMatch
	}
	a, b := sha256.Sum256([]byte(string(h))), sha256.Sum256([]byte(string(g)))
	if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
		return HolderMatch
	}
	if oneEdit(h, g) || swapped(h, hcuts, g, gcuts) {
		return HolderCloseMatch
	}
	return HolderNoMatch
}

// normalizeName folds a name for comparison: Unicode NFKC (full-width
// Latin is Latin, Hangul jamo sequences are syllables), without white
// space and invisible format characters, in upper case.
func normalizeName(s string) string {
	r, _ := nameRunes(s)
	return string(r)
}

// nameRunes is normalizeName's runes, with the word boundaries of the name
// as offsets into them (0 < cut < len): where white space was, and where
// Hangul letters meet others.
func nameRunes(s string) ([]rune, []int) {
	var out []rune
	var cuts []int
	cut := func() {
		if n := len(out); n > 0 && (len(cuts) == 0 || cuts[len(cuts)-1] != n) {
			cuts = append(cuts, n)
		}
	}
	for _, r := range norm.NFKC.String(s) {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			cut()
			continue
		}
		r = unicode.ToUpper(r)
		if n := len(out); n > 0 && isHangul(out[n-1]) != isHangul(r) {
			cut()
		}
		out = append(out, r)
	}
	if n := len(cuts); n > 0 && cuts[n-1] == len(out) {
		cuts = cuts[:n-1]
	}
	return out, cuts
}

func isHangul(r rune) bool { return unicode.Is(unicode.Hangul, r) }

// oneEdit reports whether a and b differ by exactly one replaced, added or
// removed rune, the shorter having at least two.
func oneEdit(a, b []rune) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(a) < 2 || len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i < len(a) && slices.Equal(a[i+1:], b[i+1:])
	}
	return slices.Equal(a[i:], b[i+1:])
}

// swapped reports whether g is h turned around at a word boundary: h =
// X+Y and g = Y+X, where the cut between X and Y is a boundary of h, or
// the one between Y and X a boundary of g, or — both names all Hangul —
// X or Y is a family name of one or two syllables.
func swapped(h []rune, hcuts []int, g []rune, gcuts []int) bool {
	n := len(h)
	if n != len(g) || n < 2 {
		return false
	}
	rotated := func(k int) bool {
		return k > 0 && k < n && slices.Equal(h[k:], g[:n-k]) && slices.Equal(h[:k], g[n-k:])
	}
	for _, k := range hcuts {
		if rotated(k) {
			return true
		}
	}
	for _, c := range gcuts {
		if rotated(n - c) {
			return true
		}
	}
	if !allHangul(h) || !allHangul(g) {
		return false
	}
	for _, k := range []int{1, 2, n - 1, n - 2} {
		if rotated(k) {
			return true
		}
	}
	return false
}

func allHangul(rs []rune) bool {
	return !slices.ContainsFunc(rs, func(r rune) bool { return !isHangul(r) })
}
