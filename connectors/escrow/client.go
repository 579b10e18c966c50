package escrow

import (
	"context"
	"errors"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
)

// Client is the merchant's side of escrow and collect (KECIS §15.6,
// §15.8): it calls the holder bank through the hub, as banking.Client
// calls a payee's bank. The settlement account travels encrypted for the
// bank.
type Client struct {
	C *connectors.Client
	// Bank is the holder bank's entityID.
	Bank string
}

// Result is the answer to a call: the escrow when the bank succeeded, and
// the verified result (its status tells a refusal, or Pending).
type Result struct {
	Escrow *Answer
	Result *connectors.Result
}

// OK reports success.
func (r *Result) OK() bool { return r.Result != nil && r.Result.Status.OK() }

// Order is what a merchant opens.
type Order struct {
	Order  string // Ecom/@ConsumerOrderID, unique per merchant
	Amount ecml.Money
	// ShipTo is where the goods go (Ecom/ShipTo); nil for goods that are
	// not shipped (services, downloads).
	ShipTo *ecml.Address
	// SettlementBank and SettlementAccount are where the bank releases
	// the money; PayeeName its holder (optional).
	SettlementBank    string
	SettlementAccount ecml.Secret
	PayeeName         string
	IdempotencyKey    string
}

// OrderPayload is the request payload of an escrow:open or a
// transfer:collect.
func OrderPayload(o *Order) (*ecml.Payload, error) {
	t := &ecml.Transaction{}
	if err := t.SetMoney(o.Amount); err != nil {
		return nil, err
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: o.Order, ShipTo: o.ShipTo, Transaction: t},
		BankAccounts: []*ecml.BankAccount{{BankCode: o.SettlementBank, Role: RoleSettlement, Holder: o.PayeeName, AccountNumber: o.SettlementAccount}}}, nil
}

// RefPayload names an escrow by its reference or its order.
func RefPayload(r Ref) *ecml.Payload {
	e := &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: r.Order}
	if r.Reference != "" {
		e.Transaction = &ecml.Transaction{Code: &ecml.Code{Approval: r.Reference}}
	}
	return &ecml.Payload{Ecom: e}
}

// Open opens an escrow (escrow:open): the answer's reference is what the
// buyer's browser brings to the bank's page (ServicePay, FieldReference).
func (c *Client) Open(ctx context.Context, o *Order) (*Result, error) {
	return c.order(ctx, ServiceOpen, o)
}

// Collect opens a cash payment without escrow (transfer:collect).
func (c *Client) Collect(ctx context.Context, o *Order) (*Result, error) {
	return c.order(ctx, ServiceCollect, o)
}

func (c *Client) order(ctx context.Context, service string, o *Order) (*Result, error) {
	if o.IdempotencyKey == "" {
		return nil, errors.New("escrow: an order needs an idempotency key")
	}
	p, err := OrderPayload(o)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, connectors.Call{Service: service, IdempotencyKey: o.IdempotencyKey, Payload: p})
}

// Ship reports the shipment (escrow:ship): carrier and tracking number.
func (c *Client) Ship(ctx context.Context, r Ref, carrier, tracking, key string) (*Result, error) {
	p := RefPayload(r)
	p.Escrow = &ecml.Escrow{State: string(Shipped), Carrier: strings.TrimSpace(carrier), Tracking: strings.TrimSpace(tracking)}
	return c.call(ctx, connectors.Call{Service: ServiceShip, IdempotencyKey: key, Payload: p})
}

// Refund refunds the buyer, or cancels an order not yet paid
// (escrow:refund).
func (c *Client) Refund(ctx context.Context, r Ref, key string) (*Result, error) {
	return c.call(ctx, connectors.Call{Service: ServiceRefund, IdempotencyKey: key, Payload: RefPayload(r)})
}

// Status reads the escrow's state and last changes (escrow:status).
func (c *Client) Status(ctx context.Context, r Ref) (*Result, error) {
	return c.call(ctx, connectors.Call{Service: ServiceStatus, Payload: RefPayload(r)})
}

func (c *Client) call(ctx context.Context, call connectors.Call) (*Result, error) {
	if c.C == nil || c.Bank == "" {
		return nil, errors.New("escrow: Client needs C and Bank")
	}
	call.Recipient = c.Bank
	res, err := c.C.Do(ctx, call)
	if err != nil {
		return nil, err
	}
	out := &Result{Result: res}
	if res.Status.OK() {
		if out.Escrow, err = AnswerFrom(res.Payload); err != nil {
			return nil, err
		}
	}
	return out, nil
}
