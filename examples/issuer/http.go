package issuer

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
)

// maxBody bounds a request body of the native API.
const maxBody = 64 << 10

// Handler returns the issuer's native HTTP API (its own JSON style, not
// KECIS) and its admin page:
//
//	POST /api/v1/cards                       admin: issue a test card (returns the number once)
//	GET  /api/v1/cards                       admin: list cards (masked)
//	GET  /api/v1/cards/{id}                  admin: one card
//	PUT  /api/v1/cards/{id}/status           admin: {"status":"active|blocked|lost"}
//	GET  /api/v1/cards/{id}/approvals?after= admin: the card's ledger, a page of approvals
//	POST /api/v1/approvals                   approve
//	GET  /api/v1/approvals?merchant=&order=  inquire by order
//	GET  /api/v1/approvals/{no}?merchant=    inquire by approval number
//	POST /api/v1/approvals/{no}/cancel       void before the cut-off
//	POST /api/v1/approvals/{no}/refunds      (partial) refund after settlement
//	POST /api/v1/settlement/run              admin: run the settlement job now
//	POST /api/v1/notifications/deliver       admin: retry pending SMS
//	POST /api/v1/cards/{id}/auth/unlock      admin: clear the card's authentication lock
//	POST /api/v1/cards/{id}/certificates     admin: issue a client certificate (PKCS#12, once)
//	POST /api/v1/certificates/{serial}/revoke admin: revoke a client certificate
//	GET  /ca/crl                             the cardholder CA's CRL (DER)
//	GET  /ca/cert                            the cardholder CA's certificate (DER)
//	GET  /admin                              admin: HTML page of cards, approvals and SMS
//	POST /admin/cards/{id}/unlock            admin: the page's unlock button
//
// Every POST that changes state needs an Idempotency-Key header; a repeat
// answers with the original result and Idempotent-Replayed: true. Errors
// are {"code":"INSUFFICIENT_FUNDS","message":"…"} with the status of
// Code.HTTPStatus (declines are 402). Amounts are integers in minor units
// with a separate currency.
func (i *Issuer) Handler() http.Handler {
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"POST", "/api/v1/cards", i.adminOnly(i.handleIssueCard)},
		{"GET", "/api/v1/cards", i.adminOnly(i.handleListCards)},
		{"GET", "/api/v1/cards/{id}", i.adminOnly(i.handleGetCard)},
		{"PUT", "/api/v1/cards/{id}/status", i.adminOnly(i.handleCardStatus)},
		{"GET", "/api/v1/cards/{id}/approvals", i.adminOnly(i.handleCardApprovals)},
		{"POST", "/api/v1/approvals", i.handleApprove},
		{"GET", "/api/v1/approvals", i.handleInquireOrder},
		{"GET", "/api/v1/approvals/{no}", i.handleInquireNumber},
		{"POST", "/api/v1/approvals/{no}/cancel", i.handleCancel},
		{"POST", "/api/v1/approvals/{no}/refunds", i.handleRefund},
		{"POST", "/api/v1/settlement/run", i.adminOnly(i.handleSettle)},
		{"POST", "/api/v1/notifications/deliver", i.adminOnly(i.handleDeliver)},
		{"POST", "/api/v1/cards/{id}/auth/unlock", i.adminOnly(i.handleUnlock)},
		{"POST", "/api/v1/cards/{id}/certificates", i.adminOnly(i.handleIssueCertificate)},
		{"POST", "/api/v1/certificates/{serial}/revoke", i.adminOnly(i.handleRevokeCertificate)},
		{"GET", "/ca/crl", i.handleCRL},
		{"GET", "/ca/cert", i.handleCACert},
		{"GET", "/admin", i.adminOnly(i.handleAdminPage)},
		{"POST", "/admin/cards/{id}/unlock", i.adminOnly(i.handleAdminUnlock)},
	}
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, r := range routes {
		mux.HandleFunc(r.method+" "+r.path, r.h)
		if allowed[r.path] == nil {
			paths = append(paths, r.path)
		}
		allowed[r.path] = append(allowed[r.path], r.method)
	}
	// A path without a method matches the methods no route has: answer
	// 405 in the API's own error format.
	for _, p := range paths {
		allow := strings.Join(allowed[p], ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			i.writeError(w, r, newError(CodeMethodNotAllowed, "use "+allow))
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		i.writeError(w, r, newError(CodeNotFound, "no such endpoint"))
	})
	return i.logRequests(mux)
}

// Wire types: the JSON of the native API, kept apart from the Go API.

type wireCardData struct {
	Number         string `json:"number"`
	ExpMonth       int    `json:"exp_month"`
	ExpYear        int    `json:"exp_year"`
	PasswordPrefix string `json:"password_prefix,omitempty"`
	BirthDate      string `json:"birth_date,omitempty"`
}

type wireApproveRequest struct {
	MerchantID   string       `json:"merchant_id"`
	MerchantName string       `json:"merchant_name,omitempty"`
	OrderID      string       `json:"order_id"`
	Amount       int64        `json:"amount"`
	Currency     string       `json:"currency"`
	Installments int          `json:"installments,omitempty"`
	Card         wireCardData `json:"card"`
	AuthValue    string       `json:"auth_value,omitempty"`
	AuthMerchant string       `json:"auth_merchant,omitempty"`
}

type wireCancelRequest struct {
	MerchantID string `json:"merchant_id"`
	Reason     string `json:"reason,omitempty"`
}

type wireRefundRequest struct {
	MerchantID string `json:"merchant_id"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Reason     string `json:"reason,omitempty"`
}

type wireIssueCardRequest struct {
	Type        string `json:"type"`
	HolderName  string `json:"holder_name"`
	HolderPhone string `json:"holder_phone"`
	BirthDate   string `json:"birth_date"`
	Password    string `json:"password"`
	Limit       int64  `json:"limit"`
	Currency    string `json:"currency,omitempty"`
	ExpMonth    int    `json:"exp_month,omitempty"`
	ExpYear     int    `json:"exp_year,omitempty"`
	// AuthPassword and EnrolTOTP: cardholder authentication (KECIS §15.7).
	AuthPassword string `json:"auth_password,omitempty"`
	EnrolTOTP    bool   `json:"enrol_totp,omitempty"`
}

type wireIssueCertificate struct {
	HolderName     string `json:"holder_name"`
	PKCS12Password string `json:"pkcs12_password"`
}

type wireCertificate struct {
	Serial      string    `json:"serial"`
	NotAfter    time.Time `json:"not_after"`
	Certificate string    `json:"certificate"` // PEM
	PKCS12      []byte    `json:"pkcs12"`      // base64 in JSON: this response only
}

type wireCardStatus struct {
	Status string `json:"status"`
}

type wireCardRef struct {
	ID     string `json:"id"`
	Masked string `json:"masked"`
	Type   string `json:"type"`
}

type wireRefund struct {
	ID        string    `json:"id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

type wireApproval struct {
	ApprovalNumber   string       `json:"approval_number"`
	Status           string       `json:"status"`
	MerchantID       string       `json:"merchant_id"`
	MerchantName     string       `json:"merchant_name"`
	OrderID          string       `json:"order_id"`
	Amount           int64        `json:"amount"`
	Currency         string       `json:"currency"`
	RefundedAmount   int64        `json:"refunded_amount"`
	RefundableAmount int64        `json:"refundable_amount"`
	Installments     int          `json:"installments"`
	CardholderAuth   string       `json:"cardholder_auth"`
	Card             wireCardRef  `json:"card"`
	VirtualCard      string       `json:"virtual_card,omitempty"` // masked
	ApprovedAt       time.Time    `json:"approved_at"`
	CutOffAt         time.Time    `json:"cut_off_at"`
	CancelledAt      *time.Time   `json:"cancelled_at,omitempty"`
	SettledAt        *time.Time   `json:"settled_at,omitempty"`
	BatchID          string       `json:"settlement_batch,omitempty"`
	Verification     bool         `json:"verification"`
	Refunds          []wireRefund `json:"refunds"`
}

type wireRefundResponse struct {
	Refund   wireRefund   `json:"refund"`
	Approval wireApproval `json:"approval"`
}

type wireCard struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	Masked         string    `json:"masked"`
	BIN            string    `json:"bin"`
	Last4          string    `json:"last4"`
	ExpMonth       int       `json:"exp_month"`
	ExpYear        int       `json:"exp_year"`
	HolderName     string    `json:"holder_name"`
	HolderPhone    string    `json:"holder_phone"`
	Currency       string    `json:"currency"`
	Limit          int64     `json:"limit"`
	Available      int64     `json:"available"`
	FailedAttempts int       `json:"failed_attempts"`
	CreatedAt      time.Time `json:"created_at"`
	AuthPassword   bool      `json:"auth_password"`
	TOTP           bool      `json:"totp"`
	AuthFailures   int       `json:"auth_failures"`
	AuthLocked     bool      `json:"auth_locked"`
}

type wireIssuedCard struct {
	Card   wireCard  `json:"card"`
	Number string    `json:"number"` // the full card number: this response only
	TOTP   *wireTOTP `json:"totp,omitempty"`
}

type wireTOTP struct {
	Seed string `json:"seed"` // base32: this response only
	URI  string `json:"uri"`  // otpauth://totp/…
}

type wireSettlement struct {
	BatchID string           `json:"batch_id,omitempty"`
	RunAt   time.Time        `json:"run_at"`
	Count   int              `json:"count"`
	Totals  map[string]int64 `json:"totals"`
}

type wireError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func toWireApproval(a *Approval) wireApproval {
	w := wireApproval{
		ApprovalNumber: a.Number, Status: string(a.Status), MerchantID: a.MerchantID,
		MerchantName: a.MerchantName, OrderID: a.OrderID, Amount: a.Amount.Minor,
		Currency: a.Amount.Currency, RefundedAmount: a.Refunded, RefundableAmount: a.Refundable(),
		Installments: a.Installments, CardholderAuth: string(a.CardholderAuth),
		Card:       wireCardRef{ID: a.CardID, Masked: a.CardBIN + "******" + a.CardLast4, Type: string(a.CardType)},
		ApprovedAt: a.ApprovedAt, CutOffAt: a.CutOffAt, BatchID: a.BatchID, Verification: a.Verification, Refunds: []wireRefund{},
		VirtualCard: a.VirtualCard,
	}
	if !a.CancelledAt.IsZero() {
		t := a.CancelledAt
		w.CancelledAt = &t
	}
	if !a.SettledAt.IsZero() {
		t := a.SettledAt
		w.SettledAt = &t
	}
	for _, r := range a.Refunds {
		w.Refunds = append(w.Refunds, toWireRefund(&r))
	}
	return w
}

func toWireRefund(r *Refund) wireRefund {
	return wireRefund{ID: r.ID, Amount: r.Amount.Minor, Currency: r.Amount.Currency, Reason: r.Reason, CreatedAt: r.CreatedAt}
}

func toWireCard(c *Card) wireCard {
	return wireCard{
		ID: c.ID, Type: string(c.Type), Status: string(c.Status), Masked: c.Masked(), BIN: c.BIN,
		Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, HolderName: c.HolderName,
		HolderPhone: MaskPhone(c.HolderPhone), Currency: c.Currency, Limit: c.Limit,
		Available: c.Available, FailedAttempts: c.FailedAttempts, CreatedAt: c.CreatedAt,
		AuthPassword: c.AuthPassword, TOTP: c.TOTP, AuthFailures: c.AuthFailures, AuthLocked: c.AuthLocked,
	}
}

func (i *Issuer) handleApprove(w http.ResponseWriter, r *http.Request) {
	var in wireApproveRequest
	if !i.decode(w, r, &in) {
		return
	}
	req := ApproveRequest{
		MerchantID: in.MerchantID, MerchantName: in.MerchantName, OrderID: in.OrderID,
		Amount: ecml.Money{Minor: in.Amount, Currency: in.Currency}, Installments: in.Installments,
		Card: CardData{
			PAN: ecml.PAN(in.Card.Number), ExpMonth: in.Card.ExpMonth, ExpYear: in.Card.ExpYear,
		},
		AuthValue: in.AuthValue, AuthMerchant: in.AuthMerchant,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	}
	if in.Card.PasswordPrefix != "" || in.Card.BirthDate != "" {
		req.Card.KeyIn = &KeyIn{PasswordPrefix: ecml.Secret(in.Card.PasswordPrefix), BirthDate: ecml.Secret(in.Card.BirthDate)}
	}
	a, err := i.Approve(r.Context(), req)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.Replayed, toWireApproval(a))
}

func (i *Issuer) handleCancel(w http.ResponseWriter, r *http.Request) {
	var in wireCancelRequest
	if !i.decode(w, r, &in) {
		return
	}
	a, err := i.Cancel(r.Context(), CancelRequest{
		MerchantID: in.MerchantID, ApprovalNumber: r.PathValue("no"), Reason: in.Reason,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Replayed, toWireApproval(a))
}

func (i *Issuer) handleRefund(w http.ResponseWriter, r *http.Request) {
	var in wireRefundRequest
	if !i.decode(w, r, &in) {
		return
	}
	rf, err := i.Refund(r.Context(), RefundRequest{
		MerchantID: in.MerchantID, ApprovalNumber: r.PathValue("no"),
		Amount: ecml.Money{Minor: in.Amount, Currency: in.Currency}, Reason: in.Reason,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rf.Replayed, wireRefundResponse{Refund: toWireRefund(rf), Approval: toWireApproval(rf.Approval)})
}

func (i *Issuer) handleInquireNumber(w http.ResponseWriter, r *http.Request) {
	a, err := i.Inquire(r.Context(), InquireRequest{MerchantID: r.URL.Query().Get("merchant"), ApprovalNumber: r.PathValue("no")})
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, toWireApproval(a))
}

func (i *Issuer) handleInquireOrder(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("order") == "" {
		i.writeError(w, r, invalid("query parameters merchant and order are required"))
		return
	}
	a, err := i.Inquire(r.Context(), InquireRequest{MerchantID: q.Get("merchant"), OrderID: q.Get("order")})
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, toWireApproval(a))
}

func (i *Issuer) handleIssueCard(w http.ResponseWriter, r *http.Request) {
	var in wireIssueCardRequest
	if !i.decode(w, r, &in) {
		return
	}
	c, err := i.IssueCard(r.Context(), IssueCardRequest{
		Type: CardType(in.Type), HolderName: in.HolderName, HolderPhone: in.HolderPhone,
		BirthDate: ecml.Secret(in.BirthDate), Password: ecml.Secret(in.Password), Limit: in.Limit,
		Currency: in.Currency, ExpMonth: in.ExpMonth, ExpYear: in.ExpYear,
		AuthPassword: ecml.Secret(in.AuthPassword), EnrolTOTP: in.EnrolTOTP,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	out := wireIssuedCard{Card: toWireCard(&c.Card), Number: c.PAN.Reveal()}
	if t := c.TOTPEnrolment; t != nil {
		out.TOTP = &wireTOTP{Seed: t.Seed.Reveal(), URI: t.URI.Reveal()}
	}
	writeJSON(w, http.StatusCreated, c.Replayed, out)
}

func (i *Issuer) handleUnlock(w http.ResponseWriter, r *http.Request) {
	c, err := i.UnlockAuth(r.Context(), r.PathValue("id"))
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, toWireCard(c))
}

// handleIssueCertificate issues a client certificate and answers it with
// its key as PKCS#12 under the password given — this response only (the
// issuer keeps no key).
func (i *Issuer) handleIssueCertificate(w http.ResponseWriter, r *http.Request) {
	var in wireIssueCertificate
	if !i.decode(w, r, &in) {
		return
	}
	if len(in.PKCS12Password) < 4 || len(in.PKCS12Password) > 128 {
		i.writeError(w, r, invalid("pkcs12_password must be 4 to 128 characters"))
		return
	}
	cc, err := i.IssueClientCertificate(r.Context(), r.PathValue("id"), in.HolderName)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	p12, err := cc.PKCS12(in.PKCS12Password, i.rand)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	certPEM, _, err := cc.PEM()
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, false, wireCertificate{Serial: cc.Serial, NotAfter: cc.Certificate.NotAfter,
		Certificate: string(certPEM), PKCS12: p12})
}

func (i *Issuer) handleRevokeCertificate(w http.ResponseWriter, r *http.Request) {
	if err := i.RevokeCertificate(r.Context(), r.PathValue("serial")); err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, map[string]any{"serial": r.PathValue("serial"), "revoked": true})
}

// handleCRL serves the cardholder CA's CRL (RFC 5280, DER), cacheable
// until half its validity has passed.
func (i *Issuer) handleCRL(w http.ResponseWriter, r *http.Request) {
	crl, err := i.CRL(r.Context())
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	age := max(int(crl.NextUpdate.Sub(crl.ThisUpdate).Seconds()/2-i.authNow().Sub(crl.ThisUpdate).Seconds()), 0)
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(age))
	_, _ = w.Write(crl.Raw)
}

func (i *Issuer) handleCACert(w http.ResponseWriter, r *http.Request) {
	c := i.CACertificate()
	if c == nil {
		i.writeError(w, r, newError(CodeNoCA, "the issuer has no cardholder CA"))
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	_, _ = w.Write(c.Raw)
}

func (i *Issuer) handleListCards(w http.ResponseWriter, r *http.Request) {
	cs, err := i.Cards(r.Context(), 0)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	out := struct {
		Cards []wireCard `json:"cards"`
	}{Cards: []wireCard{}}
	for k := range cs {
		out.Cards = append(out.Cards, toWireCard(&cs[k]))
	}
	writeJSON(w, http.StatusOK, false, out)
}

func (i *Issuer) handleGetCard(w http.ResponseWriter, r *http.Request) {
	c, err := i.Card(r.Context(), r.PathValue("id"))
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, toWireCard(c))
}

// handleCardApprovals answers a page of a card's approvals in
// approval-number order, {"approvals": […], "next": N}: next is the
// after= of the following page, "" on the last one.
func (i *Issuer) handleCardApprovals(w http.ResponseWriter, r *http.Request) {
	if _, err := i.Card(r.Context(), r.PathValue("id")); err != nil {
		i.writeError(w, r, err)
		return
	}
	as, err := i.CardApprovals(r.Context(), r.PathValue("id"), r.URL.Query().Get("after"), MaxCardApprovals)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	out := struct {
		Approvals []wireApproval `json:"approvals"`
		Next      string         `json:"next"`
	}{Approvals: []wireApproval{}}
	for k := range as {
		out.Approvals = append(out.Approvals, toWireApproval(&as[k]))
	}
	if len(as) == MaxCardApprovals {
		out.Next = as[len(as)-1].Number
	}
	writeJSON(w, http.StatusOK, false, out)
}

func (i *Issuer) handleCardStatus(w http.ResponseWriter, r *http.Request) {
	var in wireCardStatus
	if !i.decode(w, r, &in) {
		return
	}
	c, err := i.SetCardStatus(r.Context(), r.PathValue("id"), CardStatus(in.Status))
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, toWireCard(c))
}

func (i *Issuer) handleSettle(w http.ResponseWriter, r *http.Request) {
	s, err := i.Settle(r.Context(), i.now())
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, wireSettlement{BatchID: s.BatchID, RunAt: s.RunAt, Count: s.Count, Totals: s.Totals})
}

func (i *Issuer) handleDeliver(w http.ResponseWriter, r *http.Request) {
	rep, err := i.DeliverNotifications(r.Context())
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, map[string]int{"sent": rep.Sent, "failed": rep.Failed, "dead": rep.Dead})
}

// decode reads a JSON body strictly: at most maxBody bytes, one object,
// no unknown fields.
func (i *Issuer) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		i.writeError(w, r, invalid("Content-Type must be application/json"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data")
	}
	if err != nil {
		// The decoder's message names fields and types, never values.
		var mbe *http.MaxBytesError
		msg := "malformed JSON body"
		if errors.As(err, &mbe) {
			msg = "request body too large"
		} else if strings.HasPrefix(err.Error(), "json: unknown field") {
			msg = strings.TrimPrefix(err.Error(), "json: ")
		}
		i.writeError(w, r, invalid(msg))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, replayed bool, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers with the issuer's error format. Errors that are not
// business outcomes are logged and answered with a generic message.
func (i *Issuer) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		i.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", ecml.RedactPANs(r.URL.Path), "err", errorText(err))
		e = newError(CodeInternal, "internal error")
	}
	if e.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="issuer admin"`)
	}
	writeJSON(w, e.Code.HTTPStatus(), false, wireError{Code: e.Code, Message: e.Message})
}

// adminOnly guards an administrative endpoint with Config.AdminToken, as
// a bearer token or the password of Basic authentication.
func (i *Issuer) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if i.admin != "" {
			given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				_, given, _ = r.BasicAuth()
			}
			if subtle.ConstantTimeCompare([]byte(given), []byte(i.admin)) != 1 {
				i.writeError(w, r, newError(CodeUnauthorized, "admin credentials required"))
				return
			}
		}
		h(w, r)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs one line per request: method, route, status and
// duration; never a body or a query string.
func (i *Issuer) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "-"
		}
		i.log.InfoContext(r.Context(), "http", "method", r.Method, "route", route, "path", ecml.RedactPANs(r.URL.Path),
			"status", rec.status, "duration", time.Since(start))
	})
}
