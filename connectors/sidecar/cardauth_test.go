package sidecar

import (
	"context"
	"encoding/base64"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// caPAN is a card the example PG accepts.
const caPAN = "9490100895085583"

// recordingCard is the issuer's card service at the far end: it keeps the
// approval it was asked for.
type recordingCard struct{ got *card.ApproveRequest }

func (c *recordingCard) Approve(_ context.Context, r *card.ApproveRequest) (*card.Approval, error) {
	c.got = r
	return &card.Approval{ApprovalNumber: "A1", OrderID: r.OrderID, Amount: r.Amount, State: card.Approved}, nil
}

// TestExamplePGForwardsCardholderAuthentication (KECIS §15.7): a
// merchant's card:approve after a cardholder authentication — the card
// the PG decrypts, Transaction/Data/AAV and the issuer's signed result
// embedded — goes through the sidecar and the example PG's mapping to the
// issuer gateway with the AAV, the signed result unchanged and the
// merchant's entityID as Ecom_Merchant_ID; read as the issuer's card
// service reads it, that is ApproveRequest.AuthValue, SubMerchantID and
// a result that verifies.
func TestExamplePGForwardsCardholderAuthentication(t *testing.T) {
	e := newExamplePG(t)
	keys := filepath.Join("..", "..", "saml", "testdata", "keys")
	issuer, err := saml.LoadSigner(filepath.Join(keys, "issuer-rsa.key.pem"), filepath.Join(keys, "issuer-rsa.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	const issuerID, aav = "https://issuer.test/kecis", "kVx3l0B2bM1rS9xq4TTw8A"
	now := time.Now()
	ar := &saml.AuthenticationResult{ID: "_ar-pg", IssueInstant: now, Issuer: issuerID, Method: "urn:kecis:authn:card-password", Factors: 1,
		Amount: "150000", Currency: "KRW", Merchant: shopA, OrderID: "ORD-CA-1", CardRef: ecml.MaskPAN(caPAN), NotOnOrAfter: now.Add(10 * time.Minute)}
	signed, err := ar.Sign(issuer)
	if err != nil {
		t.Fatal(err)
	}
	// As the SDK hands it over: a child of the verified request.
	holder := etree.NewElement("kecis:ServiceRequest")
	holder.CreateAttr("xmlns:kecis", saml.NSKECIS)
	holder.AddChild(signed)

	p, err := ecml.FromForm(url.Values{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-CA-1"},
		"Ecom_Transaction_Amount": {"150000"}, "Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Payment_Card_Number": {caPAN},
		"Ecom_Payment_Card_ExpDate_Month": {"11"}, "Ecom_Payment_Card_ExpDate_Year": {"2031"}, "Ecom_Transaction_AAV": {aav}})
	if err != nil {
		t.Fatal(err)
	}
	uri := card.ServiceApprove
	verified, _, err := saml.VerifyAuthenticationResult(context.Background(), signed, saml.StaticKeys{issuerID: {issuer.Cert}}, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc[uri](context.Background(), &connectors.Request{Service: uri, Issuer: shopA, IdempotencyKey: "ca-1", Payload: p,
		AuthResults: []*saml.AuthenticationResult{verified}, SignedAuthResults: []*etree.Element{signed}})
	if err != nil || !resp.Status.OK() && resp.Status.Code != "" {
		t.Fatalf("approve: %v %+v", err, resp)
	}

	got := e.iss.last()
	if got.Fields["Ecom_Transaction_AAV"] != aav || got.Fields["Ecom_Merchant_ID"] != shopA {
		t.Fatalf("the issuer gateway got AAV %q, merchant %q", got.Fields["Ecom_Transaction_AAV"], got.Fields["Ecom_Merchant_ID"])
	}
	if len(got.AuthenticationResults) != 1 {
		t.Fatalf("the issuer gateway got %d results", len(got.AuthenticationResults))
	}
	raw, err := base64.StdEncoding.DecodeString(got.AuthenticationResults[0])
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := saml.VerifyAuthenticationResult(context.Background(), doc.Root(), saml.StaticKeys{issuerID: {issuer.Cert}}, now, time.Minute); err != nil {
		t.Fatalf("the forwarded result does not verify: %v", err)
	}

	// What the issuer's card service makes of the gateway's fields (the
	// sidecar's caller maps them to ECML; the PG is the caller).
	v := url.Values{}
	for k, x := range got.Fields {
		v.Set(k, x)
	}
	fp, err := ecml.FromForm(v)
	if err != nil {
		t.Fatal(err)
	}
	if probs := fp.Validate(ecml.ValidateOptions{}); len(probs) > 0 {
		t.Fatalf("the forwarded approval does not validate: %v", probs)
	}
	rc := &recordingCard{}
	if _, err := card.Services(rc)[uri](context.Background(), &connectors.Request{Service: uri, Issuer: "https://pg.test/kecis", IdempotencyKey: "k", Payload: fp}); err != nil {
		t.Fatal(err)
	}
	if rc.got.SubMerchantID != shopA || rc.got.AuthValue != aav || rc.got.Merchant != "https://pg.test/kecis" {
		t.Fatalf("at the issuer: sub-merchant %q, AAV %q, caller %q", rc.got.SubMerchantID, rc.got.AuthValue, rc.got.Merchant)
	}
}
