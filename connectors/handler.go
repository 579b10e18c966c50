package connectors

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// HandlerConfig configures the serving side.
type HandlerConfig struct {
	// EntityID is this provider; Signer its signing key; Decryption its
	// encryption keys (several during a rollover).
	EntityID   string
	Signer     *saml.Signer
	Decryption []saml.DecryptionKey
	// Endpoints are this provider's own published endpoint URLs: any of
	// them is an acceptable Destination.
	Endpoints []string
	Directory Directory
	// HubEntityID is the hub: the only issuer whose requests may carry
	// OnBehalfOf.
	HubEntityID string
	// BackChannel lists the SHA-256 fingerprints of the TLS client
	// certificates allowed to call: the hub's (from its metadata) and, in
	// test mode, a registered tester's. Empty refuses everyone.
	BackChannel []string
	// Services are the provider's functions by service URI.
	Services map[string]ServiceFunc
	// Objects are the object rules (KECIS §13.3) of services of the
	// provider's own that no service group registers (RegisterObjectRule
	// holds the card service's). A service with a registered rule cannot be
	// given another here.
	Objects map[string]ObjectRule
	// Store holds replay and idempotency records and the objects' owners:
	// connectors/store/sqlitestore or connectors/store/pgstore, chosen by
	// the program (the SDK links neither database). IdemKey keys the
	// fingerprints' HMACs (a provider secret).
	Store   store.Store
	IdemKey []byte
	// Lease bounds an attempt; a retry after it runs the function again.
	Lease     time.Duration
	ClockSkew time.Duration
	// RateLimit, when set, limits each caller of ServeHTTP by its TLS
	// client certificate — or its address when it presented none — on Now
	// (KECIS §12.7): PerSecond requests a second on average, Burst at
	// once. A caller past it is answered 429 Too Many Requests with
	// Retry-After and a soap:Server fault before anything of its request
	// is read (ratelimit.Limiter.SOAP, as the sidecar's endpoint), and
	// logged as a warning with its certificate's fingerprint; the hub
	// tells its sender ProviderUnavailable and counts the 429 neither for
	// nor against this provider's breaker. nil: no limit. Handle, which
	// has no caller, is never limited.
	RateLimit *ratelimit.Config
	Now       func() time.Time
	Log       *slog.Logger
}

// Handler terminates KECIS on the provider's side.
type Handler struct {
	cfg     HandlerConfig
	rc      *saml.Receiver
	objects map[string]ObjectRule // by service URI, for the services offered
	// serve is ServeHTTP's handler: serveSOAP, behind the rate limit when
	// HandlerConfig.RateLimit sets one.
	serve http.Handler
}

// NewHandler checks the configuration and builds the handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	switch {
	case cfg.EntityID == "" || cfg.Signer == nil || cfg.Directory == nil || cfg.Store == nil:
		return nil, errors.New("connectors: EntityID, Signer, Directory and Store are required")
	case len(cfg.IdemKey) < 16:
		return nil, errors.New("connectors: IdemKey must be at least 16 bytes")
	case len(cfg.Endpoints) == 0:
		return nil, errors.New("connectors: the provider's endpoint URLs are required (Destination check)")
	case cfg.RateLimit != nil && (!(cfg.RateLimit.PerSecond > 0) || math.IsInf(cfg.RateLimit.PerSecond, 0) || cfg.RateLimit.Burst < 0):
		return nil, errors.New("connectors: RateLimit needs a positive, finite PerSecond and a Burst of at least 0 (0: one); leave it nil for no limit")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lease == 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, objects: map[string]ObjectRule{}}
	for svc, r := range cfg.Objects {
		if _, ok := ObjectRuleOf(svc); ok {
			return nil, fmt.Errorf("connectors: %s has a registered object rule; Objects cannot replace it", svc)
		}
		if err := r.check(svc); err != nil {
			return nil, err
		}
		h.objects[svc] = r
	}
	for svc := range cfg.Services {
		if r, ok := ObjectRuleOf(svc); ok {
			h.objects[svc] = r
		}
	}
	h.rc = &saml.Receiver{
		Keys:         cfg.Directory,
		Replay:       cfg.Store.Replay(cfg.Now),
		Destinations: cfg.Endpoints,
		HubEntityID:  cfg.HubEntityID,
		Decrypter:    &saml.Decryptor{EntityID: cfg.EntityID, Keys: cfg.Decryption},
		Authorize: func(ctx context.Context, req *saml.ServiceRequest) error {
			if _, ok := cfg.Services[req.Service]; !ok {
				return saml.ErrUnknownService.WithCausef("%s is not offered here", req.Service)
			}
			return h.authorizeCaller(ctx, req)
		},
		ValidatePayload: true,
		ClockSkew:       cfg.ClockSkew,
		Now:             cfg.Now,
		Logger:          cfg.Log,
	}
	h.serve = http.HandlerFunc(h.serveSOAP)
	if cfg.RateLimit != nil {
		h.serve = ratelimit.New(*cfg.RateLimit, cfg.Now).SOAP(h.serve, func(r *http.Request, retryAfter time.Duration) {
			cfg.Log.WarnContext(r.Context(), "KECIS endpoint: caller over its rate limit", "client", ratelimit.ClientKey(r, ""),
				"retry_after", retryAfter)
		})
	}
	return h, nil
}

// ServeHTTP implements the SOAP binding endpoint, each caller under
// HandlerConfig.RateLimit when it sets one.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve.ServeHTTP(w, r)
}

// serveSOAP answers one SOAP request: the back channel's check, then
// Handle.
func (h *Handler) serveSOAP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !h.allowed(r) {
		h.cfg.Log.WarnContext(ctx, "back-channel request refused: not the hub's TLS client certificate")
		saml.WriteFault(w, &saml.Fault{Code: "soap:Client", String: "back-channel requests are accepted from the hub only"})
		return
	}
	msg, err := saml.ReadSOAPRequest(r, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	out, err := h.Handle(ctx, msg)
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	saml.WriteSOAP(w, out)
}

// authorizeCaller is the function-level check on receipt (KECIS §13.2),
// defence in depth behind the hub's: the service as this provider's active
// metadata offers it must admit the caller (KECIS §13.1) as the caller's
// active metadata describes it. An unknown caller is refused; metadata that
// cannot be read refuses too, as a retryable ProviderUnavailable.
func (h *Handler) authorizeCaller(ctx context.Context, req *saml.ServiceRequest) error {
	self, err := h.cfg.Directory.Lookup(ctx, h.cfg.EntityID)
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return saml.ErrUnknownService.WithCausef("%s is not in the active metadata", h.cfg.EntityID)
	case err != nil:
		return saml.ErrStore.WithCausef("this provider's metadata: %v", err)
	}
	id := metadata.Caller(req.Issuer, req.OnBehalfOf)
	caller, err := h.cfg.Directory.Lookup(ctx, id)
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		caller = nil
	case err != nil:
		return saml.ErrStore.WithCausef("the metadata of the caller %s: %v", id, err)
	}
	return metadata.AuthorizeCall(self, caller, req.Service)
}

func (h *Handler) allowed(r *http.Request) bool {
	fp := saml.ClientCertFingerprint(r)
	return fp != "" && slices.Contains(h.cfg.BackChannel, fp)
}

// Handle runs one message through the pipeline and the provider's function
// and returns the signed answer. An error means a refusal before
// verification (answer with an unsigned fault).
func (h *Handler) Handle(ctx context.Context, msg []byte) ([]byte, error) {
	// Once a request is accepted, its work is finished even if the caller
	// (the hub) stops waiting: the outcome is recorded, and a retry or an
	// inquire finds it. Only the lease bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Lease)
	defer cancel()
	// The replay check (KECIS §7.2) only collects the message's ID here;
	// it is recorded below, before the function runs: with the
	// idempotency key in one commit, or alone for a request without one.
	seen := &replayBatch{}
	rc := *h.rc
	rc.Replay = seen
	got, err := rc.ReceiveRequest(ctx, msg)
	if err != nil {
		e := saml.AsError(err)
		if e.Stage == saml.BeforeVerification {
			return nil, e
		}
		return h.answer(ctx, e.ID, e.Issuer, &Response{Status: e.StatusValue()})
	}
	sr := got.Request
	req := &Request{ID: sr.ID, Service: sr.Service, Issuer: sr.Issuer, OnBehalfOf: sr.OnBehalfOf,
		IdempotencyKey: sr.IdempotencyKey, Routing: sr.Routing, Payload: sr.Payload, AuthResults: got.AuthResults, SignedAuthResults: sr.AuthResults}
	fn := h.cfg.Services[sr.Service]
	// Object level (KECIS §13.3): what the request creates is claimed for
	// its caller, what it names must be the caller's.
	owner := metadata.Caller(sr.Issuer, sr.OnBehalfOf)
	rule, hasRule := h.objects[sr.Service]
	var objs store.Objects
	if hasRule {
		objs = rule.requestObjects(owner, sr.Payload)
	}
	if req.IdempotencyKey == "" {
		if st, refused := h.remember(ctx, seen.entries); refused {
			return h.answer(ctx, sr.ID, sr.Issuer, &Response{Status: st})
		}
		if err := h.cfg.Store.Objects(ctx, objs, h.cfg.Now()); err != nil {
			return h.answer(ctx, sr.ID, sr.Issuer, h.objectRefusal(ctx, req, rule, objs, err))
		}
		resp := h.run(ctx, fn, req)
		if hasRule {
			ans := rule.answerObjects(owner, objs, resp)
			if err := h.cfg.Store.Objects(ctx, ans, h.cfg.Now()); err != nil {
				resp = h.objectRefusal(ctx, req, rule, ans, err)
			}
		}
		return h.answer(ctx, sr.ID, sr.Issuer, resp)
	}
	// The idempotency authority: the fingerprint covers the public fields and
	// HMACs of the decrypted sensitive ones, so an honest retry (new
	// encryption, same card) matches and a changed one does not.
	scope := saml.IdemScope(sr.Issuer, sr.OnBehalfOf)
	fp := h.fingerprint(got.Verified, sr)
	now := h.cfg.Now()
	res, prev, err := h.cfg.Store.BeginRemembered(ctx, seen.entries, scope, req.IdempotencyKey, fp, h.cfg.Lease, now, objs)
	if st, refused := res.Refusal(); refused {
		// The refusal took nothing, its IDs neither: record them on their
		// own, so that a replay of this message is refused as one.
		if rst, replay := h.remember(ctx, seen.entries); replay {
			st = rst
		}
		return h.answer(ctx, sr.ID, sr.Issuer, &Response{Status: st})
	}
	switch {
	case errors.Is(err, saml.ErrAlreadySeen):
		return h.answer(ctx, sr.ID, sr.Issuer, h.replayed(ctx, sr.ID, sr.Issuer))
	case errors.Is(err, store.ErrNotFound):
		if st, replay := h.remember(ctx, seen.entries); replay {
			return h.answer(ctx, sr.ID, sr.Issuer, &Response{Status: st})
		}
		return h.answer(ctx, sr.ID, sr.Issuer, h.objectRefusal(ctx, req, rule, objs, err))
	case err != nil:
		h.cfg.Log.ErrorContext(ctx, "idempotency store", "err", err)
		return h.answer(ctx, sr.ID, sr.Issuer, &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "temporarily unable to process the request"}})
	case res == saml.IdemDone:
		// A retry of a finished key: the original outcome, freshly signed.
		resp := &Response{Status: prev.Status}
		if len(prev.Payload) > 0 {
			if p, err := parsePayloadXML(prev.Payload); err == nil {
				resp.Payload = p
			}
		}
		return h.answer(ctx, sr.ID, sr.Issuer, resp)
	}
	resp := h.run(ctx, fn, req)
	if resp.Status.SubCode == saml.CodeProviderUnavailable || resp.Status.SubCode == saml.CodePending {
		// No outcome yet: the key stays retryable (a timeout is never an outcome).
		_ = h.cfg.Store.Abandon(context.WithoutCancel(ctx), scope, req.IdempotencyKey, h.cfg.Now())
		return h.answer(ctx, sr.ID, sr.Issuer, resp)
	}
	var ans store.Objects
	if hasRule {
		ans = rule.answerObjects(owner, objs, resp)
	}
	err = h.cfg.Store.FinishObjects(context.WithoutCancel(ctx), scope, req.IdempotencyKey, h.outcome(ctx, resp), ans, h.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		// The provider answered with another owner's object: that answer
		// is never given, and the refusal is the key's outcome.
		resp = h.objectRefusal(ctx, req, rule, ans, err)
		err = h.cfg.Store.FinishObjects(context.WithoutCancel(ctx), scope, req.IdempotencyKey, h.outcome(ctx, resp), store.Objects{}, h.cfg.Now())
	}
	if err != nil {
		// An outcome this provider could not record is not given: a retry
		// of the key must get the same answer, and only the record gives
		// it. The caller is told Pending and resolves it by inquiry, as
		// the hub does when it cannot record an answer (KECIS §7.1).
		h.cfg.Log.ErrorContext(ctx, "idempotency store: outcome not recorded, answered Pending", "service", sr.Service, "status", resp.Status.SubCode, "err", err)
		resp = &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending,
			Message: "the outcome could not be recorded: inquire before retrying"}}
	}
	return h.answer(ctx, sr.ID, sr.Issuer, resp)
}

// replayBatch is the saml.ReplayCache of one request's Receiver: it only
// collects the message's ID, which the Handler records with the
// idempotency key (Store.BeginRemembered) or alone (remember) before the
// provider's function runs; an ID already recorded is refused then.
type replayBatch struct{ entries []store.ReplayEntry }

func (r *replayBatch) Remember(_ context.Context, issuer, id string, expires time.Time) error {
	r.entries = append(r.entries, store.ReplayEntry{Issuer: issuer, ID: id, Expires: expires})
	return nil
}

// remember records the IDs of a request without an idempotency key, in a
// commit of their own; an ID already recorded is a replay.
func (h *Handler) remember(ctx context.Context, seen []store.ReplayEntry) (saml.Status, bool) {
	rc := h.cfg.Store.Replay(h.cfg.Now)
	for _, e := range seen {
		err := rc.Remember(ctx, e.Issuer, e.ID, e.Expires)
		switch {
		case errors.Is(err, saml.ErrAlreadySeen):
			return h.replayed(ctx, e.ID, e.Issuer).Status, true
		case err != nil:
			h.cfg.Log.ErrorContext(ctx, "replay cache", "err", err)
			return saml.ErrStore.StatusValue(), true
		}
	}
	return saml.Status{}, false
}

// replayed is the answer to a message whose ID was already recorded, as
// the Receiver gives it (KECIS §7.2).
func (h *Handler) replayed(ctx context.Context, id, issuer string) *Response {
	h.cfg.Log.WarnContext(ctx, "request refused: replay", "id", id, "issuer", issuer)
	return &Response{Status: saml.ErrReplay.StatusValue()}
}

// outcome is what the store keeps of an answer.
func (h *Handler) outcome(ctx context.Context, resp *Response) *store.Outcome {
	o := &store.Outcome{Status: resp.Status}
	if resp.Payload != nil {
		var err error
		if o.Payload, err = payloadXML(resp.Payload); err != nil {
			h.cfg.Log.ErrorContext(ctx, "outcome payload", "err", err)
		}
	}
	return o
}

// objectRefusal answers a request whose objects are unknown or another
// owner's with the rule's NotFound (KECIS §13.3), and logs why; any other
// store failure is ProviderUnavailable.
func (h *Handler) objectRefusal(ctx context.Context, req *Request, rule ObjectRule, objs store.Objects, err error) *Response {
	if !errors.Is(err, store.ErrNotFound) {
		h.cfg.Log.ErrorContext(ctx, "object store", "service", req.Service, "err", err)
		return &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "temporarily unable to process the request"}}
	}
	refs := make([]string, 0, len(objs.Claim)+len(objs.Check))
	for _, r := range append(append([]ObjectRef{}, objs.Claim...), objs.Check...) {
		refs = append(refs, r.Kind+" "+ecml.RedactPANs(r.ID))
	}
	h.cfg.Log.WarnContext(ctx, "object refused: unknown or another owner's", "service", req.Service, "caller", objs.Owner,
		"objects", refs, "reason", err.Error())
	return &Response{Status: rule.NotFound}
}

func (h *Handler) run(ctx context.Context, fn ServiceFunc, req *Request) (resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			h.cfg.Log.ErrorContext(ctx, "service function panicked", "service", req.Service, "panic", ecml.RedactPANs(fmt.Sprint(p)))
			resp = &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "internal error"}}
		}
	}()
	resp, err := fn(ctx, req)
	if err != nil {
		if st, ok := AsStatus(err); ok {
			return &Response{Status: st}
		}
		h.cfg.Log.ErrorContext(ctx, "service function failed", "service", req.Service, "err", ecml.RedactPANs(err.Error()))
		return &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "the provider could not process the request"}}
	}
	if resp == nil {
		resp = &Response{Status: saml.Status{Code: saml.StatusSuccess}}
	}
	if resp.Status.Code == "" {
		resp.Status.Code = saml.StatusSuccess
	}
	return resp
}

// answer builds the signed response, its sensitive elements encrypted for
// the requester.
func (h *Handler) answer(ctx context.Context, inResponseTo, requester string, r *Response) ([]byte, error) {
	return h.answerTo(ctx, inResponseTo, requester, "", nil, r)
}

// answerTo is answer with a Destination (the front channel's, KECIS §10.2;
// "" on the back channel) and others: sensitive elements by local name
// encrypted for another participant than the requester (the front
// channel's card for the acquirer, KECIS §15.7.1).
func (h *Handler) answerTo(ctx context.Context, inResponseTo, requester, destination string, others map[string]string, r *Response) ([]byte, error) {
	if inResponseTo == "" {
		return nil, saml.ErrInternal
	}
	b := &saml.Builder{Issuer: h.cfg.EntityID, Now: h.cfg.Now}
	resp, err := b.NewResponse(inResponseTo, destination, r.Status)
	if err != nil {
		return nil, err
	}
	resp.Payload, resp.AuthResults = r.Payload, r.AuthResults
	el, err := resp.Element()
	if err != nil {
		return nil, err
	}
	if err := h.encryptFor(ctx, el, others); err != nil {
		return nil, err
	}
	if r.Payload != nil && len(ecml.SensitiveElements(findChild(el, "Payload"))) > 0 {
		cert, err := h.cfg.Directory.EncryptionCertificate(ctx, requester)
		if err != nil {
			h.cfg.Log.ErrorContext(ctx, "no encryption certificate for the requester", "requester", requester, "err", err)
			return h.answerTo(ctx, inResponseTo, requester, destination, nil, &Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable, Message: "the answer cannot be encrypted for the requester"}})
		}
		if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: requester, Cert: cert}); err != nil {
			return nil, err
		}
	}
	return h.cfg.Signer.SignToBytes(el)
}

func findChild(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// fingerprint is HMAC(IdemKey, public fields ‖ HMACs of the decrypted
// sensitive elements' canonical form).
func (h *Handler) fingerprint(verified *etree.Element, sr *saml.ServiceRequest) []byte {
	m := hmac.New(sha256.New, h.cfg.IdemKey)
	w := func(s string) { fmt.Fprintf(m, "%d:%s;", len(s), s) }
	w(sr.Service)
	w(sr.OnBehalfOf)
	if p := findChild(verified, "Payload"); p != nil {
		sens := ecml.SensitiveElements(p)
		// Public part: the payload with the sensitive elements left out.
		c := p.Copy()
		for _, s := range ecml.SensitiveElements(c) {
			s.Parent().RemoveChild(s)
		}
		m.Write(saml.CanonicalizeExclusive(c, nil))
		for _, s := range sens {
			inner := hmac.New(sha256.New, h.cfg.IdemKey)
			inner.Write(saml.CanonicalizeExclusive(s, nil))
			m.Write(inner.Sum(nil))
		}
	}
	return m.Sum(nil)
}

func payloadXML(p *ecml.Payload) ([]byte, error) {
	c := etree.NewElement("kecis:Payload")
	c.CreateAttr("xmlns:kecis", saml.NSKECIS)
	if err := p.AppendTo(c); err != nil {
		return nil, err
	}
	return saml.Serialize(c)
}

func parsePayloadXML(b []byte) (*ecml.Payload, error) {
	root, err := saml.ParseDocument(b, saml.Limits{})
	if err != nil {
		return nil, err
	}
	return ecml.ParsePayload(root)
}

var _ http.Handler = (*Handler)(nil)
