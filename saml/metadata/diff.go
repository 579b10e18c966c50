package metadata

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Op says how a Change changes its subject.
type Op byte

// Ops, as the rendered diff writes them.
const (
	Added   Op = '+'
	Removed Op = '-'
	Changed Op = '~'
)

// Change is one difference between two versions of a participant's
// descriptor.
type Change struct {
	Op Op
	// Text is the human-readable subject and values, without the Op:
	// "role issuer", "urn:kecis:service:card:approve BINs 404143 → 404143
	// 411111-411199". It names keys by SHA-256 fingerprint, never more.
	Text string
	// Trust: the change alters what the participant is trusted with (its
	// roles, offered services and their terms) and needs an operator's
	// approval (KECIS §13.6). Everything not known to be self-service is a
	// trust change.
	Trust bool
}

// String renders the change as one diff line: "+ role issuer".
func (c Change) String() string { return string(c.Op) + " " + c.Text }

// Diff is what changed between two versions of a participant's descriptor
// (Compare), each change classified as self-service or trust (KECIS
// §13.6).
type Diff struct {
	Changes []Change
	// AddedRoles and AddedServices are the roles and service URIs the new
	// version has and the old one did not (the registration gate's
	// conformance requirement applies to them).
	AddedRoles    []Role
	AddedServices []string
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool { return len(d.Changes) == 0 }

// TrustChange reports whether any change needs an operator's approval.
func (d *Diff) TrustChange() bool {
	return slices.ContainsFunc(d.Changes, func(c Change) bool { return c.Trust })
}

// Trust returns the trust changes.
func (d *Diff) Trust() []Change { return d.filter(true) }

// SelfService returns the changes a participant may make on its own.
func (d *Diff) SelfService() []Change { return d.filter(false) }

func (d *Diff) filter(trust bool) []Change {
	var out []Change
	for _, c := range d.Changes {
		if c.Trust == trust {
			out = append(out, c)
		}
	}
	return out
}

// Lines renders every change, trust changes first.
func (d *Diff) Lines() []string {
	out := make([]string, len(d.Changes))
	for i, c := range d.Changes {
		out[i] = c.String()
	}
	return out
}

// String renders the diff, one change a line.
func (d *Diff) String() string {
	if d.Empty() {
		return ""
	}
	return strings.Join(d.Lines(), "\n") + "\n"
}

// Compare returns what changed from old to new (KECIS §13.6). Trust
// changes — the entityID, roles, offered services and, per service, its
// BIN ranges, bank codes, currency limits, callers and caller entities —
// come first, then the self-service ones: keys added or retired (a
// rollover), endpoints added, moved or removed, the display name, the
// organization and the contact persons. The document attributes the hub
// replaces when it publishes (ID, validUntil, cacheDuration) are ignored.
// Anything else that differs is reported as a trust change ("~ other
// metadata …"), so that a field this function does not know yet is never
// waved through. Order does not matter where the descriptor's meaning does
// not depend on it (roles, services, keys, BIN ranges, bank codes,
// limits, callers); it does for endpoints of equal priority, which are
// tried in document order, so a reordering is reported.
func Compare(old, new *EntityDescriptor) *Diff {
	d := &Diff{}
	add := func(op Op, trust bool, format string, args ...any) {
		d.Changes = append(d.Changes, Change{Op: op, Text: fmt.Sprintf(format, args...), Trust: trust})
	}

	// Trust changes.
	if old.EntityID != new.EntityID {
		add(Changed, true, "entity id %s → %s", old.EntityID, new.EntityID)
	}
	for _, r := range setMinus(new.Roles, old.Roles) {
		add(Added, true, "role %s", r)
		d.AddedRoles = append(d.AddedRoles, r)
	}
	for _, r := range setMinus(old.Roles, new.Roles) {
		add(Removed, true, "role %s", r)
	}
	oldSvc, oldDup := servicesByURI(old.Services)
	newSvc, newDup := servicesByURI(new.Services)
	if oldDup || newDup {
		add(Changed, true, "services (a service is listed more than once)")
	}
	for i := range new.Services {
		s := &new.Services[i]
		if newSvc[s.Service] != s {
			continue // listed twice: reported above
		}
		o, ok := oldSvc[s.Service]
		if !ok {
			d.AddedServices = append(d.AddedServices, s.Service)
			add(Added, true, "service %s%s", s.Service, serviceTerms(s))
			continue
		}
		compareService(o, s, add)
	}
	for i := range old.Services {
		s := &old.Services[i]
		if _, ok := newSvc[s.Service]; !ok && oldSvc[s.Service] == s {
			add(Removed, true, "service %s", s.Service)
		}
	}

	// Fail closed: whatever differs outside the fields classified here.
	if !reflect.DeepEqual(residue(old), residue(new)) {
		add(Changed, true, "other metadata (a part of the descriptor this hub does not classify)")
	}

	// Self-service changes.
	if old.DisplayName != new.DisplayName {
		add(Changed, false, "display name %q → %q", old.DisplayName, new.DisplayName)
	}
	oldKeys, newKeys := keyLines(old), keyLines(new)
	for _, k := range setMinus(newKeys, oldKeys) {
		add(Added, false, "%s", k)
	}
	for _, k := range setMinus(oldKeys, newKeys) {
		add(Removed, false, "%s", k)
	}
	compareEndpoints(old.Endpoints, new.Endpoints, add)
	if !reflect.DeepEqual(old.Organization, new.Organization) {
		switch {
		case old.Organization == nil:
			add(Added, false, "organization %s", orgName(new))
		case new.Organization == nil:
			add(Removed, false, "organization %s", orgName(old))
		default:
			add(Changed, false, "organization %s → %s", orgName(old), orgName(new))
		}
	}
	oldContacts, newContacts := contactLines(old.ContactPersons), contactLines(new.ContactPersons)
	for _, c := range setMinus(newContacts, oldContacts) {
		add(Added, false, "contact %s", c)
	}
	for _, c := range setMinus(oldContacts, newContacts) {
		add(Removed, false, "contact %s", c)
	}
	if !slices.Equal(oldContacts, newContacts) && len(setMinus(newContacts, oldContacts))+len(setMinus(oldContacts, newContacts)) == 0 {
		add(Changed, false, "contact order")
	}

	return d
}

// residue is the descriptor without the fields Compare classifies, for the
// fail-closed comparison of everything else.
func residue(ed *EntityDescriptor) EntityDescriptor {
	r := *ed
	r.EntityID, r.ID, r.ValidUntil, r.CacheDuration, r.DisplayName = "", "", time.Time{}, 0, ""
	r.Roles, r.Keys, r.TLSKeys, r.Endpoints, r.Organization, r.ContactPersons = nil, nil, nil, nil, nil, nil
	r.Services = nil
	return r
}

// serviceResidue is an offered service without the fields compareService
// classifies.
func serviceResidue(s *OfferedService) OfferedService {
	r := *s
	r.Service, r.Limits, r.BINs, r.BankCodes, r.Callers, r.CallerEntities = "", nil, nil, nil, nil, nil
	return r
}

func servicesByURI(ss []OfferedService) (map[string]*OfferedService, bool) {
	m := make(map[string]*OfferedService, len(ss))
	dup := false
	for i := range ss {
		if _, ok := m[ss[i].Service]; ok {
			dup = true
			continue
		}
		m[ss[i].Service] = &ss[i]
	}
	return m, dup
}

// compareService reports the changed terms of one service, each on its own
// line: every one is a trust change.
func compareService(o, n *OfferedService, add func(Op, bool, string, ...any)) {
	term := func(what, was, is string) {
		if was != is {
			add(Changed, true, "%s %s %s → %s", n.Service, what, was, is)
		}
	}
	term("BINs", binsText(o.BINs), binsText(n.BINs))
	term("bank codes", listText(o.BankCodes, "(any)"), listText(n.BankCodes, "(any)"))
	term("limits", limitsText(o.Limits), limitsText(n.Limits))
	term("callers", listText(o.Callers, "(none)"), listText(n.Callers, "(none)"))
	term("caller entities", listText(o.CallerEntities, "(any)"), listText(n.CallerEntities, "(any)"))
	if !reflect.DeepEqual(serviceResidue(o), serviceResidue(n)) {
		add(Changed, true, "%s other terms", n.Service)
	}
}

// serviceTerms renders an added service's terms: " BINs …; limits …".
func serviceTerms(s *OfferedService) string {
	var parts []string
	if len(s.BINs) > 0 {
		parts = append(parts, "BINs "+binsText(s.BINs))
	}
	if len(s.BankCodes) > 0 {
		parts = append(parts, "bank codes "+listText(s.BankCodes, ""))
	}
	if len(s.Limits) > 0 {
		parts = append(parts, "limits "+limitsText(s.Limits))
	}
	parts = append(parts, "callers "+listText(s.Callers, "(none)"))
	if len(s.CallerEntities) > 0 {
		parts = append(parts, "caller entities "+listText(s.CallerEntities, ""))
	}
	return " " + strings.Join(parts, "; ")
}

// binsText is a BIN list in a canonical order ("(any)" when empty).
func binsText(l BINList) string {
	if len(l) == 0 {
		return "(any)"
	}
	s := make([]string, len(l))
	for i, r := range l {
		s[i] = r.String()
	}
	return listText(s, "")
}

// listText is a set rendered sorted and without duplicates.
func listText[T ~string](l []T, empty string) string {
	if len(l) == 0 {
		return empty
	}
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = string(v)
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

func limitsText(ls []Limit) string {
	if len(ls) == 0 {
		return "(any)"
	}
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.Currency + " " + amountText(l.MinMoney()) + "-" + amountText(l.MaxMoney())
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func amountText(m ecml.Money) string {
	if s, err := ecml.FormatAmount(m); err == nil {
		return s
	}
	return fmt.Sprintf("%d", m.Minor)
}

// keyLines names each key by its use and SHA-256 fingerprint, in a
// canonical order.
func keyLines(ed *EntityDescriptor) []string {
	var out []string
	line := func(use string, k KeyDescriptor) string {
		if k.Certificate == nil {
			return "key " + use + " (no certificate)"
		}
		return fmt.Sprintf("key %s sha256 %s until %s", use, saml.Fingerprint(k.Certificate), k.Certificate.NotAfter.UTC().Format(time.DateOnly))
	}
	for _, k := range ed.Keys {
		out = append(out, line(string(k.Use), k))
	}
	for _, k := range ed.TLSKeys {
		out = append(out, line("tls-"+string(k.Use), k))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func bindingText(b string) string {
	switch b {
	case saml.BindingSOAP:
		return "soap"
	case saml.BindingHTTPPOST:
		return "post"
	}
	return b
}

func endpointText(e Endpoint) string {
	return fmt.Sprintf("endpoint %s %s %s priority %d", e.Service, bindingText(e.Binding), e.Location, e.Priority)
}

// compareEndpoints reports endpoints added and removed; one removed and
// one added for the same service, binding and priority read as a move.
func compareEndpoints(old, new []Endpoint, add func(Op, bool, string, ...any)) {
	removed := slices.DeleteFunc(slices.Clone(old), func(e Endpoint) bool { return slices.Contains(new, e) })
	added := slices.DeleteFunc(slices.Clone(new), func(e Endpoint) bool { return slices.Contains(old, e) })
	slot := func(e Endpoint) string { return e.Service + "\x00" + e.Binding + "\x00" + fmt.Sprint(e.Priority) }
	count := func(es []Endpoint, s string) int {
		n := 0
		for _, e := range es {
			if slot(e) == s {
				n++
			}
		}
		return n
	}
	moved := map[string]bool{}
	for _, e := range removed {
		s := slot(e)
		if count(removed, s) == 1 && count(added, s) == 1 {
			moved[s] = true
			i := slices.IndexFunc(added, func(a Endpoint) bool { return slot(a) == s })
			add(Changed, false, "endpoint %s %s priority %d %s → %s", e.Service, bindingText(e.Binding), e.Priority, e.Location, added[i].Location)
		}
	}
	for _, e := range added {
		if !moved[slot(e)] {
			add(Added, false, "%s", endpointText(e))
		}
	}
	for _, e := range removed {
		if !moved[slot(e)] {
			add(Removed, false, "%s", endpointText(e))
		}
	}
	if len(added) == 0 && len(removed) == 0 && !slices.Equal(old, new) {
		add(Changed, false, "endpoint order")
	}
}

func orgName(ed *EntityDescriptor) string {
	o := ed.Organization
	if o != nil && len(o.OrganizationDisplayNames) > 0 {
		return fmt.Sprintf("%q", o.OrganizationDisplayNames[0].Value)
	}
	if o != nil && len(o.OrganizationNames) > 0 {
		return fmt.Sprintf("%q", o.OrganizationNames[0].Value)
	}
	return `""`
}

func contactLines(cs []ContactPerson) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		parts := []string{c.Type}
		for _, f := range []struct{ k, v string }{{"company", c.Company}, {"given name", c.GivenName}, {"surname", c.SurName}} {
			if f.v != "" {
				parts = append(parts, fmt.Sprintf("%s %q", f.k, f.v))
			}
		}
		for _, e := range c.EmailAddresses {
			parts = append(parts, "email "+e)
		}
		for _, t := range c.TelephoneNumbers {
			parts = append(parts, fmt.Sprintf("telephone %q", t))
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

// setMinus returns the elements of a that b does not hold, in a's order,
// without duplicates.
func setMinus[T comparable](a, b []T) []T {
	var out []T
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
