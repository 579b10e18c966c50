package card_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// wire writes p into a kecis:Payload and parses it back, as the receiving
// side sees it.
func wire(t *testing.T, p *ecml.Payload) *ecml.Payload {
	t.Helper()
	c := etree.NewElement("kecis:Payload")
	c.CreateAttr("xmlns:kecis", saml.NSKECIS)
	if err := p.AppendTo(c); err != nil {
		t.Fatal(err)
	}
	if problems := p.Validate(ecml.ValidateOptions{RequireSchemaVersion: true}); len(problems) > 0 {
		t.Fatalf("the approval payload does not validate: %v", problems)
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

func TestApprovalRoundTrip(t *testing.T) {
	for _, a := range []card.Approval{
		{ApprovalNumber: "30012345", OrderID: "ORD-1", Amount: ecml.Money{Minor: 15000, Currency: "KRW"}, State: card.Approved},
		{ApprovalNumber: "30012346", OrderID: "ORD-2", Amount: ecml.Money{Minor: 50000, Currency: "KRW"},
			Refunded: ecml.Money{Minor: 12000, Currency: "KRW"}, State: card.PartiallyRefunded},
		{ApprovalNumber: "A1", Amount: ecml.Money{Minor: 12345, Currency: "USD"}, Refunded: ecml.Money{Minor: 12345, Currency: "USD"}, State: card.Refunded},
		{ApprovalNumber: "A2", OrderID: "ORD-3", Amount: ecml.Money{Minor: 1000, Currency: "KRW"}, State: card.Cancelled},
	} {
		p := card.ApprovalPayload(&a)
		got, err := card.ApprovalFrom(wire(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if *got != a {
			t.Errorf("round trip: %+v, want %+v", *got, a)
		}
	}
	// The refunded amount travels in ECML amount form.
	p := card.ApprovalPayload(&card.Approval{ApprovalNumber: "A1", Amount: ecml.Money{Minor: 12345, Currency: "USD"}, Refunded: ecml.Money{Minor: 2345, Currency: "USD"}, State: card.PartiallyRefunded})
	if d := p.Ecom.Transaction.Data; d.PrivateUse == nil || d.PrivateUse.Value != "refunded=23.45" || d.Response.Value != "partially-refunded" || p.Ecom.Transaction.Amount != "123.45" {
		t.Fatalf("%+v", d)
	}
	if _, err := card.ApprovalFrom(nil); err == nil {
		t.Fatal("ApprovalFrom(nil) succeeded")
	}
	if _, err := card.ApprovalFrom(&ecml.Payload{Ecom: &ecml.Ecom{}}); err == nil {
		t.Fatal("an answer without a Transaction was read as an approval")
	}
}

type approveOnly struct{ got *card.ApproveRequest }

func (s *approveOnly) Approve(_ context.Context, r *card.ApproveRequest) (*card.Approval, error) {
	s.got = r
	return &card.Approval{ApprovalNumber: "A1", OrderID: r.OrderID, Amount: r.Amount, State: card.Approved}, nil
}

type withInquire struct{ approveOnly }

func (*withInquire) Inquire(context.Context, *card.InquireRequest) (*card.Approval, error) {
	return nil, card.NotFound("no such approval")
}

type full struct {
	withInquire
	cancel *card.CancelRequest
	refund *card.RefundRequest
}

// verifier is a provider with verification approvals.
type verifier struct {
	full
	verification *card.VerificationRequest
}

func (v *verifier) ApproveVerification(_ context.Context, r *card.VerificationRequest) (*card.Approval, error) {
	v.verification = r
	// A careless provider answers the amount: the SDK drops it.
	return &card.Approval{ApprovalNumber: "V1", OrderID: r.OrderID, Amount: r.Challenge, Refunded: r.Challenge, State: card.Approved}, nil
}

func (f *full) Cancel(_ context.Context, r *card.CancelRequest) (*card.Approval, error) {
	f.cancel = r
	return &card.Approval{ApprovalNumber: r.ApprovalNumber, State: card.Cancelled}, nil
}

func (f *full) Refund(_ context.Context, r *card.RefundRequest) (*card.Approval, error) {
	f.refund = r
	return nil, errors.New("ledger unavailable")
}

func TestServicesDetectsOptionalInterfaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  card.Service
		want []string
	}{
		{"approve only", &approveOnly{}, []string{card.ServiceApprove}},
		{"approve and inquire", &withInquire{}, []string{card.ServiceApprove, card.ServiceInquire}},
		{"everything", &full{}, []string{card.ServiceApprove, card.ServiceCancel, card.ServiceInquire, card.ServiceRefund}},
		{"with verification approvals", &verifier{}, []string{card.ServiceApprove, card.ServiceApproveVerification,
			card.ServiceCancel, card.ServiceInquire, card.ServiceRefund}},
	} {
		var got []string
		for k := range card.Services(tc.svc) {
			got = append(got, k)
		}
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if card.ServiceApprove != "urn:kecis:service:card:approve" || card.ServiceRefund != "urn:kecis:service:card:refund" ||
		card.ServiceApproveVerification != "urn:kecis:service:card:approve-verification" {
		t.Fatal("service URIs")
	}
}

// TestServicesMapRequests: the functions read the ECML the SDK decrypted
// and validated, and refuse what a card service cannot read.
func TestServicesMapRequests(t *testing.T) {
	ctx := context.Background()
	svc := &full{}
	m := card.Services(svc)

	p := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "ORD-1",
		Payment:     &ecml.Payment{Card: &ecml.Card{Number: "4111111111111111", Name: "HONG GILDONG", Type: "VISA", ExpDate: &ecml.Date{Month: "12", Year: "2030"}}},
		Transaction: &ecml.Transaction{Amount: "15000", Currency: "KRW", Type: "credit"}},
		KeyIn: &ecml.KeyIn{PasswordPrefix: "12", BirthDate: "900101"}}
	resp, err := m[card.ServiceApprove](ctx, &connectors.Request{Issuer: "https://hub.test/kecis", OnBehalfOf: "https://shop.test/kecis", IdempotencyKey: "k1", Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	got := svc.got
	if got.Merchant != "https://shop.test/kecis" || got.OrderID != "ORD-1" || got.Amount != (ecml.Money{Minor: 15000, Currency: "KRW"}) ||
		got.IdempotencyKey != "k1" || got.Card.Number.Reveal() != "4111111111111111" || got.Card.ExpMonth != "12" || got.Card.ExpYear != "2030" ||
		got.Card.Name != "HONG GILDONG" || got.Card.Type != "VISA" || got.KeyIn.PasswordPrefix.Reveal() != "12" || got.KeyIn.BirthDate.Reveal() != "900101" {
		t.Fatalf("%#v", got)
	}
	if a, err := card.ApprovalFrom(resp.Payload); err != nil || !resp.Status.OK() || a.ApprovalNumber != "A1" {
		t.Fatalf("%+v, %v", resp, err)
	}

	ref := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, Transaction: &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: "A1"}}}}
	if _, err := m[card.ServiceCancel](ctx, &connectors.Request{Issuer: "https://shop.test/kecis", IdempotencyKey: "k2", Payload: ref}); err != nil {
		t.Fatal(err)
	}
	if svc.cancel.ApprovalNumber != "A1" || svc.cancel.Merchant != "https://shop.test/kecis" || svc.cancel.IdempotencyKey != "k2" {
		t.Fatalf("%+v", svc.cancel)
	}
	// A provider error passes through (the SDK makes it ProviderUnavailable).
	refund := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, Transaction: &ecml.Transaction{Type: "credit", Amount: "5000", Currency: "KRW", Code: &ecml.Code{Approval: "A1"}}}}
	if _, err := m[card.ServiceRefund](ctx, &connectors.Request{Issuer: "https://shop.test/kecis", IdempotencyKey: "k3", Payload: refund}); err == nil || svc.refund.Amount != (ecml.Money{Minor: 5000, Currency: "KRW"}) {
		t.Fatalf("%v, %+v", err, svc.refund)
	}
	if _, ok := connectors.AsStatus(errors.New("x")); ok {
		t.Fatal("AsStatus of a plain error")
	}
	// A refund naming no amount reaches the provider with a zero amount:
	// it refunds a verification approval whole, and the provider refuses
	// it for any other (KECIS §15.2).
	svc.refund = nil
	if _, err := m[card.ServiceRefund](ctx, &connectors.Request{Issuer: "https://shop.test/kecis", IdempotencyKey: "k4", Payload: ref}); err == nil ||
		svc.refund == nil || svc.refund.Amount != (ecml.Money{}) || svc.refund.ApprovalNumber != "A1" {
		t.Fatalf("%v, %+v", err, svc.refund)
	}
	currencyOnly := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, Transaction: &ecml.Transaction{Type: "credit", Currency: "KRW", Code: &ecml.Code{Approval: "A1"}}}}

	// Unreadable requests: Requester / InvalidPayload.
	for name, tc := range map[string]struct {
		service string
		p       *ecml.Payload
	}{
		"approve without a card":               {card.ServiceApprove, &ecml.Payload{Ecom: &ecml.Ecom{Transaction: &ecml.Transaction{Amount: "1", Currency: "KRW"}}}},
		"approve without payload":              {card.ServiceApprove, nil},
		"refund with a currency but no amount": {card.ServiceRefund, currencyOnly},
		"cancel naming nothing":                {card.ServiceCancel, &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion}}},
		"inquire without Ecom":                 {card.ServiceInquire, &ecml.Payload{}},
	} {
		_, err := m[tc.service](ctx, &connectors.Request{Issuer: "https://shop.test/kecis", IdempotencyKey: "k", Payload: tc.p})
		st, ok := connectors.AsStatus(err)
		if !ok || st.Code != saml.StatusRequester || st.SubCode != saml.CodeInvalidPayload {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRefusalCodes(t *testing.T) {
	for _, tc := range []struct {
		err       error
		top, code string
	}{
		{card.Declined("m"), saml.StatusResponder, saml.CodeDeclined},
		{card.InsufficientFunds("m"), saml.StatusResponder, saml.CodeInsufficientFunds},
		{card.InvalidCard("m"), saml.StatusResponder, saml.CodeInvalidCard},
		{card.Expired("m"), saml.StatusResponder, saml.CodeExpired},
		{card.LimitExceeded("m"), saml.StatusResponder, saml.CodeLimitExceeded},
		{card.PolicyViolation("m"), saml.StatusResponder, saml.CodePolicyViolation},
		{card.NotFound("m"), saml.StatusRequester, saml.CodeDeclined},
	} {
		st, ok := connectors.AsStatus(tc.err)
		if !ok || st.Code != tc.top || st.SubCode != tc.code || st.Message != "m" {
			t.Errorf("%v: %+v, want %s / %s", tc.err, st, tc.top, tc.code)
		}
	}
	o := &card.Outcome{Result: &connectors.Result{Status: saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInsufficientFunds}}}
	if o.OK() || o.Code() != "InsufficientFunds" {
		t.Fatalf("%v %q", o.OK(), o.Code())
	}
}

// TestObjectRules: the card service declares its objects (KECIS §13.3): an
// approve creates the caller's order, cancel, refund and inquire name the
// caller's order or approval; an unknown one is NoSuchApproval, the
// status NotFound gives.
func TestObjectRules(t *testing.T) {
	p := wire(t, &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "ORD-1",
		Transaction: &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: "30000001"}}}})
	want := []connectors.ObjectRef{{Kind: card.ObjectOrder, ID: "ORD-1", PerOwner: true}, {Kind: card.ObjectApproval, ID: "30000001"}}
	if got := card.Objects(p); !slices.Equal(got, want) {
		t.Fatalf("Objects = %+v, want %+v", got, want)
	}
	if got := card.Objects(&ecml.Payload{Ecom: &ecml.Ecom{Transaction: &ecml.Transaction{Code: &ecml.Code{}}}}); len(got) != 0 {
		t.Fatalf("Objects of an empty reference = %+v", got)
	}
	for _, s := range []string{card.ServiceApprove, card.ServiceApproveVerification, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire} {
		r, ok := connectors.ObjectRuleOf(s)
		if !ok || r.Creates != (s == card.ServiceApprove || s == card.ServiceApproveVerification) || r.NotFound != card.NoSuchApproval {
			t.Errorf("%s: rule %+v, %v", s, r, ok)
		}
	}
	var se *connectors.StatusError
	if err := card.NotFound("no such approval"); !errors.As(err, &se) || se.Status != card.NoSuchApproval {
		t.Fatalf("NotFound gives %v, NoSuchApproval is %+v", err, card.NoSuchApproval)
	}
}

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

// verificationReq is a verification approval of 1,234 won under a ceiling
// of 50,000, with a descriptor code, for a PG's shop.
func verificationReq() *card.VerificationRequest {
	return &card.VerificationRequest{OrderID: "AA-ORD-1", SessionID: "S-7f3a", Challenge: krw(1234), Ceiling: krw(50000),
		Card:           card.Card{Number: "4111111111111111", ExpMonth: "12", ExpYear: "2030", Name: "HONG GILDONG"},
		DescriptorCode: "482193", SubMerchant: "Demo shop", SubMerchantID: "CA-0001", IdempotencyKey: "aa-S-7f3a-verify"}
}

// TestVerificationPayload: the request Client.ApproveVerification sends
// (KECIS §15.2 approve-verification) carries no Transaction amount; the
// secret amount is kx:AmountAuth/kx:Challenge beside the public ceiling,
// the code kx:OneTimeCode, and both — with the card — are among the
// elements the SDK encrypts for the recipient. The provider's SDK reads it
// back whole, and its answer carries no amount whatever the provider
// returned.
func TestVerificationPayload(t *testing.T) {
	req := verificationReq()
	p, err := card.VerificationPayload(req)
	if err != nil {
		t.Fatal(err)
	}
	if tr := p.Ecom.Transaction; tr.Amount != "" || tr.Currency != "" || tr.Type != "credit" {
		t.Fatalf("Transaction %+v: an approve-verification names no amount", tr)
	}
	if aa := p.AmountAuth; aa.SessionID != "S-7f3a" || aa.Ceiling != "50000" || aa.Currency != "KRW" || aa.Challenge.Reveal() != "1234" {
		t.Fatalf("kx:AmountAuth %#v", aa)
	}
	if p.OneTimeCode.Reveal() != "482193" || p.Ecom.ConsumerOrderID != "AA-ORD-1" || p.Ecom.Merchant != "Demo shop" ||
		p.Ecom.MerchantInfo == nil || p.Ecom.MerchantInfo.ID != "CA-0001" {
		t.Fatalf("payload %#v", p.Ecom)
	}
	c := etree.NewElement("kecis:Payload")
	c.CreateAttr("xmlns:kecis", saml.NSKECIS)
	if err := p.AppendTo(c); err != nil {
		t.Fatal(err)
	}
	var enc []string
	for _, el := range ecml.SensitiveElements(c) {
		enc = append(enc, el.Tag)
	}
	if want := []string{"Card", "Challenge", "OneTimeCode"}; !slices.Equal(enc, want) {
		t.Fatalf("the SDK encrypts %q, want %q", enc, want)
	}

	v := &verifier{}
	resp, err := card.Services(v)[card.ServiceApproveVerification](context.Background(),
		&connectors.Request{Issuer: "https://pg.test/kecis", IdempotencyKey: req.IdempotencyKey, Payload: wire(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	got := v.verification
	want := *req
	want.Merchant = "https://pg.test/kecis"
	if got.Merchant != want.Merchant || got.OrderID != want.OrderID || got.SessionID != want.SessionID || got.Challenge != want.Challenge ||
		got.Ceiling != want.Ceiling || got.Card != want.Card || got.DescriptorCode.Reveal() != "482193" || got.SubMerchant != want.SubMerchant ||
		got.SubMerchantID != want.SubMerchantID || got.IdempotencyKey != want.IdempotencyKey {
		t.Fatalf("the provider got %v, want %v", got, want)
	}
	if tr := resp.Payload.Ecom.Transaction; tr.Amount != "" || tr.Currency != "" || tr.Data.PrivateUse != nil || tr.Code.Approval != "V1" {
		t.Fatalf("the answer to approve-verification shows %+v", tr)
	}
	if a, err := card.ApprovalFrom(resp.Payload); err != nil || a.Amount != (ecml.Money{}) || a.State != card.Approved {
		t.Fatalf("%+v, %v", a, err)
	}

	// Without a code the payload has no kx:OneTimeCode; a challenge in
	// another currency than the ceiling's is not sent.
	req.DescriptorCode = ""
	if p, err := card.VerificationPayload(req); err != nil || p.OneTimeCode != "" {
		t.Fatalf("%v, %v", p, err)
	}
	req.Challenge = ecml.Money{Minor: 1234, Currency: "USD"}
	if _, err := card.VerificationPayload(req); err == nil {
		t.Fatal("a challenge in USD under a ceiling in KRW was built")
	}
}

// TestVerificationRefusals: what an approve-verification lacks, or the
// amount in clear, is Requester / InvalidPayload, named.
func TestVerificationRefusals(t *testing.T) {
	good := func() *ecml.Payload {
		p, err := card.VerificationPayload(verificationReq())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	svc := card.Services(&verifier{})[card.ServiceApproveVerification]
	for name, c := range map[string]struct {
		edit   func(p *ecml.Payload)
		detail string
	}{
		"nothing":          {func(p *ecml.Payload) { *p = ecml.Payload{} }, "Ecom_ConsumerOrderID, Ecom_Payment_Card_Number"},
		"no kx:AmountAuth": {func(p *ecml.Payload) { p.AmountAuth = nil }, "kx:AmountAuth/@SessionID, kx:AmountAuth/@Ceiling, kx:AmountAuth/@Currency, kx:AmountAuth/kx:Challenge"},
		"no challenge":     {func(p *ecml.Payload) { p.AmountAuth.Challenge = "" }, "lacks kx:AmountAuth/kx:Challenge"},
		"a challenge encrypted": {func(p *ecml.Payload) {
			p.AmountAuth.Challenge, p.AmountAuth.EncryptedChallenge = "", etree.NewElement("xenc:EncryptedData")
		}, "kx:Challenge decrypted"},
		"a code encrypted": {func(p *ecml.Payload) {
			p.OneTimeCode, p.EncryptedOneTimeCode = "", etree.NewElement("xenc:EncryptedData")
		}, "kx:OneTimeCode must be decrypted"},
		"the amount in clear": {func(p *ecml.Payload) { _ = p.Ecom.Transaction.SetMoney(krw(1234)) }, "carries no Transaction/@Amount"},
		"a card left encrypted": {func(p *ecml.Payload) {
			p.Ecom.Payment = &ecml.Payment{EncryptedCard: etree.NewElement("xenc:EncryptedData")}
		}, "Payment/Card decrypted"},
		"a ceiling not an amount": {func(p *ecml.Payload) { p.AmountAuth.Ceiling = "5만" }, "@Ceiling is not a valid amount"},
	} {
		p := good()
		c.edit(p)
		_, err := svc(context.Background(), &connectors.Request{Issuer: "https://pg.test/kecis", IdempotencyKey: "k", Payload: p})
		st, ok := connectors.AsStatus(err)
		if !ok || st.Code != saml.StatusRequester || st.SubCode != saml.CodeInvalidPayload || !strings.Contains(st.Message, c.detail) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "482193")) {
			t.Errorf("%s: the refusal shows a secret: %v", name, err)
		}
	}
}

// TestVerificationRequestHidesSecrets: the challenge and the code print and
// log as hidden, the card masked.
func TestVerificationRequestHidesSecrets(t *testing.T) {
	req := verificationReq()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("verification", "req", req, "value", *req)
	out := fmt.Sprintf("%v %+v %#v %s %v", req, *req, req, req, []any{req}) + logged.String()
	for _, secret := range []string{"1234", "482193", "4111111111111111"} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows in %s", secret, out)
		}
	}
	if !strings.Contains(out, "S-7f3a") || !strings.Contains(out, "AA-ORD-1") || !strings.Contains(out, "[hidden]") {
		t.Errorf("the request prints as %s", out)
	}
}

// TestApprovalPayloadWithoutAmount: an approval with no amount (a
// verification approval, KECIS §15.2) is answered without
// Transaction/@Amount, @Currency or the refunded amount, and reads back
// so.
func TestApprovalPayloadWithoutAmount(t *testing.T) {
	for _, a := range []card.Approval{
		{ApprovalNumber: "30012347", OrderID: "AA-1", State: card.Approved},
		{ApprovalNumber: "30012348", OrderID: "AA-2", State: card.Cancelled},
		{ApprovalNumber: "30012349", OrderID: "AA-3", Refunded: krw(1234), State: card.Refunded},
	} {
		p := card.ApprovalPayload(&a)
		if tr := p.Ecom.Transaction; tr.Amount != "" || tr.Currency != "" || tr.Data.PrivateUse != nil {
			t.Errorf("%s: %+v", a.ApprovalNumber, tr)
		}
		got, err := card.ApprovalFrom(wire(t, p))
		want := a
		want.Refunded = ecml.Money{}
		if err != nil || *got != want {
			t.Errorf("round trip: %+v, %v; want %+v", got, err, want)
		}
	}
}
