package amountauth

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

//go:embed page
var pageFiles embed.FS

// pageTemplates are the cardholder's pages (KECIS §15.3.2).
var pageTemplates = template.Must(template.ParseFS(pageFiles, "page/*.html.tmpl"))

// maxPageBody caps a page request's body: a session identifier, a
// RelayState of at most 80 bytes (240 form-encoded) and an entry.
const maxPageBody = 4 << 10

// maxSessionID bounds a session identifier the page looks up; the engine's
// are 22 characters (128 bits, base64url).
const maxSessionID = 64

// maxEntry bounds what the cardholder may type ("1,234,567원").
const maxEntry = 32

// PageConfig configures the cardholder's page.
type PageConfig struct {
	// Prefix is the path the page is served under, without a trailing
	// slash: "" serves POST / and POST /confirm, "/amountauth" serves POST
	// /amountauth (or /amountauth/) and POST /amountauth/confirm. The
	// amount form posts to Prefix + "/confirm".
	Prefix string
	// TrustedProxies are the reverse proxies in front of the page: from a
	// connection of one of them the client is the right-most address of
	// X-Forwarded-For that is not itself a trusted proxy. Empty: the
	// connection's address is the client.
	TrustedProxies []netip.Prefix
}

// Page is the page where the cardholder types the amount (KECIS §15.3.2),
// published as the PG's amountauth endpoint with the HTTP-POST binding
// (KECIS §10.2):
//
//   - POST Prefix/ takes the merchant checkout's auto-submitted form
//     (SessionID, optional RelayState of at most 80 bytes) and shows the
//     amount form of a session awaiting the amount, or the outcome of one
//     that ended;
//   - POST Prefix/confirm takes one entry, counted as an attempt exactly as
//     amountauth:confirm counts it, and shows the form again or the
//     outcome;
//   - an outcome of a session that ended sends the browser back to the
//     merchant's ReturnURL (Options) with an auto-submitting form carrying
//     SessionID, RelayState and State (a button when JavaScript is off).
//
// The pages are in Korean and English and work without JavaScript; the
// only script, the return form's submit, takes a CSP nonce. Every answer
// is no-store, no-referrer, never framed and never sniffed.
//
// The session identifier (128 random bits) is the bearer of the page, as
// the spec has it: the page keeps no cookie. A post to confirm is refused
// when the browser says it came from another site (Sec-Fetch-Site
// cross-site or same-site): browsers send that header with or without
// JavaScript, and one that sends none is served. Origin is not checked:
// under the page's Referrer-Policy no-referrer a browser sends "Origin:
// null" with a form post (the Fetch standard's serializing of a request
// origin). The typed value is never shown again, logged or put in an
// error; the page logs only the session and the outcome.
type Page struct {
	e       *Engine
	prefix  string
	trusted []netip.Prefix
}

// NewPage returns the cardholder's page of e.
func NewPage(e *Engine, cfg PageConfig) (*Page, error) {
	if e == nil {
		return nil, errors.New("amountauth: NewPage needs an engine")
	}
	p := cfg.Prefix
	if p != "" && (p[0] != '/' || strings.HasSuffix(p, "/") || strings.Trim(p, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") != "") {
		return nil, fmt.Errorf("amountauth: page prefix %q: a path starting with / without a trailing / nor characters to escape", p)
	}
	return &Page{e: e, prefix: p, trusted: cfg.TrustedProxies}, nil
}

// pageData is what a page template shows.
type pageData struct {
	Nonce string
	// Kind selects the message of the "message" page.
	Kind string
	// Entry and Confirm are the page's own form actions.
	Entry, Confirm string
	// The session, as the cardholder knows it.
	SessionID, RelayState  string
	Merchant, Amount, Card string
	Descriptor             bool
	AttemptsLeft           int
	// Notice is "mismatch" (a wrong entry) or "invalid" (not an amount).
	Notice string
	// State and Refusal are an outcome; Return the merchant's return URL.
	State   State
	Refusal string
	Return  string
}

// ServeHTTP implements http.Handler.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case p.prefix + "/":
		p.route(w, r, p.serveEntry)
	case p.prefix + "/confirm":
		p.route(w, r, p.serveConfirm)
	default:
		if p.prefix != "" && r.URL.Path == p.prefix {
			p.route(w, r, p.serveEntry)
			return
		}
		p.message(w, r, http.StatusNotFound, "notfound")
	}
}

// route answers a method other than POST with 405 and a short explanation.
func (p *Page) route(w http.ResponseWriter, r *http.Request, h func(w http.ResponseWriter, r *http.Request)) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.message(w, r, http.StatusMethodNotAllowed, "method")
		return
	}
	h(w, r)
}

// pageForm is a page request's form, checked.
type pageForm struct {
	SessionID, RelayState string
	valid                 bool // SessionID has the shape of a session identifier
}

// readForm reads the form of a page request: at most maxPageBody bytes,
// exactly one SessionID, at most one RelayState of at most 80 bytes of
// UTF-8 (KECIS §10.2). It answers the request itself and reports false
// when the form is unusable.
func (p *Page) readForm(w http.ResponseWriter, r *http.Request) (pageForm, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPageBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			p.message(w, r, http.StatusRequestEntityTooLarge, "toolarge")
		} else {
			p.message(w, r, http.StatusBadRequest, "badrequest")
		}
		return pageForm{}, false
	}
	ids, rs := r.PostForm["SessionID"], r.PostForm["RelayState"]
	if len(ids) != 1 || ids[0] == "" || len(rs) > 1 || (len(rs) == 1 && (len(rs[0]) > saml.MaxRelayState || !utf8.ValidString(rs[0]))) {
		p.message(w, r, http.StatusBadRequest, "badrequest")
		return pageForm{}, false
	}
	f := pageForm{SessionID: ids[0], valid: sessionIDShape(ids[0])}
	if len(rs) == 1 {
		f.RelayState = rs[0]
	}
	return f, true
}

// sessionIDShape reports whether id can be a session identifier: 1 to 64
// characters of the base64url alphabet. Anything else is unknown without
// asking the store (and is never logged).
func sessionIDShape(id string) bool {
	if id == "" || len(id) > maxSessionID {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// lookup finds the form's session; it answers 404 (unknown, whatever the
// reason) or 500 itself and reports nil.
func (p *Page) lookup(w http.ResponseWriter, r *http.Request, f pageForm) *Session {
	if !f.valid {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	s, err := p.e.Lookup(r.Context(), "", f.SessionID)
	if errors.Is(err, ErrNotFound) {
		p.e.log.InfoContext(r.Context(), "amountauth: page", "session", f.SessionID, "outcome", "unknown")
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if err != nil {
		p.internal(w, r, f.SessionID, err)
		return nil
	}
	return s
}

// serveEntry shows the amount form of a session awaiting the amount, or the
// outcome of one that ended (carried as far as it can go now, as status
// does: a "check again" of a session being completed lands here).
func (p *Page) serveEntry(w http.ResponseWriter, r *http.Request) {
	f, ok := p.readForm(w, r)
	if !ok {
		return
	}
	s := p.lookup(w, r, f)
	if s == nil {
		return
	}
	if s.State != AwaitingAmount {
		var err error
		if s, err = p.e.drive(r.Context(), s); err != nil {
			p.internal(w, r, f.SessionID, err)
			return
		}
	}
	p.e.log.InfoContext(r.Context(), "amountauth: page", "session", s.ID, "outcome", string(s.PublicState()))
	if s.State == AwaitingAmount {
		p.form(w, r, http.StatusOK, s, f, "")
		return
	}
	p.outcome(w, r, s, f)
}

// serveConfirm takes one entry (KECIS §15.3.2).
func (p *Page) serveConfirm(w http.ResponseWriter, r *http.Request) {
	if httpserver.CrossSite(r) {
		p.message(w, r, http.StatusForbidden, "forbidden")
		return
	}
	if ok, retry := p.e.AllowClient(p.clientKey(r)); !ok {
		p.e.log.InfoContext(r.Context(), "amountauth: page", "outcome", "rate-limited")
		w.Header().Set("Retry-After", httpserver.RetryAfterSeconds(retry))
		p.message(w, r, http.StatusTooManyRequests, "ratelimited")
		return
	}
	f, ok := p.readForm(w, r)
	if !ok {
		return
	}
	s := p.lookup(w, r, f)
	if s == nil {
		return
	}
	var typed Typed
	if s.State == AwaitingAmount {
		var valid bool
		if typed, valid = readEntry(r.PostForm, s); !valid {
			// Not an amount (or code): it cannot match, so it is not
			// counted, as confirm refuses such a payload (KECIS §15.3.1).
			p.e.log.InfoContext(r.Context(), "amountauth: page", "session", s.ID, "outcome", "unreadable-entry")
			p.form(w, r, http.StatusUnprocessableEntity, s, f, "invalid")
			return
		}
	}
	s, err := p.e.Confirm(r.Context(), "", s.ID, typed)
	switch {
	case errors.Is(err, ErrNotFound):
		p.message(w, r, http.StatusNotFound, "notfound")
		return
	case err != nil:
		p.internal(w, r, f.SessionID, err)
		return
	}
	p.e.log.InfoContext(r.Context(), "amountauth: page", "session", s.ID, "outcome", string(s.PublicState()))
	if s.State == AwaitingAmount {
		p.form(w, r, http.StatusOK, s, f, "mismatch")
		return
	}
	p.outcome(w, r, s, f)
}

// readEntry reads what the cardholder typed: an amount in the purchase's
// currency (ParseTyped), or a descriptor code of 6 digits (spaces and
// hyphens ignored). ok is false for anything else.
func readEntry(form url.Values, s *Session) (Typed, bool) {
	v := form["Entry"]
	if len(v) != 1 || len(v[0]) > maxEntry {
		return Typed{}, false
	}
	if s.Method == ByDescriptor {
		code := strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(v[0]))
		if len(code) != descriptorDigits || !ecml.AllDigits(code) {
			return Typed{}, false
		}
		return Typed{Code: ecml.Secret(code)}, true
	}
	m, err := ParseTyped(v[0], s.Amount.Currency)
	if err != nil {
		return Typed{}, false
	}
	return Typed{Amount: &m}, true
}

// clientKey is the rate-limit key of the request's client
// (httpserver.ClientKey).
func (p *Page) clientKey(r *http.Request) string { return httpserver.ClientKey(r, p.trusted) }

// form renders the amount form of s.
func (p *Page) form(w http.ResponseWriter, r *http.Request, status int, s *Session, f pageForm, notice string) {
	d := p.sessionData(s, f)
	d.Notice = notice
	p.render(w, r, status, "form", d, "")
}

// outcome renders the outcome of a session: ended (with the return to the
// merchant when its options name a ReturnURL) or being completed (with a
// "check again" form).
func (p *Page) outcome(w http.ResponseWriter, r *http.Request, s *Session, f pageForm) {
	d := p.sessionData(s, f)
	d.State = s.PublicState()
	if d.State == Declined || d.State == Refused {
		d.Refusal = s.RefusalMessage
	}
	origin := ""
	if s.State.Ended() {
		if ret := p.e.options(s.Merchant).ReturnURL; ret != "" {
			if o, ok := returnOrigin(ret); ok {
				d.Return, origin = ret, o
			} else {
				p.e.log.WarnContext(r.Context(), "amountauth: page: the merchant's return URL is not an https URL; no return", "session", s.ID, "merchant", s.Merchant)
			}
		}
	}
	p.render(w, r, http.StatusOK, "outcome", d, origin)
}

// sessionData is what every page of a session shows. The challenge is
// never in it (the engine keeps only its HMAC), nor anything typed.
func (p *Page) sessionData(s *Session, f pageForm) *pageData {
	return &pageData{Entry: p.prefix + "/", Confirm: p.prefix + "/confirm", SessionID: s.ID, RelayState: f.RelayState,
		Merchant: s.SubMerchant, Amount: s.Amount.Display(), Card: s.CardRef, Descriptor: s.Method == ByDescriptor,
		AttemptsLeft: max(s.MaxAttempts-s.Attempts, 0)}
}

// returnOrigin checks a merchant's return URL — https, or http to a
// loopback host (a development setup) — and returns its origin for the
// page's CSP form-action.
func returnOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if a, err := netip.ParseAddr(h); !(h == "localhost" || err == nil && a.IsLoopback()) {
			return "", false
		}
	default:
		return "", false
	}
	if strings.ContainsAny(u.Host, " ;,'\"") {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

// message renders a page without a session: "notfound" (unknown, whatever
// the reason), "badrequest", "toolarge", "forbidden", "ratelimited",
// "method" or "internal".
func (p *Page) message(w http.ResponseWriter, r *http.Request, status int, kind string) {
	p.render(w, r, status, "message", &pageData{Kind: kind}, "")
}

// internal answers an error of the engine or its store: logged with the
// session (its text has no entry in it: the engine never puts one there),
// a page that asks to try again.
func (p *Page) internal(w http.ResponseWriter, r *http.Request, id string, err error) {
	if !sessionIDShape(id) {
		id = ""
	}
	p.e.log.ErrorContext(r.Context(), "amountauth: page failed", "session", id, "error", errText(err))
	p.message(w, r, http.StatusInternalServerError, "internal")
}

// render executes a template into a buffer first (a template error never
// leaves half a page) and sends it with the page's headers. formOrigin,
// when set, is the one other origin a form of the page may post to (the
// merchant's return URL).
func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData, formOrigin string) {
	h := w.Header()
	nonce, err := httpserver.PageNonce(p.e.rand)
	if err != nil {
		p.e.log.ErrorContext(r.Context(), "amountauth: page: no nonce", "error", err)
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.Nonce = nonce
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, d); err != nil {
		p.e.log.ErrorContext(r.Context(), "amountauth: page: render", "page", name, "error", err)
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	httpserver.SetPageHeaders(h, nonce, formOrigin)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", "ko, en")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

var _ http.Handler = (*Page)(nil)
