package ecml

import (
	"maps"
	"strings"
)

// rfcCardTypes are the card type codes of RFC 4112 note 11 (the IANA
// "ECML card types" registry of §5.3 as first populated).
var rfcCardTypes = map[string]string{
	"AMER": "American Express",
	"BANK": "Bankcard (Australia)",
	"DC":   "Diners Club",
	"DINE": "Diners Club",
	"DISC": "Discover",
	"JCB":  "JCB",
	"MAST": "Mastercard",
	"NIKO": "Nikos",
	"SAIS": "Saison",
	"UC":   "UC",
	"UCAR": "UCard",
	"VISA": "Visa",
}

// kecisCardTypes is the KECIS registry of card type extensions: Korean
// issuers and the networks they carry, which the IANA registry of RFC 4112
// §5.3 lacks (its registrations need expert approval and normally an ISO
// IIN). Codes follow the rule of note 11 (the first up to four letters of
// the name, upper case) and must not collide with rfcCardTypes. A new code
// is added here, with a test, by a change reviewed like any wire-profile
// change; the KECIS metadata of an issuer names the codes it accepts.
var kecisCardTypes = map[string]string{
	"BC":   "BC Card",
	"KB":   "KB Kookmin Card",
	"SHIN": "Shinhan Card",
	"SAMS": "Samsung Card",
	"HYUN": "Hyundai Card",
	"LOTT": "Lotte Card",
	"NH":   "NH NongHyup Card",
	"HANA": "Hana Card",
	"WOOR": "Woori Card",
	"KAKA": "KakaoBank",
	"IBK":  "IBK Industrial Bank of Korea",
	"CITI": "Citibank Korea",
	"SUHY": "Suhyup Bank",
	"JEJU": "Jeju Bank",
	"KWAN": "Kwangju Bank",
	"JEON": "Jeonbuk Bank",
	"UPI":  "UnionPay International",
	"UNIO": "UnionPay",
}

// NormalizeCardType returns the registered code for a Card/@Type value
// (RFC 4112 note 11): the value is case-insensitive and only its first up
// to four characters count, so "Visa" and "MasterCard" give "VISA" and
// "MAST". ok is false when the code is neither in note 11 nor a KECIS
// extension ([RegisteredCardTypes]).
func NormalizeCardType(s string) (code string, ok bool) {
	if len(s) > 4 {
		s = s[:4]
	}
	code = strings.ToUpper(s)
	if _, ok := rfcCardTypes[code]; ok {
		return code, true
	}
	if _, ok := kecisCardTypes[code]; ok {
		return code, true
	}
	return "", false
}

// RegisteredCardTypes returns a fresh map of every accepted card type code
// to its description: those of RFC 4112 note 11 and the KECIS extensions.
func RegisteredCardTypes() map[string]string {
	m := maps.Clone(rfcCardTypes)
	maps.Copy(m, kecisCardTypes)
	return m
}
