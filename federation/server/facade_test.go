package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

const merchantAPIKey = "sk_test_merchant_0123456789"

func apiKeyYAML() string {
	sum := sha256.Sum256([]byte(merchantAPIKey))
	return fmt.Sprintf("facade:\n  api_keys:\n    - {entity_id: %q, key_sha256: %s}\n", merchantID, hex.EncodeToString(sum[:]))
}

// facadeCall posts JSON with the merchant's API key, and checks request and
// response against the served OpenAPI description.
func (f *fed) facadeCall(t *testing.T, path, idemKey string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.h.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+merchantAPIKey)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	validate := openAPIValidator(t, req, b)
	resp, err := f.h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	validate(resp, rb)
	var out map[string]any
	json.Unmarshal(rb, &out)
	return resp.StatusCode, out
}

// openAPIValidator checks a request now and returns the response check.
func openAPIValidator(t *testing.T, req *http.Request, body []byte) func(*http.Response, []byte) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(facade.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI description is invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: "https://" + req.URL.Host}}
	rt, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	r2 := req.Clone(context.Background())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := rt.FindRoute(r2)
	if err != nil {
		t.Fatalf("%s %s is not in the OpenAPI description: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Fatalf("request does not match the OpenAPI description: %v", err)
	}
	return func(resp *http.Response, rb []byte) {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(rb)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("response %d does not match the OpenAPI description: %v\n%s", resp.StatusCode, err, rb)
		}
	}
}

// browserEncryptedCard is what the merchant's page does with WebCrypto: it
// encrypts the Card element for the certificate POST /v1/routes returned.
func browserEncryptedCard(t *testing.T, certPEM, recipient string) string {
	t.Helper()
	certs, err := saml.ParseCertificatesPEM([]byte(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.ReadFromString(`<Payment><Card Number="4111111111111111" Type="VISA"><ExpDate Month="12" Year="2030"/></Card></Payment>`)
	ed, err := (&saml.Encryptor{Recipient: recipient, Cert: certs[0]}).EncryptElement(doc.Root().SelectElement("Card"))
	if err != nil {
		t.Fatal(err)
	}
	d2 := etree.NewDocument()
	d2.SetRoot(ed.Copy())
	s, _ := d2.WriteToString()
	return s
}

func approveFields(amount string) map[string]string {
	return map[string]string{"Ecom_ConsumerOrderID": "WEB-1", "Ecom_Transaction_Amount": amount,
		"Ecom_Transaction_CurrencyCode": "KRW", "Ecom_Transaction_Type": "credit"}
}

func TestFacadeCardApprovalsLeaveNoCardNumber(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	code, route := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"), "amount": "15000", "currency": "KRW", "card_bin": "411111"})
	if code != 200 || route["recipient"] != issuerID {
		t.Fatalf("routes: %d %v", code, route)
	}
	card := browserEncryptedCard(t, route["encryption_certificate"].(string), route["recipient"].(string))
	body := map[string]any{"fields": approveFields("15000"), "encrypted": map[string]string{"card": card},
		"routing": map[string]string{"card_bin": "411111", "card_last4": "1111"}}
	code, out := f.facadeCall(t, "/v1/card/approve", "web-1", body)
	if code != 200 || out["outcome"] != "answered" || out["status"] != "Success" || out["provider"] != issuerID {
		t.Fatalf("approve: %d %v", code, out)
	}
	if len(f.p.seen) != 1 || f.p.seen[0] != "411111******1111" {
		t.Fatalf("the provider did not get the card: %v", f.p.seen)
	}
	// A retry with the same key and fields: the original outcome.
	card2 := browserEncryptedCard(t, route["encryption_certificate"].(string), issuerID) // re-encrypted: other ciphertext
	body["encrypted"] = map[string]string{"card": card2}
	if code, out2 := f.facadeCall(t, "/v1/card/approve", "web-1", body); code != 200 || out2["message"] != out["message"] {
		t.Fatalf("retry: %d %v", code, out2)
	}
	// A changed retry: 422. No key: 400.
	body["fields"] = approveFields("16000")
	if code, _ := f.facadeCall(t, "/v1/card/approve", "web-1", body); code != http.StatusUnprocessableEntity {
		t.Fatalf("changed retry: %d", code)
	}
	if code, _ := f.facadeCall(t, "/v1/card/approve", "", body); code != http.StatusBadRequest {
		t.Fatalf("missing Idempotency-Key: %d", code)
	}
	// Clear card numbers are refused with the clear-card mode off.
	clear := approveFields("1000")
	clear["Ecom_Payment_Card_Number"], clear["Ecom_Payment_Card_ExpDate_Month"], clear["Ecom_Payment_Card_ExpDate_Year"] = "4111111111111111", "12", "2030"
	code, prob := f.facadeCall(t, "/v1/card/approve", "web-2", map[string]any{"fields": clear})
	if code != http.StatusBadRequest || prob["type"] != "urn:kecis:problem:clear-card-refused" {
		t.Fatalf("clear card: %d %v", code, prob)
	}
	// Services whose answers carry secrets are not on the facade.
	if code, _ := f.facadeCall(t, "/v1/vcn/issue", "v-1", map[string]any{"fields": map[string]string{}}); code != http.StatusNotFound {
		t.Fatalf("vcn on the facade: %d", code)
	}
	// No card number in the hub's database or logs.
	if n := testutil.AssertNoPANInSQLite(t, f.h.dbPath); n < 50 {
		t.Fatalf("scanned only %d values", n)
	}
	if logs := f.h.logs.String(); ecml.ContainsPAN(logs) || len(logs) == 0 {
		t.Fatalf("logs hold a card number, or nothing was logged (%d bytes)", len(logs))
	}
}

func TestFacadeClearCardMode(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML()+"  allow_clear_card: true\n")
	clear := approveFields("1000")
	clear["Ecom_Payment_Card_Number"], clear["Ecom_Payment_Card_ExpDate_Month"], clear["Ecom_Payment_Card_ExpDate_Year"] = "4111111111111111", "12", "2030"
	code, out := f.facadeCall(t, "/v1/card/approve", "clear-1", map[string]any{"fields": clear})
	if code != 200 || out["status"] != "Success" {
		t.Fatalf("clear-card approve: %d %v", code, out)
	}
	if strings.Contains(f.h.logs.String(), "4111111111111111") {
		t.Fatal("the clear card number reached the logs")
	}
}

// facadePost posts a raw body with the merchant's API key, without the
// OpenAPI request check (the bodies here break it on purpose).
func (f *fed) facadePost(t *testing.T, path, idemKey, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.h.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+merchantAPIKey)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := f.h.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(rb, &out); err != nil {
		t.Fatalf("%s: not JSON: %s", path, rb)
	}
	return resp.StatusCode, out
}

// TestFacadeIssue12Findings4And5 replays, against the hub, the two facade
// findings of issue 12: track data and a password in clear were accepted
// outside the development mode (4); an inquire or cancel by order number
// alone, {} and fields at the top level made the handler panic (5).
func TestFacadeIssue12Findings4And5(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	code, route := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"), "amount": "1000", "currency": "KRW", "card_bin": "411111"})
	if code != 200 {
		t.Fatalf("routes: %d %v", code, route)
	}
	// The card encrypted as it should be, and beside it a sensitive field
	// in clear.
	card := browserEncryptedCard(t, route["encryption_certificate"].(string), route["recipient"].(string))
	for name, value := range map[string]string{"Ecom_Transaction_Track2": ";4111111111111111=30121010000000000000?", "Ecom_User_Password": "s3cret-PASSWORD"} {
		fields := approveFields("1000")
		fields[name] = value
		code, prob := f.facadeCall(t, "/v1/card/approve", "f4-"+name, map[string]any{"fields": fields, "encrypted": map[string]string{"card": card}})
		if code != http.StatusBadRequest || prob["type"] != "urn:kecis:problem:clear-card-refused" || prob["detail"] != name {
			t.Errorf("%s in clear: %d %v", name, code, prob)
		}
	}
	for _, c := range []struct{ path, key, body string }{
		{"/v1/card/inquire", "", `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`},
		{"/v1/card/cancel", "f5-1", `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`},
		{"/v1/card/inquire", "", `{}`},
		{"/v1/card/cancel", "f5-2", `{"Ecom_ConsumerOrderID":"WEB-1"}`},
	} {
		code, out := f.facadePost(t, c.path, c.key, c.body)
		if code >= 500 {
			t.Errorf("%s %s: %d %v", c.path, c.body, code, out)
		}
	}
	if logs := f.h.logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, "s3cret-PASSWORD") || ecml.ContainsPAN(logs) {
		t.Error("a panic or a secret in the hub's log")
	}
}

// TestFacadeRefusesIncompleteRequestsAtTheHub (issue 14): a request that
// lacks what its service requires is a 400 at the hub listing what is
// missing — the provider sees nothing — and an amount sent as a JSON
// number is refused saying so; the answers match the OpenAPI description.
func TestFacadeRefusesIncompleteRequestsAtTheHub(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	for _, c := range []struct {
		path, key string
		body      any
		detail    string
	}{
		{"/v1/card/approve", "inc-1", map[string]any{"fields": approveFields("15000")}, "urn:kecis:service:card:approve requires encrypted.card"},
		{"/v1/card/cancel", "inc-2", map[string]any{"fields": map[string]string{}}, "requires Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID"},
		{"/v1/card/refund", "inc-3", map[string]any{"fields": map[string]string{"Ecom_ConsumerOrderID": "WEB-1"}}, "requires Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode"},
	} {
		code, prob := f.facadeCall(t, c.path, c.key, c.body)
		if code != http.StatusBadRequest || prob["type"] != "urn:kecis:problem:missing-fields" || !strings.Contains(fmt.Sprint(prob["detail"]), c.detail) {
			t.Errorf("%s: %d %v", c.path, code, prob)
		}
	}
	code, prob := f.facadePost(t, "/v1/card/approve", "inc-4", `{"fields":{"Ecom_ConsumerOrderID":"WEB-1","Ecom_Transaction_Amount":15000,"Ecom_Transaction_CurrencyCode":"KRW"}}`)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(prob["detail"]), `fields."Ecom_Transaction_Amount" must be a JSON string, not a number`) {
		t.Errorf("an amount as a JSON number: %d %v", code, prob)
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	if f.p.received != 0 {
		t.Errorf("the provider received %d requests", f.p.received)
	}
}
