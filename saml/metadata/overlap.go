package metadata

import (
	"slices"

	"github.com/kecis/kecis/ecml"
)

// Overlaps reports whether some card number falls in both ranges (KECIS
// §13.5). Ranges of different prefix lengths are compared on the shorter
// length: "4041" overlaps "404143" (every 404143… card starts with 4041),
// "411111-411199" overlaps "4111", and "5" overlaps nothing that starts
// with 4.
//
// The set of n-digit prefixes of a range of longer prefixes [From, To] is
// the contiguous range [From[:n], To[:n]], so two ranges overlap when
// their intervals, cut to the shorter length, intersect.
func (r BINRange) Overlaps(o BINRange) bool {
	if !r.valid() || !o.valid() {
		return false
	}
	n := min(len(r.From), len(o.From))
	return r.From[:n] <= o.To[:n] && o.From[:n] <= r.To[:n]
}

func (r BINRange) valid() bool {
	return ecml.AllDigits(r.From) && len(r.From) == len(r.To) && r.From <= r.To
}

// Overlap returns the first range of l and the first range of o that
// overlap, in l's order; ok is false when none do. An empty list overlaps
// nothing here: whether "no BIN list" means "every BIN" is the caller's
// rule (see ClaimOverlap).
func (l BINList) Overlap(o BINList) (a, b BINRange, ok bool) {
	for _, x := range l {
		for _, y := range o {
			if x.Overlaps(y) {
				return x, y, true
			}
		}
	}
	return BINRange{}, BINRange{}, false
}

// ClaimOverlap says whether two offers of one service claim a common card
// BIN or bank code for the role that answers for it (KECIS §13.4, §13.5):
// for RoleIssuer their BIN lists, for RoleBank their bank codes. An offer
// without a list of that kind admits every BIN (every bank code), so it
// claims all of them and overlaps any offer of the same service. what
// names the overlap for a person ("BINs 4041 and 404143", "bank code 004",
// "every BIN"); it is "" when there is none or the role claims neither.
func ClaimOverlap(role Role, a, b *OfferedService) (what string, ok bool) {
	if a.Service != b.Service {
		return "", false
	}
	switch role {
	case RoleIssuer:
		switch {
		case len(a.BINs) == 0 && len(b.BINs) == 0:
			return "every BIN (neither lists BINs)", true
		case len(a.BINs) == 0:
			return "every BIN (no BIN list) and BINs " + b.BINs.String(), true
		case len(b.BINs) == 0:
			return "BINs " + a.BINs.String() + " and every BIN (no BIN list)", true
		}
		if x, y, ok := a.BINs.Overlap(b.BINs); ok {
			return "BINs " + x.String() + " and " + y.String(), true
		}
	case RoleBank:
		switch {
		case len(a.BankCodes) == 0 && len(b.BankCodes) == 0:
			return "every bank code (neither lists bank codes)", true
		case len(a.BankCodes) == 0:
			return "every bank code (no bank code list) and bank codes " + listText(b.BankCodes, ""), true
		case len(b.BankCodes) == 0:
			return "bank codes " + listText(a.BankCodes, "") + " and every bank code (no bank code list)", true
		}
		for _, c := range a.BankCodes {
			if slices.Contains(b.BankCodes, c) {
				return "bank code " + c, true
			}
		}
	}
	return "", false
}
