package connectors_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// TestCardApprovePassesOnCardholderAuthentication: a merchant's approve
// after a cardholder authentication (KECIS §15.7) holds the card as the
// issuer encrypted it for the recipient, sent unchanged (no second
// encryption, no routing hints), the AAV and the issuer's signed result;
// the provider receives the card decrypted, AuthValue and the verified
// result.
func TestCardApprovePassesOnCardholderAuthentication(t *testing.T) {
	w := newWorld(t)
	h := newFakeHub(t, w)
	ctx := context.Background()

	// What the front channel handed the merchant: a Card encrypted for the
	// provider by a third party, and a result signed by another participant.
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0"><Ecom><Payment><Card Number="` + testPAN +
		`" Type="VISA"><ExpDate Month="12" Year="2030"/></Card></Payment></Ecom></kecis:Payload>`); err != nil {
		t.Fatal(err)
	}
	enc, err := (&saml.Encryptor{Recipient: issuerID, Cert: w.issuer.Cert}).EncryptElement(doc.FindElement("//Card"))
	if err != nil {
		t.Fatal(err)
	}
	ar := &saml.AuthenticationResult{ID: "_ar-pass-on", IssueInstant: w.clock.Now(), Issuer: evilID, Method: "urn:kecis:authn:tls-client-certificate", Factors: 2,
		Amount: "150000", Currency: "KRW", Merchant: merchantID, OrderID: "ORD-AAV", CardRef: ecml.MaskPAN(testPAN), NotOnOrAfter: w.clock.Now().Add(10 * time.Minute)}
	signedAR, err := ar.Sign(w.evil)
	if err != nil {
		t.Fatal(err)
	}

	var sent []byte
	h.setAnswer(func(_ int, _ string, body []byte, rw http.ResponseWriter) {
		sent = body
		h.forwardTo(rw, body)
	})
	cc := &card.Client{C: newClient(t, w, h)}
	req := &card.ApproveRequest{OrderID: "ORD-AAV", Amount: ecml.Money{Minor: 150000, Currency: "KRW"}, IdempotencyKey: "ORD-AAV-approve",
		EncryptedCard: enc, AuthValue: frontAAV, SignedAuthResults: []*etree.Element{signedAR}}
	out, err := cc.Approve(ctx, issuerID, req)
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK() {
		t.Fatalf("status %+v", out.Result.Status)
	}
	// Sent unchanged: one EncryptedData, the issuer's own ciphertext, no
	// routing hints (the merchant does not know the number).
	cipher := enc.FindElement(".//CipherValue").Text()
	if n := strings.Count(string(sent), "EncryptedData "); n != 1 || !strings.Contains(string(sent), cipher) || strings.Contains(string(sent), "CardBIN") {
		t.Fatalf("the card was not passed on unchanged (%d EncryptedData)", n)
	}
	got := w.iss.lastApprove()
	if got.Card.Number.Reveal() != testPAN || got.Card.Type != "VISA" || got.Card.ExpYear != "2030" {
		t.Fatalf("the provider got the card %v", got.Card)
	}
	if got.AuthValue != frontAAV {
		t.Fatalf("AuthValue = %q", got.AuthValue)
	}
	if len(got.AuthResults) != 1 || got.AuthResults[0].ID != "_ar-pass-on" || got.AuthResults[0].Factors != 2 || got.AuthResults[0].Merchant != merchantID {
		t.Fatalf("AuthResults = %+v", got.AuthResults)
	}
	if got.Merchant != merchantID || got.Amount.Minor != 150000 || got.OrderID != "ORD-AAV" {
		t.Fatalf("%+v", got)
	}

	// Both a card and an encrypted card: refused before anything is sent.
	both := *req
	both.Card = card.Card{Number: testPAN}
	if _, err := cc.Approve(ctx, issuerID, &both); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("card and encrypted card: %v", err)
	}
}
