package ecml

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// FlatPrefix starts every ECML flat field name (RFC 4112 §2.1.1).
const FlatPrefix = "Ecom_"

// ExtFlatPrefix starts the flat names KECIS gives the public and sensitive
// values of its extension elements that RFC 4112 has no name for
// (KECIS_AmountAuth_SessionID, KECIS_OneTimeCode…, KECIS §14.7).
const ExtFlatPrefix = "KECIS_"

// flatName reports whether name starts with one of the flat prefixes (in
// any case).
func flatName(name string) bool {
	for _, p := range []string{FlatPrefix, ExtFlatPrefix} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// FormError is what FromForm could not take from a form. The fields it
// names were left out of the payload; everything else was read.
type FormError struct {
	// Unknown lists, sorted, the names that start with "Ecom_" or "KECIS_"
	// (in any case) and are not flat names this package knows.
	Unknown []string
	// Problems lists, by name, known fields given more than once or whose
	// value cannot be stored.
	Problems []FieldProblem
}

// FieldProblem is a flat field FromForm could not store.
type FieldProblem struct {
	Name    string
	Message string
}

func (e *FormError) Error() string {
	var parts []string
	if len(e.Unknown) > 0 {
		parts = append(parts, "unknown ECML field names: "+strings.Join(e.Unknown, ", "))
	}
	for _, p := range e.Problems {
		parts = append(parts, p.Name+": "+p.Message)
	}
	return "ecml: form: " + strings.Join(parts, "; ")
}

// OnlyUnknown reports whether the only trouble is unknown names.
func (e *FormError) OnlyUnknown() bool { return len(e.Problems) == 0 }

// FromForm builds a payload from ECML flat fields (RFC 4112 §2.1.1, the
// names of an HTML checkout form, application/x-www-form-urlencoded), every
// name of RFC 4112 §2.1.1: the ShipTo/BillTo/ReceiptTo families, the payment and
// loyalty cards, the user and user data, the wallet, the device, the
// merchant→consumer and merchant→processor transaction fields and
// Ecom_TransactionComplete. Names with no XML slot in RFC 4112 go to the
// KECIS extension elements (Ecom_UserData_Gender, _BirthDate_*,
// _Preferences → kx:UserData; Ecom_Device_* → kx:Device), and the
// extension elements' own values have KECIS names (KECIS_AmountAuth_*,
// KECIS_Transfer_*, KECIS_VirtualCard_*, KECIS_Escrow_*, KECIS_CardAuth_*,
// KECIS_OneTimeCode, KECIS_KeyIn_*; KECIS §14.7). The mapping is the
// package's field table; [FlatNamePath] tells where a name goes.
//
// The contract:
//   - the result is never nil, and holds every known field FromForm could
//     store;
//   - names starting with neither "Ecom_" nor "KECIS_" are ignored (a form
//     has other fields);
//   - an empty value is the same as an absent field (forms submit empty
//     inputs), except for the flag Ecom_TransactionComplete, whose presence
//     is what counts;
//   - the error, when not nil, is a *[FormError] listing the names starting
//     with "Ecom_" or "KECIS_" that are not known (a misspelt or wrongly-cased name must
//     not silently lose data), the known names given more than once, and
//     values that cannot be stored: a character XML cannot carry, an ISO 8583
//     compact date that is not four digits, a TransactionComplete of "false";
//   - values are not validated: [Payload.Validate] does that.
func FromForm(v url.Values) (*Payload, error) {
	p := &Payload{}
	var fe FormError
	for _, name := range slices.Sorted(maps.Keys(v)) {
		if !flatName(name) {
			continue
		}
		f, ok := fieldByFlat[name]
		if !ok {
			fe.Unknown = append(fe.Unknown, name)
			continue
		}
		vals := v[name]
		if len(vals) != 1 {
			fe.Problems = append(fe.Problems, FieldProblem{name, "given " + strconv.Itoa(len(vals)) + " times"})
			continue
		}
		val := vals[0]
		if val == "" && name != "Ecom_TransactionComplete" {
			continue
		}
		if !validXMLString(val) {
			fe.Problems = append(fe.Problems, FieldProblem{name, "holds a character XML cannot carry"})
			continue
		}
		if err := f.set(p, val); err != nil {
			fe.Problems = append(fe.Problems, FieldProblem{name, err.Error()})
		}
	}
	if len(fe.Unknown) > 0 || len(fe.Problems) > 0 {
		return p, &fe
	}
	return p, nil
}

// Form returns the payload's ECML flat fields, the reverse of [FromForm]:
// one value for every known name whose value is not empty. What flat fields
// cannot say is left out: Mode and id attributes, bank accounts (a list),
// the virtual card's expiry, encrypted stand-ins and unknown elements, and
// the year of a settlement or capture date. Encode
// the result with url.Values.Encode, which sorts the names.
func (p *Payload) Form() url.Values {
	out := url.Values{}
	for _, f := range fields {
		if f.flat == "" {
			continue
		}
		if val := f.get(p); val != "" {
			out.Set(f.flat, val)
		}
	}
	return out
}
