package router

import (
	"context"
	"errors"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// WithAuthResults hands Relay the request's embedded authentication
// results, each verified on its own (the receive pipeline's
// ReceivedRequest.AuthResults, or VerifyAuthResults): the payment policy
// counts these only (KECIS §12.9).
func WithAuthResults(rs ...*saml.AuthenticationResult) RelayOption {
	return func(w *relayWrites) { w.authResults = append(w.authResults, rs...) }
}

// VerifyAuthResults verifies embedded kecis:AuthenticationResult elements
// as the receive pipeline does (KECIS §3.2: each on its own, with its
// issuer's published signing keys, within its validity) and returns those
// that verify; the others are left for the recipient to refuse, and count
// for nothing at the hub. The JSON facade passes what it embeds.
func (rt *Router) VerifyAuthResults(ctx context.Context, els []*etree.Element) []*saml.AuthenticationResult {
	skew := rt.cfg.ClockSkew
	if skew <= 0 {
		skew = saml.DefaultClockSkew
	}
	var out []*saml.AuthenticationResult
	for _, el := range els {
		ar, _, err := saml.VerifyAuthenticationResult(ctx, el, rt.dir, rt.now(), skew)
		if err != nil {
			rt.log.DebugContext(ctx, "an embedded authentication result does not verify at the hub", "refusal", saml.AsError(err))
			continue
		}
		out = append(out, ar)
	}
	return out
}

// Roles implements policy.Directory over the active participants.
func (d *Directory) Roles(ctx context.Context, entityID string) ([]metadata.Role, bool, error) {
	e, err := d.ByID(ctx, entityID)
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return e.D.Roles, true, nil
}

// decide evaluates the payment policy on a verified, authorized request
// (KECIS §12.9). It returns the decision and, when there is one to keep —
// a refusal, or an allowed request a rule matched —, its audit record
// policy.decision for Relay's first commit; nil, nil without a policy.
func (rt *Router) decide(ctx context.Context, req *saml.ServiceRequest, dest string, results []*saml.AuthenticationResult) (*policy.Decision, *store.AuditRecord, error) {
	p := rt.cfg.Policy
	if p == nil {
		return nil, nil, nil
	}
	d, err := p.Evaluate(ctx, rt.dir, &policy.Request{Service: req.Service, Caller: metadata.Caller(req.Issuer, req.OnBehalfOf),
		Payload: req.Payload, AuthResults: results, Now: rt.now()})
	if err != nil {
		return nil, nil, err
	}
	if d.Allowed && !d.Matched() {
		return d, nil, nil
	}
	rec := rt.auditRecord("policy.decision", req, dest, nil, nil)
	rec.Actor, rec.Detail = rt.cfg.HubEntityID, d.JSON()
	return d, rec, nil
}

// countDecision counts each rule that matched a request whose decision was
// committed (kecis_hub_policy_decisions_total): allowed when the rule held,
// refused when not.
func (rt *Router) countDecision(d *policy.Decision) {
	if rt.metrics == nil || d == nil {
		return
	}
	for _, e := range d.Rules {
		if !e.Matched {
			continue
		}
		label := "allowed"
		if e.Satisfied == nil || !*e.Satisfied {
			label = "refused"
		}
		rt.metrics.PolicyDecisions.WithLabelValues(e.ID, label).Inc()
	}
}
