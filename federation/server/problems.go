package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
)

// The problems the hub's own endpoints answer (KECIS §12.4): metadata,
// registration and the operator API. Those of a request's form are
// connectors/httpserver's (bad-request, too-large, unreadable,
// rate-limited), as for the JSON facade (federation/facade), so that each
// type has one title; an error that is none of these is
// httpserver.ProblemInternal, its cause logged and nothing of it sent.
var (
	ProblemNotFound = httpserver.NewProblem("not-found", http.StatusNotFound,
		"no such endpoint")
	ProblemUnknownEntity = httpserver.NewProblem("unknown-entity", http.StatusNotFound,
		"no such participant")
	ProblemRegistrationClosed = httpserver.NewProblem("registration-closed", http.StatusForbidden,
		"registration is closed on this hub; ask the operator")
	ProblemNotAnOperator = httpserver.NewProblem("not-an-operator", http.StatusForbidden,
		"an operator's TLS client certificate is required")
	ProblemInvalidMetadata = httpserver.NewProblem("invalid-metadata", http.StatusBadRequest,
		"the metadata is not valid KECIS metadata")
	ProblemNotOwner = httpserver.NewProblem("not-owner", http.StatusForbidden,
		"the request must come with a TLS client certificate the metadata publishes")
	ProblemInvalidReport = httpserver.NewProblem("invalid-report", http.StatusBadRequest,
		"that is not a conformance report of this participant")
	ProblemConformance = httpserver.NewProblem("conformance", http.StatusConflict,
		"no passing conformance report opens the registration gate")
	ProblemTransition = httpserver.NewProblem("transition", http.StatusConflict,
		"that change is not allowed in the participant's state")
	ProblemOverlap = httpserver.NewProblem("overlap", http.StatusConflict,
		"the participant's claim overlaps an active participant's (one issuer per BIN, one bank per bank code)")
	ProblemStaleChange = httpserver.NewProblem("stale-change", http.StatusConflict,
		"the pending change is not the one reviewed")
	ProblemExists = httpserver.NewProblem("exists", http.StatusConflict,
		"the participant is already registered")
	ProblemConcurrentUpdate = httpserver.NewProblem("concurrent-update", http.StatusConflict,
		"the participant changed meanwhile; try again")
)

// ProblemMetadataUnavailable is httpserver's: the sidecar's caller answers
// it too, with the same title.
var ProblemMetadataUnavailable = httpserver.ProblemMetadataUnavailable

// registryProblems maps the registry's and the store's errors to answers.
// With reason, the answer's detail is the registry's own sentence: it
// tells the participant or the operator what to fix (names, versions,
// fingerprints and URLs of the participant's own metadata, never a secret).
var registryProblems = []struct {
	err    error
	p      *httpserver.Problem
	reason bool
}{
	{registry.ErrInvalidMetadata, ProblemInvalidMetadata, true},
	{registry.ErrNotOwner, ProblemNotOwner, false},
	{registry.ErrInvalidReport, ProblemInvalidReport, true},
	{registry.ErrConformance, ProblemConformance, true},
	{registry.ErrTransition, ProblemTransition, true},
	{registry.ErrOverlap, ProblemOverlap, true},
	{registry.ErrStaleChange, ProblemStaleChange, true},
	// An operator action without its entity_id, or without the reason or
	// change it needs: the registry's reason names what is missing.
	{registry.ErrDecision, httpserver.ProblemBadRequest, true},
	{store.ErrExists, ProblemExists, false},
	{store.ErrNotFound, ProblemUnknownEntity, false},
	{store.ErrConflict, ProblemConcurrentUpdate, false},
}

// registryProblem is the answer to an error of the registry or the store:
// its problem with the error as the cause; 503 unavailable with
// Retry-After when the database cannot answer for now (KECIS §12.8: a
// restart or a failover, retry shortly); else ProblemInternal.
func registryProblem(err error) *httpserver.Problem {
	if store.IsUnavailable(err) {
		return httpserver.ProblemUnavailable.WithRetryAfter(facade.RetryAfterUnavailable).WithCause(err)
	}
	for _, m := range registryProblems {
		if errors.Is(err, m.err) {
			p := m.p.WithCause(err)
			if m.reason {
				p = p.WithDetail(err.Error())
			}
			return p
		}
	}
	return httpserver.ProblemInternal.WithCause(err)
}

// fail answers a request with the problem err is (httpserver.AsProblem:
// an error that is no Problem is ProblemInternal) and logs it: its type,
// status, detail and private cause, card numbers redacted. A server error
// logs at ERROR, a refused identity at WARN, any other refusal at INFO.
func (s *Server) fail(c *gin.Context, err error) {
	c.Abort()
	var p *httpserver.Problem
	if !errors.As(err, &p) && store.IsUnavailable(err) {
		err = registryProblem(err)
	}
	httpserver.Fail(c.Request.Context(), c.Writer, s.Log, "hub refused", err,
		slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path))
}
