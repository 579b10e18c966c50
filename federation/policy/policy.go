// Package policy is the hub's payment policy (KECIS §12.9): a small,
// declarative rule set, written in the hub's YAML configuration, that the
// router evaluates on every request it relays, after verification and
// authorization and before the idempotency claim. A request a rule refuses
// is answered Responder / PolicyViolation with the rule's public message
// and is not forwarded; the decision — every rule, whether it matched,
// whether it was satisfied and why — is an audit record (Decision).
//
// A rule is one of three kinds:
//
//   - require-escrow: a matching request must use a service of the escrow
//     class (urn:kecis:service:escrow:open) — the Korean rule of 2006:
//     cash payments of 100,000 KRW or more for shipped goods;
//   - require-authentication: a matching request must embed a verified
//     kecis:AuthenticationResult (KECIS §3) bound to it — its amount,
//     currency, merchant and order — from an active participant of an
//     accepted role (issuer or pg), of enough factors or an accepted
//     method. An authentication value (AAV) alone does not count: only
//     its issuer can check it, the hub cannot;
//   - max-amount: a cap on a single payment, per merchant and/or service
//     class.
//
// Each rule has conditions (services or service classes, the caller's
// roles — merchant by default —, merchants, amount thresholds per
// currency, shipped goods), a public message, and the source and year it
// encodes. The presets kr-2006 (the default), kr-2010 and none hold the
// rules the federation ships; the configuration's own rules replace a
// preset rule of the same id or are appended. docs/policy.md is the user's
// guide.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Kind is what a rule requires.
type Kind string

// The rule kinds (KECIS §12.9).
const (
	KindRequireEscrow         Kind = "require-escrow"
	KindRequireAuthentication Kind = "require-authentication"
	KindMaxAmount             Kind = "max-amount"
)

var kinds = []Kind{KindRequireEscrow, KindRequireAuthentication, KindMaxAmount}

// The service URIs the default classes name (KECIS §15.2, §15.6, §15.8).
const (
	ServiceCardApprove     = saml.ServicePrefix + "card:approve"
	ServiceTransferCollect = saml.ServicePrefix + "transfer:collect"
	ServiceEscrowOpen      = saml.ServicePrefix + "escrow:open"
)

// The classes the presets name. ClassEscrow is the class whose services
// satisfy require-escrow.
const (
	ClassCard   = "card"
	ClassCash   = "cash"
	ClassEscrow = "escrow"
)

// DefaultClasses are the service classes before the configuration's
// classes replace some of them: card = card:approve; cash =
// transfer:collect and escrow:open; escrow = escrow:open.
func DefaultClasses() map[string][]string {
	return map[string][]string{
		ClassCard:   {ServiceCardApprove},
		ClassCash:   {ServiceTransferCollect, ServiceEscrowOpen},
		ClassEscrow: {ServiceEscrowOpen},
	}
}

// The presets (Presets lists them).
const (
	PresetKR2006 = "kr-2006"
	PresetKR2010 = "kr-2010"
	PresetNone   = "none"
	// DefaultPreset is the preset of a configuration that names none.
	DefaultPreset = PresetKR2006
)

// Config is the policy section of the hub's configuration (policy: in its
// YAML). The zero value is the default preset.
type Config struct {
	// Preset names the federation's shipped rules: kr-2006 (default),
	// kr-2010 or none. Environment: KECIS_POLICY_PRESET.
	Preset string `yaml:"preset" env:"PRESET"`
	// Rules are the operator's own: one whose id is a preset rule's
	// replaces it where it stands, the others are appended in order.
	Rules []Rule `yaml:"rules"`
	// Classes replace or add service classes by name (each a list of
	// service URIs); the classes not named keep their defaults.
	Classes map[string][]string `yaml:"classes"`
}

// Rule is one rule as written in the configuration.
type Rule struct {
	// ID names the rule in the decision, the audit record and the metric
	// (letters, digits, '.', '_', '-'; at most 64).
	ID   string `yaml:"id"`
	Kind Kind   `yaml:"kind"`
	// When is what a request must be for the rule to apply.
	When Conditions `yaml:"when"`
	// Message is the public message of a refusal (the status's
	// StatusMessage): what the merchant is told. Required.
	Message string `yaml:"message"`
	// Source cites what the rule encodes (a law, a regulator's rule, a
	// contract); Year is the year it took effect. Both are in every
	// decision, for the reader of the audit.
	Source string `yaml:"source"`
	Year   int    `yaml:"year"`

	// require-authentication: MinFactors is the least number of factors
	// the result's method used (kecis:Method/@Factors; a result that does
	// not say counts as one); Methods the accepted method URIs (empty:
	// any). At least one of them must be given. IssuerRoles are the roles
	// a result's issuer must have one of (default issuer, pg).
	MinFactors  int      `yaml:"min_factors"`
	Methods     []string `yaml:"methods"`
	IssuerRoles []string `yaml:"issuer_roles"`

	// max-amount: the cap of a single payment per currency (the amount
	// as Transaction/@Amount writes it: "5000000" KRW, "2500.00" USD); a
	// payment in a currency not listed is not capped by the rule.
	Max Amounts `yaml:"max"`
}

// Conditions select the requests a rule applies to; every condition given
// must hold.
type Conditions struct {
	// Services and Classes: the request's service is one of Services or
	// in one of Classes (both empty: any service).
	Services []string `yaml:"services"`
	Classes  []string `yaml:"classes"`
	// CallerRoles: the caller (metadata.Caller(Issuer, OnBehalfOf): the
	// merchant of a facade request) has one of these roles. Default
	// [merchant].
	CallerRoles []string `yaml:"caller_roles"`
	// Merchants: the caller is one of these entityIDs (empty: any).
	Merchants []string `yaml:"merchants"`
	// MinAmount: the request's amount (Transaction/@Amount, @Currency)
	// is at least the threshold of its currency; a request without an
	// amount, or in a currency not listed, does not match. Empty: any
	// amount, or none.
	MinAmount Amounts `yaml:"min_amount"`
	// Shipped: true matches only shipped goods (Ecom/ShipTo present),
	// false only goods that are not; absent matches both.
	Shipped *bool `yaml:"shipped"`
}

// Amounts are amounts by currency, in minor units (ecml.Money). In YAML a
// mapping from ISO 4217 code to the amount as Transaction/@Amount writes
// it, a string or an integer: {KRW: 100000, USD: "100.00"}.
type Amounts map[string]ecml.Money

// UnmarshalYAML reads the mapping, checking every currency and amount.
func (a *Amounts) UnmarshalYAML(unmarshal func(any) error) error {
	var raw map[string]any
	if err := unmarshal(&raw); err != nil {
		return errors.New("amounts must be a mapping from currency to amount, e.g. {KRW: 100000}")
	}
	out := Amounts{}
	for cur, v := range raw {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case uint64:
			s = strconv.FormatUint(v, 10)
		case int64:
			s = strconv.FormatInt(v, 10)
		case int:
			s = strconv.Itoa(v)
		default:
			return fmt.Errorf("amount of %s: write it as Transaction/@Amount does (a string or a whole number), not %T", cur, v)
		}
		m, err := ecml.ParseAmount(s, cur)
		if err != nil {
			return fmt.Errorf("amount %q of %s: %w", s, cur, err)
		}
		out[cur] = m
	}
	*a = out
	return nil
}

// MarshalYAML writes the amounts back in their wire form.
func (a Amounts) MarshalYAML() (any, error) {
	out := map[string]string{}
	for cur, m := range a {
		s, err := ecml.FormatAmount(m)
		if err != nil {
			return nil, err
		}
		out[cur] = s
	}
	return out, nil
}

// describe writes the amounts in a stable order ("100000 KRW, 100.00 USD").
func (a Amounts) describe() string {
	curs := make([]string, 0, len(a))
	for c := range a {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	parts := make([]string, len(curs))
	for i, c := range curs {
		parts[i] = a[c].String()
	}
	return strings.Join(parts, ", ")
}

// Presets are the names of the shipped rule sets.
var Presets = []string{PresetKR2006, PresetKR2010, PresetNone}

// Sources of the shipped rules.
const (
	SourceECCPA2006    = "Act on the Consumer Protection in Electronic Commerce (전자상거래 등에서의 소비자보호에 관한 법률), escrow rule in force 1 April 2006"
	SourceCardAuth2006 = "Korean card practice as the KECIS seed lecture notes give it (2006): online card purchases of 100,000 KRW or more " +
		"need the cardholder's authentication — the issuer's (ISP / 안심클릭) or the PG's amount authentication"
	SourceFSS2010 = "Korean FSS electronic financial supervision rule (전자금융감독규정, 2010) as the talk cites it: " +
		"a public-key certificate (공인인증서) for card or transfer payments of 300,000 KRW or more"
)

// Authentication method URIs the presets name (KECIS §3.1; the issuer's
// cardholder authentication, §15.7.2, and the PG's amount
// authentication, §15.3).
const (
	MethodClientCertificate = "urn:kecis:authn:tls-client-certificate"
)

func krw(n int64) Amounts { return Amounts{"KRW": {Minor: n, Currency: "KRW"}} }

func yes() *bool { t := true; return &t }

// preset returns the rules of a named preset (a fresh copy).
func preset(name string) ([]Rule, error) {
	escrow := Rule{ID: "kr-2006-escrow", Kind: KindRequireEscrow,
		When:    Conditions{Classes: []string{ClassCash}, MinAmount: krw(100_000), Shipped: yes()},
		Message: "a cash payment of 100,000 KRW or more for shipped goods must use escrow (urn:kecis:service:escrow:open)",
		Source:  SourceECCPA2006, Year: 2006}
	cardAuth := Rule{ID: "kr-2006-card-authentication", Kind: KindRequireAuthentication,
		When:       Conditions{Classes: []string{ClassCard}, MinAmount: krw(100_000)},
		MinFactors: 1,
		Message:    "a card purchase of 100,000 KRW or more needs the cardholder's authentication: the issuer's cardholder authentication or the PG's amount authentication",
		Source:     SourceCardAuth2006, Year: 2006}
	switch name {
	case PresetKR2006, "":
		return []Rule{escrow, cardAuth}, nil
	case PresetKR2010:
		cert := Rule{ID: "kr-2010-certificate", Kind: KindRequireAuthentication,
			When:    Conditions{Classes: []string{ClassCard, ClassCash}, MinAmount: krw(300_000)},
			Methods: []string{MethodClientCertificate},
			// A bank authenticates the buyer of an account transfer.
			IssuerRoles: []string{string(metadata.RoleIssuer), string(metadata.RolePG), string(metadata.RoleBank)},
			Message:     "a card or transfer payment of 300,000 KRW or more needs a certificate-class authentication (urn:kecis:authn:tls-client-certificate)",
			Source:      SourceFSS2010, Year: 2010}
		return []Rule{escrow, cardAuth, cert}, nil
	case PresetNone:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown preset %q: use %s", name, strings.Join(Presets, ", "))
}

// rule is a compiled rule.
type rule struct {
	Rule
	services    map[string]bool // from Services and Classes; nil: any
	callerRoles []metadata.Role
	merchants   map[string]bool
	issuerRoles []metadata.Role
	methods     map[string]bool
}

// Policy is a compiled rule set: safe for concurrent use, never changed.
type Policy struct {
	preset  string
	rules   []*rule
	classes map[string]map[string]bool
	escrow  map[string]bool // the escrow class's services
}

// Preset is the name of the preset the policy was built on.
func (p *Policy) Preset() string { return p.preset }

// RuleIDs lists the rules in evaluation order.
func (p *Policy) RuleIDs() []string {
	ids := make([]string, len(p.rules))
	for i, r := range p.rules {
		ids[i] = r.ID
	}
	return ids
}

var (
	ruleID    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	className = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// MaxMessage bounds a rule's public message (it becomes a StatusMessage).
const MaxMessage = 300

// Compile checks a configuration and builds its policy; the error lists
// every problem, each naming the rule (policy.rules[i], its id) and the
// field.
func Compile(c Config) (*Policy, error) {
	name := c.Preset
	if name == "" {
		name = DefaultPreset
	}
	var errs []error
	rules, err := preset(name)
	if err != nil {
		errs = append(errs, fmt.Errorf("policy.preset: %w", err))
	}
	p := &Policy{preset: name, classes: map[string]map[string]bool{}}
	classes := DefaultClasses()
	for k, v := range c.Classes {
		if !className.MatchString(k) {
			errs = append(errs, fmt.Errorf("policy.classes: class name %q: lower-case letters, digits and '-'", k))
			continue
		}
		for _, s := range v {
			if !strings.HasPrefix(s, "urn:") {
				errs = append(errs, fmt.Errorf("policy.classes.%s: %q is not a service URI (urn:kecis:service:…)", k, s))
			}
		}
		classes[k] = v
	}
	for k, v := range classes {
		p.classes[k] = set(v)
	}
	p.escrow = p.classes[ClassEscrow]
	// The operator's rules replace a preset rule of the same id in place,
	// the others are appended; where says where each rule was written.
	where := make([]string, len(rules))
	for i, r := range rules {
		where[i] = fmt.Sprintf("preset %s rule %q", name, r.ID)
	}
	seen := map[string]bool{}
	for i, r := range c.Rules {
		at := fmt.Sprintf("policy.rules[%d] (id %q)", i, r.ID)
		if r.ID != "" && seen[r.ID] {
			errs = append(errs, fmt.Errorf("%s: the id is used twice", at))
			continue
		}
		seen[r.ID] = true
		if j := slices.IndexFunc(rules, func(x Rule) bool { return x.ID == r.ID }); j >= 0 && r.ID != "" {
			rules[j], where[j] = r, at
		} else {
			rules, where = append(rules, r), append(where, at)
		}
	}
	for i, r := range rules {
		cr, rerrs := p.compileRule(r)
		for _, e := range rerrs {
			errs = append(errs, fmt.Errorf("%s: %w", where[i], e))
		}
		if cr != nil {
			p.rules = append(p.rules, cr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func set(v []string) map[string]bool {
	m := make(map[string]bool, len(v))
	for _, s := range v {
		m[s] = true
	}
	return m
}

func roles(field string, v []string, def []metadata.Role) ([]metadata.Role, error) {
	if len(v) == 0 {
		return def, nil
	}
	out := make([]metadata.Role, 0, len(v))
	for _, s := range v {
		if !slices.Contains(metadata.KnownRoles, metadata.Role(s)) {
			return nil, fmt.Errorf("%s: unknown role %q (use %v)", field, s, metadata.KnownRoles)
		}
		out = append(out, metadata.Role(s))
	}
	return out, nil
}

// compileRule checks one rule and compiles it.
func (p *Policy) compileRule(r Rule) (*rule, []error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !ruleID.MatchString(r.ID) {
		bad("id is required: 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if !slices.Contains(kinds, r.Kind) {
		if r.Kind == "" {
			bad("kind is required: %s", kindList())
		} else {
			bad("unknown kind %q: use %s", r.Kind, kindList())
		}
	}
	if strings.TrimSpace(r.Message) == "" {
		bad("message is required (the public message of a refusal)")
	} else if len([]rune(r.Message)) > MaxMessage {
		bad("message is longer than %d characters", MaxMessage)
	}
	if r.Year != 0 && (r.Year < 1900 || r.Year > 2200) {
		bad("year %d is not a year", r.Year)
	}
	cr := &rule{Rule: r, merchants: set(r.When.Merchants), methods: set(r.Methods)}
	if len(r.When.Services) > 0 || len(r.When.Classes) > 0 {
		cr.services = set(r.When.Services)
		for _, s := range r.When.Services {
			if !strings.HasPrefix(s, "urn:") {
				bad("when.services: %q is not a service URI (urn:kecis:service:…)", s)
			}
		}
		for _, c := range r.When.Classes {
			svcs, ok := p.classes[c]
			if !ok {
				bad("when.classes: unknown class %q (classes: %s)", c, strings.Join(p.classNames(), ", "))
			}
			for s := range svcs {
				cr.services[s] = true
			}
		}
	}
	var err error
	if cr.callerRoles, err = roles("when.caller_roles", r.When.CallerRoles, []metadata.Role{metadata.RoleMerchant}); err != nil {
		errs = append(errs, err)
	}
	for _, m := range r.When.Merchants {
		if m == "" {
			bad("when.merchants: an empty entityID")
		}
	}
	if r.Kind != KindRequireAuthentication {
		if r.MinFactors != 0 || len(r.Methods) > 0 || len(r.IssuerRoles) > 0 {
			bad("min_factors, methods and issuer_roles are for kind require-authentication")
		}
	}
	if r.Kind != KindMaxAmount && len(r.Max) > 0 {
		bad("max is for kind max-amount")
	}
	switch r.Kind {
	case KindRequireEscrow:
		if len(p.escrow) == 0 {
			bad("kind require-escrow needs the class %q to name the escrow services", ClassEscrow)
		}
	case KindRequireAuthentication:
		if r.MinFactors < 0 || r.MinFactors > 9 {
			bad("min_factors %d: 0 to 9", r.MinFactors)
		}
		if r.MinFactors == 0 && len(r.Methods) == 0 {
			bad("kind require-authentication needs min_factors or methods")
		}
		for _, m := range r.Methods {
			if !strings.HasPrefix(m, "urn:") {
				bad("methods: %q is not a method URI (urn:kecis:authn:…)", m)
			}
		}
		def := []metadata.Role{metadata.RoleIssuer, metadata.RolePG}
		if cr.issuerRoles, err = roles("issuer_roles", r.IssuerRoles, def); err != nil {
			errs = append(errs, err)
		}
	case KindMaxAmount:
		if len(r.Max) == 0 {
			bad("kind max-amount needs max (a cap per currency, e.g. {KRW: 5000000})")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cr, nil
}

func (p *Policy) classNames() []string {
	out := make([]string, 0, len(p.classes))
	for k := range p.classes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Parse reads a policy section in YAML (the value of the hub
// configuration's policy: key), strictly — an unknown field is an error —,
// and compiles it.
func Parse(data []byte) (*Policy, error) {
	var c Config
	if len(bytes.TrimSpace(data)) > 0 {
		if err := DecodeYAML(data, &c); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	return Compile(c)
}

// DecodeYAML decodes YAML strictly — an unknown field is an error — into
// v. The decoder (goccy/go-yaml v1.19.2) panics on some malformed input (a
// tagged scalar where a sequence is expected, found by FuzzParse): that is
// an error here too.
func DecodeYAML(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this input (%v): check the document's structure", r)
		}
	}()
	return yaml.NewDecoder(bytes.NewReader(data), yaml.Strict(), yaml.DisallowUnknownField()).Decode(v)
}
