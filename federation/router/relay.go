package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Outcome of a relayed exchange.
type Outcome int

const (
	// OutcomeUnavailable: not delivered, or answered unverifiably.
	OutcomeUnavailable Outcome = iota
	// OutcomePending: delivered (perhaps), no answer in time.
	OutcomePending
	// OutcomeAnswered: the recipient's verified answer.
	OutcomeAnswered
	// OutcomeRefused: the hub refused: its idempotency guard (conflict, in
	// flight), a replay, or its payment policy (PolicyViolation, KECIS
	// §12.9; Result.Decision says why).
	OutcomeRefused
)

// Result of Relay. Status is the recipient's verified status when
// Answered, else the status the hub answers with.
type Result struct {
	Outcome  Outcome
	Status   saml.Status
	Response *saml.ServiceResponse // when Answered: the verified response
	Body     []byte                // when Answered: the HTTP body to pass on unchanged
	Msg      []byte                // when Answered: the KECIS message inside it
	// Decision is the payment policy's decision (KECIS §12.9), when the
	// hub has a policy and got as far as deciding.
	Decision *policy.Decision
}

// hubUnavailable is the status of a request the hub could not record
// before forwarding it — its database failed or refused the write —:
// nothing was forwarded; the sender retries with the same idempotency key
// (KECIS §12.8).
var hubUnavailable = saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeHubUnavailable,
	Message: "the hub is temporarily unable to record the request; nothing was forwarded: retry with the same idempotency key"}

// RelayOption adds to what Relay writes.
type RelayOption func(*relayWrites)

// relayWrites is what the caller hands to Relay's first commit.
type relayWrites struct {
	remember    []store.ReplayEntry
	audit       []*store.AuditRecord
	authResults []*saml.AuthenticationResult // verified: WithAuthResults
}

// WithAudit has Relay commit recs in its first commit, the one that
// claims the idempotency key before it forwards (KECIS §12.3): the
// caller's record of the request — the JSON facade's, of how the hub
// authenticated the merchant and the request it signed — costs no commit
// of its own, and exists whenever the request was forwarded. Relay sets
// their IDs when they are stored; a request refused by the idempotency
// guard is audited too.
func WithAudit(recs ...*store.AuditRecord) RelayOption {
	return func(w *relayWrites) { w.audit = append(w.audit, recs...) }
}

// withRemember has Relay's first commit record the received request's
// message IDs in the replay cache; an ID already live refuses the request
// as a replay and nothing of the commit is written.
func withRemember(es ...store.ReplayEntry) RelayOption {
	return func(w *relayWrites) { w.remember = append(w.remember, es...) }
}

// Relay applies the payment policy (KECIS §12.9, Config.Policy) and the
// idempotency guard to a verified, authorized request and forwards soapBody
// (the request's SOAP HTTP body, unchanged) to dest; it audits the answer.
// It is shared by the SOAP endpoint and the JSON facade. A request the
// policy refuses is not forwarded: its first commit holds what opts hand
// it and the decision's policy.decision record, and claims no key; the
// result is OutcomeRefused with Responder / PolicyViolation and the
// refusing rule's message (Result.Decision).
//
// What it writes costs the store two commits (KECIS §12.3): before it
// forwards, one with the idempotency claim and what opts hand it (the
// received request's replay record and audit records); after, one with the
// provider's answer's replay record, the release of the key (done when
// answered) and the answer's audit record, and a bounded pruning of
// expired rows. An answer is passed on only once that second commit
// holds: when it fails, the sender is told Pending and a retry with the
// same key is forwarded again once the lease has expired — the provider,
// the authority, answers it with the original outcome (§7.1).
func (rt *Router) Relay(ctx context.Context, req *saml.ServiceRequest, dest *Entry, soapBody []byte, opts ...RelayOption) *Result {
	var in relayWrites
	for _, o := range opts {
		o(&in)
	}
	rt.ensureSnapshot(ctx, dest)
	if sender, err := rt.dir.ByID(ctx, req.Issuer); err == nil {
		rt.ensureSnapshot(ctx, sender)
	}
	if req.OnBehalfOf != "" {
		if m, err := rt.dir.ByID(ctx, req.OnBehalfOf); err == nil {
			rt.ensureSnapshot(ctx, m)
		}
	}
	// The payment policy (KECIS §12.9) decides before the idempotency
	// claim: a refused request claims no key — the merchant may send the
	// corrected request (escrow instead of a collect, with the
	// authentication result it lacked) under the same one — and its
	// decision is committed with the request's records.
	decision, rec, err := rt.decide(ctx, req, dest.P.EntityID, in.authResults)
	if err != nil {
		rt.log.ErrorContext(ctx, "policy: the directory could not answer", "err", err, "unavailable", store.IsUnavailable(err))
		return &Result{Outcome: OutcomeUnavailable, Status: hubUnavailable}
	}
	if rec != nil {
		in.audit = append(in.audit, rec)
	}
	refused := decision != nil && !decision.Allowed
	now := rt.now()
	first := &store.Writes{Now: now, Remember: in.remember, Audit: in.audit}
	var scope, owner string
	if req.IdempotencyKey != "" && !refused {
		scope = saml.IdemScope(req.Issuer, req.OnBehalfOf)
		owner = rt.cfg.ReplicaID + "/" + req.ID
		first.Claim = &store.IdemClaim{Scope: scope, Key: req.IdempotencyKey, Fingerprint: rt.fingerprint(req, dest.P.EntityID),
			Owner: owner, RequestID: req.ID, LeaseUntil: now.Add(rt.cfg.Timeout + rt.cfg.LeaseGrace)}
	}
	if !first.Empty() {
		c, err := rt.st.Commit(ctx, first)
		switch {
		case errors.Is(err, store.ErrAlreadySeen):
			e := saml.ErrReplay.WithCausef("ID %q from %q", req.ID, req.Issuer)
			if rt.metrics != nil {
				rt.metrics.Refusals.WithLabelValues(e.Reason, e.Stage.String()).Inc()
			}
			rt.log.WarnContext(ctx, "kecis message refused", "refusal", e)
			return &Result{Outcome: OutcomeRefused, Status: e.StatusValue()}
		case err != nil:
			// The hub's own database failed: nothing was forwarded, and
			// the provider, which is not to blame, keeps its breaker
			// (KECIS §12.8).
			rt.log.ErrorContext(ctx, "store: the request's commit", "err", err, "unavailable", store.IsUnavailable(err))
			return &Result{Outcome: OutcomeUnavailable, Status: hubUnavailable, Decision: decision}
		}
		rt.countDecision(decision)
		if first.Claim != nil {
			if rt.metrics != nil {
				rt.metrics.IdemHits.WithLabelValues(string(c.Claim)).Inc()
			}
			if st, refused := c.Claim.Refusal(); refused {
				return &Result{Outcome: OutcomeRefused, Status: st, Decision: decision}
			}
		}
	}
	if refused {
		rt.log.InfoContext(ctx, "refused by the payment policy", "rule", decision.RefusedBy, "service", req.Service,
			"caller", metadata.Caller(req.Issuer, req.OnBehalfOf), "request", req.ID)
		return &Result{Outcome: OutcomeRefused, Status: decision.Status(), Decision: decision}
	}
	ans, out := rt.forward(ctx, req, dest, soapBody)
	if recorded := rt.commitAnswer(ctx, req, dest, scope, owner, ans, out); recorded != out {
		if out == OutcomeAnswered && recorded == OutcomePending {
			return &Result{Outcome: OutcomePending, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending,
				Message: "the hub could not record the provider's answer; ask with the service's inquire, or retry with the same idempotency key"}}
		}
		out = recorded
	}
	switch out {
	case OutcomeAnswered:
		rt.count(req.Service, ans.status)
		return &Result{Outcome: out, Status: *ans.status, Response: ans.resp, Body: ans.body, Msg: ans.msg, Decision: decision}
	case OutcomePending:
		return &Result{Outcome: out, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending,
			Message: "the provider has not answered; ask with the service's inquire, or retry with the same idempotency key"}}
	default:
		return &Result{Outcome: OutcomeUnavailable, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable,
			Message: "the provider is unavailable"}}
	}
}

// commitAnswer is Relay's second commit: the answer's replay record and
// audit record with the release of the key (done), or, without an
// answer, the release alone (the lease cleared: a timeout is never an
// outcome); and the bounded pruning. It returns the outcome the sender
// may be told: out, except that an answer that could not be recorded is
// Pending (nothing is passed on that the store does not hold), and an
// answer whose message ID is already in the replay cache — not the
// provider's answer to this request — is ProviderUnavailable, its key
// released retryable.
func (rt *Router) commitAnswer(ctx context.Context, req *saml.ServiceRequest, dest *Entry, scope, owner string, ans *answer, out Outcome) Outcome {
	ctx = context.WithoutCancel(ctx) // the exchange happened: record it
	w := &store.Writes{Now: rt.now(), Prune: rt.prune()}
	if scope != "" {
		w.Release = &store.IdemRelease{Scope: scope, Key: req.IdempotencyKey, Owner: owner, State: store.IdemInFlight}
	}
	if out == OutcomeAnswered {
		if w.Release != nil {
			w.Release.State = store.IdemDone
		}
		w.Remember = ans.remember
		w.Audit = []*store.AuditRecord{rt.auditRecord("message.out", req, dest.P.EntityID, ans.msg, ans.status)}
	}
	if w.Empty() {
		return out
	}
	c, err := rt.st.Commit(ctx, w)
	if errors.Is(err, store.ErrAlreadySeen) && out == OutcomeAnswered {
		rt.log.WarnContext(ctx, "provider's answer does not verify", "provider", dest.P.EntityID,
			"refusal", saml.ErrReplay.WithCausef("the answer's ID %v was seen before", ans.remember))
		out = OutcomeUnavailable
		w.Remember, w.Audit = nil, nil
		if w.Release == nil {
			return out
		}
		w.Release.State = store.IdemInFlight
		c, err = rt.st.Commit(ctx, w)
	}
	if err != nil {
		rt.log.ErrorContext(ctx, "store: the answer's commit", "err", err)
		if out == OutcomeAnswered {
			return OutcomePending
		}
		return out
	}
	if c.ReleaseErr != nil {
		rt.log.WarnContext(ctx, "idempotency release", "err", c.ReleaseErr)
	}
	return out
}

// prune is the clean-up each answer's commit does (store.Prune): expired
// replay records, and idempotency entries idle for cfg.IdemRetention.
func (rt *Router) prune() *store.Prune {
	if rt.cfg.PruneLimit <= 0 {
		return nil
	}
	return &store.Prune{Limit: rt.cfg.PruneLimit, IdemBefore: rt.now().Add(-rt.cfg.IdemRetention)}
}

type answer struct {
	remember []store.ReplayEntry // its message ID, for the replay cache
	body     []byte              // the HTTP body to pass on unchanged
	msg      []byte              // the KECIS message inside it
	status   *saml.Status
	resp     *saml.ServiceResponse
}

// forward sends the HTTP body unchanged to the recipient's endpoints, in
// priority order, moving on only when the connection failed before the
// request was delivered; the ciphertext is for this participant's key, so
// no other participant is ever tried.
func (rt *Router) forward(ctx context.Context, req *saml.ServiceRequest, dest *Entry, body []byte) (*answer, Outcome) {
	eps := dest.D.EndpointsFor(req.Service, saml.BindingSOAP)
	if len(eps) == 0 {
		rt.log.WarnContext(ctx, "no SOAP endpoint", "provider", dest.P.EntityID, "service", req.Service)
		return nil, OutcomeUnavailable
	}
	hc := rt.client(dest)
	sender := ctx
	ctx, cancel := context.WithTimeout(ctx, rt.cfg.Timeout)
	defer cancel()
	// failed is what an endpoint's breaker records for a failed exchange:
	// nothing when the sender went away, which says nothing of the provider.
	failed := func() error {
		if sender.Err() != nil {
			return errNotCounted
		}
		return errExchange
	}
	for _, ep := range eps {
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Location, bytes.NewReader(body))
		if err != nil {
			continue
		}
		hr.Header.Set("Content-Type", "text/xml; charset=utf-8")
		hr.Header.Set("SOAPAction", saml.SOAPAction)
		// An open breaker skips the endpoint at once: the request is not
		// delivered there, as when the dial fails (KECIS §12.1.1).
		done, ok := rt.breakers.allow(dest.P.EntityID, ep.Location)
		if !ok {
			rt.log.DebugContext(ctx, "circuit breaker open, endpoint skipped", "provider", dest.P.EntityID, "url", ep.Location)
			continue
		}
		start := time.Now()
		resp, err := hc.Do(hr)
		if err != nil {
			done(failed())
			if undelivered(err) {
				rt.log.WarnContext(ctx, "endpoint unreachable, trying the next", "provider", dest.P.EntityID, "url", ep.Location, "err", err)
				continue
			}
			rt.log.WarnContext(ctx, "no answer from provider", "provider", dest.P.EntityID, "url", ep.Location, "err", err)
			return nil, OutcomePending
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, int64(rt.limits().MaxBytes)+8192))
		resp.Body.Close()
		if rt.metrics != nil {
			rt.metrics.RelayLatency.WithLabelValues(dest.P.EntityID).Observe(time.Since(start).Seconds())
		}
		if err != nil {
			done(failed())
			return nil, OutcomePending
		}
		a, ok := rt.checkAnswer(ctx, req, dest, rb)
		if !ok {
			if resp.StatusCode == http.StatusTooManyRequests {
				// The provider limits the hub's rate: it is there, and
				// asks for fewer requests, not none.
				done(errNotCounted)
			} else {
				done(failed())
			}
			return nil, OutcomeUnavailable
		}
		done(nil)
		return a, OutcomeAnswered
	}
	return nil, OutcomeUnavailable
}

// checkAnswer verifies the provider's answer before passing it on: a SOAP
// fault (the provider refused before verifying, say after a key rollover it
// has not seen) or an unverifiable response becomes ProviderUnavailable.
func (rt *Router) checkAnswer(ctx context.Context, req *saml.ServiceRequest, dest *Entry, body []byte) (*answer, bool) {
	msg, err := saml.UnwrapSOAP(body, rt.limits())
	if err != nil {
		var f *saml.Fault
		if errors.As(err, &f) {
			rt.log.WarnContext(ctx, "provider answered with a fault", "provider", dest.P.EntityID, "fault", f.String)
		} else {
			rt.log.WarnContext(ctx, "unreadable answer", "provider", dest.P.EntityID, "err", err)
		}
		return nil, false
	}
	pending := saml.NewMemoryPending(rt.now)
	_ = pending.Add(ctx, req.ID, dest.P.EntityID, rt.now().Add(rt.cfg.Timeout+time.Minute))
	replay := &replayBatch{}
	rc := &saml.Receiver{Keys: rt.dir, Replay: replay, Pending: pending,
		ValidatePayload: true, ClockSkew: rt.cfg.ClockSkew, Limits: rt.limits(), Now: rt.now, Logger: rt.log}
	got, err := rc.ReceiveResponse(ctx, msg)
	if err != nil {
		rt.log.WarnContext(ctx, "provider's answer does not verify", "provider", dest.P.EntityID, "refusal", saml.AsError(err))
		return nil, false
	}
	st := got.Response.Status
	return &answer{remember: replay.entries, body: body, msg: msg, status: &st, resp: got.Response}, true
}
