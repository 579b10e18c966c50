package facade_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/saml"
)

// fuzzPaths are the operations FuzzFacadeCall reaches, by the low bits of
// its first argument; the high bit selects the development mode.
var fuzzPaths = []string{approve, inquire, cancel, "/v1/card/refund", "/v1/routes", "/v1/bank/transfer"}

// FuzzFacadeCall sends arbitrary bodies to the facade, in production and in
// development mode: no handler panics (the engine has no recovery), no
// answer is a 5xx but a provider's 503 "unavailable", every problem is one
// of the facade's types, every other answer is a CallResponse sent with
// the status callapi.HTTPStatus gives its outcome and status, and no card
// number of the body comes back.
func FuzzFacadeCall(f *testing.F) {
	f.Add(uint8(0), []byte(`{"fields":{"Ecom_ConsumerOrderID":"WEB-1","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW","Ecom_Transaction_Type":"credit"}}`))
	f.Add(uint8(1), []byte(`{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`))
	f.Add(uint8(0x80), []byte(`{"fields":{"Ecom_ConsumerOrderID":"WEB-1","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW","Ecom_Payment_Card_Number":"4111111111111111","Ecom_Payment_Card_ExpDate_Month":"12","Ecom_Payment_Card_ExpDate_Year":"2030"}}`))
	f.Add(uint8(4), []byte(`{"service":"urn:kecis:service:card:approve","amount":"15000","currency":"KRW","card_bin":"411111"}`))
	prod, dev := newEnv(f, options{}), newEnv(f, options{clear: true})
	known := map[string]bool{}
	for _, p := range facade.Problems {
		known[p.TypeURI()] = true
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		e := prod
		if sel&0x80 != 0 {
			e = dev
		}
		path := fuzzPaths[int(sel&0x7f)%len(fuzzPaths)]
		a := e.do(t, request{path: path, key: fmt.Sprintf("fuzz-%d", n.Add(1)), rawBody: body})
		if t.Failed() {
			return
		}
		switch {
		case a.status == http.StatusServiceUnavailable && a.json["outcome"] != nil:
		case a.status >= 500:
			t.Fatalf("POST %s %q: %v", path, body, a)
		}
		if strings.HasPrefix(a.ctype, "application/problem+json") {
			if !known[a.problem()] {
				t.Fatalf("POST %s %q: unknown problem %v", path, body, a)
			}
		} else if !json.Valid(a.raw) || a.status != answerStatus(a.json) {
			t.Fatalf("POST %s %q: %v", path, body, a)
		}
		for _, r := range ecml.FindPANs(string(body)) {
			if pan := string(body[r[0]:r[1]]); strings.Contains(string(a.raw), pan) {
				t.Fatalf("POST %s %q: the answer repeats the card number %s: %v", path, body, ecml.MaskPAN(pan), a)
			}
		}
	})
}

// answerStatus is the HTTP status of a CallResponse or RouteResponse as
// decoded from JSON: 200 for a route, callapi.HTTPStatus for a call.
func answerStatus(j map[string]any) int {
	outcome, _ := j["outcome"].(string)
	if outcome == "" {
		if _, ok := j["recipient"]; ok {
			return http.StatusOK
		}
		return -1
	}
	top, _ := j["status"].(string)
	sub, _ := j["sub_status"].(string)
	st := saml.Status{Code: "urn:oasis:names:tc:SAML:2.0:status:" + top, SubCode: sub}
	if sub != "" && !strings.Contains(sub, ":") {
		st.SubCode = saml.KECISStatusPrefix + sub
	}
	return callapi.HTTPStatus(outcome, st)
}
