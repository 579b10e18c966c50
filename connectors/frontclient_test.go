package connectors_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// The front channel of KECIS §10.2 and §15.7 between a merchant (the
// requester, FrontChannel) and an issuer's page (the provider,
// Handler.ReceiveFront/AnswerFront), with a PG the card is encrypted for.
const (
	pgID           = "https://pg.test/kecis"
	issuerPage     = "https://issuer.test/cardauth"
	merchantReturn = "https://merchant.test/cardauth/return"
	frontAAV       = "kVx3l0B2bM1rS9xq4TTw8A"
	virtualPAN     = "4041430421234560"
)

var serviceFront = saml.ServiceURI("cardauth", "authenticate")

type frontWorld struct {
	clock                *testutil.Clock
	dir                  *metadata.Client
	merchant, issuer, pg *saml.Signer
	h                    *connectors.Handler
	fc                   *connectors.FrontChannel
	md                   *metadatatest.Hub
	merchantMD, issuerMD *metadata.EntityDescriptor
}

func newFrontWorld(t *testing.T) *frontWorld {
	t.Helper()
	w := &frontWorld{clock: testutil.NewClock(testutil.FixedNow),
		merchant: loadSigner(t, "merchant-rsa"), issuer: loadSigner(t, "issuer-rsa"), pg: loadSigner(t, "attacker-rsa")}
	mdSigner := loadSigner(t, "issuer-ec")
	w.merchantMD = participant(merchantID, metadata.RoleMerchant, w.merchant.Cert, w.merchant.Cert, nil, "https://merchant.test/kecis/soap")
	w.merchantMD.Endpoints = append(w.merchantMD.Endpoints, metadata.Endpoint{Service: serviceFront, Binding: saml.BindingHTTPPOST, Location: merchantReturn})
	w.issuerMD = participant(issuerID, metadata.RoleIssuer, w.issuer.Cert, w.issuer.Cert, nil, issuerEndpoint)
	w.issuerMD.Endpoints = append(w.issuerMD.Endpoints, metadata.Endpoint{Service: serviceFront, Binding: saml.BindingHTTPPOST, Location: issuerPage})
	w.issuerMD.Services = offered([]metadata.Role{metadata.RoleMerchant}, serviceFront)
	w.md = metadatatest.NewHub(t, mdSigner, w.clock.Now, w.merchantMD, w.issuerMD,
		participant(pgID, metadata.RolePG, w.pg.Cert, w.pg.Cert, nil, "https://pg.test/kecis/soap"))
	w.dir = &metadata.Client{HubURL: w.md.URL, HubCerts: []*x509.Certificate{mdSigner.Cert}, HTTP: w.md.Client(), Now: w.clock.Now}

	st, err := sqlitestore.Open(context.Background(), sqltest.TestSQLiteDSN(t), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.h, err = connectors.NewHandler(connectors.HandlerConfig{EntityID: issuerID, Signer: w.issuer, Decryption: decryptionKeys(w.issuer),
		Endpoints: []string{issuerEndpoint}, Directory: w.dir, Store: st, IdemKey: []byte("a provider secret of 32 bytes..."), Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.fc, err = connectors.NewFrontChannel(connectors.FrontConfig{EntityID: merchantID, Signer: w.merchant, Decryption: decryptionKeys(w.merchant),
		Directory: w.dir, Now: w.clock.Now, Rand: testutil.NewDetRand("front")})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// submit is the browser: it posts the auto-submitting form where it says.
func submit(t *testing.T, form []byte) *http.Request {
	t.Helper()
	m := formAction.FindSubmatch(form)
	if m == nil {
		t.Fatalf("no form action in %s", form)
	}
	vals := url.Values{}
	for _, in := range formInput.FindAllSubmatch(form, -1) {
		vals.Add(string(in[1]), html.UnescapeString(string(in[2])))
	}
	r := httptest.NewRequest(http.MethodPost, html.UnescapeString(string(m[1])), strings.NewReader(vals.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func frontPayload() *ecml.Payload {
	return &ecml.Payload{
		Ecom:     &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "ORD-F1", Transaction: &ecml.Transaction{Amount: "150000", Currency: "KRW"}},
		CardAuth: &ecml.CardAuth{Acquirer: pgID},
	}
}

// request is the merchant's request, carried to the issuer's page and
// received there.
func (w *frontWorld) request(t *testing.T) (*connectors.Request, connectors.FrontRequest) {
	t.Helper()
	ctx := context.Background()
	form, sent, err := w.fc.Request(ctx, issuerID, serviceFront, connectors.FrontCall{IdempotencyKey: "ORD-F1-auth", Payload: frontPayload()}, "rs-1")
	if err != nil {
		t.Fatal(err)
	}
	if sent.ID == "" || sent.Provider != issuerID || sent.Service != serviceFront || !sent.Expires.Equal(w.clock.Now().Add(connectors.DefaultFrontLifetime)) {
		t.Fatalf("sent = %+v", sent)
	}
	post := submit(t, form)
	if post.URL.String() != issuerPage {
		t.Fatalf("the browser goes to %s, want the issuer's HTTP-POST endpoint %s", post.URL, issuerPage)
	}
	msg, rs, err := saml.ReadPost(post, "SAMLRequest", saml.Limits{})
	if err != nil || rs != "rs-1" {
		t.Fatalf("ReadPost: %v, RelayState %q", err, rs)
	}
	req, err := w.h.ReceiveFront(ctx, msg, connectors.FrontEndpoint{URL: issuerPage, Services: []string{serviceFront}})
	if err != nil {
		t.Fatalf("ReceiveFront: %v (%v)", err, saml.AsError(err).Cause())
	}
	if req.ID != sent.ID || req.IdempotencyKey != "ORD-F1-auth" || req.Payload.CardAuth == nil || req.Payload.CardAuth.Acquirer != pgID {
		t.Fatalf("the issuer received %+v", req)
	}
	return req, sent
}

// answer is the issuer's success: the card encrypted for the PG, a virtual
// number for the merchant, the AAV and its signed result.
func (w *frontWorld) answer(t *testing.T, req *connectors.Request) []byte {
	t.Helper()
	ar := &saml.AuthenticationResult{ID: "_ar1", IssueInstant: w.clock.Now(), Issuer: issuerID, Method: "urn:kecis:authn:card-password", Factors: 1,
		Amount: "150000", Currency: "KRW", Merchant: merchantID, OrderID: "ORD-F1", CardRef: ecml.MaskPAN(testPAN),
		AuthnInstant: w.clock.Now(), NotOnOrAfter: w.clock.Now().Add(10 * time.Minute)}
	signedAR, err := ar.Sign(w.issuer)
	if err != nil {
		t.Fatal(err)
	}
	p := &ecml.Payload{
		Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "ORD-F1",
			Payment:     &ecml.Payment{Card: &ecml.Card{Number: testPAN, Type: "VISA", ExpDate: &ecml.Date{Month: "12", Year: "2030"}}},
			Transaction: &ecml.Transaction{Amount: "150000", Currency: "KRW", Data: &ecml.Data{AAV: &ecml.Text{Value: frontAAV}}}},
		VirtualCard: &ecml.VirtualCard{Type: ecml.VirtualCardCredit, Number: virtualPAN, ExpDate: &ecml.Date{Month: "12", Year: "2030"}},
	}
	signed, dest, err := w.h.AnswerFront(context.Background(), req, &connectors.Response{Payload: p, AuthResults: []*etree.Element{signedAR}},
		connectors.FrontAnswer{EncryptFor: map[string]string{"Card": pgID}})
	if err != nil {
		t.Fatal(err)
	}
	if dest != merchantReturn {
		t.Fatalf("destination %s, want %s", dest, merchantReturn)
	}
	return signed
}

func postResponse(t *testing.T, dest string, signed []byte, relayState string) *http.Request {
	t.Helper()
	form, err := saml.PostForm(dest, "SAMLResponse", signed, relayState, "")
	if err != nil {
		t.Fatal(err)
	}
	return submit(t, form)
}

// TestFrontChannelRoundTrip: request → issuer page → response read by the
// merchant: the card stays opaque for the PG, the virtual number is
// decrypted, the AAV and the verified result come back, and the signed
// result embeds unchanged in a later call that the PG can use.
func TestFrontChannelRoundTrip(t *testing.T) {
	w := newFrontWorld(t)
	ctx := context.Background()
	req, sent := w.request(t)
	signed := w.answer(t, req)

	got, rs, err := w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed, "rs-1"), sent)
	if err != nil {
		t.Fatalf("ReadResponse: %v (%v)", err, saml.AsError(err).Cause())
	}
	if rs != "rs-1" || got.Status.Code != saml.StatusSuccess {
		t.Fatalf("RelayState %q, status %+v", rs, got.Status)
	}
	pm := got.Payload.Ecom.Payment
	if pm.Card != nil || pm.EncryptedCard == nil {
		t.Fatalf("the merchant must see the card only encrypted: %+v", pm)
	}
	if r := pm.EncryptedCard.FindElement(".//EncryptedKey").SelectAttrValue("Recipient", ""); r != pgID {
		t.Fatalf("card encrypted for %q", r)
	}
	if got.Payload.VirtualCard == nil || got.Payload.VirtualCard.Number.Reveal() != virtualPAN {
		t.Fatal("the virtual number for the merchant was not decrypted")
	}
	if d := got.Payload.Ecom.Transaction.Data; d == nil || d.AAV == nil || d.AAV.Value != frontAAV {
		t.Fatal("AAV missing")
	}
	if len(got.AuthResults) != 1 || got.AuthResults[0].Method != "urn:kecis:authn:card-password" || got.AuthResults[0].Merchant != merchantID {
		t.Fatalf("AuthResults = %+v", got.AuthResults)
	}
	if len(got.SignedAuthResults) != 1 {
		t.Fatalf("SignedAuthResults = %d", len(got.SignedAuthResults))
	}
	if _, _, err := saml.VerifyAuthenticationResult(ctx, got.SignedAuthResults[0], w.dir, w.clock.Now(), time.Minute); err != nil {
		t.Fatalf("the detached result does not verify: %v", err)
	}

	// Passed on: the PG's card:approve carries the opaque card unchanged;
	// serialised and read back, the result still verifies and the PG
	// decrypts the card.
	approve := &saml.ServiceRequest{ID: "_approve1", Version: saml.SAMLVersion, IssueInstant: w.clock.Now(), Destination: "https://pg.test/kecis/soap",
		Issuer: merchantID, Service: saml.ServiceURI("card", "approve"), IdempotencyKey: "ORD-F1-approve",
		Payload: got.Payload, AuthResults: got.SignedAuthResults}
	el, err := approve.Element()
	if err != nil {
		t.Fatal(err)
	}
	data, err := w.merchant.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	if ecml.ContainsPAN(strings.ReplaceAll(string(data), virtualPAN, "")) {
		t.Fatal("the real card number is in clear in the merchant's approval")
	}
	rc := &saml.Receiver{Keys: w.dir, Replay: saml.NewMemoryReplayCache(w.clock.Now), Destinations: []string{"https://pg.test/kecis/soap"},
		Decrypter: &saml.Decryptor{EntityID: pgID, Keys: decryptionKeys(w.pg)}, ValidatePayload: true, AllowClearSensitive: true, Now: w.clock.Now}
	atPG, err := rc.ReceiveRequest(ctx, data)
	if err != nil {
		t.Fatalf("at the PG: %v (%v)", err, saml.AsError(err).Cause())
	}
	if c := atPG.Request.Payload.Ecom.Payment.Card; c == nil || c.Number.Reveal() != testPAN {
		t.Fatal("the PG cannot read the card the issuer encrypted for it")
	}
	if len(atPG.AuthResults) != 1 || atPG.AuthResults[0].ID != "_ar1" {
		t.Fatalf("the PG sees results %+v", atPG.AuthResults)
	}
}

// TestFrontChannelRefusals: only the response of the provider the request
// went to, for that request, before it expires, to our endpoint, once.
func TestFrontChannelRefusals(t *testing.T) {
	w := newFrontWorld(t)
	ctx := context.Background()
	req, sent := w.request(t)
	signed := w.answer(t, req)

	wantErr := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	other := sent
	other.ID = "_someoneelse"
	_, _, err := w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed, ""), other)
	wantErr("other request", err, saml.ErrInResponseTo)

	wrongProvider := sent
	wrongProvider.Provider = pgID
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed, ""), wrongProvider)
	wantErr("other provider", err, saml.ErrInResponseTo)

	if _, _, err := w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed, ""), sent); err != nil {
		t.Fatalf("the right response: %v", err)
	}
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed, ""), sent)
	wantErr("posted twice", err, saml.ErrReplay)

	// Hand-built responses, signed by the issuer: to another address, or
	// with none; and one signed by somebody else.
	handBuilt := func(signer *saml.Signer, issuer, dest string) []byte {
		b := &saml.Builder{Issuer: issuer, Now: w.clock.Now}
		resp, err := b.NewResponse(sent.ID, dest, saml.Status{Code: saml.StatusSuccess})
		if err != nil {
			t.Fatal(err)
		}
		el, err := resp.Element()
		if err != nil {
			t.Fatal(err)
		}
		out, err := signer.SignToBytes(el)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, handBuilt(w.issuer, issuerID, "https://merchant.test/elsewhere"), ""), sent)
	wantErr("other destination", err, saml.ErrDestination)
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, handBuilt(w.issuer, issuerID, ""), ""), sent)
	wantErr("no destination", err, saml.ErrDestination)
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, handBuilt(w.pg, issuerID, merchantReturn), ""), sent)
	if err == nil || saml.AsError(err) == nil {
		t.Error("a response signed by another key was accepted")
	}

	// Expired: the cardholder took longer than the request's lifetime.
	req2, sent2 := w.request(t)
	w.clock.Advance(connectors.DefaultFrontLifetime)
	signed2 := w.answer(t, req2)
	_, _, err = w.fc.ReadResponse(ctx, postResponse(t, merchantReturn, signed2, ""), sent2)
	wantErr("expired", err, saml.ErrInResponseTo)

	// Not a post.
	_, _, err = w.fc.ReadResponse(ctx, httptest.NewRequest(http.MethodGet, merchantReturn, nil), sent)
	wantErr("GET", err, saml.ErrMalformed)
}

// TestFrontChannelRequestChecks: the provider must publish an HTTP-POST
// endpoint for the service itself; a state change needs a key.
func TestFrontChannelRequestChecks(t *testing.T) {
	w := newFrontWorld(t)
	ctx := context.Background()
	if _, _, err := w.fc.Request(ctx, issuerID, serviceFront, connectors.FrontCall{Payload: frontPayload()}, ""); err == nil {
		t.Error("no idempotency key accepted")
	}
	if _, _, err := w.fc.Request(ctx, pgID, serviceFront, connectors.FrontCall{IdempotencyKey: "k", Payload: frontPayload()}, ""); err == nil {
		t.Error("a provider without an HTTP-POST endpoint accepted")
	}
	if _, _, err := w.fc.Request(ctx, issuerID, serviceFront, connectors.FrontCall{IdempotencyKey: "k", Payload: frontPayload()}, strings.Repeat("r", 81)); err == nil {
		t.Error("a RelayState of 81 bytes accepted")
	}
	if got, err := connectors.PostEndpoint(ctx, w.dir, merchantID, serviceFront); err != nil || got != merchantReturn {
		t.Errorf("PostEndpoint = %q, %v", got, err)
	}
}
