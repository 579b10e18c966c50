package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Directory answers who is an active participant and with which roles.
// The router's directory implements it.
type Directory interface {
	// Roles returns the roles of an active participant; ok is false when
	// entityID names none. err is for a directory that cannot answer (its
	// database): the request is then not decided.
	Roles(ctx context.Context, entityID string) (roles []metadata.Role, ok bool, err error)
}

// Request is what a decision looks at: a verified, authorized request.
type Request struct {
	Service string
	// Caller is metadata.Caller(Issuer, OnBehalfOf): the merchant of a
	// facade request.
	Caller  string
	Payload *ecml.Payload
	// AuthResults are the request's embedded authentication results, each
	// verified on its own (signature, issuer's key, validity: saml.Receiver
	// output, or saml.VerifyAuthenticationResult). Unverified results must
	// not be passed.
	AuthResults []*saml.AuthenticationResult
	// Now is the decision's time: a result whose NotOnOrAfter has passed
	// does not count. Zero skips that check.
	Now time.Time
}

// Decision is the outcome of a request's evaluation, as the audit record
// policy.decision keeps it (JSON). It holds public fields only: the amount
// and currency, entityIDs, rule ids and texts, authentication results by ID,
// issuer and method — never a card or account number, a code or a
// result's card reference.
type Decision struct {
	Allowed bool `json:"allowed"`
	// RefusedBy is the id of the first rule (in order) not satisfied;
	// Message its public message, the status's.
	RefusedBy string `json:"refused_by,omitempty"`
	Message   string `json:"message,omitempty"`
	Preset    string `json:"preset"`
	// Request is what the rules looked at.
	Request Facts `json:"request"`
	// Rules lists every rule, in order.
	Rules []Explained `json:"rules"`
}

// Facts are the public facts of the request the rules looked at.
type Facts struct {
	Service     string   `json:"service"`
	Caller      string   `json:"caller"`
	CallerRoles []string `json:"caller_roles"`
	Classes     []string `json:"classes,omitempty"`
	Amount      string   `json:"amount,omitempty"` // "150000 KRW"
	Shipped     bool     `json:"shipped"`
	// AuthResults are the verified results the request embeds.
	AuthResults []ResultFacts `json:"auth_results,omitempty"`
}

// ResultFacts describe one embedded result, without its card reference.
type ResultFacts struct {
	ID      string `json:"id"`
	Issuer  string `json:"issuer"`
	Method  string `json:"method"`
	Factors int    `json:"factors"`
}

// Explained is one rule's part of a decision.
type Explained struct {
	ID     string `json:"id"`
	Kind   Kind   `json:"kind"`
	Source string `json:"source,omitempty"`
	Year   int    `json:"year,omitempty"`
	// Matched: the request is one the rule applies to. Satisfied, when
	// matched: it holds (absent when not matched).
	Matched   bool  `json:"matched"`
	Satisfied *bool `json:"satisfied,omitempty"`
	// Why says what decided, in words and public values.
	Why string `json:"why"`
}

// Matched reports whether any rule applied to the request: a decision
// that matched nothing and allowed the request need not be recorded.
func (d *Decision) Matched() bool {
	return slices.ContainsFunc(d.Rules, func(e Explained) bool { return e.Matched })
}

// JSON is the decision as the audit record's detail.
func (d *Decision) JSON() string {
	b, err := json.Marshal(d)
	if err != nil { // plain strings, bools and ints: cannot fail
		return `{"error":"unencodable decision"}`
	}
	return string(b)
}

// Status is the status of a refusal (KECIS §6.2, §12.9): Responder /
// PolicyViolation with the refusing rule's public message.
func (d *Decision) Status() saml.Status {
	return saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePolicyViolation, Message: d.Message}
}

// facts is a request as the rules see it.
type facts struct {
	Facts
	roles     []metadata.Role
	money     ecml.Money
	hasAmount bool
	order     string
	results   []*saml.AuthenticationResult
	resRoles  map[string][]metadata.Role // active issuers' roles; absent: not active
	now       time.Time
}

// Evaluate decides a request: every rule in order, the first one not
// satisfied refusing it. The error is only a directory that cannot answer.
func (p *Policy) Evaluate(ctx context.Context, dir Directory, in *Request) (*Decision, error) {
	f := &facts{Facts: Facts{Service: in.Service, Caller: in.Caller}, now: in.Now, resRoles: map[string][]metadata.Role{}}
	if len(p.rules) > 0 {
		roles, ok, lerr := dir.Roles(ctx, in.Caller)
		if lerr != nil {
			return nil, fmt.Errorf("policy: the caller's roles: %w", lerr)
		}
		if ok {
			f.roles = roles
		}
	}
	f.CallerRoles = roleStrings(f.roles)
	f.Classes = p.classesOf(in.Service)
	if in.Payload != nil && in.Payload.Ecom != nil {
		e := in.Payload.Ecom
		f.Shipped = e.ShipTo != nil
		f.order = e.ConsumerOrderID
		if e.Transaction != nil && e.Transaction.Amount != "" {
			if m, merr := e.Transaction.Money(); merr == nil {
				f.money, f.hasAmount = m, true
				f.Amount = m.String()
			}
		}
	}
	for _, r := range in.AuthResults {
		if r == nil {
			continue
		}
		f.results = append(f.results, r)
		f.AuthResults = append(f.AuthResults, ResultFacts{ID: r.ID, Issuer: r.Issuer, Method: r.Method, Factors: factors(r)})
		if _, seen := f.resRoles[r.Issuer]; seen || len(p.rules) == 0 {
			continue
		}
		roles, ok, lerr := dir.Roles(ctx, r.Issuer)
		if lerr != nil {
			return nil, fmt.Errorf("policy: the roles of %s: %w", r.Issuer, lerr)
		}
		if ok {
			f.resRoles[r.Issuer] = roles
		}
	}
	d := &Decision{Allowed: true, Preset: p.preset, Request: f.Facts, Rules: make([]Explained, 0, len(p.rules))}
	for _, r := range p.rules {
		e := Explained{ID: r.ID, Kind: r.Kind, Source: r.Source, Year: r.Year}
		if why, ok := r.matches(f); !ok {
			e.Why = why
		} else {
			e.Matched = true
			sat, why := r.satisfied(p, f)
			e.Satisfied, e.Why = &sat, why
			if !sat && d.Allowed {
				d.Allowed, d.RefusedBy, d.Message = false, r.ID, r.Message
			}
		}
		d.Rules = append(d.Rules, e)
	}
	return d, nil
}

func roleStrings(rs []metadata.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// classesOf names the classes a service is in.
func (p *Policy) classesOf(service string) []string {
	var out []string
	for name, svcs := range p.classes {
		if svcs[service] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// factors is the number of factors a result used: a result that does not
// say used one.
func factors(r *saml.AuthenticationResult) int {
	if r.Factors < 1 {
		return 1
	}
	return r.Factors
}

// matches reports whether the rule applies, and if not, why not.
func (r *rule) matches(f *facts) (string, bool) {
	if r.services != nil && !r.services[f.Service] {
		what := "services " + strings.Join(r.When.Services, ", ")
		if len(r.When.Classes) > 0 {
			what = "classes " + strings.Join(r.When.Classes, ", ")
			if len(r.When.Services) > 0 {
				what += " or services " + strings.Join(r.When.Services, ", ")
			}
		}
		return fmt.Sprintf("the service %s is not in %s", f.Service, what), false
	}
	if !slices.ContainsFunc(r.callerRoles, func(x metadata.Role) bool { return slices.Contains(f.roles, x) }) {
		return fmt.Sprintf("the caller's roles %v are none of %v", f.CallerRoles, roleStrings(r.callerRoles)), false
	}
	if len(r.merchants) > 0 && !r.merchants[f.Caller] {
		return fmt.Sprintf("the caller %s is not one of the rule's merchants", f.Caller), false
	}
	if len(r.When.MinAmount) > 0 {
		if !f.hasAmount {
			return "the request has no amount", false
		}
		min, ok := r.When.MinAmount[f.money.Currency]
		if !ok {
			return fmt.Sprintf("no threshold for %s (thresholds: %s)", f.money.Currency, r.When.MinAmount.describe()), false
		}
		if f.money.Minor < min.Minor {
			return fmt.Sprintf("the amount %s is below the threshold %s", f.money, min), false
		}
	}
	if s := r.When.Shipped; s != nil && *s != f.Shipped {
		if *s {
			return "the goods are not shipped (no Ecom/ShipTo)", false
		}
		return "the goods are shipped (Ecom/ShipTo)", false
	}
	if r.Kind == KindMaxAmount {
		if !f.hasAmount {
			return "the request has no amount", false
		}
		if _, ok := r.Max[f.money.Currency]; !ok {
			return fmt.Sprintf("no cap for %s (caps: %s)", f.money.Currency, r.Max.describe()), false
		}
	}
	return "", true
}

// satisfied reports whether a matching request holds the rule, and why.
func (r *rule) satisfied(p *Policy, f *facts) (bool, string) {
	subject := "the request"
	if f.hasAmount {
		subject = "a payment of " + f.money.String()
	}
	switch r.Kind {
	case KindRequireEscrow:
		if p.escrow[f.Service] {
			return true, fmt.Sprintf("%s uses escrow (%s is in the class %s)", subject, f.Service, ClassEscrow)
		}
		return false, fmt.Sprintf("%s must use a service of the class %s (%s), not %s", subject, ClassEscrow, strings.Join(sortedKeys(p.escrow), ", "), f.Service)
	case KindMaxAmount:
		limit := r.Max[f.money.Currency]
		if f.money.Minor <= limit.Minor {
			return true, fmt.Sprintf("the amount %s is within the cap %s", f.money, limit)
		}
		return false, fmt.Sprintf("the amount %s exceeds the cap %s", f.money, limit)
	case KindRequireAuthentication:
		return r.authenticated(f, subject)
	}
	return false, "unknown kind"
}

// authenticated is require-authentication: one of the request's verified
// results, bound to this payment, from an active participant of an
// accepted role, strong enough.
func (r *rule) authenticated(f *facts, subject string) (bool, string) {
	need := r.needs()
	if len(f.results) == 0 {
		return false, fmt.Sprintf("%s needs an authentication result (%s); the request embeds none (an authentication value alone does not count: the hub cannot check it)", subject, need)
	}
	var why []string
	for _, ar := range f.results {
		reason := r.refuseResult(f, ar)
		if reason == "" {
			return true, fmt.Sprintf("the result %s of %s (%s, %d factor(s)) is bound to this payment", ar.ID, ar.Issuer, ar.Method, factors(ar))
		}
		why = append(why, fmt.Sprintf("%s of %s: %s", ar.ID, ar.Issuer, reason))
	}
	return false, fmt.Sprintf("%s needs an authentication result (%s); none counts: %s", subject, need, strings.Join(why, "; "))
}

func (r *rule) needs() string {
	var parts []string
	if r.MinFactors > 0 {
		parts = append(parts, fmt.Sprintf("at least %d factor(s)", r.MinFactors))
	}
	if len(r.Methods) > 0 {
		parts = append(parts, "method "+strings.Join(r.Methods, " or "))
	}
	parts = append(parts, "issued by a participant of role "+strings.Join(roleStrings(r.issuerRoles), " or "))
	return strings.Join(parts, ", ")
}

// refuseResult says why a result does not satisfy the rule; "" when it
// does. The binding is checked field by field, never quoting a value the
// result holds that the request does not (it could be another payment's).
func (r *rule) refuseResult(f *facts, ar *saml.AuthenticationResult) string {
	roles, active := f.resRoles[ar.Issuer]
	switch {
	case !active:
		return "its issuer is not an active participant"
	case !slices.ContainsFunc(r.issuerRoles, func(x metadata.Role) bool { return slices.Contains(roles, x) }):
		return fmt.Sprintf("its issuer's roles %v are none of %v", roleStrings(roles), roleStrings(r.issuerRoles))
	case !f.now.IsZero() && !f.now.Before(ar.NotOnOrAfter):
		return "expired"
	case factors(ar) < r.MinFactors:
		return fmt.Sprintf("%d factor(s), fewer than %d", factors(ar), r.MinFactors)
	case len(r.methods) > 0 && !r.methods[ar.Method]:
		return fmt.Sprintf("the method %s is not accepted", ar.Method)
	}
	if err := bound(f, ar); err != nil {
		return err.Error()
	}
	return ""
}

// bound checks that a result is bound to the request: its amount and
// currency, its merchant (the caller) and its order (Ecom/@ConsumerOrderID).
func bound(f *facts, ar *saml.AuthenticationResult) error {
	if !f.hasAmount {
		return errors.New("the request has no amount to bind it to")
	}
	m, err := ecml.ParseAmount(ar.Amount, ar.Currency)
	if err != nil || m != f.money {
		return errors.New("bound to another amount or currency")
	}
	if ar.Merchant != f.Caller {
		return errors.New("bound to another merchant")
	}
	if f.order == "" || ar.OrderID != f.order {
		return errors.New("bound to another order")
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
