package banking_test

import (
	"context"
	"slices"
	"testing"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// wire writes p into a kecis:Payload, validates it and parses it back.
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

func TestRoundTrips(t *testing.T) {
	req := &banking.CreditRequest{Reference: "TR-1", Amount: ecml.Money{Minor: 15000, Currency: "KRW"}, PayeeBank: "081",
		PayeeAccount: "081-123-456789", RemitterBank: "004", RemitterName: "홍길동",
		Transfer: &ecml.Transfer{Purpose: ecml.PurposePhishingPrevention}, IdempotencyKey: "k"}
	p, err := banking.CreditRequestPayload(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := banking.CreditFrom(&connectors.Request{Issuer: "https://a.test", IdempotencyKey: "k", Payload: wire(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	got.Caller = ""
	if got.Reference != req.Reference || got.Amount != req.Amount || got.PayeeAccount != req.PayeeAccount ||
		got.RemitterBank != "004" || got.RemitterName != "홍길동" || got.Transfer.Purpose != ecml.PurposePhishingPrevention {
		t.Fatalf("%+v", got)
	}
	c := &banking.Credit{Reference: "TR-1", CreditRef: "C123", Amount: req.Amount, State: banking.StateCredited}
	cp, err := banking.CreditPayload(c)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := banking.CreditFromPayload(wire(t, cp)); err != nil || *back != *c {
		t.Fatalf("%+v %v", back, err)
	}
	h := &banking.Holder{BankCode: "081", Name: "김영희"}
	if back, err := banking.HolderFromPayload(wire(t, banking.HolderPayload(h))); err != nil || *back != *h {
		t.Fatalf("%+v %v", back, err)
	}
	hr, err := banking.HolderFrom(&connectors.Request{Payload: wire(t, banking.HolderRequestPayload("081", "081123456789"))})
	if err != nil || hr.BankCode != "081" || hr.Account != "081123456789" {
		t.Fatalf("%+v %v", hr, err)
	}
}

func TestDecodingRefuses(t *testing.T) {
	for name, p := range map[string]*ecml.Payload{
		"no payload":   nil,
		"no reference": {Ecom: &ecml.Ecom{}},
		"no amount":    {Ecom: &ecml.Ecom{ConsumerOrderID: "T"}, BankAccounts: []*ecml.BankAccount{{BankCode: "081", Role: "payee", AccountNumber: "123456"}}},
		"no remitter": {Ecom: &ecml.Ecom{ConsumerOrderID: "T", Transaction: &ecml.Transaction{Amount: "1", Currency: "KRW"}},
			BankAccounts: []*ecml.BankAccount{{BankCode: "081", Role: "payee", AccountNumber: "123456"}}},
		"no payee number": {Ecom: &ecml.Ecom{ConsumerOrderID: "T", Transaction: &ecml.Transaction{Amount: "1", Currency: "KRW"}},
			BankAccounts: []*ecml.BankAccount{{BankCode: "081", Role: "payee", Holder: "x"}, {BankCode: "004", Role: "remitter", Holder: "y"}}},
	} {
		_, err := banking.CreditFrom(&connectors.Request{Payload: p})
		if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.CodeInvalidPayload {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := banking.HolderFrom(&connectors.Request{Payload: &ecml.Payload{}}); err == nil {
		t.Fatal("a holder inquiry without an account")
	}
}

type dir map[string]*metadata.EntityDescriptor

func (d dir) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

type holders struct{ calls int }

func (h *holders) HolderInquiry(context.Context, *banking.HolderRequest) (*banking.Holder, error) {
	h.calls++
	return &banking.Holder{BankCode: "081", Name: "김영희"}, nil
}

// TestServices: a Holders gets the holder inquiry only; the caller must
// have role bank in its metadata, else the provider is not run.
func TestServices(t *testing.T) {
	h := &holders{}
	d := dir{"https://bank.test": {EntityID: "https://bank.test", Roles: []metadata.Role{metadata.RoleBank}},
		"https://shop.test": {EntityID: "https://shop.test", Roles: []metadata.Role{metadata.RoleMerchant}}}
	m := banking.Services(h, d)
	if keys := slices.Sorted(func(y func(string) bool) {
		for k := range m {
			if !y(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{banking.ServiceHolderInquiry}) {
		t.Fatalf("%v", keys)
	}
	p := banking.HolderRequestPayload("081", "081123456789")
	for caller, want := range map[string]string{"https://shop.test": saml.StatusRequestDenied, "https://nobody.test": saml.StatusRequestDenied} {
		_, err := m[banking.ServiceHolderInquiry](context.Background(), &connectors.Request{Issuer: caller, Payload: p})
		if st, ok := connectors.AsStatus(err); !ok || st.SubCode != want {
			t.Errorf("%s: %v", caller, err)
		}
	}
	if h.calls != 0 {
		t.Fatal("the provider ran for a non-bank")
	}
	resp, err := m[banking.ServiceHolderInquiry](context.Background(), &connectors.Request{Issuer: "https://bank.test", Payload: p})
	if err != nil || h.calls != 1 || resp.Payload.BankAccounts[0].Holder != "김영희" {
		t.Fatalf("%+v %v", resp, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Services of nothing did not panic")
		}
	}()
	banking.Services(struct{}{}, d)
}
