package facade

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
)

// Query is what a routing decision is made on: all public.
type Query struct {
	Service   string
	Merchant  string
	Recipient string // named by the merchant (or by its encrypted card)
	CardBIN   string
	BankCode  string
	Money     ecml.Money
}

// Routing chooses the provider of a facade request: a named recipient if it
// can take the request; else the explicit rules, lowest priority first;
// else the one active participant whose offer admits the request (BIN
// list, bank codes, currency and amount limits). The returned note
// explains the decision; it goes into the audit record.
type Routing struct {
	Store store.Store
	Dir   *router.Directory
}

// ErrNoRoute: nobody can take the request.
var ErrNoRoute = errors.New("no route")

// Choose implements the decision.
func (r *Routing) Choose(ctx context.Context, q Query) (*router.Entry, string, error) {
	if q.Recipient != "" {
		e, err := r.Dir.ByID(ctx, q.Recipient)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s is not an active participant", ErrNoRoute, q.Recipient)
		}
		if why := admits(e, q); why != "" {
			return nil, "", fmt.Errorf("%w: %s %s", ErrNoRoute, q.Recipient, why)
		}
		return e, "recipient named by the merchant", nil
	}
	rules, err := r.Store.ListRoutingRules(ctx)
	if err != nil {
		return nil, "", err
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	for _, rule := range rules {
		if !ruleMatches(rule, q) {
			continue
		}
		e, err := r.Dir.ByID(ctx, rule.Target)
		if err != nil || admits(e, q) != "" {
			continue // a rule to a provider that cannot take it: the next
		}
		return e, fmt.Sprintf("rule %s (priority %d)", rule.ID, rule.Priority), nil
	}
	all, err := r.Dir.All(ctx)
	if err != nil {
		return nil, "", err
	}
	var fits []*router.Entry
	for _, e := range all {
		if e.P.EntityID != q.Merchant && admits(e, q) == "" {
			fits = append(fits, e)
		}
	}
	switch len(fits) {
	case 0:
		return nil, "", fmt.Errorf("%w: no active participant offers %s for this card, bank, currency and amount", ErrNoRoute, q.Service)
	case 1:
		return fits[0], "the only participant whose offer admits the request", nil
	}
	// Several: the most specific BIN match wins (an issuer's own range over
	// a PG's broad one); otherwise ambiguous without a rule.
	best, bestLen, tie := (*router.Entry)(nil), -1, false
	for _, e := range fits {
		l := binSpecificity(e, q)
		switch {
		case l > bestLen:
			best, bestLen, tie = e, l, false
		case l == bestLen:
			tie = true
		}
	}
	if tie || bestLen <= 0 {
		names := make([]string, len(fits))
		for i, e := range fits {
			names[i] = e.P.EntityID
		}
		return nil, "", fmt.Errorf("%w: several participants could take it (%s); the operator must add a routing rule", ErrNoRoute, strings.Join(names, ", "))
	}
	return best, "the most specific BIN range offered", nil
}

func ruleMatches(r *store.RoutingRule, q Query) bool {
	if r.Service != "" && !(r.Service == q.Service || (strings.HasSuffix(r.Service, ":") && strings.HasPrefix(q.Service, r.Service))) {
		return false
	}
	if r.Merchant != "" && r.Merchant != q.Merchant {
		return false
	}
	if r.BINPrefix != "" && !strings.HasPrefix(q.CardBIN, r.BINPrefix) {
		return false
	}
	if r.BankCode != "" && r.BankCode != q.BankCode {
		return false
	}
	if r.Currency != "" && r.Currency != q.Money.Currency {
		return false
	}
	if r.MinAmount > 0 && q.Money.Minor < r.MinAmount {
		return false
	}
	if r.MaxAmount > 0 && q.Money.Minor > r.MaxAmount {
		return false
	}
	return true
}

// admits returns why e cannot take q, or "".
func admits(e *router.Entry, q Query) string {
	var svc *store.Service
	for i := range e.P.Services {
		if e.P.Services[i].Service == q.Service {
			svc = &e.P.Services[i]
		}
	}
	if svc == nil {
		return "does not offer " + q.Service
	}
	if q.CardBIN != "" && len(svc.BINRanges) > 0 && binSpecificity(e, q) < 0 {
		return "does not take this card BIN"
	}
	if q.BankCode != "" && len(svc.BankCodes) > 0 && !slices.Contains(svc.BankCodes, q.BankCode) {
		return "does not take this bank"
	}
	if q.Money.Currency != "" && len(svc.Currencies) > 0 && !slices.Contains(svc.Currencies, q.Money.Currency) {
		return "does not take " + q.Money.Currency
	}
	if len(svc.Currencies) == 1 && q.Money.Currency == svc.Currencies[0] {
		if (svc.MinAmount > 0 && q.Money.Minor < svc.MinAmount) || (svc.MaxAmount > 0 && q.Money.Minor > svc.MaxAmount) {
			return "does not take this amount"
		}
	}
	return ""
}

// binSpecificity is the length of the most specific BIN range of e's offer
// that holds the card BIN: -1 when none does, 0 when the offer has no list.
func binSpecificity(e *router.Entry, q Query) int {
	best := -1
	for _, s := range e.P.Services {
		if s.Service != q.Service {
			continue
		}
		if len(s.BINRanges) == 0 {
			return 0
		}
		for _, r := range s.BINRanges {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			n := len(lo)
			if len(q.CardBIN) < n {
				continue
			}
			p := q.CardBIN[:n]
			if p >= lo && p <= hi && n > best {
				best = n
			}
		}
	}
	return best
}

// newest is the provider's encryption certificate with the latest expiry
// (the new key during a rollover).
func newest(e *router.Entry) *x509.Certificate {
	var c *x509.Certificate
	for _, x := range e.Encryption {
		if c == nil || x.NotAfter.After(c.NotAfter) {
			c = x
		}
	}
	return c
}
