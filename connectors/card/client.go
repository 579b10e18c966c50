package card

import (
	"context"
	"fmt"

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

func (c *Client) do(ctx context.Context, recipient, service, key string, p *ecml.Payload, routing *saml.Routing) (*Outcome, error) {
	res, err := c.C.Do(ctx, connectors.Call{Recipient: recipient, Service: service, IdempotencyKey: key, Payload: p, Routing: routing})
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
// routing hints.
func (c *Client) Approve(ctx context.Context, recipient string, req *ApproveRequest) (*Outcome, error) {
	amount, err := ecml.FormatAmount(req.Amount)
	if err != nil {
		return nil, err
	}
	card := &ecml.Card{Number: req.Card.Number, Name: req.Card.Name, Type: req.Card.Type,
		ExpDate: &ecml.Date{Month: req.Card.ExpMonth, Year: req.Card.ExpYear}}
	p := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: req.OrderID,
		Payment:     &ecml.Payment{Card: card},
		Transaction: &ecml.Transaction{Amount: amount, Currency: req.Amount.Currency, Type: "credit"}}}
	if req.KeyIn != nil {
		p.KeyIn = &ecml.KeyIn{PasswordPrefix: req.KeyIn.PasswordPrefix, BirthDate: req.KeyIn.BirthDate}
	}
	var routing *saml.Routing
	if bin := req.Card.Number.BIN(); bin != "" {
		routing = &saml.Routing{CardBIN: bin, CardLast4: req.Card.Number.Last4()}
	}
	return c.do(ctx, recipient, ServiceApprove, req.IdempotencyKey, p, routing)
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

// Refund refunds part or all of a settled approval.
func (c *Client) Refund(ctx context.Context, recipient string, req *RefundRequest) (*Outcome, error) {
	p, err := refPayload(req.OrderID, req.ApprovalNumber, &req.Amount)
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
