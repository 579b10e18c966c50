package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const metadataContentType = "application/samlmetadata+xml"

// aggregateTTL bounds how long a built aggregate is reused before the
// registry is read again (other replicas may have changed it).
const aggregateTTL = 5 * time.Second

func (s *Server) aggregateDoc(ctx context.Context) ([]byte, time.Time, error) {
	s.mdMu.Lock()
	defer s.mdMu.Unlock()
	now := s.now()
	validity := s.Config.Metadata.Validity.D()
	if a := s.aggregate; a.body != nil && now.Sub(a.builtAt) < aggregateTTL && now.Before(a.validUntil.Add(-validity/2)) {
		return a.body, a.validUntil, nil
	}
	ps, err := s.Store.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
	if err != nil {
		return nil, time.Time{}, err
	}
	var key strings.Builder
	counts := map[store.Status]float64{}
	for _, p := range ps {
		fmt.Fprintf(&key, "%s@%d;", p.EntityID, p.Version)
		counts[p.Status]++
	}
	s.Metrics.Participants.WithLabelValues(string(store.StatusActive)).Set(counts[store.StatusActive])
	if a := s.aggregate; a.body != nil && a.key == key.String() && now.Before(a.validUntil.Add(-validity/2)) {
		s.aggregate.builtAt = now
		return a.body, a.validUntil, nil
	}
	start := time.Now()
	validUntil := now.Add(validity)
	body, err := s.Publisher.Aggregate(ps, validUntil, s.Config.Metadata.CacheDuration.D())
	if err != nil {
		return nil, time.Time{}, err
	}
	s.Metrics.MetadataBuilds.WithLabelValues("aggregate").Observe(time.Since(start).Seconds())
	s.aggregate = cachedDoc{body: body, key: key.String(), validUntil: validUntil, builtAt: now}
	return body, validUntil, nil
}

func (s *Server) getAggregate(c *gin.Context) {
	body, _, err := s.aggregateDoc(c.Request.Context())
	if err != nil {
		s.fail(c, ProblemMetadataUnavailable.WithCause(fmt.Errorf("metadata aggregate: %w", err)))
		return
	}
	s.writeMetadata(c, body)
}

func (s *Server) writeMetadata(c *gin.Context, body []byte) {
	c.Header("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.Config.Metadata.CacheDuration.D().Seconds())))
	c.Data(http.StatusOK, metadataContentType, body)
}

// getEntity serves one participant's descriptor, signed by the hub on its
// own (the Metadata Query protocol). Suspended and removed participants are
// not served.
func (s *Server) getEntity(c *gin.Context) {
	seg := strings.TrimPrefix(c.Param("id"), "/")
	id, err := s.Publisher.DecodeID(seg, func() ([]string, error) {
		ps, err := s.Store.ListParticipants(c.Request.Context(), store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
		ids := make([]string, 0, len(ps)+1)
		if pub, ok := s.Publisher.(*MetadataPublisher); ok && pub.Hub != nil {
			ids = append(ids, pub.Hub.EntityID) // served below like any participant's, in either form
		}
		for _, p := range ps {
			ids = append(ids, p.EntityID)
		}
		return ids, err
	})
	if err != nil {
		s.fail(c, ProblemUnknownEntity.WithCause(err))
		return
	}
	if pub, ok := s.Publisher.(*MetadataPublisher); ok && pub.Hub != nil && id == pub.Hub.EntityID {
		s.serveHubEntity(c, pub)
		return
	}
	p, err := s.Store.GetParticipant(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.Status != store.StatusActive) {
		s.fail(c, ProblemUnknownEntity)
		return
	}
	if err != nil {
		s.fail(c, ProblemMetadataUnavailable.WithCause(fmt.Errorf("metadata entity: %w", err)))
		return
	}
	now := s.now()
	validity := s.Config.Metadata.Validity.D()
	key := fmt.Sprintf("%d", p.Version)
	s.mdMu.Lock()
	doc, ok := s.entities[id]
	s.mdMu.Unlock()
	if !ok || doc.key != key || !now.Before(doc.validUntil.Add(-validity/2)) {
		start := time.Now()
		validUntil := now.Add(validity)
		body, err := s.Publisher.Entity(p, validUntil, s.Config.Metadata.CacheDuration.D())
		if err != nil {
			s.fail(c, ProblemMetadataUnavailable.WithCause(fmt.Errorf("metadata entity %s: %w", id, err)))
			return
		}
		s.Metrics.MetadataBuilds.WithLabelValues("entity").Observe(time.Since(start).Seconds())
		doc = cachedDoc{body: body, key: key, validUntil: validUntil, builtAt: now}
		s.mdMu.Lock()
		s.entities[id] = doc
		s.mdMu.Unlock()
	}
	s.writeMetadata(c, doc.body)
}

// readBody reads the request body under the limit limitBody set; when it
// cannot, it has answered.
func (s *Server) readBody(c *gin.Context) ([]byte, bool) {
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, httpserver.BodyProblem(err))
		return nil, false
	}
	return b, true
}

// register: POST /kecis/federation/participants with the participant's
// metadata; the TLS client certificate must be one it publishes.
func (s *Server) register(c *gin.Context) {
	if !s.Config.OpenRegistration {
		s.fail(c, ProblemRegistrationClosed)
		return
	}
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	p, err := s.Registry.Register(c.Request.Context(), body, saml.ClientCertFingerprint(c.Request))
	if err != nil {
		s.fail(c, registryProblem(err))
		return
	}
	c.JSON(http.StatusCreated, participantView(p, false))
}

// updateOwnMetadata: PUT /kecis/federation/participants?entity_id=…, the
// participant replacing its own metadata (KECIS §12.6, §13.6). A
// self-service change (keys, endpoints, name, organization, contacts)
// applies at once: 200 with the participant and the diff. A change of what
// the participant is trusted with becomes a pending version: 202 with the
// diff, and the active version stays in force until an operator decides.
func (s *Server) updateOwnMetadata(c *gin.Context) {
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	entityID := c.Query("entity_id")
	res, err := s.Registry.UpdateMetadata(c.Request.Context(), entityID, body, saml.ClientCertFingerprint(c.Request))
	if err != nil {
		s.fail(c, registryProblem(err))
		return
	}
	p := res.Participant
	if res.Pending {
		v := gin.H{
			"entity_id": p.EntityID, "status": p.Status, "version": p.Version,
			"pending_change": pendingView(p, res.Diff),
			"message":        "the change alters what the participant is trusted with: it awaits an operator's approval, and the active version stays in force until then",
		}
		if res.Replaced != "" {
			v["replaced_change"] = res.Replaced
		}
		c.JSON(http.StatusAccepted, v)
		return
	}
	s.invalidate(entityID)
	s.Directory.Invalidate()
	v := participantView(p, false)
	v["diff"] = orEmpty(res.Diff.Lines())
	if res.Replaced != "" {
		v["withdrawn_change"] = res.Replaced
	}
	c.JSON(http.StatusOK, v)
}

// pendingView is a pending change as the APIs show it: its ID, when it was
// requested, and the diff against the active version (trust changes
// first; keys by fingerprint).
func pendingView(p *store.Participant, d *metadata.Diff) gin.H {
	v := gin.H{"id": registry.ChangeID(p.Pending), "requested_at": p.Pending.RequestedAt, "awaits": "operator approval"}
	if d != nil {
		v["diff"] = orEmpty(d.Lines())
		v["added_roles"] = orEmpty(d.AddedRoles)
		v["added_services"] = orEmpty(d.AddedServices)
	}
	return v
}

func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

func (s *Server) listParticipants(c *gin.Context) {
	var f store.ParticipantFilter
	if st := c.Query("status"); st != "" {
		f.Status = []store.Status{store.Status(st)}
	}
	ps, err := s.Store.ListParticipants(c.Request.Context(), f)
	if err != nil {
		s.fail(c, registryProblem(err))
		return
	}
	out := make([]gin.H, 0, len(ps))
	for _, p := range ps {
		out = append(out, participantView(p, false))
	}
	c.JSON(http.StatusOK, gin.H{"participants": out})
}

func (s *Server) showParticipant(c *gin.Context) {
	p, err := s.Store.GetParticipant(c.Request.Context(), c.Query("entity_id"))
	if err != nil {
		s.fail(c, registryProblem(err))
		return
	}
	v := participantView(p, true)
	if p.Pending != nil {
		d, err := s.Registry.PendingDiff(p)
		if err != nil {
			s.Log.ErrorContext(c.Request.Context(), "pending change", "entity", p.EntityID, "err", err)
			d = &metadata.Diff{Changes: []metadata.Change{{Op: metadata.Changed, Text: "the pending metadata does not parse: " + err.Error(), Trust: true}}}
		}
		pv := pendingView(p, d)
		pv["metadata"] = string(p.Pending.Metadata)
		v["pending_change"] = pv
	}
	c.JSON(http.StatusOK, v)
}

// recordConformance: POST /kecis/admin/participants/conformance?entity_id=
// with a conformance suite's report.json (operator). The report is kept
// in the audit log; the answer says whether it opens the registration
// gate (409 conformance when it does not).
func (s *Server) recordConformance(c *gin.Context) {
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	entityID := c.Query("entity_id")
	rep, err := s.Registry.RecordConformance(c.Request.Context(), entityID, c.GetString("operator"), body)
	if err != nil {
		s.fail(c, registryProblem(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"entity_id": entityID, "plan": rep.Plan, "passed": rep.Passed, "summary": rep.Summary,
		"run_id": rep.RunID, "finished": rep.Finished, "gate": "open"})
}

// transitionRequest is the body of an operator action (KECIS §12.6).
type transitionRequest struct {
	EntityID string `json:"entity_id" binding:"required"`
	Reason   string `json:"reason"`
	// AllowOverlap: approve, reinstate, approve-change accept overlapping
	// claims of these participants (with a reason).
	AllowOverlap []string `json:"allow_overlap"`
	// Change: approve-change and reject-change decide this pending change
	// only (its ID, as show lists it).
	Change string `json:"change"`
}

func (s *Server) transition(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req transitionRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			s.fail(c, httpserver.ProblemBadRequest.WithDetail("a JSON body with entity_id is required").WithCause(err))
			return
		}
		p, err := s.Registry.Decide(c.Request.Context(), registry.Decision{EntityID: req.EntityID, Action: action,
			Operator: c.GetString("operator"), Reason: req.Reason, AllowOverlap: req.AllowOverlap, Change: req.Change})
		if err != nil {
			s.fail(c, registryProblem(err))
			return
		}
		s.invalidate(req.EntityID)
		s.Directory.Invalidate()
		c.JSON(http.StatusOK, participantView(p, false))
	}
}

func (s *Server) invalidate(entityID string) {
	s.mdMu.Lock()
	defer s.mdMu.Unlock()
	delete(s.entities, entityID)
	s.aggregate = cachedDoc{}
}

func participantView(p *store.Participant, full bool) gin.H {
	keys := make([]gin.H, 0, len(p.Keys))
	for _, k := range p.Keys {
		keys = append(keys, gin.H{"use": k.Use, "sha256": k.Fingerprint, "not_after": k.NotAfter})
	}
	v := gin.H{
		"entity_id": p.EntityID, "display_name": p.DisplayName, "roles": p.Roles, "status": p.Status,
		"version": p.Version, "created_at": p.CreatedAt, "updated_at": p.UpdatedAt, "keys": keys,
	}
	if p.Pending != nil {
		v["pending_change"] = gin.H{"id": registry.ChangeID(p.Pending), "requested_at": p.Pending.RequestedAt}
	}
	if full {
		eps := make([]gin.H, 0, len(p.Endpoints))
		for _, e := range p.Endpoints {
			eps = append(eps, gin.H{"service": e.Service, "binding": e.Binding, "url": e.URL, "priority": e.Priority})
		}
		v["endpoints"] = eps
		svcs := make([]gin.H, 0, len(p.Services))
		for _, sv := range p.Services {
			svcs = append(svcs, gin.H{"service": sv.Service, "currencies": sv.Currencies, "min_amount": sv.MinAmount,
				"max_amount": sv.MaxAmount, "bin_ranges": sv.BINRanges, "bank_codes": sv.BankCodes})
		}
		v["services"] = svcs
		v["metadata"] = string(p.Metadata)
	}
	return v
}

// serveHubEntity serves the hub's own descriptor by MDQ.
func (s *Server) serveHubEntity(c *gin.Context, pub *MetadataPublisher) {
	h := *pub.Hub
	h.ValidUntil, h.CacheDuration = s.now().Add(s.Config.Metadata.Validity.D()), s.Config.Metadata.CacheDuration.D()
	body, err := metadata.SignEntity(&h, s.Signer)
	if err != nil {
		s.fail(c, ProblemMetadataUnavailable.WithCause(fmt.Errorf("hub descriptor: %w", err)))
		return
	}
	s.writeMetadata(c, body)
}

// RegistryChanged drops what this replica cached of the registry (the
// metadata it serves, the router's directory): for changes made to the
// store directly, as the demo does when it registers its participants.
func (s *Server) RegistryChanged() {
	s.mdMu.Lock()
	s.entities = map[string]cachedDoc{}
	s.aggregate = cachedDoc{}
	s.mdMu.Unlock()
	s.Directory.Invalidate()
}
