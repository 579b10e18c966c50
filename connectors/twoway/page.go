package twoway

import (
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/internal/webpage"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/ecml"
)

//go:embed page
var pageFiles embed.FS

// pageTemplates are the remitter's pages (KECIS §15.5 step 1), with the
// style the bank's customer pages share (connectors/internal/webpage).
var pageTemplates = webpage.Templates(pageFiles, template.FuncMap{
	"phone": sms.MaskPhone,
	"acct":  MaskAccount,
	"time":  func(t time.Time) string { return t.Format("2006-01-02 15:04") },
}, "page/*.html.tmpl")

// Login refusals a PageCustomers answers (wrapped or not); the escrow
// buyer's pages take the same (connectors/escrow/page).
var (
	// ErrLoginFailed: a wrong login or password (one answer for both).
	ErrLoginFailed = webpage.ErrLoginFailed
	// ErrLoginLocked: the bank locked the login after repeated failures.
	ErrLoginLocked = webpage.ErrLoginLocked
)

// PageAccount is one of the customer's accounts the transfer form offers
// as the withdrawal account. Only Masked and Balance are shown; Number
// goes to the engine.
type PageAccount struct {
	ID      string
	Masked  string // "****-1234"
	Balance ecml.Money
	Number  ecml.Secret
}

// PageCustomers is what the pages need of the bank: its customers' login
// (the bank counts and locks failures: the credentials never leave the
// bank, KECIS §15.5) and their accounts.
type PageCustomers interface {
	// Authenticate checks a login; ErrLoginFailed or ErrLoginLocked
	// (wrapped) for a refusal, any other error is a failure to check.
	Authenticate(ctx context.Context, login string, password ecml.Secret) (customerID, name string, err error)
	// Accounts lists the customer's active accounts.
	Accounts(ctx context.Context, customerID string) ([]PageAccount, error)
}

// PageConfig configures the remitter's pages (NewPage).
type PageConfig struct {
	Engine    *Engine
	Customers PageCustomers
	// SessionKey keys the session cookie and the forms' tokens (at least
	// 32 bytes, a secret of the bank).
	SessionKey []byte
	// Prefix is the path the pages are served under, without a trailing
	// slash ("" or "/twoway").
	Prefix string
	// SessionTTL bounds a login (default DefaultSessionTTL).
	SessionTTL time.Duration
	// Banks names the destination banks the form offers (code → name);
	// nil: a free three-digit code.
	Banks map[string]string
	// StartPerCustomer and StartPerPhone limit transfer requests per
	// customer and per payee phone, so that no customer floods a payee
	// with texts; Login limits login attempts per client address (the
	// bank counts failures per login besides). Zero: the defaults.
	StartPerCustomer, StartPerPhone, Login ratelimit.Config
	// TrustedProxies are the reverse proxies in front of the pages
	// (httpserver.ClientAddr).
	TrustedProxies []netip.Prefix
	// Front, optional, takes twoway:request over HTTP-POST at
	// Prefix + "/request" (KECIS §15.5.1, front.go).
	Front *FrontConfig
	// Now, Rand and Log default to the engine's.
	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger
}

// Defaults of PageConfig.
var (
	DefaultSessionTTL       = 15 * time.Minute
	DefaultStartPerCustomer = ratelimit.Config{PerSecond: 1.0 / 60, Burst: 5}  // 5 at once, then one a minute
	DefaultStartPerPhone    = ratelimit.Config{PerSecond: 1.0 / 300, Burst: 3} // 3 at once, then one every 5 minutes
	DefaultLogin            = ratelimit.Config{PerSecond: 0.2, Burst: 10}
)

// kst is the time zone the pages show times in (Korea Standard Time).
var kst = webpage.KST

const (
	sessionCookieName = "twoway_session"
	maxPageForm       = 8 << 10
	maxTermsText      = 500
)

// page serves the remitter's pages.
type page struct {
	cfg                  PageConfig
	e                    *Engine
	now                  func() time.Time
	rand                 io.Reader
	log                  *slog.Logger
	byCustomer, byPhone  *ratelimit.Limiter
	byClient             *ratelimit.Limiter
	mux                  *http.ServeMux
	cookiePath, bankName string
	bankCodes            []string
	sessions             *webpage.Sessions
	logins               *webpage.Login
	pages                *webpage.Renderer
}

// NewPage returns the remitter's pages at its own bank (KECIS §15.5, step
// 1 of the 2-WAY transfer), under cfg.Prefix:
//
//	GET  /                 the login form, or the transfer form when logged in
//	POST /login            login (login, password) → 303 /
//	POST /logout           → 303 /
//	POST /start            the transfer request → 303 /t/{id}
//	GET  /t/{id}           the name check (confirm or abandon) or the status;
//	                       refreshes itself (meta refresh) while waiting
//	POST /t/{id}/confirm   the remitter's confirmation: the code is texted
//	POST /t/{id}/cancel    abandon or cancel before the payee confirms
//	GET  /t/{id}/evidence  the signed agreement (XML) once the payee confirmed
//
// The session is a cookie (HttpOnly, Secure, SameSite=Lax, at most
// SessionTTL) holding the customer's id under an HMAC; every post carries a
// token derived from it and is refused when the browser says it came from
// another site (Sec-Fetch-Site). Pages are Korean and English, fit a phone,
// need no script (CSP with a nonce for the style), and are no-store. No
// account number, phone number or password is ever logged.
func NewPage(cfg PageConfig) (http.Handler, error) {
	switch {
	case cfg.Engine == nil || cfg.Customers == nil:
		return nil, errors.New("twoway: NewPage needs an Engine and Customers")
	case len(cfg.SessionKey) < 32:
		return nil, errors.New("twoway: NewPage: SessionKey must be at least 32 bytes")
	}
	if p := cfg.Prefix; !webpage.ValidPrefix(p) {
		return nil, fmt.Errorf("twoway: page prefix %q: a path starting with / without a trailing / nor characters to escape", p)
	}
	for code := range cfg.Banks {
		if len(code) != 3 || !ecml.AllDigits(code) {
			return nil, fmt.Errorf("twoway: page: bank code %q is not three digits", code)
		}
	}
	e := cfg.Engine
	p := &page{cfg: cfg, e: e, now: cfg.Now, rand: cfg.Rand, log: cfg.Log, bankName: e.cfg.BankName}
	if p.now == nil {
		p.now = e.now
	}
	if p.rand == nil {
		p.rand = e.rand
	}
	if p.log == nil {
		p.log = e.log
	}
	if p.cfg.SessionTTL <= 0 {
		p.cfg.SessionTTL = DefaultSessionTTL
	}
	limit := func(c, def ratelimit.Config) *ratelimit.Limiter {
		if c.PerSecond <= 0 {
			c = def
		}
		return ratelimit.New(c, p.now)
	}
	p.byCustomer = limit(cfg.StartPerCustomer, DefaultStartPerCustomer)
	p.byPhone = limit(cfg.StartPerPhone, DefaultStartPerPhone)
	p.byClient = limit(cfg.Login, DefaultLogin)
	for code := range cfg.Banks {
		p.bankCodes = append(p.bankCodes, code)
	}
	slices.Sort(p.bankCodes)
	p.cookiePath = cfg.Prefix + "/"
	p.sessions = &webpage.Sessions{Key: cfg.SessionKey, Cookie: sessionCookieName, Path: p.cookiePath, Domain: "twoway",
		TTL: p.cfg.SessionTTL, Now: p.now}
	p.logins = &webpage.Login{Limit: p.byClient, TrustedProxies: cfg.TrustedProxies, Authenticate: cfg.Customers.Authenticate}
	p.pages = &webpage.Renderer{Templates: pageTemplates, Rand: p.rand, Log: p.log, What: "twoway: page"}
	pre := cfg.Prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+pre+"/{$}", p.home)
	m.HandleFunc("POST "+pre+"/login", p.posts(p.login))
	m.HandleFunc("POST "+pre+"/logout", p.posts(p.logout))
	m.HandleFunc("POST "+pre+"/start", p.posts(p.start))
	m.HandleFunc("GET "+pre+"/t/{id}", p.status)
	m.HandleFunc("POST "+pre+"/t/{id}/confirm", p.posts(p.confirm))
	m.HandleFunc("POST "+pre+"/t/{id}/cancel", p.posts(p.cancel))
	m.HandleFunc("GET "+pre+"/t/{id}/evidence", p.evidence)
	if cfg.Front != nil {
		if err := p.mountFront(m); err != nil {
			return nil, err
		}
	}
	m.HandleFunc(pre+"/", func(w http.ResponseWriter, r *http.Request) {
		p.message(w, r, http.StatusNotFound, "notfound")
	})
	p.mux = m
	return p, nil
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// pageData is what a template shows.
type pageData struct {
	Nonce, Prefix, Bank string
	Kind                string // the message page's, or a notice
	Name                string // the logged-in customer
	CSRF                string
	Accounts            []PageAccount
	Banks               []bankChoice
	Form                formValues
	Error               string // a refusal's public words
	R                   *Request
	Refresh             int // seconds; 0: no refresh
	CanConfirm          bool
	CanCancel           bool
	Evidence            bool
	Deadline            string
	// A requester's transfer (front.go): its id on the login form, the
	// requester's name, the request, the answer to post back.
	Front, Shop, Amount        string
	F                          *Front
	Answer, Destination, Relay string
	FormOrigin, State          string
}

type bankChoice struct{ Code, Name string }

// formValues are the transfer form's values, shown again after a refusal
// (never the account numbers).
type formValues struct {
	Account, Amount, Bank, Purpose, Repayment, Rate, Principal, Terms, Key string
}

// session is a logged-in customer.
type session struct {
	customer, name, value string
}

// ---- session (connectors/internal/webpage) ----

// session reads the request's session; nil without a valid one.
func (p *page) session(r *http.Request) *session {
	ws := p.sessions.Read(r)
	if ws == nil {
		return nil
	}
	return &session{customer: ws.Customer, name: ws.Name, value: ws.Value}
}

// csrf is the forms' token of a session.
func (p *page) csrf(s *session) string { return p.sessions.Token(&webpage.Session{Value: s.value}) }

// posts guards every post: cross-site posts are refused, the body is
// bounded and parsed.
func (p *page) posts(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if kind, status := webpage.ReadPost(w, r, maxPageForm); kind != "" {
			if kind == "forbidden" {
				p.log.InfoContext(r.Context(), "twoway: page: cross-site post refused", "path", r.URL.Path)
			}
			p.message(w, r, status, kind)
			return
		}
		h(w, r)
	}
}

// authed returns the post's session when its token matches; otherwise it
// answers (back to the login) and returns nil.
func (p *page) authed(w http.ResponseWriter, r *http.Request) *session {
	s := p.session(r)
	if s == nil {
		http.Redirect(w, r, p.cookiePath, http.StatusSeeOther)
		return nil
	}
	if !p.sessions.TokenOK(r, &webpage.Session{Value: s.value}) {
		p.log.InfoContext(r.Context(), "twoway: page: post without the session's token", "customer", s.customer)
		p.message(w, r, http.StatusForbidden, "forbidden")
		return nil
	}
	return s
}

// ---- handlers ----

func (p *page) home(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		p.render(w, r, http.StatusOK, "login", &pageData{})
		return
	}
	p.form(w, r, s, http.StatusOK, formValues{Purpose: PhishingPrevention}, "", "")
}

func (p *page) login(w http.ResponseWriter, r *http.Request) {
	// A requester's transfer the login leads to (front.go).
	front := r.PostForm.Get("front")
	if p.cfg.Front == nil || !validFrontID(front) {
		front = ""
	}
	out, err := p.logins.Check(w, r)
	if err != nil {
		p.internal(w, r, "login", err)
		return
	}
	if out.Refusal != "" {
		p.log.InfoContext(r.Context(), "twoway: page: login refused", "refusal", out.Refusal)
		p.render(w, r, out.Status, "login", &pageData{Kind: out.Refusal, Front: front})
		return
	}
	id := out.Customer
	p.sessions.Start(w, id, out.Name)
	p.log.InfoContext(r.Context(), "twoway: page: logged in", "customer", id)
	if front != "" {
		http.Redirect(w, r, p.cfg.Prefix+"/f/"+front, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, p.cookiePath, http.StatusSeeOther)
}

func (p *page) logout(w http.ResponseWriter, r *http.Request) {
	if p.session(r) != nil && p.authed(w, r) == nil {
		return
	}
	p.sessions.End(w)
	http.Redirect(w, r, p.cookiePath, http.StatusSeeOther)
}

// form renders the transfer form.
func (p *page) form(w http.ResponseWriter, r *http.Request, s *session, status int, v formValues, kind, errText string) {
	accts, err := p.cfg.Customers.Accounts(r.Context(), s.customer)
	if err != nil {
		p.internal(w, r, "accounts", err)
		return
	}
	if v.Key == "" {
		k := make([]byte, 16)
		if _, err := io.ReadFull(p.rand, k); err != nil {
			p.internal(w, r, "form", err)
			return
		}
		v.Key = base64.RawURLEncoding.EncodeToString(k)
	}
	d := &pageData{Name: s.name, CSRF: p.csrf(s), Accounts: accts, Form: v, Kind: kind, Error: errText}
	for _, c := range p.bankCodes {
		d.Banks = append(d.Banks, bankChoice{Code: c, Name: p.cfg.Banks[c]})
	}
	p.render(w, r, status, "form", d)
}

// start takes the transfer form (step 1) and runs the name check.
func (p *page) start(w http.ResponseWriter, r *http.Request) {
	s := p.authed(w, r)
	if s == nil {
		return
	}
	f := r.PostForm
	v := formValues{Account: f.Get("account"), Amount: f.Get("amount"), Bank: f.Get("bank"), Purpose: f.Get("purpose"),
		Repayment: f.Get("repayment"), Rate: f.Get("rate"), Principal: f.Get("principal"), Terms: f.Get("terms"), Key: f.Get("key")}
	if len(v.Key) > 64 || !utf8.ValidString(v.Terms) || utf8.RuneCountInString(v.Terms) > maxTermsText {
		p.form(w, r, s, http.StatusBadRequest, v, "invalid", "")
		return
	}
	refuse := func(kind string) { p.form(w, r, s, http.StatusUnprocessableEntity, v, kind, "") }
	accts, err := p.cfg.Customers.Accounts(r.Context(), s.customer)
	if err != nil {
		p.internal(w, r, "accounts", err)
		return
	}
	i := slices.IndexFunc(accts, func(a PageAccount) bool { return a.ID == v.Account })
	if i < 0 {
		refuse("account")
		return
	}
	amount, ok := parseWon(v.Amount)
	if !ok {
		refuse("amount")
		return
	}
	payeeAccount := strings.TrimSpace(f.Get("payee_account"))
	phone, err := sms.NormalizePhone(f.Get("phone"))
	if err != nil {
		refuse("phone")
		return
	}
	t := &TransferRequest{Customer: s.customer, Account: accts[i].Number, Amount: amount, PayeeBank: strings.TrimSpace(v.Bank),
		PayeeAccount: ecml.Secret(payeeAccount), PayeePhone: phone, Purpose: v.Purpose, IdempotencyKey: v.Key}
	if v.Purpose == MutualAgreement {
		terms := &ecml.Terms{RepaymentDate: strings.TrimSpace(v.Repayment), InterestRate: strings.TrimSpace(v.Rate), Text: v.Terms}
		if pr := strings.TrimSpace(v.Principal); pr != "" {
			m, ok := parseWon(pr)
			if !ok {
				refuse("principal")
				return
			}
			terms.Principal = strconv.FormatInt(m.Minor, 10)
		}
		t.Terms = terms
	}
	// The customer's limit first: a customer past it spends none of the
	// payee phone's; an attempt the phone's limit refuses counts against
	// the customer.
	if ok, retry := p.byCustomer.Allow("customer:" + s.customer); !ok {
		p.rateLimited(w, r, s, v, retry, "customer")
		return
	}
	if ok, retry := p.byPhone.Allow("phone:" + base64.RawURLEncoding.EncodeToString(PhoneMAC(p.e.cfg.Key, phone))); !ok {
		p.rateLimited(w, r, s, v, retry, "phone")
		return
	}
	req, err := p.e.Start(r.Context(), t)
	if st, ok := connectors.AsStatus(err); ok {
		p.log.InfoContext(r.Context(), "twoway: page: request refused", "customer", s.customer, "code", st.SubCode)
		p.form(w, r, s, http.StatusUnprocessableEntity, v, "refused", st.Message)
		return
	}
	if err != nil {
		p.internal(w, r, "start", err)
		return
	}
	p.log.InfoContext(r.Context(), "twoway: page: requested", "customer", s.customer, "request", req.ID, "state", req.State)
	http.Redirect(w, r, p.cfg.Prefix+"/t/"+req.ID, http.StatusSeeOther)
}

func (p *page) rateLimited(w http.ResponseWriter, r *http.Request, s *session, v formValues, retry time.Duration, by string) {
	p.log.InfoContext(r.Context(), "twoway: page: request rate-limited", "customer", s.customer, "by", by)
	w.Header().Set("Retry-After", httpserver.RetryAfterSeconds(retry))
	p.form(w, r, s, http.StatusTooManyRequests, v, "ratelimited", "")
}

// parseWon reads an amount in won as a person types it: digits, with
// optional thousands commas or spaces and a trailing 원.
func parseWon(s string) (ecml.Money, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "원")
	s = strings.NewReplacer(",", "", " ", "").Replace(s)
	if len(s) == 0 || len(s) > 15 {
		return ecml.Money{}, false
	}
	m, err := ecml.ParseAmount(s, "KRW")
	if err != nil || m.Minor <= 0 {
		return ecml.Money{}, false
	}
	return m, true
}

// validID reports whether id has the shape of a request id (never looked
// up otherwise).
func validID(id string) bool {
	if len(id) != 34 || !strings.HasPrefix(id, "tw") {
		return false
	}
	for _, c := range id[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// request reads the path's request of the session's customer; it answers
// itself and returns nil when there is none.
func (p *page) request(w http.ResponseWriter, r *http.Request, s *session,
	get func(ctx context.Context, customer, id string) (*Request, error)) *Request {
	id := r.PathValue("id")
	if !validID(id) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	req, err := get(r.Context(), s.customer, id)
	if errors.Is(err, ErrNotFound) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if st, ok := connectors.AsStatus(err); ok && req != nil {
		p.log.InfoContext(r.Context(), "twoway: page: refused", "customer", s.customer, "request", id, "code", st.SubCode)
		p.show(w, r, s, req, http.StatusConflict, st.Message)
		return nil
	}
	if err != nil {
		p.internal(w, r, "request", err)
		return nil
	}
	return req
}

// status shows a request: the name check awaiting the remitter's decision,
// or where it stands.
func (p *page) status(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		http.Redirect(w, r, p.cookiePath, http.StatusSeeOther)
		return
	}
	if req := p.request(w, r, s, p.e.Lookup); req != nil {
		p.show(w, r, s, req, http.StatusOK, "")
	}
}

func (p *page) confirm(w http.ResponseWriter, r *http.Request) {
	p.act(w, r, "confirm", p.e.Confirm)
}

func (p *page) cancel(w http.ResponseWriter, r *http.Request) {
	p.act(w, r, "cancel", p.e.Cancel)
}

func (p *page) act(w http.ResponseWriter, r *http.Request, what string, fn func(ctx context.Context, customer, id string) (*Request, error)) {
	s := p.authed(w, r)
	if s == nil {
		return
	}
	if req := p.request(w, r, s, fn); req != nil {
		p.log.InfoContext(r.Context(), "twoway: page: "+what, "customer", s.customer, "request", req.ID, "state", req.State)
		http.Redirect(w, r, p.cfg.Prefix+"/t/"+req.ID, http.StatusSeeOther)
	}
}

// show renders a request's page.
func (p *page) show(w http.ResponseWriter, r *http.Request, s *session, req *Request, status int, errText string) {
	if errText == "" && p.frontStatus(w, r, s, req) {
		return // a requester's transfer: its answer is posted back
	}
	d := &pageData{Name: s.name, CSRF: p.csrf(s), R: req, Error: errText}
	switch req.State {
	case Checking, Confirmed, Debited, Reversing:
		d.Refresh = 3
	case AwaitingConfirmation:
		d.CanConfirm = req.NameCheck == Match || req.NameCheck == CloseMatch || p.e.cfg.ProceedOnNoMatch
		d.CanCancel = true
	case Texting, AwaitingReply:
		d.Refresh, d.CanCancel = 5, true
	}
	if !req.State.Ended() && !req.Deadline.IsZero() {
		d.Deadline = req.Deadline.In(kst).Format("15:04:05")
	}
	// The signed agreement is offered for a mutual agreement the payee
	// confirmed (the route serves any confirmed request).
	d.Evidence = req.Purpose == MutualAgreement && req.ReplyID != "" && req.State.MovedMoney()
	p.render(w, r, status, "status", d)
}

// evidence sends the signed agreement of a request the payee confirmed.
func (p *page) evidence(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		http.Redirect(w, r, p.cookiePath, http.StatusSeeOther)
		return
	}
	id := r.PathValue("id")
	if !validID(id) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return
	}
	b, err := p.e.Evidence(r.Context(), s.customer, id)
	switch {
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoAgreement):
		p.message(w, r, http.StatusNotFound, "notfound")
		return
	case err != nil:
		p.internal(w, r, "evidence", err)
		return
	}
	p.log.InfoContext(r.Context(), "twoway: page: evidence", "customer", s.customer, "request", id)
	h := w.Header()
	httpserver.SetBareHeaders(h)
	h.Set("Content-Type", "application/xml; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="2way-`+id+`.xml"`)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// message renders a page without a request: "notfound", "forbidden",
// "badrequest" or "internal".
func (p *page) message(w http.ResponseWriter, r *http.Request, status int, kind string) {
	p.render(w, r, status, "message", &pageData{Kind: kind})
}

func (p *page) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.ErrorContext(r.Context(), "twoway: page failed", "step", what, "error", errText(err))
	p.message(w, r, http.StatusInternalServerError, "internal")
}

// render renders a page (webpage.Renderer) with the pages' prefix and
// the bank's name.
func (p *page) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	d.Prefix, d.Bank = p.cfg.Prefix, p.bankName
	p.pages.Render(w, r, status, name, d, d.FormOrigin)
}

// SetNonce implements webpage.Nonced.
func (d *pageData) SetNonce(nonce string) { d.Nonce = nonce }
