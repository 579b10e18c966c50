package pg

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds a request body of the native API.
const maxBody = 64 << 10

// Handler returns the PG's native HTTP API (its own JSON style, not
// KECIS); see the package documentation for the endpoints, fields and
// result codes.
func (p *PG) Handler() http.Handler {
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"POST", "/pg/v1/payments", p.merchantOnly(p.handlePay)},
		{"GET", "/pg/v1/payments", p.merchantOnly(p.handleFind)},
		{"GET", "/pg/v1/payments/{tid}", p.merchantOnly(p.handleGet)},
		{"POST", "/pg/v1/payments/{tid}/cancel", p.merchantOnly(p.handleCancel)},
		{"POST", "/pg/v1/payments/{tid}/refunds", p.merchantOnly(p.handleRefund)},
		{"POST", "/pg/v1/orders/{orderNo}/cancel", p.merchantOnly(p.byOrder(p.handleCancel))},
		{"POST", "/pg/v1/orders/{orderNo}/refunds", p.merchantOnly(p.byOrder(p.handleRefund))},
		{"POST", "/pg/admin/merchants", p.adminOnly(p.handleCreateMerchant)},
		{"GET", "/pg/admin/merchants", p.adminOnly(p.handleListMerchants)},
		{"GET", "/pg/admin/merchants/{mid}", p.adminOnly(p.handleGetMerchant)},
		{"PUT", "/pg/admin/merchants/{mid}/status", p.adminOnly(p.handleMerchantStatus)},
		{"PUT", "/pg/admin/merchants/{mid}/contract", p.adminOnly(p.handleContract)},
		{"GET", "/pg/admin/transactions", p.adminOnly(p.handleListTransactions)},
		{"GET", "/pg/admin/transactions/{tid}", p.adminOnly(p.handleAdminGet)},
		{"POST", "/pg/admin/pending/resolve", p.adminOnly(p.handleResolve)},
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
	// 405 in the API's own format.
	for _, path := range paths {
		allow := strings.Join(allowed[path], ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			p.writeError(w, r, newError(CodeUnsupported, "use "+allow))
		})
	}
	mux.HandleFunc("/pg/", func(w http.ResponseWriter, r *http.Request) {
		e := newError(CodeUnsupported, "no such endpoint")
		writeJSON(w, http.StatusNotFound, false, wireResult{ResultCode: e.Code, ResultMsg: e.Code.Message(), ResultDetail: e.Detail})
	})
	return p.logRequests(mux)
}

// Wire types: the JSON of the native API, kept apart from the Go API.

// flexInt is an integer that may also arrive as a string of digits
// ("15000"), as form-minded clients and field-mapping sidecars send it.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errNotWhole
	}
	*n = flexInt(v)
	return nil
}

var errNotWhole = errors.New("not a whole number")

type wirePayRequest struct {
	MID         string  `json:"mid"`
	OrderNo     string  `json:"orderNo"`
	Amount      flexInt `json:"amount"`
	Currency    string  `json:"currency,omitempty"`
	CardNo      string  `json:"cardNo"`
	ExpMonth    flexInt `json:"expMonth"`
	ExpYear     flexInt `json:"expYear"`
	ProductName string  `json:"productName"`
	BuyerName   string  `json:"buyerName,omitempty"`
	BuyerTel    string  `json:"buyerTel,omitempty"`
	BuyerEmail  string  `json:"buyerEmail,omitempty"`
	// Authentication is opaque (PayRequest.Authentication).
	Authentication []string `json:"authentication,omitempty"`
	// AAV and MerchantRef: PayRequest.AuthValue and MerchantRef.
	AAV         string `json:"aav,omitempty"`
	MerchantRef string `json:"merchantRef,omitempty"`
}

type wireCancelRequest struct {
	MID    string `json:"mid,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type wireRefundRequest struct {
	MID      string  `json:"mid,omitempty"`
	Amount   flexInt `json:"amount"`
	Currency string  `json:"currency,omitempty"`
	Reason   string  `json:"reason,omitempty"`
}

type wireResult struct {
	ResultCode   ResultCode `json:"resultCode"`
	ResultMsg    string     `json:"resultMsg"`
	ResultDetail string     `json:"resultDetail,omitempty"`
}

type wireOperation struct {
	OpID         string     `json:"opId"`
	Type         OpKind     `json:"type"`
	Amount       int64      `json:"amount"`
	Status       OpStatus   `json:"status"`
	ResultCode   ResultCode `json:"resultCode"`
	ResultMsg    string     `json:"resultMsg"`
	ResultDetail string     `json:"resultDetail,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	CreatedAt    string     `json:"createdAt"`
	DoneAt       string     `json:"doneAt,omitempty"`
}

type wirePayment struct {
	wireResult
	TID              string          `json:"tid"`
	MID              string          `json:"mid"`
	OrderNo          string          `json:"orderNo"`
	ProductName      string          `json:"productName"`
	Status           Status          `json:"status"`
	Amount           int64           `json:"amount"`
	CancelledAmount  int64           `json:"cancelledAmount"`
	RefundedAmount   int64           `json:"refundedAmount"`
	BalanceAmount    int64           `json:"balanceAmount"`
	Currency         string          `json:"currency"`
	ApprovalNo       string          `json:"approvalNo"`
	MaskedCardNo     string          `json:"maskedCardNo"`
	FeeAmount        int64           `json:"feeAmount"`
	BuyerName        string          `json:"buyerName,omitempty"`
	BuyerTel         string          `json:"buyerTel,omitempty"`
	BuyerEmail       string          `json:"buyerEmail,omitempty"`
	IssuerState      string          `json:"issuerState,omitempty"`
	PendingOperation OpKind          `json:"pendingOperation,omitempty"`
	CreatedAt        string          `json:"createdAt"`
	ApprovedAt       string          `json:"approvedAt,omitempty"`
	CancelledAt      string          `json:"cancelledAt,omitempty"`
	History          []wireOperation `json:"history,omitempty"`
}

type wireContract struct {
	BINPrefixes []string `json:"binPrefixes"`
	FeeBPS      flexInt  `json:"feeBps"`
	MaxAmount   flexInt  `json:"maxAmount"`
	DailyLimit  flexInt  `json:"dailyLimit"`
}

type wireMerchantRequest struct {
	MID      string       `json:"mid,omitempty"`
	Name     string       `json:"name"`
	Contract wireContract `json:"contract"`
}

type wireMerchant struct {
	MID        string       `json:"mid"`
	Name       string       `json:"name"`
	Status     string       `json:"status"`
	APIKeyHint string       `json:"apiKeyHint"`
	Contract   wireContract `json:"contract"`
	CreatedAt  string       `json:"createdAt"`
}

type wireStatus struct {
	Status string `json:"status"`
}

func (c wireContract) contract() Contract {
	return Contract{BINPrefixes: c.BINPrefixes, FeeBPS: int(c.FeeBPS), MaxAmount: int64(c.MaxAmount), DailyLimit: int64(c.DailyLimit)}
}

func (p *PG) timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format(time.RFC3339)
}

func ok() wireResult { return wireResult{ResultCode: CodeSuccess, ResultMsg: CodeSuccess.Message()} }

func (p *PG) toWirePayment(pay *Payment) wirePayment {
	w := wirePayment{
		wireResult: wireResult{ResultCode: pay.ResultCode, ResultMsg: pay.ResultCode.Message(), ResultDetail: pay.ResultDetail},
		TID:        pay.TID, MID: pay.MID, OrderNo: pay.OrderNo, ProductName: pay.ProductName, Status: pay.Status,
		Amount: pay.Amount, CancelledAmount: pay.CancelledAmount, RefundedAmount: pay.RefundedAmount(), BalanceAmount: pay.Balance(), Currency: pay.Currency,
		ApprovalNo: pay.ApprovalNo, MaskedCardNo: pay.MaskedCardNo, FeeAmount: pay.FeeAmount(),
		BuyerName: pay.Buyer.Name, BuyerTel: pay.Buyer.Tel, BuyerEmail: pay.Buyer.Email,
		IssuerState: pay.IssuerState, PendingOperation: pay.PendingOperation,
		CreatedAt: p.timeText(pay.CreatedAt), ApprovedAt: p.timeText(pay.ApprovedAt), CancelledAt: p.timeText(pay.CancelledAt),
	}
	for _, o := range pay.Operations {
		w.History = append(w.History, wireOperation{OpID: o.ID, Type: o.Kind, Amount: o.Amount, Status: o.Status,
			ResultCode: o.ResultCode, ResultMsg: o.ResultCode.Message(), ResultDetail: o.ResultDetail, Reason: o.Reason,
			CreatedAt: p.timeText(o.CreatedAt), DoneAt: p.timeText(o.DoneAt)})
	}
	return w
}

func (p *PG) toWireMerchant(m *Merchant) wireMerchant {
	bins := m.Contract.BINPrefixes
	if bins == nil {
		bins = []string{}
	}
	return wireMerchant{MID: m.MID, Name: m.Name, Status: string(m.Status), APIKeyHint: m.APIKeyHint,
		Contract: wireContract{BINPrefixes: bins, FeeBPS: flexInt(m.Contract.FeeBPS),
			MaxAmount: flexInt(m.Contract.MaxAmount), DailyLimit: flexInt(m.Contract.DailyLimit)},
		CreatedAt: p.timeText(m.CreatedAt)}
}

// merchantHandler serves a merchant authenticated by its X-PG-Key.
type merchantHandler func(w http.ResponseWriter, r *http.Request, m *Merchant)

// merchantOnly authenticates the merchant by the X-PG-Key header.
func (p *PG) merchantOnly(h merchantHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := p.Authenticate(r.Context(), r.Header.Get("X-PG-Key"))
		if err != nil {
			p.writeError(w, r, err)
			return
		}
		h(w, r, m)
	}
}

// byOrder serves a cancel or refund addressed by the merchant's order
// number (for callers that know the order and not the TID, such as a
// field-mapping sidecar): it finds the order's transaction and hands on
// with its TID.
func (p *PG) byOrder(h merchantHandler) merchantHandler {
	return func(w http.ResponseWriter, r *http.Request, m *Merchant) {
		pay, err := p.Find(r.Context(), m.MID, r.PathValue("orderNo"))
		if err != nil {
			p.writeError(w, r, err)
			return
		}
		r.SetPathValue("tid", pay.TID)
		h(w, r, m)
	}
}

// sameMerchant checks a mid the request names against the key's.
func sameMerchant(named string, m *Merchant) *Error {
	if named != "" && named != m.MID {
		return newError(CodeUnauthorized, "the API key does not belong to mid "+named)
	}
	return nil
}

func (p *PG) handlePay(w http.ResponseWriter, r *http.Request, m *Merchant) {
	var in wirePayRequest
	if !p.decode(w, r, &in, false) {
		return
	}
	if in.MID == "" {
		in.MID = m.MID
	}
	if e := sameMerchant(in.MID, m); e != nil {
		p.writeError(w, r, e)
		return
	}
	if in.Currency != "" && in.Currency != Currency {
		p.writeError(w, r, invalid("the PG settles KRW only"))
		return
	}
	pay, err := p.Pay(r.Context(), PayRequest{
		MID: in.MID, OrderNo: in.OrderNo, Amount: int64(in.Amount), CardNo: CardNumber(in.CardNo),
		ExpMonth: int(in.ExpMonth), ExpYear: int(in.ExpYear), ProductName: in.ProductName,
		Buyer:          Buyer{Name: in.BuyerName, Tel: in.BuyerTel, Email: in.BuyerEmail},
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Authentication: in.Authentication,
		AuthValue: in.AAV, MerchantRef: in.MerchantRef,
	})
	p.writePayment(w, r, pay, err)
}

func (p *PG) handleCancel(w http.ResponseWriter, r *http.Request, m *Merchant) {
	var in wireCancelRequest
	if !p.decode(w, r, &in, true) {
		return
	}
	if e := sameMerchant(in.MID, m); e != nil {
		p.writeError(w, r, e)
		return
	}
	pay, err := p.Cancel(r.Context(), CancelRequest{MID: m.MID, TID: r.PathValue("tid"), Reason: in.Reason,
		IdempotencyKey: r.Header.Get("Idempotency-Key")})
	p.writePayment(w, r, pay, err)
}

func (p *PG) handleRefund(w http.ResponseWriter, r *http.Request, m *Merchant) {
	var in wireRefundRequest
	if !p.decode(w, r, &in, false) {
		return
	}
	if e := sameMerchant(in.MID, m); e != nil {
		p.writeError(w, r, e)
		return
	}
	if in.Currency != "" && in.Currency != Currency {
		p.writeError(w, r, invalid("the PG settles KRW only"))
		return
	}
	pay, err := p.Refund(r.Context(), RefundRequest{MID: m.MID, TID: r.PathValue("tid"), Amount: int64(in.Amount),
		Reason: in.Reason, IdempotencyKey: r.Header.Get("Idempotency-Key")})
	p.writePayment(w, r, pay, err)
}

func (p *PG) handleGet(w http.ResponseWriter, r *http.Request, m *Merchant) {
	pay, err := p.Lookup(r.Context(), m.MID, r.PathValue("tid"))
	p.writePayment(w, r, pay, err)
}

func (p *PG) handleFind(w http.ResponseWriter, r *http.Request, m *Merchant) {
	q := r.URL.Query()
	if e := sameMerchant(q.Get("mid"), m); e != nil {
		p.writeError(w, r, e)
		return
	}
	pay, err := p.Find(r.Context(), m.MID, q.Get("orderNo"))
	p.writePayment(w, r, pay, err)
}

func (p *PG) writePayment(w http.ResponseWriter, r *http.Request, pay *Payment, err error) {
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, pay.ResultCode.HTTPStatus(), pay.Replayed, p.toWirePayment(pay))
}

func (p *PG) handleCreateMerchant(w http.ResponseWriter, r *http.Request) {
	var in wireMerchantRequest
	if !p.decode(w, r, &in, false) {
		return
	}
	m, err := p.CreateMerchant(r.Context(), NewMerchant{MID: in.MID, Name: in.Name, Contract: in.Contract.contract()})
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, false, struct {
		wireResult
		Merchant wireMerchant `json:"merchant"`
		APIKey   string       `json:"apiKey"` // shown this once
	}{ok(), p.toWireMerchant(&m.Merchant), m.APIKey})
}

func (p *PG) handleListMerchants(w http.ResponseWriter, r *http.Request) {
	ms, err := p.Merchants(r.Context())
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	out := struct {
		wireResult
		Merchants []wireMerchant `json:"merchants"`
	}{ok(), []wireMerchant{}}
	for k := range ms {
		out.Merchants = append(out.Merchants, p.toWireMerchant(&ms[k]))
	}
	writeJSON(w, http.StatusOK, false, out)
}

func (p *PG) writeMerchant(w http.ResponseWriter, r *http.Request, m *Merchant, err error) {
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, struct {
		wireResult
		Merchant wireMerchant `json:"merchant"`
	}{ok(), p.toWireMerchant(m)})
}

func (p *PG) handleGetMerchant(w http.ResponseWriter, r *http.Request) {
	m, err := p.Merchant(r.Context(), r.PathValue("mid"))
	p.writeMerchant(w, r, m, err)
}

func (p *PG) handleMerchantStatus(w http.ResponseWriter, r *http.Request) {
	var in wireStatus
	if !p.decode(w, r, &in, false) {
		return
	}
	m, err := p.SetMerchantStatus(r.Context(), r.PathValue("mid"), MerchantStatus(in.Status))
	p.writeMerchant(w, r, m, err)
}

func (p *PG) handleContract(w http.ResponseWriter, r *http.Request) {
	var in wireContract
	if !p.decode(w, r, &in, false) {
		return
	}
	m, err := p.UpdateContract(r.Context(), r.PathValue("mid"), in.contract())
	p.writeMerchant(w, r, m, err)
}

func (p *PG) handleListTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			p.writeError(w, r, invalid("limit must be a positive number"))
			return
		}
		limit = n
	}
	ps, err := p.Transactions(r.Context(), TransactionFilter{MID: q.Get("mid"), Status: Status(q.Get("status")), Limit: limit})
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	out := struct {
		wireResult
		Transactions []wirePayment `json:"transactions"`
	}{ok(), []wirePayment{}}
	for k := range ps {
		out.Transactions = append(out.Transactions, p.toWirePayment(&ps[k]))
	}
	writeJSON(w, http.StatusOK, false, out)
}

func (p *PG) handleAdminGet(w http.ResponseWriter, r *http.Request) {
	pay, err := p.Get(r.Context(), "", r.PathValue("tid"))
	p.writePayment(w, r, pay, err)
}

func (p *PG) handleResolve(w http.ResponseWriter, r *http.Request) {
	rep, err := p.ResolvePending(r.Context())
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, struct {
		wireResult
		Checked      int `json:"checked"`
		Resolved     int `json:"resolved"`
		StillPending int `json:"stillPending"`
	}{ok(), rep.Checked, rep.Resolved, rep.StillPending})
}

// decode reads a JSON body strictly: at most maxBody bytes, one object,
// no unknown fields. emptyOK accepts an empty body as {}.
func (p *PG) decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		p.writeError(w, r, invalid("Content-Type must be application/json"))
		return false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		p.writeError(w, r, invalid("request body too large or unreadable"))
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 && emptyOK {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data")
	}
	if err != nil {
		// The decoder's messages name fields and types, never values; a
		// number that is no number is reported by field name only.
		msg := "malformed JSON body"
		var ute *json.UnmarshalTypeError
		switch {
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			msg = strings.TrimPrefix(err.Error(), "json: ")
		case errors.As(err, &ute) && ute.Field != "":
			msg = ute.Field + " has the wrong type"
		case errors.Is(err, errNotWhole):
			msg = "amounts, expMonth and expYear must be whole numbers"
		}
		p.writeError(w, r, invalid(msg))
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

// writeError answers with the PG's result format. Errors that are not
// *Error are logged and answered with a generic system error.
func (p *PG) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		p.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", redactDigits(r.URL.Path),
			"err", redactDigits(err.Error()))
		e = newError(CodeSystemError, "")
	}
	writeJSON(w, e.Code.HTTPStatus(), false, wireResult{ResultCode: e.Code, ResultMsg: e.Code.Message(), ResultDetail: e.Detail})
}

// adminOnly guards an administrative endpoint with Config.AdminToken as a
// bearer token.
func (p *PG) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p.admin != "" {
			given, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(given), []byte(p.admin)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="pg admin"`)
				p.writeError(w, r, newError(CodeUnauthorized, "admin token required"))
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
// duration; never a body, a header or a query string.
func (p *PG) logRequests(h http.Handler) http.Handler {
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
		p.log.InfoContext(r.Context(), "http", "method", r.Method, "route", route, "path", redactDigits(r.URL.Path),
			"status", rec.status, "duration", time.Since(start))
	})
}
