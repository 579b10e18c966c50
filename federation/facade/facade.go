// Package facade is the hub's JSON facade for merchants that do not build
// KECIS envelopes: POST /v1/{group}/{operation}. The hub authenticates the
// merchant (TLS client certificate or an API key bound to its entity),
// builds and signs the request OnBehalfOf the merchant, chooses the
// recipient by the routing rules, encrypts for it and relays it like any
// other request (KECIS §12.1, the verifying router; §12.4). Card data
// arrives already encrypted for the provider (an xenc:EncryptedData the
// merchant's page made in the browser, after POST /v1/routes named the
// provider and its certificate), or — only where the operator enabled it —
// in clear over TLS, and is encrypted at once; the other sensitive fields
// of KECIS §8.1 (track data, password, birth date) are accepted only in
// that development mode (§12.4). Every refusal is a Problem value.
package facade

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// APIKey binds a key (by its SHA-256) to a merchant's entity.
type APIKey struct {
	EntityID  string `yaml:"entity_id"`
	KeySHA256 string `yaml:"key_sha256"`
}

// Config of the facade.
type Config struct {
	HubEntityID string
	// AllowClearCard is the development mode: the sensitive fields of
	// KECIS §8.1 (card, track data, password, birth date…) are accepted in
	// clear over TLS and encrypted at once for the recipient. Only for
	// development, or for a hub that accepts card-data (PCI DSS) scope: the
	// hub then sees them, in memory. Without it every one of them is
	// refused in clear (§12.4); the card travels as encrypted.card.
	AllowClearCard bool
	APIKeys        []APIKey
	MaxBodyBytes   int64
	// RateLimit, when set, admits an authenticated merchant's request or
	// refuses it (KECIS §12.7), by the credential it came with: the
	// method and the SHA-256 of the API key or of the TLS client
	// certificate. nil admits; an error — httpserver.ProblemRateLimited
	// with its Retry-After — is answered before the body is read.
	RateLimit func(credential string) error
}

// Facade serves the JSON API.
type Facade struct {
	cfg    Config
	st     store.Store
	dir    *router.Directory
	rt     *router.Router
	signer *saml.Signer
	log    *slog.Logger
	now    func() time.Time
	routes *Routing
}

// New builds the facade.
func New(cfg Config, st store.Store, dir *router.Directory, rt *router.Router, signer *saml.Signer, log *slog.Logger, now func() time.Time) *Facade {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 256 << 10
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Facade{cfg: cfg, st: st, dir: dir, rt: rt, signer: signer, log: log, now: now, routes: &Routing{Store: st, Dir: dir}}
}

// Mount adds the facade's routes to r.
func (f *Facade) Mount(r gin.IRouter) {
	v1 := r.Group("/v1")
	v1.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", OpenAPI) })
	authed := v1.Group("", f.authenticate(), f.rateLimit())
	authed.POST("/routes", f.route)
	authed.POST("/:group/:operation", f.call)
}

// merchant is who the facade acts for, and how it knows.
type merchant struct {
	entity *router.Entry
	method string // "tls-client-certificate" or "api-key"
	cred   string // the certificate's or key's SHA-256, never the key
}

func (f *Facade) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		m, err := f.whoIs(c)
		if store.IsUnavailable(err) {
			f.fail(c, unavailable(err))
			return
		}
		if err != nil {
			f.fail(c, ProblemUnauthenticated.WithCause(err))
			c.Abort()
			return
		}
		c.Set("merchant", m)
		c.Next()
	}
}

// rateLimit refuses a merchant over its rate (Config.RateLimit), after
// authentication — the limit is the credential's, not the address's — and
// before anything of the body is read.
func (f *Facade) rateLimit() gin.HandlerFunc {
	return func(c *gin.Context) {
		if f.cfg.RateLimit == nil {
			c.Next()
			return
		}
		m := c.MustGet("merchant").(*merchant)
		if err := f.cfg.RateLimit(m.method + ":" + m.cred); err != nil {
			f.fail(c, err)
			return
		}
		c.Next()
	}
}

// whoIs authenticates the caller: an API key bound to an entity, or a TLS
// client certificate an entity's metadata publishes — in either case an
// active participant whose metadata gives it the merchant role (the one
// participant model, router.Entry.D). Any other participant's credential
// is refused like none (KECIS §12.4).
func (f *Facade) whoIs(c *gin.Context) (*merchant, error) {
	ctx := c.Request.Context()
	if auth := c.GetHeader("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		sum := sha256.Sum256([]byte(strings.TrimPrefix(auth, "Bearer ")))
		h := hex.EncodeToString(sum[:])
		for _, k := range f.cfg.APIKeys {
			if subtle.ConstantTimeCompare([]byte(strings.ToLower(k.KeySHA256)), []byte(h)) == 1 {
				e, err := f.dir.ByID(ctx, k.EntityID)
				if store.IsUnavailable(err) {
					return nil, err
				}
				if err != nil || !e.D.HasRole(metadata.RoleMerchant) {
					return nil, errors.New("API key of no active merchant")
				}
				return &merchant{entity: e, method: "api-key", cred: h}, nil
			}
		}
		return nil, errors.New("unknown API key")
	}
	if fp := saml.ClientCertFingerprint(c.Request); fp != "" {
		e, err := f.dir.ByTLSClient(ctx, fp)
		if store.IsUnavailable(err) {
			return nil, err
		}
		if err == nil && e.D.HasRole(metadata.RoleMerchant) {
			return &merchant{entity: e, method: "tls-client-certificate", cred: fp}, nil
		}
	}
	return nil, errors.New("no credential")
}

// The wire types of the facade's JSON API: connectors/callapi declares
// them once, for the facade, the sidecar's caller and the OpenAPI test.
type (
	CallRequest   = callapi.CallRequest
	RoutingHints  = callapi.RoutingHints
	CallResponse  = callapi.CallResponse
	RouteRequest  = callapi.RouteRequest
	RouteResponse = callapi.RouteResponse
)

// noFacade are the service groups whose responses carry secrets (a virtual
// card number): they are not offered on the facade.
var noFacade = map[string]bool{"vcn": true}

// call serves POST /v1/{group}/{operation} (KECIS §12.4) in its stages:
// decode the request, build its payload, choose the recipient, build and
// sign the KECIS request, relay it, answer. Every refusal is one of the
// Problem values below; no input makes it panic.
func (f *Facade) call(c *gin.Context) {
	ctx := c.Request.Context()
	fc, err := f.decode(c)
	if err == nil {
		err = f.buildPayload(fc)
	}
	if err == nil {
		err = f.choose(ctx, fc)
	}
	if err == nil {
		err = f.sign(fc)
	}
	if err != nil {
		f.fail(c, err)
		return
	}
	audit := router.WithAudit(f.auditAuth(fc.req, fc.merchant, fc.note, fc.signed))
	// The hub's payment policy counts the embedded results that verify
	// (KECIS §12.9); the recipient verifies them again.
	results := router.WithAuthResults(f.rt.VerifyAuthResults(ctx, fc.authResults)...)
	f.answer(c, fc, f.rt.Relay(ctx, fc.req, fc.dest, saml.WrapSOAP(fc.signed), audit, results))
}

// facadeCall is one request on its way through call's stages.
type facadeCall struct {
	merchant *merchant
	service  string
	key      string // Idempotency-Key
	in       *callapi.CallRequest
	payload  *ecml.Payload
	hints    callapi.RoutingHints
	// encRecipient is the recipient the encrypted card names
	// (EncryptedKey/@Recipient).
	encRecipient string
	// authResults are the signed results to embed unchanged (KECIS §3.2):
	// the recipient verifies them.
	authResults []*etree.Element
	dest        *router.Entry
	note        string // why dest: into the audit record and the answer
	req         *saml.ServiceRequest
	signed      []byte
}

// decode reads the path, the Idempotency-Key and the body.
func (f *Facade) decode(c *gin.Context) (*facadeCall, error) {
	group := c.Param("group")
	service, err := callapi.Service(group, c.Param("operation"))
	if err != nil || noFacade[group] {
		return nil, ProblemUnknownService
	}
	fc := &facadeCall{merchant: c.MustGet("merchant").(*merchant), service: service, key: c.GetHeader("Idempotency-Key")}
	if err := callapi.CheckIdempotencyKey(service, fc.key); err != nil {
		return nil, err
	}
	body, err := callapi.ReadBody(c.Writer, c.Request, f.cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if fc.in, err = callapi.DecodeCallWith(body, callapi.DecodeOptions{AuthenticationResults: true}); err != nil {
		return nil, err
	}
	if fc.authResults, err = callapi.ParseAuthenticationResults(fc.in.AuthenticationResults); err != nil {
		return nil, err
	}
	if fc.in.Routing != nil {
		fc.hints = *fc.in.Routing
	}
	return fc, nil
}

// buildPayload makes the request's ECML: its flat fields, the card —
// encrypted in the browser for one provider, or in clear (development
// only; callapi.Payload refused it otherwise) —, the routing hints the
// card gives, then the checks of ECML and of what the service requires.
func (f *Facade) buildPayload(fc *facadeCall) error {
	var err error
	if fc.payload, err = callapi.Payload(fc.in.Fields, callapi.PayloadOptions{ClearSensitive: f.cfg.AllowClearCard}); err != nil {
		return err
	}
	for k := range fc.in.Encrypted {
		if k != "card" {
			return ProblemUnknownEncrypted
		}
	}
	if x, ok := fc.in.Encrypted["card"]; ok {
		ed, recipient, err := parseEncrypted(x)
		if err != nil {
			return ProblemInvalidEncryptedCard.WithCause(err)
		}
		if fc.payload.Ecom.Payment == nil {
			fc.payload.Ecom.Payment = &ecml.Payment{}
		}
		if fc.payload.Ecom.Payment.Card != nil {
			return ProblemCardTwice
		}
		fc.payload.Ecom.Payment.EncryptedCard = ed
		fc.encRecipient = recipient
	}
	if p := fc.payload.Ecom.Payment; p != nil && p.Card != nil && fc.hints.CardBIN == "" {
		fc.hints.CardBIN, fc.hints.CardLast4 = p.Card.Number.BIN(), p.Card.Number.Last4()
	}
	if problems := fc.payload.Validate(ecml.ValidateOptions{Now: f.now(), AllowEncrypted: true, RequireEncrypted: !f.cfg.AllowClearCard}); len(problems) > 0 {
		// Paths and problems, never values (card numbers appear masked).
		return ProblemInvalidFields.WithDetail(problems.Error())
	}
	return callapi.CheckRequired(fc.service, fc.payload, !f.cfg.AllowClearCard)
}

// choose finds the recipient — named, implied by the encryption, or routed
// (KECIS §12.4, §13.4) — and checks that it can take the request.
func (f *Facade) choose(ctx context.Context, fc *facadeCall) error {
	target := fc.in.Recipient
	if fc.encRecipient != "" {
		if target != "" && target != fc.encRecipient {
			return ProblemRecipientMismatch
		}
		target = fc.encRecipient
	}
	// An inquire or cancel by order number alone has no amount: it is
	// routed with a zero one.
	var money ecml.Money
	if t := fc.payload.Ecom.Transaction; t != nil {
		money, _ = t.Money() // Validate checked it when present
	}
	dest, note, err := f.routes.Choose(ctx, Query{Service: fc.service, Merchant: fc.merchant.entity, Recipient: target, At: f.now(),
		CardBIN: fc.hints.CardBIN, BankCode: fc.hints.BankCode, Money: money})
	if err != nil {
		return routeProblem(err)
	}
	fc.dest, fc.note = dest, note
	return nil
}

// sign builds the KECIS request OnBehalfOf the merchant, encrypts it for
// the recipient and signs it as the hub.
func (f *Facade) sign(fc *facadeCall) error {
	eps := fc.dest.D.EndpointsFor(fc.service, saml.BindingSOAP)
	encCert, hasCert := fc.dest.D.EncryptionCertificate(f.now())
	if len(eps) == 0 || !hasCert {
		return ProblemNoRoute.WithDetail("the provider publishes no endpoint or encryption key for this service")
	}
	b := &saml.Builder{Issuer: f.cfg.HubEntityID, Now: f.now}
	req, err := b.NewRequest(eps[0].Location, fc.service)
	if err != nil {
		return err
	}
	req.IdempotencyKey, req.OnBehalfOf, req.Payload, req.AuthResults = fc.key, fc.merchant.entity.P.EntityID, fc.payload, fc.authResults
	if h := fc.hints; h.CardBIN != "" || h.BankCode != "" {
		req.Routing = &saml.Routing{CardBIN: h.CardBIN, CardLast4: h.CardLast4, BankCode: h.BankCode}
	}
	el, err := req.Element()
	if err != nil {
		// The fields were validated: a failure here is the hub's, or the
		// provider's metadata (an endpoint without a URL).
		return err
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: fc.dest.P.EntityID, Cert: encCert}); err != nil {
		return err
	}
	if err := noClearSensitive(el); err != nil {
		return err
	}
	if fc.signed, err = f.signer.SignToBytes(el); err != nil {
		return err
	}
	fc.req = req
	return nil
}

// answer sends the relay's result: the provider's answer with the HTTP
// status callapi.HTTPStatus gives it (402 for a decline, 202 Pending, 503
// unavailable…), or the idempotency guard's refusal as a problem.
func (f *Facade) answer(c *gin.Context, fc *facadeCall, res *router.Result) {
	outcome := callapi.OutcomeUnavailable
	switch res.Outcome {
	case router.OutcomeAnswered:
		outcome = callapi.OutcomeAnswered
	case router.OutcomePending:
		outcome = callapi.OutcomePending
	case router.OutcomeRefused:
		switch res.Status.SubCode {
		case saml.CodeIdempotencyConflict:
			f.fail(c, ProblemIdempotencyKeyReused)
		case saml.CodePolicyViolation:
			// The rule's public message, and its id (KECIS §12.9).
			detail := res.Status.Message
			if res.Decision != nil {
				detail += " (rule " + res.Decision.RefusedBy + ")"
			}
			f.fail(c, ProblemPolicyViolation.WithDetail(detail))
		default:
			f.fail(c, ProblemIdempotencyKeyInFlight)
		}
		return
	}
	if res.Status.SubCode == saml.CodeHubUnavailable {
		// The hub could not record the request (KECIS §12.8).
		c.Header("Retry-After", httpserver.RetryAfterSeconds(RetryAfterUnavailable))
	}
	out := callapi.NewResponse(outcome, fc.dest.P.EntityID, res.Status)
	out.RequestID, out.RoutingNote = fc.req.ID, fc.note
	if outcome == callapi.OutcomeAnswered {
		out.ResponseID = res.Response.ID
		if res.Response.Payload != nil {
			out.Fields = callapi.PublicFields(res.Response.Payload)
		}
		out.AuthenticationResults = callapi.EncodeAuthenticationResults(res.Response.AuthResults)
	}
	c.JSON(callapi.HTTPStatus(outcome, res.Status), out)
}

// noClearSensitive is the last check before the hub signs: no element of
// the must-encrypt list (KECIS §8.1, ecml.SensitiveElements — the list the
// envelope layer encrypts and receivers enforce) is left in clear.
func noClearSensitive(el *etree.Element) error {
	for _, c := range el.ChildElements() {
		if c.Tag == "Payload" && c.NamespaceURI() == saml.NSKECIS {
			if clear := ecml.SensitiveElements(c); len(clear) > 0 {
				return fmt.Errorf("facade: %d sensitive elements left in clear after encryption (first %s)", len(clear), clear[0].Tag)
			}
		}
	}
	return nil
}

// routeProblem is the answer to a routing failure: no-route with the
// routing's public explanation, unavailable when the database cannot
// answer for now, or, for anything else, an internal error whose cause is
// only logged.
func routeProblem(err error) *httpserver.Problem {
	if errors.Is(err, ErrNoRoute) {
		return ProblemNoRoute.WithDetail(err.Error())
	}
	if store.IsUnavailable(err) {
		return unavailable(err)
	}
	return ProblemInternal.WithCause(err)
}

// RetryAfterUnavailable is the Retry-After of the facade's answers while
// the hub's database cannot take requests (KECIS §12.8): a restart or a
// failover takes seconds.
const RetryAfterUnavailable = 2 * time.Second

// unavailable is the answer when the hub's database cannot take the
// request for now (store.IsUnavailable): 503 with Retry-After, the cause
// only logged.
func unavailable(err error) *httpserver.Problem {
	return ProblemUnavailable.WithRetryAfter(RetryAfterUnavailable).WithCause(err)
}

// auditAuth is the hub's record of how it authenticated the merchant,
// with the request the hub signed on its behalf: evidence for a dispute.
// It goes into Relay's first commit (router.WithAudit, KECIS §12.3), with
// the idempotency claim: it costs no commit of its own, it exists whenever
// the request was forwarded, and a store that cannot write it stops the
// request before it is forwarded. A request refused before Relay
// (authentication, fields, routing) is answered with a problem and
// logged, not audited: the hub signed nothing for it.
func (f *Facade) auditAuth(req *saml.ServiceRequest, m *merchant, note string, signed []byte) *store.AuditRecord {
	d, _ := json.Marshal(map[string]any{"service": req.Service, "on_behalf_of": m.entity.P.EntityID,
		"auth_method": m.method, "credential_sha256": m.cred, "routing": note})
	rec := &store.AuditRecord{Time: f.now(), Kind: "facade.request", Actor: m.entity.P.EntityID, EntityID: m.entity.P.EntityID,
		TxID: f.cfg.HubEntityID + "|" + req.IdempotencyKey, RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: string(d), Message: signed}
	if req.IdempotencyKey == "" {
		rec.TxID = req.ID
	}
	return rec
}

// route serves POST /v1/routes: whom the merchant's page encrypts the card
// for (KECIS §12.4).
func (f *Facade) route(c *gin.Context) {
	m := c.MustGet("merchant").(*merchant)
	const maxRouteBody = 64 << 10
	body, err := callapi.ReadBody(c.Writer, c.Request, maxRouteBody)
	if err != nil {
		f.fail(c, err)
		return
	}
	in, err := callapi.DecodeRoute(body)
	if err != nil {
		f.fail(c, err)
		return
	}
	q := Query{Service: in.Service, Merchant: m.entity, CardBIN: in.CardBIN, BankCode: in.BankCode, At: f.now()}
	if in.Amount != "" {
		money, err := ecml.ParseAmount(in.Amount, in.Currency)
		if err != nil {
			f.fail(c, ProblemInvalidAmount.WithCause(err))
			return
		}
		q.Money = money
	}
	dest, note, err := f.routes.Choose(c.Request.Context(), q)
	if err != nil {
		f.fail(c, routeProblem(err))
		return
	}
	cert, ok := dest.D.EncryptionCertificate(f.now())
	if !ok {
		f.fail(c, ProblemNoRoute.WithDetail("the provider publishes no encryption key"))
		return
	}
	c.JSON(http.StatusOK, RouteResponse{Recipient: dest.P.EntityID, Routing: note,
		EncryptionCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))})
}

// The problems the facade answers: the call API's (connectors/callapi),
// shared with the sidecar's caller, and the facade's own.
var (
	ProblemUnknownService        = callapi.ProblemUnknownService
	ProblemIdempotencyKeyMissing = callapi.ProblemIdempotencyKeyMissing
	ProblemIdempotencyKeyInvalid = callapi.ProblemIdempotencyKeyInvalid
	ProblemBadRequest            = callapi.ProblemBadRequest
	ProblemTooLarge              = callapi.ProblemTooLarge
	ProblemUnreadable            = callapi.ProblemUnreadable
	ProblemInvalidFields         = callapi.ProblemInvalidFields
	ProblemMissingFields         = callapi.ProblemMissingFields
	ProblemCardNumberInField     = callapi.ProblemCardNumberInField
	ProblemClearSensitive        = callapi.ProblemClearSensitive
	ProblemNoRoute               = callapi.ProblemNoRoute
	ProblemInternal              = callapi.ProblemInternal
	ProblemRateLimited           = httpserver.ProblemRateLimited
	ProblemUnavailable           = httpserver.ProblemUnavailable
	ProblemUnknownEncrypted      = callapi.ProblemUnknownEncrypted.WithDetail("only encrypted.card is accepted")

	ProblemUnauthenticated = httpserver.NewProblem("unauthenticated", http.StatusUnauthorized,
		"a merchant's TLS client certificate or API key is required")
	ProblemInvalidEncryptedCard = httpserver.NewProblem("invalid-encrypted-card", http.StatusBadRequest,
		"encrypted.card must be one xenc:EncryptedData for a named recipient")
	ProblemCardTwice = httpserver.NewProblem("card-twice", http.StatusBadRequest,
		"send the card either encrypted or in fields, not both")
	ProblemRecipientMismatch = httpserver.NewProblem("recipient-mismatch", http.StatusBadRequest,
		"the card is encrypted for another recipient than the one named")
	ProblemInvalidAmount = httpserver.NewProblem("invalid-amount", http.StatusBadRequest,
		"amount and currency are not a valid ECML amount")
	ProblemIdempotencyKeyReused = httpserver.NewProblem("idempotency-key-reused", http.StatusUnprocessableEntity,
		"the Idempotency-Key was used with a different request")
	ProblemIdempotencyKeyInFlight = httpserver.NewProblem("idempotency-key-in-flight", http.StatusConflict,
		"a request with this Idempotency-Key is being processed")
	// ProblemPolicyViolation is the hub's payment policy's refusal (KECIS
	// §12.9): the detail is the rule's public message and its id. Nothing
	// was forwarded, and the Idempotency-Key was not claimed.
	ProblemPolicyViolation = httpserver.NewProblem("policy-violation", http.StatusUnprocessableEntity,
		"refused by the hub's payment policy")
)

// Problems lists every problem the facade answers: its tests answer each,
// the OpenAPI description lists each, and the hub's tests check that each
// type has one title across the hub (federation/server).
var Problems = []*httpserver.Problem{ProblemUnauthenticated, ProblemUnknownService, ProblemIdempotencyKeyMissing,
	ProblemIdempotencyKeyInvalid, ProblemBadRequest, ProblemTooLarge, ProblemUnreadable, ProblemInvalidFields, ProblemMissingFields, ProblemCardNumberInField,
	ProblemClearSensitive, ProblemInvalidEncryptedCard, ProblemCardTwice, ProblemUnknownEncrypted, ProblemRecipientMismatch,
	ProblemInvalidAmount, ProblemNoRoute, ProblemIdempotencyKeyReused, ProblemIdempotencyKeyInFlight, ProblemPolicyViolation, ProblemRateLimited, ProblemUnavailable, ProblemInternal}

// fail answers err as a problem document and logs it with its cause: a
// refusal at Info, an internal error at Error. Nothing logged or sent holds
// a card number (RedactPANs), and causes are built from names only.
func (f *Facade) fail(c *gin.Context, err error) {
	var attrs []slog.Attr
	if v, ok := c.Get("merchant"); ok {
		attrs = append(attrs, slog.String("merchant", v.(*merchant).entity.P.EntityID))
	}
	c.Abort()
	httpserver.Fail(c.Request.Context(), c.Writer, f.log, "facade refused", err, attrs...)
}

// parseEncrypted reads a browser-made xenc:EncryptedData and the Recipient
// its EncryptedKey names.
func parseEncrypted(x string) (*etree.Element, string, error) {
	root, err := saml.ParseDocument([]byte(x), saml.Limits{MaxBytes: 32 << 10, MaxDepth: 16})
	if err != nil {
		return nil, "", err
	}
	if root.Tag != "EncryptedData" || root.NamespaceURI() != saml.NSXEnc {
		return nil, "", fmt.Errorf("not an xenc:EncryptedData")
	}
	ek := root.FindElement(".//EncryptedKey")
	if ek == nil || ek.SelectAttrValue("Recipient", "") == "" {
		return nil, "", fmt.Errorf("no EncryptedKey with a Recipient")
	}
	return root, ek.SelectAttrValue("Recipient", ""), nil
}
