// Package phone is the KECIS phone service (KECIS §15.10, "phone"): the
// holder check, whether a phone number belongs to a name, which a bank
// asks a mobile carrier before a payee-confirmed transfer (KECIS §15.5).
// The carrier answers match, close-match, no-match or not-possible, and
// never the holder's name.
//
// A provider (a carrier) implements HolderChecker; Services turns it into
// the SDK's functions. Callers (banks) use Client.
//
// ECML mapping:
//
//	request  Ecom/BillTo/Telecom/Phone/@Number  the phone number (any form the carrier reads: 010-1234-5678, +821012345678)
//	         Ecom/BillTo/Postal/Name/@Last, @First, @Middle
//	                                            the name to check, as written, family name first:
//	                                            its words in Last, First, then Middle (the rest)
//	response Transaction/Data/Response          match | close-match | no-match | not-possible
//
// The service changes no state: it takes no idempotency key and no object
// is created or named (KECIS §13.3).
package phone

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// ServiceHolderCheck is the holder check's service URI.
const ServiceHolderCheck = saml.ServicePrefix + "phone:holder-check"

// Outcome is the answer of a holder check (KECIS §15.10).
type Outcome string

const (
	// Match: the number is an active line and the name its holder's.
	Match Outcome = "match"
	// CloseMatch: the names differ by one character, or by the order of
	// family and given name. The caller shows its own record of the name
	// (the account holder's), never one from the carrier.
	CloseMatch Outcome = "close-match"
	// NoMatch: another name.
	NoMatch Outcome = "no-match"
	// NotPossible: the number is unknown to the carrier, suspended or
	// terminated.
	NotPossible Outcome = "not-possible"
)

// Valid reports whether o is one of the four outcomes.
func (o Outcome) Valid() bool {
	return o == Match || o == CloseMatch || o == NoMatch || o == NotPossible
}

// HolderCheckRequest asks whether Phone belongs to Name.
type HolderCheckRequest struct {
	// Caller is the caller's entityID (set by the SDK from the request).
	Caller string
	// Phone is Ecom/BillTo/Telecom/Phone/@Number as sent.
	Phone string
	// Name is the name to check: Ecom/BillTo/Postal/Name's Last, First
	// and Middle joined by spaces.
	Name string
}

// String describes the request with the number masked and without the
// name.
func (r HolderCheckRequest) String() string {
	return fmt.Sprintf("{Caller:%s Phone:%s Name:[%d runes]}", r.Caller, sms.MaskPhone(r.Phone), len([]rune(r.Name)))
}

// GoString is String: %#v masks the number too.
func (r HolderCheckRequest) GoString() string { return "phone.HolderCheckRequest" + r.String() }

// LogValue logs the request with the number masked and without the name.
func (r HolderCheckRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("caller", r.Caller), slog.String("phone", sms.MaskPhone(r.Phone)))
}

// HolderChecker answers holder checks: a carrier.
type HolderChecker interface {
	CheckHolder(ctx context.Context, req *HolderCheckRequest) (Outcome, error)
}

// InvalidPayload refuses a request that lacks the number or the name
// (Requester / InvalidPayload).
func InvalidPayload(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, msg)
}

// RequestDenied refuses a caller the service does not admit (Requester /
// RequestDenied, KECIS §13.2): a provider's own check of the caller's
// role, behind the SDK's.
func RequestDenied(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.StatusRequestDenied, msg)
}

// Services returns the SDK function of the holder check over svc.
func Services(svc HolderChecker) map[string]connectors.ServiceFunc {
	return map[string]connectors.ServiceFunc{
		ServiceHolderCheck: func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			req, err := RequestFrom(r)
			if err != nil {
				return nil, err
			}
			out, err := svc.CheckHolder(ctx, req)
			if err != nil {
				return nil, err
			}
			if !out.Valid() {
				return nil, fmt.Errorf("phone: the provider answered the outcome %q", out)
			}
			return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: OutcomePayload(out)}, nil
		},
	}
}

// RequestFrom reads a holder check from an SDK request.
func RequestFrom(r *connectors.Request) (*HolderCheckRequest, error) {
	var b *ecml.Address
	if p := r.Payload; p != nil && p.Ecom != nil {
		b = p.Ecom.BillTo
	}
	var number, name string
	if b != nil && b.Telecom != nil && b.Telecom.Phone != nil {
		number = strings.TrimSpace(b.Telecom.Phone.Number)
	}
	if b != nil && b.Postal != nil && b.Postal.Name != nil {
		name = nameOf(b.Postal.Name)
	}
	switch {
	case number == "":
		return nil, InvalidPayload("a holder check needs Ecom/BillTo/Telecom/Phone/@Number")
	case name == "":
		return nil, InvalidPayload("a holder check needs Ecom/BillTo/Postal/Name (@Last, @First)")
	}
	return &HolderCheckRequest{Caller: r.Merchant(), Phone: number, Name: name}, nil
}

// nameOf joins Last, First and Middle, family name first.
func nameOf(n *ecml.Name) string {
	var parts []string
	for _, p := range []string{n.Last, n.First, n.Middle} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

// RequestPayload is the request payload of a holder check: number in
// Ecom/BillTo/Telecom/Phone/@Number, name in Ecom/BillTo/Postal/Name,
// its words as written (family name first) in Last, First, then the rest
// run together in Middle — the carrier's comparison ignores spaces, and
// an XML NMTOKEN holds none.
func RequestPayload(number, name string) (*ecml.Payload, error) {
	words := strings.Fields(name)
	if strings.TrimSpace(number) == "" || len(words) == 0 {
		return nil, fmt.Errorf("phone: a holder check needs a number and a name")
	}
	n := &ecml.Name{Last: words[0]}
	if len(words) > 1 {
		n.First = words[1]
	}
	if len(words) > 2 {
		n.Middle = strings.Join(words[2:], "")
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, BillTo: &ecml.Address{
		Postal:  &ecml.Postal{Name: n},
		Telecom: &ecml.Telecom{Phone: &ecml.Phone{Number: strings.TrimSpace(number)}},
	}}}, nil
}

// OutcomePayload is the answer payload of a holder check: the outcome in
// Transaction/Data/Response, nothing else.
func OutcomePayload(o Outcome) *ecml.Payload {
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion,
		Transaction: &ecml.Transaction{Data: &ecml.Data{Response: &ecml.Text{Value: string(o)}}}}}
}

// OutcomeFrom reads the outcome of an answer payload.
func OutcomeFrom(p *ecml.Payload) (Outcome, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil || p.Ecom.Transaction.Data == nil || p.Ecom.Transaction.Data.Response == nil {
		return "", fmt.Errorf("phone: the answer has no Transaction/Data/Response")
	}
	o := Outcome(p.Ecom.Transaction.Data.Response.Value)
	if !o.Valid() {
		return "", fmt.Errorf("phone: the answer's outcome %q is none of match, close-match, no-match, not-possible", o)
	}
	return o, nil
}

// Client calls a carrier's holder check through the hub.
type Client struct {
	C *connectors.Client
}

// Result is an answer: the outcome when the carrier succeeded, and the
// verified result (its status tells a refusal).
type Result struct {
	Outcome Outcome
	Result  *connectors.Result
}

// OK reports success.
func (r *Result) OK() bool { return r.Result != nil && r.Result.Status.OK() }

// CheckHolder asks the carrier recipient whether number belongs to name.
func (c *Client) CheckHolder(ctx context.Context, recipient, number, name string) (*Result, error) {
	p, err := RequestPayload(number, name)
	if err != nil {
		return nil, err
	}
	res, err := c.C.Do(ctx, connectors.Call{Recipient: recipient, Service: ServiceHolderCheck, Payload: p})
	if err != nil {
		return nil, err
	}
	out := &Result{Result: res}
	if res.Status.OK() {
		if out.Outcome, err = OutcomeFrom(res.Payload); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var _ HolderChecker = HolderCheckerFunc(nil)

// HolderCheckerFunc is a function that is a HolderChecker.
type HolderCheckerFunc func(ctx context.Context, req *HolderCheckRequest) (Outcome, error)

// CheckHolder implements HolderChecker.
func (f HolderCheckerFunc) CheckHolder(ctx context.Context, req *HolderCheckRequest) (Outcome, error) {
	return f(ctx, req)
}
