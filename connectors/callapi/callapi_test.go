package callapi

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

func TestHTTPStatus(t *testing.T) {
	st := func(top, sub string) saml.Status { return saml.Status{Code: top, SubCode: sub} }
	for _, c := range []struct {
		outcome string
		st      saml.Status
		want    int
	}{
		{OutcomeAnswered, st(saml.StatusSuccess, ""), http.StatusOK},
		{OutcomePending, st(saml.StatusResponder, saml.CodePending), http.StatusAccepted},
		{OutcomeUnavailable, st(saml.StatusResponder, saml.CodeProviderUnavailable), http.StatusServiceUnavailable},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeDeclined), http.StatusPaymentRequired},
		{OutcomeAnswered, st(saml.StatusRequester, saml.CodeDeclined), http.StatusPaymentRequired},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeInsufficientFunds), http.StatusPaymentRequired},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeLimitExceeded), http.StatusPaymentRequired},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodePending), http.StatusAccepted},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeProviderUnavailable), http.StatusServiceUnavailable},
		{OutcomeUnavailable, st(saml.StatusResponder, saml.CodeHubUnavailable), http.StatusServiceUnavailable},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeHubUnavailable), http.StatusServiceUnavailable},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeInFlight), http.StatusConflict},
		{OutcomeAnswered, st(saml.StatusRequester, saml.CodeInvalidPayload), http.StatusBadRequest},
		{OutcomeAnswered, st(saml.StatusRequester, saml.CodeInvalidMessage), http.StatusBadRequest},
		{OutcomeAnswered, st(saml.StatusRequester, saml.StatusRequestUnsupported), http.StatusBadRequest},
		{OutcomeAnswered, st(saml.StatusVersionMismatch, ""), http.StatusBadRequest},
		{OutcomeAnswered, st(saml.StatusRequester, saml.StatusRequestDenied), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusRequester, saml.CodePolicyViolation), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeInvalidCard), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusResponder, saml.CodeExpired), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusRequester, saml.CodeIdempotencyConflict), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusRequester, ""), http.StatusUnprocessableEntity},
		{OutcomeAnswered, st(saml.StatusResponder, ""), http.StatusUnprocessableEntity},
	} {
		if got := HTTPStatus(c.outcome, c.st); got != c.want {
			t.Errorf("%s %s: %d; want %d", c.outcome, c.st.Short(), got, c.want)
		}
	}
}

// TestReason: every second-level code KECIS defines (§6.2) and SAML's that
// it uses has its English phrase; the provider's message stays as sent.
func TestReason(t *testing.T) {
	for _, sub := range []string{saml.CodeDeclined, saml.CodeInsufficientFunds, saml.CodeInvalidCard, saml.CodeAuthenticationRequired,
		saml.CodePending, saml.CodeExpired, saml.CodeDuplicate, saml.CodeProviderUnavailable, saml.CodeHubUnavailable, saml.CodeLimitExceeded,
		saml.CodePolicyViolation, saml.CodeIdempotencyConflict, saml.CodeInFlight, saml.CodeInvalidMessage, saml.CodeInvalidTime,
		saml.CodeWrongDestination, saml.CodeReplay, saml.CodeNotAuthorized, saml.CodeInvalidPayload, saml.CodeDecryptionFailed,
		saml.CodeInvalidAuthenticationResult, saml.StatusRequestUnsupported, saml.StatusRequestVersionTooHigh,
		saml.StatusRequestVersionTooLow, saml.StatusRequestDenied} {
		if _, ok := reasons[saml.StatusName(sub)]; !ok {
			t.Errorf("no reason for %s", sub)
		}
	}
	r := NewResponse(OutcomeAnswered, "https://issuer.test", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInsufficientFunds, Message: "한도 초과"})
	if r.Status != "Responder" || r.SubStatus != "InsufficientFunds" || r.Message != "한도 초과" || r.Reason != "insufficient funds: not enough limit or balance" {
		t.Errorf("%+v", r)
	}
	if r := Reason(saml.Status{Code: saml.StatusSuccess}); r != "" {
		t.Errorf("Success: %q", r)
	}
	if r := Reason(saml.Status{Code: saml.StatusRequester, SubCode: "urn:example:Other"}); r != "the provider refused the request" {
		t.Errorf("an unknown sub-status: %q", r)
	}
}

func problemOf(t *testing.T, err error, want *httpserver.Problem, detail string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%v; want %s", err, want.Type)
	}
	if d := httpserver.AsProblem(err).Detail(); !strings.Contains(d, detail) {
		t.Errorf("detail %q does not say %q", d, detail)
	}
}

// TestDecodeCall: values that are not JSON strings are refused naming
// their kind, never repeating them.
func TestDecodeCall(t *testing.T) {
	for _, c := range []struct{ body, detail string }{
		{`{"fields":{"Ecom_Transaction_Amount":15000}}`, `fields."Ecom_Transaction_Amount" must be a JSON string, not a number: every value of fields is a JSON string, amounts included ("15000", not 15000)`},
		{`{"fields":{"Ecom_Payment_Card_Number":4111111111111111}}`, "not a number"},
		{`{"fields":{"Ecom_ConsumerOrderID":null}}`, "must be a JSON string, not null"},
		{`{"fields":{"Ecom_ConsumerOrderID":["A"]}}`, "not an array"},
		{`{"fields":[]}`, "fields must be a JSON object, not an array"},
		{`{"recipient":true,"fields":{}}`, "recipient must be a JSON string, not a boolean"},
		{`"fields"`, "the body must be a JSON object, not a string"},
		{`fields=1`, "the body must be a JSON object"},
		{`{"fields":{}`, "not valid JSON"},
	} {
		_, err := DecodeCall([]byte(c.body))
		problemOf(t, err, ProblemBadRequest, c.detail)
		if strings.Contains(httpserver.AsProblem(err).Detail(), "4111111111111111") {
			t.Errorf("%s: the detail repeats the number", c.body)
		}
	}
	in, err := DecodeCall([]byte(`{"recipient":"https://issuer.test","fields":{"Ecom_ConsumerOrderID":"A"},"routing":{"card_bin":"411111"}}`))
	if err != nil || in.Recipient != "https://issuer.test" || in.Fields["Ecom_ConsumerOrderID"] != "A" || in.Routing.CardBIN != "411111" {
		t.Fatalf("%+v %v", in, err)
	}
}

// TestDecodeAuthenticationResults: authentication_results is a member only
// a server that takes it admits (DecodeCallWith: the sidecar's caller);
// DecodeCall — the hub's facade, whose OpenAPI description does not
// define it — refuses it as any undefined member. Its items parse to the
// elements to embed, each a kecis:AuthenticationResult read as the
// receive pipeline reads a message.
func TestDecodeAuthenticationResults(t *testing.T) {
	el := `<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0" ID="_a"/>`
	item := base64.StdEncoding.EncodeToString([]byte(el))
	body := `{"fields":{},"authentication_results":["` + item + `"]}`
	_, err := DecodeCall([]byte(body))
	problemOf(t, err, ProblemBadRequest, `a member the OpenAPI description does not define: "authentication_results"`)
	// The facade and the sidecar's caller admit it.
	in, err := DecodeCallWith([]byte(body), DecodeOptions{AuthenticationResults: true})
	if err != nil || len(in.AuthenticationResults) != 1 || in.AuthenticationResults[0] != item {
		t.Fatalf("%+v %v", in, err)
	}
	els, err := ParseAuthenticationResults(in.AuthenticationResults)
	if err != nil || len(els) != 1 || els[0].SelectAttrValue("ID", "") != "_a" {
		t.Fatalf("%v %v", els, err)
	}
	if els, err := ParseAuthenticationResults(nil); err != nil || els != nil {
		t.Fatalf("none: %v %v", els, err)
	}
	_, err = ParseAuthenticationResults([]string{item, item, item, item, item})
	problemOf(t, err, ProblemBadRequest, "at most 4")
	big := base64.StdEncoding.EncodeToString([]byte(`<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0">` +
		strings.Repeat("x", MaxAuthenticationResultLen) + `</kecis:AuthenticationResult>`))
	_, err = ParseAuthenticationResults([]string{big})
	problemOf(t, err, ProblemInvalidAuthenticationResult, "authentication_results[0] is longer than 12288 characters")
	deep := base64.StdEncoding.EncodeToString([]byte(`<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0">` +
		strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20) + `</kecis:AuthenticationResult>`))
	_, err = ParseAuthenticationResults([]string{deep})
	problemOf(t, err, ProblemInvalidAuthenticationResult, "authentication_results[0] is not a well-formed XML document")
	for _, bad := range []string{"not base64!", "QQ"} { // "QQ": "A" without its padding
		_, err = ParseAuthenticationResults([]string{bad})
		problemOf(t, err, ProblemInvalidAuthenticationResult, "is not standard base64")
	}
	// What an answer carries (EncodeAuthenticationResults) reads back.
	again, err := ParseAuthenticationResults(EncodeAuthenticationResults(els))
	if err != nil || len(again) != 1 || again[0].SelectAttrValue("ID", "") != "_a" {
		t.Fatalf("round trip: %v %v", again, err)
	}
}

// TestPayload: the fields' checks before a request is built.
func TestPayload(t *testing.T) {
	pan := "179624123456789805"
	for d := '0'; d <= '9'; d++ {
		if ecml.LuhnValid(pan + string(d)) {
			pan += string(d)
			break
		}
	}
	card := map[string]string{"Ecom_Payment_Card_Number": "4111111111111111", "Ecom_Payment_Card_ExpDate_Month": "12", "Ecom_Payment_Card_ExpDate_Year": "2030"}
	for _, c := range []struct {
		name   string
		fields map[string]string
		o      PayloadOptions
		want   *httpserver.Problem
		detail string
	}{
		{"card in clear", card, PayloadOptions{}, ProblemClearSensitive, "Ecom_Payment_Card_ExpDate_Month, Ecom_Payment_Card_ExpDate_Year, Ecom_Payment_Card_Number"},
		{"unknown name", map[string]string{"card_number": "x"}, PayloadOptions{ClearSensitive: true}, ProblemInvalidFields, `unknown ECML field names: "card_number"`},
		{"order number with a card number", map[string]string{"Ecom_ConsumerOrderID": "ORDER-" + pan}, PayloadOptions{ClearSensitive: true}, ProblemCardNumberInField, "Ecom_ConsumerOrderID"},
		{"amount that is a card number", map[string]string{"Ecom_Transaction_Amount": "4111111111111111", "Ecom_Transaction_CurrencyCode": "KRW"}, PayloadOptions{}, ProblemCardNumberInField, "Ecom_Transaction_Amount"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Payload(c.fields, c.o)
			problemOf(t, err, c.want, c.detail)
			if strings.Contains(httpserver.AsProblem(err).Detail(), "4111111111111111") || strings.Contains(httpserver.AsProblem(err).Detail(), pan) {
				t.Error("the detail repeats a value")
			}
		})
	}
	p, err := Payload(card, PayloadOptions{ClearSensitive: true})
	if err != nil || p.Ecom.Payment.Card.Number.Last4() != "1111" || p.Ecom.SchemaVersion != ecml.SchemaVersion {
		t.Fatalf("%v", err)
	}
	if _, err = Payload(map[string]string{"Ecom_ConsumerOrderID": "ORDER-20261202-123456789012"}, PayloadOptions{}); err != nil {
		t.Fatalf("a long order number that holds no card number: %v", err)
	}
}

// TestCheckRequired: what a service requires, from the card service's own
// declaration (card.Missing), named as the caller sends it.
func TestCheckRequired(t *testing.T) {
	fields := func(m map[string]string) *ecml.Payload {
		p, err := Payload(m, PayloadOptions{ClearSensitive: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	money := map[string]string{"Ecom_Transaction_Amount": "15000", "Ecom_Transaction_CurrencyCode": "KRW"}
	for _, c := range []struct {
		name      string
		service   string
		p         *ecml.Payload
		encrypted bool
		detail    string // "" when complete
	}{
		{"approve without a card", saml.ServiceURI("card", "approve"), fields(money), false,
			"urn:kecis:service:card:approve requires Ecom_Payment_Card_Number, Ecom_Payment_Card_ExpDate_Month, Ecom_Payment_Card_ExpDate_Year"},
		{"approve without a card, encrypted expected", saml.ServiceURI("card", "approve"), fields(money), true, "requires encrypted.card"},
		{"approve with nothing", saml.ServiceURI("card", "approve"), nil, true, "requires encrypted.card, Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode"},
		{"cancel with nothing", saml.ServiceURI("card", "cancel"), fields(nil), false, "requires Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID"},
		{"inquire by order", saml.ServiceURI("card", "inquire"), fields(map[string]string{"Ecom_ConsumerOrderID": "A"}), false, ""},
		{"refund by approval without amount", saml.ServiceURI("card", "refund"), fields(map[string]string{"Ecom_Transaction_ApprovalCode": "1"}), false,
			"requires Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode"},
		{"a service without declared requirements", saml.ServiceURI("bank", "transfer"), fields(nil), false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRequired(c.service, c.p, c.encrypted)
			if c.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			problemOf(t, err, ProblemMissingFields, c.detail)
		})
	}
}

// TestMissing: the card service's declaration as the provider's SDK reads
// it (KECIS §15.2): approve-verification needs the order, the card and
// kx:AmountAuth with its challenge (clear or encrypted); a refund may name
// no amount (a verification approval's, refunded whole), but an amount
// without its currency or the reverse is incomplete.
func TestMissing(t *testing.T) {
	verification := saml.ServiceURI("card", "approve-verification")
	refund := saml.ServiceURI("card", "refund")
	full := func() *ecml.Payload {
		return &ecml.Payload{Ecom: &ecml.Ecom{ConsumerOrderID: "AA-1", Payment: &ecml.Payment{Card: &ecml.Card{Number: "4111111111111111"}}},
			AmountAuth: &ecml.AmountAuth{SessionID: "S-1", Ceiling: "50000", Currency: "KRW", Challenge: "1234"}}
	}
	encrypted := full()
	encrypted.AmountAuth.Challenge, encrypted.AmountAuth.EncryptedChallenge = "", etree.NewElement("xenc:EncryptedData")
	noChallenge := full()
	noChallenge.AmountAuth.Challenge = ""
	noOrder := full()
	noOrder.Ecom.ConsumerOrderID = ""
	byApproval := &ecml.Payload{Ecom: &ecml.Ecom{Transaction: &ecml.Transaction{Code: &ecml.Code{Approval: "30000001"}}}}
	amountOnly := &ecml.Payload{Ecom: &ecml.Ecom{Transaction: &ecml.Transaction{Amount: "5000", Code: &ecml.Code{Approval: "30000001"}}}}
	for _, c := range []struct {
		name    string
		service string
		p       *ecml.Payload
		want    string
	}{
		{"verification, complete", verification, full(), ""},
		{"verification, challenge encrypted", verification, encrypted, ""},
		{"verification, no challenge", verification, noChallenge, "kx:AmountAuth/kx:Challenge"},
		{"verification, no order", verification, noOrder, "Ecom_ConsumerOrderID"},
		{"verification, nothing", verification, nil, "Ecom_ConsumerOrderID, Ecom_Payment_Card_Number, Ecom_Payment_Card_ExpDate_Month, " +
			"Ecom_Payment_Card_ExpDate_Year, kx:AmountAuth/@SessionID, kx:AmountAuth/@Ceiling, kx:AmountAuth/@Currency, kx:AmountAuth/kx:Challenge"},
		{"refund naming no amount", refund, byApproval, ""},
		{"refund, an amount without its currency", refund, amountOnly, "Ecom_Transaction_CurrencyCode"},
	} {
		if got := strings.Join(Missing(c.service, c.p), ", "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// The callers' check asks a merchant for the amount of a refund.
	problemOf(t, CheckRequired(refund, byApproval, true), ProblemMissingFields,
		"urn:kecis:service:card:refund requires Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode")
}

// failingBody is a body whose reading fails: the client went away.
type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }
func (failingBody) Close() error             { return nil }

// TestReadBody: a body within the cap is read whole; a larger one is
// too-large (413) saying the cap, as the hub's own endpoints answer it;
// one that cannot be read is unreadable (400) with the error as its cause.
func TestReadBody(t *testing.T) {
	read := func(body io.ReadCloser) ([]byte, error) {
		r := httptest.NewRequest(http.MethodPost, "/v1/card/approve", nil)
		r.Body = body
		return ReadBody(httptest.NewRecorder(), r, 10)
	}
	if b, err := read(io.NopCloser(strings.NewReader("0123456789"))); err != nil || string(b) != "0123456789" {
		t.Fatalf("10 bytes: %q %v", b, err)
	}
	_, err := read(io.NopCloser(strings.NewReader("0123456789A")))
	var p *httpserver.Problem
	if !errors.As(err, &p) || p.Type != "too-large" || p.Status != http.StatusRequestEntityTooLarge ||
		p.Title != httpserver.ProblemTooLarge.Title || p.Detail() != "the body is larger than 10 bytes" {
		t.Errorf("11 bytes: %v", err)
	}
	_, err = read(failingBody{})
	if !errors.As(err, &p) || p.Type != "unreadable" || p.Status != http.StatusBadRequest || p.Cause() == nil ||
		!strings.Contains(p.Cause().Error(), "connection reset") {
		t.Errorf("unreadable: %v", err)
	}
}
