package broken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"unicode"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// A bank (KECIS §15.8 transfer, §15.9 account, §15.5 twoway) and a
// telecom (KECIS §15.10 phone) in memory: test doubles, not references
// (examples/bank, examples/telecom and connectors/twoway are). The bank's
// customers, accounts and texts live in maps; its 2-WAY page takes the
// requester's SAMLRequest, a login and a confirmation in plain form posts,
// texts the payee a code (read and answered through the sms hooks) and
// posts a Pending answer back. The telecom answers holder checks from a
// table of subscribers.

// The bank flaws.
const (
	// ExecutesBeforeConfirmation moves a 2-WAY transfer's money as soon as
	// the payee is texted, before the payee replies (KECIS §15.5).
	ExecutesBeforeConfirmation Flaw = "executes-before-confirmation"
	// CodeNotBoundToAmount derives a 2-WAY code from the payee alone — no
	// nonce, no amount — and takes a reply for the newest request that
	// code fits (KECIS §15.5.2).
	CodeNotBoundToAmount Flaw = "code-not-bound-to-amount"
	// RevealsHolderToNonBank answers account holder inquiries whoever asks
	// (KECIS §15.9): a merchant learns whose account a number is.
	RevealsHolderToNonBank Flaw = "reveals-holder-to-non-bank"
)

// BankFlaws lists the flaws of a bank: NewBankKit runs the bank plan's
// transfer, account, twoway and escrow modules against each.
var BankFlaws = []Flaw{ExecutesBeforeConfirmation, CodeNotBoundToAmount, RevealsHolderToNonBank, ReleasesWithoutConfirmation}

// Service URIs of banks and telecoms (KECIS §15.5, §15.8–§15.10).
var (
	svcCredit        = saml.ServiceURI("transfer", "credit")
	svcTransferInq   = saml.ServiceURI("transfer", "inquire")
	svcHolderInquiry = saml.ServiceURI("account", "holder-inquiry")
	svcHolderCheck   = saml.ServiceURI("phone", "holder-check")
	svcTwoWayRequest = saml.ServiceURI("twoway", "request")
	svcTwoWayStatus  = saml.ServiceURI("twoway", "status")
)

// Account is an account of a bank kit.
type Account struct {
	Number, Holder, Phone string
	Balance               int64
	Closed                bool
	// Login and Password, when set, let the customer log in on the 2-WAY
	// page (the remitter).
	Login, Password string
}

// BankConfig makes the provider a bank.
type BankConfig struct {
	// Code is the bank's 3-digit code.
	Code     string
	Accounts []Account
	// Limit is the per-transfer limit (KRW; default 5,000,000).
	Limit int64
	// Escrow, when set, makes the bank offer escrow and collect payments
	// (KECIS §15.6, §15.8) with a buyer's page; nil: it declares none.
	Escrow *EscrowConfig
}

// TelecomConfig makes the provider a telecom: its subscribers by number.
type TelecomConfig struct {
	Subscribers []Subscriber
}

// Subscriber is a telecom's line.
type Subscriber struct {
	Number, Name string
	Suspended    bool
}

type bankState struct {
	cfg       BankConfig
	pageURL   string
	front     *saml.Receiver
	codeKey   []byte
	accounts  map[string]*Account // by digits
	transfers map[string]*bankTransfer
	twoways   []*twTx
	sms       map[string][]SMS // by phone digits
	seq       int
	escrow    *escrowState
}

type bankTransfer struct {
	content string
	ref     string
	order   string
	amount  int64
}

type twTx struct {
	id, cookie, requester, reqID, relay, dest, order string
	amount                                           int64
	payee                                            *Account
	phone                                            string
	remitter                                         *Account
	state, ref, code                                 string
	executed                                         bool
}

// SMS is a text a phone received.
type SMS struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// bankSender is the number the bank texts from.
const bankSender = "15880000"

func phoneDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	if strings.HasPrefix(d, "82") && len(d) > 10 {
		d = "0" + d[2:]
	}
	return d
}

func (p *Provider) startBank(mux, hooks *http.ServeMux, keys saml.StaticKeys, replay saml.ReplayCache, dec saml.Decrypter) {
	cfg := *p.cfg.Bank
	if cfg.Limit <= 0 {
		cfg.Limit = 5_000_000
	}
	b := &bankState{cfg: cfg, pageURL: strings.TrimSuffix(p.Endpoint, "/soap") + "/twoway", accounts: map[string]*Account{},
		transfers: map[string]*bankTransfer{}, sms: map[string][]SMS{}, codeKey: make([]byte, 32)}
	_, _ = rand.Read(b.codeKey)
	for i := range cfg.Accounts {
		a := cfg.Accounts[i]
		d, _ := ecml.AccountDigits(a.Number)
		b.accounts[d] = &a
	}
	b.front = &saml.Receiver{Keys: keys, Replay: replay, Destinations: []string{b.pageURL}, Decrypter: dec, ValidatePayload: true, Now: p.cfg.Now, Authorize: p.authorize}
	p.bank = b
	d := p.Descriptor
	d.Roles = []metadata.Role{metadata.RoleBank}
	d.DisplayName = "Broken bank: " + string(p.Flaw)
	d.Endpoints = append(d.Endpoints, metadata.Endpoint{Service: svcTwoWayRequest, Binding: saml.BindingHTTPPOST, Location: b.pageURL})
	banks := func(ss ...string) []metadata.OfferedService {
		var out []metadata.OfferedService
		for _, s := range ss {
			out = append(out, metadata.OfferedService{Service: s, Callers: []metadata.Role{metadata.RoleBank, metadata.RoleTester}, BankCodes: []string{cfg.Code}})
		}
		return out
	}
	d.Services = banks(svcCredit, svcTransferInq, svcHolderInquiry)
	for _, s := range []string{svcTwoWayRequest, svcTwoWayStatus} {
		d.Services = append(d.Services, metadata.OfferedService{Service: s, Callers: []metadata.Role{metadata.RoleMerchant, metadata.RoleBank, metadata.RoleTester}, BankCodes: []string{cfg.Code}})
	}
	mux.HandleFunc("POST /kecis/twoway", p.twStart)
	mux.HandleFunc("POST /kecis/twoway/login", p.twLogin)
	mux.HandleFunc("POST /kecis/twoway/t/{tx}/{step}", p.twStep)
	if cfg.Escrow != nil {
		p.startEscrow(mux)
	}
	hooks.HandleFunc("POST /sms", p.smsHook)
	hooks.HandleFunc("POST /sms/reply", p.smsReplyHook)
	hooks.HandleFunc("POST /balance", p.balanceHook)
}

func (p *Provider) startTelecom() {
	d := p.Descriptor
	d.Roles = []metadata.Role{metadata.RoleTelecom}
	d.DisplayName = "Broken telecom: " + string(p.Flaw)
	d.Services = []metadata.OfferedService{{Service: svcHolderCheck, Callers: []metadata.Role{metadata.RoleBank, metadata.RoleTester}}}
}

// isBanking reports whether service is a bank's or a telecom's.
func isBanking(service string) bool {
	g, _, _ := saml.SplitService(service)
	return g == "transfer" || g == "account" || g == "phone" || g == "twoway" || g == "escrow"
}

// callerRoles are the roles of a peer.
func (p *Provider) callerRoles(id string) []metadata.Role {
	for _, peer := range p.cfg.Peers {
		if peer.EntityID == id {
			return peer.Roles
		}
	}
	return nil
}

// bankCaller is the provider's own re-check (defence in depth, KECIS
// §15.9, §15.10): a bank, or the registered tester in test mode.
func (p *Provider) bankCaller(id string) bool {
	for _, r := range p.callerRoles(id) {
		if r == metadata.RoleBank || r == metadata.RoleTester {
			return true
		}
	}
	return false
}

func (p *Provider) serveBanking(req *saml.ServiceRequest) (saml.Status, *ecml.Payload) {
	pl := req.Payload
	if pl == nil || pl.Ecom == nil {
		return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "an Ecom payload is required")
	}
	if req.Service == svcHolderCheck {
		return p.holderCheck(req)
	}
	if p.bank == nil {
		return refusal(saml.StatusRequester, saml.StatusRequestUnsupported, "not offered")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bank
	e := pl.Ecom
	payee := func() *ecml.BankAccount {
		for _, ba := range pl.BankAccounts {
			if ba.Role == "payee" {
				return ba
			}
		}
		return nil
	}
	noAccount := func() (saml.Status, *ecml.Payload) {
		return refusal(saml.StatusResponder, saml.CodeDeclined, "no such account")
	}
	find := func(ba *ecml.BankAccount) *Account {
		d, ok := ecml.AccountDigits(ba.AccountNumber.Reveal())
		a := b.accounts[d]
		if !ok || ba.BankCode != b.cfg.Code || a == nil || a.Closed {
			return nil
		}
		return a
	}
	switch req.Service {
	case svcEscrowOpen, svcEscrowShip, svcEscrowRefund, svcEscrowStatus, svcCollect:
		return p.serveEscrow(req)
	case svcHolderInquiry:
		if !p.bankCaller(req.Issuer) && p.Flaw != RevealsHolderToNonBank {
			return refusal(saml.StatusRequester, saml.StatusRequestDenied, "banks only")
		}
		ba := payee()
		if ba == nil {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "kx:BankAccount Role=\"payee\" is required")
		}
		a := find(ba)
		if a == nil {
			return noAccount()
		}
		return saml.Status{Code: saml.StatusSuccess}, &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion},
			BankAccounts: []*ecml.BankAccount{{BankCode: b.cfg.Code, Role: "payee", Holder: a.Holder}}}
	case svcCredit:
		if !p.bankCaller(req.Issuer) {
			return refusal(saml.StatusRequester, saml.StatusRequestDenied, "banks only")
		}
		ba := payee()
		if ba == nil || e.ConsumerOrderID == "" || e.Transaction == nil {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "an order, an amount and the payee's account are required")
		}
		m, err := e.Transaction.Money()
		if err != nil || m.Currency != "KRW" || m.Minor <= 0 {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "positive KRW amounts only")
		}
		d, _ := ecml.AccountDigits(ba.AccountNumber.Reveal())
		content := fmt.Sprintf("%s|%s|%d", ba.BankCode, d, m.Minor)
		key := req.Issuer + "|" + e.ConsumerOrderID
		if t := b.transfers[key]; t != nil {
			if t.content != content {
				return refusal(saml.StatusRequester, saml.CodeDuplicate, "another transfer has this reference")
			}
			return saml.Status{Code: saml.StatusSuccess}, t.payload()
		}
		a := find(ba)
		if a == nil {
			return noAccount()
		}
		if m.Minor > b.cfg.Limit {
			return refusal(saml.StatusResponder, saml.CodeLimitExceeded, "above the per-transfer limit")
		}
		a.Balance += m.Minor
		b.seq++
		t := &bankTransfer{content: content, ref: fmt.Sprintf("CR%08d", b.seq), order: e.ConsumerOrderID, amount: m.Minor}
		b.transfers[key] = t
		return saml.Status{Code: saml.StatusSuccess}, t.payload()
	case svcTransferInq:
		if t := b.transfers[req.Issuer+"|"+e.ConsumerOrderID]; t != nil {
			return saml.Status{Code: saml.StatusSuccess}, t.payload()
		}
		return refusal(saml.StatusRequester, saml.CodeDeclined, "no such transfer")
	case svcTwoWayStatus:
		for _, t := range b.twoways {
			if t.requester == req.Issuer && t.order == e.ConsumerOrderID {
				return saml.Status{Code: saml.StatusSuccess}, t.payload()
			}
		}
		return refusal(saml.StatusRequester, saml.CodeDeclined, "no such transfer")
	}
	return refusal(saml.StatusRequester, saml.StatusRequestUnsupported, "not offered")
}

func (t *bankTransfer) payload() *ecml.Payload {
	tr := &ecml.Transaction{Code: &ecml.Code{Approval: t.ref}, Data: &ecml.Data{Response: &ecml.Text{Value: "credited"}}}
	_ = tr.SetMoney(ecml.Money{Minor: t.amount, Currency: "KRW"})
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: t.order, Transaction: tr}}
}

func (t *twTx) payload() *ecml.Payload {
	tr := &ecml.Transaction{Data: &ecml.Data{Response: &ecml.Text{Value: t.state}}}
	if t.ref != "" {
		tr.Code = &ecml.Code{Approval: t.ref}
	}
	_ = tr.SetMoney(ecml.Money{Minor: t.amount, Currency: "KRW"})
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: t.order, Transaction: tr}}
}

// normName is the carrier's normalisation (KECIS §15.10), enough for a
// test double: no white space, upper case.
func normName(s string) []rune {
	var out []rune
	for _, r := range strings.ToUpper(s) {
		if !unicode.IsSpace(r) {
			out = append(out, r)
		}
	}
	return out
}

// oneEdit reports whether a and b differ by one replaced, added or left
// out rune.
func oneEdit(a, b []rune) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 || len(a) < 2 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i < len(a) && string(a[i+1:]) == string(b[i+1:])
	}
	return string(a[i:]) == string(b[i+1:])
}

func (p *Provider) holderCheck(req *saml.ServiceRequest) (saml.Status, *ecml.Payload) {
	if !p.bankCaller(req.Issuer) {
		return refusal(saml.StatusRequester, saml.StatusRequestDenied, "banks only")
	}
	e := req.Payload.Ecom
	if e.BillTo == nil || e.BillTo.Telecom == nil || e.BillTo.Telecom.Phone == nil || e.BillTo.Postal == nil || e.BillTo.Postal.Name == nil {
		return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "the number and the name are required")
	}
	n := e.BillTo.Postal.Name
	words := strings.Fields(strings.Join([]string{n.Last, n.First, n.Middle}, " "))
	num := phoneDigits(e.BillTo.Telecom.Phone.Number)
	outcome := "not-possible"
	for _, s := range p.cfg.Telecom.Subscribers {
		if phoneDigits(s.Number) != num || s.Suspended {
			continue
		}
		got, want := normName(strings.Join(words, "")), normName(s.Name)
		swapped := ""
		if len(words) == 2 {
			swapped = words[1] + words[0]
		}
		switch {
		case string(got) == string(want):
			outcome = "match"
		case oneEdit(got, want) || (swapped != "" && string(normName(swapped)) == string(want)):
			outcome = "close-match"
		default:
			outcome = "no-match"
		}
	}
	return saml.Status{Code: saml.StatusSuccess}, &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion,
		Transaction: &ecml.Transaction{Data: &ecml.Data{Response: &ecml.Text{Value: outcome}}}}}
}

// --- The 2-WAY page (KECIS §15.5.1) ---

var twPages = template.Must(template.New("").Parse(`
{{define "error"}}<!doctype html><html><body><h1>The request could not be taken</h1></body></html>{{end}}
{{define "login"}}<!doctype html><html><body><h1>Log in to send a 2-WAY transfer</h1>
{{if .Wrong}}<p role="alert">The login or the password is wrong</p>{{end}}
<form method="post" action="{{.Base}}/login"><input type="hidden" name="tx" value="{{.TX}}">
<input type="text" name="login"><input type="password" name="password"><button type="submit">Log in</button></form></body></html>{{end}}
{{define "confirm"}}<!doctype html><html><body><h1>Confirm the transfer</h1><p>{{.Amount}} KRW to {{.Holder}}</p>
<form method="post" action="{{.Base}}/t/{{.TX}}/confirm"><button type="submit">Confirm</button></form>
<form method="post" action="{{.Base}}/t/{{.TX}}/cancel"><button type="submit">Cancel</button></form></body></html>{{end}}
`))

type twView struct {
	Base, TX, Holder string
	Amount           int64
	Wrong            bool
}

func (p *Provider) twRender(w http.ResponseWriter, st int, name string, v any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	_ = twPages.ExecuteTemplate(w, name, v)
}

func (p *Provider) twStart(w http.ResponseWriter, r *http.Request) {
	msg, relay, err := saml.ReadPost(r, "SAMLRequest", saml.Limits{})
	if err != nil {
		p.twRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	got, err := p.bank.front.ReceiveRequest(r.Context(), msg)
	if err != nil || got.Request.Service != svcTwoWayRequest {
		p.twRender(w, http.StatusBadRequest, "error", nil)
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
		p.twRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	t := &twTx{id: randToken(16), cookie: randToken(16), requester: req.Issuer, reqID: req.ID, relay: relay, dest: dest, state: "checking"}
	pl := req.Payload
	refuse := ""
	var ba *ecml.BankAccount
	if pl != nil {
		for _, x := range pl.BankAccounts {
			if x.Role == "payee" {
				ba = x
			}
		}
	}
	switch {
	case req.IdempotencyKey == "" || pl == nil || pl.Ecom == nil || pl.Ecom.ConsumerOrderID == "" || pl.Ecom.Transaction == nil || ba == nil ||
		pl.Ecom.BillTo == nil || pl.Ecom.BillTo.Telecom == nil || pl.Ecom.BillTo.Telecom.Phone == nil:
		refuse = "an idempotency key, the order, the amount, the payee's account and phone are required"
	default:
		m, err := pl.Ecom.Transaction.Money()
		if err != nil || m.Minor <= 0 || m.Currency != "KRW" {
			refuse = "positive KRW amounts only"
		}
		t.order, t.amount, t.phone = pl.Ecom.ConsumerOrderID, m.Minor, phoneDigits(pl.Ecom.BillTo.Telecom.Phone.Number)
		d, _ := ecml.AccountDigits(ba.AccountNumber.Reveal())
		p.mu.Lock()
		if a := p.bank.accounts[d]; a != nil && !a.Closed && ba.BankCode == p.bank.cfg.Code {
			t.payee = a
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.bank.twoways = append(p.bank.twoways, t)
	p.mu.Unlock()
	if refuse != "" {
		t.state = "refused"
		p.twAnswer(w, t, saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: refuse})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "broken_twoway", Value: t.cookie, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	p.twRender(w, http.StatusOK, "login", twView{Base: p.bank.pageURL, TX: t.id})
}

// twTx returns the transaction the form names, bound to the browser's
// cookie, under p.mu.
func (p *Provider) twFind(r *http.Request, id string) *twTx {
	ck, err := r.Cookie("broken_twoway")
	if err != nil {
		return nil
	}
	for _, t := range p.bank.twoways {
		if t.id == id && t.cookie == ck.Value {
			return t
		}
	}
	return nil
}

func (p *Provider) twLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		p.twRender(w, http.StatusBadRequest, "error", nil)
		return
	}
	p.mu.Lock()
	t := p.twFind(r, r.PostForm.Get("tx"))
	var who *Account
	for _, a := range p.bank.accounts {
		if a.Login != "" && a.Login == r.PostForm.Get("login") && a.Password == r.PostForm.Get("password") {
			who = a
		}
	}
	if t != nil && who != nil && t.state == "checking" {
		t.remitter = who
		t.state = "awaiting-confirmation"
	}
	p.mu.Unlock()
	switch {
	case t == nil:
		p.twRender(w, http.StatusNotFound, "error", nil)
	case who == nil:
		p.twRender(w, http.StatusOK, "login", twView{Base: p.bank.pageURL, TX: t.id, Wrong: true})
	case t.payee == nil:
		t.state = "refused"
		p.twAnswer(w, t, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeDeclined, Message: "no such account"})
	default:
		p.twRender(w, http.StatusOK, "confirm", twView{Base: p.bank.pageURL, TX: t.id, Holder: t.payee.Holder, Amount: t.amount})
	}
}

// twCode is the code texted to the payee (KECIS §15.5.2): 6 digits of a
// MAC over a nonce and what the transfer is — or, with
// CodeNotBoundToAmount, over the payee alone.
func (b *bankState) twCode(t *twTx, flaw Flaw) string {
	m := hmac.New(sha256.New, b.codeKey)
	if flaw == CodeNotBoundToAmount {
		fmt.Fprintf(m, "%s|%s", t.payee.Number, t.phone)
	} else {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		fmt.Fprintf(m, "%x|%s|%s|%s|%d|%s", nonce, t.remitter.Number, b.cfg.Code, t.payee.Number, t.amount, ecml.PurposePhishingPrevention)
	}
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(m.Sum(nil)[:8])%1_000_000)
}

// twExecute moves t's money once, under p.mu.
func (b *bankState) twExecute(t *twTx) {
	if t.executed {
		return
	}
	t.executed = true
	t.remitter.Balance -= t.amount
	t.payee.Balance += t.amount
	b.seq++
	t.ref = fmt.Sprintf("TW%08d", b.seq)
}

func (b *bankState) text(phone, msg string) {
	d := phoneDigits(phone)
	b.sms[d] = append(b.sms[d], SMS{From: bankSender, Text: msg})
}

func (p *Provider) twStep(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	t := p.twFind(r, r.PathValue("tx"))
	if t == nil || t.state != "awaiting-confirmation" {
		p.mu.Unlock()
		p.twRender(w, http.StatusNotFound, "error", nil)
		return
	}
	b := p.bank
	var st saml.Status
	switch r.PathValue("step") {
	case "confirm":
		t.code = b.twCode(t, p.Flaw)
		t.state = "awaiting-reply"
		b.text(t.phone, fmt.Sprintf("[Broken bank] %s sends you %s KRW. If it is yours, reply with the code %s within 10 minutes. Receiving fraudulent money is a crime.",
			t.remitter.Holder, ecml.Money{Minor: t.amount, Currency: "KRW"}.Grouped(), t.code))
		if p.Flaw == ExecutesBeforeConfirmation {
			b.twExecute(t)
		}
		st = saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending, Message: "the payee has been texted"}
	case "cancel":
		t.state = "cancelled"
		st = saml.Status{Code: saml.StatusSuccess}
	default:
		p.mu.Unlock()
		p.twRender(w, http.StatusNotFound, "error", nil)
		return
	}
	p.mu.Unlock()
	p.twAnswer(w, t, st)
}

// twAnswer posts the signed answer to the requester's endpoint from its
// metadata (KECIS §15.5.1).
func (p *Provider) twAnswer(w http.ResponseWriter, t *twTx, st saml.Status) {
	bld := &saml.Builder{Issuer: p.EntityID, Now: p.cfg.Now}
	resp, err := bld.NewResponse(t.reqID, t.dest, st)
	if err != nil {
		p.twRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	p.mu.Lock()
	if t.order != "" {
		resp.Payload = t.payload()
	}
	p.mu.Unlock()
	el, err := resp.Element()
	if err != nil {
		p.twRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	signed, err := p.signer.SignToBytes(el)
	if err != nil {
		p.twRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	form, err := saml.PostForm(t.dest, "SAMLResponse", signed, t.relay, "")
	if err != nil {
		p.twRender(w, http.StatusInternalServerError, "error", nil)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(form)
}

// --- Test hooks ---

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(v); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return false
	}
	return true
}

// smsHook: POST {"phone": N} answers {"messages": [{"from", "text"}]}, the
// texts the phone received, oldest first.
func (p *Provider) smsHook(w http.ResponseWriter, r *http.Request) {
	var v struct {
		Phone string `json:"phone"`
	}
	if !readJSON(w, r, &v) {
		return
	}
	p.mu.Lock()
	msgs := append([]SMS{}, p.bank.sms[phoneDigits(v.Phone)]...)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": msgs})
}

// smsReplyHook: POST {"from": N, "text": T} is a reply from phone N to the
// bank's texts (KECIS §15.5.2: it counts only from the payee's number).
func (p *Provider) smsReplyHook(w http.ResponseWriter, r *http.Request) {
	var v struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	if !readJSON(w, r, &v) {
		return
	}
	from, code := phoneDigits(v.From), strings.TrimSpace(v.Text)
	p.mu.Lock()
	b := p.bank
	tws := b.twoways
	for i := len(tws) - 1; i >= 0; i-- {
		t := tws[i]
		if t.state != "awaiting-reply" || t.phone != from || !hmac.Equal([]byte(t.code), []byte(code)) {
			continue
		}
		b.twExecute(t)
		t.state = "completed"
		b.text(t.remitter.Phone, fmt.Sprintf("[Broken bank] your 2-WAY transfer of %s KRW was confirmed and sent.", ecml.Money{Minor: t.amount, Currency: "KRW"}.Grouped()))
		break
	}
	p.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// balanceHook: POST {"bank_code", "account"} answers {"balance",
// "currency"}.
func (p *Provider) balanceHook(w http.ResponseWriter, r *http.Request) {
	var v struct {
		BankCode string `json:"bank_code"`
		Account  string `json:"account"`
	}
	if !readJSON(w, r, &v) {
		return
	}
	d, _ := ecml.AccountDigits(v.Account)
	p.mu.Lock()
	a := p.bank.accounts[d]
	var bal int64
	if a != nil {
		bal = a.Balance
	}
	p.mu.Unlock()
	if a == nil || v.BankCode != p.bank.cfg.Code {
		http.Error(w, "no such account", http.StatusNotFound)
		return
	}
	s, _ := ecml.FormatAmount(ecml.Money{Minor: bal, Currency: "KRW"})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"balance": s, "currency": "KRW"})
}
