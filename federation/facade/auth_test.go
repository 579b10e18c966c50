package facade_test

import (
	"net/http"
	"testing"

	"github.com/kecis/kecis/internal/devpki"
)

// TestOnlyMerchantsAuthenticate: the facade acts only for merchants
// (KECIS §12.4). An API key bound to an active participant that is no
// merchant (the issuer), and the TLS client certificate such a participant
// publishes, are refused 401 unauthenticated like no credential at all, and
// nothing is relayed; the merchant's own key and certificate are accepted.
func TestOnlyMerchantsAuthenticate(t *testing.T) {
	e := newEnv(t, options{})
	ok := jsonBody(t, map[string]any{"fields": approveFields("AUTH-1", "15000"),
		"encrypted": map[string]string{"card": browserCard(t, e.issuer, issuerID, "4111111111111111")}})
	stranger := newCert(t, devpki.TLSClient, "stranger tls")
	for _, c := range []struct {
		name string
		req  request
	}{
		{"an issuer's API key", request{path: approve, key: "auth-1", auth: issuerAPIKey, body: ok}},
		{"an issuer's API key on routes", request{path: "/v1/routes", auth: issuerAPIKey, body: `{"service":"urn:kecis:service:card:approve"}`}},
		{"an issuer's TLS client certificate", request{path: approve, key: "auth-2", auth: "-", tls: e.issuerTLS, body: ok}},
		{"an issuer's TLS client certificate on routes", request{path: "/v1/routes", auth: "-", tls: e.issuerTLS, body: `{"service":"urn:kecis:service:card:approve"}`}},
		{"a certificate no participant publishes", request{path: approve, key: "auth-3", auth: "-", tls: stranger, body: ok}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkProblem(t, e.do(t, c.req), http.StatusUnauthorized, "unauthenticated", "")
		})
	}
	if got, _ := e.issuer.received(); len(got) != 0 {
		t.Fatalf("a refused credential's request was relayed: %d requests", len(got))
	}
	for _, c := range []struct {
		name string
		req  request
	}{
		{"the merchant's API key", request{path: approve, key: "auth-4", body: ok}},
		{"the merchant's TLS client certificate", request{path: approve, key: "auth-5", auth: "-", tls: e.shopTLS, body: ok}},
	} {
		if a := e.do(t, c.req); a.status != http.StatusOK || a.json["outcome"] != "answered" {
			t.Errorf("%s: %v", c.name, a)
		}
	}
	if got, _ := e.issuer.received(); len(got) != 2 {
		t.Fatalf("the merchant's requests: %d relayed, want 2", len(got))
	}
}
