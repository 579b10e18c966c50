package conformance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kecis/kecis/saml/metadata"
)

// Plans returns every plan, one per role profile.
func Plans() []*Plan {
	// extra modules run after authorization, so that the responses module
	// judges their answers too.
	provider := func(name, title, role, desc string, extra ...*Module) *Plan {
		mods := []*Module{metadataModule(), envelopeModule(), encryptionModule(), clockModule(), cardModule(), securityModule(), authorizationModule()}
		return &Plan{Name: name, Title: title, Roles: []string{role}, Description: desc,
			Modules: append(append(mods, extra...), responsesModule())}
	}
	return []*Plan{
		provider("issuer", "Card issuer", string(metadata.RoleIssuer),
			"A card issuer behind its KECIS adapter: metadata and keys, the envelope, encryption, the clock, the card service, every attack of the security module, authorization (whose payment it is, who may call), its cardholder authentication and virtual card numbers when it declares them, and every answer of the run.",
			cardAuthModule(), vcnModule()),
		provider("pg", "Payment gateway", string(metadata.RolePG),
			"A PG's KECIS adapter serving the card service to merchants: the issuer plan's modules (the PG answers as the card service's provider), and its amount authentication when it declares it.",
			amountAuthModule()),
		{Name: "bank", Title: "Bank", Roles: []string{string(metadata.RoleBank)},
			Description: "A bank's adapter: metadata and keys, the envelope, the clock, the security module, who may call its services (probed with a read-only request of a declared service), its account transfer, account holder inquiry and 2-WAY transfer, its escrow and collect payments when it declares them, and every answer.",
			Modules:     []*Module{metadataModule(), envelopeModule(), clockModule(), securityModule(), authorizationModule(), transferModule(), accountModule(), twoWayModule(), escrowModule(), responsesModule()}},
		{Name: "telecom", Title: "Telecom", Roles: []string{string(metadata.RoleTelecom)},
			Description: "A mobile carrier's adapter: metadata and keys, the envelope, the clock, the security module, who may call its services, the phone holder check, and every answer.",
			Modules:     []*Module{metadataModule(), envelopeModule(), clockModule(), securityModule(), authorizationModule(), phoneModule(), responsesModule()}},
		{Name: "merchant", Title: "Merchant client", Roles: []string{string(metadata.RoleMerchant)},
			Description: "A merchant's client: its metadata and keys. A merchant serves no KECIS endpoint; the client module (the suite as provider, driven through the profile's purchase hook) is not written yet.",
			Modules:     []*Module{metadataModule()}},
		{Name: "hub", Title: "Hub", Roles: []string{string(metadata.RoleHub)},
			Description: "A federation hub: its own descriptor (metadata and keys), the router — relaying to the profile's provider unchanged, refusing what no provider may receive, the idempotency guard — and governed metadata changes (what widens a participant's trust waits for an operator).",
			Modules:     []*Module{metadataModule(), routerModule(), governanceModule()}},
	}
}

// PlanByName returns the plan named name.
func PlanByName(name string) (*Plan, error) {
	var names []string
	for _, p := range Plans() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("conformance: no plan %q (plans: %s)", name, strings.Join(names, ", "))
}

// SelectPlan is discovery: the named plan, else the plan of the first of
// the participant's roles that has one (providers before clients).
func SelectPlan(ed *metadata.EntityDescriptor, name string) (*Plan, error) {
	if name != "" {
		return PlanByName(name)
	}
	if ed == nil {
		return nil, fmt.Errorf("conformance: the participant's metadata could not be read; name the plan (--plan)")
	}
	for _, role := range []metadata.Role{metadata.RoleIssuer, metadata.RolePG, metadata.RoleBank, metadata.RoleTelecom, metadata.RoleHub, metadata.RoleMerchant} {
		if !ed.HasRole(role) {
			continue
		}
		for _, p := range Plans() {
			if p.hasRole(string(role)) {
				return p, nil
			}
		}
	}
	var roles []string
	for _, r := range ed.Roles {
		roles = append(roles, string(r))
	}
	slices.Sort(roles)
	return nil, fmt.Errorf("conformance: no plan certifies the roles %v of %s", roles, ed.EntityID)
}
