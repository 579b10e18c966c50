package router

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// ServeHTTP implements POST /kecis/soap.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(rt.limits().MaxBytes)+8192))
	if err != nil {
		rt.fault(w, saml.ErrMalformed.WithCause(err), "")
		return
	}
	msg, err := saml.UnwrapSOAP(body, rt.limits())
	if err != nil {
		rt.fault(w, err, "")
		return
	}
	// The TLS client certificate must be one an active participant
	// published; the envelope's Issuer must be that participant.
	sender, err := rt.dir.ByTLSClient(ctx, saml.ClientCertFingerprint(r))
	if err != nil {
		rt.fault(w, saml.ErrUnknownIssuer.WithCausef("TLS client certificate %q is not an active participant's", saml.ClientCertFingerprint(r)), "")
		return
	}
	var dest *Entry
	replay := &replayBatch{} // committed by Relay with the idempotency claim
	rc := &saml.Receiver{
		Keys:        rt.dir,
		Replay:      replay,
		HubEntityID: rt.cfg.HubEntityID,
		AcceptDestination: func(ctx context.Context, d string) error {
			e, err := rt.dir.ByEndpoint(ctx, d)
			if err != nil {
				return fmt.Errorf("the Destination %q is no active participant's endpoint", d)
			}
			dest = e
			return nil
		},
		Authorize: func(ctx context.Context, req *saml.ServiceRequest) error {
			if req.Issuer != sender.P.EntityID {
				return saml.ErrNotAuthorized.WithCausef("Issuer %q came over %q's TLS connection", req.Issuer, sender.P.EntityID)
			}
			if dest.P.EntityID == req.Issuer {
				return saml.ErrNotAuthorized.WithCausef("request addressed to its own issuer")
			}
			// Function level (KECIS §13.2): the recipient's active metadata
			// must admit the caller for this service.
			var caller *metadata.EntityDescriptor
			if e, err := rt.dir.ByID(ctx, metadata.Caller(req.Issuer, req.OnBehalfOf)); err == nil {
				caller = e.D
			}
			return metadata.AuthorizeCall(dest.D, caller, req.Service)
		},
		ValidatePayload: true,
		ClockSkew:       rt.cfg.ClockSkew,
		Limits:          rt.limits(),
		Now:             rt.now,
		Logger:          rt.log,
		OnRefusal: func(e *saml.Error) {
			if rt.metrics != nil {
				rt.metrics.Refusals.WithLabelValues(e.Reason, e.Stage.String()).Inc()
			}
		},
	}
	got, err := rc.ReceiveRequest(ctx, msg)
	if err != nil {
		e := saml.AsError(err)
		if e.Stage == saml.BeforeVerification {
			rt.fault(w, e, "")
			return
		}
		rt.writeStatus(ctx, w, e.ID, "", e.StatusValue())
		return
	}
	req := got.Request
	in := rt.auditRecord("message.in", req, dest.P.EntityID, msg, nil)
	res := rt.Relay(ctx, req, dest, body, withRemember(replay.entries...), WithAudit(in), WithAuthResults(got.AuthResults...))
	if res.Outcome == OutcomeAnswered {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.Body)
		return
	}
	rt.writeStatus(ctx, w, req.ID, req.Service, res.Status)
}

// SignStatus builds and signs a status the hub originates, InResponseTo
// the request, and audits it.
func (rt *Router) SignStatus(ctx context.Context, inResponseTo, service string, st saml.Status) ([]byte, error) {
	b := &saml.Builder{Issuer: rt.cfg.HubEntityID, Now: rt.now, IDs: rt.ids}
	resp, err := b.NewResponse(inResponseTo, "", st)
	if err != nil {
		return nil, err
	}
	el, err := resp.Element()
	if err != nil {
		return nil, err
	}
	out, err := rt.cfg.Signer.SignToBytes(el)
	if err != nil {
		return nil, err
	}
	rec := &store.AuditRecord{Time: rt.now(), Kind: "message.hub", Actor: rt.cfg.HubEntityID, RequestID: inResponseTo,
		Detail: detailJSON(map[string]any{"status": st.Code, "sub": st.SubCode, "service": service}), Message: out}
	if err := rt.st.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
		rt.log.ErrorContext(ctx, "audit", "err", err)
	}
	rt.count(service, &st)
	return out, nil
}

// writeStatus answers the SOAP sender with a status the hub signs.
func (rt *Router) writeStatus(ctx context.Context, w http.ResponseWriter, inResponseTo, service string, st saml.Status) {
	if inResponseTo == "" {
		rt.fault(w, saml.ErrInternal, "")
		return
	}
	out, err := rt.SignStatus(ctx, inResponseTo, service, st)
	if err != nil {
		rt.log.ErrorContext(ctx, "signing a hub status", "err", err)
		rt.fault(w, saml.ErrInternal, "")
		return
	}
	saml.WriteSOAP(w, out)
}

func (rt *Router) fault(w http.ResponseWriter, err error, _ string) {
	saml.WriteFault(w, saml.FaultFor(err))
}
