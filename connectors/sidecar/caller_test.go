package sidecar

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const (
	callerIssuer = "https://issuer.test/kecis"
	callerHub    = "https://hub.test/kecis"
)

// fakeHub is the connectors.Client as the caller uses it: it records the
// calls and answers each by its order number.
type fakeHub struct {
	mu      sync.Mutex
	calls   []connectors.Call
	answers map[string]*connectors.Result
	err     error
}

func (h *fakeHub) Do(_ context.Context, call connectors.Call) (*connectors.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
	if h.err != nil {
		return nil, h.err
	}
	res := &connectors.Result{Status: saml.Status{Code: saml.StatusSuccess}, From: call.Recipient,
		Response: &saml.ServiceResponse{ID: "_resp", InResponseTo: "_req"},
		Payload:  &ecml.Payload{Ecom: &ecml.Ecom{ConsumerOrderID: call.Payload.Ecom.ConsumerOrderID}}}
	if a, ok := h.answers[call.Payload.Ecom.ConsumerOrderID]; ok {
		res = a
	}
	return res, nil
}

func (h *fakeHub) n() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// post sends one request to the caller.
func post(t *testing.T, c *Caller, path, key, body string) (int, string, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("not JSON: %s", w.Body)
	}
	return w.Code, w.Header().Get("Content-Type"), out
}

// withAuth adds authentication_results (raw JSON) to a call's body.
func withAuth(body, results string) string {
	return strings.TrimSuffix(body, "}") + `,"authentication_results":` + results + "}"
}

func cardFields(order string) string {
	return `{"recipient":"` + callerIssuer + `","fields":{"Ecom_ConsumerOrderID":"` + order + `","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW",` +
		`"Ecom_Payment_Card_Number":"4111111111111111","Ecom_Payment_Card_ExpDate_Month":"12","Ecom_Payment_Card_ExpDate_Year":"2030"}}`
}

// TestCallerProblems answers every problem the caller has, with the type,
// status and RFC 9457 shape the hub's facade gives the same refusal; none
// reaches the hub.
func TestCallerProblems(t *testing.T) {
	hub := &fakeHub{}
	c := &Caller{Client: hub}
	now := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	keyPEM, certPEM, err := devpki.Generate(devpki.Signing, "hub metadata", nil, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := saml.ParseKeyPEM(keyPEM)
	certs, _ := saml.ParseCertificatesPEM(certPEM)
	signer, err := saml.NewSigner(key, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	md := metadatatest.NewHub(t, signer, func() time.Time { return now }, metadatatest.Simple("https://shop.test/kecis", signer.Cert)) // nobody offers the service
	resolved := &Caller{Client: hub, Resolver: &connectors.Resolver{HubURL: md.URL, HubCerts: []*x509.Certificate{signer.Cert},
		HTTP: md.Client(), Now: func() time.Time { return now }}}
	down := metadatatest.NewHub(t, signer, func() time.Time { return now })
	down.SetDown(true)
	unreachable := &Caller{Client: hub, Resolver: &connectors.Resolver{HubURL: down.URL, HubCerts: []*x509.Certificate{signer.Cert},
		HTTP: down.Client(), Now: func() time.Time { return now }}}
	const approve = "/v1/card/approve"
	noRecipient := `{"fields":{"Ecom_ConsumerOrderID":"A","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW",` +
		`"Ecom_Payment_Card_Number":"4111111111111111","Ecom_Payment_Card_ExpDate_Month":"12","Ecom_Payment_Card_ExpDate_Year":"2030"}}`
	cases := []struct {
		name      string
		c         *Caller
		method    string
		path, key string
		body      string
		status    int
		typ       string
		detail    string
	}{
		{"not a call", c, http.MethodGet, "/v1/card/approve", "k", cardFields("A"), 404, "unknown-service", "POST /v1/{group}/{operation}"},
		{"upper-case group", c, "", "/v1/CARD/approve", "k", cardFields("A"), 404, "unknown-service", ""},
		{"no Idempotency-Key", c, "", approve, "", cardFields("A"), 400, "idempotency-key-missing", ""},
		{"Idempotency-Key too long", c, "", approve, strings.Repeat("k", 256), cardFields("A"), 400, "idempotency-key-invalid", ""},
		{"an amount as a JSON number", c, "", approve, "k", `{"fields":{"Ecom_Transaction_Amount":15000}}`, 400, "bad-request",
			`fields."Ecom_Transaction_Amount" must be a JSON string, not a number: every value of fields is a JSON string, amounts included ("15000", not 15000)`},
		{"a card number as a JSON number", c, "", approve, "k", `{"fields":{"Ecom_Payment_Card_Number":4111111111111111}}`, 400, "bad-request", "not a number"},
		{"not an object", c, "", approve, "k", `[]`, 400, "bad-request", "the body must be a JSON object, not an array"},
		{"too large", c, "", approve, "k", `{"fields":{"Ecom_ConsumerOrderID":"` + strings.Repeat("A", 300<<10) + `"}}`, 413, "too-large", "larger than 262144 bytes"},
		{"encrypted", c, "", approve, "k", `{"fields":{},"encrypted":{"card":"<x/>"}}`, 400, "unknown-encrypted", ""},
		{"unknown field name", c, "", approve, "k", `{"fields":{"card_number":"4111111111111111"}}`, 400, "invalid-fields", `"card_number"`},
		{"an order number that reads as a card number", c, "", "/v1/card/inquire", "", `{"recipient":"x","fields":{"Ecom_ConsumerOrderID":"4111111111111111"}}`,
			400, "card-number-in-field", "Ecom_ConsumerOrderID"},
		{"missing card number", c, "", approve, "k", `{"recipient":"x","fields":{"Ecom_ConsumerOrderID":"A","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW"}}`,
			400, "missing-fields", "urn:kecis:service:card:approve requires Ecom_Payment_Card_Number, Ecom_Payment_Card_ExpDate_Month, Ecom_Payment_Card_ExpDate_Year"},
		{"cancel naming nothing", c, "", "/v1/card/cancel", "k", `{"recipient":"x","fields":{}}`, 400, "missing-fields", "Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID"},
		{"no recipient and no resolver", c, "", approve, "k", noRecipient, 400, "no-recipient", ""},
		{"nobody offers it", resolved, "", approve, "k", noRecipient, 422, "no-route", ""},
		{"metadata unavailable", unreachable, "", approve, "k", noRecipient, 503, "metadata-unavailable", ""},
		{"an authentication result that is not base64", c, "", approve, "k", withAuth(cardFields("A"), `["<kecis:AuthenticationResult/>"]`), 400,
			"invalid-authentication-result", "authentication_results[0] is not standard base64"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, tc.path, strings.NewReader(tc.body))
			if tc.key != "" {
				r.Header.Set("Idempotency-Key", tc.key)
			}
			w := httptest.NewRecorder()
			tc.c.ServeHTTP(w, r)
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("not JSON: %s", w.Body)
			}
			if w.Code != tc.status || out["type"] != "urn:kecis:problem:"+tc.typ || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %v; want %d %s", w.Code, w.Header().Get("Content-Type"), out, tc.status, tc.typ)
			}
			if s, _ := out["status"].(float64); int(s) != tc.status || out["title"] == "" {
				t.Errorf("status or title: %v", out)
			}
			if d, _ := out["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q does not say %q", d, tc.detail)
			}
			if strings.Contains(w.Body.String(), "4111111111111111") {
				t.Errorf("the answer repeats a card number: %s", w.Body)
			}
		})
		seen[tc.typ] = true
	}
	t.Run("unreadable", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, approve, iotest.ErrReader(errors.New("connection reset by peer")))
		r.Header.Set("Idempotency-Key", "k")
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"urn:kecis:problem:unreadable"`) {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	seen["unreadable"] = true
	for _, p := range CallerProblems {
		if !seen[p.Type] {
			t.Errorf("no test answers the problem %s", p.Type)
		}
	}
	if hub.n() != 0 {
		t.Errorf("%d calls reached the hub", hub.n())
	}
}

// TestCallerProblemsDeclaredOnce: every problem the caller answers has
// the one status and title its type is declared with in the program
// (httpserver.NewProblem refuses a second declaration that differs, so
// kecis, which links the hub and the sidecar, could not start with two),
// and the types the hub answers too are the hub's declarations:
// metadata-unavailable httpserver's, the call API's callapi's.
func TestCallerProblemsDeclaredOnce(t *testing.T) {
	declared := map[string]*httpserver.Problem{}
	for _, p := range httpserver.Declared() {
		declared[p.Type] = p
	}
	for _, p := range CallerProblems {
		d, ok := declared[p.Type]
		if !ok || d.Status != p.Status || d.Title != p.Title {
			t.Errorf("%s: answered as %d %q, declared as %v", p.Type, p.Status, p.Title, d)
		}
	}
	for _, c := range []struct{ caller, hub *httpserver.Problem }{
		{ProblemMetadataUnavailable, httpserver.ProblemMetadataUnavailable},
		{ProblemEncryptedHere, callapi.ProblemUnknownEncrypted},
		{callapi.ProblemBadRequest, httpserver.ProblemBadRequest},
		{callapi.ProblemTooLarge, httpserver.ProblemTooLarge},
	} {
		if c.caller.Type != c.hub.Type || c.caller.Status != c.hub.Status || c.caller.Title != c.hub.Title {
			t.Errorf("%s: the caller answers %d %q, the hub %d %q", c.caller.Type, c.caller.Status, c.caller.Title, c.hub.Status, c.hub.Title)
		}
	}
}

// TestCallerAnswers: the caller answers as the hub's facade does — the
// provider's answer with callapi.HTTPStatus's status, its message as sent
// and an English reason; the hub's own Pending 202 and ProviderUnavailable
// 503; a call that could not complete 503.
func TestCallerAnswers(t *testing.T) {
	res := func(from string, st saml.Status) *connectors.Result {
		return &connectors.Result{Status: st, From: from, Response: &saml.ServiceResponse{ID: "_resp", InResponseTo: "_req"}}
	}
	cases := []struct {
		name    string
		res     *connectors.Result
		status  int
		outcome string
		sub     string
		reason  string
	}{
		{"approved", nil, 200, "answered", "", ""},
		{"declined", res(callerIssuer, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeDeclined, Message: "승인 거절"}), 402, "answered", "Declined", "the provider declined"},
		{"insufficient funds", res(callerIssuer, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInsufficientFunds}), 402, "answered", "InsufficientFunds", "insufficient funds: not enough limit or balance"},
		{"limit exceeded", res(callerIssuer, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeLimitExceeded}), 402, "answered", "LimitExceeded", "an amount or count limit was reached"},
		{"invalid payload", res(callerIssuer, saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload}), 400, "answered", "InvalidPayload", "the request's fields are not what the service needs"},
		{"policy", res(callerIssuer, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePolicyViolation}), 422, "answered", "PolicyViolation", "refused by federation or provider policy"},
		{"the hub's Pending", res(callerHub, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending}), 202, "pending", "Pending", "the outcome is not known yet: retry with the same Idempotency-Key, or inquire"},
		{"the hub's ProviderUnavailable", res(callerHub, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable}), 503, "unavailable", "ProviderUnavailable", "the provider did not answer"},
		{"the hub's InFlight", res(callerHub, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInFlight}), 409, "answered", "InFlight", "a request with this Idempotency-Key is being processed"},
	}
	hub := &fakeHub{answers: map[string]*connectors.Result{}}
	for _, tc := range cases {
		if tc.res != nil {
			hub.answers[tc.name] = tc.res
		}
	}
	c := &Caller{Client: hub}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, ctype, out := post(t, c, "/v1/card/approve", "k-"+tc.name, cardFields(tc.name))
			if code != tc.status || ctype != "application/json" || out["outcome"] != tc.outcome || out["provider"] != callerIssuer {
				t.Fatalf("%d %s %v; want %d %s", code, ctype, out, tc.status, tc.outcome)
			}
			if sub, _ := out["sub_status"].(string); sub != tc.sub {
				t.Errorf("sub_status %q; want %q", sub, tc.sub)
			}
			if r, _ := out["reason"].(string); r != tc.reason {
				t.Errorf("reason %q; want %q", r, tc.reason)
			}
			if tc.res != nil && tc.res.Status.Message != "" && out["message"] != tc.res.Status.Message {
				t.Errorf("message %v", out["message"])
			}
		})
	}
	// The card went through in clear, to be encrypted by the client; its
	// BIN and last four became the routing hints.
	hub.mu.Lock()
	first := hub.calls[0]
	hub.mu.Unlock()
	if first.Routing == nil || first.Routing.CardBIN != "411111" || first.Routing.CardLast4 != "1111" || first.Payload.Ecom.Payment.Card.Number.Reveal() != "4111111111111111" {
		t.Errorf("the call: %+v", first)
	}
	t.Run("could not complete", func(t *testing.T) {
		c := &Caller{Client: &fakeHub{err: errors.New("dial tcp: connection refused")}}
		code, _, out := post(t, c, "/v1/card/inquire", "", `{"recipient":"`+callerIssuer+`","fields":{"Ecom_ConsumerOrderID":"A"}}`)
		if code != 503 || out["outcome"] != "unavailable" || out["sub_status"] != "ProviderUnavailable" || out["reason"] != "the provider did not answer" {
			t.Fatalf("%d %v", code, out)
		}
	})
}

// TestEngineNamesEveryMissingField: a request the mapping cannot fill is
// refused naming every ECML field it lacks, sorted — a request without a
// card names the card number, not whichever expiry field a map's order
// reached first — and no native call is made.
func TestEngineNamesEveryMissingField(t *testing.T) {
	native := newFakeNative(t, map[string]string{"key-of-shop-a": "M000001", "key-of-shop-b": "M000002"})
	svc := goodEngine(t, native)
	p := orderForm(t, "ORD-NOCARD")
	p.Ecom.Transaction = &ecml.Transaction{Amount: "15000", Currency: "KRW"}
	for i := 0; i < 20; i++ { // map order varies from run to run
		_, err := svc["urn:kecis:service:card:approve"](context.Background(), &connectors.Request{Service: "urn:kecis:service:card:approve",
			Issuer: hubID, OnBehalfOf: shopA, IdempotencyKey: "k", Payload: p})
		st, ok := connectors.AsStatus(err)
		if !ok || st.SubCode != saml.CodeInvalidPayload ||
			st.Message != "the request lacks Ecom_Payment_Card_ExpDate_Year, Ecom_Payment_Card_Number" {
			t.Fatalf("%v", err)
		}
	}
	if calls := native.seen(); len(calls) != 0 {
		t.Fatalf("native calls: %v", calls)
	}
}

// TestCallerEmbedsAuthenticationResults: the base64 of a signed
// kecis:AuthenticationResult in authentication_results reaches the hub as
// an element of the call, unchanged (its signature verifies, KECIS §3.2);
// anything else in it — a DOCTYPE, another element, text that is not
// XML, too many or too long items, items that are not strings — is
// refused before the hub with the call API's problems, naming the item,
// never its content.
func TestCallerEmbedsAuthenticationResults(t *testing.T) {
	now := time.Now()
	keyPEM, certPEM, err := devpki.Generate(devpki.Signing, "pg signing", nil, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := saml.ParseKeyPEM(keyPEM)
	certs, _ := saml.ParseCertificatesPEM(certPEM)
	signer, err := saml.NewSigner(key, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	el, err := (&saml.AuthenticationResult{ID: "_aa1", IssueInstant: now, Issuer: aaPG, Method: "urn:kecis:authn:amount-auth", Factors: 1,
		Amount: "15000", Currency: "KRW", Merchant: shopA, OrderID: "A", CardRef: "411111******1111", AuthnInstant: now,
		NotOnOrAfter: now.Add(10 * time.Minute)}).Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := base64.StdEncoding.EncodeToString(raw)

	hub := &fakeHub{}
	c := &Caller{Client: hub}
	code, _, out := post(t, c, "/v1/card/approve", "k-auth", withAuth(cardFields("A"), `["`+good+`"]`))
	if code != http.StatusOK || hub.n() != 1 {
		t.Fatalf("%d %v", code, out)
	}
	hub.mu.Lock()
	got := hub.calls[0].AuthResults
	hub.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d results embedded", len(got))
	}
	res, _, err := saml.VerifyAuthenticationResult(context.Background(), got[0], pgKeys{signer.Cert}, now, time.Minute)
	if err != nil || res.OrderID != "A" || res.Amount != "15000" {
		t.Fatalf("the embedded result: %+v %v", res, err)
	}
	// Without authentication_results, the call embeds none.
	if code, _, _ := post(t, c, "/v1/card/approve", "k-none", cardFields("B")); code != http.StatusOK {
		t.Fatal(code)
	}
	hub.mu.Lock()
	none := hub.calls[1].AuthResults
	hub.mu.Unlock()
	if none != nil {
		t.Fatalf("a call without results embedded %d", len(none))
	}

	secret := "SECRET-CONTENT-4111111111111111"
	cases := []struct {
		name, results string
		typ, detail   string
	}{
		{"DOCTYPE", `["` + b64(`<!DOCTYPE x [<!ENTITY e "`+secret+`">]><kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0"/>`) + `"]`,
			"invalid-authentication-result", "authentication_results[0] holds a DOCTYPE"},
		{"another element", `["` + good + `","` + b64(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0">`+secret+`</kecis:Payload>`) + `"]`,
			"invalid-authentication-result", "authentication_results[1] is not a kecis:AuthenticationResult element"},
		{"another namespace", `["` + b64(`<AuthenticationResult xmlns="urn:other"/>`) + `"]`,
			"invalid-authentication-result", "is not a kecis:AuthenticationResult element"},
		{"not XML", `["` + b64(secret) + `"]`, "invalid-authentication-result", "authentication_results[0] is not a well-formed XML document"},
		{"a comment", `["` + b64(`<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0"><!-- `+secret+` --></kecis:AuthenticationResult>`) + `"]`,
			"invalid-authentication-result", "is not a well-formed XML document"},
		{"too many", `["` + strings.Repeat(good+`","`, 4) + good + `"]`, "bad-request", "authentication_results has 5 items; at most 4"},
		{"too long", `["` + strings.Repeat("A", callapi.MaxAuthenticationResultLen+4) + `"]`, "bad-request", "authentication_results[0] must hold 1 to 12288 characters"},
		{"empty", `[""]`, "bad-request", "authentication_results[0] must hold 1 to"},
		{"not an array", `"` + good + `"`, "bad-request", "authentication_results must be a JSON array of strings, not a string"},
		{"an item that is no string", `[4111111111111111]`, "bad-request", "authentication_results[0] must be a JSON string, not a number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/card/approve", strings.NewReader(withAuth(cardFields("C"), tc.results)))
			r.Header.Set("Idempotency-Key", "k-"+tc.name)
			w := httptest.NewRecorder()
			c.ServeHTTP(w, r)
			var p map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if w.Code != http.StatusBadRequest || p["type"] != "urn:kecis:problem:"+tc.typ {
				t.Fatalf("%d %v", w.Code, p)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q does not say %q", d, tc.detail)
			}
			if strings.Contains(w.Body.String(), "SECRET") || strings.Contains(w.Body.String(), "4111111111111111") {
				t.Errorf("the answer repeats the item: %s", w.Body)
			}
		})
	}
	if hub.n() != 2 {
		t.Errorf("%d calls reached the hub, want the 2 accepted", hub.n())
	}
}
