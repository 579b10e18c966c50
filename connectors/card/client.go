package card

import (
	"context"
	"fmt"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Client calls the card service of an issuer (or a PG) through the hub.
type Client struct {
	C *connectors.Client
}

// Outcome is an answer: the approval when the provider succeeded, and the
// verified result (its status tells a decline, Pending, …).
type Outcome struct {
	Approval *Approval
	Result   *connectors.Result
}

// OK reports success.
func (o *Outcome) OK() bool { return o.Result != nil && o.Result.Status.OK() }

// Code is the second-level code without its prefix ("Declined", "Pending").
func (o *Outcome) Code() string { return o.Result.Status.Sub() }

func (c *Client) do(ctx context.Context, recipient, service, key string, p *ecml.Payload, routing *saml.Routing, results ...*etree.Element) (*Outcome, error) {
	res, err := c.C.Do(ctx, connectors.Call{Recipient: recipient, Service: service, IdempotencyKey: key, Payload: p, Routing: routing, AuthResults: results})
	if err != nil {
		return nil, err
	}
	out := &Outcome{Result: res}
	if res.Status.OK() {
		a, err := ApprovalFrom(res.Payload)
		if err != nil {
			return nil, err
		}
		out.Approval = a
	}
	return out, nil
}

// Approve asks recipient to approve req. The card (and key-in data) are
// encrypted for the recipient; BIN and last four digits travel as public
// routing hints. A req.EncryptedCard (encrypted for the recipient by the
// issuer's cardholder authentication, KECIS §15.7) travels unchanged
// instead, without hints, with req.AuthValue as Transaction/Data/AAV and
// req.SignedAuthResults embedded unchanged.
func (c *Client) Approve(ctx context.Context, recipient string, req *ApproveRequest) (*Outcome, error) {
	p, err := approvePayload(req)
	if err != nil {
		return nil, err
	}
	routing := cardRouting(req.Card)
	if req.EncryptedCard != nil {
		routing = nil
	}
	return c.do(ctx, recipient, ServiceApprove, req.IdempotencyKey, p, routing, req.SignedAuthResults...)
}

// approvePayload is the request payload of Approve.
func approvePayload(req *ApproveRequest) (*ecml.Payload, error) {
	if req.EncryptedCard != nil && req.Card.Number != "" {
		return nil, fmt.Errorf("card: give Card or EncryptedCard, not both")
	}
	p := approvalRequest(req.OrderID, req.Card, req.SubMerchant, req.SubMerchantID)
	if req.EncryptedCard != nil {
		p.Ecom.Payment = &ecml.Payment{EncryptedCard: req.EncryptedCard}
	}
	if err := p.Ecom.Transaction.SetMoney(req.Amount); err != nil {
		return nil, err
	}
	if req.AuthValue != "" {
		p.Ecom.Transaction.Data = &ecml.Data{AAV: &ecml.Text{Value: req.AuthValue}}
	}
	if req.KeyIn != nil {
		p.KeyIn = &ecml.KeyIn{PasswordPrefix: req.KeyIn.PasswordPrefix, BirthDate: req.KeyIn.BirthDate}
	}
	return p, nil
}

// ApproveVerification asks recipient for a verification approval (KECIS
// §15.2 approve-verification): as Approve, but with no Transaction/@Amount;
// the amount is kx:AmountAuth/kx:Challenge beside the public @Ceiling, and
// the descriptor code, when given, kx:OneTimeCode — both encrypted for the
// recipient with the card. The answer carries no amount.
func (c *Client) ApproveVerification(ctx context.Context, recipient string, req *VerificationRequest) (*Outcome, error) {
	p, err := verificationPayload(req)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, recipient, ServiceApproveVerification, req.IdempotencyKey, p, cardRouting(req.Card))
}

// verificationPayload is the request payload of ApproveVerification.
func verificationPayload(req *VerificationRequest) (*ecml.Payload, error) {
	p := approvalRequest(req.OrderID, req.Card, req.SubMerchant, req.SubMerchantID)
	aa := &ecml.AmountAuth{SessionID: req.SessionID}
	if err := aa.SetCeiling(req.Ceiling); err != nil {
		return nil, fmt.Errorf("card: the ceiling: %w", err)
	}
	if err := aa.SetChallenge(req.Challenge); err != nil {
		return nil, fmt.Errorf("card: the challenge: %w", err)
	}
	p.AmountAuth, p.OneTimeCode = aa, req.DescriptorCode
	return p, nil
}

// approvalRequest is the payload an approval request shares: the order,
// the shop an acquirer pays for, the card (the SDK encrypts it for the
// recipient, KECIS §8.1) and a credit Transaction without an amount.
func approvalRequest(order string, c Card, subMerchant, subMerchantID string) *ecml.Payload {
	card := &ecml.Card{Number: c.Number, Name: c.Name, Type: c.Type, ExpDate: &ecml.Date{Month: c.ExpMonth, Year: c.ExpYear}}
	e := &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Merchant: subMerchant,
		Payment: &ecml.Payment{Card: card}, Transaction: &ecml.Transaction{Type: "credit"}}
	if subMerchantID != "" {
		e.MerchantInfo = &ecml.Merchant{ID: subMerchantID}
	}
	return &ecml.Payload{Ecom: e}
}

// cardRouting is the public routing hint of a card: its BIN and last four
// digits (KECIS §13.4), nil when the number has none.
func cardRouting(c Card) *saml.Routing {
	if bin := c.Number.BIN(); bin != "" {
		return &saml.Routing{CardBIN: bin, CardLast4: c.Number.Last4()}
	}
	return nil
}

func refPayload(order, approval string, amount *ecml.Money) (*ecml.Payload, error) {
	t := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: approval}}
	if amount != nil {
		if err := t.SetMoney(*amount); err != nil {
			return nil, err
		}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Transaction: t}}, nil
}

// Cancel voids an approval (before settlement).
func (c *Client) Cancel(ctx context.Context, recipient string, req *CancelRequest) (*Outcome, error) {
	p, err := refPayload(req.OrderID, req.ApprovalNumber, nil)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, recipient, ServiceCancel, req.IdempotencyKey, p, nil)
}

// Refund refunds part or all of a settled approval; a zero Amount names
// none, which refunds a verification approval whole (KECIS §15.2).
func (c *Client) Refund(ctx context.Context, recipient string, req *RefundRequest) (*Outcome, error) {
	var amount *ecml.Money
	if req.Amount != (ecml.Money{}) {
		amount = &req.Amount
	}
	p, err := refPayload(req.OrderID, req.ApprovalNumber, amount)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, recipient, ServiceRefund, req.IdempotencyKey, p, nil)
}

// Inquire asks for the true state of an approval.
func (c *Client) Inquire(ctx context.Context, recipient string, req *InquireRequest) (*Outcome, error) {
	if req.ApprovalNumber == "" && req.OrderID == "" {
		return nil, fmt.Errorf("card: inquire needs an approval number or an order ID")
	}
	p, err := refPayload(req.OrderID, req.ApprovalNumber, nil)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, recipient, ServiceInquire, "", p, nil)
}
