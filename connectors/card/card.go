// Package card is the KECIS card service (KECIS §15.2, "card"): approve —
// including Korean key-in approval (card number, expiry, the two leading
// digits of the card password and the holder's birth date, all encrypted
// for the issuer) —, cancel (a void, allowed until the approval is settled),
// refund (partial allowed, never above what was approved and settled) and
// inquire (the true state, what a caller uses after Pending).
//
// A provider implements Service and any of Canceler, Refunder and
// Inquirer; Services turns it into the SDK's functions. Callers use Client.
//
// ECML mapping (on the wire in KECIS §2.8 and §2.9; the order and the
// approval are the objects whose owner the SDK checks, KECIS §13.3):
//
//	request  Ecom/@ConsumerOrderID        the merchant's order
//	         Payment/Card (encrypted)     number, expiry, name, type
//	         kx:KeyIn (encrypted)         password prefix, birth date
//	         Transaction/@Amount,@Currency,@Type="credit"
//	         Transaction/Code/@Approval   the approval a cancel, refund or inquire names
//	response Transaction/Code/@Approval   the approval number
//	         Transaction/@Amount,@Currency  the approved amount
//	         Transaction/Data/Response    the state: approved, cancelled, settled, partially-refunded, refunded
//	         Transaction/Data/PrivateUse  "refunded=<amount>" (ECML amount form)
package card

import (
	"context"
	"fmt"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Service URIs.
const (
	ServiceApprove = saml.ServicePrefix + "card:approve"
	ServiceCancel  = saml.ServicePrefix + "card:cancel"
	ServiceRefund  = saml.ServicePrefix + "card:refund"
	ServiceInquire = saml.ServicePrefix + "card:inquire"
)

// Card is the card data of an approval; it travels encrypted for the issuer.
type Card struct {
	Number   ecml.PAN
	ExpMonth string
	ExpYear  string
	Name     string
	Type     string
}

// KeyIn is the Korean key-in data; it travels encrypted for the issuer.
type KeyIn struct {
	PasswordPrefix ecml.Secret // the two leading digits of the card password
	BirthDate      ecml.Secret // YYMMDD
}

// ApproveRequest asks for an approval.
type ApproveRequest struct {
	Merchant       string // the merchant's entityID (set by the SDK from the request)
	OrderID        string
	Amount         ecml.Money
	Card           Card
	KeyIn          *KeyIn
	IdempotencyKey string

	// SubMerchant is the shop the cardholder buys from when Merchant is an
	// acquirer (a PG) paying for one of its merchants: its name as the
	// cardholder knows it (Ecom/@Merchant) and the acquirer's ID for it
	// (Ecom/Merchant/@id, the card acceptor ID). The acquirer vouches for
	// them; empty when the caller sells itself.
	SubMerchant, SubMerchantID string
}

// CancelRequest voids an approval before settlement.
type CancelRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
	IdempotencyKey string
}

// RefundRequest refunds (part of) a settled approval.
type RefundRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
	Amount         ecml.Money
	IdempotencyKey string
}

// InquireRequest asks for the true state of an approval (by number, or by
// the merchant's order).
type InquireRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
}

// State of an approval.
type State string

const (
	Approved          State = "approved"
	Cancelled         State = "cancelled"
	Settled           State = "settled"
	PartiallyRefunded State = "partially-refunded"
	Refunded          State = "refunded"
)

// Approval is an issuer's record of an approval as the service reports it.
type Approval struct {
	ApprovalNumber string
	OrderID        string
	Amount         ecml.Money
	Refunded       ecml.Money
	State          State
}

// Service approves card payments.
type Service interface {
	Approve(ctx context.Context, req *ApproveRequest) (*Approval, error)
}

// Canceler voids approvals before settlement.
type Canceler interface {
	Cancel(ctx context.Context, req *CancelRequest) (*Approval, error)
}

// Refunder refunds settled approvals.
type Refunder interface {
	Refund(ctx context.Context, req *RefundRequest) (*Approval, error)
}

// Inquirer reports the state of approvals.
type Inquirer interface {
	Inquire(ctx context.Context, req *InquireRequest) (*Approval, error)
}

// Business refusals, as second-level codes (KECIS spec §6.2).
func Declined(msg string) error { return refuse(saml.CodeDeclined, msg) }

// InsufficientFunds refuses for lack of limit or balance.
func InsufficientFunds(msg string) error { return refuse(saml.CodeInsufficientFunds, msg) }

// InvalidCard refuses a card (or key-in data) that does not check.
func InvalidCard(msg string) error { return refuse(saml.CodeInvalidCard, msg) }

// Expired refuses an expired card.
func Expired(msg string) error { return refuse(saml.CodeExpired, msg) }

// LimitExceeded refuses over a limit (e.g. a refund above what was approved).
func LimitExceeded(msg string) error { return refuse(saml.CodeLimitExceeded, msg) }

// PolicyViolation refuses what the rules forbid (e.g. a cancel after settlement).
func PolicyViolation(msg string) error { return refuse(saml.CodePolicyViolation, msg) }

// NotFound refuses a request that names no known approval.
func NotFound(msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: msg}}
}

// NoSuchApproval is the answer to an approval or order that is unknown —
// or another caller's, which reads the same (KECIS §13.3): the SDK gives it
// without asking the provider, and a provider's own NotFound should say the
// same.
var NoSuchApproval = NotFound("no such approval").(*connectors.StatusError).Status

// Object kinds of the card service (KECIS §13.3): an order number is the
// merchant's own (scoped per caller), an approval number the provider's.
const (
	ObjectOrder    = "card:order"
	ObjectApproval = "card:approval"
)

// Objects lists the objects a card payload names: the order
// (Ecom/@ConsumerOrderID) and the approval (Transaction/Code/@Approval).
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil || p.Ecom == nil {
		return nil
	}
	var refs []connectors.ObjectRef
	if p.Ecom.ConsumerOrderID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectOrder, ID: p.Ecom.ConsumerOrderID, PerOwner: true})
	}
	if t := p.Ecom.Transaction; t != nil && t.Code != nil && t.Code.Approval != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectApproval, ID: t.Code.Approval})
	}
	return refs
}

// The card service's object rules: an approve creates an order and an
// approval for its caller; cancel, refund and inquire operate on the
// caller's own.
func init() {
	connectors.RegisterObjectRule(ServiceApprove, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchApproval})
	for _, s := range []string{ServiceCancel, ServiceRefund, ServiceInquire} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchApproval})
	}
}

func refuse(code, msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusResponder, SubCode: code, Message: msg}}
}

// Services returns the SDK functions of svc, detecting its optional
// interfaces (dex connector style).
func Services(svc Service) map[string]connectors.ServiceFunc {
	m := map[string]connectors.ServiceFunc{
		ServiceApprove: func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			req, err := approveFrom(r)
			if err != nil {
				return nil, err
			}
			return respond(svc.Approve(ctx, req))
		},
	}
	if c, ok := svc.(Canceler); ok {
		m[ServiceCancel] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(r)
			if err != nil {
				return nil, err
			}
			return respond(c.Cancel(ctx, &CancelRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval, IdempotencyKey: r.IdempotencyKey}))
		}
	}
	if f, ok := svc.(Refunder); ok {
		m[ServiceRefund] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(r)
			if err != nil {
				return nil, err
			}
			if ref.amount.Currency == "" {
				return nil, invalid("a refund needs Transaction/@Amount and @Currency")
			}
			return respond(f.Refund(ctx, &RefundRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval, Amount: ref.amount, IdempotencyKey: r.IdempotencyKey}))
		}
	}
	if q, ok := svc.(Inquirer); ok {
		m[ServiceInquire] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(r)
			if err != nil {
				return nil, err
			}
			return respond(q.Inquire(ctx, &InquireRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval}))
		}
	}
	return m
}

func invalid(msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: msg}}
}

// lacks refuses a request that lacks what its card service requires, by
// the declaration the hub's facade and the sidecar's caller check before
// the request travels (callapi.Missing).
func lacks(service string, p *ecml.Payload) error {
	if m := callapi.Missing(service, p); len(m) > 0 {
		return invalid("the request lacks " + strings.Join(m, ", "))
	}
	return nil
}

func approveFrom(r *connectors.Request) (*ApproveRequest, error) {
	if err := lacks(ServiceApprove, r.Payload); err != nil {
		return nil, err
	}
	p := r.Payload
	if p.Ecom.Payment.Card == nil {
		return nil, invalid("an approval needs Payment/Card decrypted")
	}
	money, err := p.Ecom.Transaction.Money()
	if err != nil {
		return nil, invalid("Transaction/@Amount is not a valid amount")
	}
	c := p.Ecom.Payment.Card
	req := &ApproveRequest{Merchant: r.Merchant(), OrderID: p.Ecom.ConsumerOrderID, Amount: money, IdempotencyKey: r.IdempotencyKey,
		Card: Card{Number: c.Number, Name: c.Name, Type: c.Type}, SubMerchant: p.Ecom.Merchant}
	if m := p.Ecom.MerchantInfo; m != nil {
		req.SubMerchantID = m.ID
	}
	if c.ExpDate != nil {
		req.Card.ExpMonth, req.Card.ExpYear = c.ExpDate.Month, c.ExpDate.Year
	}
	if k := p.KeyIn; k != nil {
		req.KeyIn = &KeyIn{PasswordPrefix: k.PasswordPrefix, BirthDate: k.BirthDate}
	}
	return req, nil
}

type reference struct {
	order, approval string
	amount          ecml.Money
}

func refFrom(r *connectors.Request) (*reference, error) {
	if err := lacks(r.Service, r.Payload); err != nil {
		return nil, err
	}
	p := r.Payload
	if p == nil || p.Ecom == nil {
		return nil, invalid("the request needs an Ecom payload")
	}
	ref := &reference{order: p.Ecom.ConsumerOrderID}
	if t := p.Ecom.Transaction; t != nil {
		if t.Code != nil {
			ref.approval = t.Code.Approval
		}
		if t.Amount != "" {
			m, err := t.Money()
			if err != nil {
				return nil, invalid("Transaction/@Amount is not a valid amount")
			}
			ref.amount = m
		}
	}
	if ref.approval == "" && ref.order == "" {
		return nil, invalid("name the approval (Transaction/Code/@Approval) or the order (Ecom/@ConsumerOrderID)")
	}
	return ref, nil
}

func respond(a *Approval, err error) (*connectors.Response, error) {
	if err != nil {
		return nil, err
	}
	return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: ApprovalPayload(a)}, nil
}

// ApprovalPayload is the response payload of an approval.
func ApprovalPayload(a *Approval) *ecml.Payload {
	t := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: a.ApprovalNumber},
		Data: &ecml.Data{Response: &ecml.Text{Value: string(a.State)}}}
	_ = t.SetMoney(a.Amount)
	if a.Refunded.Minor > 0 {
		if s, err := ecml.FormatAmount(a.Refunded); err == nil {
			t.Data.PrivateUse = &ecml.Text{Value: "refunded=" + s}
		}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: a.OrderID, Transaction: t}}
}

// ApprovalFrom reads an approval from a response payload.
func ApprovalFrom(p *ecml.Payload) (*Approval, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil {
		return nil, fmt.Errorf("card: the answer has no Transaction")
	}
	t := p.Ecom.Transaction
	a := &Approval{OrderID: p.Ecom.ConsumerOrderID}
	if m, err := t.Money(); err == nil {
		a.Amount = m
	}
	if t.Code != nil {
		a.ApprovalNumber = t.Code.Approval
	}
	if t.Data != nil {
		if t.Data.Response != nil {
			a.State = State(t.Data.Response.Value)
		}
		if t.Data.PrivateUse != nil {
			if v, ok := strings.CutPrefix(t.Data.PrivateUse.Value, "refunded="); ok {
				if m, err := ecml.ParseAmount(v, a.Amount.Currency); err == nil {
					a.Refunded = m
				}
			}
		}
	}
	return a, nil
}
