package broken

import (
	"crypto/rand"
	"encoding/base32"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The bank kit's escrow (KECIS §15.6) and collect payment (KECIS §15.8
// transfer:collect), in memory: a test double, not the reference
// (connectors/escrow and its page are). The merchant opens over SOAP; the
// buyer pays on the bank's page — the reference posted to the escrow:pay
// endpoint, the login, an account chosen in a select `account`, a form to
// …/pay — which moves the amount from the buyer's account into the
// bank's holding balance; ship records the shipment; the buyer's
// confirmation (a form to …/confirm) releases the held amount to the
// merchant's settlement account; refund gives it back to the buyer.

// ReleasesWithoutConfirmation is the bank flaw of the escrow: its ship
// releases the held money to the settlement account at once and reports
// the escrow confirmed — the buyer never confirmed (KECIS §15.6).
const ReleasesWithoutConfirmation Flaw = "releases-without-confirmation"

// Escrow service URIs (KECIS §15.6, §15.8).
var (
	svcEscrowOpen   = saml.ServiceURI("escrow", "open")
	svcEscrowShip   = saml.ServiceURI("escrow", "ship")
	svcEscrowRefund = saml.ServiceURI("escrow", "refund")
	svcEscrowStatus = saml.ServiceURI("escrow", "status")
	svcEscrowPay    = saml.ServiceURI("escrow", "pay")
	svcCollect      = saml.ServiceURI("transfer", "collect")
)

// EscrowConfig makes a bank kit offer escrow and collect payments.
type EscrowConfig struct {
	// AutoConfirmAfter is the time from shipping to the automatic
	// confirmation's deadline (default 7 days; the kit has no sweep).
	AutoConfirmAfter time.Duration
}

// The escrow states (KECIS §15.6).
const (
	esAwaitingPayment = "awaiting-payment"
	esFunded          = "funded"
	esShipped         = "shipped"
	esConfirmed       = "confirmed"
	esRefunded        = "refunded"
	esCancelled       = "cancelled"
	esPaid            = "paid"
)

type escrowState struct {
	cfg     EscrowConfig
	pageURL string
	// held is the holding account's balance: the amounts of the escrows
	// funded or shipped.
	held     int64
	escrows  []*escrowTx
	sessions map[string]*Account // by cookie
}

type escrowTx struct {
	ref, owner, order string
	amount            int64
	// hold is false for a collect payment.
	hold              bool
	state             string
	settlement, buyer *Account
	carrier, tracking string
	confirmBy         time.Time
}

func newReference() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "ES" + base32.StdEncoding.EncodeToString(b)[:10]
}

// startEscrow declares the escrow services and serves the buyer's page.
func (p *Provider) startEscrow(mux *http.ServeMux) {
	b := p.bank
	cfg := *b.cfg.Escrow
	if cfg.AutoConfirmAfter <= 0 {
		cfg.AutoConfirmAfter = 7 * 24 * time.Hour
	}
	b.escrow = &escrowState{cfg: cfg, pageURL: strings.TrimSuffix(p.Endpoint, "/soap") + "/escrow", sessions: map[string]*Account{}}
	d := p.Descriptor
	for _, s := range []string{svcEscrowOpen, svcEscrowShip, svcEscrowRefund, svcEscrowStatus, svcCollect} {
		d.Services = append(d.Services, metadata.OfferedService{Service: s, Callers: []metadata.Role{metadata.RoleMerchant, metadata.RoleTester}, BankCodes: []string{b.cfg.Code}})
	}
	d.Endpoints = append(d.Endpoints, metadata.Endpoint{Service: svcEscrowPay, Binding: saml.BindingHTTPPOST, Location: b.escrow.pageURL})
	mux.HandleFunc("POST /kecis/escrow", p.esEntry)
	mux.HandleFunc("POST /kecis/escrow/login", p.esLogin)
	mux.HandleFunc("POST /kecis/escrow/e/{ref}/{step}", p.esStep)
}

// esFind is the caller's escrow named by reference or order (KECIS
// §13.3: another merchant's is no escrow), under p.mu.
func (e *escrowState) find(owner string, pl *ecml.Payload) *escrowTx {
	ref, order := "", pl.Ecom.ConsumerOrderID
	if t := pl.Ecom.Transaction; t != nil && t.Code != nil {
		ref = t.Code.Approval
	}
	if ref == "" && order == "" {
		return nil
	}
	for _, t := range e.escrows {
		if t.owner == owner && (ref == "" || t.ref == ref) && (order == "" || t.order == order) {
			return t
		}
	}
	return nil
}

func (t *escrowTx) payload() *ecml.Payload {
	tr := &ecml.Transaction{Code: &ecml.Code{Approval: t.ref}, Data: &ecml.Data{Response: &ecml.Text{Value: t.state}}}
	_ = tr.SetMoney(ecml.Money{Minor: t.amount, Currency: "KRW"})
	pl := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: t.order, Transaction: tr}}
	if t.hold {
		pl.Escrow = &ecml.Escrow{State: t.state, Carrier: t.carrier, Tracking: t.tracking}
		if !t.confirmBy.IsZero() {
			pl.Escrow.ConfirmBy = t.confirmBy.UTC().Format(time.RFC3339)
		}
	}
	return pl
}

// release moves t's held amount to the settlement account.
func (e *escrowState) release(t *escrowTx) {
	e.held -= t.amount
	t.settlement.Balance += t.amount
}

// serveEscrow answers the escrow services and transfer:collect, under
// p.mu (serveBanking holds it).
func (p *Provider) serveEscrow(req *saml.ServiceRequest) (saml.Status, *ecml.Payload) {
	b := p.bank
	e := b.escrow
	if e == nil {
		return refusal(saml.StatusRequester, saml.StatusRequestUnsupported, "not offered")
	}
	pl := req.Payload
	noSuch := func() (saml.Status, *ecml.Payload) {
		return refusal(saml.StatusRequester, saml.CodeDeclined, "no such escrow")
	}
	switch req.Service {
	case svcEscrowOpen, svcCollect:
		var settle *ecml.BankAccount
		for _, ba := range pl.BankAccounts {
			if ba.Role == "settlement" {
				settle = ba
			}
		}
		if req.IdempotencyKey == "" || pl.Ecom.ConsumerOrderID == "" || pl.Ecom.Transaction == nil || settle == nil {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "an idempotency key, the order, the amount and the settlement account are required")
		}
		m, err := pl.Ecom.Transaction.Money()
		if err != nil || m.Currency != "KRW" || m.Minor <= 0 {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "positive KRW amounts only")
		}
		d, _ := ecml.AccountDigits(settle.AccountNumber.Reveal())
		a := b.accounts[d]
		if a == nil || a.Closed || settle.BankCode != b.cfg.Code {
			return refusal(saml.StatusResponder, saml.CodeDeclined, "no such account")
		}
		for _, t := range e.escrows {
			if t.owner == req.Issuer && t.order == pl.Ecom.ConsumerOrderID {
				return refusal(saml.StatusRequester, saml.CodeDuplicate, "another escrow has this order")
			}
		}
		t := &escrowTx{ref: newReference(), owner: req.Issuer, order: pl.Ecom.ConsumerOrderID, amount: m.Minor,
			hold: req.Service == svcEscrowOpen, state: esAwaitingPayment, settlement: a}
		e.escrows = append(e.escrows, t)
		return saml.Status{Code: saml.StatusSuccess}, t.payload()
	case svcEscrowStatus:
		if t := e.find(req.Issuer, pl); t != nil {
			return saml.Status{Code: saml.StatusSuccess}, t.payload()
		}
		return noSuch()
	case svcEscrowShip:
		t := e.find(req.Issuer, pl)
		switch {
		case t == nil || !t.hold:
			return noSuch()
		case t.state != esFunded:
			return refusal(saml.StatusRequester, saml.CodePolicyViolation, "only a funded escrow ships")
		case pl.Escrow == nil || pl.Escrow.Carrier == "" || pl.Escrow.Tracking == "":
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "the carrier and the tracking number are required")
		}
		t.carrier, t.tracking = pl.Escrow.Carrier, pl.Escrow.Tracking
		t.state = esShipped
		t.confirmBy = p.cfg.Now().Add(e.cfg.AutoConfirmAfter)
		if p.Flaw == ReleasesWithoutConfirmation {
			// The flaw: the holder releases on the shipment, as if
			// the buyer had confirmed.
			e.release(t)
			t.state = esConfirmed
		}
		return saml.Status{Code: saml.StatusSuccess}, t.payload()
	case svcEscrowRefund:
		t := e.find(req.Issuer, pl)
		if t == nil {
			return noSuch()
		}
		switch t.state {
		case esAwaitingPayment:
			t.state = esCancelled
		case esFunded, esShipped:
			e.held -= t.amount
			t.buyer.Balance += t.amount
			t.state = esRefunded
		default:
			return refusal(saml.StatusRequester, saml.CodePolicyViolation, "the escrow is "+t.state+": nothing to refund")
		}
		return saml.Status{Code: saml.StatusSuccess}, t.payload()
	}
	return refusal(saml.StatusRequester, saml.StatusRequestUnsupported, "not offered")
}

// --- The buyer's page ---

var esPages = template.Must(template.New("").Parse(`
{{define "error"}}<!doctype html><html><body><h1>No such escrow</h1></body></html>{{end}}
{{define "login"}}<!doctype html><html><body><h1>Log in to pay</h1>
{{if .Wrong}}<p role="alert">The login or the password is wrong</p>{{end}}
<form method="post" action="{{.Base}}/login"><input type="hidden" name="reference" value="{{.Ref}}">
<input type="text" name="login"><input type="password" name="password"><button type="submit">Log in</button></form></body></html>{{end}}
{{define "escrow"}}<!doctype html><html><body><h1>{{.Shop}}</h1><p>Order {{.T.Order}}: {{.Amount}} KRW — {{.T.State}}</p>
{{if eq .T.State "awaiting-payment"}}<form method="post" action="{{.Base}}/e/{{.T.Ref}}/pay"><select name="account">
{{range .Accounts}}<option value="{{.ID}}">{{.Masked}}</option>{{end}}</select><button type="submit">Pay</button></form>{{end}}
{{if .CanConfirm}}<form method="post" action="{{.Base}}/e/{{.T.Ref}}/confirm"><button type="submit">I received the goods</button></form>{{end}}
</body></html>{{end}}
`))

type esAccountView struct{ ID, Masked string }

type esTxView struct{ Ref, Order, State string }

type esView struct {
	Base, Ref, Shop, Amount string
	Wrong, CanConfirm       bool
	T                       esTxView
	Accounts                []esAccountView
}

const esCookie = "broken_escrow"

// esSession is the logged-in customer of the request, under p.mu.
func (p *Provider) esSession(r *http.Request) *Account {
	ck, err := r.Cookie(esCookie)
	if err != nil {
		return nil
	}
	return p.bank.escrow.sessions[ck.Value]
}

// esShow renders the escrow ref for customer who, under p.mu: another
// buyer's paid escrow is no escrow.
func (p *Provider) esShow(w http.ResponseWriter, who *Account, ref string) {
	e := p.bank.escrow
	var t *escrowTx
	for _, x := range e.escrows {
		if x.ref == ref {
			t = x
		}
	}
	if t == nil || (t.buyer != nil && t.buyer.Login != who.Login) {
		esRender(w, http.StatusNotFound, "error", nil)
		return
	}
	v := esView{Base: e.pageURL, Shop: "Shop " + t.owner, Amount: ecml.Money{Minor: t.amount, Currency: "KRW"}.Grouped(),
		T: esTxView{Ref: t.ref, Order: t.order, State: t.state}, CanConfirm: t.hold && (t.state == esFunded || t.state == esShipped)}
	for d, a := range p.bank.accounts {
		if a.Login == who.Login && !a.Closed {
			v.Accounts = append(v.Accounts, esAccountView{ID: d, Masked: ecml.MaskAccount(a.Number)})
		}
	}
	esRender(w, http.StatusOK, "escrow", v)
}

func esRender(w http.ResponseWriter, st int, name string, v any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	_ = esPages.ExecuteTemplate(w, name, v)
}

// esEntry is the escrow:pay endpoint: the reference posted by the
// merchant's page.
func (p *Provider) esEntry(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		esRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	ref := r.PostForm.Get("reference")
	p.mu.Lock()
	defer p.mu.Unlock()
	if who := p.esSession(r); who != nil {
		p.esShow(w, who, ref)
		return
	}
	esRender(w, http.StatusOK, "login", esView{Base: p.bank.escrow.pageURL, Ref: ref})
}

func (p *Provider) esLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		esRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	ref := r.PostForm.Get("reference")
	p.mu.Lock()
	defer p.mu.Unlock()
	var who *Account
	for _, a := range p.bank.accounts {
		if a.Login != "" && a.Login == r.PostForm.Get("login") && a.Password == r.PostForm.Get("password") {
			who = a
		}
	}
	if who == nil {
		esRender(w, http.StatusOK, "login", esView{Base: p.bank.escrow.pageURL, Ref: ref, Wrong: true})
		return
	}
	ck := randToken(16)
	p.bank.escrow.sessions[ck] = who
	http.SetCookie(w, &http.Cookie{Name: esCookie, Value: ck, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	p.esShow(w, who, ref)
}

// esStep pays (from one of the customer's accounts) or confirms receipt.
func (p *Provider) esStep(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		esRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.bank.escrow
	who := p.esSession(r)
	var t *escrowTx
	for _, x := range e.escrows {
		if x.ref == r.PathValue("ref") {
			t = x
		}
	}
	if who == nil || t == nil || (t.buyer != nil && t.buyer.Login != who.Login) {
		esRender(w, http.StatusNotFound, "error", nil)
		return
	}
	switch r.PathValue("step") {
	case "pay":
		a := p.bank.accounts[r.PostForm.Get("account")]
		if t.state != esAwaitingPayment || a == nil || a.Login != who.Login || a.Closed || a.Balance < t.amount {
			esRender(w, http.StatusConflict, "error", nil)
			return
		}
		a.Balance -= t.amount
		t.buyer = a
		if t.hold {
			e.held += t.amount
			t.state = esFunded
		} else {
			t.settlement.Balance += t.amount
			t.state = esPaid
		}
	case "confirm":
		if !t.hold || (t.state != esFunded && t.state != esShipped) {
			esRender(w, http.StatusConflict, "error", nil)
			return
		}
		e.release(t)
		t.state = esConfirmed
	default:
		esRender(w, http.StatusNotFound, "error", nil)
		return
	}
	p.esShow(w, who, t.ref)
}
