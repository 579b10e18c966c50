// Package page is the escrow buyer's pages at the buyer's own bank (KECIS
// §15.6 steps 2 and 4, §15.8 transfer:collect): the merchant's shop sends
// the buyer's browser to the bank's HTTP-POST endpoint of escrow:pay with
// the order's reference; the buyer logs in with the bank's customer login,
// sees the shop (its registered name, from the metadata), the order and
// the amount, picks one of its accounts and pays (escrow.Engine.Pay);
// later, on "my escrow payments", confirms receipt (Engine.Confirm) or
// disputes (Engine.Dispute).
//
// # Forms
//
// Under Config.Prefix (P, e.g. "/escrow"); every form is
// application/x-www-form-urlencoded, every page HTML without script:
//
//	GET  P/                          the login form, or "my escrow payments" when logged in
//	POST P/login                     login, password [, reference] → 303 P/pay/{reference} (or P/)
//	POST P/logout                    csrf → 303 P/
//	POST P/pay                       the escrow:pay HTTP-POST entry (the endpoint the bank's metadata
//	                                 publishes): reference → 303 P/pay/{reference}; any site may post
//	                                 it (it changes nothing); a malformed reference: 404
//	GET  P/pay/{reference}           the escrow's page: the login form (reference kept, hidden) without
//	                                 a session; the pay form while awaiting payment; its state otherwise
//	POST P/pay/{reference}/pay       csrf, account → 303 P/pay/{reference}
//	POST P/pay/{reference}/confirm   csrf [, from=list] → 303 P/pay/{reference} (P/ from the list)
//	POST P/pay/{reference}/dispute   csrf, reason (at most 200 characters) [, from=list] → 303 likewise
//
// The field names: "login" and "password" (the login form, as the 2-WAY
// pages); "reference" (the escrow's reference, the form the shop posts and
// the login form's hidden field); "csrf" (a hidden token on every form of a
// logged-in page: resubmit it as served); "account" (a <select>, the
// option's value the bank's account id, its text the account masked as
// ecml.MaskAccount does, "****-1234", and its balance); "reason" (a
// textarea); "from" (hidden, "list" on the list's forms). The pay page
// shows the amount as ecml.Money.Display ("150,000원"). A post the browser
// says came from another site (Sec-Fetch-Site cross-site or same-site) is
// refused, but for the entry; a post without the session's token is
// refused (403); a post without a session goes back to the login (303).
//
// An unknown reference, and an escrow another customer paid, show the
// same "no such payment" page (404). An order not yet paid is shown to any
// logged-in customer who has its reference (the shop gave it to its
// buyer's browser); once paid, only to the customer who paid
// (escrow.Engine.View). Paying twice pays once: the engine's funding key
// is derived from the escrow, and a second Pay by the same customer
// answers the escrow unchanged.
//
// After paying, if the shop publishes an HTTP-POST endpoint for
// urn:kecis:service:escrow:pay in its metadata, the page offers a "return
// to the shop" button posting reference there (the address from the
// metadata only, never from the request: Config.Shops, DirectoryShops).
//
// The session, the forms' token, the rate-limited login and the rendering
// are the 2-WAY pages' (connectors/internal/webpage): a cookie (HttpOnly,
// Secure, SameSite=Lax, at most SessionTTL) holding the customer's id
// under an HMAC of SessionKey. Pages are Korean and English, fit a 360 px
// phone, are no-store and never framed. No account number or password is
// ever shown in clear or logged.
package page

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/internal/webpage"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

//go:embed page.html.tmpl
var pageFiles embed.FS

var pageTemplates = webpage.Templates(pageFiles, template.FuncMap{
	"acct": func(n ecml.Secret) string { return ecml.MaskAccount(n.Reveal()) },
	"time": func(t time.Time) string { return t.In(webpage.KST).Format("2006-01-02 15:04") },
}, "page.html.tmpl")

// Shop is a merchant as the pages show it: its registered name and the
// address its shop takes the buyer back at (its HTTP-POST endpoint of
// escrow:pay; "" for none). Both come from the metadata.
type Shop struct {
	Name   string
	Return string
}

// Config configures the buyer's pages (New).
type Config struct {
	Engine *escrow.Engine
	// Customers is the bank's customer login and accounts, the 2-WAY
	// pages' interface (a bank implements it once).
	Customers twoway.PageCustomers
	// SessionKey keys the session cookie and the forms' tokens (at least
	// 32 bytes, a secret of the bank).
	SessionKey []byte
	// Prefix is the path the pages are served under, without a trailing
	// slash ("" or "/escrow").
	Prefix string
	// Shops names a merchant (an entityID) from the metadata
	// (DirectoryShops); nil: the entityID, and no return button.
	Shops func(ctx context.Context, merchant string) (Shop, error)
	// BankName heads the pages.
	BankName string
	// SessionTTL bounds a login (default DefaultSessionTTL).
	SessionTTL time.Duration
	// Login limits login attempts per client address (the bank counts
	// failures per login besides); zero: DefaultLogin.
	Login ratelimit.Config
	// TrustedProxies are the reverse proxies in front of the pages
	// (httpserver.ClientAddr).
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	Rand           io.Reader
	Log            *slog.Logger
}

// Defaults of Config.
var (
	DefaultSessionTTL = 15 * time.Minute
	DefaultLogin      = ratelimit.Config{PerSecond: 0.2, Burst: 10}
)

const (
	sessionCookieName = "escrow_session"
	maxForm           = 4 << 10
	// listLimit bounds "my escrow payments".
	listLimit = 50
)

// DirectoryShops names merchants from the metadata: the DisplayName (the
// entityID when it has none) and the merchant's own HTTP-POST endpoint
// for escrow:pay (the lowest Priority), never an address from a request.
func DirectoryShops(d connectors.Directory) func(ctx context.Context, merchant string) (Shop, error) {
	return func(ctx context.Context, merchant string) (Shop, error) {
		ed, err := d.Lookup(ctx, merchant)
		if errors.Is(err, saml.ErrUnknownEntity) {
			return Shop{Name: merchant}, nil
		}
		if err != nil {
			return Shop{}, err
		}
		s := Shop{Name: ed.DisplayName}
		if s.Name == "" {
			s.Name = merchant
		}
		eps := slices.Clone(ed.Endpoints)
		sort.SliceStable(eps, func(i, j int) bool { return eps[i].Priority < eps[j].Priority })
		for _, e := range eps {
			if e.Service == escrow.ServicePay && e.Binding == saml.BindingHTTPPOST && e.Location != "" {
				s.Return = e.Location
				break
			}
		}
		return s, nil
	}
}

// page serves the buyer's pages.
type page struct {
	cfg      Config
	e        *escrow.Engine
	now      func() time.Time
	log      *slog.Logger
	sessions *webpage.Sessions
	logins   *webpage.Login
	pages    *webpage.Renderer
	mux      *http.ServeMux
	home     string // Prefix + "/"
}

// New returns the buyer's pages (the package doc lists them).
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Engine == nil || cfg.Customers == nil:
		return nil, errors.New("escrow page: New needs an Engine and Customers")
	case len(cfg.SessionKey) < 32:
		return nil, errors.New("escrow page: SessionKey must be at least 32 bytes")
	case !webpage.ValidPrefix(cfg.Prefix):
		return nil, fmt.Errorf("escrow page: prefix %q: a path starting with / without a trailing / nor characters to escape", cfg.Prefix)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Login.PerSecond <= 0 {
		cfg.Login = DefaultLogin
	}
	p := &page{cfg: cfg, e: cfg.Engine, now: cfg.Now, log: cfg.Log, home: cfg.Prefix + "/"}
	p.sessions = &webpage.Sessions{Key: cfg.SessionKey, Cookie: sessionCookieName, Path: p.home, Domain: "escrow",
		TTL: cfg.SessionTTL, Now: cfg.Now}
	p.logins = &webpage.Login{Limit: ratelimit.New(cfg.Login, cfg.Now), TrustedProxies: cfg.TrustedProxies,
		Authenticate: cfg.Customers.Authenticate}
	p.pages = &webpage.Renderer{Templates: pageTemplates, Rand: cfg.Rand, Log: cfg.Log, What: "escrow: page"}
	pre := cfg.Prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+pre+"/{$}", p.list)
	m.HandleFunc("POST "+pre+"/login", p.posts(p.login))
	m.HandleFunc("POST "+pre+"/logout", p.posts(p.logout))
	m.HandleFunc("POST "+pre+"/pay", p.entry)
	m.HandleFunc("GET "+pre+"/pay/{ref}", p.show)
	m.HandleFunc("POST "+pre+"/pay/{ref}/pay", p.posts(p.pay))
	m.HandleFunc("POST "+pre+"/pay/{ref}/confirm", p.posts(p.confirm))
	m.HandleFunc("POST "+pre+"/pay/{ref}/dispute", p.posts(p.dispute))
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
	Kind                string // the message page's, the login's refusal, or a notice
	Name                string // the logged-in customer
	CSRF                string
	Reference           string // the login form's
	Error               string // a refusal's public words
	X                   *escrow.Escrow
	Shop                Shop
	Accounts            []twoway.PageAccount
	CanPay              bool
	CanConfirm          bool
	CanDispute          bool
	Paying              bool // the payment is under way
	ReasonMax           int
	Rows                []row
	Refresh             int
}

// row is one of "my escrow payments".
type row struct {
	X                      *escrow.Escrow
	Shop                   string
	CanConfirm, CanDispute bool
}

// SetNonce implements webpage.Nonced.
func (d *pageData) SetNonce(nonce string) { d.Nonce = nonce }

// ---- session ----

// posts guards every post but the entry: cross-site posts are refused,
// the body is bounded and parsed.
func (p *page) posts(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if kind, status := webpage.ReadPost(w, r, maxForm); kind != "" {
			p.log.InfoContext(r.Context(), "escrow: page: post refused", "path", r.URL.Path, "refusal", kind)
			p.message(w, r, status, kind)
			return
		}
		h(w, r)
	}
}

// authed returns the post's session when its token matches; otherwise it
// answers (back to the login) and returns nil.
func (p *page) authed(w http.ResponseWriter, r *http.Request) *webpage.Session {
	s := p.sessions.Read(r)
	if s == nil {
		http.Redirect(w, r, p.home, http.StatusSeeOther)
		return nil
	}
	if !p.sessions.TokenOK(r, s) {
		p.log.InfoContext(r.Context(), "escrow: page: post without the session's token", "customer", s.Customer)
		p.message(w, r, http.StatusForbidden, "forbidden")
		return nil
	}
	return s
}

// ---- handlers ----

// entry is the escrow:pay HTTP-POST endpoint: the shop's form brings the
// reference; the escrow's page is a GET (so that the session cookie,
// SameSite=Lax, comes along after a post from the shop's site).
func (p *page) entry(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.message(w, r, http.StatusBadRequest, "badrequest")
		return
	}
	ref := strings.TrimSpace(r.PostForm.Get(escrow.FieldReference))
	if !escrow.ValidReference(ref) {
		p.log.InfoContext(r.Context(), "escrow: page: entry without a reference")
		p.message(w, r, http.StatusNotFound, "notfound")
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/pay/"+ref, http.StatusSeeOther)
}

func (p *page) login(w http.ResponseWriter, r *http.Request) {
	ref := r.PostForm.Get(escrow.FieldReference)
	if !escrow.ValidReference(ref) {
		ref = ""
	}
	out, err := p.logins.Check(w, r)
	if err != nil {
		p.internal(w, r, "login", err)
		return
	}
	if out.Refusal != "" {
		p.log.InfoContext(r.Context(), "escrow: page: login refused", "refusal", out.Refusal)
		p.render(w, r, out.Status, "login", &pageData{Kind: out.Refusal, Reference: ref})
		return
	}
	p.sessions.Start(w, out.Customer, out.Name)
	p.log.InfoContext(r.Context(), "escrow: page: logged in", "customer", out.Customer)
	if ref != "" {
		http.Redirect(w, r, p.cfg.Prefix+"/pay/"+ref, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, p.home, http.StatusSeeOther)
}

func (p *page) logout(w http.ResponseWriter, r *http.Request) {
	if p.sessions.Read(r) != nil && p.authed(w, r) == nil {
		return
	}
	p.sessions.End(w)
	http.Redirect(w, r, p.home, http.StatusSeeOther)
}

// list is "my escrow payments": the escrows and collects the customer
// paid, newest first.
func (p *page) list(w http.ResponseWriter, r *http.Request) {
	s := p.sessions.Read(r)
	if s == nil {
		p.render(w, r, http.StatusOK, "login", &pageData{})
		return
	}
	xs, err := p.e.Mine(r.Context(), s.Customer, listLimit)
	if err != nil {
		p.internal(w, r, "list", err)
		return
	}
	names := map[string]string{}
	d := &pageData{Name: s.Name, CSRF: p.sessions.Token(s), ReasonMax: ecml.EscrowReasonMax}
	for _, x := range xs {
		n, ok := names[x.Merchant]
		if !ok {
			n = p.shop(r.Context(), x.Merchant).Name
			names[x.Merchant] = n
		}
		c, dp := p.can(x)
		d.Rows = append(d.Rows, row{X: x, Shop: n, CanConfirm: c, CanDispute: dp})
	}
	p.render(w, r, http.StatusOK, "list", d)
}

// shop names a merchant from the metadata; its entityID when it cannot.
func (p *page) shop(ctx context.Context, merchant string) Shop {
	if p.cfg.Shops == nil {
		return Shop{Name: merchant}
	}
	s, err := p.cfg.Shops(ctx, merchant)
	if err != nil {
		p.log.WarnContext(ctx, "escrow: page: no shop name", "merchant", merchant, "error", err)
		return Shop{Name: merchant}
	}
	if s.Name == "" {
		s.Name = merchant
	}
	return s
}

// can reports what the buyer may do with an escrow it paid now.
func (p *page) can(x *escrow.Escrow) (confirm, dispute bool) {
	if !x.Hold {
		return false, false
	}
	confirm = x.State.Holding()
	dispute = x.State == escrow.Funded || x.State == escrow.Shipped && p.now().Before(x.ConfirmBy)
	return confirm, dispute
}

// escrow reads the path's escrow for the session's customer; it answers
// itself and returns nil when there is none.
func (p *page) escrow(w http.ResponseWriter, r *http.Request, s *webpage.Session) *escrow.Escrow {
	ref := r.PathValue("ref")
	if !escrow.ValidReference(ref) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	x, err := p.e.View(r.Context(), s.Customer, ref)
	if escrow.IsNotFound(err) {
		p.log.InfoContext(r.Context(), "escrow: page: no such escrow", "customer", s.Customer)
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if err != nil {
		p.internal(w, r, "view", err)
		return nil
	}
	return x
}

// show is the escrow's page.
func (p *page) show(w http.ResponseWriter, r *http.Request) {
	s := p.sessions.Read(r)
	if s == nil {
		ref := r.PathValue("ref")
		if !escrow.ValidReference(ref) {
			ref = ""
		}
		p.render(w, r, http.StatusOK, "login", &pageData{Reference: ref})
		return
	}
	if x := p.escrow(w, r, s); x != nil {
		p.view(w, r, s, x, http.StatusOK, "")
	}
}

// view renders an escrow: the pay form while it awaits payment, its state
// otherwise.
func (p *page) view(w http.ResponseWriter, r *http.Request, s *webpage.Session, x *escrow.Escrow, status int, errText string) {
	ctx := r.Context()
	d := &pageData{Name: s.Name, CSRF: p.sessions.Token(s), X: x, Shop: p.shop(ctx, x.Merchant), Error: errText, ReasonMax: ecml.EscrowReasonMax}
	switch {
	case x.State == escrow.AwaitingPayment && x.Buyer == s.Customer:
		d.Paying, d.Refresh = true, 5 // the debit is under way (Sweep carries it on)
	case x.State == escrow.AwaitingPayment:
		accts, err := p.cfg.Customers.Accounts(ctx, s.Customer)
		if err != nil {
			p.internal(w, r, "accounts", err)
			return
		}
		d.Accounts, d.CanPay = accts, p.now().Before(x.PayBy)
	default:
		d.CanConfirm, d.CanDispute = p.can(x)
	}
	origin := ""
	if d.CanPay || d.Paying {
		d.Shop.Return = "" // back to the shop once paid
	} else {
		origin = webpage.Origin(d.Shop.Return)
	}
	p.render(w, r, status, "escrow", d, origin)
}

// act runs a buyer's action and shows its outcome: a refusal with its
// public words on the escrow's page, or back to the page (or the list).
func (p *page) act(w http.ResponseWriter, r *http.Request, what string, fn func(ctx context.Context, customer string, x *escrow.Escrow) (*escrow.Escrow, error)) {
	s := p.authed(w, r)
	if s == nil {
		return
	}
	x := p.escrow(w, r, s)
	if x == nil {
		return
	}
	ctx := r.Context()
	got, err := fn(ctx, s.Customer, x)
	if escrow.IsNotFound(err) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return
	}
	if st, ok := connectors.AsStatus(err); ok {
		p.log.InfoContext(ctx, "escrow: page: "+what+" refused", "customer", s.Customer, "escrow", x.Reference, "code", st.SubCode)
		code := http.StatusConflict
		if st.SubCode == saml.CodeInvalidPayload {
			code = http.StatusUnprocessableEntity
		}
		if now, err := p.e.View(ctx, s.Customer, x.Reference); err == nil {
			x = now
		}
		p.view(w, r, s, x, code, st.Message)
		return
	}
	if err != nil && got == nil {
		p.internal(w, r, what, err)
		return
	}
	if err != nil {
		// The change is recorded, its ledger call's outcome unknown: the
		// engine's Sweep carries it on with the same key; the page shows
		// where it stands.
		p.log.WarnContext(ctx, "escrow: page: "+what+": the ledger call is pending", "customer", s.Customer, "escrow", got.Reference,
			"error", ecml.RedactPANs(err.Error()))
	}
	p.log.InfoContext(ctx, "escrow: page: "+what, "customer", s.Customer, "escrow", got.Reference, "state", got.State)
	if r.PostForm.Get("from") == "list" {
		http.Redirect(w, r, p.home, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/pay/"+got.Reference, http.StatusSeeOther)
}

// errChooseAccount refuses a pay form without one of the customer's
// accounts.
var errChooseAccount = connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, "choose one of your accounts")

// pay debits the chosen account (escrow.Engine.Pay; a second submit pays
// nothing more).
func (p *page) pay(w http.ResponseWriter, r *http.Request) {
	p.act(w, r, "pay", func(ctx context.Context, customer string, x *escrow.Escrow) (*escrow.Escrow, error) {
		accts, err := p.cfg.Customers.Accounts(ctx, customer)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(accts, func(a twoway.PageAccount) bool { return a.ID == r.PostForm.Get("account") })
		if i < 0 {
			if x.Buyer == customer {
				return x, nil // paid already: the page shows it
			}
			return nil, errChooseAccount
		}
		return p.e.Pay(ctx, customer, x.Reference, accts[i].Number)
	})
}

func (p *page) confirm(w http.ResponseWriter, r *http.Request) {
	p.act(w, r, "confirm", func(ctx context.Context, customer string, x *escrow.Escrow) (*escrow.Escrow, error) {
		return p.e.Confirm(ctx, customer, x.Reference)
	})
}

func (p *page) dispute(w http.ResponseWriter, r *http.Request) {
	p.act(w, r, "dispute", func(ctx context.Context, customer string, x *escrow.Escrow) (*escrow.Escrow, error) {
		reason := r.PostForm.Get("reason")
		if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > ecml.EscrowReasonMax {
			return nil, connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload,
				fmt.Sprintf("give the dispute's reason (at most %d characters)", ecml.EscrowReasonMax))
		}
		return p.e.Dispute(ctx, customer, x.Reference, reason)
	})
}

// message renders a page without an escrow: "notfound", "forbidden",
// "badrequest" or "internal".
func (p *page) message(w http.ResponseWriter, r *http.Request, status int, kind string) {
	p.render(w, r, status, "message", &pageData{Kind: kind})
}

func (p *page) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.ErrorContext(r.Context(), "escrow: page failed", "step", what, "error", ecml.RedactPANs(err.Error()))
	p.message(w, r, http.StatusInternalServerError, "internal")
}

func (p *page) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData, formOrigins ...string) {
	d.Prefix, d.Bank = p.cfg.Prefix, p.cfg.BankName
	p.pages.Render(w, r, status, name, d, formOrigins...)
}
