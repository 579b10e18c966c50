package bank

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
)

// maxBody bounds a JSON request body.
const maxBody = 64 << 10

// Handler is the bank's own HTTP API (JSON under /api/v1/, guarded by
// Config.AdminToken), the customers' page (/, /login, /accounts/{id}) and
// the admin page (/admin). Mutations take the Idempotency-Key header. An
// account number travels only in a request body, never in a URL; answers
// show it masked but to its holder's page.
//
//	POST /api/v1/customers                 {name, phone, login, password}
//	POST /api/v1/customers/{id}/unlock
//	POST /api/v1/accounts                  {customer_id, number?, transfer_limit?}   → the number, once
//	GET  /api/v1/accounts/{id}
//	GET  /api/v1/accounts/{id}/statement
//	POST /api/v1/accounts/{id}/close
//	POST /api/v1/deposits                  {account_id, amount, memo?}
//	POST /api/v1/transfers                 {from_account_id, to_number, amount, memo?}
//	POST /api/v1/transfers-out             {from_account_id, to_bank, to_number, to_holder?, amount, memo?}
//	POST /api/v1/transfers-out/{ref}/reverse {reason}
//	POST /api/v1/transfers-out/{ref}/confirm {credit_ref}
//	POST /api/v1/credits                   {from_bank, reference, to_number, amount, remitter_name?, remitter_number?, purpose?}
//	GET  /api/v1/credits/{bank}/{ref}
//	POST /api/v1/holder                    {number}
//	GET  /api/v1/ledger
//	POST /api/v1/notifications/deliver
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, b.adminOnly(h)) }
	api("POST /api/v1/customers", b.apiNewCustomer)
	api("POST /api/v1/customers/{id}/unlock", b.apiUnlock)
	api("POST /api/v1/accounts", b.apiOpenAccount)
	api("GET /api/v1/accounts/{id}", b.apiAccount)
	api("GET /api/v1/accounts/{id}/statement", b.apiStatement)
	api("POST /api/v1/accounts/{id}/close", b.apiClose)
	api("POST /api/v1/deposits", b.apiDeposit)
	api("POST /api/v1/transfers", b.apiTransfer)
	api("POST /api/v1/transfers-out", b.apiSendOut)
	api("POST /api/v1/transfers-out/{ref}/reverse", b.apiReverse)
	api("POST /api/v1/transfers-out/{ref}/confirm", b.apiConfirm)
	api("POST /api/v1/credits", b.apiCredit)
	api("GET /api/v1/credits/{bank}/{ref}", b.apiInquire)
	api("POST /api/v1/holder", b.apiHolder)
	api("GET /api/v1/ledger", b.apiLedger)
	api("POST /api/v1/notifications/deliver", b.apiDeliver)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		b.writeError(w, r, newError(CodeNotFound, "no such endpoint"))
	})
	b.pages(mux)
	return b.logRequests(secureHeaders(mux))
}

type wireError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

type wireAccount struct {
	ID            string `json:"id"`
	CustomerID    string `json:"customer_id"`
	Holder        string `json:"holder"`
	Number        string `json:"number"` // masked, but when just opened
	Currency      string `json:"currency"`
	Balance       int64  `json:"balance"`
	Status        string `json:"status"`
	TransferLimit int64  `json:"transfer_limit"`
}

func accountWire(a *Account) wireAccount {
	return wireAccount{ID: a.ID, CustomerID: a.CustomerID, Holder: a.Holder, Number: a.Masked(), Currency: a.Currency,
		Balance: a.Balance, Status: string(a.Status), TransferLimit: a.TransferLimit}
}

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: Currency} }

func key(r *http.Request) string { return r.Header.Get("Idempotency-Key") }

func (b *Bank) apiNewCustomer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name, Phone, Login string
		Password           ecml.Secret
	}
	if !b.decode(w, r, &in) {
		return
	}
	c, err := b.NewCustomer(r.Context(), NewCustomerRequest{Name: in.Name, Phone: in.Phone, Login: in.Login, Password: in.Password,
		IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusCreated, false, c, err)
}

func (b *Bank) apiUnlock(w http.ResponseWriter, r *http.Request) {
	c, err := b.UnlockCustomer(r.Context(), r.PathValue("id"))
	b.reply(w, r, http.StatusOK, false, c, err)
}

func (b *Bank) apiOpenAccount(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CustomerID    string      `json:"customer_id"`
		Number        ecml.Secret `json:"number"`
		TransferLimit int64       `json:"transfer_limit"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	a, err := b.OpenAccount(r.Context(), OpenAccountRequest{CustomerID: in.CustomerID, Number: in.Number,
		TransferLimit: in.TransferLimit, IdempotencyKey: key(r)})
	if err != nil {
		b.writeError(w, r, err)
		return
	}
	out := accountWire(&a.Account)
	out.Number = a.Number.Reveal() // shown once, to the administrator who opened it
	writeJSON(w, http.StatusCreated, false, out)
}

func (b *Bank) apiAccount(w http.ResponseWriter, r *http.Request) {
	a, err := b.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		b.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, accountWire(a))
}

func (b *Bank) apiStatement(w http.ResponseWriter, r *http.Request) {
	lines, err := b.Statement(r.Context(), r.PathValue("id"), 100)
	b.reply(w, r, http.StatusOK, false, map[string]any{"lines": lines}, err)
}

func (b *Bank) apiClose(w http.ResponseWriter, r *http.Request) {
	a, err := b.CloseAccount(r.Context(), r.PathValue("id"), key(r))
	if err != nil {
		b.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, false, accountWire(a))
}

func (b *Bank) apiDeposit(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AccountID string `json:"account_id"`
		Amount    int64  `json:"amount"`
		Memo      string `json:"memo"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	m, err := b.Deposit(r.Context(), DepositRequest{AccountID: in.AccountID, Amount: krw(in.Amount), Memo: in.Memo, IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusCreated, m != nil && m.Replayed, m, err)
}

func (b *Bank) apiTransfer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		From   string      `json:"from_account_id"`
		To     ecml.Secret `json:"to_number"`
		Amount int64       `json:"amount"`
		Memo   string      `json:"memo"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	m, err := b.Transfer(r.Context(), TransferRequest{FromAccountID: in.From, ToNumber: in.To, Amount: krw(in.Amount), Memo: in.Memo,
		IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusCreated, m != nil && m.Replayed, m, err)
}

func (b *Bank) apiSendOut(w http.ResponseWriter, r *http.Request) {
	var in struct {
		From     string      `json:"from_account_id"`
		ToBank   string      `json:"to_bank"`
		To       ecml.Secret `json:"to_number"`
		ToHolder string      `json:"to_holder"`
		Amount   int64       `json:"amount"`
		Memo     string      `json:"memo"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	o, err := b.SendOut(r.Context(), SendOutRequest{FromAccountID: in.From, ToBank: in.ToBank, ToNumber: in.To, ToHolder: in.ToHolder,
		Amount: krw(in.Amount), Memo: in.Memo, IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusCreated, o != nil && o.Replayed, o, err)
}

func (b *Bank) apiReverse(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reason string `json:"reason"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	o, err := b.ReverseOut(r.Context(), ReverseOutRequest{Reference: r.PathValue("ref"), Reason: in.Reason, IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusOK, o != nil && o.Replayed, o, err)
}

func (b *Bank) apiConfirm(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CreditRef string `json:"credit_ref"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	o, err := b.ConfirmOut(r.Context(), r.PathValue("ref"), in.CreditRef)
	b.reply(w, r, http.StatusOK, false, o, err)
}

func (b *Bank) apiCredit(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FromBank       string      `json:"from_bank"`
		Reference      string      `json:"reference"`
		To             ecml.Secret `json:"to_number"`
		Amount         int64       `json:"amount"`
		RemitterName   string      `json:"remitter_name"`
		RemitterNumber ecml.Secret `json:"remitter_number"`
		Purpose        string      `json:"purpose"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	c, err := b.CreditIn(r.Context(), CreditInRequest{FromBank: in.FromBank, Reference: in.Reference, ToNumber: in.To,
		Amount: krw(in.Amount), RemitterName: in.RemitterName, RemitterNumber: in.RemitterNumber, Purpose: in.Purpose,
		IdempotencyKey: key(r)})
	b.reply(w, r, http.StatusCreated, c != nil && c.Replayed, c, err)
}

func (b *Bank) apiInquire(w http.ResponseWriter, r *http.Request) {
	c, err := b.Inquire(r.Context(), r.PathValue("bank"), r.PathValue("ref"))
	b.reply(w, r, http.StatusOK, false, c, err)
}

func (b *Bank) apiHolder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Number ecml.Secret `json:"number"`
	}
	if !b.decode(w, r, &in) {
		return
	}
	name, err := b.Holder(r.Context(), in.Number)
	b.reply(w, r, http.StatusOK, false, map[string]string{"bank_code": b.code, "holder": name}, err)
}

func (b *Bank) apiLedger(w http.ResponseWriter, r *http.Request) {
	rep, err := b.CheckLedger(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, false, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, false, map[string]any{"ok": true, "report": rep})
}

func (b *Bank) apiDeliver(w http.ResponseWriter, r *http.Request) {
	n, err := b.DeliverNotifications(r.Context())
	b.reply(w, r, http.StatusOK, false, map[string]int{"sent": n}, err)
}

// reply writes v, or err.
func (b *Bank) reply(w http.ResponseWriter, r *http.Request, status int, replayed bool, v any, err error) {
	if err != nil {
		b.writeError(w, r, err)
		return
	}
	if replayed {
		status = http.StatusOK
	}
	writeJSON(w, status, replayed, v)
}

// decode reads a JSON body strictly: at most maxBody bytes, one object,
// no unknown fields (matched without regard to case).
func (b *Bank) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		b.writeError(w, r, invalid("Content-Type must be application/json"))
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
		b.writeError(w, r, invalid(msg))
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

// writeError answers with the bank's error format; an error that is no
// business outcome is logged and answered with a generic message.
func (b *Bank) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		b.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "route", r.Pattern, "err", errorText(err))
		e = newError(CodeInternal, "internal error")
	}
	if e.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="bank admin"`)
	}
	writeJSON(w, e.Code.HTTPStatus(), false, wireError{Code: e.Code, Message: e.Message})
}

// adminOnly guards an administrative endpoint with Config.AdminToken, as
// a bearer token or the password of Basic authentication.
func (b *Bank) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !b.isAdmin(r) {
			b.writeError(w, r, newError(CodeUnauthorized, "admin credentials required"))
			return
		}
		h(w, r)
	}
}

func (b *Bank) isAdmin(r *http.Request) bool {
	if b.admin == "" {
		return true
	}
	given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, given, _ = r.BasicAuth()
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(b.admin)) == 1
}

// secureHeaders sets the headers of every answer: no caching, no sniffing,
// no framing, and a CSP that allows no script at all (the pages need
// none) and inline style only.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
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

// logRequests logs one line per request: method, route, status and
// duration; never a body or a query string.
func (b *Bank) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		b.log.InfoContext(r.Context(), "http", "method", r.Method, "route", r.Pattern, "status", rec.status, "duration", time.Since(start))
	})
}
