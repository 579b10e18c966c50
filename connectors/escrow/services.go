package escrow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Directory is what the role check reads: the callers' metadata (the same
// as banking's).
type Directory = banking.Directory

// Objects of the services (KECIS §13.3): the merchant's order (per owner)
// and the bank's reference.
const (
	objectOrder     = "escrow:order"
	objectReference = "escrow:reference"
)

// Objects lists the objects an escrow payload names (KECIS §13.3): the
// merchant's order (Ecom/@ConsumerOrderID, its own) and the bank's
// reference (Transaction/Code/@Approval).
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil || p.Ecom == nil {
		return nil
	}
	var refs []connectors.ObjectRef
	if p.Ecom.ConsumerOrderID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: objectOrder, ID: p.Ecom.ConsumerOrderID, PerOwner: true})
	}
	if t := p.Ecom.Transaction; t != nil && t.Code != nil && t.Code.Approval != "" {
		refs = append(refs, connectors.ObjectRef{Kind: objectReference, ID: t.Code.Approval})
	}
	return refs
}

// open and collect create the merchant's order; ship, refund and status
// act on the caller's own.
func init() {
	for _, s := range []string{ServiceOpen, ServiceCollect} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchEscrow})
	}
	for _, s := range []string{ServiceShip, ServiceRefund, ServiceStatus} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchEscrow})
	}
}

// Services returns the SDK functions of escrow:open, ship, refund, status
// and transfer:collect over e. dir is the federation's metadata, in which
// each call's caller must have role merchant (or tester, while the bank is
// certified; KECIS §13.2) — checked again before the engine runs, besides
// the service's Callers. The object rules answer another merchant's escrow
// as unknown before a function runs; the functions look the escrow up
// under the caller again (defence in depth).
func Services(e *Engine, dir Directory) map[string]connectors.ServiceFunc {
	guard := func(fn func(ctx context.Context, r *connectors.Request) (*Escrow, []Event, error)) connectors.ServiceFunc {
		return func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			if err := checkMerchant(ctx, dir, r); err != nil {
				return nil, err
			}
			x, ev, err := fn(ctx, r)
			if s, ok := connectors.AsStatus(err); ok {
				return &connectors.Response{Status: s}, nil
			}
			if err != nil {
				return nil, err
			}
			p, err := AnswerPayload(x, ev)
			if err != nil {
				return nil, err
			}
			return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: p}, nil
		}
	}
	opener := func(open func(context.Context, *OpenRequest) (*Escrow, error)) connectors.ServiceFunc {
		return guard(func(ctx context.Context, r *connectors.Request) (*Escrow, []Event, error) {
			req, err := OpenFrom(r)
			if err != nil {
				return nil, nil, err
			}
			x, err := open(ctx, req)
			return x, nil, err
		})
	}
	return map[string]connectors.ServiceFunc{
		ServiceOpen:    opener(e.Open),
		ServiceCollect: opener(e.Collect),
		ServiceShip: guard(func(ctx context.Context, r *connectors.Request) (*Escrow, []Event, error) {
			ref, err := RefFrom(r.Payload)
			if err != nil {
				return nil, nil, err
			}
			var carrier, tracking string
			if k := r.Payload.Escrow; k != nil {
				if k.State != "" && k.State != string(Shipped) {
					return nil, nil, invalid(`an escrow:ship request's kx:Escrow has State="shipped"`)
				}
				carrier, tracking = k.Carrier, k.Tracking
			}
			x, err := e.Ship(ctx, r.Merchant(), ref, carrier, tracking, r.IdempotencyKey)
			return x, nil, err
		}),
		ServiceRefund: guard(func(ctx context.Context, r *connectors.Request) (*Escrow, []Event, error) {
			ref, err := RefFrom(r.Payload)
			if err != nil {
				return nil, nil, err
			}
			x, err := e.Refund(ctx, r.Merchant(), ref, r.IdempotencyKey)
			return x, nil, err
		}),
		ServiceStatus: guard(func(ctx context.Context, r *connectors.Request) (*Escrow, []Event, error) {
			ref, err := RefFrom(r.Payload)
			if err != nil {
				return nil, nil, err
			}
			return e.Status(ctx, r.Merchant(), ref)
		}),
	}
}

// checkMerchant checks, in the caller's active metadata, that it has role
// merchant or tester (KECIS §13.2).
func checkMerchant(ctx context.Context, dir Directory, r *connectors.Request) error {
	ed, err := dir.Lookup(ctx, r.Merchant())
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return connectors.Refuse(saml.StatusRequester, saml.StatusRequestDenied, "the caller is not a participant")
	case err != nil:
		return fmt.Errorf("escrow: the caller's metadata: %w", err) // ProviderUnavailable, retryable
	case !ed.HasRole(metadata.RoleMerchant) && !ed.HasRole(metadata.RoleTester):
		return connectors.Refuse(saml.StatusRequester, saml.StatusRequestDenied, "only merchants may call this service")
	}
	return nil
}

// settlementAccount returns the payload's kx:BankAccount Role="settlement".
func settlementAccount(p *ecml.Payload) *ecml.BankAccount {
	for _, a := range p.BankAccounts {
		if a != nil && a.Role == RoleSettlement {
			return a
		}
	}
	return nil
}

// OpenFrom decodes an escrow:open or transfer:collect request.
func OpenFrom(r *connectors.Request) (*OpenRequest, error) {
	p := r.Payload
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" {
		return nil, invalid("Ecom/@ConsumerOrderID, the order, is required")
	}
	if p.Ecom.Transaction == nil {
		return nil, invalid("Transaction/@Amount and @Currency are required")
	}
	m, err := p.Ecom.Transaction.Money()
	if err != nil || m.Minor <= 0 {
		return nil, invalid("a positive Transaction/@Amount with @Currency is required")
	}
	a := settlementAccount(p)
	if a == nil || a.BankCode == "" {
		return nil, invalid(`kx:BankAccount Role="settlement" with @BankCode is required`)
	}
	if a.AccountNumber == "" {
		return nil, invalid(`the settlement account's kx:AccountNumber, encrypted for the bank, is required`)
	}
	return &OpenRequest{Merchant: r.Merchant(), Order: p.Ecom.ConsumerOrderID, Amount: m, Goods: p.Ecom.ShipTo != nil,
		SettlementBank: a.BankCode, SettlementAccount: a.AccountNumber, PayeeName: a.Holder, IdempotencyKey: r.IdempotencyKey}, nil
}

// RefFrom reads which escrow a ship, refund or status request names.
func RefFrom(p *ecml.Payload) (Ref, error) {
	var r Ref
	if p != nil && p.Ecom != nil {
		r.Order = p.Ecom.ConsumerOrderID
		if t := p.Ecom.Transaction; t != nil && t.Code != nil {
			r.Reference = t.Code.Approval
		}
	}
	if r.Reference == "" && r.Order == "" {
		return r, invalid("name the escrow: Transaction/Code/@Approval (the reference) or Ecom/@ConsumerOrderID")
	}
	return r, nil
}

// historyMax bounds Transaction/Data/PrivateUse (999 characters).
const historyMax = 999

// AnswerPayload is the answer of every service: the order, the amount,
// the reference (Transaction/Code/@Approval), the state
// (Transaction/Data/Response), kx:Escrow (an escrow's, not a collect's),
// and with events (escrow:status) the time of the last change
// (Transaction/Date/@Value) and the last changes as "kind@time" words in
// Transaction/Data/PrivateUse. No account number.
func AnswerPayload(x *Escrow, events []Event) (*ecml.Payload, error) {
	t := &ecml.Transaction{Code: &ecml.Code{Approval: x.Reference}, Data: &ecml.Data{Response: &ecml.Text{Value: string(x.State)}}}
	if err := t.SetMoney(x.Amount); err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	if len(events) > 0 {
		words := make([]string, 0, len(events))
		n := 0
		for i := len(events) - 1; i >= 0; i-- { // the newest kept when too long
			w := events[i].Kind + "@" + events[i].At.UTC().Format(time.RFC3339)
			if n+len(w)+1 > historyMax {
				break
			}
			words = append([]string{w}, words...)
			n += len(w) + 1
		}
		t.Data.PrivateUse = &ecml.Text{Value: strings.Join(words, " ")}
		t.Date = &ecml.TransactionDate{Value: events[len(events)-1].At.UTC().Format(time.RFC3339)}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: x.Order, Transaction: t}, Escrow: x.ECML()}, nil
}

// Answer is an escrow as a merchant reads it from an answer.
type Answer struct {
	Order     string
	Reference string
	Amount    ecml.Money
	State     State
	Carrier   string
	Tracking  string
	ConfirmBy time.Time
	Reason    string
	Auto      bool
	// History is the last changes (escrow:status): "kind@time" words.
	History []string
}

// AnswerFrom reads an answer payload (the merchant's side).
func AnswerFrom(p *ecml.Payload) (*Answer, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil {
		return nil, errors.New("escrow: the answer has no Transaction")
	}
	t := p.Ecom.Transaction
	a := &Answer{Order: p.Ecom.ConsumerOrderID}
	if m, err := t.Money(); err == nil {
		a.Amount = m
	}
	if t.Code != nil {
		a.Reference = t.Code.Approval
	}
	if t.Data != nil && t.Data.Response != nil {
		a.State = State(t.Data.Response.Value)
	}
	if t.Data != nil && t.Data.PrivateUse != nil && t.Data.PrivateUse.Value != "" {
		a.History = strings.Fields(t.Data.PrivateUse.Value)
	}
	if k := p.Escrow; k != nil {
		a.Carrier, a.Tracking, a.Reason, a.Auto = k.Carrier, k.Tracking, k.Reason, k.Auto == "true"
		if k.State != "" {
			a.State = State(k.State)
		}
		if k.ConfirmBy != "" {
			c, err := time.Parse(time.RFC3339, k.ConfirmBy)
			if err != nil {
				return nil, fmt.Errorf("escrow: kx:Escrow/@ConfirmBy: %w", err)
			}
			a.ConfirmBy = c
		}
	}
	if a.Reference == "" || a.State == "" {
		return nil, errors.New("escrow: the answer lacks the reference or the state")
	}
	return a, nil
}
