// Package webpage holds what a bank's pages for its own customers share
// (the 2-WAY remitter's pages, KECIS §15.5; the escrow buyer's pages,
// KECIS §15.6): the session cookie, the forms' token, the guard of every
// post, the login against the bank's customers with its per-client rate
// limit, the pages' common style, and rendering with the page headers
// (connectors/httpserver). Each page package keeps its own templates,
// routes and data.
//
// A session is a cookie (HttpOnly, Secure, SameSite=Lax, at most the TTL)
// holding the customer's id and name and an expiry under an HMAC of the
// bank's key; every post carries a token derived from the cookie and is
// refused when the browser says it came from another site
// (Sec-Fetch-Site). Nothing here logs a login, a password or an account.
package webpage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/ecml"
)

// Login refusals the bank's customer login answers (wrapped or not); the
// page packages export them under their own names (twoway.ErrLoginFailed
// is ErrLoginFailed).
var (
	// ErrLoginFailed: a wrong login or password (one answer for both).
	ErrLoginFailed = errors.New("twoway: wrong login or password")
	// ErrLoginLocked: the bank locked the login after repeated failures.
	ErrLoginLocked = errors.New("twoway: the login is locked")
)

// KST is the time zone the pages show times in (Korea Standard Time).
var KST = time.FixedZone("KST", 9*3600)

// ValidPrefix reports whether p can prefix the pages' paths: "" or a path
// starting with / without a trailing / nor characters to escape.
func ValidPrefix(p string) bool {
	return p == "" || p[0] == '/' && !strings.HasSuffix(p, "/") &&
		strings.Trim(p, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") == ""
}

// Sessions makes and reads the session cookie of a page package.
type Sessions struct {
	// Key is the bank's secret (at least 32 bytes).
	Key []byte
	// Cookie is the cookie's name, Path its path (the pages' prefix and
	// "/").
	Cookie, Path string
	// Domain separates the MACs of page packages sharing a key
	// ("twoway": "twoway session", "twoway form").
	Domain string
	TTL    time.Duration
	Now    func() time.Time
}

// Session is a logged-in customer; Value is the cookie's value.
type Session struct {
	Customer, Name, Value string
}

// MAC is the keyed hash of parts (each length-prefixed), base64url.
func (s *Sessions) MAC(parts ...string) string {
	m := hmac.New(sha256.New, s.Key)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p)) + ":" + p + ";"))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Sessions) value(customer, name string, exp time.Time) string {
	b := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	e := strconv.FormatInt(exp.Unix(), 10)
	return b(customer) + "." + b(name) + "." + e + "." + s.MAC(s.Domain+" session", customer, name, e)
}

// Start logs the customer in: the session cookie, valid for the TTL.
func (s *Sessions) Start(w http.ResponseWriter, customer, name string) {
	s.set(w, s.value(customer, name, s.Now().Add(s.TTL)), int(s.TTL/time.Second))
}

// End logs out: the cookie is removed.
func (s *Sessions) End(w http.ResponseWriter) { s.set(w, "", -1) }

func (s *Sessions) set(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: s.Cookie, Value: value, Path: s.Path, MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
}

// Read returns the request's session; nil without a valid, unexpired one.
func (s *Sessions) Read(r *http.Request) *Session {
	ck, err := r.Cookie(s.Cookie)
	if err != nil || len(ck.Value) > 1024 {
		return nil
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 {
		return nil
	}
	c, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	n, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	exp, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(c) == 0 {
		return nil
	}
	if !hmac.Equal([]byte(parts[3]), []byte(s.MAC(s.Domain+" session", string(c), string(n), parts[2]))) {
		return nil
	}
	if !s.Now().Before(time.Unix(exp, 0)) {
		return nil
	}
	return &Session{Customer: string(c), Name: string(n), Value: ck.Value}
}

// Token is the forms' token of a session (the field "csrf").
func (s *Sessions) Token(sess *Session) string { return s.MAC(s.Domain+" form", sess.Value) }

// TokenOK reports whether a parsed post carries the session's token.
func (s *Sessions) TokenOK(r *http.Request, sess *Session) bool {
	return hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.Token(sess)))
}

// ReadPost guards a post: one the browser says came from another site is
// refused ("forbidden", 403); the body is bounded by max bytes and parsed
// ("badrequest", 400 when it cannot be). It returns "" for a post to
// serve.
func ReadPost(w http.ResponseWriter, r *http.Request, max int64) (refusal string, status int) {
	if httpserver.CrossSite(r) {
		return "forbidden", http.StatusForbidden
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	if err := r.ParseForm(); err != nil {
		return "badrequest", http.StatusBadRequest
	}
	return "", 0
}

// Authenticate is the bank's customer login (the page packages'
// Customers.Authenticate): ErrLoginFailed or ErrLoginLocked (wrapped) for
// a refusal, any other error a failure to check.
type Authenticate func(ctx context.Context, login string, password ecml.Secret) (customerID, name string, err error)

// Login is the login step of the pages: a limit per client address
// before the bank's own count of failures per login.
type Login struct {
	Limit          *ratelimit.Limiter
	TrustedProxies []netip.Prefix
	Authenticate   Authenticate
}

// LoginOutcome is a login's result: the customer, or a refusal
// ("ratelimited", "failed", "locked") with its HTTP status.
type LoginOutcome struct {
	Customer, Name string
	Refusal        string
	Status         int
}

// Check takes a parsed login post (fields login, password); a refusal
// sets Retry-After when rate-limited. The error is a failure to check.
func (l *Login) Check(w http.ResponseWriter, r *http.Request) (LoginOutcome, error) {
	if ok, retry := l.Limit.Allow(httpserver.ClientKey(r, l.TrustedProxies)); !ok {
		w.Header().Set("Retry-After", httpserver.RetryAfterSeconds(retry))
		return LoginOutcome{Refusal: "ratelimited", Status: http.StatusTooManyRequests}, nil
	}
	login, pw := r.PostForm.Get("login"), r.PostForm.Get("password")
	if login == "" || pw == "" || len(login) > 64 || len(pw) > 256 {
		return LoginOutcome{Refusal: "failed", Status: http.StatusUnauthorized}, nil
	}
	id, name, err := l.Authenticate(r.Context(), login, ecml.Secret(pw))
	switch {
	case errors.Is(err, ErrLoginLocked):
		return LoginOutcome{Refusal: "locked", Status: http.StatusForbidden}, nil
	case errors.Is(err, ErrLoginFailed):
		return LoginOutcome{Refusal: "failed", Status: http.StatusUnauthorized}, nil
	case err != nil:
		return LoginOutcome{}, err
	}
	return LoginOutcome{Customer: id, Name: name}, nil
}

//go:embed style.html.tmpl
var styleFiles embed.FS

// Templates parses a page package's templates (patterns of files) after
// the shared ones: {{template "style"}} is the pages' style sheet, for
// inside <style nonce="...">.
func Templates(files fs.FS, funcs template.FuncMap, patterns ...string) *template.Template {
	t := template.Must(template.New("").Funcs(funcs).ParseFS(styleFiles, "style.html.tmpl"))
	return template.Must(t.ParseFS(files, patterns...))
}

// Nonced is a page's data: it takes the page's CSP nonce.
type Nonced interface{ SetNonce(nonce string) }

// Renderer renders pages.
type Renderer struct {
	Templates *template.Template
	Rand      io.Reader
	Log       *slog.Logger
	// What names the pages in the log ("twoway: page").
	What string
}

// Render executes the template name into a buffer first and sends it with
// the page headers: CSP with a fresh nonce (forms may post to 'self' and
// formOrigins), no-store, never framed; Korean and English.
func (x *Renderer) Render(w http.ResponseWriter, r *http.Request, status int, name string, d Nonced, formOrigins ...string) {
	h := w.Header()
	nonce, err := httpserver.PageNonce(x.Rand)
	if err != nil {
		x.Log.ErrorContext(r.Context(), x.What+": no nonce", "error", err)
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.SetNonce(nonce)
	var b bytes.Buffer
	if err := x.Templates.ExecuteTemplate(&b, name, d); err != nil {
		x.Log.ErrorContext(r.Context(), x.What+": render", "page", name, "error", err)
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	httpserver.SetPageHeaders(h, nonce, formOrigins...)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", "ko, en")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// Origin is the scheme and host of an absolute URL ("" for none): what a
// page's CSP form-action admits besides 'self' for a form posting back to
// another participant.
func Origin(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	return u[:i+3] + rest
}
