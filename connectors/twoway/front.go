package twoway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/internal/webpage"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// FrontConfig lets the remitter's pages take twoway:request over HTTP-POST
// (KECIS §15.5.1, §10.2): a merchant or another bank sends the remitter's
// browser to the bank with its signed request; the remitter logs in at its
// own bank, sees the request filled in, picks the withdrawal account and
// goes through the 2-WAY steps; when the code has been texted to the
// payee — or the request ended before that — the page posts the bank's
// signed answer to the requester's own HTTP-POST endpoint for the service
// from metadata (connectors.Handler.RequesterEndpoint).
type FrontConfig struct {
	// KECIS is the bank's SDK handler: ReceiveFront runs the receive
	// pipeline (signature, Destination, replay, callers, decryption) and
	// claims the requester's order (KECIS §13.3); AnswerFront signs.
	KECIS *connectors.Handler
	// URL is the endpoint's URL as the bank's metadata publishes it for
	// ServiceRequest: the page serves it at Prefix + "/request".
	URL   string
	Store FrontStore
	// Directory, optional, names the requester on the page by its
	// registered display name.
	Directory connectors.Directory
	// Lifetime is how long the remitter has to confirm the prefilled form
	// (default DefaultFrontLifetime).
	Lifetime time.Duration
}

// DefaultFrontLifetime bounds the wait for the remitter's confirmation of
// a requested transfer.
const DefaultFrontLifetime = 20 * time.Minute

const frontCookieName = "twoway_front"

// Public messages of the answers.
const (
	msgPending   = "the code is with the payee: ask twoway:status for the outcome"
	msgDuplicate = "the order was requested with another idempotency key or other content"
)

func (p *page) mountFront(m *http.ServeMux) error {
	fc := p.cfg.Front
	if fc.KECIS == nil || fc.Store == nil || fc.URL == "" {
		return errors.New("twoway: NewPage: Front needs KECIS, Store and URL")
	}
	if fc.Lifetime <= 0 {
		fc.Lifetime = DefaultFrontLifetime
	}
	pre := p.cfg.Prefix
	m.HandleFunc("POST "+pre+"/request", p.frontReceive)
	m.HandleFunc("GET "+pre+"/f/{id}", p.frontShow)
	m.HandleFunc("POST "+pre+"/f/{id}/confirm", p.posts(p.frontConfirm))
	m.HandleFunc("POST "+pre+"/f/{id}/cancel", p.posts(p.frontCancel))
	return nil
}

func validFrontID(id string) bool {
	return len(id) == 34 && strings.HasPrefix(id, "tf") && validID("tw"+id[2:])
}

// binding is the keyed hash of a browser's front cookie.
func (p *page) binding(cookie string) []byte {
	m := hmac.New(sha256.New, p.cfg.SessionKey)
	m.Write([]byte("twoway front binding:" + cookie))
	return m.Sum(nil)
}

// browserCookie returns the browser's front cookie, making one when it
// has none.
func (p *page) browserCookie(w http.ResponseWriter, r *http.Request) (string, error) {
	if ck, err := r.Cookie(frontCookieName); err == nil && len(ck.Value) == 22 {
		return ck.Value, nil
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: frontCookieName, Value: v, Path: p.cookiePath, MaxAge: int(p.cfg.Front.lifetime() / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return v, nil
}

func (fc *FrontConfig) lifetime() time.Duration {
	if fc.Lifetime <= 0 {
		return DefaultFrontLifetime
	}
	return fc.Lifetime
}

// bound reports whether the request came with this browser.
func (p *page) bound(r *http.Request, f *Front) bool {
	ck, err := r.Cookie(frontCookieName)
	return err == nil && hmac.Equal(p.binding(ck.Value), f.Binding)
}

// readFront checks a verified request's payload (KECIS §15.5.1); the error
// is the refusal's public words.
func (p *page) readFront(req *connectors.Request) (*Front, error) {
	pl := req.Payload
	if req.IdempotencyKey == "" {
		return nil, errors.New("kecis:IdempotencyKey is required")
	}
	if pl == nil || pl.Ecom == nil || pl.Ecom.ConsumerOrderID == "" || pl.Ecom.Transaction == nil {
		return nil, errors.New("Ecom/@ConsumerOrderID and Transaction are required")
	}
	m, err := pl.Ecom.Transaction.Money()
	if err != nil || m.Minor <= 0 || m.Currency != "KRW" {
		return nil, errors.New("Transaction/@Amount must be a positive amount in KRW")
	}
	f := &Front{Requester: req.Merchant(), Order: pl.Ecom.ConsumerOrderID, RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Amount: m}
	i := slices.IndexFunc(pl.BankAccounts, func(a *ecml.BankAccount) bool { return a.Role == "payee" })
	if i < 0 || pl.BankAccounts[i].AccountNumber == "" {
		return nil, errors.New(`kx:BankAccount Role="payee" with @BankCode and kx:AccountNumber is required`)
	}
	acct := pl.BankAccounts[i]
	if _, ok := ecml.AccountDigits(acct.AccountNumber.Reveal()); !ok || len(acct.BankCode) != 3 || !ecml.AllDigits(acct.BankCode) {
		return nil, errors.New("the payee's bank code or account number is malformed")
	}
	f.PayeeBank, f.PayeeAccount = acct.BankCode, acct.AccountNumber
	var number string
	if b := pl.Ecom.BillTo; b != nil && b.Telecom != nil && b.Telecom.Phone != nil {
		number = b.Telecom.Phone.Number
	}
	if f.PayeePhone, err = sms.NormalizePhone(number); err != nil {
		return nil, errors.New("Ecom/BillTo/Telecom/Phone/@Number must be the payee's mobile number")
	}
	if b := pl.Ecom.BillTo; b.Postal != nil && b.Postal.Name != nil {
		n := b.Postal.Name
		f.PayeeName = strings.Join(strings.Fields(n.Last+" "+n.First+" "+n.Middle), " ")
	}
	if pl.Transfer == nil || (pl.Transfer.Purpose != PhishingPrevention && pl.Transfer.Purpose != MutualAgreement) {
		return nil, errors.New("kx:Transfer/@Purpose must be phishing-prevention or mutual-agreement")
	}
	f.Purpose, f.Terms = pl.Transfer.Purpose, pl.Transfer.Terms
	if f.Purpose == MutualAgreement && (f.Terms == nil || strings.TrimSpace(f.Terms.Text) == "" || f.Terms.RepaymentDate == "") {
		return nil, errors.New("a mutual agreement needs kx:Terms with the repayment date and the terms in words")
	}
	if f.Purpose != MutualAgreement {
		f.Terms = nil
	}
	f.Fingerprint = mac(p.e.cfg.Key, "kecis twoway front", f.IdempotencyKey, strconv.FormatInt(m.Minor, 10), m.Currency, f.PayeeBank,
		digitsOnly(f.PayeeAccount.Reveal()), f.PayeePhone, f.PayeeName, f.Purpose, termsText(f.Terms))
	return f, nil
}

func termsText(t *ecml.Terms) string {
	if t == nil {
		return ""
	}
	return strings.Join([]string{t.Principal, t.Currency, t.RepaymentDate, t.InterestRate, t.Text}, "\x00")
}

// frontReceive is the HTTP-POST endpoint of twoway:request.
func (p *page) frontReceive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fc := p.cfg.Front
	msg, relay, err := saml.ReadPost(r, "SAMLRequest", saml.Limits{})
	if err == nil {
		var req *connectors.Request
		req, err = fc.KECIS.ReceiveFront(ctx, msg, connectors.FrontEndpoint{URL: fc.URL, Services: []string{ServiceRequest}})
		if err == nil {
			p.frontAccept(w, r, req, relay)
			return
		}
	}
	// The front channel answers nothing to a request it refused (KECIS
	// §15.7.1): an error page, the category in the log.
	e := saml.AsError(err)
	p.log.InfoContext(ctx, "twoway: front: request refused", "reason", e.Reason, "issuer", e.Issuer)
	p.message(w, r, http.StatusBadRequest, "badrequest")
}

// frontAccept takes a verified request: a new order, or the same order
// sent again (the same key and content resume it; other content is a
// Duplicate), then the login or the prefilled form.
func (p *page) frontAccept(w http.ResponseWriter, r *http.Request, req *connectors.Request, relay string) {
	ctx := r.Context()
	fs := p.cfg.Front.Store
	f, perr := p.readFront(req)
	if perr != nil {
		p.log.InfoContext(ctx, "twoway: front: invalid request", "requester", req.Merchant(), "problem", perr.Error())
		p.postOnce(w, r, req, relay, saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: perr.Error()}, nil)
		return
	}
	cookie, err := p.browserCookie(w, r)
	if err != nil {
		p.internal(w, r, "front", err)
		return
	}
	now := p.now()
	f.RelayState, f.Binding, f.Created, f.Expires = relay, p.binding(cookie), now, now.Add(p.cfg.Front.lifetime())
	id := make([]byte, 16)
	if _, err := io.ReadFull(p.rand, id); err != nil {
		p.internal(w, r, "front", err)
		return
	}
	f.ID = "tf" + hex.EncodeToString(id)
	err = fs.CreateFront(ctx, f)
	if errors.Is(err, ErrExists) {
		old, gerr := fs.FrontByOrder(ctx, f.Requester, f.Order)
		if gerr != nil {
			p.internal(w, r, "front", gerr)
			return
		}
		if !hmac.Equal(old.Fingerprint, f.Fingerprint) {
			p.log.InfoContext(ctx, "twoway: front: order requested again with other content", "requester", f.Requester, "front", old.ID)
			p.postOnce(w, r, req, relay, saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDuplicate, Message: msgDuplicate}, nil)
			return
		}
		if err = fs.RebindFront(ctx, old.ID, f.RequestID, relay, f.Binding); errors.Is(err, ErrConflict) {
			// Answered already: the same outcome, for this request.
			st, pl := p.outcome(ctx, old)
			p.postOnce(w, r, req, relay, st, pl)
			return
		}
		f = old
	}
	if err != nil {
		p.internal(w, r, "front", err)
		return
	}
	p.log.InfoContext(ctx, "twoway: front: requested", "requester", f.Requester, "front", f.ID, "amount", f.Amount.Minor,
		"payee_bank", f.PayeeBank, "payee_account", MaskAccount(f.PayeeAccount))
	if p.session(r) != nil {
		http.Redirect(w, r, p.cfg.Prefix+"/f/"+f.ID, http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "login", &pageData{Front: f.ID, Shop: p.shop(ctx, f.Requester), Amount: f.Amount.Display()})
}

// shop is the requester's registered name.
func (p *page) shop(ctx context.Context, requester string) string {
	if d := p.cfg.Front.Directory; d != nil {
		if ed, err := d.Lookup(ctx, requester); err == nil && ed.DisplayName != "" {
			return ed.DisplayName
		}
	}
	return requester
}

// front reads the path's request for a logged-in browser that brought it;
// it answers itself and returns nil otherwise.
func (p *page) front(w http.ResponseWriter, r *http.Request, s *session) *Front {
	id := r.PathValue("id")
	if !validFrontID(id) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	f, err := p.cfg.Front.Store.Front(r.Context(), id)
	if errors.Is(err, ErrNotFound) || (err == nil && f.Customer != "" && f.Customer != s.customer) {
		p.message(w, r, http.StatusNotFound, "notfound")
		return nil
	}
	if err != nil {
		p.internal(w, r, "front", err)
		return nil
	}
	if !p.bound(r, f) {
		p.log.InfoContext(r.Context(), "twoway: front: request from another browser", "front", f.ID)
		p.message(w, r, http.StatusForbidden, "forbidden")
		return nil
	}
	if f.Transfer != "" {
		http.Redirect(w, r, p.cfg.Prefix+"/t/"+f.Transfer, http.StatusSeeOther)
		return nil
	}
	if len(f.Answer) > 0 || !p.now().Before(f.Expires) {
		p.frontEnd(w, r, s, f, nil, string(Expired))
		return nil
	}
	return f
}

// frontShow shows the requested transfer filled in: the remitter picks
// the withdrawal account and confirms, or declines.
func (p *page) frontShow(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		id := r.PathValue("id")
		if !validFrontID(id) {
			id = ""
		}
		p.render(w, r, http.StatusOK, "login", &pageData{Front: id})
		return
	}
	if f := p.front(w, r, s); f != nil {
		p.frontForm(w, r, s, f, http.StatusOK, "")
	}
}

func (p *page) frontForm(w http.ResponseWriter, r *http.Request, s *session, f *Front, status int, errText string) {
	accts, err := p.cfg.Customers.Accounts(r.Context(), s.customer)
	if err != nil {
		p.internal(w, r, "accounts", err)
		return
	}
	p.render(w, r, status, "front", &pageData{Name: s.name, CSRF: p.csrf(s), Accounts: accts, F: f, Shop: p.shop(r.Context(), f.Requester),
		Error: errText, Deadline: f.Expires.In(kst).Format("15:04:05")})
}

// frontConfirm starts the engine's request from the requested transfer
// (step 1) and binds it to the requester's order.
func (p *page) frontConfirm(w http.ResponseWriter, r *http.Request) {
	s := p.authed(w, r)
	if s == nil {
		return
	}
	f := p.front(w, r, s)
	if f == nil {
		return
	}
	ctx := r.Context()
	accts, err := p.cfg.Customers.Accounts(ctx, s.customer)
	if err != nil {
		p.internal(w, r, "accounts", err)
		return
	}
	i := 0
	if a := r.PostForm.Get("account"); a != "" {
		i = slices.IndexFunc(accts, func(x PageAccount) bool { return x.ID == a })
	}
	if i < 0 || len(accts) == 0 {
		p.frontForm(w, r, s, f, http.StatusUnprocessableEntity, "choose one of your accounts")
		return
	}
	if ok, retry := p.byCustomer.Allow("customer:" + s.customer); !ok {
		w.Header().Set("Retry-After", httpserver.RetryAfterSeconds(retry))
		p.frontForm(w, r, s, f, http.StatusTooManyRequests, "too many transfer requests: try again later")
		return
	}
	if ok, retry := p.byPhone.Allow("phone:" + base64.RawURLEncoding.EncodeToString(PhoneMAC(p.e.cfg.Key, f.PayeePhone))); !ok {
		w.Header().Set("Retry-After", httpserver.RetryAfterSeconds(retry))
		p.frontForm(w, r, s, f, http.StatusTooManyRequests, "too many transfer requests to this phone: try again later")
		return
	}
	req, err := p.e.Start(ctx, &TransferRequest{Customer: s.customer, Account: accts[i].Number, Amount: f.Amount, PayeeBank: f.PayeeBank,
		PayeeAccount: f.PayeeAccount, PayeePhone: f.PayeePhone, Purpose: f.Purpose, Terms: f.Terms, IdempotencyKey: "front:" + f.ID})
	if st, ok := connectors.AsStatus(err); ok {
		p.log.InfoContext(ctx, "twoway: front: request refused", "customer", s.customer, "front", f.ID, "code", st.SubCode)
		p.frontForm(w, r, s, f, http.StatusUnprocessableEntity, st.Message)
		return
	}
	if err != nil {
		p.internal(w, r, "start", err)
		return
	}
	if err := p.cfg.Front.Store.BindFront(ctx, f.ID, s.customer, req.ID); err != nil {
		if errors.Is(err, ErrConflict) {
			p.message(w, r, http.StatusConflict, "forbidden")
			return
		}
		p.internal(w, r, "front", err)
		return
	}
	p.log.InfoContext(ctx, "twoway: front: started", "customer", s.customer, "front", f.ID, "request", req.ID, "state", req.State)
	http.Redirect(w, r, p.cfg.Prefix+"/t/"+req.ID, http.StatusSeeOther)
}

// frontCancel: the remitter declines the requested transfer before it
// starts; the requester is answered abandoned.
func (p *page) frontCancel(w http.ResponseWriter, r *http.Request) {
	s := p.authed(w, r)
	if s == nil {
		return
	}
	if f := p.front(w, r, s); f != nil {
		p.log.InfoContext(r.Context(), "twoway: front: declined by the remitter", "customer", s.customer, "front", f.ID)
		p.frontEnd(w, r, s, f, nil, string(Abandoned))
	}
}

// answerShown reports whether a request bound to a requester's order is
// past the point where the requester is answered: the code texted, or the
// request ended.
func answerShown(req *Request) bool {
	return req.State != Checking && req.State != AwaitingConfirmation && req.State != Texting
}

// frontStatus is the hook of the status page: a request that a requester
// asked for, once the code is texted or it ended, shows the answer to post
// back. It reports whether it answered.
func (p *page) frontStatus(w http.ResponseWriter, r *http.Request, s *session, req *Request) bool {
	if p.cfg.Front == nil || !answerShown(req) {
		return false
	}
	f, err := p.cfg.Front.Store.FrontByTransfer(r.Context(), req.ID)
	if errors.Is(err, ErrNotFound) {
		return false
	}
	if err != nil {
		p.internal(w, r, "front", err)
		return true
	}
	p.frontEnd(w, r, s, f, req, PublicState(req.State))
	return true
}

// outcome is the answer to f: for its request req (nil: none started),
// or the state it ended in.
func (p *page) outcome(ctx context.Context, f *Front) (saml.Status, *ecml.Payload) {
	var req *Request
	if f.Transfer != "" {
		var err error
		if req, err = p.e.Lookup(ctx, "", f.Transfer); err != nil {
			req = nil
		}
	}
	state := f.AnswerState
	if req != nil {
		state = PublicState(req.State)
	} else if state == "" {
		state = string(Expired)
	}
	return answerStatus(req, state), frontPayload(f, req, state)
}

func answerStatus(req *Request, state string) saml.Status {
	switch {
	case state == string(Completed):
		return saml.Status{Code: saml.StatusSuccess}
	case !State(state).Ended():
		return saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending, Message: msgPending}
	}
	msg := "the transfer ended without moving money: " + state
	if req != nil && req.Reason != "" {
		msg += " (" + req.Reason + ")"
	}
	return saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeDeclined, Message: msg}
}

// frontPayload is an answer's payload, with the bank's reference of its
// request (BankReference).
func frontPayload(f *Front, req *Request, state string) *ecml.Payload {
	ref := ""
	if req != nil {
		ref = BankReference(req.ID)
	}
	return statePayload(f, state, ref)
}

// BankReference is the bank's reference of a request in an answer to
// twoway:request (Transaction/Code/@Approval, at most 12 characters,
// KECIS §14): "2W" and the first 40 bits of the request's random id, in
// upper-case hex, as the remitter's pages show it.
func BankReference(id string) string {
	if !validID(id) {
		return ""
	}
	return "2W" + strings.ToUpper(id[2:12])
}

// frontEnd answers f — signed once and kept, the same bytes every time —
// and shows the page that posts it to the requester.
func (p *page) frontEnd(w http.ResponseWriter, r *http.Request, s *session, f *Front, req *Request, state string) {
	ctx := r.Context()
	fs := p.cfg.Front.Store
	if len(f.Answer) == 0 {
		st := answerStatus(req, state)
		signed, dest, err := p.cfg.Front.KECIS.AnswerFront(ctx, &connectors.Request{ID: f.RequestID, Service: ServiceRequest, Issuer: f.Requester},
			&connectors.Response{Status: st, Payload: frontPayload(f, req, state)}, connectors.FrontAnswer{})
		if err != nil {
			p.internal(w, r, "answer", err)
			return
		}
		switch err := fs.SetFrontAnswer(ctx, f.ID, signed, dest, state); {
		case errors.Is(err, ErrConflict):
			if f, err = fs.Front(ctx, f.ID); err != nil {
				p.internal(w, r, "answer", err)
				return
			}
		case err != nil:
			p.internal(w, r, "answer", err)
			return
		default:
			f.Answer, f.Destination, f.AnswerState = signed, dest, state
			p.log.InfoContext(ctx, "twoway: front: answered", "requester", f.Requester, "front", f.ID, "state", state, "status", st.SubCode)
		}
	}
	d := &pageData{Name: s.name, CSRF: p.csrf(s), R: req, F: f, Shop: p.shop(ctx, f.Requester), Answer: base64.StdEncoding.EncodeToString(f.Answer),
		Destination: f.Destination, Relay: f.RelayState, FormOrigin: webpage.Origin(f.Destination), State: f.AnswerState}
	if req != nil && (req.State == Texting || req.State == AwaitingReply) {
		d.CanCancel = true
	}
	p.render(w, r, http.StatusOK, "answer", d)
}

// postOnce answers a request that never became a Front (refused, or a
// repeat of an answered order): signed for it, not kept.
func (p *page) postOnce(w http.ResponseWriter, r *http.Request, req *connectors.Request, relay string, st saml.Status, pl *ecml.Payload) {
	signed, dest, err := p.cfg.Front.KECIS.AnswerFront(r.Context(), req, &connectors.Response{Status: st, Payload: pl}, connectors.FrontAnswer{})
	if err != nil {
		p.log.WarnContext(r.Context(), "twoway: front: no answer", "requester", req.Merchant(), "error", errText(err))
		p.message(w, r, http.StatusBadRequest, "badrequest")
		return
	}
	p.render(w, r, http.StatusOK, "answer", &pageData{Answer: base64.StdEncoding.EncodeToString(signed), Destination: dest, Relay: relay,
		FormOrigin: webpage.Origin(dest), Shop: p.shop(r.Context(), req.Merchant()), Error: st.Message})
}
