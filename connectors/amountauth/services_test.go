package amountauth

import (
	"context"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// startRequest is amountauth:start as the SDK hands it to the function:
// verified, decrypted, from the hub on behalf of merchant.
func startRequest(merchant, order, amount, pan string) *connectors.Request {
	p := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Merchant: "KECIS 상점",
		Payment:     &ecml.Payment{Card: &ecml.Card{Number: ecml.PAN(pan), ExpDate: &ecml.Date{Month: "12", Year: "2030"}}},
		Transaction: &ecml.Transaction{Amount: amount, Currency: "KRW", Type: "credit"}}}
	return &connectors.Request{ID: "_r1", Service: ServiceStart, Issuer: "https://hub.test/kecis", OnBehalfOf: merchant,
		IdempotencyKey: "k-" + order, Payload: p}
}

func sessionRequest(service, merchant string, s *Session, typed *ecml.Money, code ecml.Secret) *connectors.Request {
	aa := &ecml.AmountAuth{SessionID: s.ID}
	_ = aa.SetCeiling(ecml.Money{Minor: s.Ceiling, Currency: "KRW"})
	if typed != nil {
		_ = aa.SetChallenge(*typed)
	}
	return &connectors.Request{ID: "_r2", Service: service, Issuer: "https://hub.test/kecis", OnBehalfOf: merchant,
		IdempotencyKey: "k2", Payload: &ecml.Payload{AmountAuth: aa, OneTimeCode: code}}
}

func validAnswer(t *testing.T, resp *connectors.Response) {
	t.Helper()
	if probs := resp.Payload.Validate(ecml.ValidateOptions{}); len(probs) > 0 {
		t.Fatalf("the answer's payload does not validate: %v", probs)
	}
	if resp.Payload.AmountAuth == nil || resp.Payload.AmountAuth.Challenge != "" || resp.Payload.AmountAuth.EncryptedChallenge != nil {
		t.Fatal("the answer carries no session, or a challenge")
	}
}

func TestServicesStartConfirmStatus(t *testing.T) {
	r := newRig(t, nil)
	svc := r.e.Services()
	ctx := context.Background()
	resp, err := svc[ServiceStart](ctx, startRequest(merchantID, "ORD-S1", "150000", testPAN))
	if err != nil {
		t.Fatal(err)
	}
	validAnswer(t, resp)
	if !resp.Status.OK() || resp.Payload.Ecom.Transaction.Data.Response.Value != string(AwaitingAmount) ||
		resp.Payload.AmountAuth.Ceiling != "50000" || resp.Payload.Ecom.Transaction.Amount != "150000" {
		t.Fatalf("start answered %+v %+v", resp.Status, resp.Payload.Ecom.Transaction)
	}
	s, err := r.store.Get(ctx, resp.Payload.AmountAuth.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if s.SubMerchant != "KECIS 상점" {
		t.Fatalf("the text names %q", s.SubMerchant)
	}
	right := r.challenge(t, s).Amount
	wrong := ecml.Money{Minor: right.Minor + 1, Currency: "KRW"}

	resp, err = svc[ServiceConfirm](ctx, sessionRequest(ServiceConfirm, merchantID, s, &wrong, ""))
	if err != nil {
		t.Fatal(err)
	}
	validAnswer(t, resp)
	if resp.Status.Code != saml.StatusResponder || resp.Status.SubCode != saml.CodeDeclined || len(resp.AuthResults) != 0 {
		t.Fatalf("a wrong amount answered %+v", resp.Status)
	}
	if strings.Contains(resp.Status.Message, right.String()) || strings.Contains(resp.Status.Message, wrong.String()) {
		t.Fatal("the answer shows an amount")
	}

	// Another merchant's confirm and status read as an unknown session.
	for _, service := range []string{ServiceConfirm, ServiceStatus} {
		_, err = svc[service](ctx, sessionRequest(service, otherID, s, right, ""))
		if st, ok := connectors.AsStatus(err); !ok || st != NoSuchSession {
			t.Fatalf("another merchant's %s: %v", service, err)
		}
	}

	resp, err = svc[ServiceConfirm](ctx, sessionRequest(ServiceConfirm, merchantID, s, right, ""))
	if err != nil {
		t.Fatal(err)
	}
	validAnswer(t, resp)
	if !resp.Status.OK() || resp.Payload.Ecom.Transaction.Code == nil || resp.Payload.Ecom.Transaction.Code.Approval == "" || len(resp.AuthResults) != 1 {
		t.Fatalf("the right amount answered %+v", resp.Status)
	}
	res, _, err := saml.VerifyAuthenticationResult(ctx, resp.AuthResults[0], keys{r.signer.Cert}, r.clock.Now(), 0)
	if err != nil || res.OrderID != "ORD-S1" || res.Merchant != merchantID {
		t.Fatalf("embedded result %+v, %v", res, err)
	}

	resp, err = svc[ServiceStatus](ctx, sessionRequest(ServiceStatus, merchantID, s, nil, ""))
	if err != nil || !resp.Status.OK() || resp.Payload.Ecom.Transaction.Data.Response.Value != string(Approved) || len(resp.AuthResults) != 1 {
		t.Fatalf("status: %+v, %v", resp, err)
	}
}

func TestServicesRefuseIncompleteRequests(t *testing.T) {
	r := newRig(t, nil)
	svc := r.e.Services()
	ctx := context.Background()
	noCard := startRequest(merchantID, "ORD-S2", "150000", testPAN)
	noCard.Payload.Ecom.Payment = nil
	noSession := &connectors.Request{Service: ServiceConfirm, OnBehalfOf: merchantID, Payload: &ecml.Payload{}}
	noEntry := sessionRequest(ServiceConfirm, merchantID, &Session{ID: "abc", Ceiling: 100}, nil, "")
	for name, c := range map[string]struct {
		service string
		req     *connectors.Request
	}{"start without a card": {ServiceStart, noCard}, "confirm without a session": {ServiceConfirm, noSession},
		"confirm without an entry": {ServiceConfirm, noEntry}} {
		_, err := svc[c.service](ctx, c.req)
		if !isStatus(err, saml.CodeInvalidPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseTyped(t *testing.T) {
	for in, want := range map[string]int64{"1234": 1234, "1,234": 1234, " 1,234원": 1234, "1234 KRW": 1234, "98 765": 98765} {
		got, err := ParseTyped(in, "KRW")
		if err != nil || got.Minor != want {
			t.Errorf("ParseTyped(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", "-5", "1.5", "12345678901234567890123"} {
		if _, err := ParseTyped(in, "KRW"); err == nil {
			t.Errorf("ParseTyped(%q) accepted", in)
		}
	}
}
