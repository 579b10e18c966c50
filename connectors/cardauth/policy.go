package cardauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rule is one line of a Policy (KECIS §15.7.2): a purchase in Currency
// ("" any) of at least AtLeast minor units, from one of Merchants
// (entityIDs; empty any), needs every factor of Require and one of AnyOf
// (empty: none more).
type Rule struct {
	Currency  string
	AtLeast   int64
	Merchants []string
	Require   []Factor
	AnyOf     []Factor
}

// Policy decides the factors of an authentication from the amount, the
// currency and the merchant (KECIS §15.7.2): configuration, not code.
// Among the rules that match, one naming the merchant beats one that does
// not, then one for the currency beats one for any, then the highest
// AtLeast wins, then the last in the list. A purchase no rule matches is
// refused (Decide's error).
type Policy struct {
	Rules []Rule
}

// DefaultThreshold is the default policy's threshold: 100,000 KRW.
const DefaultThreshold = 100000

// DefaultPolicy is the default of KECIS §15.7.2: below 100,000 KRW the
// card password; from 100,000 KRW the password and a second factor — a
// TLS client certificate or a TOTP code. A purchase in another currency
// always needs the second factor (the threshold is a KRW amount).
func DefaultPolicy() Policy {
	second := []Factor{FactorClientCert, FactorTOTP}
	return Policy{Rules: []Rule{
		{Currency: "", AtLeast: 0, Require: []Factor{FactorPassword}, AnyOf: second},
		{Currency: "KRW", AtLeast: 0, Require: []Factor{FactorPassword}},
		{Currency: "KRW", AtLeast: DefaultThreshold, Require: []Factor{FactorPassword}, AnyOf: second},
	}}
}

// Decision is the factors one authentication needs.
type Decision struct {
	Require []Factor
	AnyOf   []Factor
}

// Needs reports whether f is required.
func (d Decision) Needs(f Factor) bool { return slices.Contains(d.Require, f) }

// SecondFactor reports whether the decision asks for one of AnyOf.
func (d Decision) SecondFactor() bool { return len(d.AnyOf) > 0 }

// Offers reports whether f may serve as the AnyOf factor.
func (d Decision) Offers(f Factor) bool { return slices.Contains(d.AnyOf, f) }

// ErrNoRule: no rule of the policy covers the purchase.
var ErrNoRule = errors.New("cardauth: the policy has no rule for this purchase")

// Check reports a policy that cannot work: an unknown factor, a negative
// threshold, a rule that asks for nothing, or a rule without the password
// (every method of KECIS §15.7.2 starts with it).
func (p Policy) Check() error {
	if len(p.Rules) == 0 {
		return errors.New("cardauth: the policy has no rules")
	}
	for i, r := range p.Rules {
		if r.AtLeast < 0 {
			return fmt.Errorf("cardauth: policy rule %d: AtLeast is negative", i)
		}
		if r.Currency != "" && (len(r.Currency) != 3 || strings.ToUpper(r.Currency) != r.Currency) {
			return fmt.Errorf("cardauth: policy rule %d: currency %q is not an ISO 4217 code", i, r.Currency)
		}
		for _, f := range slices.Concat(r.Require, r.AnyOf) {
			if f != FactorPassword && f != FactorClientCert && f != FactorTOTP {
				return fmt.Errorf("cardauth: policy rule %d: unknown factor %q", i, f)
			}
		}
		if !slices.Contains(r.Require, FactorPassword) {
			return fmt.Errorf("cardauth: policy rule %d: the password must be required", i)
		}
		if slices.Contains(r.AnyOf, FactorPassword) {
			return fmt.Errorf("cardauth: policy rule %d: the password cannot be a second factor", i)
		}
	}
	return nil
}

// Decide returns the factors a purchase of amount (minor units) in
// currency by merchant needs.
func (p Policy) Decide(amount int64, currency, merchant string) (Decision, error) {
	best := -1
	rank := func(r Rule) [3]int64 {
		var named, cur int64
		if len(r.Merchants) > 0 {
			named = 1
		}
		if r.Currency != "" {
			cur = 1
		}
		return [3]int64{named, cur, r.AtLeast}
	}
	for i, r := range p.Rules {
		if (r.Currency != "" && r.Currency != currency) || amount < r.AtLeast ||
			(len(r.Merchants) > 0 && !slices.Contains(r.Merchants, merchant)) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		a, b := rank(r), rank(p.Rules[best])
		if slices.Compare(a[:], b[:]) >= 0 {
			best = i
		}
	}
	if best < 0 {
		return Decision{}, ErrNoRule
	}
	r := p.Rules[best]
	return Decision{Require: slices.Clone(r.Require), AnyOf: slices.Clone(r.AnyOf)}, nil
}
