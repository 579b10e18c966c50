package callapi

import (
	"net/url"
	"slices"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
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
// once it arrived (Missing: one declaration for the provider's SDK and
// both callers), and, of a refund, the amount: the hub's facade and the
// sidecar's caller are a merchant's, and a merchant has no verification
// approval, the one approval a refund naming no amount refunds whole
// (KECIS §12.4, §15.2). encryptedCard says that the
// card is to come as encrypted.card (the hub's facade outside its
// development mode): the detail then asks for it instead of card fields.
func CheckRequired(service string, p *ecml.Payload, encryptedCard bool) error {
	missing := missing(service, p, true)
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

// The card services (KECIS §15.2).
var (
	cardApprove             = saml.ServiceURI("card", "approve")
	cardApproveVerification = saml.ServiceURI("card", "approve-verification")
	cardCancel              = saml.ServiceURI("card", "cancel")
	cardRefund              = saml.ServiceURI("card", "refund")
	cardInquire             = saml.ServiceURI("card", "inquire")
)

// Missing lists, as ECML flat field names (RFC 4112 §2.1) — or, for an
// extension element that has none, its path —, what a request of a card
// service lacks of what the service requires (KECIS §15.2; the mapping in
// connectors/card's package comment): approve the card (number and
// expiry; in clear or as its encrypted stand-in) and the amount with its
// currency; approve-verification the order, the card and kx:AmountAuth
// with its session, ceiling, currency and challenge (in clear or
// encrypted), and no Transaction amount, which it must not carry (the
// card SDK refuses one); cancel, refund and inquire the approval or the
// order ("Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID"); a
// refund that names an amount or a currency, both. A refund naming
// neither refunds a verification approval whole (§15.2), which only its
// provider can tell from any other: the provider refuses it for any other
// (CheckRequired, the callers' check, asks a merchant for the amount
// before). Nil when nothing is missing or service is no card service. The
// card SDK's services refuse such a request (Requester/InvalidPayload
// naming them); the hub's facade and the sidecar's caller refuse it
// before it travels (CheckRequired, KECIS §12.4). Declared here, in the
// leaf both sides link, so that the hub need not link the SDK.
func Missing(service string, p *ecml.Payload) []string { return missing(service, p, false) }

// missing is Missing; caller adds what a merchant's call needs besides
// (the amount of a refund).
func missing(service string, p *ecml.Payload, caller bool) []string {
	e := &ecml.Ecom{}
	if p != nil && p.Ecom != nil {
		e = p.Ecom
	}
	t := e.Transaction
	if t == nil {
		t = &ecml.Transaction{}
	}
	var out []string
	money := func() {
		if t.Amount == "" {
			out = append(out, "Ecom_Transaction_Amount")
		}
		if t.Currency == "" {
			out = append(out, "Ecom_Transaction_CurrencyCode")
		}
	}
	ref := func() {
		if e.ConsumerOrderID == "" && (t.Code == nil || t.Code.Approval == "") {
			out = append(out, "Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID")
		}
	}
	card := func() {
		if pay := e.Payment; pay == nil || (pay.Card == nil && pay.EncryptedCard == nil) {
			out = append(out, "Ecom_Payment_Card_Number", "Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year")
		}
	}
	switch service {
	case cardApprove:
		card()
		money()
	case cardApproveVerification:
		if e.ConsumerOrderID == "" {
			out = append(out, "Ecom_ConsumerOrderID")
		}
		card()
		aa := &ecml.AmountAuth{}
		if p != nil && p.AmountAuth != nil {
			aa = p.AmountAuth
		}
		for _, f := range []struct{ name, value string }{{"kx:AmountAuth/@SessionID", aa.SessionID},
			{"kx:AmountAuth/@Ceiling", aa.Ceiling}, {"kx:AmountAuth/@Currency", aa.Currency}} {
			if f.value == "" {
				out = append(out, f.name)
			}
		}
		if aa.Challenge == "" && aa.EncryptedChallenge == nil {
			out = append(out, "kx:AmountAuth/kx:Challenge")
		}
	case cardRefund:
		ref()
		if caller || t.Amount != "" || t.Currency != "" {
			money()
		}
	case cardCancel, cardInquire:
		ref()
	}
	return out
}
