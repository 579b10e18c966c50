package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
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
	// OutcomeRefused: the hub's idempotency guard refused (conflict, in flight).
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
}

// Relay applies the idempotency guard to a verified request and forwards
// soapBody (the request's SOAP HTTP body, unchanged) to dest; it audits the
// answer. It is shared by the SOAP endpoint and the JSON facade.
func (rt *Router) Relay(ctx context.Context, req *saml.ServiceRequest, dest *Entry, soapBody []byte) *Result {
	rt.ensureSnapshot(ctx, dest)
	if sender, err := rt.dir.ByID(ctx, req.Issuer); err == nil {
		rt.ensureSnapshot(ctx, sender)
	}
	if req.OnBehalfOf != "" {
		if m, err := rt.dir.ByID(ctx, req.OnBehalfOf); err == nil {
			rt.ensureSnapshot(ctx, m)
		}
	}
	var scope, owner string
	if req.IdempotencyKey != "" {
		scope = saml.IdemScope(req.Issuer, req.OnBehalfOf)
		owner = rt.cfg.ReplicaID + "/" + req.ID
		fp := rt.fingerprint(req, dest.P.EntityID)
		res, _, err := rt.st.AcquireIdem(ctx, scope, req.IdempotencyKey, fp, owner, req.ID,
			rt.now().Add(rt.cfg.Timeout+rt.cfg.LeaseGrace), rt.now())
		if err != nil {
			rt.log.ErrorContext(ctx, "idempotency store", "err", err)
			return &Result{Outcome: OutcomeUnavailable, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "temporarily unable to process the request"}}
		}
		if rt.metrics != nil {
			rt.metrics.IdemHits.WithLabelValues(string(res)).Inc()
		}
		if st, refused := res.Refusal(); refused {
			return &Result{Outcome: OutcomeRefused, Status: st}
		}
	}
	ans, out := rt.forward(ctx, req, dest, soapBody)
	if scope != "" {
		state := store.IdemInFlight // lease cleared: the key stays retryable
		if out == OutcomeAnswered {
			state = store.IdemDone
		}
		if err := rt.st.ReleaseIdem(context.WithoutCancel(ctx), scope, req.IdempotencyKey, owner, state, rt.now()); err != nil {
			rt.log.WarnContext(ctx, "idempotency release", "err", err)
		}
	}
	switch out {
	case OutcomeAnswered:
		rt.audit(ctx, "message.out", req, dest.P.EntityID, ans.msg, ans.status)
		rt.count(req.Service, ans.status)
		return &Result{Outcome: out, Status: *ans.status, Response: ans.resp, Body: ans.body, Msg: ans.msg}
	case OutcomePending:
		return &Result{Outcome: out, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending,
			Message: "the provider has not answered; ask with the service's inquire, or retry with the same idempotency key"}}
	default:
		return &Result{Outcome: OutcomeUnavailable, Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable,
			Message: "the provider is unavailable"}}
	}
}

type answer struct {
	body   []byte // the HTTP body to pass on unchanged
	msg    []byte // the KECIS message inside it
	status *saml.Status
	resp   *saml.ServiceResponse
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
	rc := &saml.Receiver{Keys: rt.dir, Replay: replayStore{rt.st, rt.now}, Pending: pending,
		ValidatePayload: true, ClockSkew: rt.cfg.ClockSkew, Limits: rt.limits(), Now: rt.now, Logger: rt.log}
	got, err := rc.ReceiveResponse(ctx, msg)
	if err != nil {
		rt.log.WarnContext(ctx, "provider's answer does not verify", "provider", dest.P.EntityID, "refusal", saml.AsError(err))
		return nil, false
	}
	st := got.Response.Status
	return &answer{body: body, msg: msg, status: &st, resp: got.Response}, true
}
