package escrow

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// wire writes p into a kecis:Payload, validates it and parses it back, as
// the SDK does between the merchant and the bank.
func wire(t *testing.T, p *ecml.Payload) *ecml.Payload {
	t.Helper()
	if problems := p.Validate(ecml.ValidateOptions{RequireSchemaVersion: true}); len(problems) > 0 {
		t.Fatalf("the payload does not validate: %v", problems)
	}
	c := etree.NewElement("kecis:Payload")
	c.CreateAttr("xmlns:kecis", saml.NSKECIS)
	if err := p.AppendTo(c); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(c)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	root, err := saml.ParseDocument(b, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ecml.ParsePayload(root)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

type dir map[string]*metadata.EntityDescriptor

func (d dir) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

var federation = dir{
	shopID:                  {EntityID: shopID, Roles: []metadata.Role{metadata.RoleMerchant}},
	shop2ID:                 {EntityID: shop2ID, Roles: []metadata.Role{metadata.RoleMerchant}},
	"https://tester.test":   {EntityID: "https://tester.test", Roles: []metadata.Role{metadata.RoleTester}},
	"https://pg.test/kecis": {EntityID: "https://pg.test/kecis", Roles: []metadata.Role{metadata.RolePG}},
}

// call runs a service as the SDK would: the request's payload through
// the wire, the answer's too.
func call(t *testing.T, m map[string]connectors.ServiceFunc, service, caller, key string, p *ecml.Payload) (*connectors.Response, error) {
	t.Helper()
	resp, err := m[service](ctx, &connectors.Request{ID: "_r", Service: service, Issuer: caller, IdempotencyKey: key, Payload: wire(t, p)})
	if err == nil && resp.Payload != nil {
		resp.Payload = wire(t, resp.Payload)
	}
	return resp, err
}

// answer reads a successful answer: answer(t)(call(…)).
func answer(t *testing.T) func(*connectors.Response, error) *Answer {
	return func(resp *connectors.Response, err error) *Answer {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Status.OK() {
			t.Fatalf("status %+v", resp.Status)
		}
		a, err := AnswerFrom(resp.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func status(t *testing.T, resp *connectors.Response, err error, sub, msg string) {
	t.Helper()
	if err != nil {
		refused(t, err, sub, msg)
		return
	}
	if resp.Status.SubCode != sub || !strings.Contains(resp.Status.Message, msg) {
		t.Fatalf("want %s %q, got %+v", sub, msg, resp.Status)
	}
}

// TestServices: the merchant's side over the SDK functions — open, ship,
// status, refund, collect; the answers carry the reference, the state and
// kx:Escrow, never an account number; wrong states are PolicyViolation,
// another merchant's escrow "no such escrow", a caller that is no merchant
// is refused before the engine runs.
func TestServices(t *testing.T) {
	r := newRig(t)
	m := Services(r.e, federation)
	if keys := slices.Sorted(func(y func(string) bool) {
		for k := range m {
			if !y(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{ServiceOpen, ServiceRefund, ServiceShip, ServiceStatus, ServiceCollect}) {
		t.Fatalf("%v", keys)
	}
	order := &Order{Order: "ORD-1", Amount: krw(150_000), ShipTo: &ecml.Address{Postal: &ecml.Postal{City: &ecml.Text{Value: "Seoul"}, CountryCode: "KR"}},
		SettlementBank: ourBank, SettlementAccount: shopAccount, PayeeName: "한빛상사", IdempotencyKey: "k1"}
	op, err := OrderPayload(order)
	if err != nil {
		t.Fatal(err)
	}
	req, err := OpenFrom(&connectors.Request{Issuer: shopID, IdempotencyKey: "k1", Payload: wire(t, op)})
	if err != nil || !req.Goods || req.SettlementAccount != shopAccount || req.PayeeName != "한빛상사" || req.Order != "ORD-1" {
		t.Fatalf("%+v %v", req, err)
	}

	for caller, sub := range map[string]string{"https://pg.test/kecis": saml.StatusRequestDenied, "https://nobody.test": saml.StatusRequestDenied} {
		resp, err := call(t, m, ServiceOpen, caller, "k0", op)
		status(t, resp, err, sub, "")
	}
	if n := len(r.all(t)); n != 0 {
		t.Fatalf("the engine ran for a non-merchant: %d escrows", n)
	}

	a := answer(t)(call(t, m, ServiceOpen, shopID, "k1", op))
	if a.State != AwaitingPayment || a.Order != "ORD-1" || a.Amount != krw(150_000) || !ValidReference(a.Reference) {
		t.Fatalf("%+v", a)
	}
	ref := a.Reference
	// The same open again answers the same escrow.
	if b := answer(t)(call(t, m, ServiceOpen, shopID, "k1", op)); b.Reference != ref {
		t.Fatal("opened twice")
	}

	ship := RefPayload(Ref{Reference: ref})
	ship.Escrow = &ecml.Escrow{State: "shipped", Carrier: "CJ대한통운", Tracking: "601234567890"}
	resp, err := call(t, m, ServiceShip, shopID, "k2", ship)
	status(t, resp, err, saml.CodePolicyViolation, "not paid")

	r.ok(t)(r.e.Pay(ctx, buyer, ref, buyerAccount))
	r.clock.Advance(time.Hour)
	a = answer(t)(call(t, m, ServiceShip, shopID, "k2", ship))
	if a.State != Shipped || a.Carrier != "CJ대한통운" || a.Tracking != "601234567890" || !a.ConfirmBy.Equal(at0.Add(time.Hour+DefaultAutoConfirmAfter)) {
		t.Fatalf("%+v", a)
	}
	noShip := RefPayload(Ref{Reference: ref})
	resp, err = call(t, m, ServiceShip, shopID, "k3", noShip)
	status(t, resp, err, saml.CodeInvalidPayload, "Carrier")

	// Another merchant: not found, by reference or by order.
	for _, p := range []*ecml.Payload{RefPayload(Ref{Reference: ref}), RefPayload(Ref{Order: "ORD-1"})} {
		resp, err = call(t, m, ServiceStatus, shop2ID, "", p)
		status(t, resp, err, saml.CodeDeclined, "no such escrow")
	}

	r.ok(t)(r.e.Dispute(ctx, buyer, ref, "파손"))
	resp, err = call(t, m, ServiceStatus, shopID, "", RefPayload(Ref{Order: "ORD-1"}))
	a = answer(t)(resp, err)
	if a.State != Disputed || a.Reason != "파손" || a.Reference != ref ||
		strings.Join(a.History, " ") != "opened@2026-12-03T10:00:00Z funded@2026-12-03T10:00:00Z shipped@2026-12-03T11:00:00Z disputed@2026-12-03T11:00:00Z" {
		t.Fatalf("%+v", a)
	}
	if resp.Payload.Ecom.Transaction.Date.Value != "2026-12-03T11:00:00Z" {
		t.Fatalf("the last change %+v", resp.Payload.Ecom.Transaction.Date)
	}
	a = answer(t)(call(t, m, ServiceRefund, shopID, "k4", RefPayload(Ref{Reference: ref})))
	if a.State != Refunded {
		t.Fatalf("%+v", a)
	}
	resp, err = call(t, m, ServiceShip, shopID, "k5", ship)
	status(t, resp, err, saml.CodePolicyViolation, "refunded")

	// A collect: no kx:Escrow in its answers; the tester may call.
	order.Order, order.IdempotencyKey, order.ShipTo = "ORD-2", "k6", nil
	cp, _ := OrderPayload(order)
	resp, err = call(t, m, ServiceCollect, "https://tester.test", "k6", cp)
	a = answer(t)(resp, err)
	if a.State != AwaitingPayment || resp.Payload.Escrow != nil {
		t.Fatalf("%+v", resp.Payload)
	}
	x, _ := r.e.Get(ctx, a.Reference)
	if x.Hold || x.Goods || x.Merchant != "https://tester.test" {
		t.Fatalf("%+v", x)
	}

	// No answer holds an account number.
	for _, p := range []*ecml.Payload{resp.Payload} {
		if len(p.BankAccounts) != 0 {
			t.Fatal("an answer names an account")
		}
	}
}

// TestServicesDecoding: requests that lack what their operation needs are
// InvalidPayload.
func TestServicesDecoding(t *testing.T) {
	tx := &ecml.Transaction{Amount: "1000", Currency: "KRW"}
	settle := []*ecml.BankAccount{{BankCode: ourBank, Role: RoleSettlement, AccountNumber: shopAccount}}
	for name, p := range map[string]*ecml.Payload{
		"no payload":       nil,
		"no order":         {Ecom: &ecml.Ecom{Transaction: tx}, BankAccounts: settle},
		"no amount":        {Ecom: &ecml.Ecom{ConsumerOrderID: "O"}, BankAccounts: settle},
		"zero amount":      {Ecom: &ecml.Ecom{ConsumerOrderID: "O", Transaction: &ecml.Transaction{Amount: "0", Currency: "KRW"}}, BankAccounts: settle},
		"no settlement":    {Ecom: &ecml.Ecom{ConsumerOrderID: "O", Transaction: tx}},
		"payee, not settl": {Ecom: &ecml.Ecom{ConsumerOrderID: "O", Transaction: tx}, BankAccounts: []*ecml.BankAccount{{BankCode: ourBank, Role: "payee", AccountNumber: shopAccount}}},
		"no number":        {Ecom: &ecml.Ecom{ConsumerOrderID: "O", Transaction: tx}, BankAccounts: []*ecml.BankAccount{{BankCode: ourBank, Role: RoleSettlement, Holder: "x"}}},
	} {
		_, err := OpenFrom(&connectors.Request{Issuer: shopID, Payload: p})
		refused(t, err, saml.CodeInvalidPayload, "")
		_ = name
	}
	if _, err := RefFrom(&ecml.Payload{Ecom: &ecml.Ecom{}}); err == nil {
		t.Fatal("a ref of nothing")
	}
	if r, err := RefFrom(RefPayload(Ref{Reference: "EX", Order: "O"})); err != nil || r.Reference != "EX" || r.Order != "O" {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestObjectRules: open and collect create the merchant's order; ship,
// refund and status act on the caller's own, answering "no such escrow".
func TestObjectRules(t *testing.T) {
	for _, s := range []string{ServiceOpen, ServiceCollect, ServiceShip, ServiceRefund, ServiceStatus} {
		rule, ok := connectors.ObjectRuleOf(s)
		if !ok || rule.NotFound != NoSuchEscrow || rule.Creates != (s == ServiceOpen || s == ServiceCollect) {
			t.Errorf("%s: %+v %v", s, rule, ok)
		}
	}
	refs := Objects(RefPayload(Ref{Reference: "EAAAAAAAAAAA", Order: "O-1"}))
	if len(refs) != 2 || !refs[0].PerOwner || refs[0].ID != "O-1" || refs[1].PerOwner || refs[1].ID != "EAAAAAAAAAAA" {
		t.Fatalf("%+v", refs)
	}
}
