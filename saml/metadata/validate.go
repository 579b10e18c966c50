package metadata

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	crewjam "github.com/crewjam/saml"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Bounds on what a descriptor may hold.
const (
	maxEntityIDLen  = 1024 // SAML metadata §2.3.2
	maxTextLen      = 1024
	minRSABits      = 2048
	maxPriority     = 1 << 16
	maxDisplayRunes = 256
)

// contactTypes are the values of md:ContactPerson/@contactType.
var contactTypes = []string{"technical", "support", "administrative", "billing", "other"}

// Validate checks everything that ToElement writes and FromElement reads:
// an absolute entityID; roles; at least one signing key, every signing key
// one the KECIS signature profile allows (RSA of at least 2048 bits or
// ECDSA P-256) and every encryption key RSA of at least 2048 bits or ECDSA
// P-256; endpoints with a service URI (or "*"), a binding URI and an
// http(s) URL; offered services with valid limits, BINs and bank codes;
// no duplicates; and strings without control characters (they would not
// survive an XML round trip).
func (ed *EntityDescriptor) Validate() error {
	if err := checkEntityID(ed.EntityID); err != nil {
		return err
	}
	if ed.ID != "" && !isNCName(ed.ID) {
		return fmt.Errorf("ID %q is not an xs:ID", ed.ID)
	}
	if ed.CacheDuration < 0 {
		return errors.New("negative cacheDuration")
	}
	if ed.DisplayName != "" {
		if err := checkString("DisplayName", ed.DisplayName); err != nil {
			return err
		}
		if utf8.RuneCountInString(ed.DisplayName) > maxDisplayRunes {
			return fmt.Errorf("DisplayName longer than %d characters", maxDisplayRunes)
		}
	}
	if err := checkRoles(ed.Roles); err != nil {
		return err
	}
	if err := checkKeys(ed.Keys, ed.TLSKeys); err != nil {
		return err
	}
	seenEP := map[Endpoint]bool{}
	for _, e := range ed.Endpoints {
		if err := checkEndpoint(e); err != nil {
			return err
		}
		k := e
		k.Priority = 0
		if seenEP[k] {
			return fmt.Errorf("endpoint %s %s %s published twice", e.Service, e.Binding, e.Location)
		}
		seenEP[k] = true
	}
	seenSvc := map[string]bool{}
	for i := range ed.Services {
		s := &ed.Services[i]
		if err := checkService(s); err != nil {
			return err
		}
		if seenSvc[s.Service] {
			return fmt.Errorf("service %s offered twice", s.Service)
		}
		seenSvc[s.Service] = true
	}
	if ed.Organization != nil {
		if err := checkOrganization(ed.Organization); err != nil {
			return err
		}
	}
	for _, c := range ed.ContactPersons {
		if err := checkContact(c); err != nil {
			return err
		}
	}
	return nil
}

// CheckEntityID reports why id is not a valid entityID (an absolute URI
// of at most 1024 characters), or nil: for the tables that name
// participants outside the metadata, such as a sidecar's merchants.
func CheckEntityID(id string) error { return checkEntityID(id) }

func checkEntityID(id string) error {
	if id == "" {
		return errors.New("entityID is empty")
	}
	if len(id) > maxEntityIDLen {
		return fmt.Errorf("entityID longer than %d characters", maxEntityIDLen)
	}
	if err := checkString("entityID", id); err != nil {
		return err
	}
	if !absoluteURI(id) {
		return fmt.Errorf("entityID %q is not an absolute URI", id)
	}
	return nil
}

func absoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && rfc3986(s, u)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil && u.Fragment == "" && rfc3986(s, u)
}

// rfc3986 reports whether s, which parsed as u, is written in the
// characters of an IRI (RFC 3987 §2.2): ASCII letters and digits, the
// unreserved "-._~", the reserved ":/?#[]@!$&'()*+,;=", percent-encodings
// "%HH" and non-ASCII characters (an entityID may name a participant in
// Hangul); "[" and "]" only around an IP-literal host (RFC 3986 §3.2.2),
// "#" at most once. net/url accepts more — "<", a "]" in a path, two
// fragments, a stray "%" — and the schema processors another
// implementation validates metadata with (libxml2 and Xerces, xs:anyURI of
// docs/spec/schema) refuse some of it, and with it the whole signed
// aggregate (KECIS §9.12, §11.2).
func rfc3986(s string, u *url.URL) bool {
	hashes, brackets := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~:/?@!$&'()*+,;=", c) >= 0:
		case c >= 0x80:
			if !utf8.ValidString(s) {
				return false
			}
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		case c == '#':
			hashes++
		case c == '[' || c == ']':
			brackets++
		default:
			return false
		}
	}
	return hashes <= 1 && brackets == strings.Count(u.Host, "[")+strings.Count(u.Host, "]")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkString refuses what cannot survive an XML round trip unchanged:
// invalid UTF-8 and control characters (tab, newline and carriage return
// are normalised in attribute values and line ends).
func checkString(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	if len(s) > maxTextLen {
		return fmt.Errorf("%s longer than %d bytes", what, maxTextLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffe || r == 0xffff || (r >= 0xd800 && r <= 0xdfff) {
			return fmt.Errorf("%s contains the control character %U", what, r)
		}
	}
	return nil
}

func checkRoles(roles []Role) error {
	if len(roles) == 0 {
		return errors.New("no role")
	}
	seen := map[Role]bool{}
	for _, r := range roles {
		if !knownRole(r) {
			return fmt.Errorf("unknown role %q (known: %s)", r, joinRoles(KnownRoles))
		}
		if seen[r] {
			return fmt.Errorf("role %q listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " ")
}

func checkKeys(keys, tls []KeyDescriptor) error {
	signing := 0
	type seenKey struct {
		use KeyUse
		fp  string
	}
	seen := map[seenKey]bool{}
	for _, k := range keys {
		if err := checkKey(k, false); err != nil {
			return err
		}
		if k.Use == UseSigning {
			signing++
		}
		sk := seenKey{k.Use, saml.Fingerprint(k.Certificate)}
		if seen[sk] {
			return fmt.Errorf("%s certificate %s published twice", k.Use, sk.fp)
		}
		seen[sk] = true
	}
	if signing == 0 {
		return errors.New("no signing key")
	}
	for _, k := range tls {
		if err := checkKey(k, true); err != nil {
			return err
		}
		sk := seenKey{"tls-" + k.Use, saml.Fingerprint(k.Certificate)}
		if seen[sk] {
			return fmt.Errorf("TLS %s certificate %s published twice", k.Use, sk.fp)
		}
		seen[sk] = true
	}
	return nil
}

func checkKey(k KeyDescriptor, tls bool) error {
	if k.Certificate == nil {
		return fmt.Errorf("%s key without a certificate", k.Use)
	}
	switch {
	case !tls && (k.Use == UseSigning || k.Use == UseEncryption):
	case tls && (k.Use == UseTLSClient || k.Use == UseTLSServer):
	case tls:
		return fmt.Errorf("TLS key use %q (client or server)", k.Use)
	default:
		return fmt.Errorf("key use %q (signing or encryption)", k.Use)
	}
	if tls {
		return nil
	}
	switch pub := k.Certificate.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < minRSABits {
			return fmt.Errorf("%s key %s: RSA of %d bits; at least %d", k.Use, saml.Fingerprint(k.Certificate), n, minRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return fmt.Errorf("%s key %s: ECDSA on %s; P-256 only", k.Use, saml.Fingerprint(k.Certificate), pub.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("%s key %s: %T keys are not allowed", k.Use, saml.Fingerprint(k.Certificate), k.Certificate.PublicKey)
}

func checkServiceURI(s string) error {
	if _, _, ok := saml.SplitService(s); !ok {
		return fmt.Errorf("service %q is not a KECIS service URI (%s<group>:<operation>)", s, saml.ServicePrefix)
	}
	return checkString("service", s)
}

func checkEndpoint(e Endpoint) error {
	if e.Service != AnyService {
		if err := checkServiceURI(e.Service); err != nil {
			return fmt.Errorf("endpoint: %w", err)
		}
	}
	if err := checkString("Binding", e.Binding); err != nil || !absoluteURI(e.Binding) {
		return fmt.Errorf("endpoint binding %q is not an absolute URI", e.Binding)
	}
	if err := checkString("Location", e.Location); err != nil || !httpURL(e.Location) {
		return fmt.Errorf("endpoint location %q is not an absolute http(s) URL", e.Location)
	}
	if e.Priority < 0 || e.Priority >= maxPriority {
		return fmt.Errorf("endpoint priority %d outside 0..%d", e.Priority, maxPriority-1)
	}
	return nil
}

func checkService(s *OfferedService) error {
	if err := checkServiceURI(s.Service); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, l := range s.Limits {
		if _, ok := ecml.MinorUnits(l.Currency); !ok {
			return fmt.Errorf("service %s: currency %q is not an ISO 4217 code", s.Service, l.Currency)
		}
		if l.Min < 0 || l.Max < l.Min {
			return fmt.Errorf("service %s: %s limit needs 0 <= Min <= Max", s.Service, l.Currency)
		}
		if seen[l.Currency] {
			return fmt.Errorf("service %s: two %s limits", s.Service, l.Currency)
		}
		seen[l.Currency] = true
	}
	if err := s.BINs.validate(); err != nil {
		return fmt.Errorf("service %s: %w", s.Service, err)
	}
	banks := map[string]bool{}
	for _, b := range s.BankCodes {
		if len(b) != 3 || !ecml.AllDigits(b) {
			return fmt.Errorf("service %s: bank code %q is not 3 digits", s.Service, b)
		}
		if banks[b] {
			return fmt.Errorf("service %s: bank code %s listed twice", s.Service, b)
		}
		banks[b] = true
	}
	callers := map[Role]bool{}
	for _, r := range s.Callers {
		if !knownRole(r) {
			return fmt.Errorf("service %s: caller role %q is not a KECIS role", s.Service, r)
		}
		if callers[r] {
			return fmt.Errorf("service %s: caller role %s listed twice", s.Service, r)
		}
		callers[r] = true
	}
	if len(s.CallerEntities) > 0 && len(s.Callers) == 0 {
		return fmt.Errorf("service %s: CallerEntities needs Callers (the roles they call in)", s.Service)
	}
	ents := map[string]bool{}
	for _, e := range s.CallerEntities {
		if err := checkString("CallerEntities", e); err != nil || !absoluteURI(e) {
			return fmt.Errorf("service %s: caller entity %q is not an absolute URI", s.Service, e)
		}
		if ents[e] {
			return fmt.Errorf("service %s: caller entity %s listed twice", s.Service, e)
		}
		ents[e] = true
	}
	return nil
}

func checkOrganization(o *crewjam.Organization) error {
	if len(o.OrganizationNames) == 0 || len(o.OrganizationDisplayNames) == 0 || len(o.OrganizationURLs) == 0 {
		return errors.New("organization needs at least one name, display name and URL")
	}
	for _, group := range [][]crewjam.LocalizedName{o.OrganizationNames, o.OrganizationDisplayNames} {
		for _, n := range group {
			if err := checkLocalized(n.Lang, n.Value); err != nil {
				return err
			}
		}
	}
	for _, u := range o.OrganizationURLs {
		if err := checkLocalized(u.Lang, u.Value); err != nil {
			return err
		}
		if !absoluteURI(u.Value) {
			return fmt.Errorf("organization URL %q is not an absolute URI", u.Value)
		}
	}
	return nil
}

func checkLocalized(lang, value string) error {
	if lang == "" || !isLanguageTag(lang) {
		return fmt.Errorf("organization: xml:lang %q is not a language tag", lang)
	}
	if strings.TrimSpace(value) == "" {
		return errors.New("organization: empty name")
	}
	return checkString("organization name", value)
}

// isLanguageTag checks the xs:language pattern [a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*.
func isLanguageTag(s string) bool {
	for i, part := range strings.Split(s, "-") {
		if part == "" || len(part) > 8 {
			return false
		}
		for _, c := range part {
			alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !alpha && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

func checkContact(c ContactPerson) error {
	if !slices.Contains(contactTypes, c.Type) {
		return fmt.Errorf("contact type %q (one of %s)", c.Type, strings.Join(contactTypes, ", "))
	}
	for _, f := range []struct{ what, v string }{{"Company", c.Company}, {"GivenName", c.GivenName}, {"SurName", c.SurName}} {
		if err := checkString(f.what, f.v); err != nil {
			return err
		}
	}
	for _, v := range slices.Concat(c.EmailAddresses, c.TelephoneNumbers) {
		if v == "" {
			return errors.New("contact: empty e-mail address or telephone number")
		}
		if err := checkString("contact", v); err != nil {
			return err
		}
	}
	return nil
}

// isNCName checks an xs:ID / xs:NCName (ASCII subset plus any non-ASCII
// letter, which is what KECIS IDs and real-world metadata use).
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r > 0x7f
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '-' && r != '.' {
			return false
		}
	}
	return true
}
