package broken

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/pquerna/otp/totp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Cardholder authentication (KECIS §15.7) and virtual card numbers (KECIS
// §15.4) in memory: a test double of an issuer's page, not a reference
// (connectors/cardauth and connectors/vcn are). The page works with plain
// form posts: the card number and password, a TOTP code at or above the
// threshold, a cancel button; its answer is an HTTP-POST form to the
// requester's endpoint from its Peer (never from the request). The AAV is
// a random token the provider remembers with what it is bound to.

// The issuer flaws.
const (
	// AcceptsAAVForAnotherAmount approves with an authentication value
	// whatever the amount it was minted for (KECIS §15.7.3).
	AcceptsAAVForAnotherAmount Flaw = "accepts-aav-for-another-amount"
	// ReusesSingleUseNumber approves with a single-use virtual number as
	// often as it is sent (KECIS §15.4).
	ReusesSingleUseNumber Flaw = "reuses-single-use-number"
)

// CardAuthFlaws lists the flaws of an issuer's cardholder authentication:
// NewIssuerKit runs the issuer plan's cardauth and vcn modules against
// each.
var CardAuthFlaws = []Flaw{AcceptsAAVForAnotherAmount, ReusesSingleUseNumber}

// Service URIs and methods (KECIS §15.7).
var svcCardAuth = saml.ServiceURI("cardauth", "authenticate")

const (
	methodPassword = "urn:kecis:authn:card-password"
	methodTOTP     = "urn:kecis:authn:totp"
	// virtualBIN is the paper's credit BIN (KECIS §15.4).
	virtualBIN = "404143"
	// cardBIN is TestPAN's.
	cardBIN = "940000"
)

// CardAuthConfig makes the provider an issuer with a cardholder
// authentication page: every card of the provider has this password and
// TOTP seed; Threshold (KRW, default 100,000) asks for the code.
type CardAuthConfig struct {
	Password  string
	TOTPSeed  string
	Threshold int64
}

// caState is the page's memory.
type caState struct {
	cfg      CardAuthConfig
	pageURL  string
	front    *saml.Receiver
	txs      map[string]*caTx
	virtuals map[string]*virtualNumber
	aavs     map[string]*aavRecord
}

type caTx struct {
	id, cookie, requester, reqID, relay, dest string
	order, currency, acquirer                 string
	amount                                    int64
	virtual                                   bool
	pan                                       string
	attempts                                  int
	second, ended                             bool
}

type virtualNumber struct {
	real, merchant, currency string
	cap                      int64
	used                     bool
}

type aavRecord struct {
	pan, currency, merchant, order string
	amount                         int64
	expires                        time.Time
	used                           bool
}

// startCardAuth publishes the page and serves it on mux.
func (p *Provider) startCardAuth(mux *http.ServeMux, keys saml.StaticKeys, replay saml.ReplayCache, dec saml.Decrypter) {
	cfg := *p.cfg.CardAuth
	if cfg.Threshold <= 0 {
		cfg.Threshold = 100_000
	}
	ca := &caState{cfg: cfg, pageURL: strings.TrimSuffix(p.Endpoint, "/soap") + "/cardauth",
		txs: map[string]*caTx{}, virtuals: map[string]*virtualNumber{}, aavs: map[string]*aavRecord{}}
	ca.front = &saml.Receiver{Keys: keys, Replay: replay, Destinations: []string{ca.pageURL}, Decrypter: dec, ValidatePayload: true, Now: p.cfg.Now, Authorize: p.authorize}
	p.ca = ca
	d := p.Descriptor
	d.Endpoints = append(d.Endpoints, metadata.Endpoint{Service: svcCardAuth, Binding: saml.BindingHTTPPOST, Location: ca.pageURL})
	d.Services = append(d.Services, offeredToMerchants(svcCardAuth)...)
	for i := range d.Services {
		if d.Services[i].Service == svcApprove {
			d.Services[i].BINs = metadata.BINList{{From: cardBIN, To: cardBIN}, {From: virtualBIN, To: virtualBIN}}
		}
	}
	mux.HandleFunc("POST /kecis/cardauth", p.caStart)
	mux.HandleFunc("POST /kecis/cardauth/{step}", p.caStep)
}

var caPages = template.Must(template.New("").Parse(`
{{define "error"}}<!doctype html><html><body><h1>The request could not be taken</h1></body></html>{{end}}
{{define "card"}}<!doctype html><html><body><h1>Cardholder authentication</h1><p>{{.Amount}} KRW</p>
{{if .Wrong}}<p role="alert">The card number or the password is wrong — {{.Left}} left</p>{{end}}
<form method="post" action="{{.Base}}/card"><input type="hidden" name="tx" value="{{.TX}}">
<input type="text" name="CardNumber"><input type="password" name="Password"><button type="submit">Authenticate</button></form>
<form method="post" action="{{.Base}}/cancel"><input type="hidden" name="tx" value="{{.TX}}"><button type="submit">Cancel</button></form>
</body></html>{{end}}
{{define "code"}}<!doctype html><html><body><h1>Second factor</h1>
{{if .Wrong}}<p role="alert">The code is wrong — {{.Left}} left</p>{{end}}
<form method="post" action="{{.Base}}/totp"><input type="hidden" name="tx" value="{{.TX}}">
<input type="text" name="Code"><button type="submit">Confirm</button></form>
<form method="post" action="{{.Base}}/cancel"><input type="hidden" name="tx" value="{{.TX}}"><button type="submit">Cancel</button></form>
</body></html>{{end}}
`))

type caView struct {
	Base, TX string
	Amount   int64
	Wrong    bool
	Left     int
}

const caAttempts = 5

func (p *Provider) caRender(w http.ResponseWriter, st int, name string, v any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	_ = caPages.ExecuteTemplate(w, name, v)
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// caStart takes the merchant's SAMLRequest (KECIS §15.7.1): a request
// that fails the pipeline gets an error page, nothing to post.
func (p *Provider) caStart(w http.ResponseWriter, r *http.Request) {
	msg, relay, err := saml.ReadPost(r, "SAMLRequest", saml.Limits{})
	if err != nil {
		p.caRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	got, err := p.ca.front.ReceiveRequest(r.Context(), msg)
	if err != nil || got.Request.Service != svcCardAuth {
		p.caRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	req := got.Request
	var dest string
	for _, peer := range p.cfg.Peers {
		if peer.EntityID == req.Issuer {
			dest = peer.PostEndpoint
		}
	}
	if dest == "" {
		p.caRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	t := &caTx{id: randToken(16), cookie: randToken(16), requester: req.Issuer, reqID: req.ID, relay: relay, dest: dest}
	pl := req.Payload
	var refuse string
	switch {
	case req.IdempotencyKey == "" || pl == nil || pl.Ecom == nil || pl.Ecom.ConsumerOrderID == "" || pl.Ecom.Transaction == nil:
		refuse = "an idempotency key, Ecom/@ConsumerOrderID and Transaction are required"
	case pl.CardAuth == nil || p.encryptionCert(pl.CardAuth.Acquirer) == nil:
		refuse = "kx:CardAuth/@Acquirer must name an acquirer with an encryption key"
	default:
		m, err := pl.Ecom.Transaction.Money()
		if err != nil || m.Minor <= 0 || m.Currency != "KRW" {
			refuse = "positive KRW amounts only"
		}
		t.order, t.amount, t.currency, t.acquirer, t.virtual = pl.Ecom.ConsumerOrderID, m.Minor, m.Currency, pl.CardAuth.Acquirer, pl.CardAuth.WantsVirtual()
	}
	p.mu.Lock()
	p.ca.txs[t.id] = t
	p.mu.Unlock()
	if refuse != "" {
		p.caAnswer(w, t, saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: refuse}, nil, nil)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "broken_cardauth", Value: t.cookie, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	p.caRender(w, http.StatusOK, "card", caView{Base: p.ca.pageURL, TX: t.id, Amount: t.amount})
}

// encryptionCert is a peer's encryption certificate (nil: none).
func (p *Provider) encryptionCert(entityID string) *x509.Certificate {
	for _, peer := range p.cfg.Peers {
		if peer.EntityID == entityID && peer.Encryption != nil {
			return peer.Encryption
		}
	}
	return nil
}

// caStep serves the card, totp and cancel steps of a transaction bound to
// the browser's cookie.
func (p *Provider) caStep(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		p.caRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	p.mu.Lock()
	t := p.ca.txs[r.PostForm.Get("tx")]
	p.mu.Unlock()
	ck, err := r.Cookie("broken_cardauth")
	if t == nil || err != nil || ck.Value != t.cookie || t.ended {
		p.caRender(w, http.StatusNotFound, "error", nil)
		return
	}
	view := caView{Base: p.ca.pageURL, TX: t.id, Amount: t.amount}
	wrong := func(page string) {
		t.attempts++
		if t.attempts >= caAttempts {
			p.caAnswer(w, t, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeAuthenticationRequired, Message: "too many wrong entries"}, nil, nil)
			return
		}
		view.Wrong, view.Left = true, caAttempts-t.attempts
		p.caRender(w, http.StatusOK, page, view)
	}
	switch r.PathValue("step") {
	case "card":
		if t.second {
			p.caRender(w, http.StatusConflict, "error", nil)
			return
		}
		pan := strings.TrimSpace(r.PostForm.Get("CardNumber"))
		p.mu.Lock()
		_, known := p.cards[pan]
		p.mu.Unlock()
		if !known || r.PostForm.Get("Password") != p.ca.cfg.Password {
			wrong("card")
			return
		}
		t.pan = pan
		if t.amount >= p.ca.cfg.Threshold {
			t.second = true
			p.caRender(w, http.StatusOK, "code", view)
			return
		}
		p.caSucceed(w, t, methodPassword, 1)
	case "totp":
		if !t.second {
			p.caRender(w, http.StatusConflict, "error", nil)
			return
		}
		if !totp.Validate(strings.TrimSpace(r.PostForm.Get("Code")), p.ca.cfg.TOTPSeed) {
			wrong("code")
			return
		}
		p.caSucceed(w, t, methodTOTP, 2)
	case "cancel":
		p.caAnswer(w, t, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeAuthenticationRequired, Message: "the cardholder cancelled"}, nil, nil)
	default:
		p.caRender(w, http.StatusNotFound, "error", nil)
	}
}

// caSucceed mints the AAV (and the virtual number), signs the result and
// answers (KECIS §15.7.1).
func (p *Provider) caSucceed(w http.ResponseWriter, t *caTx, method string, factors int) {
	now := p.cfg.Now()
	p.mu.Lock()
	c := p.cards[t.pan]
	number := t.pan
	var vc *ecml.VirtualCard
	if t.virtual {
		for {
			n, _ := rand.Int(rand.Reader, big.NewInt(999_999))
			body := virtualBIN + seoulYearDay(now) + fmt.Sprintf("%06d", n.Int64()+1)
			d, _ := ecml.LuhnCheckDigit(body)
			if number = body + string(d); p.ca.virtuals[number] == nil {
				break
			}
		}
		p.ca.virtuals[number] = &virtualNumber{real: t.pan, merchant: t.requester, cap: t.amount, currency: t.currency}
		vc = &ecml.VirtualCard{Type: "credit", ExpDate: &ecml.Date{Month: c.ExpMonth, Year: c.ExpYear}}
	}
	aav := randToken(24)
	expires := now.Add(10 * time.Minute)
	p.ca.aavs[aav] = &aavRecord{pan: number, amount: t.amount, currency: t.currency, merchant: t.requester, order: t.order, expires: expires}
	p.mu.Unlock()
	amount, _ := ecml.FormatAmount(ecml.Money{Minor: t.amount, Currency: t.currency})
	var id [16]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	res := &saml.AuthenticationResult{ID: "_ca" + hex.EncodeToString(id[:]), IssueInstant: now, Issuer: p.EntityID, Method: method, Factors: factors,
		Amount: amount, Currency: t.currency, Merchant: t.requester, OrderID: t.order, CardRef: ecml.MaskPAN(number),
		AuthnInstant: now, NotOnOrAfter: expires}
	el, err := res.Sign(p.signer)
	if err != nil {
		p.caRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	pl := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: t.order,
		Payment:     &ecml.Payment{Card: &ecml.Card{Type: "VISA", Number: ecml.PAN(number), ExpDate: &ecml.Date{Month: c.ExpMonth, Year: c.ExpYear}}},
		Transaction: &ecml.Transaction{Amount: amount, Currency: t.currency, Data: &ecml.Data{AAV: &ecml.Text{Value: aav}}}}, VirtualCard: vc}
	p.caAnswer(w, t, saml.Status{Code: saml.StatusSuccess}, pl, el)
}

// caAnswer ends t: the signed answer, its card encrypted for the
// acquirer, as an auto-submitting form to the requester's endpoint.
func (p *Provider) caAnswer(w http.ResponseWriter, t *caTx, st saml.Status, pl *ecml.Payload, result *etree.Element) {
	t.ended = true
	b := &saml.Builder{Issuer: p.EntityID, Now: p.cfg.Now}
	resp, err := b.NewResponse(t.reqID, t.dest, st)
	if err != nil {
		p.caRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	resp.Payload = pl
	if result != nil {
		resp.AuthResults = []*etree.Element{result}
	}
	el, err := resp.Element()
	if err != nil {
		p.caRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	if pl != nil {
		ac := p.encryptionCert(t.acquirer)
		if ac == nil {
			p.caRender(w, http.StatusInternalServerError, "error", nil)
			return
		}
		if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: t.acquirer, Cert: ac}); err != nil {
			p.caRender(w, http.StatusInternalServerError, "error", nil)
			return
		}
	}
	signed, err := p.signer.SignToBytes(el)
	if err != nil {
		p.caRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	form, err := saml.PostForm(t.dest, "SAMLResponse", signed, t.relay, "")
	if err != nil {
		p.caRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(form)
}

// caCheck is the issuer's side of an approval (KECIS §15.7.3, §15.4),
// under p.mu: the AAV bound to the payment and unused, a virtual number's
// controls. It returns the real card number and what to record once the
// approval is made, or a refusal.
func (p *Provider) caCheck(merchant string, e *ecml.Ecom, m ecml.Money, pan string) (string, func(), *saml.Status) {
	refuse := func(sub, msg string) (string, func(), *saml.Status) {
		return "", nil, &saml.Status{Code: saml.StatusResponder, SubCode: sub, Message: msg}
	}
	var rec *aavRecord
	if d := e.Transaction.Data; d != nil && d.AAV != nil && d.AAV.Value != "" {
		rec = p.ca.aavs[d.AAV.Value]
		switch {
		case rec == nil || rec.pan != pan || rec.currency != m.Currency || rec.merchant != merchant || rec.order != e.ConsumerOrderID ||
			(rec.amount != m.Minor && p.Flaw != AcceptsAAVForAnotherAmount):
			return refuse(saml.CodeAuthenticationRequired, "authentication value does not match the payment")
		case rec.used:
			return refuse(saml.CodeAuthenticationRequired, "authentication value was already used")
		case !p.cfg.Now().Before(rec.expires):
			return refuse(saml.CodeAuthenticationRequired, "authentication value has expired")
		}
	}
	v := p.ca.virtuals[pan]
	real := pan
	if v != nil {
		switch {
		case v.used && p.Flaw != ReusesSingleUseNumber:
			return refuse(saml.CodeDeclined, "the virtual number was already used")
		case v.merchant != merchant:
			return refuse(saml.CodeDeclined, "the virtual number is for another merchant")
		case m.Currency != v.currency || m.Minor > v.cap:
			return refuse(saml.CodeLimitExceeded, "above the virtual number's cap")
		}
		real = v.real
	} else if strings.HasPrefix(pan, virtualBIN) {
		return refuse(saml.CodeInvalidCard, "unknown virtual number")
	}
	return real, func() {
		if rec != nil {
			rec.used = true
		}
		if v != nil {
			v.used = true
		}
	}, nil
}

// seoulYearDay is the day of the year in Asia/Seoul, three digits.
func seoulYearDay(t time.Time) string {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		loc = time.FixedZone("KST", 9*3600)
	}
	return fmt.Sprintf("%03d", t.In(loc).YearDay())
}
