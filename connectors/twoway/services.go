package twoway

import (
	"context"
	"errors"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The KECIS services of the 2-WAY transfer (KECIS §15.5.1), offered by
// the remitter's bank (role bank).
const (
	// ServiceRequest is twoway:request over HTTP-POST (§10.2): a merchant
	// or another bank sends the remitter's browser to the bank's page
	// (PageConfig.Front).
	ServiceRequest = saml.ServicePrefix + "twoway:request"
	// ServiceStatus is twoway:status over SOAP (StatusService).
	ServiceStatus = saml.ServicePrefix + "twoway:status"
)

// objectTransfer is the requester's object (KECIS §13.3): its order.
const objectTransfer = "twoway:transfer"

// NoSuchRequest is the answer to a status of an order the caller never
// requested (or another requester's: the same answer, KECIS §13.3).
var NoSuchRequest = saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "no such transfer request"}

// Objects lists the objects a twoway payload names (KECIS §13.3): the
// requester's order (Ecom/@ConsumerOrderID, its own reference).
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" {
		return nil
	}
	return []connectors.ObjectRef{{Kind: objectTransfer, ID: p.Ecom.ConsumerOrderID, PerOwner: true}}
}

// A request creates the requester's transfer (claimed when the page
// receives it, connectors.Handler.ReceiveFront); a status reads its own.
func init() {
	connectors.RegisterObjectRule(ServiceRequest, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchRequest})
	connectors.RegisterObjectRule(ServiceStatus, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchRequest})
}

// PublicState is the state a requester sees (KECIS §15.5.1): the engine's
// steps in flight are folded into the state that precedes the next
// decision — texting into awaiting-reply (the remitter has confirmed), the
// execution after the payee's reply (confirmed, debited, reversing) into
// awaiting-reply until it ends — and failed (the payee's account does not
// exist, or the remitter's bank refused the debit) is refused.
func PublicState(s State) string {
	switch s {
	case Texting, Confirmed, Debited, Reversing:
		return string(AwaitingReply)
	case Failed:
		return string(Refused)
	}
	return string(s)
}

// StatusService is twoway:status (KECIS §15.5.1) as an SDK function:
// the state of the caller's request by its order, and once completed the
// credit's reference. The object rule answers another caller's order as
// unknown before it runs; the function looks the order up under the
// caller again (defence in depth).
func StatusService(e *Engine, fs FrontStore) connectors.ServiceFunc {
	return func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
		p := r.Payload
		if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" {
			return nil, connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, "Ecom/@ConsumerOrderID is required")
		}
		f, err := fs.FrontByOrder(ctx, r.Merchant(), p.Ecom.ConsumerOrderID)
		if errors.Is(err, ErrNotFound) {
			return &connectors.Response{Status: NoSuchRequest}, nil
		}
		if err != nil {
			return nil, err
		}
		state, approval := "", ""
		switch {
		case f.Transfer != "":
			req, err := e.Lookup(ctx, "", f.Transfer)
			if err != nil {
				return nil, err
			}
			state = PublicState(req.State)
			if req.State == Completed {
				approval = req.CreditRef
			}
		case f.AnswerState != "":
			state = f.AnswerState // declined or expired before it started
		case !e.now().Before(f.Expires):
			state = string(Expired)
		default:
			return &connectors.Response{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending,
				Message: "the remitter has not yet confirmed the request at the bank"}}, nil
		}
		return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: statePayload(f, state, approval)}, nil
	}
}

// statePayload is an answer's payload: the order, the amount, the state
// and the reference.
func statePayload(f *Front, state, approval string) *ecml.Payload {
	amount, _ := ecml.FormatAmount(f.Amount)
	t := &ecml.Transaction{Amount: amount, Currency: f.Amount.Currency, Data: &ecml.Data{Response: &ecml.Text{Value: state}}}
	if approval != "" {
		t.Code = &ecml.Code{Approval: approval}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: f.Order, Transaction: t}}
}
