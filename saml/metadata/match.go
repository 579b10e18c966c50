package metadata

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Query asks who serves a request (KECIS §13.4). Every field is public: the
// card BIN travels in kecis:Routing, never the card number. Zero fields are
// not checked.
type Query struct {
	// Service is the service URI; required.
	Service string
	// CardBIN is the card's first 6 to 8 digits.
	CardBIN string
	// BankCode is a 3-digit Korean bank code.
	BankCode string
	// Amount is checked against the offer's limits when Currency is set.
	Amount ecml.Money
	// Role, when set, admits only participants with that role: the issuer
	// of a card BIN, the bank of a bank code.
	Role Role
	// Caller, when set, admits only offers whose callers include this
	// participant (KECIS §13.2).
	Caller *EntityDescriptor
	// At, when set, admits only participants with an encryption certificate
	// valid at At: nothing could be encrypted for the others.
	At time.Time
}

// Refusal says why a participant does not serve a Query; it is public (it
// names no secret) and goes into routing notes and audit records.
type Refusal string

// Refusals.
const (
	RefusedRole    Refusal = "does not have the role"
	RefusedService Refusal = "does not offer the service"
	RefusedCaller  Refusal = "does not admit the caller"
	RefusedBIN     Refusal = "does not take this card BIN"
	RefusedBank    Refusal = "does not take this bank code"
	RefusedAmount  Refusal = "does not take this currency or amount"
	RefusedNoKey   Refusal = "has no valid encryption certificate"
)

// Serves reports whether the participant serves q: the offered service,
// or the reason it does not (why is "" when it serves), and the specificity of its BIN match (the
// prefix length of the longest range that holds q.CardBIN; 0 when q names
// no BIN or the offer has no BIN list). This is the federation's one
// matcher: the hub's routing, its router and the SDK's resolver all call
// it (directly or through Choose).
func (ed *EntityDescriptor) Serves(q Query) (svc *OfferedService, specificity int, why Refusal) {
	if q.Role != "" && !ed.HasRole(q.Role) {
		return nil, 0, RefusedRole
	}
	svc, ok := ed.Offers(q.Service)
	if !ok {
		return nil, 0, RefusedService
	}
	if q.Caller != nil && !svc.AdmitsCaller(q.Caller.EntityID, q.Caller.Roles) {
		return nil, 0, RefusedCaller
	}
	if q.CardBIN != "" && len(svc.BINs) > 0 {
		for _, r := range svc.BINs {
			if r.Contains(q.CardBIN) && len(r.From) > specificity {
				specificity = len(r.From)
			}
		}
		if specificity == 0 {
			return nil, 0, RefusedBIN
		}
	}
	if q.BankCode != "" && !svc.AdmitsBank(q.BankCode) {
		return nil, 0, RefusedBank
	}
	if q.Amount.Currency != "" && !svc.Admits(q.Amount) {
		return nil, 0, RefusedAmount
	}
	if !q.At.IsZero() {
		if _, ok := ed.EncryptionCertificate(q.At); !ok {
			return nil, 0, RefusedNoKey
		}
	}
	return svc, specificity, ""
}

// ErrNoProvider: no participant serves the query.
var ErrNoProvider = errors.New("metadata: no participant serves the request")

// AmbiguousError: several participants serve the query equally well; the
// operator must decide (a routing rule, or one claim withdrawn). It names
// them.
type AmbiguousError struct {
	Service   string
	EntityIDs []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("metadata: several participants serve %s equally (%s)", e.Service, strings.Join(e.EntityIDs, ", "))
}

// Choose returns the one participant that serves q best: the most specific
// BIN match wins (an issuer's own 8-digit range over a broader 6-digit
// one); two or more at the best specificity are an *AmbiguousError, never
// a silent first pick; none is ErrNoProvider (KECIS §13.4).
func Choose(eds []*EntityDescriptor, q Query) (*EntityDescriptor, error) {
	var best []*EntityDescriptor
	bestSpec := -1
	for _, ed := range eds {
		if _, spec, why := ed.Serves(q); why == "" {
			switch {
			case spec > bestSpec:
				best, bestSpec = []*EntityDescriptor{ed}, spec
			case spec == bestSpec:
				best = append(best, ed)
			}
		}
	}
	switch len(best) {
	case 0:
		return nil, ErrNoProvider
	case 1:
		return best[0], nil
	}
	ids := make([]string, len(best))
	for i, ed := range best {
		ids[i] = ed.EntityID
	}
	return nil, &AmbiguousError{Service: q.Service, EntityIDs: ids}
}

// RecipientRole is the role that answers for a card BIN (issuer) or a bank
// code (bank) when a provider looks up the recipient of its own call: a
// PG's card approval goes to the card's issuer, a bank's transfer to the
// payee's bank, never to another PG that also lists the BIN (KECIS §13.4).
// It is "" when the query names neither.
func RecipientRole(q Query) Role {
	switch {
	case q.CardBIN != "":
		return RoleIssuer
	case q.BankCode != "":
		return RoleBank
	}
	return ""
}

// Caller returns the entityID of a request's caller (KECIS §13.1): the
// merchant that OnBehalfOf names when the hub built the request on its
// facade, else the request's Issuer.
func Caller(issuer, onBehalfOf string) string {
	if onBehalfOf != "" {
		return onBehalfOf
	}
	return issuer
}

// AuthorizeCall decides whether caller may call service at provider
// (KECIS §13.2): saml.ErrUnknownService when the provider does not offer
// it, saml.ErrCallerDenied when the offer does not admit the caller, both
// with the reason as their private cause. The hub runs it before relaying
// and the provider's adapter again on receipt.
func AuthorizeCall(provider, caller *EntityDescriptor, service string) error {
	svc, ok := provider.Offers(service)
	if !ok {
		return saml.ErrUnknownService.WithCausef("%s does not offer %s", provider.EntityID, service)
	}
	if caller == nil {
		return saml.ErrCallerDenied.WithCausef("the caller of %s is not an active participant", service)
	}
	if !svc.AdmitsCaller(caller.EntityID, caller.Roles) {
		return saml.ErrCallerDenied.WithCausef("%s (roles %v) may not call %s at %s (callers %v %v)",
			caller.EntityID, caller.Roles, service, provider.EntityID, svc.Callers, svc.CallerEntities)
	}
	return nil
}
