package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/saml"
)

// TestHungProviderAnsweredAtOnce: a provider that takes requests and never
// answers costs the first breaker.failures requests the relay timeout each
// (Pending: they were delivered); then its breaker is open and the hub
// answers at once — ProviderUnavailable on the SOAP endpoint, 503 on the
// facade —, delivering nothing: a retry with a Pending request's key is
// not sent again, so nothing is approved twice. The metric shows the
// breaker open. (KECIS §12.1.1)
func TestHungProviderAnsweredAtOnce(t *testing.T) {
	const relayTimeout = 400 * time.Millisecond
	f := setupFederationWith(t, relayTimeout, apiKeyYAML()+"  allow_clear_card: true\nbreaker: {failures: 2, open_for: 1h}\n")
	block := make(chan struct{})
	f.p.mu.Lock()
	f.p.block = block
	f.p.mu.Unlock()
	t.Cleanup(func() { close(block) }) // before the provider's server closes

	for _, key := range []string{"a", "b"} {
		start := time.Now()
		st, _, err := f.send(t, &f.mTLS, f.approve(t, key, "15000", f.dest))
		if err != nil || st.SubCode != saml.CodePending {
			t.Fatalf("%s: %+v %v; want Pending", key, st, err)
		}
		if took := time.Since(start); took < relayTimeout {
			t.Fatalf("%s answered after %v, before the relay timeout", key, took)
		}
	}
	received := func() int {
		f.p.mu.Lock()
		defer f.p.mu.Unlock()
		return f.p.received
	}
	if n := received(); n != 2 {
		t.Fatalf("the provider received %d requests, want 2", n)
	}

	for _, key := range []string{"c", "a"} { // a new key, and a retry of a Pending one
		start := time.Now()
		st, issuer, err := f.send(t, &f.mTLS, f.approve(t, key, "15000", f.dest))
		if err != nil || st.Code != saml.StatusResponder || st.SubCode != saml.CodeProviderUnavailable || issuer != "https://hub.test/kecis" {
			t.Fatalf("%s with the breaker open: %+v from %s, %v; want the hub's ProviderUnavailable", key, st, issuer, err)
		}
		if took := time.Since(start); took >= relayTimeout {
			t.Fatalf("%s with the breaker open took %v", key, took)
		}
	}
	clear := approveFields("1000")
	clear["Ecom_Payment_Card_Number"], clear["Ecom_Payment_Card_ExpDate_Month"], clear["Ecom_Payment_Card_ExpDate_Year"] = "4111111111111111", "12", "2030"
	start := time.Now()
	code, out := f.facadeCall(t, "/v1/card/approve", "facade-1", map[string]any{"fields": clear, "recipient": issuerID})
	if code != http.StatusServiceUnavailable || time.Since(start) >= relayTimeout {
		t.Fatalf("the facade with the breaker open: %d %v after %v; want 503 at once", code, out, time.Since(start))
	}
	if n := received(); n != 2 {
		t.Fatalf("the provider received %d requests, want still 2: a request was sent while the breaker was open", n)
	}

	resp, err := http.Get(f.h.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `kecis_hub_breaker_state{endpoint="` + f.dest + `",provider="` + issuerID + `"} 2`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %s:\n%s", want, grepLines(string(body), "breaker"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
