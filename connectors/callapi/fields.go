package callapi

import (
	"net/url"
	"slices"
	"strings"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
)

// PayloadOptions tune [Payload].
type PayloadOptions struct {
	// ClearSensitive accepts the fields of KECIS §8.1's must-encrypt list
	// in clear: the hub's development mode (§12.4), or the sidecar, which
	// encrypts them itself for the recipient. Without it each is refused
	// (ProblemClearSensitive, naming them) before its value is read.
	ClearSensitive bool
}

// Payload builds a request's ECML from its flat fields. Every name must be
// an ECML flat name (ProblemInvalidFields naming the others); a sensitive
// field in clear is refused unless o allows it; a public field whose value
// holds a card number as [ecml.FindPANs] sees one is refused
// (ProblemCardNumberInField, naming the fields): it would travel in clear
// in a public attribute and stay in the hub's audit, which KECIS §9.11
// forbids, and nothing tells a real card number from, say, a nanosecond
// timestamp that happens to pass the Luhn check — so the caller is told to
// break the run rather than have it masked on the way back. Answers name
// fields, never values.
func Payload(fields map[string]string, o PayloadOptions) (*ecml.Payload, error) {
	var unknown, clear, pans []string
	for name, v := range fields {
		switch {
		case !isFlatName(name):
			unknown = append(unknown, PublicName(name))
		case v == "":
		case SensitiveFlat(name):
			if !o.ClearSensitive {
				clear = append(clear, name)
			}
		case ecml.ContainsPAN(v):
			pans = append(pans, name)
		}
	}
	switch {
	case len(clear) > 0:
		return nil, ProblemClearSensitive.WithDetail(sortedList(clear))
	case len(unknown) > 0:
		return nil, ProblemInvalidFields.WithDetail("unknown ECML field names: " + sortedList(unknown))
	case len(pans) > 0:
		return nil, ProblemCardNumberInField.WithDetail(sortedList(pans) +
			": break the digit run (e.g. with a separator) or shorten it; a card goes only in the card fields")
	}
	v := url.Values{}
	for k, x := range fields {
		v.Set(k, x)
	}
	payload, err := ecml.FromForm(v)
	if err != nil {
		// The error lists field names and problems, never values.
		return nil, ProblemInvalidFields.WithDetail(err.Error())
	}
	if payload.Ecom == nil {
		payload.Ecom = &ecml.Ecom{}
	}
	if payload.Ecom.SchemaVersion == "" {
		payload.Ecom.SchemaVersion = ecml.SchemaVersion
	}
	return payload, nil
}

// CheckRequired refuses a request that lacks what its service requires
// (ProblemMissingFields listing the fields), as the service itself would
// once it arrived (for the card services, card.Missing: one declaration
// for the provider's SDK and both callers). encryptedCard says that the
// card is to come as encrypted.card (the hub's facade outside its
// development mode): the detail then asks for it instead of card fields.
func CheckRequired(service string, p *ecml.Payload, encryptedCard bool) error {
	missing := card.Missing(service, p)
	if len(missing) == 0 {
		return nil
	}
	if encryptedCard {
		out := missing[:0:0]
		for _, m := range missing {
			if !SensitiveFlat(m) {
				out = append(out, m)
			} else if !slices.Contains(out, "encrypted.card") {
				out = append(out, "encrypted.card")
			}
		}
		missing = out
	}
	return ProblemMissingFields.WithDetail(service + " requires " + strings.Join(missing, ", "))
}

func sortedList(s []string) string {
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// isFlatName reports whether name is an ECML flat field name.
func isFlatName(name string) bool {
	_, ok := ecml.FlatNamePath(name)
	return ok
}

// sensitivePaths are the paths KECIS §8.1 requires encrypted (elements)
// and the sensitive values inside them: ecml's one list.
var sensitivePaths = ecml.SensitivePaths()

// SensitiveFlat reports whether a flat field lies at or inside a path of
// the must-encrypt list (KECIS §8.1): the card (number, expiry, holder…),
// the loyalty card, the password, track data, the birth date.
func SensitiveFlat(name string) bool {
	p, ok := ecml.FlatNamePath(name)
	if !ok {
		return false
	}
	for _, s := range sensitivePaths {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// PublicFields returns a payload's flat fields with every sensitive value
// dropped and any card-number-like run masked: what the hub's facade
// answers a merchant (a provider's answer is not the merchant's to see in
// clear). The order number a merchant sent comes back unchanged: [Payload]
// refused it if it read as a card number.
func PublicFields(p *ecml.Payload) map[string]string {
	out := map[string]string{}
	for k, v := range p.Form() {
		if len(v) == 0 || SensitiveFlat(k) {
			continue
		}
		out[k] = ecml.RedactPANs(v[0])
	}
	return out
}
