package broken

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Amount authentication (KECIS §15.3) in memory: a test double of a PG's
// engine, not a reference (connectors/amountauth is). The verification
// approval is an approval of the provider's own card ledger — the
// provider stands for the card's issuer too — owned by the provider, so
// that no merchant reaches it through the card service.

// Amount-authentication service URIs (KECIS §15.3.1).
var (
	svcAAStart   = saml.ServiceURI("amountauth", "start")
	svcAAConfirm = saml.ServiceURI("amountauth", "confirm")
	svcAAStatus  = saml.ServiceURI("amountauth", "status")
)

// aaMethod is the method of the result a verified session embeds.
const aaMethod = "urn:kecis:authn:amount-auth"

// Session states (KECIS §15.3.1).
const (
	aaAwaiting = "awaiting-amount"
	aaApproved = "approved"
	aaDeclined = "declined"
	aaFailed   = "failed"
	aaExpired  = "expired"
	aaRefused  = "refused"
)

func isAmountAuth(service string) bool {
	g, _, _ := saml.SplitService(service)
	return g == "amountauth"
}

// AmountAuthConfig are the PG's amount-authentication options (KECIS
// §15.3.4), the same for every merchant. Zero fields take the defaults.
type AmountAuthConfig struct {
	// Attempts a session takes (default 3).
	Attempts int
	// Timeout ends a session not matched in time (default 5 minutes).
	Timeout time.Duration
	// Lowest and Highest bound the challenge, drawn from [Lowest,
	// min(purchase, Highest)) KRW (default 100 and 50,000); a purchase of
	// Lowest or less is refused.
	Lowest, Highest int64
	// ResultValidity is how long an authentication result is valid
	// (default 10 minutes).
	ResultValidity time.Duration
}

func (c *AmountAuthConfig) defaults() {
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.Lowest <= 0 {
		c.Lowest = 100
	}
	if c.Highest <= c.Lowest {
		c.Highest = 50_000
	}
	if c.ResultValidity <= 0 {
		c.ResultValidity = 10 * time.Minute
	}
}

// aaSession is one amount authentication (amounts in KRW).
type aaSession struct {
	id, merchant, order, pan    string
	amount, ceiling, challenge  int64
	verify                      string // the verification approval's number
	attempts                    int
	deadline                    time.Time
	state                       string
	purchase                    string // the purchase's approval number
	refusalCode, refusalMessage string
	result                      *etree.Element
}

// offeredToMerchants declares the services merchants (and the
// conformance tester) call (KECIS §13.2).
func offeredToMerchants(services ...string) []metadata.OfferedService {
	out := make([]metadata.OfferedService, len(services))
	for i, s := range services {
		out[i] = metadata.OfferedService{Service: s, Callers: []metadata.Role{metadata.RoleMerchant, metadata.RoleTester}}
	}
	return out
}

func aaRefusal(top, sub, msg string) (saml.Status, *ecml.Payload, []*etree.Element) {
	return saml.Status{Code: top, SubCode: sub, Message: msg}, nil, nil
}

// serveAA serves start, confirm and status (KECIS §15.3.1): a session is
// its merchant's, another merchant's reads as unknown (§13.3).
func (p *Provider) serveAA(req *saml.ServiceRequest) (saml.Status, *ecml.Payload, []*etree.Element) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := req.Payload
	if req.Service == svcAAStart {
		s, st := p.aaStart(req.Issuer, pl)
		if s == nil {
			return st, nil, nil
		}
		return p.aaAnswer(s, req.Service, "")
	}
	if pl == nil || pl.AmountAuth == nil || pl.AmountAuth.SessionID == "" {
		return aaRefusal(saml.StatusRequester, saml.CodeInvalidPayload, "name the session: kx:AmountAuth/@SessionID")
	}
	s := p.sessions[pl.AmountAuth.SessionID]
	if s == nil || s.merchant != req.Issuer {
		return aaRefusal(saml.StatusRequester, saml.CodeDeclined, "no such session")
	}
	p.aaExpire(s)
	msg := ""
	if req.Service == svcAAConfirm && s.state == aaAwaiting {
		typed, err := pl.AmountAuth.ChallengeMoney()
		if pl.AmountAuth.Challenge == "" || err != nil {
			return aaRefusal(saml.StatusRequester, saml.CodeInvalidPayload, "a confirm needs kx:AmountAuth/kx:Challenge, encrypted for the PG (value not shown)")
		}
		msg = p.aaAttempt(s, typed)
	}
	return p.aaAnswer(s, req.Service, msg)
}

// aaStart draws the challenge and makes the verification approval.
func (p *Provider) aaStart(merchant string, pl *ecml.Payload) (*aaSession, saml.Status) {
	refuse := func(top, sub, msg string) (*aaSession, saml.Status) {
		return nil, saml.Status{Code: top, SubCode: sub, Message: msg}
	}
	if pl == nil || pl.Ecom == nil || pl.Ecom.ConsumerOrderID == "" || pl.Ecom.Payment == nil || pl.Ecom.Payment.Card == nil || pl.Ecom.Transaction == nil {
		return refuse(saml.StatusRequester, saml.CodeInvalidPayload, "a start needs Ecom/@ConsumerOrderID, Payment/Card and Transaction/@Amount, @Currency")
	}
	e := pl.Ecom
	m, err := e.Transaction.Money()
	if err != nil || m.Currency != "KRW" || m.Minor <= 0 {
		return refuse(saml.StatusRequester, saml.CodeInvalidPayload, "positive KRW amounts only")
	}
	for _, s := range p.sessions {
		if s.merchant == merchant && s.order == e.ConsumerOrderID {
			return refuse(saml.StatusRequester, saml.CodeDuplicate, "the order already has an amount authentication")
		}
	}
	pan := e.Payment.Card.Number.Reveal()
	c := p.cards[pan]
	if c == nil || e.Payment.Card.ExpDate == nil || e.Payment.Card.ExpDate.Month != c.ExpMonth || e.Payment.Card.ExpDate.Year != c.ExpYear {
		return refuse(saml.StatusResponder, saml.CodeInvalidCard, "unknown card, or the expiry does not match")
	}
	o := p.cfg.AmountAuth
	if m.Minor <= o.Lowest {
		return refuse(saml.StatusResponder, saml.CodeDeclined, "below the minimum purchase for amount authentication")
	}
	ceiling := min(m.Minor, o.Highest)
	n, err := rand.Int(p.cfg.Rand, big.NewInt(ceiling-o.Lowest))
	if err != nil {
		return refuse(saml.StatusResponder, saml.CodeDeclined, "no challenge could be drawn")
	}
	var raw [16]byte
	if _, err := io.ReadFull(p.cfg.Rand, raw[:]); err != nil {
		return refuse(saml.StatusResponder, saml.CodeDeclined, "no session could be made")
	}
	s := &aaSession{id: base64.RawURLEncoding.EncodeToString(raw[:]), merchant: merchant, order: e.ConsumerOrderID, pan: pan,
		amount: m.Minor, ceiling: ceiling, challenge: o.Lowest + n.Int64(), state: aaAwaiting, deadline: p.cfg.Now().Add(o.Timeout)}
	p.sessions[s.id] = s
	// The verification approval (KECIS §15.2 approve-verification), in
	// the issuer's ledger: the provider's own.
	if s.challenge > c.available {
		s.state, s.refusalCode, s.refusalMessage = aaRefused, saml.CodeLimitExceeded, "over the card's limit"
		return s, saml.Status{}
	}
	a := &approval{number: p.approvalNumber(), order: "AA-" + s.id, merchant: p.EntityID, pan: pan, amount: s.challenge, state: "approved", verification: true}
	p.approvals[a.number] = a
	c.available -= a.amount
	s.verify = a.number
	return s, saml.Status{}
}

func (p *Provider) approvalNumber() string {
	for {
		n, _ := rand.Int(p.cfg.Rand, big.NewInt(1e8))
		if num := fmt.Sprintf("%08d", n); p.approvals[num] == nil {
			return num
		}
	}
}

// aaExpire ends a session past its deadline and voids its verification
// approval.
func (p *Provider) aaExpire(s *aaSession) {
	if s.state == aaAwaiting && !p.cfg.Now().Before(s.deadline) {
		s.state = aaExpired
		p.aaVoid(s)
	}
}

// aaAttempt takes one typed amount: a match voids the verification
// approval and approves the purchase with its signed result; a mismatch
// counts, and the last one fails the session and voids. It returns the
// status message of a mismatch, if not the usual one.
func (p *Provider) aaAttempt(s *aaSession, typed ecml.Money) string {
	if typed.Currency != "KRW" || typed.Minor != s.challenge {
		s.attempts++
		if s.attempts >= p.cfg.AmountAuth.Attempts {
			s.state = aaFailed
			p.aaVoid(s)
			return ""
		}
		if p.Flaw == EchoesChallenge {
			return fmt.Sprintf("the amount does not match: %d KRW was typed, %d KRW was approved", typed.Minor, s.challenge)
		}
		return ""
	}
	p.aaVoid(s)
	c := p.cards[s.pan]
	if s.amount > c.available {
		s.state, s.refusalCode, s.refusalMessage = aaDeclined, saml.CodeLimitExceeded, "over the card's limit"
		return ""
	}
	amount, err := ecml.FormatAmount(ecml.Money{Minor: s.amount, Currency: "KRW"})
	if err != nil {
		s.state, s.refusalCode, s.refusalMessage = aaDeclined, saml.CodeDeclined, "the purchase could not be approved"
		return ""
	}
	var id [16]byte
	_, _ = io.ReadFull(p.cfg.Rand, id[:])
	now := p.cfg.Now()
	r := &saml.AuthenticationResult{ID: "_aa" + hex.EncodeToString(id[:]), IssueInstant: now, Issuer: p.EntityID, Method: aaMethod, Factors: 1,
		Amount: amount, Currency: "KRW", Merchant: s.merchant, OrderID: s.order, CardRef: ecml.MaskPAN(s.pan),
		AuthnInstant: now, NotOnOrAfter: now.Add(p.cfg.AmountAuth.ResultValidity)}
	el, err := r.Sign(p.signer)
	if err != nil {
		s.state, s.refusalCode, s.refusalMessage = aaDeclined, saml.CodeDeclined, "the purchase could not be approved"
		return ""
	}
	a := &approval{number: p.approvalNumber(), order: s.order, merchant: s.merchant, pan: s.pan, amount: s.amount, state: "approved"}
	p.approvals[a.number] = a
	c.available -= a.amount
	s.state, s.purchase, s.result = aaApproved, a.number, el
	return ""
}

// aaVoid voids the session's verification approval (a settled one is
// refunded), unless the flaw is NeverVoids.
func (p *Provider) aaVoid(s *aaSession) {
	a := p.approvals[s.verify]
	if a == nil || p.Flaw == NeverVoids {
		return
	}
	switch a.state {
	case "approved":
		a.state = "cancelled"
	case "settled":
		a.state, a.refunded = "refunded", a.amount
	default:
		return
	}
	p.cards[a.pan].available += a.amount
}

// aaAnswer is the answer describing s (KECIS §15.3.1): status answers
// Success in every state; start and confirm as the state says.
func (p *Provider) aaAnswer(s *aaSession, service, msg string) (saml.Status, *ecml.Payload, []*etree.Element) {
	st := saml.Status{Code: saml.StatusSuccess}
	refuse := func(code, m string) {
		if msg != "" {
			m = msg
		}
		st = saml.Status{Code: saml.StatusResponder, SubCode: code, Message: m}
	}
	if service != svcAAStatus {
		switch s.state {
		case aaAwaiting:
			if service == svcAAConfirm {
				refuse(saml.CodeDeclined, fmt.Sprintf("the amount does not match (%d of %d attempts left)", p.cfg.AmountAuth.Attempts-s.attempts, p.cfg.AmountAuth.Attempts))
			}
		case aaFailed:
			refuse(saml.CodeAuthenticationRequired, "the attempt limit was reached")
		case aaExpired:
			refuse(saml.CodeExpired, "the session timed out")
		case aaDeclined, aaRefused:
			refuse(s.refusalCode, s.refusalMessage)
		}
	}
	t := &ecml.Transaction{Type: "credit", Data: &ecml.Data{Response: &ecml.Text{Value: s.state}}}
	_ = t.SetMoney(ecml.Money{Minor: s.amount, Currency: "KRW"})
	if s.purchase != "" {
		t.Code = &ecml.Code{Approval: s.purchase}
	}
	aa := &ecml.AmountAuth{SessionID: s.id}
	_ = aa.SetCeiling(ecml.Money{Minor: s.ceiling, Currency: "KRW"})
	payload := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: s.order, Transaction: t}, AmountAuth: aa}
	var results []*etree.Element
	if s.state == aaApproved && s.result != nil {
		results = []*etree.Element{s.result}
	}
	return st, payload, results
}

// serveAAHook is the amountauth test hook (docs/conformance.md): POST
// {"session_id": ID} answers the session's verification approval as the
// issuer holds it — {"state": approved | cancelled | refunded | none,
// "amount", "currency"}. It reveals the challenge: test mode only.
func (p *Provider) serveAAHook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SessionID string `json:"session_id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil || in.SessionID == "" {
		http.Error(w, `the body is {"session_id": "<id>"}`, http.StatusBadRequest)
		return
	}
	out := map[string]string{"state": "none"}
	p.mu.Lock()
	if s := p.sessions[in.SessionID]; s != nil {
		if a := p.approvals[s.verify]; a != nil {
			amount, _ := ecml.FormatAmount(ecml.Money{Minor: a.amount, Currency: "KRW"})
			out = map[string]string{"state": "approved", "amount": amount, "currency": "KRW"}
			switch a.state {
			case "cancelled", "refunded":
				out["state"] = a.state
			}
		}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// Challenges returns the challenge of every amount-authentication session
// so far, in ECML amount form: what a test of the suite checks no report
// shows.
func (p *Provider) Challenges() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.sessions {
		if v, err := ecml.FormatAmount(ecml.Money{Minor: s.challenge, Currency: "KRW"}); err == nil {
			out = append(out, v)
		}
	}
	return out
}
