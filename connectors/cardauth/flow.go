package cardauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Public status messages of refusals (KECIS §15.7.1): they say which,
// never a secret.
const (
	msgWrong     = "the card number or the password is wrong too many times, or the card's authentication is locked"
	msgSecond    = "the second factor failed too many times"
	msgLocked    = "the card's authentication is locked"
	msgCancelled = "the cardholder cancelled"
	msgExpired   = "the authentication timed out"
	msgNoFactor  = "the card has no second factor enrolled for this amount"
	msgLimited   = "too many authentications: try again later"
	msgNotOurs   = "the card company does not authenticate this card"
)

func status(code, sub, msg string) saml.Status {
	return saml.Status{Code: code, SubCode: sub, Message: msg}
}

func authFailed(msg string) saml.Status {
	return status(saml.StatusResponder, saml.CodeAuthenticationRequired, msg)
}

// newID is 128 random bits, base64url.
func (e *Engine) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return "", fmt.Errorf("cardauth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// bindingHash is what the row keeps of the browser's cookie.
func bindingHash(cookie string) []byte {
	h := sha256.Sum256([]byte("kecis-cardauth-binding:" + cookie))
	return h[:]
}

// cardKey is the per-card rate-limit key: a keyed hash of the number.
func (e *Engine) cardKey(pan ecml.PAN) string {
	m := hmac.New(sha256.New, e.cfg.Key)
	m.Write([]byte("kecis-cardauth-card:" + pan.Reveal()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// request is what the page takes from a verified request's payload.
type request struct {
	OrderID, Currency, Shop, Acquirer string
	Amount                            int64
	WantVirtual, MultiUse, Lock       bool
	NotAfter                          time.Time
}

// readRequest checks the payload of a verified request (KECIS §15.7.1).
func (e *Engine) readRequest(ctx context.Context, req *connectors.Request) (*request, error) {
	p := req.Payload
	if req.IdempotencyKey == "" {
		return nil, errors.New("the request carries no idempotency key")
	}
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" || p.Ecom.Transaction == nil {
		return nil, errors.New("Ecom/@ConsumerOrderID and Transaction are required")
	}
	m, err := p.Ecom.Transaction.Money()
	if err != nil || m.Minor <= 0 {
		return nil, errors.New("Transaction/@Amount and @Currency must be a positive amount")
	}
	// The page names the shop as the federation registered it (its
	// metadata's display name), never as the request calls itself: a
	// merchant cannot borrow another's name on the issuer's page.
	out := &request{OrderID: p.Ecom.ConsumerOrderID, Amount: m.Minor, Currency: m.Currency, Shop: req.Merchant()}
	if ed, err := e.cfg.Directory.Lookup(ctx, req.Merchant()); err == nil && ed.DisplayName != "" {
		out.Shop = ed.DisplayName
	}
	ca := p.CardAuth
	out.MultiUse, out.Lock = !ca.SingleUse(), ca.MerchantLocked()
	if t, ok := ca.Expiry(); ok {
		out.NotAfter = t
	}
	if req.Service == ServiceVCNIssue {
		out.WantVirtual = true
		return out, nil
	}
	// A virtual number issued during an authentication goes to this
	// merchant's PG: it is always locked to the merchant (KECIS §15.4); only
	// vcn:issue, whose cardholder sees the controls, may ask otherwise.
	out.WantVirtual, out.Lock = ca.WantsVirtual(), true
	if ca == nil || ca.Acquirer == "" {
		return nil, errors.New("kx:CardAuth/@Acquirer is required")
	}
	out.Acquirer = ca.Acquirer
	ed, err := e.cfg.Directory.Lookup(ctx, ca.Acquirer)
	if err != nil || !slices.ContainsFunc(ed.Roles, func(r metadata.Role) bool { return slices.Contains(e.acquirerRoles, r) }) {
		return nil, fmt.Errorf("the acquirer %s is not an active PG", ca.Acquirer)
	}
	if _, err := e.cfg.Directory.EncryptionCertificate(ctx, ca.Acquirer); err != nil {
		return nil, fmt.Errorf("the acquirer %s has no encryption key", ca.Acquirer)
	}
	return out, nil
}

// decision is the policy's decision for t.
func (e *Engine) decision(t *tx) (Decision, error) {
	return e.cfg.Policy.Decide(t.Amount, t.Currency, t.Requester)
}

// encodeDecision is the row's form of a decision: "password;totp,client-certificate".
func encodeDecision(d Decision) string {
	req := make([]string, len(d.Require))
	for i, f := range d.Require {
		req[i] = string(f)
	}
	alt := make([]string, len(d.AnyOf))
	for i, f := range d.AnyOf {
		alt[i] = string(f)
	}
	return strings.Join(req, ",") + ";" + strings.Join(alt, ",")
}

func decodeDecision(s string) Decision {
	req, alt, _ := strings.Cut(s, ";")
	var d Decision
	for _, f := range strings.Split(req, ",") {
		if f != "" {
			d.Require = append(d.Require, Factor(f))
		}
	}
	for _, f := range strings.Split(alt, ",") {
		if f != "" {
			d.AnyOf = append(d.AnyOf, Factor(f))
		}
	}
	return d
}

// secondFactors are the second factors t's cardholder can use now.
func (e *Engine) secondFactors(t *tx, c *Card) (totp, cert bool) {
	d := decodeDecision(t.Factors)
	totp = d.Offers(FactorTOTP) && (c == nil || c.TOTP)
	cert = d.Offers(FactorClientCert) && e.cfg.Certs != nil && e.cfg.CertURL != ""
	return totp, cert
}

// answer is a signed response ready to post.
type answer struct {
	Signed      []byte
	Destination string
	Virtual     *VirtualNumber // vcn:issue: shown to the cardholder
}

// frontRequest is the request t answers, as AnswerFront wants it.
func frontRequest(t *tx) *connectors.Request {
	return &connectors.Request{ID: t.RequestID, Service: t.Service, Issuer: t.Requester}
}

// refuse ends t with a refusal and signs it.
func (e *Engine) refuse(ctx context.Context, t *tx, st saml.Status, state State) (*answer, error) {
	t.State, t.StatusCode, t.StatusMsg, t.Updated = state, st.SubCode, st.Message, e.now()
	if err := e.store.update(ctx, t); err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "cardauth: refused", "tx", t.ID, "requester", t.Requester, "service", t.Service, "status", st.SubCode, "message", st.Message)
	signed, dest, err := e.cfg.KECIS.AnswerFront(ctx, frontRequest(t), &connectors.Response{Status: st}, connectors.FrontAnswer{})
	if err != nil {
		return nil, err
	}
	return &answer{Signed: signed, Destination: dest}, nil
}

// succeed ends t authenticated by method with factors and signs the
// answer (KECIS §15.7.1).
func (e *Engine) succeed(ctx context.Context, t *tx, method string, factors int) (*answer, error) {
	c := e.cfg.Cardholders
	now := e.now()
	expires := now.Add(e.cfg.AAVValidity)
	real, err := c.CardNumber(ctx, t.CardRef)
	if err != nil {
		return nil, fmt.Errorf("cardauth: the card's number: %w", err)
	}
	card, err := c.FindCard(ctx, real)
	if err != nil {
		return nil, fmt.Errorf("cardauth: the card: %w", err)
	}
	number, cardType, expM, expY := real, card.Type, card.ExpMonth, card.ExpYear
	var vn *VirtualNumber
	if t.WantVirtual {
		ctl := VirtualControls{SingleUse: !t.MultiUse, MaxAmount: t.Amount, Currency: t.Currency,
			NotOnOrAfter: now.Add(e.cfg.VirtualLifetime)}
		if t.MerchantLock {
			ctl.Merchant = t.Requester
		}
		if !t.VCNotAfter.IsZero() && t.VCNotAfter.After(now) {
			ctl.NotOnOrAfter = t.VCNotAfter // the issuer clamps it
		}
		if vn, err = c.IssueVirtual(ctx, t.CardRef, ctl); err != nil {
			return nil, fmt.Errorf("cardauth: issuing a virtual number: %w", err)
		}
		number, expM, expY = vn.Number, vn.ExpMonth, vn.ExpYear
	}
	amount, err := ecml.FormatAmount(ecml.Money{Minor: t.Amount, Currency: t.Currency})
	if err != nil {
		return nil, err
	}
	aav, err := e.cfg.AAV.Mint(number, t.Amount, t.Currency, t.Requester, t.OrderID, method, expires)
	if err != nil {
		return nil, err
	}
	rid, err := e.newID()
	if err != nil {
		return nil, err
	}
	res := &saml.AuthenticationResult{ID: "_ca" + rid, IssueInstant: now, Issuer: e.cfg.EntityID, Method: method, Factors: factors,
		Amount: amount, Currency: t.Currency, Merchant: t.Requester, OrderID: t.OrderID, CardRef: number.Masked(),
		AuthnInstant: now, NotOnOrAfter: expires}
	signedResult, err := res.Sign(e.cfg.Signer)
	if err != nil {
		return nil, err
	}
	exp := &ecml.Date{Month: fmt.Sprintf("%02d", expM), Year: strconv.Itoa(expY)}
	p := &ecml.Payload{Ecom: &ecml.Ecom{ConsumerOrderID: t.OrderID,
		Transaction: &ecml.Transaction{Amount: amount, Currency: t.Currency, Data: &ecml.Data{AAV: &ecml.Text{Value: aav}}}}}
	opt := connectors.FrontAnswer{}
	if t.Service == ServiceVCNIssue {
		p.VirtualCard = &ecml.VirtualCard{Type: vn.Type, Number: vn.Number, ExpDate: exp}
		p.CardAuth = &ecml.CardAuth{VirtualCard: "true", Use: useOf(vn.Controls.SingleUse), MerchantLock: strconv.FormatBool(vn.Controls.Merchant != ""),
			NotOnOrAfter: vn.Controls.NotOnOrAfter.UTC().Format(time.RFC3339)}
	} else {
		p.Ecom.Payment = &ecml.Payment{Card: &ecml.Card{Type: cardType, Number: number, ExpDate: exp}}
		if vn != nil {
			p.VirtualCard = &ecml.VirtualCard{Type: vn.Type, ExpDate: &ecml.Date{Month: exp.Month, Year: exp.Year}}
		}
		opt.EncryptFor = map[string]string{"Card": t.Acquirer}
	}
	t.State, t.Method, t.StatusCode, t.StatusMsg, t.Updated = Done, method, saml.StatusSuccess, "", now
	if err := e.store.update(ctx, t); err != nil {
		return nil, err
	}
	signed, dest, err := e.cfg.KECIS.AnswerFront(ctx, frontRequest(t),
		&connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: p, AuthResults: []*etree.Element{signedResult}}, opt)
	if err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "cardauth: authenticated", "tx", t.ID, "requester", t.Requester, "service", t.Service, "method", method,
		"card", number.Masked(), "virtual", vn != nil)
	a := &answer{Signed: signed, Destination: dest}
	if t.Service == ServiceVCNIssue {
		a.Virtual = vn
	}
	return a, nil
}

func useOf(single bool) string {
	if single {
		return ecml.CardAuthSingleUse
	}
	return ecml.CardAuthMultiUse
}

// Purge deletes the transactions that expired more than a day ago; run it
// on a schedule.
func (e *Engine) Purge(ctx context.Context) (int64, error) {
	return e.store.purge(ctx, e.now().Add(-24*time.Hour))
}
