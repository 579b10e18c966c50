package amountauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// ObjectOrder is the merchant's order of a session, scoped per merchant
// (KECIS §13.3).
const ObjectOrder = "amountauth:order"

// Objects lists the objects an amountauth payload names: the merchant's
// order (Ecom/@ConsumerOrderID) and the session (kx:AmountAuth/@SessionID).
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil {
		return nil
	}
	var refs []connectors.ObjectRef
	if p.Ecom != nil && p.Ecom.ConsumerOrderID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectOrder, ID: p.Ecom.ConsumerOrderID, PerOwner: true})
	}
	if p.AmountAuth != nil && p.AmountAuth.SessionID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectSession, ID: p.AmountAuth.SessionID})
	}
	return refs
}

// The object rules: start creates the order and the session for its
// caller; confirm and status act only on the caller's own.
func init() {
	connectors.RegisterObjectRule(ServiceStart, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchSession})
	for _, s := range []string{ServiceConfirm, ServiceStatus} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchSession})
	}
}

// Services returns the SDK functions of the amountauth service group
// (KECIS §15.3.1).
func (e *Engine) Services() map[string]connectors.ServiceFunc {
	return map[string]connectors.ServiceFunc{
		ServiceStart:   e.serveStart,
		ServiceConfirm: e.serveConfirm,
		ServiceStatus:  e.serveStatus,
	}
}

func invalid(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, msg)
}

func (e *Engine) serveStart(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
	p := r.Payload
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" || p.Ecom.Transaction == nil || p.Ecom.Payment == nil || p.Ecom.Payment.Card == nil {
		return nil, invalid("a start needs Ecom/@ConsumerOrderID, Payment/Card and Transaction/@Amount, @Currency")
	}
	amount, err := p.Ecom.Transaction.Money()
	if err != nil || amount.Minor <= 0 {
		return nil, invalid("Transaction/@Amount is not a positive amount")
	}
	c := p.Ecom.Payment.Card
	req := &StartRequest{Merchant: r.Merchant(), OrderID: p.Ecom.ConsumerOrderID, Amount: amount, IdempotencyKey: r.IdempotencyKey,
		Card: card.Card{Number: c.Number, Name: c.Name, Type: c.Type}, SubMerchant: p.Ecom.Merchant}
	if c.ExpDate != nil {
		req.Card.ExpMonth, req.Card.ExpYear = c.ExpDate.Month, c.ExpDate.Year
	}
	if m := p.Ecom.MerchantInfo; m != nil {
		req.SubMerchantID = m.ID
	}
	if u := p.Ecom.User; u != nil && u.UserID != nil {
		req.UserID = u.UserID.Value
	}
	s, err := e.Start(ctx, req)
	if err != nil {
		return nil, e.refusal(err)
	}
	return e.answer(s, ServiceStart)
}

// sessionOf reads the session a confirm or status names.
func sessionOf(p *ecml.Payload) (*ecml.AmountAuth, error) {
	if p == nil || p.AmountAuth == nil || p.AmountAuth.SessionID == "" {
		return nil, invalid("name the session: kx:AmountAuth/@SessionID")
	}
	return p.AmountAuth, nil
}

func (e *Engine) serveConfirm(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
	aa, err := sessionOf(r.Payload)
	if err != nil {
		return nil, err
	}
	var typed Typed
	switch {
	case aa.Challenge != "":
		m, err := aa.ChallengeMoney()
		if err != nil {
			return nil, invalid("kx:Challenge is not an amount (value not shown)")
		}
		typed.Amount = &m
	case r.Payload.OneTimeCode != "":
		typed.Code = r.Payload.OneTimeCode
	default:
		return nil, invalid("a confirm needs kx:AmountAuth/kx:Challenge or kx:OneTimeCode, encrypted for the PG")
	}
	s, err := e.Confirm(ctx, r.Merchant(), aa.SessionID, typed)
	if err != nil {
		return nil, e.refusal(err)
	}
	return e.answer(s, ServiceConfirm)
}

func (e *Engine) serveStatus(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
	aa, err := sessionOf(r.Payload)
	if err != nil {
		return nil, err
	}
	s, err := e.Lookup(ctx, r.Merchant(), aa.SessionID)
	if err != nil {
		return nil, e.refusal(err)
	}
	if s, err = e.drive(ctx, s); err != nil {
		return nil, err
	}
	return e.answer(s, ServiceStatus)
}

// refusal turns the engine's errors into answers: an unknown session, or
// another merchant's, reads the same (KECIS §13.3).
func (e *Engine) refusal(err error) error {
	if errors.Is(err, ErrNotFound) {
		return &connectors.StatusError{Status: NoSuchSession}
	}
	return err
}

// PublicState is the state an answer shows: Starting reads as processing.
func (s *Session) PublicState() State {
	if s.State == Starting {
		return Processing
	}
	return s.State
}

// Status is the status an operation answers for the session (KECIS
// §15.3.1): status always Success; start Success while awaiting the
// amount; otherwise by the state.
func (s *Session) Status(service string) saml.Status {
	ok := saml.Status{Code: saml.StatusSuccess}
	refuse := func(code, msg string) saml.Status {
		return saml.Status{Code: saml.StatusResponder, SubCode: code, Message: msg}
	}
	if service == ServiceStatus {
		return ok
	}
	switch s.PublicState() {
	case Approved:
		return ok
	case AwaitingAmount:
		if service == ServiceStart {
			return ok
		}
		return refuse(saml.CodeDeclined, fmt.Sprintf("the amount does not match (%d of %d attempts left)", s.MaxAttempts-s.Attempts, s.MaxAttempts))
	case Processing:
		return refuse(saml.CodePending, "the authentication is being completed; ask with amountauth:status")
	case Failed:
		return refuse(saml.CodeAuthenticationRequired, "the attempt limit was reached")
	case Expired:
		return refuse(saml.CodeExpired, "the session timed out")
	default: // Declined, Refused: the issuer's refusal
		code := s.RefusalCode
		if code == "" {
			code = saml.CodeDeclined
		}
		return refuse(code, s.RefusalMessage)
	}
}

// answer is the response describing s (KECIS §15.3.1).
func (e *Engine) answer(s *Session, service string) (*connectors.Response, error) {
	p, err := SessionPayload(s)
	if err != nil {
		return nil, err
	}
	resp := &connectors.Response{Status: s.Status(service), Payload: p}
	if len(s.Result) > 0 && s.State == Approved {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(s.Result); err != nil || doc.Root() == nil {
			return nil, fmt.Errorf("amountauth: stored result of %s does not parse: %v", s.ID, err)
		}
		resp.AuthResults = []*etree.Element{doc.Root()}
	}
	return resp, nil
}

// SessionPayload is the payload that describes a session: the order, the
// purchase amount, kx:AmountAuth without its challenge, the state and,
// once approved, the purchase's approval number.
func SessionPayload(s *Session) (*ecml.Payload, error) {
	t := &ecml.Transaction{Type: "credit", Data: &ecml.Data{Response: &ecml.Text{Value: string(s.PublicState())}}}
	if err := t.SetMoney(s.Amount); err != nil {
		return nil, err
	}
	if s.PurchaseApproval != "" {
		t.Code = &ecml.Code{Approval: s.PurchaseApproval}
	}
	aa := &ecml.AmountAuth{SessionID: s.ID}
	if err := aa.SetCeiling(ecml.Money{Minor: s.Ceiling, Currency: s.Amount.Currency}); err != nil {
		return nil, err
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: s.OrderID, Transaction: t}, AmountAuth: aa}, nil
}

// ParseTyped reads an amount a person typed: digits with optional
// grouping commas, spaces and a trailing currency word (1,234원, 1234 KRW).
func ParseTyped(s, currency string) (ecml.Money, error) {
	s = strings.TrimSpace(s)
	for _, suffix := range []string{"원", "KRW", "krw", "won"} {
		s = strings.TrimSpace(strings.TrimSuffix(s, suffix))
	}
	s = strings.NewReplacer(",", "", " ", "", "\u00a0", "").Replace(s)
	if s == "" || len(s) > 19 {
		return ecml.Money{}, errors.New("not an amount")
	}
	return ecml.ParseAmount(s, currency)
}
