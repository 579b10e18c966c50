// Package facade is the hub's JSON facade for merchants that do not build
// KECIS envelopes: POST /v1/{group}/{operation}. The hub authenticates the
// merchant (TLS client certificate or an API key bound to its entity),
// builds and signs the request OnBehalfOf the merchant, chooses the
// recipient by the routing rules, encrypts for it and relays it like any
// other request (DESIGN.md, "The hub is a verifying router"). Card data
// arrives already encrypted for the provider (an xenc:EncryptedData the
// merchant's page made in the browser, after POST /v1/routes named the
// provider and its certificate), or — only where the operator enabled it —
// in clear over TLS, and is encrypted at once.
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
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/gin-gonic/gin"

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
	// AllowClearCard accepts card data in clear over TLS and encrypts it at
	// once. Only for development, or for a hub that accepts card-data (PCI
	// DSS) scope: the hub then sees card numbers, in memory.
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
			problem(c, http.StatusUnauthorized, "unauthenticated", "a merchant's TLS client certificate or API key is required", "")
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

func (f *Facade) call(c *gin.Context) {
	ctx := c.Request.Context()
	m := c.MustGet("merchant").(*merchant)
	group, op := c.Param("group"), c.Param("operation")
	service := saml.ServiceURI(group, op)
	if _, _, ok := saml.SplitService(service); !ok || noFacade[group] {
		problem(c, http.StatusNotFound, "unknown-service", "this service is not offered on the JSON facade", "")
		return
	}
	key := c.GetHeader("Idempotency-Key")
	if saml.IsMutation(service) && key == "" {
		problem(c, http.StatusBadRequest, "idempotency-key-missing", "an Idempotency-Key header is required for "+service, "")
		return
	}
	if len(key) > 255 {
		problem(c, http.StatusBadRequest, "idempotency-key-invalid", "the Idempotency-Key is longer than 255 characters", "")
		return
	}
	var in CallRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, f.cfg.MaxBodyBytes))
	if err != nil || json.Unmarshal(body, &in) != nil {
		problem(c, http.StatusBadRequest, "bad-request", "the body must be a JSON object", "")
		return
	}
	payload, err := ecml.FromForm(toValues(in.Fields))
	if err != nil {
		// The error lists field names and problems, never values.
		problem(c, http.StatusBadRequest, "invalid-fields", "the ECML fields are not valid", err.Error())
		return
	}
	if payload.Ecom == nil {
		payload.Ecom = &ecml.Ecom{}
	}
	if payload.Ecom.SchemaVersion == "" {
		payload.Ecom.SchemaVersion = ecml.SchemaVersion
	}
	hints := in.Routing
	if hints == nil {
		hints = &RoutingHints{}
	}
	// Card data: encrypted in the browser for one provider, or in clear
	// (development only).
	var encRecipient string
	if x, ok := in.Encrypted["card"]; ok {
		ed, recipient, err := parseEncrypted(x)
		if err != nil {
			problem(c, http.StatusBadRequest, "invalid-encrypted-card", "encrypted.card must be one xenc:EncryptedData for a named recipient", "")
			return
		}
		if payload.Ecom.Payment == nil {
			payload.Ecom.Payment = &ecml.Payment{}
		}
		if payload.Ecom.Payment.Card != nil {
			problem(c, http.StatusBadRequest, "card-twice", "send the card either encrypted or in fields, not both", "")
			return
		}
		payload.Ecom.Payment.EncryptedCard = ed
		encRecipient = recipient
	}
	for k := range in.Encrypted {
		if k != "card" {
			problem(c, http.StatusBadRequest, "unknown-encrypted", "only encrypted.card is accepted", "")
			return
		}
	}
	if p := payload.Ecom.Payment; p != nil && p.Card != nil {
		if !f.cfg.AllowClearCard {
			problem(c, http.StatusBadRequest, "clear-card-refused",
				"card data in clear is refused: encrypt it for the provider in the browser (POST /v1/routes names the provider and its certificate)", "")
			return
		}
		pan := p.Card.Number.Reveal()
		if len(pan) >= 10 && hints.CardBIN == "" {
			hints.CardBIN, hints.CardLast4 = pan[:6], pan[len(pan)-4:]
		}
	}
	if problems := payload.Validate(ecml.ValidateOptions{Now: f.now(), AllowEncrypted: true}); len(problems) > 0 {
		problem(c, http.StatusBadRequest, "invalid-fields", "the ECML fields are not valid", problems.Error())
		return
	}
	// The recipient: named, implied by the encryption, or routed.
	target := in.Recipient
	if encRecipient != "" {
		if target != "" && target != encRecipient {
			problem(c, http.StatusBadRequest, "recipient-mismatch", "the card is encrypted for another recipient than the one named", "")
			return
		}
		target = encRecipient
	}
	money, _ := payload.Ecom.Transaction.Money()
	dest, note, err := f.routes.Choose(ctx, Query{Service: service, Merchant: m.entity, Recipient: target, At: f.now(),
		CardBIN: hints.CardBIN, BankCode: hints.BankCode, Money: money})
	if err != nil {
		problem(c, http.StatusUnprocessableEntity, "no-route", "no provider can take this request", err.Error())
		return
	}
	eps := dest.D.EndpointsFor(service, saml.BindingSOAP)
	encCert, hasCert := dest.D.EncryptionCertificate(f.now())
	if len(eps) == 0 || !hasCert {
		problem(c, http.StatusUnprocessableEntity, "no-route", "the provider publishes no endpoint or encryption key for this service", "")
		return
	}
	// Build, encrypt for the recipient, sign as the hub OnBehalfOf the merchant.
	b := &saml.Builder{Issuer: f.cfg.HubEntityID, Now: f.now}
	req, err := b.NewRequest(eps[0].Location, service)
	if err != nil {
		f.internal(c, err)
		return
	}
	req.IdempotencyKey, req.OnBehalfOf, req.Payload = key, m.entity.P.EntityID, payload
	if hints.CardBIN != "" || hints.BankCode != "" {
		req.Routing = &saml.Routing{CardBIN: hints.CardBIN, CardLast4: hints.CardLast4, BankCode: hints.BankCode}
	}
	el, err := req.Element()
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid-request", "the request cannot be built", err.Error())
		return
	}
	enc := &saml.Encryptor{Recipient: dest.P.EntityID, Cert: encCert}
	if _, err := saml.EncryptDocument(el, enc); err != nil {
		f.internal(c, err)
		return
	}
	signed, err := f.signer.SignToBytes(el)
	if err != nil {
		f.internal(c, err)
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
			problem(c, http.StatusUnprocessableEntity, "idempotency-key-reused", "the Idempotency-Key was used with a different request", "")
		default:
			problem(c, http.StatusConflict, "idempotency-key-in-flight", "a request with this Idempotency-Key is being processed", "")
		}
		return
	default:
		out.Outcome, code = "unavailable", http.StatusServiceUnavailable
	}
	c.JSON(code, out)
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
	var in RouteRequest
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)).Decode(&in); err != nil || in.Service == "" {
		problem(c, http.StatusBadRequest, "bad-request", "a JSON body with service is required", "")
		return
	}
	q := Query{Service: in.Service, Merchant: m.entity, CardBIN: in.CardBIN, BankCode: in.BankCode, At: f.now()}
	if in.Amount != "" {
		money, err := ecml.ParseAmount(in.Amount, in.Currency)
		if err != nil {
			problem(c, http.StatusBadRequest, "invalid-amount", "amount and currency are not a valid ECML amount", "")
			return
		}
		q.Money = money
	}
	dest, note, err := f.routes.Choose(c.Request.Context(), q)
	if err != nil {
		problem(c, http.StatusUnprocessableEntity, "no-route", "no provider can take this request", err.Error())
		return
	}
	cert, ok := dest.D.EncryptionCertificate(f.now())
	if !ok {
		problem(c, http.StatusUnprocessableEntity, "no-route", "the provider publishes no encryption key", "")
		return
	}
	c.JSON(http.StatusOK, RouteResponse{Recipient: dest.P.EntityID, Routing: note,
		EncryptionCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))})
}

func (f *Facade) internal(c *gin.Context, err error) {
	f.log.ErrorContext(c, "facade", "err", err)
	problem(c, http.StatusInternalServerError, "internal", "internal error", "")
}

func problem(c *gin.Context, status int, typ, title, detail string) {
	body := gin.H{"type": "urn:kecis:problem:" + typ, "title": title, "status": status}
	if detail != "" {
		body["detail"] = ecml.RedactPANs(detail)
	}
	c.Render(status, problemRender{body})
}

type problemRender struct{ v any }

func (p problemRender) Render(w http.ResponseWriter) error {
	p.WriteContentType(w)
	return json.NewEncoder(w).Encode(p.v)
}

func (problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}

func toValues(m map[string]string) url.Values {
	v := url.Values{}
	for k, x := range m {
		v.Set(k, x)
	}
	return v
}

// publicFields returns the response payload's flat fields with every
// sensitive value dropped and any card-number-like run masked.
func publicFields(p *ecml.Payload) map[string]string {
	out := map[string]string{}
	for k, v := range p.Form() {
		if len(v) == 0 || sensitiveFlat[k] {
			continue
		}
		out[k] = ecml.RedactPANs(v[0])
	}
	return out
}

var sensitiveFlat = map[string]bool{
	"Ecom_Payment_Card_Number": true, "Ecom_Payment_Card_Verification": true, "Ecom_Loyalty_Card_Number": true,
	"Ecom_Loyalty_Card_Verification": true, "Ecom_User_Password": true, "Ecom_Transaction_Track1": true, "Ecom_Transaction_Track2": true,
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
