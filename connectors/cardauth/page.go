package cardauth

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

//go:embed page
var pageFiles embed.FS

// pageTemplates are the cardholder's pages (KECIS §15.7).
var pageTemplates = template.Must(template.ParseFS(pageFiles, "page/*.html.tmpl"))

// CookieName is the cookie that binds the browser to its transactions
// (HttpOnly, Secure, SameSite=Lax; the row keeps its SHA-256 only).
const CookieName = "kecis_cardauth"

// maxStepBody caps the body of a step of the page (a transaction id, a
// card number, a password or code).
const maxStepBody = 4 << 10

// pageData is what a page template shows; never a number, password or code.
type pageData struct {
	Nonce, Kind, Notice  string
	TxID                 string
	Card, Second, Totp   string // the form actions
	Cancel, CertURL      string
	Shop, Amount, Masked string
	VCN                  bool
	AttemptsLeft         int
	OfferTOTP, OfferCert bool
	Keypad               []int
	// The answer to post (outcome pages).
	Action, SAMLResponse, RelayState string
	Success                          bool
	Message                          string
	Virtual                          *virtualView
}

// virtualView is a virtual number shown to its cardholder (vcn:issue).
type virtualView struct {
	Number, Type, Exp, Until, Merchant, Cap string
	SingleUse                               bool
}

func (e *Engine) path(step string) string {
	p := strings.TrimSuffix(e.pagePath, "/")
	if step == "" {
		if p == "" {
			return "/"
		}
		return p
	}
	return p + "/" + step
}

func (e *Engine) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e.message(w, r, http.StatusMethodNotAllowed, "method")
		return
	}
	switch r.URL.Path {
	case e.path(""), e.path("") + "/":
		e.serveStart(w, r)
	case e.path("card"):
		e.step(w, r, e.serveCard)
	case e.path("totp"):
		e.step(w, r, e.serveTOTP)
	case e.path("cancel"):
		e.step(w, r, e.serveCancel)
	default:
		e.message(w, r, http.StatusNotFound, "notfound")
	}
}

// serveStart takes the merchant's SAMLRequest (KECIS §15.7.1).
func (e *Engine) serveStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, _ := e.client.Allow(httpserver.ClientKey(r, e.cfg.TrustedProxies)); !ok {
		e.message(w, r, http.StatusTooManyRequests, "ratelimited")
		return
	}
	msg, relay, err := saml.ReadPost(r, "SAMLRequest", saml.Limits{})
	if err != nil {
		e.log.InfoContext(ctx, "cardauth: request unreadable", "reason", saml.AsError(err).Reason)
		e.message(w, r, http.StatusBadRequest, "badrequest")
		return
	}
	req, err := e.cfg.KECIS.ReceiveFront(ctx, msg, connectors.FrontEndpoint{URL: e.cfg.PageURL, Services: []string{ServiceAuthenticate, ServiceVCNIssue}})
	if err != nil {
		se := saml.AsError(err)
		e.log.WarnContext(ctx, "cardauth: request refused", "reason", se.Reason, "cause", ecml.RedactPANs(err.Error()))
		kind := "refused"
		if errors.Is(err, saml.ErrReplay) {
			kind = "replay"
		}
		e.message(w, r, http.StatusBadRequest, kind)
		return
	}
	dest, err := e.cfg.KECIS.RequesterEndpoint(ctx, req)
	if err != nil {
		e.log.WarnContext(ctx, "cardauth: no endpoint to answer", "requester", req.Merchant(), "service", req.Service, "cause", err.Error())
		e.message(w, r, http.StatusBadRequest, "noendpoint")
		return
	}
	now := e.now()
	id, err := e.newID()
	if err != nil {
		e.internal(w, r, err)
		return
	}
	cookie := ""
	if c, err := r.Cookie(CookieName); err == nil && len(c.Value) == 22 {
		cookie = c.Value
	} else if cookie, err = e.newID(); err != nil {
		e.internal(w, r, err)
		return
	}
	t := &tx{ID: id, Binding: bindingHash(cookie), State: AwaitingCard, Service: req.Service, Requester: req.Merchant(),
		RequestID: req.ID, IdemKey: req.IdempotencyKey, RelayState: relay, Destination: dest,
		Expires: now.Add(e.cfg.Lifetime), Created: now, Updated: now}
	rq, perr := e.readRequest(ctx, req)
	if perr == nil {
		t.OrderID, t.Amount, t.Currency, t.Shop, t.Acquirer = rq.OrderID, rq.Amount, rq.Currency, rq.Shop, rq.Acquirer
		t.WantVirtual, t.MultiUse, t.MerchantLock, t.VCNotAfter = rq.WantVirtual, rq.MultiUse, rq.Lock, rq.NotAfter
		var d Decision
		if d, perr = e.decision(t); perr == nil {
			t.Factors = encodeDecision(d)
		}
	}
	if t.IdemKey == "" {
		t.IdemKey = "-" + t.RequestID
	}
	if err := e.store.create(ctx, t); errors.Is(err, errExists) {
		e.log.WarnContext(ctx, "cardauth: idempotency key already used", "requester", t.Requester)
		e.message(w, r, http.StatusConflict, "already")
		return
	} else if err != nil {
		e.internal(w, r, err)
		return
	}
	if perr != nil {
		e.log.InfoContext(ctx, "cardauth: payload refused", "tx", t.ID, "requester", t.Requester, "cause", ecml.RedactPANs(perr.Error()))
		e.post(w, r, t, func() (*answer, error) {
			return e.refuse(ctx, t, status(saml.StatusRequester, saml.CodeInvalidPayload, perr.Error()), Failed)
		})
		return
	}
	if ok, _ := e.merchant.Allow(t.Requester); !ok {
		e.post(w, r, t, func() (*answer, error) {
			return e.refuse(ctx, t, status(saml.StatusResponder, saml.CodeLimitExceeded, msgLimited), Failed)
		})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	e.log.InfoContext(ctx, "cardauth: transaction started", "tx", t.ID, "requester", t.Requester, "service", t.Service)
	e.cardForm(w, r, http.StatusOK, t, "")
}

// step reads a step's form, checks the browser's binding and the
// transaction's state, and hands it to h.
func (e *Engine) step(w http.ResponseWriter, r *http.Request, h func(w http.ResponseWriter, r *http.Request, t *tx)) {
	// A post from another site is refused. The mutual-TLS endpoint is the
	// page's host on another port, which browsers call same-site: with
	// CertURL set, a same-site post (page ↔ certificate endpoint) is
	// taken; the binding cookie (SameSite=Lax) is required anyway.
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || (site == "same-site" && e.certOrigin == "") {
		e.message(w, r, http.StatusForbidden, "forbidden")
		return
	}
	if ok, _ := e.client.Allow(httpserver.ClientKey(r, e.cfg.TrustedProxies)); !ok {
		e.message(w, r, http.StatusTooManyRequests, "ratelimited")
		return
	}
	t := e.load(w, r)
	if t == nil {
		return
	}
	h(w, r, t)
}

// load reads the form (at most maxStepBody) and finds its transaction,
// bound to this browser; it answers the request itself and returns nil
// otherwise. A transaction past its lifetime is ended expired.
func (e *Engine) load(w http.ResponseWriter, r *http.Request) *tx {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxStepBody)
	if err := r.ParseForm(); err != nil {
		e.message(w, r, http.StatusBadRequest, "badrequest")
		return nil
	}
	ids := r.PostForm["tx"]
	if len(ids) != 1 || len(ids[0]) != 22 {
		e.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	t, err := e.store.get(ctx, ids[0])
	if errors.Is(err, errNotFound) {
		e.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if err != nil {
		e.internal(w, r, err)
		return nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil || subtle.ConstantTimeCompare(bindingHash(c.Value), t.Binding) != 1 {
		e.log.WarnContext(ctx, "cardauth: transaction posted from another browser", "tx", t.ID)
		e.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if t.State.Ended() {
		e.message(w, r, http.StatusConflict, "ended")
		return nil
	}
	if !e.now().Before(t.Expires) {
		e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msgExpired), Expired) })
		return nil
	}
	return t
}

// serveCard takes the card number and the password.
func (e *Engine) serveCard(w http.ResponseWriter, r *http.Request, t *tx) {
	ctx := r.Context()
	if t.State != AwaitingCard {
		e.secondForm(w, r, http.StatusConflict, t, nil, "")
		return
	}
	number := ecml.PAN(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(r.PostForm.Get("CardNumber"))))
	pw := ecml.Secret(r.PostForm.Get("Password"))
	if n := len(number.Reveal()); n < 12 || n > 19 || !ecml.AllDigits(number.Reveal()) || !ecml.LuhnValid(number.Reveal()) ||
		len(pw.Reveal()) == 0 || len(pw.Reveal()) > 64 {
		e.cardForm(w, r, http.StatusUnprocessableEntity, t, "invalid")
		return
	}
	if ok, _ := e.card.Allow(e.cardKey(number)); !ok {
		e.post(w, r, t, func() (*answer, error) {
			return e.refuse(ctx, t, status(saml.StatusResponder, saml.CodeLimitExceeded, msgLimited), Failed)
		})
		return
	}
	c := e.cfg.Cardholders
	card, err := c.FindCard(ctx, number)
	switch {
	case errors.Is(err, ErrUnknownCard):
		// Answered as a wrong password: the page is no oracle of numbers.
		e.wrong(w, r, t, false)
		return
	case err != nil:
		e.internal(w, r, err)
		return
	}
	err = c.CheckPassword(ctx, card.Ref, pw)
	var fe *FactorError
	switch {
	case errors.As(err, &fe):
		e.wrong(w, r, t, false)
		return
	case errors.Is(err, ErrLocked):
		e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msgWrong), Failed) })
		return
	case err != nil:
		e.internal(w, r, err)
		return
	}
	t.CardRef, t.CardMasked = card.Ref, number.Masked()
	d := decodeDecision(t.Factors)
	if !d.SecondFactor() {
		e.post(w, r, t, func() (*answer, error) { return e.succeed(ctx, t, MethodPassword, 1) })
		return
	}
	totp, cert := e.secondFactors(t, card)
	if !totp && !cert {
		e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msgNoFactor), Failed) })
		return
	}
	t.State, t.Updated = AwaitingSecondFactor, e.now()
	if err := e.store.update(ctx, t); err != nil {
		e.internal(w, r, err)
		return
	}
	e.secondForm(w, r, http.StatusOK, t, card, "")
}

// wrong counts a wrong entry of t: the form again, or the end of t at the
// attempt limit.
func (e *Engine) wrong(w http.ResponseWriter, r *http.Request, t *tx, second bool) {
	ctx := r.Context()
	t.Attempts++
	t.Updated = e.now()
	if t.Attempts >= e.cfg.Attempts {
		msg := msgWrong
		if second {
			msg = msgSecond
		}
		e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msg), Failed) })
		return
	}
	if err := e.store.update(ctx, t); err != nil {
		e.internal(w, r, err)
		return
	}
	e.log.InfoContext(ctx, "cardauth: wrong entry", "tx", t.ID, "attempts", t.Attempts)
	if second {
		e.secondForm(w, r, http.StatusOK, t, nil, "wrong")
		return
	}
	e.cardForm(w, r, http.StatusOK, t, "wrong")
}

// serveTOTP takes the second factor by TOTP code.
func (e *Engine) serveTOTP(w http.ResponseWriter, r *http.Request, t *tx) {
	ctx := r.Context()
	if t.State != AwaitingSecondFactor || !decodeDecision(t.Factors).Offers(FactorTOTP) {
		e.message(w, r, http.StatusConflict, "ended")
		return
	}
	code := ecml.Secret(strings.TrimSpace(r.PostForm.Get("Code")))
	if n := len(code.Reveal()); n < 6 || n > 8 || !ecml.AllDigits(code.Reveal()) {
		e.secondForm(w, r, http.StatusUnprocessableEntity, t, nil, "invalid")
		return
	}
	err := e.cfg.Cardholders.CheckTOTP(ctx, t.CardRef, code)
	var fe *FactorError
	switch {
	case errors.As(err, &fe):
		e.wrong(w, r, t, true)
	case errors.Is(err, ErrLocked):
		e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msgLocked), Failed) })
	case err != nil:
		e.internal(w, r, err)
	default:
		e.post(w, r, t, func() (*answer, error) { return e.succeed(ctx, t, MethodTOTP, 2) })
	}
}

// serveCancel ends t at the cardholder's wish.
func (e *Engine) serveCancel(w http.ResponseWriter, r *http.Request, t *tx) {
	ctx := r.Context()
	e.post(w, r, t, func() (*answer, error) { return e.refuse(ctx, t, authFailed(msgCancelled), Failed) })
}

// serveCert is the mutual-TLS endpoint: the browser's client certificate
// as the second factor (KECIS §15.7.2).
func (e *Engine) serveCert(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e.message(w, r, http.StatusMethodNotAllowed, "method")
		return
	}
	e.step(w, r, func(w http.ResponseWriter, r *http.Request, t *tx) {
		ctx := r.Context()
		if t.State != AwaitingSecondFactor || !decodeDecision(t.Factors).Offers(FactorClientCert) || e.cfg.Certs == nil {
			e.message(w, r, http.StatusConflict, "ended")
			return
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			e.secondForm(w, r, http.StatusOK, t, nil, "nocert")
			return
		}
		leaf, err := e.cfg.Certs.Verify(ctx, r.TLS.PeerCertificates, e.now())
		if err != nil {
			e.log.InfoContext(ctx, "cardauth: client certificate refused", "tx", t.ID, "cause", err.Error())
			e.wrong(w, r, t, true)
			return
		}
		ref, err := e.cfg.Cardholders.CertificateCard(ctx, leaf)
		if err != nil || ref != t.CardRef {
			e.log.InfoContext(ctx, "cardauth: client certificate of another card", "tx", t.ID)
			e.wrong(w, r, t, true)
			return
		}
		e.post(w, r, t, func() (*answer, error) { return e.succeed(ctx, t, MethodClientCert, 2) })
	})
}

// post ends a transaction with the answer fn signs, and sends the browser
// to the requester's endpoint with it.
func (e *Engine) post(w http.ResponseWriter, r *http.Request, t *tx, fn func() (*answer, error)) {
	a, err := fn()
	if err != nil {
		e.internal(w, r, err)
		return
	}
	origin := originOf(a.Destination)
	d := &pageData{Action: a.Destination, RelayState: t.RelayState, Success: t.State == Done, Message: t.StatusMsg,
		SAMLResponse: b64(a.Signed), Shop: t.Shop, Masked: t.CardMasked}
	d.Amount = ecml.Money{Minor: t.Amount, Currency: t.Currency}.Display()
	if v := a.Virtual; v != nil {
		d.Virtual = &virtualView{Number: v.Number.Reveal(), Type: v.Type, Exp: strconv.Itoa(v.ExpMonth) + "/" + strconv.Itoa(v.ExpYear),
			Until: v.Controls.NotOnOrAfter.Format("2006-01-02 15:04 MST"), Merchant: v.Controls.Merchant, SingleUse: v.Controls.SingleUse,
			Cap: ecml.Money{Minor: v.Controls.MaxAmount, Currency: v.Controls.Currency}.Display()}
		e.render(w, r, http.StatusOK, "virtual", d, origin)
		return
	}
	e.render(w, r, http.StatusOK, "post", d, origin)
}

func originOf(u string) string {
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

// cardForm renders the card number and password form of t.
func (e *Engine) cardForm(w http.ResponseWriter, r *http.Request, st int, t *tx, notice string) {
	d := e.txData(t)
	d.Notice = notice
	kp, err := e.keypad()
	if err != nil {
		e.internal(w, r, err)
		return
	}
	d.Keypad = kp
	e.render(w, r, st, "card", d, "")
}

// secondForm renders the choice of second factor of t.
func (e *Engine) secondForm(w http.ResponseWriter, r *http.Request, st int, t *tx, card *Card, notice string) {
	d := e.txData(t)
	d.Notice = notice
	if card == nil {
		if pan, err := e.cfg.Cardholders.CardNumber(r.Context(), t.CardRef); err == nil {
			card, _ = e.cfg.Cardholders.FindCard(r.Context(), pan)
		}
	}
	d.OfferTOTP, d.OfferCert = e.secondFactors(t, card)
	if card == nil {
		d.OfferTOTP = false
	}
	if d.OfferCert {
		d.CertURL = e.cfg.CertURL
	}
	e.render(w, r, st, "second", d, e.certOrigin)
}

func (e *Engine) txData(t *tx) *pageData {
	return &pageData{TxID: t.ID, Card: e.abs(e.path("card")), Totp: e.abs(e.path("totp")), Cancel: e.abs(e.path("cancel")),
		Shop: t.Shop, Amount: ecml.Money{Minor: t.Amount, Currency: t.Currency}.Display(), Masked: t.CardMasked,
		VCN: t.Service == ServiceVCNIssue, AttemptsLeft: max(e.cfg.Attempts-t.Attempts, 0)}
}

// abs is a path of the page as an absolute URL: the certificate endpoint's
// pages post back to the page's origin.
func (e *Engine) abs(path string) string { return e.pageOrigin + path }

// keypad is the digits 0–9 shuffled (Fisher–Yates from the engine's
// random source, crypto/rand by default) for one page view.
func (e *Engine) keypad() ([]int, error) {
	k := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for i := len(k) - 1; i > 0; i-- {
		j, err := randInt(e, i+1)
		if err != nil {
			return nil, err
		}
		k[i], k[j] = k[j], k[i]
	}
	return k, nil
}

func randInt(e *Engine, n int) (int, error) {
	v, err := rand.Int(e.rand, big.NewInt(int64(n)))
	if err != nil {
		return 0, err
	}
	return int(v.Int64()), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// message renders a page without a transaction.
func (e *Engine) message(w http.ResponseWriter, r *http.Request, st int, kind string) {
	e.render(w, r, st, "message", &pageData{Kind: kind}, "")
}

func (e *Engine) internal(w http.ResponseWriter, r *http.Request, err error) {
	e.log.ErrorContext(r.Context(), "cardauth: page failed", "error", ecml.RedactPANs(err.Error()))
	e.message(w, r, http.StatusInternalServerError, "internal")
}

// render executes a template into a buffer and sends it with the page's
// headers (httpserver.SetPageHeaders; forms post to the page, the
// page's origin and formOrigin).
func (e *Engine) render(w http.ResponseWriter, r *http.Request, st int, name string, d *pageData, formOrigin string) {
	h := w.Header()
	nonce, err := httpserver.PageNonce(e.rand)
	if err != nil {
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.Nonce = nonce
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, d); err != nil {
		e.log.ErrorContext(r.Context(), "cardauth: page: render", "page", name, "error", err)
		httpserver.SetBareHeaders(h)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	httpserver.SetPageHeaders(h, nonce, e.pageOrigin, formOrigin)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", "ko, en")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(st)
	_, _ = w.Write(b.Bytes())
}
