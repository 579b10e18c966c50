package facade_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/beevik/etree"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
)

const approve, inquire, cancel = "/v1/card/approve", "/v1/card/inquire", "/v1/card/cancel"

// TestProblems answers every problem type the facade has, each from a
// request that reaches it through HTTP, with its status and the JSON shape
// of RFC 9457.
func TestProblems(t *testing.T) {
	prod, dev, broken := newEnv(t, options{}), newEnv(t, options{clear: true}), newEnv(t, options{failRules: true})
	downDB := &dbState{}
	downDB.down.Store(true)
	down := newEnv(t, options{db: downDB})
	card := browserCard(t, prod.issuer, issuerID, "4111111111111111")
	devCard := browserCard(t, dev.issuer, issuerID, "4111111111111111")
	fields := func(extra ...string) map[string]string {
		m := approveFields("WEB-1", "15000")
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	ok := jsonBody(t, map[string]any{"fields": fields(), "encrypted": map[string]string{"card": card}})
	cases := []struct {
		name   string
		env    *env
		req    request
		status int
		typ    string
		detail string // a part of the detail, when set
	}{
		{"no credential", prod, request{path: approve, key: "k", auth: "-", body: ok}, 401, "unauthenticated", ""},
		{"the hub's database is down", down, request{path: approve, key: "k", body: ok}, 503, "unavailable", ""},
		{"unknown API key", prod, request{path: approve, key: "k", auth: "sk_wrong", body: ok}, 401, "unauthenticated", ""},
		{"unknown API key on routes", prod, request{path: "/v1/routes", auth: "sk_wrong", body: `{"service":"x"}`}, 401, "unauthenticated", ""},
		{"virtual cards are not on the facade", prod, request{path: "/v1/vcn/issue", key: "k", body: `{"fields":{}}`}, 404, "unknown-service", ""},
		{"upper-case group", prod, request{path: "/v1/VCN/issue", key: "k", body: `{"fields":{}}`}, 404, "unknown-service", ""},
		{"group with a colon", prod, request{path: "/v1/card:x/approve", key: "k", body: ok}, 404, "unknown-service", ""},
		{"no Idempotency-Key", prod, request{path: approve, body: ok}, 400, "idempotency-key-missing", ""},
		{"Idempotency-Key too long", prod, request{path: approve, key: strings.Repeat("k", 256), body: ok}, 400, "idempotency-key-invalid", ""},
		{"empty object", prod, request{path: inquire, body: `{}`}, 400, "bad-request", "fields is required"},
		{"fields null", prod, request{path: inquire, body: `{"fields":null}`}, 400, "bad-request", "fields must be a JSON object"},
		{"not JSON", prod, request{path: inquire, body: `fields=1`}, 400, "bad-request", "the body must be a JSON object"},
		{"an array", prod, request{path: inquire, body: `[{"fields":{}}]`}, 400, "bad-request", "the body must be a JSON object"},
		{"empty body", prod, request{path: inquire, body: ``}, 400, "bad-request", "the body must be a JSON object"},
		{"truncated", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"A"}`}, 400, "bad-request", "not valid JSON"},
		{"trailing data", prod, request{path: inquire, body: `{"fields":{}} {"fields":{}}`}, 400, "bad-request", "followed by more data"},
		{"fields at the top level", prod, request{path: inquire, body: `{"Ecom_ConsumerOrderID":"WEB-1"}`}, 400, "bad-request", `"Ecom_ConsumerOrderID"`},
		{"a member in another case", prod, request{path: inquire, body: `{"Fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`}, 400, "bad-request", `"Fields"`},
		{"a member twice", prod, request{path: inquire, body: `{"fields":{},"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`}, 400, "bad-request", "twice"},
		{"a field twice", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"A","Ecom_ConsumerOrderID":"B"}}`}, 400, "bad-request", "twice"},
		{"a number in fields", prod, request{path: approve, key: "k", body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1","Ecom_Transaction_Amount":15000}}`}, 400, "bad-request", `fields."Ecom_Transaction_Amount" must be a JSON string, not a number: every value of fields is a JSON string, amounts included ("15000", not 15000)`},
		{"a card number as a JSON number is not repeated", prod, request{path: approve, key: "k", body: `{"fields":{"Ecom_Payment_Card_Number":4111111111111111}}`}, 400, "bad-request", "not a number"},
		{"a boolean in fields", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":true}}`}, 400, "bad-request", "not a boolean"},
		{"an array as the body", prod, request{path: inquire, body: `[]`}, 400, "bad-request", "the body must be a JSON object, not an array"},
		{"approve without a card", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields()})}, 400, "missing-fields",
			"urn:kecis:service:card:approve requires encrypted.card"},
		{"approve without a card in development mode", dev, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields()})}, 400, "missing-fields",
			"requires Ecom_Payment_Card_Number, Ecom_Payment_Card_ExpDate_Month, Ecom_Payment_Card_ExpDate_Year"},
		{"approve without an amount", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": map[string]string{"Ecom_ConsumerOrderID": "WEB-1"},
			"encrypted": map[string]string{"card": card}})}, 400, "missing-fields", "requires Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode"},
		{"cancel naming nothing", prod, request{path: cancel, key: "k", body: `{"fields":{}}`}, 400, "missing-fields", "requires Ecom_Transaction_ApprovalCode or Ecom_ConsumerOrderID"},
		{"refund without an amount", prod, request{path: "/v1/card/refund", key: "k", body: `{"fields":{"Ecom_Transaction_ApprovalCode":"03427123"}}`}, 400, "missing-fields",
			"urn:kecis:service:card:refund requires Ecom_Transaction_Amount, Ecom_Transaction_CurrencyCode"},
		{"an order number that reads as a card number", prod, request{path: inquire, body: jsonBody(t, map[string]any{"fields": map[string]string{"Ecom_ConsumerOrderID": "ORDER-" + luhnValid("179624123456789805")}})},
			400, "card-number-in-field", "Ecom_ConsumerOrderID"},
		{"null in fields", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":null}}`}, 400, "bad-request", "must be a JSON string"},
		{"an object in fields", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":{"a":"b"}}}`}, 400, "bad-request", "must be a JSON string"},
		{"recipient not a string", prod, request{path: inquire, body: `{"recipient":1,"fields":{}}`}, 400, "bad-request", "recipient must be a JSON string"},
		{"unknown routing member", prod, request{path: inquire, body: `{"fields":{},"routing":{"pan":"4111111111111111"}}`}, 400, "bad-request", `"pan"`},
		{"card BIN not digits", prod, request{path: inquire, body: `{"fields":{},"routing":{"card_bin":"41111a"}}`}, 400, "bad-request", "routing.card_bin must be 6 to 8 digits"},
		{"bank code too long", prod, request{path: inquire, body: `{"fields":{},"routing":{"bank_code":"0040"}}`}, 400, "bad-request", "routing.bank_code must be 3 digits"},
		{"a card number as a member name is not repeated", prod, request{path: inquire, body: `{"4111111111111111":"x","fields":{}}`}, 400, "bad-request", "(a name not repeated)"},
		{"body too large", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"` + strings.Repeat("A", 300<<10) + `"}}`}, 413, "too-large", "larger than 262144 bytes"},
		{"routes: body too large", prod, request{path: "/v1/routes", body: `{"service":"` + strings.Repeat("A", 64<<10) + `"}`}, 413, "too-large", "larger than 65536 bytes"},
		{"body unreadable", prod, request{path: inquire, reader: iotest.ErrReader(errors.New("connection reset by peer"))}, 400, "unreadable", ""},
		{"routes: no service", prod, request{path: "/v1/routes", body: `{"amount":"100"}`}, 400, "bad-request", "service is required"},
		{"routes: unknown member", prod, request{path: "/v1/routes", body: `{"service":"urn:kecis:service:card:approve","recipient":"x"}`}, 400, "bad-request", `"recipient"`},
		{"unknown field name", prod, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1","card_number":"4111111111111111"}}`}, 400, "invalid-fields", `"card_number"`},
		{"field name in another case", prod, request{path: inquire, body: `{"fields":{"ecom_consumerorderid":"WEB-1"}}`}, 400, "invalid-fields", `"ecom_consumerorderid"`},
		{"amount not a number", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields("Ecom_Transaction_Amount", "15,000")})}, 400, "invalid-fields", "/Ecom/Transaction/@Amount"},
		{"clear card number", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields("Ecom_Payment_Card_Number", "4111111111111111")})}, 400, "clear-card-refused", "Ecom_Payment_Card_Number"},
		{"clear track 2", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields("Ecom_Transaction_Track2", ";4111111111111111=30121010000000000000?")})}, 400, "clear-card-refused", "Ecom_Transaction_Track2"},
		{"clear password", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields("Ecom_User_Password", "hunter2")})}, 400, "clear-card-refused", "Ecom_User_Password"},
		{"invalid encrypted card", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields(), "encrypted": map[string]string{"card": "<Card/>"}})}, 400, "invalid-encrypted-card", ""},
		{"encrypted card not XML", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields(), "encrypted": map[string]string{"card": "4111111111111111"}})}, 400, "invalid-encrypted-card", ""},
		{"card encrypted and in clear", dev, request{path: approve, key: "k", body: jsonBody(t, map[string]any{
			"fields": fields("Ecom_Payment_Card_Number", "4111111111111111", "Ecom_Payment_Card_ExpDate_Month", "12", "Ecom_Payment_Card_ExpDate_Year", "2030"), "encrypted": map[string]string{"card": devCard}})}, 400, "card-twice", ""},
		{"encrypted track data", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"fields": fields(), "encrypted": map[string]string{"track2": card}})}, 400, "unknown-encrypted", ""},
		{"card for another recipient", prod, request{path: approve, key: "k", body: jsonBody(t, map[string]any{"recipient": otherID, "fields": fields(), "encrypted": map[string]string{"card": card}})}, 400, "recipient-mismatch", ""},
		{"routes: bad amount", prod, request{path: "/v1/routes", body: `{"service":"urn:kecis:service:card:approve","amount":"12.5","currency":"KRW"}`}, 400, "invalid-amount", ""},
		{"unknown recipient", prod, request{path: inquire, body: jsonBody(t, map[string]any{"recipient": otherID, "fields": map[string]string{"Ecom_ConsumerOrderID": "WEB-1"}})}, 422, "no-route", otherID},
		{"service nobody offers", prod, request{path: "/v1/bank/transfer", key: "k", body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`}, 422, "no-route", ""},
		{"routes: service nobody offers", prod, request{path: "/v1/routes", body: `{"service":"urn:kecis:service:bank:transfer"}`}, 422, "no-route", ""},
		{"the store fails", broken, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`}, 500, "internal", ""},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.env.do(t, c.req)
			checkProblem(t, a, c.status, c.typ, c.detail)
			if strings.Contains(string(a.raw), "4111111111111111") {
				t.Errorf("the answer repeats a card number: %s", a.raw)
			}
		})
		seen[c.typ] = true
	}
	if strings.Contains(broken.logs.String(), "database is closed") == false {
		t.Error("the internal error's cause is not in the log")
	}

	// The idempotency guard's two refusals, which need a request before.
	t.Run("key reused with another request", func(t *testing.T) {
		if a := prod.do(t, request{path: approve, key: "reuse-1", body: ok}); a.status != 200 || a.json["outcome"] != "answered" {
			t.Fatalf("first: %v", a)
		}
		changed := jsonBody(t, map[string]any{"fields": approveFields("WEB-1", "16000"), "encrypted": map[string]string{"card": card}})
		checkProblem(t, prod.do(t, request{path: approve, key: "reuse-1", body: changed}), 422, "idempotency-key-reused", "")
	})
	seen["idempotency-key-reused"] = true
	t.Run("key in flight", func(t *testing.T) {
		env := newEnv(t, options{})
		ok := jsonBody(t, map[string]any{"fields": fields(), "encrypted": map[string]string{"card": browserCard(t, env.issuer, issuerID, "4111111111111111")}})
		block, arrived := make(chan struct{}), make(chan struct{}, 1)
		env.issuer.mu.Lock()
		env.issuer.block, env.issuer.arrived = block, arrived
		env.issuer.mu.Unlock()
		var wg sync.WaitGroup
		var first answer
		wg.Add(1)
		go func() {
			defer wg.Done()
			first = env.do(t, request{path: approve, key: "flight-1", body: ok})
		}()
		<-arrived
		checkProblem(t, env.do(t, request{path: approve, key: "flight-1", body: ok}), 409, "idempotency-key-in-flight", "")
		close(block)
		wg.Wait()
		if first.status != 200 || first.json["outcome"] != "answered" {
			t.Fatalf("the first request: %v", first)
		}
	})
	seen["idempotency-key-in-flight"] = true
	t.Run("over the rate limit", func(t *testing.T) {
		env := newEnv(t, options{rate: ratelimit.New(ratelimit.Config{PerSecond: 1, Burst: 1}, now)})
		body := `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`
		if a := env.do(t, request{path: inquire, body: body}); a.status != 200 {
			t.Fatalf("first: %v", a)
		}
		checkProblem(t, env.do(t, request{path: inquire, body: body}), 429, "rate-limited", "")
	})
	seen["rate-limited"] = true
	t.Run("refused by the payment policy", func(t *testing.T) {
		env := newEnv(t, options{policy: true})
		big := jsonBody(t, map[string]any{"fields": approveFields("WEB-BIG", "150000"), "encrypted": map[string]string{"card": browserCard(t, env.issuer, issuerID, "4111111111111111")}})
		checkProblem(t, env.do(t, request{path: approve, key: "big-1", body: big}), 422, "policy-violation", "needs the cardholder's authentication: the issuer's cardholder authentication or the PG's amount authentication (rule kr-2006-card-authentication)")
	})
	seen["policy-violation"] = true

	for _, p := range facade.Problems {
		if !seen[p.Type] {
			t.Errorf("no test answers the problem %s", p.Type)
		}
	}
}

func checkProblem(t *testing.T, a answer, status int, typ, detail string) {
	t.Helper()
	if a.status != status || a.problem() != "urn:kecis:problem:"+typ {
		t.Fatalf("got %v; want %d %s", a, status, typ)
	}
	if a.ctype != "application/problem+json" {
		t.Errorf("Content-Type %q", a.ctype)
	}
	if s, _ := a.json["status"].(float64); int(s) != status {
		t.Errorf("status member %v", a.json["status"])
	}
	if title, _ := a.json["title"].(string); title == "" {
		t.Error("no title")
	}
	for k := range a.json {
		if !slices.Contains([]string{"type", "title", "status", "detail"}, k) {
			t.Errorf("member %q is not in the Problem schema", k)
		}
	}
	if d, _ := a.json["detail"].(string); !strings.Contains(d, detail) {
		t.Errorf("detail %q does not say %q", d, detail)
	}
}

// TestClearSensitiveFieldsRefused is the regression test of issue 12
// finding 4: outside the development mode every field of the must-encrypt
// list (KECIS §8.1) is refused in clear — not only the card number; the
// answer names the fields and repeats no value, and nothing reaches the
// provider or the log.
func TestClearSensitiveFieldsRefused(t *testing.T) {
	e := newEnv(t, options{})
	secrets := map[string]string{
		"Ecom_Payment_Card_Number":        "4111111111111111",
		"Ecom_Payment_Card_Verification":  "737",
		"Ecom_Payment_Card_ExpDate_Month": "12",
		"Ecom_Payment_Card_Name":          "HONG GILDONG",
		"Ecom_Transaction_Track1":         "%B4111111111111111^HONG/GILDONG^3012101000000000000000?",
		"Ecom_Transaction_Track2":         ";4111111111111111=30121010000000000000?",
		"Ecom_User_Password":              "s3cret-PASSWORD",
		"Ecom_UserData_BirthDate_Year":    "1980",
		"Ecom_Loyalty_Card_Number":        "LOYALTY-0042",
		"Ecom_Loyalty_Card_Verification":  "9911",
	}
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			f := approveFields(fmt.Sprintf("WEB-%d", i), "15000")
			f[name] = secrets[name]
			a := e.do(t, request{path: approve, key: fmt.Sprintf("clear-%d", i), body: jsonBody(t, map[string]any{"fields": f})})
			checkProblem(t, a, http.StatusBadRequest, "clear-card-refused", name)
			if strings.Contains(string(a.raw), secrets[name]) {
				t.Errorf("the answer repeats the value: %s", a.raw)
			}
		})
	}
	// All at once: the detail lists them all, sorted.
	f := approveFields("WEB-all", "15000")
	for n, v := range secrets {
		f[n] = v
	}
	a := e.do(t, request{path: approve, key: "clear-all", body: jsonBody(t, map[string]any{"fields": f})})
	checkProblem(t, a, http.StatusBadRequest, "clear-card-refused", strings.Join(names, ", "))
	// An inquire (no Idempotency-Key) is refused the same way.
	a = e.do(t, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1","Ecom_User_Password":"s3cret-PASSWORD"}}`})
	checkProblem(t, a, http.StatusBadRequest, "clear-card-refused", "Ecom_User_Password")

	if got, _ := e.issuer.received(); len(got) != 0 {
		t.Errorf("the issuer received %d requests", len(got))
	}
	logs := e.logs.String()
	for n, v := range secrets {
		if len(v) > 4 && strings.Contains(logs, v) {
			t.Errorf("the log holds the value of %s", n)
		}
	}
	if !strings.Contains(logs, "clear-card-refused") {
		t.Error("the refusal is not in the log")
	}
}

// TestDevelopmentModeEncryptsEverySensitiveField: with AllowClearCard the
// same fields are accepted, and every one travels encrypted for the
// recipient (saml.EncryptDocument covers the whole must-encrypt list): the
// provider decrypts them, and none is in the bytes the hub relayed.
func TestDevelopmentModeEncryptsEverySensitiveField(t *testing.T) {
	e := newEnv(t, options{clear: true})
	f := approveFields("WEB-dev", "15000")
	secrets := map[string]string{
		"Ecom_Payment_Card_Number":        "4111111111111111",
		"Ecom_Payment_Card_Verification":  "737",
		"Ecom_Payment_Card_ExpDate_Month": "12",
		"Ecom_Payment_Card_ExpDate_Year":  "2030",
		"Ecom_Transaction_Track2":         ";4111111111111111=30121010000000000000?",
		"Ecom_User_Password":              "s3cret-PASSWORD",
		"Ecom_UserData_BirthDate_Day":     "17",
		"Ecom_UserData_BirthDate_Month":   "04",
		"Ecom_UserData_BirthDate_Year":    "1983",
		"Ecom_Loyalty_Card_Number":        "LOYALTY-0042",
		"Ecom_Loyalty_Card_ExpDate_Month": "06",
		"Ecom_Loyalty_Card_ExpDate_Year":  "2031",
	}
	for n, v := range secrets {
		f[n] = v
	}
	a := e.do(t, request{path: approve, key: "dev-1", body: jsonBody(t, map[string]any{"fields": f})})
	if a.status != 200 || a.json["outcome"] != "answered" || a.json["status"] != "Success" {
		t.Fatalf("approve: %v", a)
	}
	got, bodies := e.issuer.received()
	if len(got) != 1 {
		t.Fatalf("the issuer received %d requests", len(got))
	}
	form := got[0].Payload.Form()
	for n, v := range secrets {
		if form.Get(n) != v {
			t.Errorf("%s: the issuer decrypted %q", n, form.Get(n))
		}
		if len(v) > 4 && strings.Contains(string(bodies[0]), v) {
			t.Errorf("%s travelled in clear", n)
		}
	}
	if n := strings.Count(string(bodies[0]), "EncryptedData "); n != 5 { // Card, Loyalty, Password, Track2, BirthDate
		t.Errorf("%d encrypted elements; want 5", n)
	}
	if r := got[0].Routing; r == nil || r.CardBIN != "411111" || r.CardLast4 != "1111" {
		t.Errorf("routing hints %+v", r)
	}
	if strings.Contains(e.logs.String(), "s3cret-PASSWORD") || ecml.ContainsPAN(e.logs.String()) {
		t.Error("a secret reached the log")
	}
}

// TestOrderNumberAlone is the regression test of issue 12 finding 5: an
// inquire or cancel that carries only the order number reaches the
// provider (routed with a zero amount) instead of panicking on the missing
// Transaction; {} and fields at the top level are refused, not a 500.
func TestOrderNumberAlone(t *testing.T) {
	e := newEnv(t, options{})
	a := e.do(t, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`})
	if a.status != 200 || a.json["outcome"] != "answered" || a.json["provider"] != issuerID {
		t.Fatalf("inquire: %v", a)
	}
	a = e.do(t, request{path: cancel, key: "cancel-1", body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`})
	if a.status != 200 || a.json["outcome"] != "answered" {
		t.Fatalf("cancel: %v", a)
	}
	got, _ := e.issuer.received()
	if len(got) != 2 {
		t.Fatalf("the issuer received %d requests", len(got))
	}
	for i, want := range []string{"inquire", "cancel"} {
		if got[i].Service != saml.ServiceURI("card", want) || got[i].Payload.Ecom.ConsumerOrderID != "WEB-1" || got[i].OnBehalfOf != shopID {
			t.Errorf("%s: %+v", want, got[i])
		}
		if got[i].Payload.Ecom.Transaction != nil {
			t.Errorf("%s: a transaction appeared: %+v", want, got[i].Payload.Ecom.Transaction)
		}
	}
	for _, body := range []string{`{}`, `{"Ecom_ConsumerOrderID":"WEB-1"}`, `{"fields":{},"Ecom_ConsumerOrderID":"WEB-1"}`} {
		for _, path := range []string{inquire, cancel} {
			if a := e.do(t, request{path: path, key: "k-" + body, body: body}); a.status != 400 || a.problem() != "urn:kecis:problem:bad-request" {
				t.Errorf("%s %s: %v", path, body, a)
			}
		}
	}
	// An empty field list is a request, too: the provider judges it.
	if a := e.do(t, request{path: inquire, body: `{"fields":{}}`}); a.status >= 500 {
		t.Errorf("empty fields: %v", a)
	}
}

// TestOpenAPIDescribesTheTypes keeps openapi.json and the Go types of the
// bodies in step: the same members, the request bodies closed
// (additionalProperties false, as the decoder is), the required ones
// required, and every status a problem can have listed for both paths.
func TestOpenAPIDescribesTheTypes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(facade.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI description is invalid: %v", err)
	}
	schema := func(name string) *openapi3.Schema {
		ref, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("no schema %s", name)
		}
		return ref.Value
	}
	for _, c := range []struct {
		schema   *openapi3.Schema
		typ      any
		closed   bool
		required []string
	}{
		{schema("CallRequest"), callapi.CallRequest{}, true, []string{"fields"}},
		{schema("CallRequest").Properties["routing"].Value, callapi.RoutingHints{}, true, nil},
		{schema("RouteRequest"), callapi.RouteRequest{}, true, []string{"service"}},
		{schema("CallResponse"), callapi.CallResponse{}, false, []string{"outcome", "status", "provider", "request_id"}},
		{schema("RouteResponse"), callapi.RouteResponse{}, false, []string{"recipient", "encryption_certificate", "routing"}},
	} {
		rt := reflect.TypeOf(c.typ)
		var members []string
		for i := 0; i < rt.NumField(); i++ {
			members = append(members, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		var props []string
		for p := range c.schema.Properties {
			props = append(props, p)
		}
		sort.Strings(members)
		sort.Strings(props)
		if !slices.Equal(members, props) {
			t.Errorf("%s: Go members %v, OpenAPI properties %v", rt.Name(), members, props)
		}
		closed := c.schema.AdditionalProperties.Has != nil && !*c.schema.AdditionalProperties.Has
		if closed != c.closed {
			t.Errorf("%s: additionalProperties false is %v; want %v", rt.Name(), closed, c.closed)
		}
		req := slices.Clone(c.schema.Required)
		sort.Strings(req)
		want := slices.Clone(c.required)
		sort.Strings(want)
		if !slices.Equal(req, want) {
			t.Errorf("%s: required %v; want %v", rt.Name(), req, want)
		}
	}
	if enc := schema("CallRequest").Properties["encrypted"].Value; enc.AdditionalProperties.Has == nil || *enc.AdditionalProperties.Has {
		t.Error("CallRequest.encrypted is not closed")
	}
	typeDoc := schema("Problem").Properties["type"].Value.Description
	for _, p := range facade.Problems {
		if !strings.Contains(typeDoc, " "+p.Type) {
			t.Errorf("the Problem schema does not list the type %s", p.Type)
		}
	}
	// Every HTTP status an answer of the provider can have is described
	// with the CallResponse body.
	call := doc.Paths.Find("/v1/{group}/{operation}").Post
	for _, a := range answerStatuses() {
		code := callapi.HTTPStatus(a.outcome, a.st)
		r := call.Responses.Status(code)
		if r == nil || r.Value.Content.Get("application/json") == nil ||
			r.Value.Content.Get("application/json").Schema.Ref != "#/components/schemas/CallResponse" {
			t.Errorf("%s %s: status %d is not described with a CallResponse", a.outcome, a.st.Short(), code)
		}
	}
	for _, path := range []string{"/v1/routes", "/v1/{group}/{operation}"} {
		op := doc.Paths.Find(path).Post
		for _, p := range facade.Problems {
			if path == "/v1/routes" && slices.Contains([]string{"unknown-service", "idempotency-key-missing", "idempotency-key-invalid",
				"invalid-fields", "missing-fields", "card-number-in-field", "clear-card-refused", "invalid-encrypted-card", "card-twice", "unknown-encrypted", "recipient-mismatch",
				"idempotency-key-reused", "idempotency-key-in-flight"}, p.Type) {
				continue // not answered there
			}
			if op.Responses.Status(p.Status) == nil {
				t.Errorf("%s: status %d (%s) is not described", path, p.Status, p.Type)
			}
		}
	}
}

// luhnValid completes digits with their Luhn check digit: a number that
// ecml.FindPANs reads as a card number when it is 13 to 19 digits long.
func luhnValid(digits string) string {
	for d := '0'; d <= '9'; d++ {
		if ecml.LuhnValid(digits + string(d)) {
			return digits + string(d)
		}
	}
	panic("unreachable")
}

// TestProviderAnswers: the provider's verified answer is the body of every
// outcome, with the HTTP status a payments API gives it
// (callapi.HTTPStatus): 402 for a refused payment, 400/409/422 for other
// refusals, 202 Pending, 503 unavailable; the provider's message keeps its
// text and gains the English reason of its sub-status.
func TestProviderAnswers(t *testing.T) {
	e := newEnv(t, options{})
	card := browserCard(t, e.issuer, issuerID, "4111111111111111")
	cases := []struct {
		name   string
		st     saml.Status
		status int
		sub    string
		reason string
	}{
		{"approved", saml.Status{Code: saml.StatusSuccess, Message: "승인"}, 200, "", ""},
		{"declined", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeDeclined, Message: "승인 거절"}, 402, "Declined", "the provider declined"},
		{"insufficient funds", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInsufficientFunds, Message: "한도 초과"}, 402, "InsufficientFunds", "insufficient funds: not enough limit or balance"},
		{"limit exceeded", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeLimitExceeded, Message: "한도 초과"}, 402, "LimitExceeded", "an amount or count limit was reached"},
		{"invalid payload", saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: "필수 항목 누락"}, 400, "InvalidPayload", "the request's fields are not what the service needs"},
		{"expired card", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeExpired, Message: "유효기간 경과"}, 422, "Expired", "the card, session or result has expired"},
		{"policy", saml.Status{Code: saml.StatusRequester, SubCode: saml.CodePolicyViolation, Message: "매입 전 부분환불 불가"}, 422, "PolicyViolation", "refused by federation or provider policy"},
		{"caller denied", saml.Status{Code: saml.StatusRequester, SubCode: saml.StatusRequestDenied}, 422, saml.StatusRequestDenied, "the service does not admit this caller"},
		{"refused without a sub-status", saml.Status{Code: saml.StatusRequester, Message: "거절"}, 422, "", "the provider refused the request"},
		{"in flight at the provider", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeInFlight}, 409, "InFlight", "a request with this Idempotency-Key is being processed"},
		{"pending at the provider", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending, Message: "처리 중"}, 202, "Pending", "the outcome is not known yet: retry with the same Idempotency-Key, or inquire"},
		{"its own provider unavailable", saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable}, 503, "ProviderUnavailable", "the provider did not answer"},
	}
	e.issuer.mu.Lock()
	e.issuer.answers = map[string]saml.Status{}
	for i, c := range cases {
		e.issuer.answers[fmt.Sprintf("ANS-%d", i)] = c.st
	}
	e.issuer.mu.Unlock()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			order := fmt.Sprintf("ANS-%d", i)
			a := e.do(t, request{path: approve, key: order, body: jsonBody(t, map[string]any{"fields": approveFields(order, "15000"), "encrypted": map[string]string{"card": card}})})
			if a.status != c.status || a.ctype != "application/json; charset=utf-8" {
				t.Fatalf("HTTP %d %s; want %d application/json", a.status, a.ctype, c.status)
			}
			want := map[string]any{"outcome": "answered", "status": c.st.Top(), "provider": issuerID}
			for k, v := range map[string]string{"sub_status": c.sub, "message": c.st.Message, "reason": c.reason} {
				if v != "" {
					want[k] = v
				}
			}
			for k, v := range want {
				if a.json[k] != v {
					t.Errorf("%s = %v; want %v", k, a.json[k], v)
				}
			}
			for _, k := range []string{"sub_status", "message", "reason"} {
				if _, ok := want[k]; !ok && a.json[k] != nil {
					t.Errorf("%s = %v; want none", k, a.json[k])
				}
			}
			if f, _ := a.json["fields"].(map[string]any); f["Ecom_ConsumerOrderID"] != order {
				t.Errorf("fields %v", a.json["fields"])
			}
		})
	}
	t.Run("unavailable", func(t *testing.T) {
		e.issuer.mu.Lock()
		e.issuer.down = true
		e.issuer.mu.Unlock()
		defer func() { e.issuer.mu.Lock(); e.issuer.down = false; e.issuer.mu.Unlock() }()
		a := e.do(t, request{path: inquire, body: `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`})
		if a.status != 503 || a.json["outcome"] != "unavailable" || a.json["sub_status"] != "ProviderUnavailable" || a.json["reason"] != "the provider did not answer" {
			t.Fatalf("%v", a)
		}
	})
}

// TestOrderNumbersComeBackAsSent: a nanosecond-timestamp order number
// comes back from the provider unchanged — the answer masks no public
// field the merchant sent; one that holds a Luhn-valid 13–19 digit run
// (which reads as a card number, KECIS §9.11) is refused before it
// travels, is logged or stored.
func TestOrderNumbersComeBackAsSent(t *testing.T) {
	e := newEnv(t, options{})
	card := browserCard(t, e.issuer, issuerID, "4111111111111111")
	plain := "ORDER-1796241234567898050"
	if ecml.ContainsPAN(plain) {
		plain = "ORDER-1796241234567898051"
	}
	if ecml.ContainsPAN(plain) {
		t.Fatal("test order numbers")
	}
	a := e.do(t, request{path: approve, key: "ns-1", body: jsonBody(t, map[string]any{"fields": approveFields(plain, "15000"), "encrypted": map[string]string{"card": card}})})
	if f, _ := a.json["fields"].(map[string]any); a.status != 200 || f["Ecom_ConsumerOrderID"] != plain {
		t.Fatalf("%v", a)
	}
	pan := "ORDER-" + luhnValid("179624123456789805")
	a = e.do(t, request{path: approve, key: "ns-2", body: jsonBody(t, map[string]any{"fields": approveFields(pan, "15000"), "encrypted": map[string]string{"card": card}})})
	checkProblem(t, a, 400, "card-number-in-field", "Ecom_ConsumerOrderID")
	if got, _ := e.issuer.received(); len(got) != 1 {
		t.Errorf("the issuer received %d requests; want 1", len(got))
	}
	if strings.Contains(string(a.raw), pan[6:]) || strings.Contains(e.logs.String(), pan[6:]) {
		t.Error("the refused order number was repeated")
	}
}

// answerStatuses are an answer for each outcome and every status code
// KECIS defines (§6).
func answerStatuses() []struct {
	outcome string
	st      saml.Status
} {
	type answer = struct {
		outcome string
		st      saml.Status
	}
	out := []answer{{callapi.OutcomePending, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending}},
		{callapi.OutcomeUnavailable, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable}},
		{callapi.OutcomeAnswered, saml.Status{Code: saml.StatusSuccess}}}
	for _, top := range []string{saml.StatusRequester, saml.StatusResponder, saml.StatusVersionMismatch} {
		out = append(out, answer{callapi.OutcomeAnswered, saml.Status{Code: top}})
		for _, sub := range []string{saml.CodeDeclined, saml.CodeInsufficientFunds, saml.CodeInvalidCard, saml.CodeAuthenticationRequired,
			saml.CodePending, saml.CodeExpired, saml.CodeDuplicate, saml.CodeProviderUnavailable, saml.CodeLimitExceeded,
			saml.CodePolicyViolation, saml.CodeIdempotencyConflict, saml.CodeInFlight, saml.CodeInvalidMessage, saml.CodeInvalidTime,
			saml.CodeWrongDestination, saml.CodeReplay, saml.CodeNotAuthorized, saml.CodeInvalidPayload, saml.CodeDecryptionFailed,
			saml.CodeInvalidAuthenticationResult, saml.StatusRequestUnsupported, saml.StatusRequestVersionTooHigh,
			saml.StatusRequestVersionTooLow, saml.StatusRequestDenied} {
			out = append(out, answer{callapi.OutcomeAnswered, saml.Status{Code: top, SubCode: sub}})
		}
	}
	return out
}

// TestAuthenticationResultsEmbedded: a signed kecis:AuthenticationResult
// the merchant sends in authentication_results travels in the request
// unchanged — the recipient verifies it with its issuer's keys (KECIS
// §3.2) — and an item that is not one is refused before anything is sent.
func TestAuthenticationResultsEmbedded(t *testing.T) {
	e := newEnv(t, options{})
	e.issuer.rc.Keys = saml.StaticKeys{hubID: e.issuer.rc.Keys.(saml.StaticKeys)[hubID], issuerID: {e.issuer.signer.Cert}}
	res := &saml.AuthenticationResult{ID: "_authn-1", IssueInstant: testNow, Issuer: issuerID, Method: "urn:kecis:authn:card-password",
		Factors: 1, Amount: "15000", Currency: "KRW", Merchant: shopID, OrderID: "WEB-AR-1", CardRef: "404143******0019",
		NotOnOrAfter: testNow.Add(5 * time.Minute)}
	el, err := res.Sign(e.issuer.signer)
	if err != nil {
		t.Fatal(err)
	}
	items := callapi.EncodeAuthenticationResults([]*etree.Element{el})
	body := jsonBody(t, map[string]any{"fields": map[string]string{"Ecom_ConsumerOrderID": "WEB-AR-1"}, "authentication_results": items})
	if a := e.do(t, request{path: inquire, body: body}); a.status != 200 || a.json["outcome"] != "answered" {
		t.Fatalf("inquire with a result: %v", a)
	}
	got, _ := e.issuer.received()
	if len(got) != 1 {
		t.Fatalf("the issuer received %d requests", len(got))
	}
	// The receiver verified it (an unverifiable result is refused there).
	if r := got[0]; len(r.AuthResults) != 1 {
		t.Fatalf("the request embeds %d results", len(r.AuthResults))
	}
	for name, bad := range map[string][]string{"not base64": {"%%%"}, "not a result": {base64.StdEncoding.EncodeToString([]byte(`<kecis:ServiceRequest xmlns:kecis="urn:kecis:1.0"/>`))},
		"a DOCTYPE": {base64.StdEncoding.EncodeToString([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`))}} {
		body := jsonBody(t, map[string]any{"fields": map[string]string{"Ecom_ConsumerOrderID": "WEB-AR-2"}, "authentication_results": bad})
		if a := e.do(t, request{path: inquire, body: body}); a.status != 400 || a.problem() != "urn:kecis:problem:invalid-authentication-result" {
			t.Errorf("%s: %v", name, a)
		}
	}
	if got, _ := e.issuer.received(); len(got) != 1 {
		t.Fatalf("a refused result reached the issuer (%d requests)", len(got))
	}
}

// TestPolicyOnTheFacade: the hub's payment policy (KECIS §12.9) on the
// JSON facade. A card purchase of 150,000 KRW without the cardholder's
// authentication is refused (422 policy-violation) and not relayed; the
// same Idempotency-Key then carries the purchase with the issuer's signed
// result, which the hub verifies and counts; a result the hub cannot
// verify counts for nothing.
func TestPolicyOnTheFacade(t *testing.T) {
	e := newEnv(t, options{policy: true})
	e.issuer.rc.Keys = saml.StaticKeys{hubID: e.issuer.rc.Keys.(saml.StaticKeys)[hubID], issuerID: {e.issuer.signer.Cert}}
	card := browserCard(t, e.issuer, issuerID, "4111111111111111")
	result := func(signer *saml.Signer, amount string) []string {
		res := &saml.AuthenticationResult{ID: "_authn-big", IssueInstant: testNow, Issuer: issuerID, Method: "urn:kecis:authn:card-password",
			Factors: 1, Amount: amount, Currency: "KRW", Merchant: shopID, OrderID: "WEB-BIG", CardRef: "411111******1111",
			NotOnOrAfter: testNow.Add(5 * time.Minute)}
		el, err := res.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return callapi.EncodeAuthenticationResults([]*etree.Element{el})
	}
	body := func(results []string) string {
		m := map[string]any{"fields": approveFields("WEB-BIG", "150000"), "encrypted": map[string]string{"card": card}}
		if results != nil {
			m["authentication_results"] = results
		}
		return jsonBody(t, m)
	}
	checkProblem(t, e.do(t, request{path: approve, key: "big-1", body: body(nil)}), 422, "policy-violation", "rule kr-2006-card-authentication")
	checkProblem(t, e.do(t, request{path: approve, key: "big-1", body: body(result(e.issuer.signer, "140000"))}), 422, "policy-violation", "")
	forger := newSigner(t, devpki.Signing, "not the issuer")
	checkProblem(t, e.do(t, request{path: approve, key: "big-1", body: body(result(forger, "150000"))}), 422, "policy-violation", "")
	if got, _ := e.issuer.received(); len(got) != 0 {
		t.Fatalf("a refused purchase reached the issuer (%d requests)", len(got))
	}
	if a := e.do(t, request{path: approve, key: "big-1", body: body(result(e.issuer.signer, "150000"))}); a.status != 200 || a.json["outcome"] != "answered" {
		t.Fatalf("with the issuer's result: %v", a)
	}
	recs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Kind: "policy.decision"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || !strings.Contains(recs[3].Detail, `"allowed":true`) || !strings.Contains(recs[0].Detail, `"refused_by":"kr-2006-card-authentication"`) {
		t.Fatalf("%d decisions: %v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Actor != hubID || r.TxID != hubID+"|big-1" || strings.Contains(r.Detail, "411111") {
			t.Fatalf("decision record %+v", r)
		}
	}
}
