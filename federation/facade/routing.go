package facade

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml/metadata"
)

// Query is what a routing decision is made on: all public.
type Query struct {
	Service   string
	Merchant  *router.Entry // the caller (KECIS §13.1)
	Recipient string        // named by the merchant (or by its encrypted card)
	CardBIN   string
	BankCode  string
	Money     ecml.Money
	At        time.Time // the provider needs an encryption certificate valid then
}

func (q Query) match() metadata.Query {
	return metadata.Query{Service: q.Service, CardBIN: q.CardBIN, BankCode: q.BankCode, Amount: q.Money, Caller: q.Merchant.D, At: q.At}
}

// Routing chooses the provider of a facade request (KECIS §12.4, §13.4):
// the recipient the merchant named, if it serves the request; else the
// operator's routing rules, lowest priority first, which BIND — a request
// inside a rule's scope goes to the rule's provider or nowhere; else the
// one active participant that serves it best (metadata.Choose). Every
// candidate must admit the merchant as a caller (§13.2). The returned note
// explains the decision; it goes into the audit record.
type Routing struct {
	Store store.Store
	Dir   *router.Directory
}

// ErrNoRoute: nobody can take the request.
var ErrNoRoute = errors.New("no route")

// Choose implements the decision.
func (r *Routing) Choose(ctx context.Context, q Query) (*router.Entry, string, error) {
	mq := q.match()
	rule, err := r.rule(ctx, q)
	if err != nil {
		return nil, "", err
	}
	if q.Recipient != "" {
		if rule != nil && rule.Target != q.Recipient {
			return nil, "", fmt.Errorf("%w: routing rule %s sends this request to %s, not to %s", ErrNoRoute, rule.ID, rule.Target, q.Recipient)
		}
		e, err := r.Dir.ByID(ctx, q.Recipient)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s is not an active participant", ErrNoRoute, q.Recipient)
		}
		if _, _, why := e.D.Serves(mq); why != "" {
			return nil, "", fmt.Errorf("%w: %s %s", ErrNoRoute, q.Recipient, why)
		}
		return e, "recipient named by the merchant", nil
	}
	if rule != nil {
		e, err := r.Dir.ByID(ctx, rule.Target)
		if err != nil {
			return nil, "", fmt.Errorf("%w: routing rule %s names %s, which is not an active participant", ErrNoRoute, rule.ID, rule.Target)
		}
		if _, _, why := e.D.Serves(mq); why != "" {
			return nil, "", fmt.Errorf("%w: routing rule %s names %s, which %s", ErrNoRoute, rule.ID, rule.Target, why)
		}
		return e, fmt.Sprintf("rule %s (priority %d)", rule.ID, rule.Priority), nil
	}
	all, err := r.Dir.All(ctx)
	if err != nil {
		return nil, "", err
	}
	others := make([]*router.Entry, 0, len(all))
	for _, e := range all {
		if e.P.EntityID != q.Merchant.P.EntityID {
			others = append(others, e)
		}
	}
	ed, err := metadata.Choose(router.Descriptors(others), mq)
	var amb *metadata.AmbiguousError
	switch {
	case errors.As(err, &amb):
		return nil, "", fmt.Errorf("%w: several participants could take it (%s); the operator must add a routing rule", ErrNoRoute, strings.Join(amb.EntityIDs, ", "))
	case err != nil:
		return nil, "", fmt.Errorf("%w: no active participant offers %s to this merchant for this card, bank, currency and amount", ErrNoRoute, q.Service)
	}
	for _, e := range others {
		if e.D == ed {
			return e, "the participant that serves the request best", nil
		}
	}
	return nil, "", fmt.Errorf("%w: %s", ErrNoRoute, ed.EntityID) // unreachable: ed is one of others
}

// rule returns the routing rule in whose scope the request lies (the
// lowest priority that matches), or nil.
func (r *Routing) rule(ctx context.Context, q Query) (*store.RoutingRule, error) {
	rules, err := r.Store.ListRoutingRules(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	for _, rule := range rules {
		if ruleMatches(rule, q) {
			return rule, nil
		}
	}
	return nil, nil
}

func ruleMatches(r *store.RoutingRule, q Query) bool {
	if r.Service != "" && !(r.Service == q.Service || (strings.HasSuffix(r.Service, ":") && strings.HasPrefix(q.Service, r.Service))) {
		return false
	}
	if r.Merchant != "" && r.Merchant != q.Merchant.P.EntityID {
		return false
	}
	if r.BINPrefix != "" && !(metadata.BINRange{From: r.BINPrefix, To: r.BINPrefix}).Contains(q.CardBIN) {
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
