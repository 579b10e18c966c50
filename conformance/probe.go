package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Card service URIs (connectors/card names them too; the suite keeps its
// own copy to test participants as black boxes).
var (
	svcApprove = saml.ServiceURI("card", "approve")
	svcCancel  = saml.ServiceURI("card", "cancel")
	svcRefund  = saml.ServiceURI("card", "refund")
	svcInquire = saml.ServiceURI("card", "inquire")
)

// genericCard is the well-known test number, used where a probe needs a
// sensitive element and the participant is no card provider.
const genericCard = "4111111111111111"

// OrderID returns this run's order ID for label.
func (e *Env) OrderID(label string) string { return "conf-" + e.RunID + "-" + label }

// Key returns this run's idempotency key for label.
func (e *Env) Key(label string) string { return "conf-" + e.RunID + "-" + label }

// probeService is the service the generic modules probe with: the card
// service's inquire when declared, else a declared read-only service, else
// the first declared service.
func (e *Env) probeService() (string, error) {
	ed := e.Descriptor()
	if ed == nil || len(ed.Services) == 0 {
		return "", errors.New("the participant declares no service to probe")
	}
	if e.Declares(svcInquire) {
		return svcInquire, nil
	}
	for _, s := range ed.Services {
		if !saml.IsMutation(s.Service) {
			return s.Service, nil
		}
	}
	return ed.Services[0].Service, nil
}

// ProbeRequest is a valid request the participant must verify and answer
// (its business outcome does not matter): a read-only inquiry for an order
// of this run.
func (e *Env) ProbeRequest(label string) (*saml.ServiceRequest, error) {
	svc, err := e.probeService()
	if err != nil {
		return nil, err
	}
	req, err := e.NewRequest(svc)
	if err != nil {
		return nil, err
	}
	if saml.IsMutation(svc) {
		req.IdempotencyKey = e.Key(label)
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: e.OrderID(label)}}
	if svc == svcHolderCheck {
		// A holder check without a number or a name is InvalidPayload
		// (KECIS §15.10): the probe asks of a number no carrier has.
		req.Payload.Ecom.BillTo = &ecml.Address{Postal: &ecml.Postal{Name: &ecml.Name{Last: "KECIS"}}, Telecom: &ecml.Telecom{Phone: &ecml.Phone{Number: "01000000000"}}}
	}
	return req, nil
}

// hasCardService reports whether the card module's approvals can be used.
func (e *Env) hasCardService() bool {
	return e.Declares(svcApprove) && e.Profile.Card != nil
}

// SensitiveRequest is a valid request carrying a sensitive element (a
// card): the card service's approve of the profile's test card when there
// is one, else the probe with the well-known test card added.
func (e *Env) SensitiveRequest(label string) (*saml.ServiceRequest, error) {
	if e.hasCardService() {
		tc := e.Profile.Card.Approve
		m, _ := ecml.ParseAmount(tc.Amount, e.Profile.Card.Currency)
		return e.ApproveRequest(label, tc, m)
	}
	req, err := e.ProbeRequest(label)
	if err != nil {
		return nil, err
	}
	req.Payload.Ecom.Payment = &ecml.Payment{Card: &ecml.Card{Number: genericCard, ExpDate: &ecml.Date{Month: "12", Year: "2030"}}}
	return req, nil
}

// ApproveRequest is a card approval of tc for amount, order and key named
// after label.
func (e *Env) ApproveRequest(label string, tc TestCard, amount ecml.Money) (*saml.ServiceRequest, error) {
	return e.purchaseRequest(svcApprove, label, tc, amount)
}

// purchaseRequest is a request of service paying amount with tc — a card
// approval, an amount authentication's start —, its order and key named
// after label, the card's BIN and last four digits as routing hints.
func (e *Env) purchaseRequest(service, label string, tc TestCard, amount ecml.Money) (*saml.ServiceRequest, error) {
	req, err := e.NewRequest(service)
	if err != nil {
		return nil, err
	}
	month, year, err := tc.expiry()
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(amount)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = e.Key(label)
	pan := ecml.PAN(tc.Number)
	if bin := pan.BIN(); bin != "" {
		req.Routing = &saml.Routing{CardBIN: bin, CardLast4: pan.Last4()}
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: e.OrderID(label),
		Payment:     &ecml.Payment{Card: &ecml.Card{Number: pan, ExpDate: &ecml.Date{Month: month, Year: year}}},
		Transaction: &ecml.Transaction{Amount: a, Currency: amount.Currency, Type: "credit"}}}
	return req, nil
}

// refRequest is a card cancel, refund or inquire naming an approval.
func (e *Env) refRequest(service, key, order, approval string, amount *ecml.Money) (*saml.ServiceRequest, error) {
	return e.refRequestAs(e.Tester, service, key, order, approval, amount)
}

// refRequestAs is refRequest from identity id.
func (e *Env) refRequestAs(id *Tester, service, key, order, approval string, amount *ecml.Money) (*saml.ServiceRequest, error) {
	req, err := e.NewRequestAs(id, service)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = key
	t := &ecml.Transaction{Type: "credit"}
	if approval != "" {
		t.Code = &ecml.Code{Approval: approval}
	}
	if amount != nil {
		if err := t.SetMoney(*amount); err != nil {
			return nil, err
		}
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Transaction: t}}
	return req, nil
}

// answerOf judges whether x is a verified answer from the participant
// itself (not the hub's status standing in for it) and says why not.
func (e *Env) answerOf(x *Exchange) error {
	switch {
	case x.Response == nil:
		return fmt.Errorf("no verified answer from the participant: %s", x.Describe())
	case x.Response.Issuer != e.Descriptor().EntityID:
		return fmt.Errorf("the answer came from %s, not the participant: %s (%s)", x.Response.Issuer, x.Describe(), x.Response.Status.Message)
	}
	return nil
}

// protocolRefusals are the second-level codes of refusals after
// verification (KECIS §5.3.2): an answer with one of these means the
// pipeline refused, whatever the service would have said.
var protocolRefusals = []string{
	saml.CodeInvalidMessage, saml.CodeInvalidTime, saml.CodeWrongDestination, saml.CodeReplay,
	saml.CodeNotAuthorized, saml.CodeInvalidPayload, saml.CodeDecryptionFailed,
	saml.CodeInvalidAuthenticationResult, saml.StatusRequestUnsupported,
	saml.StatusRequestVersionTooHigh, saml.StatusRequestVersionTooLow,
}

// acceptedByPipeline checks that a valid message got past the receive
// pipeline: a verified answer from the participant that is not a protocol
// refusal (its business outcome does not matter).
func (e *Env) acceptedByPipeline(x *Exchange) error {
	if err := e.answerOf(x); err != nil {
		return err
	}
	st := x.Response.Status
	if st.Code == saml.StatusVersionMismatch || slices.Contains(protocolRefusals, st.SubCode) {
		return fmt.Errorf("a valid request was refused by the receive pipeline: %s (%q)", x.Describe(), st.Message)
	}
	return nil
}

// rootID returns the ID attribute of a serialised message's root ("" when
// it does not parse).
func rootID(msg []byte) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(msg); err != nil || doc.Root() == nil {
		return ""
	}
	return doc.Root().SelectAttrValue("ID", "")
}

// describeStatus is a status in short form.
func describeStatus(st saml.Status) string {
	s := st.Short()
	if st.Message != "" {
		s += fmt.Sprintf(" (%q)", st.Message)
	}
	return s
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }
