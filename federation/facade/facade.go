// Package facade is the hub's JSON facade for merchants that do not build
// KECIS envelopes: POST /v1/{group}/{operation}. The hub authenticates the
// merchant (TLS client certificate or an API key bound to its entity),
// builds and signs the request OnBehalfOf the merchant, chooses the
// recipient by the routing rules, encrypts for it and relays it like any
// other request (DESIGN.md, "The hub is a verifying router"). Card data
// arrives already encrypted for the provider (an xenc:EncryptedData the
// merchant's page made in the browser, after POST /v1/routes named the
// provider and its certificate), or — only where the operator enabled it —
// in clear over TLS, and is encrypted at once; the other sensitive fields
// of KECIS §8.1 (track data, password, birth date) are accepted only in
// that development mode (§12.4). Every refusal is a Problem value.
package facade

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
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
	authed := v1.Group("", f.authenticate())
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
		if err != nil {
			f.fail(c, ProblemUnauthenticated.WithCause(err))
			c.Abort()
			return
		}
		c.Set("merchant", m)
		c.Next()
	}
}

func (f *Facade) whoIs(c *gin.Context) (*merchant, error) {
	ctx := c.Request.Context()
	if auth := c.GetHeader("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		sum := sha256.Sum256([]byte(strings.TrimPrefix(auth, "Bearer ")))
		h := hex.EncodeToString(sum[:])
		for _, k := range f.cfg.APIKeys {
			if subtle.ConstantTimeCompare([]byte(strings.ToLower(k.KeySHA256)), []byte(h)) == 1 {
				e, err := f.dir.ByID(ctx, k.EntityID)
				if err != nil || !hasRole(e, store.RoleMerchant) {
					return nil, errors.New("API key of no active merchant")
				}
				return &merchant{entity: e, method: "api-key", cred: h}, nil
			}
		}
		return nil, errors.New("unknown API key")
	}
	if c.Request.TLS != nil && len(c.Request.TLS.PeerCertificates) > 0 {
		sum := sha256.Sum256(c.Request.TLS.PeerCertificates[0].Raw)
		fp := hex.EncodeToString(sum[:])
		e, err := f.dir.ByTLSClient(ctx, fp)
		if err == nil && hasRole(e, store.RoleMerchant) {
			return &merchant{entity: e, method: "tls-client-certificate", cred: fp}, nil
		}
	}
	return nil, errors.New("no credential")
}

func hasRole(e *router.Entry, r store.Role) bool {
	for _, x := range e.P.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// CallRequest is the body of POST /v1/{group}/{operation}.
type CallRequest struct {
	// Recipient names the provider; empty: the routing rules choose.
	Recipient string `json:"recipient,omitempty"`
	// Fields are flat ECML fields (RFC 4112 §2.1 names: Ecom_*).
	Fields map[string]string `json:"fields"`
	// Encrypted holds sensitive elements the merchant's page encrypted for
	// the provider: "card" → an xenc:EncryptedData standing for Payment/Card.
	Encrypted map[string]string `json:"encrypted,omitempty"`
	// Routing hints: the card's BIN and last four digits, a bank code.
	Routing *RoutingHints `json:"routing,omitempty"`
}

// RoutingHints are public.
type RoutingHints struct {
	CardBIN   string `json:"card_bin,omitempty"`
	CardLast4 string `json:"card_last4,omitempty"`
	BankCode  string `json:"bank_code,omitempty"`
}

// CallResponse is the facade's answer.
type CallResponse struct {
	Outcome     string            `json:"outcome"` // answered, pending, unavailable
	Status      string            `json:"status"`  // Success, Requester, Responder
	SubStatus   string            `json:"sub_status,omitempty"`
	Message     string            `json:"message,omitempty"`
	Provider    string            `json:"provider"`
	RequestID   string            `json:"request_id"`
	ResponseID  string            `json:"response_id,omitempty"`
	RoutingNote string            `json:"routing,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
}

// noFacade are the service groups whose responses carry secrets (a virtual
// card number): they are not offered on the facade.
var noFacade = map[string]bool{"vcn": true}

// call serves POST /v1/{group}/{operation} (KECIS §12.4). Every refusal is
// one of the Problem values below; no input makes it panic.
func (f *Facade) call(c *gin.Context) {
	ctx := c.Request.Context()
	m := c.MustGet("merchant").(*merchant)
	group, op := c.Param("group"), c.Param("operation")
	service := saml.ServiceURI(group, op)
	if !pathSegment(group) || !pathSegment(op) || noFacade[group] {
		f.fail(c, ProblemUnknownService)
		return
	}
	key := c.GetHeader("Idempotency-Key")
	if saml.IsMutation(service) && key == "" {
		f.fail(c, ProblemIdempotencyKeyMissing)
		return
	}
	if len(key) > 255 {
		f.fail(c, ProblemIdempotencyKeyInvalid)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, f.cfg.MaxBodyBytes))
	if err != nil {
		f.fail(c, bodyProblem(err, f.cfg.MaxBodyBytes))
		return
	}
	in, err := decodeCall(body)
	if err != nil {
		f.fail(c, err)
		return
	}
	payload, err := f.payload(in.Fields)
	if err != nil {
		f.fail(c, err)
		return
	}
	hints := in.Routing
	if hints == nil {
		hints = &RoutingHints{}
	}
	// Card data: encrypted in the browser for one provider, or in clear
	// (development only; f.payload refused it otherwise).
	var encRecipient string
	for k := range in.Encrypted {
		if k != "card" {
			f.fail(c, ProblemUnknownEncrypted)
			return
		}
	}
	if x, ok := in.Encrypted["card"]; ok {
		ed, recipient, err := parseEncrypted(x)
		if err != nil {
			f.fail(c, ProblemInvalidEncryptedCard.WithCause(err))
			return
		}
		if payload.Ecom.Payment == nil {
			payload.Ecom.Payment = &ecml.Payment{}
		}
		if payload.Ecom.Payment.Card != nil {
			f.fail(c, ProblemCardTwice)
			return
		}
		payload.Ecom.Payment.EncryptedCard = ed
		encRecipient = recipient
	}
	if p := payload.Ecom.Payment; p != nil && p.Card != nil {
		pan := p.Card.Number.Reveal()
		if len(pan) >= 10 && hints.CardBIN == "" {
			hints.CardBIN, hints.CardLast4 = pan[:6], pan[len(pan)-4:]
		}
	}
	if problems := payload.Validate(ecml.ValidateOptions{Now: f.now(), AllowEncrypted: true, RequireEncrypted: !f.cfg.AllowClearCard}); len(problems) > 0 {
		// Paths and problems, never values (card numbers appear masked).
		f.fail(c, ProblemInvalidFields.WithDetail(problems.Error()))
		return
	}
	// The recipient: named, implied by the encryption, or routed.
	target := in.Recipient
	if encRecipient != "" {
		if target != "" && target != encRecipient {
			f.fail(c, ProblemRecipientMismatch)
			return
		}
		target = encRecipient
	}
	// An inquire or cancel by order number alone has no amount: it is
	// routed with a zero one.
	var money ecml.Money
	if t := payload.Ecom.Transaction; t != nil {
		money, _ = t.Money() // Validate checked it when present
	}
	dest, note, err := f.routes.Choose(ctx, Query{Service: service, Merchant: m.entity, Recipient: target, At: f.now(),
		CardBIN: hints.CardBIN, BankCode: hints.BankCode, Money: money})
	if err != nil {
		f.fail(c, routeProblem(err))
		return
	}
	eps := dest.D.EndpointsFor(service, saml.BindingSOAP)
	encCert, hasCert := dest.D.EncryptionCertificate(f.now())
	if len(eps) == 0 || !hasCert {
		f.fail(c, ProblemNoRoute.WithDetail("the provider publishes no endpoint or encryption key for this service"))
		return
	}
	// Build, encrypt for the recipient, sign as the hub OnBehalfOf the merchant.
	b := &saml.Builder{Issuer: f.cfg.HubEntityID, Now: f.now}
	req, err := b.NewRequest(eps[0].Location, service)
	if err != nil {
		f.fail(c, err)
		return
	}
	req.IdempotencyKey, req.OnBehalfOf, req.Payload = key, m.entity.P.EntityID, payload
	if hints.CardBIN != "" || hints.BankCode != "" {
		req.Routing = &saml.Routing{CardBIN: hints.CardBIN, CardLast4: hints.CardLast4, BankCode: hints.BankCode}
	}
	el, err := req.Element()
	if err != nil {
		// The fields were validated: a failure here is the hub's, or the
		// provider's metadata (an endpoint without a URL).
		f.fail(c, err)
		return
	}
	enc := &saml.Encryptor{Recipient: dest.P.EntityID, Cert: encCert}
	if _, err := saml.EncryptDocument(el, enc); err != nil {
		f.fail(c, err)
		return
	}
	if err := noClearSensitive(el); err != nil {
		f.fail(c, err)
		return
	}
	signed, err := f.signer.SignToBytes(el)
	if err != nil {
		f.fail(c, err)
		return
	}
	f.auditAuth(ctx, req, m, note, signed)
	res := f.rt.Relay(ctx, req, dest, saml.WrapSOAP(signed))
	out := CallResponse{Provider: dest.P.EntityID, RequestID: req.ID, RoutingNote: note,
		Status: short(res.Status.Code), SubStatus: res.Status.Sub(), Message: res.Status.Message}
	code := http.StatusOK
	switch res.Outcome {
	case router.OutcomeAnswered:
		out.Outcome, out.ResponseID = "answered", res.Response.ID
		if res.Response.Payload != nil {
			out.Fields = publicFields(res.Response.Payload)
		}
	case router.OutcomePending:
		out.Outcome, code = "pending", http.StatusAccepted
	case router.OutcomeRefused:
		switch res.Status.SubCode {
		case saml.CodeIdempotencyConflict:
			f.fail(c, ProblemIdempotencyKeyReused)
		default:
			f.fail(c, ProblemIdempotencyKeyInFlight)
		}
		return
	default:
		out.Outcome, code = "unavailable", http.StatusServiceUnavailable
	}
	c.JSON(code, out)
}

// pathSegment reports whether a group or operation of the path is one the
// OpenAPI description admits: lower-case letters and digits.
func pathSegment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// payload builds the request's ECML from its flat fields. Every name must
// be an ECML flat name; outside the development mode, a field inside an
// element KECIS §8.1 requires encrypted is refused before its value is
// read (the answer names the fields, never their values).
func (f *Facade) payload(fields map[string]string) (*ecml.Payload, error) {
	var unknown, clear []string
	for name, v := range fields {
		switch {
		case !isFlatName(name):
			unknown = append(unknown, publicName(name))
		case v != "" && sensitiveFlat(name) && !f.cfg.AllowClearCard:
			clear = append(clear, name)
		}
	}
	if len(clear) > 0 {
		sort.Strings(clear)
		return nil, ProblemClearSensitive.WithDetail(strings.Join(clear, ", "))
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, ProblemInvalidFields.WithDetail("unknown ECML field names: " + strings.Join(unknown, ", "))
	}
	payload, err := ecml.FromForm(toValues(fields))
	if err != nil {
		// The error lists field names and problems, never values.
		return nil, ProblemInvalidFields.WithDetail(err.Error())
	}
	if payload.Ecom == nil {
		payload.Ecom = &ecml.Ecom{}
	}
	if payload.Ecom.SchemaVersion == "" {
		payload.Ecom.SchemaVersion = ecml.SchemaVersion
	}
	return payload, nil
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
// routing's public explanation, or, for anything else (the store), an
// internal error whose cause is only logged.
func routeProblem(err error) *httpserver.Problem {
	if errors.Is(err, ErrNoRoute) {
		return ProblemNoRoute.WithDetail(err.Error())
	}
	return ProblemInternal.WithCause(err)
}

// auditAuth keeps the hub's record of how it authenticated the merchant,
// with the request the hub signed on its behalf: evidence for a dispute.
func (f *Facade) auditAuth(ctx context.Context, req *saml.ServiceRequest, m *merchant, note string, signed []byte) {
	d, _ := json.Marshal(map[string]any{"service": req.Service, "on_behalf_of": m.entity.P.EntityID,
		"auth_method": m.method, "credential_sha256": m.cred, "routing": note})
	rec := &store.AuditRecord{Time: f.now(), Kind: "facade.request", Actor: m.entity.P.EntityID, EntityID: m.entity.P.EntityID,
		TxID: f.cfg.HubEntityID + "|" + req.IdempotencyKey, RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: string(d), Message: signed}
	if req.IdempotencyKey == "" {
		rec.TxID = req.ID
	}
	if err := f.st.AppendAudit(ctx, rec); err != nil {
		f.log.ErrorContext(ctx, "audit", "err", err)
	}
}

// RouteRequest is the body of POST /v1/routes.
type RouteRequest struct {
	Service  string `json:"service"`
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	CardBIN  string `json:"card_bin,omitempty"`
	BankCode string `json:"bank_code,omitempty"`
}

// RouteResponse tells the merchant's page whom to encrypt for.
type RouteResponse struct {
	Recipient             string `json:"recipient"`
	EncryptionCertificate string `json:"encryption_certificate"`
	Routing               string `json:"routing"`
}

func (f *Facade) route(c *gin.Context) {
	m := c.MustGet("merchant").(*merchant)
	const maxRouteBody = 64 << 10
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxRouteBody))
	if err != nil {
		f.fail(c, bodyProblem(err, maxRouteBody))
		return
	}
	in, err := decodeRoute(body)
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

// The problems the facade answers.
var (
	ProblemUnauthenticated = httpserver.NewProblem("unauthenticated", http.StatusUnauthorized,
		"a merchant's TLS client certificate or API key is required")
	ProblemUnknownService = httpserver.NewProblem("unknown-service", http.StatusNotFound,
		"this service is not offered on the JSON facade")
	ProblemIdempotencyKeyMissing = httpserver.NewProblem("idempotency-key-missing", http.StatusBadRequest,
		"an Idempotency-Key header is required for an operation that changes state")
	ProblemIdempotencyKeyInvalid = httpserver.NewProblem("idempotency-key-invalid", http.StatusBadRequest,
		"the Idempotency-Key is longer than 255 characters")
	ProblemBadRequest = httpserver.NewProblem("bad-request", http.StatusBadRequest,
		"the body is not a request as the OpenAPI description (GET /v1/openapi.json) defines it")
	ProblemInvalidFields = httpserver.NewProblem("invalid-fields", http.StatusBadRequest,
		"the ECML fields are not valid")
	ProblemClearSensitive = httpserver.NewProblem("clear-card-refused", http.StatusBadRequest,
		"sensitive fields in clear are refused (card, track data, password, birth date: KECIS §8.1): "+
			"encrypt the card for the provider in the browser (POST /v1/routes names the provider and its certificate)")
	ProblemInvalidEncryptedCard = httpserver.NewProblem("invalid-encrypted-card", http.StatusBadRequest,
		"encrypted.card must be one xenc:EncryptedData for a named recipient")
	ProblemCardTwice = httpserver.NewProblem("card-twice", http.StatusBadRequest,
		"send the card either encrypted or in fields, not both")
	ProblemUnknownEncrypted = httpserver.NewProblem("unknown-encrypted", http.StatusBadRequest,
		"only encrypted.card is accepted")
	ProblemRecipientMismatch = httpserver.NewProblem("recipient-mismatch", http.StatusBadRequest,
		"the card is encrypted for another recipient than the one named")
	ProblemInvalidAmount = httpserver.NewProblem("invalid-amount", http.StatusBadRequest,
		"amount and currency are not a valid ECML amount")
	ProblemNoRoute = httpserver.NewProblem("no-route", http.StatusUnprocessableEntity,
		"no provider can take this request")
	ProblemIdempotencyKeyReused = httpserver.NewProblem("idempotency-key-reused", http.StatusUnprocessableEntity,
		"the Idempotency-Key was used with a different request")
	ProblemIdempotencyKeyInFlight = httpserver.NewProblem("idempotency-key-in-flight", http.StatusConflict,
		"a request with this Idempotency-Key is being processed")
	ProblemInternal = httpserver.ProblemInternal
)

// problems lists every Problem, for the tests.
var problems = []*httpserver.Problem{ProblemUnauthenticated, ProblemUnknownService, ProblemIdempotencyKeyMissing,
	ProblemIdempotencyKeyInvalid, ProblemBadRequest, ProblemInvalidFields, ProblemClearSensitive,
	ProblemInvalidEncryptedCard, ProblemCardTwice, ProblemUnknownEncrypted, ProblemRecipientMismatch,
	ProblemInvalidAmount, ProblemNoRoute, ProblemIdempotencyKeyReused, ProblemIdempotencyKeyInFlight, ProblemInternal}

// fail answers err as a problem document and logs it with its cause: a
// refusal at Info, an internal error at Error. Nothing logged or sent holds
// a card number (RedactPANs), and causes are built from names only.
func (f *Facade) fail(c *gin.Context, err error) {
	p := httpserver.AsProblem(err)
	attrs := []slog.Attr{slog.String("problem", p.Type), slog.Int("status", p.Status)}
	if v, ok := c.Get("merchant"); ok {
		attrs = append(attrs, slog.String("merchant", v.(*merchant).entity.P.EntityID))
	}
	if p.Detail() != "" {
		p = p.WithDetail(ecml.RedactPANs(p.Detail()))
		attrs = append(attrs, slog.String("detail", p.Detail()))
	}
	if p.Cause() != nil {
		attrs = append(attrs, slog.String("cause", ecml.RedactPANs(p.Cause().Error())))
	}
	lvl := slog.LevelInfo
	if p.Status >= http.StatusInternalServerError {
		lvl = slog.LevelError
	}
	f.log.LogAttrs(c.Request.Context(), lvl, "facade refused", attrs...)
	c.Abort()
	p.Write(c.Writer)
}

// bodyProblem is the answer to a body that could not be read.
func bodyProblem(err error, max int64) *httpserver.Problem {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return ProblemBadRequest.WithDetail(fmt.Sprintf("the body is larger than %d bytes", max))
	}
	return ProblemBadRequest.WithDetail("the body could not be read").WithCause(err)
}

// decodeCall reads a CallRequest strictly, as the OpenAPI description says
// (additionalProperties false): one JSON object; no member it does not
// name, names compared exactly (encoding/json alone would take "Fields"
// for "fields"); a member given twice refused; fields required; every
// value of its type; nothing after the object.
func decodeCall(body []byte) (*CallRequest, error) {
	top, err := jsonObject(body, "the body", "recipient", "fields", "encrypted", "routing")
	if err != nil {
		return nil, err
	}
	in := &CallRequest{}
	if raw, ok := top["recipient"]; ok {
		if in.Recipient, err = jsonString(raw, "recipient"); err != nil {
			return nil, err
		}
	}
	raw, ok := top["fields"]
	if !ok {
		return nil, ProblemBadRequest.WithDetail("fields is required")
	}
	if in.Fields, err = jsonStrings(raw, "fields"); err != nil {
		return nil, err
	}
	if raw, ok := top["encrypted"]; ok {
		if in.Encrypted, err = jsonStrings(raw, "encrypted"); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["routing"]; ok {
		m, err := jsonObject(raw, "routing", "card_bin", "card_last4", "bank_code")
		if err != nil {
			return nil, err
		}
		h := &RoutingHints{}
		for _, x := range []struct {
			name     string
			dst      *string
			min, max int
		}{{"card_bin", &h.CardBIN, 6, 8}, {"card_last4", &h.CardLast4, 4, 4}, {"bank_code", &h.BankCode, 3, 3}} {
			if *x.dst, err = jsonDigits(m, "routing", x.name, x.min, x.max); err != nil {
				return nil, err
			}
		}
		in.Routing = h
	}
	return in, nil
}

// decodeRoute reads a RouteRequest as strictly as decodeCall.
func decodeRoute(body []byte) (*RouteRequest, error) {
	top, err := jsonObject(body, "the body", "service", "amount", "currency", "card_bin", "bank_code")
	if err != nil {
		return nil, err
	}
	in := &RouteRequest{}
	for _, x := range []struct {
		name string
		dst  *string
	}{{"service", &in.Service}, {"amount", &in.Amount}, {"currency", &in.Currency}} {
		if raw, ok := top[x.name]; ok {
			if *x.dst, err = jsonString(raw, x.name); err != nil {
				return nil, err
			}
		}
	}
	if in.Service == "" {
		return nil, ProblemBadRequest.WithDetail("service is required")
	}
	if in.CardBIN, err = jsonDigits(top, "", "card_bin", 6, 8); err != nil {
		return nil, err
	}
	if in.BankCode, err = jsonDigits(top, "", "bank_code", 3, 3); err != nil {
		return nil, err
	}
	return in, nil
}

// jsonObject splits one JSON object into its members. With allowed names,
// any other member is refused; a member given twice always is. Whatever
// follows the object is refused.
func jsonObject(data []byte, where string, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, ProblemBadRequest.WithDetail(where + " must be a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
		}
		if _, dup := out[name]; dup {
			return nil, ProblemBadRequest.WithDetail(where + " has the member " + publicName(name) + " twice")
		}
		if allowed != nil && !slices.Contains(allowed, name) {
			return nil, ProblemBadRequest.WithDetail(where + " has a member the OpenAPI description does not define: " + publicName(name) +
				" (it allows " + strings.Join(allowed, ", ") + ")")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
		}
		out[name] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, ProblemBadRequest.WithDetail(where + " is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ProblemBadRequest.WithDetail(where + " is followed by more data")
	}
	return out, nil
}

// jsonString reads a member that must be a JSON string (not null).
func jsonString(raw json.RawMessage, where string) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", ProblemBadRequest.WithDetail(where + " must be a JSON string")
	}
	return s, nil
}

// jsonStrings reads a member that must be an object of strings.
func jsonStrings(raw json.RawMessage, where string) (map[string]string, error) {
	m, err := jsonObject(raw, where)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if out[k], err = jsonString(v, where+"."+publicName(k)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonDigits reads an optional member of m that must be a string of min to
// max digits (the OpenAPI patterns of BINs, last digits and bank codes).
func jsonDigits(m map[string]json.RawMessage, where, name string, min, max int) (string, error) {
	if where != "" {
		where += "."
	}
	raw, ok := m[name]
	if !ok {
		return "", nil
	}
	s, err := jsonString(raw, where+name)
	if err != nil {
		return "", err
	}
	if len(s) < min || len(s) > max || strings.Trim(s, "0123456789") != "" {
		if min == max {
			return "", ProblemBadRequest.WithDetail(fmt.Sprintf("%s%s must be %d digits", where, name, min))
		}
		return "", ProblemBadRequest.WithDetail(fmt.Sprintf("%s%s must be %d to %d digits", where, name, min, max))
	}
	return s, nil
}

// publicName is a member or field name as an answer or a log line may
// repeat it: a short name of letters, digits and _ . - that holds no card
// number; anything else is not repeated.
func publicName(s string) string {
	ok := s != "" && len(s) <= 64 && !ecml.ContainsPAN(s)
	for i := 0; ok && i < len(s); i++ {
		ch := s[i]
		ok = ch == '_' || ch == '.' || ch == '-' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
	}
	if !ok {
		return "(a name not repeated)"
	}
	return strconv.Quote(s)
}

func toValues(m map[string]string) url.Values {
	v := url.Values{}
	for k, x := range m {
		v.Set(k, x)
	}
	return v
}

// isFlatName reports whether name is an ECML flat field name.
func isFlatName(name string) bool {
	_, ok := ecml.FlatNamePath(name)
	return ok
}

// sensitivePaths are the paths KECIS §8.1 requires encrypted (elements)
// and the sensitive values inside them: ecml's one list.
var sensitivePaths = ecml.SensitivePaths()

// sensitiveFlat reports whether a flat field lies at or inside a path of
// the must-encrypt list: the card (number, expiry, holder…), the loyalty
// card, the password, track data, the birth date.
func sensitiveFlat(name string) bool {
	p, ok := ecml.FlatNamePath(name)
	if !ok {
		return false
	}
	for _, s := range sensitivePaths {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// publicFields returns the response payload's flat fields with every
// sensitive value dropped and any card-number-like run masked.
func publicFields(p *ecml.Payload) map[string]string {
	out := map[string]string{}
	for k, v := range p.Form() {
		if len(v) == 0 || sensitiveFlat(k) {
			continue
		}
		out[k] = ecml.RedactPANs(v[0])
	}
	return out
}

func short(code string) string {
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		return code[i+1:]
	}
	return code
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
