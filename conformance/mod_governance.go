package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// governanceModule checks that a participant cannot widen on its own what
// it is trusted with (KECIS §13.6): the tester, a registered participant,
// replaces its own metadata through the hub's registry with a change that
// adds the issuer role, the card service for a card BIN and an endpoint —
// finding 1 of the authorization review, a merchant that made itself the
// issuer of a BIN and received its card numbers. The change must become a
// pending version: the metadata the hub publishes (Metadata Query and the
// aggregate) does not show it, and the hub routes nothing by it. The
// tester then withdraws it by submitting its active metadata again.
func governanceModule() *Module {
	change := []string{"governance.change-pending"}
	return &Module{
		Name:  "governance",
		Title: "Governed metadata changes: nothing widens before an operator approves",
		Description: "The tester submits its own metadata (PUT /kecis/federation/participants with its TLS client certificate) adding the issuer role, card:approve for a card BIN and an endpoint of its own: " +
			"the hub must keep it pending (202) — absent from the Metadata Query answer and the aggregate, and no request routed by it — until an operator decides; the tester then withdraws it.",
		Applies: func(e *Env) (bool, string) {
			if e.Hub == nil {
				return false, "the run has no hub (the profile's hub section)"
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "governance.change-pending", Title: "A metadata update adding a role, a service with a BIN range and an endpoint is accepted as a pending version (HTTP 202), not applied",
				Clauses: []string{"KECIS §13.6", "KECIS §12.6"}, Run: changePending},
			{ID: "governance.mdq-unchanged", Title: "The hub's Metadata Query answer for the tester still shows the active version: no added role, service, BIN range or endpoint",
				Clauses: []string{"KECIS §13.6", "KECIS §11.2"}, Needs: change, Run: publishedUnchanged(false)},
			{ID: "governance.aggregate-unchanged", Title: "The hub's aggregate still shows the tester's active version, and no participant publishes the pending endpoint",
				Clauses: []string{"KECIS §13.6", "KECIS §11.2"}, Needs: change, Run: publishedUnchanged(true)},
			{ID: "governance.not-routed", Title: "A request addressed to the pending endpoint is not routed: the hub answers it as addressed to no member (signed Requester / WrongDestination)",
				Clauses: []string{"KECIS §13.6", "KECIS §12.1", "KECIS §5.3.2"}, Needs: change, Run: notRouted},
			{ID: "governance.withdrawn", Title: "The tester withdraws the pending change by submitting its active metadata again",
				Clauses: []string{"KECIS §13.6"}, Severity: SeverityInfo, Run: withdrawChange},
		},
	}
}

// governanceState is what the module changed: the tester's active
// descriptor (as published), the change submitted, and its endpoint.
type governanceState struct {
	active   *metadata.EntityDescriptor
	original []byte
	endpoint string
	bin      string
	applied  bool // the hub applied the change at once
}

func getGovernance(c *C) *governanceState {
	v, _ := c.Get("governance")
	st, _ := v.(*governanceState)
	return st
}

// testerPublished is the tester's descriptor as the hub publishes it by
// Metadata Query, verified with the hub's signing certificates.
func (c *C) testerPublished() (*metadata.EntityDescriptor, error) {
	t, err := LoadTarget(c.Context(), MDQURL(c.Hub.URL, c.Tester.EntityID), c.Hub.SigningCerts, HubMetadataClient(c.Hub), c.Now())
	switch {
	case err != nil:
		return nil, fmt.Errorf("the tester's metadata from the hub: %w", err)
	case t.Descriptor == nil:
		return nil, fmt.Errorf("the tester's metadata from the hub does not read: %w", t.ParseErr)
	case !t.Signed:
		return nil, fmt.Errorf("the tester's metadata from the hub is not signed by it: %v", t.SignErr)
	case t.Descriptor.EntityID != c.Tester.EntityID:
		return nil, fmt.Errorf("the hub served %s for the tester %s", t.Descriptor.EntityID, c.Tester.EntityID)
	}
	return t.Descriptor, nil
}

// submittable is a published descriptor as its participant submits it:
// without what the hub adds when it signs (ID, validUntil, cacheDuration).
func submittable(ed *metadata.EntityDescriptor) ([]byte, error) {
	d := *ed
	d.ID, d.ValidUntil, d.CacheDuration = "", time.Time{}, 0
	return metadata.Marshal(&d)
}

// putMetadata submits md as the tester's own metadata to the hub's
// registry, with the tester's TLS client certificate.
func (c *C) putMetadata(md []byte) (int, []byte, error) {
	u := strings.TrimRight(c.Hub.URL, "/") + "/kecis/federation/participants?entity_id=" + url.QueryEscape(c.Tester.EntityID)
	req, err := http.NewRequestWithContext(c.Context(), http.MethodPut, u, bytes.NewReader(md))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", metadata.MediaType)
	resp, err := c.hubHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// changeBIN is the BIN the change claims: the profile's approve card's
// (the attack of finding 1 claimed the real issuer's), else a test BIN.
func (c *C) changeBIN() string {
	if c.Profile.Card != nil {
		if bin := ecml.PAN(c.Profile.Card.Approve.Number).BIN(); bin != "" {
			return bin
		}
	}
	return "940000"
}

func changePending(c *C) error {
	active, err := c.testerPublished()
	if err != nil {
		return NeedsReview("%v", err)
	}
	original, err := submittable(active)
	if err != nil {
		return err
	}
	st := &governanceState{active: active, original: original, bin: c.changeBIN(),
		endpoint: "https://pending-" + c.RunID + ".tester.invalid/kecis/soap"}
	if active.HasRole(metadata.RoleIssuer) {
		return NeedsReview("the tester already has the issuer role at the hub: the change would add nothing")
	}
	changed := *active
	changed.ID, changed.ValidUntil, changed.CacheDuration = "", time.Time{}, 0
	changed.Roles = append(slices.Clone(active.Roles), metadata.RoleIssuer)
	changed.Services = append(slices.Clone(active.Services), metadata.OfferedService{Service: svcApprove,
		BINs:    metadata.BINList{{From: st.bin, To: st.bin}},
		Callers: []metadata.Role{metadata.RoleMerchant, metadata.RolePG, metadata.RoleTester}})
	changed.Endpoints = append(slices.Clone(active.Endpoints), metadata.Endpoint{Service: svcApprove, Binding: saml.BindingSOAP, Location: st.endpoint})
	md, err := metadata.Marshal(&changed)
	if err != nil {
		return fmt.Errorf("the suite could not build the change: %w", err)
	}
	c.Note("the change: role issuer, %s for BIN %s (callers merchant, pg, tester), endpoint %s", svcApprove, st.bin, st.endpoint)
	c.Attach("metadata submitted", "xml", md)
	code, body, err := c.putMetadata(md)
	if err != nil {
		return NeedsReview("PUT of the tester's metadata: %v", err)
	}
	c.Attach(fmt.Sprintf("the hub's answer (HTTP %d)", code), "text", body)
	switch code {
	case http.StatusAccepted:
		c.Set("governance", st)
		var v struct {
			PendingChange struct {
				ID         string   `json:"id"`
				AddedRoles []string `json:"added_roles"`
			} `json:"pending_change"`
		}
		if json.Unmarshal(body, &v) == nil && v.PendingChange.ID != "" {
			c.Note("pending change %s; added roles %v", v.PendingChange.ID, v.PendingChange.AddedRoles)
		}
		return nil
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		st.applied = true
		c.Set("governance", st)
		return fmt.Errorf("the hub applied the change at once (HTTP %d): a participant made itself an issuer of BIN %s without an operator", code, st.bin)
	case http.StatusForbidden:
		return NeedsReview("the hub did not take the tester's TLS client certificate as the tester's (HTTP 403): %s", firstLineOf(body))
	}
	return fmt.Errorf("HTTP %d, not 202 (a pending version): %s", code, firstLineOf(body))
}

func firstLineOf(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// widened lists what of the change a published descriptor shows.
func widened(ed *metadata.EntityDescriptor, st *governanceState) []string {
	var out []string
	if ed.HasRole(metadata.RoleIssuer) {
		out = append(out, "the issuer role")
	}
	if svc, ok := ed.Offers(svcApprove); ok && !slices.ContainsFunc(st.active.Services, func(s metadata.OfferedService) bool { return s.Service == svcApprove }) {
		out = append(out, fmt.Sprintf("%s (BINs %v)", svcApprove, svc.BINs))
	}
	for _, e := range ed.Endpoints {
		if e.Location == st.endpoint {
			out = append(out, "the endpoint "+e.Location)
		}
	}
	return out
}

func publishedUnchanged(aggregate bool) func(c *C) error {
	return func(c *C) error {
		st := getGovernance(c)
		if !aggregate {
			ed, err := c.testerPublished()
			if err != nil {
				return err
			}
			if w := widened(ed, st); len(w) > 0 {
				return fmt.Errorf("the hub publishes the pending change as the tester's: %s", strings.Join(w, ", "))
			}
			c.Note("the tester as published: roles %v, %d services, %d endpoints", ed.Roles, len(ed.Services), len(ed.Endpoints))
			return nil
		}
		u := strings.TrimRight(c.Hub.URL, "/") + metadata.AggregatePath
		raw, err := fetch(c.Context(), u, HubMetadataClient(c.Hub))
		if err != nil {
			return NeedsReview("the aggregate: %v", err)
		}
		a, err := metadata.VerifyAggregate(raw, c.Hub.SigningCerts, c.Now())
		if err != nil {
			return fmt.Errorf("the aggregate does not verify with the hub's signing certificates: %w", err)
		}
		ed, ok := a.Entity(c.Tester.EntityID)
		if !ok {
			return NeedsReview("the aggregate (%d participants) does not list the tester", len(a.Entities))
		}
		var errs []error
		if w := widened(ed, st); len(w) > 0 {
			errs = append(errs, fmt.Errorf("the aggregate publishes the pending change as the tester's: %s", strings.Join(w, ", ")))
		}
		for _, o := range a.Entities {
			if o.EntityID == c.Tester.EntityID {
				continue
			}
			for _, e := range o.Endpoints {
				if e.Location == st.endpoint {
					errs = append(errs, fmt.Errorf("%s publishes the pending endpoint %s", o.EntityID, e.Location))
				}
			}
		}
		if bin := st.bin; len(errs) == 0 {
			var issuers []string
			for _, o := range a.Entities {
				if svc, ok := o.Offers(svcApprove); ok && o.HasRole(metadata.RoleIssuer) && svc.BINs.Contains(bin) {
					issuers = append(issuers, o.EntityID)
				}
			}
			c.Note("the aggregate: %d participants; issuers of BIN %s: %v", len(a.Entities), bin, issuers)
		}
		return errors.Join(errs...)
	}
}

func notRouted(c *C) error {
	st := getGovernance(c)
	b := &saml.Builder{Issuer: c.Tester.EntityID, Now: c.now}
	req, err := b.NewRequest(st.endpoint, svcApprove)
	if err != nil {
		return err
	}
	req.IdempotencyKey = c.Key("governance-route")
	req.Routing = &saml.Routing{CardBIN: st.bin}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: c.OrderID("governance-route")}}
	x, err := c.Exchange(c.Context(), "addressed to the pending endpoint, through the hub", ViaHub, req, Seal{NoEncrypt: true})
	if err != nil {
		return err
	}
	c.Record(x)
	if x.Response != nil && x.Response.Issuer == c.Hub.EntityID && x.Response.Status.SubCode != saml.CodeWrongDestination {
		return fmt.Errorf("the hub answered %s, not WrongDestination: it knows the pending endpoint as a member's, so the change is in force", describeStatus(x.Response.Status))
	}
	return hubStatus(c, x, saml.StatusRequester, saml.CodeWrongDestination)
}

func withdrawChange(c *C) error {
	st := getGovernance(c)
	if st == nil {
		return Skip("no change was made")
	}
	c.Attach("metadata submitted (the active version)", "xml", st.original)
	code, body, err := c.putMetadata(st.original)
	if err != nil {
		return NeedsReview("the change could not be withdrawn (PUT: %v): an operator must reject the pending change of %s", err, c.Tester.EntityID)
	}
	c.Attach(fmt.Sprintf("the hub's answer (HTTP %d)", code), "text", body)
	var v struct {
		Withdrawn     string          `json:"withdrawn_change"`
		PendingChange json.RawMessage `json:"pending_change"`
	}
	_ = json.Unmarshal(body, &v)
	switch {
	case code == http.StatusOK && st.applied:
		c.Note("the tester's active metadata is restored")
	case code == http.StatusOK && v.Withdrawn != "":
		c.Note("the hub withdrew the pending change %s", v.Withdrawn)
	case code == http.StatusOK && len(v.PendingChange) == 0:
		c.Note("the hub took the active metadata back; its answer names no pending change")
	default:
		return NeedsReview("the hub did not withdraw the change (HTTP %d: %s): the pending version is left for an operator to reject", code, firstLineOf(body))
	}
	ed, err := c.testerPublished()
	if err != nil {
		return NeedsReview("%v", err)
	}
	if w := widened(ed, st); len(w) > 0 {
		return fmt.Errorf("after the withdrawal the hub publishes %s as the tester's", strings.Join(w, ", "))
	}
	return nil
}
