package conformance

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// RouterProfile names what the hub plan's router module relays to: a
// provider of the hub's federation (its test instance).
type RouterProfile struct {
	// Provider is the entityID of a provider the hub relays to; the card
	// section of the profile, when present, holds its test cards.
	Provider string `yaml:"provider"`
}

// routerModule checks the hub as a router (KECIS §12): it relays a
// member's request and the provider's answer unchanged, refuses for its
// members what they would refuse, and guards idempotency keys.
func routerModule() *Module {
	m := &Module{
		Name:  "router",
		Title: "Router: the hub relays unchanged and refuses before the provider",
		Description: "The suite, a registered tester, sends through the hub to the profile's provider (router.provider): a valid request must come back as the provider's own signed answer; " +
			"what no provider may receive (unsigned, tampered, replayed, misaddressed, from an unknown TLS client) the hub refuses itself, the way KECIS §5.3 says; a changed retry under a used idempotency key is the hub's IdempotencyConflict.",
		Applies: func(e *Env) (bool, string) {
			switch {
			case e.Hub == nil:
				return false, "the run has no hub (the profile's hub section)"
			case e.Profile.Router == nil || e.Profile.Router.Provider == "":
				return false, "the profile names no provider to relay to (router.provider)"
			}
			return true, ""
		},
	}
	needs := []string{"router.provider-metadata"}
	m.Conditions = []*Condition{
		{ID: "router.provider-metadata", Title: "The hub serves the provider's metadata by Metadata Query, signed with its key",
			Clauses: []string{"KECIS §11.2", "KECIS §12.1"}, Run: routerProvider},
		{ID: "router.relay", Title: "A valid request is relayed: the answer is the provider's, signed with its metadata key, InResponseTo the request",
			Clauses: []string{"KECIS §12.1"}, Needs: needs, Run: viaProvider(routerRelay)},
		{ID: "router.unsigned", Title: "An unsigned request is refused by the hub with an unsigned generic fault",
			Clauses: []string{"KECIS §12.1", "KECIS §5.3.1"}, Needs: needs, Run: viaProvider(func(c *C) (*Exchange, error) {
				req, err := c.ProbeRequest("router-unsigned")
				if err != nil {
					return nil, err
				}
				x, err := c.Exchange(c.Context(), "unsigned through the hub", ViaHub, req, Seal{Unsigned: true})
				if err != nil {
					return nil, err
				}
				return x, refusedBeforeVerification(x)
			})},
		{ID: "router.tampered", Title: "A request changed after signing is refused by the hub with an unsigned generic fault",
			Clauses: []string{"KECIS §12.1", "KECIS §5.3.1", "KECIS §9.7"}, Needs: needs, Run: viaProvider(func(c *C) (*Exchange, error) {
				req, msg, err := signedProbe(c, "router-tampered", nil)
				if err != nil {
					return nil, err
				}
				o := req.Payload.Ecom.ConsumerOrderID
				msg = bytes.Replace(msg, []byte(`"`+o+`"`), []byte(`"`+o+`-tampered"`), 1)
				x := c.Send(c.Context(), "tampered through the hub", ViaHub, req.Service, req.ID, msg)
				return x, refusedBeforeVerification(x)
			})},
		{ID: "router.wrong-destination", Title: "A request addressed to no member's endpoint is refused by the hub: signed Requester / WrongDestination",
			Clauses: []string{"KECIS §12.1", "KECIS §5.3.2", "SAML core §3.2.1"}, Needs: needs, Run: viaProvider(func(c *C) (*Exchange, error) {
				req, err := c.ProbeRequest("router-destination")
				if err != nil {
					return nil, err
				}
				req.Destination = "https://nowhere.invalid/kecis/soap"
				x, err := c.Exchange(c.Context(), "misaddressed through the hub", ViaHub, req, Seal{})
				if err != nil {
					return nil, err
				}
				return x, hubStatus(c, x, saml.StatusRequester, saml.CodeWrongDestination)
			})},
		{ID: "router.replay", Title: "The relayed request sent again is refused by the hub: signed Requester / Replay, never relayed twice",
			Clauses: []string{"KECIS §7.2", "KECIS §12.1"}, Needs: []string{"router.relay"}, Run: viaProvider(func(c *C) (*Exchange, error) {
				v, _ := c.Get("router.relayed")
				first, _ := v.(*Exchange)
				if first == nil {
					return nil, errors.New("the relayed exchange was not kept")
				}
				x := c.Send(c.Context(), "the relayed request again", ViaHub, first.Service, first.RequestID, first.Request)
				return x, hubStatus(c, x, saml.StatusRequester, saml.CodeReplay)
			})},
		{ID: "router.unknown-tls-client", Title: "A caller without a member's TLS client certificate gets no relay: an unsigned generic fault or a refused connection",
			Clauses: []string{"KECIS §12.1", "KECIS §5.3.1"}, Needs: needs, Run: viaProvider(func(c *C) (*Exchange, error) {
				req, msg, err := signedProbe(c, "router-no-client-cert", nil)
				if err != nil {
					return nil, err
				}
				x := &Exchange{Label: "no TLS client certificate", Route: ViaHub, Service: req.Service, RequestID: req.ID, Request: msg}
				client := &http.Client{Timeout: c.timeout, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, c.Hub.TLSCerts)}}
				c.post(c.Context(), x, saml.WrapSOAP(msg), client)
				return x, refusedAtTransport(x)
			})},
		{ID: "router.changed-retry", Title: "A changed request under a used idempotency key is refused by the hub's guard: signed Requester / IdempotencyConflict",
			Clauses: []string{"KECIS §7.1", "KECIS §12.2"}, Needs: needs, Run: viaProvider(routerChangedRetry)},
	}
	return m
}

// viaProvider runs f with the provider as the participant (requests are
// addressed to it and its answers judged by its metadata), recording the
// exchange and the evidence in the hub's condition.
func viaProvider(f func(c *C) (*Exchange, error)) func(c *C) error {
	return func(c *C) error {
		v, _ := c.Get("router.env")
		sub, _ := v.(*Env)
		if sub == nil {
			return errors.New("the provider's metadata was not loaded")
		}
		pc := &C{Env: sub, ctx: c.ctx, cond: c.cond, state: c.state}
		x, err := f(pc)
		c.evidence = append(c.evidence, pc.evidence...)
		if x != nil {
			c.Record(x)
		}
		return err
	}
}

func routerProvider(c *C) error {
	id := c.Profile.Router.Provider
	t, err := LoadTarget(c.Context(), MDQURL(c.Hub.URL, id), c.Hub.SigningCerts, HubMetadataClient(c.Hub), c.Now())
	if err != nil {
		return err
	}
	switch {
	case t.ParseErr != nil:
		return fmt.Errorf("the provider's metadata from the hub: %w", t.ParseErr)
	case !t.Signed:
		return fmt.Errorf("the provider's metadata is not signed by the hub: %v", t.SignErr)
	case t.Descriptor.EntityID != id:
		return fmt.Errorf("the hub served %q for %q", t.Descriptor.EntityID, id)
	}
	sub := &Env{Target: t, Profile: c.Profile, Tester: c.Tester, Second: c.Second, Outsider: c.Outsider, Hub: c.Hub, RunID: c.RunID, plan: c.plan, now: c.now,
		timeout: c.timeout, passed: map[string]bool{}, parent: c.Env}
	sub.init()
	c.Env.mu.Lock()
	c.Env.subs = append(c.Env.subs, sub)
	c.Env.mu.Unlock()
	c.Set("router.env", sub)
	c.Note("the provider %s: %d services, signed by the hub", id, len(t.Descriptor.Services))
	return nil
}

func routerRelay(c *C) (*Exchange, error) {
	req, err := c.ProbeRequest("router-relay")
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), "relayed", ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	if err := c.acceptedByPipeline(x); err != nil {
		return x, err
	}
	if x.Response.InResponseTo != req.ID {
		return x, fmt.Errorf("InResponseTo %q, the request was %q", x.Response.InResponseTo, req.ID)
	}
	c.Set("router.relayed", x)
	return x, nil
}

func routerChangedRetry(c *C) (*Exchange, error) {
	switch {
	case !c.Declares(svcApprove):
		return nil, Skip("the provider declares no %s", svcApprove)
	case c.Profile.Card == nil:
		return nil, Skip("the profile has no card section for the provider")
	}
	tc, m := c.card()
	first, err := c.approve("router-retry", ViaHub, tc, m)
	if err != nil {
		return nil, err
	}
	defer c.voidIfApproved(first, c.OrderID("router-retry"), "router-retry")
	if err := c.answerOf(first); err != nil {
		return nil, NeedsReview("the first approval was not answered by the provider: %v", err)
	}
	req, err := c.ApproveRequest("router-retry", tc, ecml.Money{Minor: m.Minor + 100, Currency: m.Currency})
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), "changed retry under the same key", ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	return x, hubStatus(c, x, saml.StatusRequester, saml.CodeIdempotencyConflict)
}

// hubStatus checks that the hub itself refused x with a signed status.
func hubStatus(c *C, x *Exchange, code, sub string) error {
	return expectStatusFrom(x, func(x *Exchange) error {
		switch {
		case x.Response == nil:
			return fmt.Errorf("no signed answer: %s", x.Describe())
		case x.Response.Issuer != c.Hub.EntityID:
			return fmt.Errorf("answered by %s, not refused by the hub: %s", x.Response.Issuer, x.Describe())
		}
		return nil
	}, code, sub)
}
