// Package router is the hub's verifying router (DESIGN.md "The hub is a
// verifying router"): POST /kecis/soap verifies the sender — its TLS
// client certificate and its signature, the whole receive pipeline but
// decryption —, checks that the sender may call the service and that
// Destination is an active participant offering it, applies the
// idempotency guard, and forwards the HTTP body it received, unchanged,
// over mutual TLS to the recipient, pinning the recipient's published
// server certificate. The recipient's signed answer is verified and
// forwarded unchanged. The hub signs only what it originates: refusals
// after verification, Pending, ProviderUnavailable.
package router

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Config of a router.
type Config struct {
	// HubEntityID is the hub's entityID (Issuer of what it signs).
	HubEntityID string
	// Signer signs the hub's own statuses.
	Signer *saml.Signer
	// ClientCert is the hub's TLS client certificate towards providers.
	ClientCert tls.Certificate
	// Timeout bounds one forwarded exchange; then the sender gets Pending.
	Timeout time.Duration
	// LeaseGrace is added to Timeout for the idempotency lease.
	LeaseGrace time.Duration
	// IdemKey is the HMAC key of idempotency fingerprints.
	IdemKey []byte
	// ReplicaID names this replica in lease owners.
	ReplicaID string
	Limits    saml.Limits
	ClockSkew time.Duration
}

// Metrics the router records.
type Metrics struct {
	Requests     *prometheus.CounterVec   // service, status
	Refusals     *prometheus.CounterVec   // reason, stage
	RelayLatency *prometheus.HistogramVec // provider
	IdemHits     *prometheus.CounterVec   // result
	InFlight     prometheus.GaugeFunc
}

// NewMetrics registers the router's metrics on reg.
func NewMetrics(reg prometheus.Registerer, inFlight func() float64) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "requests_total",
			Help: "Relayed requests by service and final status (second-level code, or the top-level one)."}, []string{"service", "status"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "refusals_total",
			Help: "Requests the hub refused, by reason and pipeline stage."}, []string{"reason", "stage"}),
		RelayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "kecis", Subsystem: "router", Name: "relay_seconds",
			Help: "Time from forwarding a request to receiving the provider's answer, by provider.", Buckets: prometheus.DefBuckets}, []string{"provider"}),
		IdemHits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "idempotency_total",
			Help: "Idempotency guard outcomes: acquired, reacquired (a retry), in_flight, mismatch."}, []string{"result"}),
	}
	m.InFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kecis", Subsystem: "router", Name: "idempotency_leases_in_flight",
		Help: "Unexpired idempotency leases (all replicas)."}, inFlight)
	reg.MustRegister(m.Requests, m.Refusals, m.RelayLatency, m.IdemHits, m.InFlight)
	return m
}

// Router relays KECIS messages.
type Router struct {
	cfg     Config
	st      store.Store
	dir     *Directory
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	ids     saml.IDSource

	// Transport, when set, replaces the pinned-TLS transport (tests).
	Transport func(pins []*x509.Certificate) http.RoundTripper

	mu        sync.Mutex
	clients   map[string]*http.Client // by recipient entityID and version
	snapshots map[string]bool         // entity@version snapshots stored
}

// New builds a router.
func New(cfg Config, st store.Store, dir *Directory, m *Metrics, log *slog.Logger, now func() time.Time) *Router {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.LeaseGrace == 0 {
		cfg.LeaseGrace = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, st: st, dir: dir, metrics: m, log: log, now: now, clients: map[string]*http.Client{}}
}

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
	rc := &saml.Receiver{
		Keys:        rt.dir,
		Replay:      replayStore{rt.st, rt.now},
		HubEntityID: rt.cfg.HubEntityID,
		AcceptDestination: func(ctx context.Context, d string) error {
			e, err := rt.dir.ByEndpoint(ctx, d)
			if err != nil {
				return fmt.Errorf("Destination %q is no active participant's endpoint", d)
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
	rt.audit(ctx, "message.in", req, dest.P.EntityID, msg, nil)
	res := rt.Relay(ctx, req, dest, body)
	if res.Outcome == OutcomeAnswered {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.Body)
		return
	}
	rt.writeStatus(ctx, w, req.ID, req.Service, res.Status)
}

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

func (rt *Router) limits() saml.Limits { return rt.cfg.Limits }

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
	ctx, cancel := context.WithTimeout(ctx, rt.cfg.Timeout)
	defer cancel()
	for _, ep := range eps {
		start := time.Now()
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Location, bytes.NewReader(body))
		if err != nil {
			continue
		}
		hr.Header.Set("Content-Type", "text/xml; charset=utf-8")
		hr.Header.Set("SOAPAction", saml.SOAPAction)
		resp, err := hc.Do(hr)
		if err != nil {
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
			return nil, OutcomePending
		}
		a, ok := rt.checkAnswer(ctx, req, dest, rb)
		if !ok {
			return nil, OutcomeUnavailable
		}
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

// fingerprint is the HMAC of the public fields of a request: service,
// recipient, amounts, currency, order and party identifiers — never
// ciphertext, which differs on every encryption.
func (rt *Router) fingerprint(req *saml.ServiceRequest, dest string) []byte {
	m := hmac.New(sha256.New, rt.cfg.IdemKey)
	w := func(s string) { fmt.Fprintf(m, "%d:%s;", len(s), s) }
	w(req.Service)
	w(dest)
	w(req.OnBehalfOf)
	if req.Routing != nil {
		w(req.Routing.CardBIN + "/" + req.Routing.CardLast4 + "/" + req.Routing.BankCode)
	}
	if p := req.Payload; p != nil && p.Ecom != nil {
		e := p.Ecom
		w(e.ConsumerOrderID)
		w(e.Merchant)
		if t := e.Transaction; t != nil {
			w(t.Amount)
			w(t.Currency)
			w(t.Type)
			if t.ID != nil {
				w(fmt.Sprintf("%+v", *t.ID))
			}
		}
	}
	return m.Sum(nil)
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

func (rt *Router) count(service string, st *saml.Status) {
	if rt.metrics == nil || st == nil {
		return
	}
	label := st.Sub()
	if label == "" {
		label = shortStatus(st.Code)
	}
	if service == "" {
		service = "unknown"
	}
	rt.metrics.Requests.WithLabelValues(service, label).Inc()
}

func shortStatus(code string) string {
	for i := len(code) - 1; i >= 0; i-- {
		if code[i] == ':' {
			return code[i+1:]
		}
	}
	return code
}

func (rt *Router) audit(ctx context.Context, kind string, req *saml.ServiceRequest, dest string, msg []byte, st *saml.Status) {
	d := map[string]any{"service": req.Service, "issuer": req.Issuer, "destination": dest}
	if req.OnBehalfOf != "" {
		d["on_behalf_of"] = req.OnBehalfOf
	}
	if st != nil {
		d["status"], d["sub"] = st.Code, st.SubCode
	}
	tx := req.ID
	if req.IdempotencyKey != "" {
		tx = req.Issuer + "|" + req.IdempotencyKey
	}
	rec := &store.AuditRecord{Time: rt.now(), Kind: kind, Actor: req.Issuer, EntityID: dest, TxID: tx,
		RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: detailJSON(d), Message: msg}
	if err := rt.st.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
		rt.log.ErrorContext(ctx, "audit", "err", err)
	}
}

func detailJSON(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
