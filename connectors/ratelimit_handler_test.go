package connectors_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/saml"
)

// TestHandlerRateLimit: HandlerConfig.RateLimit limits each caller of the
// endpoint by its TLS client certificate on the handler's clock (KECIS
// §12.7), as the sidecar's endpoint: past the burst the answer is 429 with
// Retry-After and a soap:Server fault before a byte of the request is
// read, the provider's function does not run and the refusal is logged
// with the caller's fingerprint; another certificate has its own bucket;
// the token is back when Retry-After said. Without RateLimit nothing is
// limited, and an impossible one is refused by NewHandler.
func TestHandlerRateLimit(t *testing.T) {
	w := newWorld(t)
	hubLeaf, err := x509.ParseCertificate(w.hubTLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	strangerLeaf, err := x509.ParseCertificate(w.strangerTLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := connectors.HandlerConfig{
		EntityID: issuerID, Signer: w.issuer, Decryption: decryptionKeys(w.issuer), Endpoints: []string{issuerEndpoint},
		Directory: w.dir, HubEntityID: hubID, BackChannel: []string{saml.Fingerprint(hubLeaf)},
		Services: card.Services(w.iss), Store: w.store, IdemKey: []byte("a provider secret of 32 bytes..."),
		RateLimit: &ratelimit.Config{PerSecond: 0.5, Burst: 2}, Now: w.clock.Now,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	}
	h, err := connectors.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	post := func(h http.Handler, cert *x509.Certificate) (*httptest.ResponseRecorder, *bytes.Reader) {
		n++
		_, msg := w.request(t, msgSpec{key: "k-limit-" + strconv.Itoa(n)})
		body := bytes.NewReader(saml.WrapSOAP(msg))
		r := httptest.NewRequest(http.MethodPost, "/kecis/soap", body)
		r.Header.Set("Content-Type", "text/xml; charset=utf-8")
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec, body
	}
	for i := range 2 {
		if rec, _ := post(h, hubLeaf); rec.Code != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec, body := post(h, hubLeaf)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" || body.Len() != int(body.Size()) {
		t.Fatalf("past the burst: %d, Retry-After %q, %d bytes read", rec.Code, rec.Header().Get("Retry-After"), body.Size()-int64(body.Len()))
	}
	if !strings.Contains(rec.Body.String(), "<faultcode>soap:Server</faultcode>") || rec.Header().Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Fatalf("not a SOAP fault: %q %s", rec.Header().Get("Content-Type"), rec.Body)
	}
	if got := w.iss.count("approve"); got != 2 {
		t.Fatalf("the provider ran %d times; want 2", got)
	}
	if !strings.Contains(logs.String(), "caller over its rate limit") || !strings.Contains(logs.String(), "cert:"+saml.Fingerprint(hubLeaf)) {
		t.Errorf("the refusal is not logged with the caller's fingerprint:\n%s", logs)
	}
	// Another certificate has its own bucket: it reaches the back
	// channel's check, which refuses it (not the hub's).
	if rec, _ := post(h, strangerLeaf); rec.Code == http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "from the hub only") {
		t.Fatalf("another certificate: %d %s", rec.Code, rec.Body)
	}
	w.clock.Advance(2 * time.Second)
	if rec, _ := post(h, hubLeaf); rec.Code != http.StatusOK {
		t.Fatalf("after Retry-After: %d %s", rec.Code, rec.Body)
	}

	// Without RateLimit: no limit.
	cfg.RateLimit = nil
	open, err := connectors.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if rec, _ := post(open, hubLeaf); rec.Code != http.StatusOK {
			t.Fatalf("unlimited, request %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}

	for _, bad := range []ratelimit.Config{{PerSecond: 0, Burst: 1}, {PerSecond: -1}, {PerSecond: math.NaN()}, {PerSecond: math.Inf(1)}, {PerSecond: 1, Burst: -1}} {
		cfg.RateLimit = &bad
		if _, err := connectors.NewHandler(cfg); err == nil || !strings.Contains(err.Error(), "RateLimit") {
			t.Errorf("RateLimit %+v: %v; want refused", bad, err)
		}
	}
}
