package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	kt "github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml/metadata"
)

// rateHub is a hub's handler on an injected clock, called in process: the
// rate limits' decisions depend on the clock alone.
func rateHub(t *testing.T, extraYAML string, environ []string) (*server.Server, http.Handler, *kt.Clock) {
	t.Helper()
	dir := t.TempDir()
	writeKey(t, filepath.Join(dir, "signing"), devpki.Signing, "hub signing")
	writeKey(t, filepath.Join(dir, "tls"), devpki.TLSServer, "hub tls")
	cfg := `entity_id: https://hub.test/kecis
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: "sqlite:hub.db"}
log: {level: error}
open_registration: true
` + extraYAML
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := server.LoadConfig(path, environ)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), c.SQLiteDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(c, st, nil, server.Describe, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Publisher = srv.DefaultPublisher()
	clock := kt.NewClock(time.Now().UTC().Truncate(time.Second))
	srv.Now = clock.Now
	return srv, srv.Handler(), clock
}

// call sends a registration API request over a "TLS connection" that
// presented cert (none when nil) from addr.
func call(h http.Handler, method string, cert *tls.Certificate, addr string, body []byte) *httptest.ResponseRecorder {
	path := "/kecis/federation/participants"
	if method == http.MethodPut {
		path += "?entity_id=https://nobody.test/kecis"
	}
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/samlmetadata+xml")
	r.RemoteAddr = addr
	if cert != nil {
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestRegistrationRateLimit: the registration API (POST and PUT, one
// bucket) limits each client — its TLS client certificate, else its
// address — to rate_limits.registration; past it the answer is 429, the
// rate-limited problem with Retry-After in seconds, before the body is
// read, and counted in kecis_hub_rate_limited_total{endpoint}. Other
// clients are not affected; the token comes back when Retry-After said.
func TestRegistrationRateLimit(t *testing.T) {
	srv, h, clock := rateHub(t, "rate_limits: {registration: {per_second: 0.25, burst: 2}}\n", nil)
	mdA, certA := participant(t, "https://a.test/kecis")
	_, certB := participant(t, "https://b.test/kecis")

	if w := call(h, http.MethodPost, &certA, "192.0.2.1:1000", mdA); w.Code != http.StatusCreated {
		t.Fatalf("registration: %d %s", w.Code, w.Body)
	}
	if w := call(h, http.MethodPut, &certA, "192.0.2.1:1000", mdA); w.Code == http.StatusTooManyRequests {
		t.Fatalf("second request of the burst refused")
	}
	w := call(h, http.MethodPost, &certA, "192.0.2.1:1000", mdA)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "4" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429, 4", w.Code, w.Header().Get("Retry-After"))
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc["type"] != "urn:kecis:problem:rate-limited" || doc["status"] != float64(429) {
		t.Fatalf("problem %s (%v)", w.Body, err)
	}
	if w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
	}

	// Another certificate from the same address has its own bucket.
	if w := call(h, http.MethodPost, &certB, "192.0.2.1:1000", []byte("not metadata")); w.Code == http.StatusTooManyRequests {
		t.Fatal("another client's certificate was limited")
	}
	// No certificate: limited by address.
	for i := range 2 {
		if w := call(h, http.MethodPost, nil, "198.51.100.9:2000", mdA); w.Code == http.StatusTooManyRequests {
			t.Fatalf("request %d without a certificate refused", i+1)
		}
	}
	if w := call(h, http.MethodPost, nil, "198.51.100.9:2001", mdA); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request from one address: %d", w.Code)
	}

	clock.Advance(3 * time.Second)
	if w := call(h, http.MethodPost, &certA, "192.0.2.1:1000", mdA); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("1 s early: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	clock.Advance(time.Second)
	if w := call(h, http.MethodPost, &certA, "192.0.2.1:1000", mdA); w.Code != http.StatusConflict {
		t.Fatalf("after Retry-After: %d %s; want 409 (already registered)", w.Code, w.Body)
	}
	if n := rateLimited(t, srv, "registration"); n != 3 {
		t.Fatalf("kecis_hub_rate_limited_total{endpoint=registration} = %v, want 3", n)
	}
	// Metadata and the SOAP endpoint are not the registration API.
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, "/kecis/metadata", nil)
		r.RemoteAddr = "198.51.100.9:2000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests {
			t.Fatal("the metadata endpoint is limited")
		}
	}
}

// rateLimited reads kecis_hub_rate_limited_total{endpoint}.
func rateLimited(t *testing.T, srv *server.Server, endpoint string) float64 {
	t.Helper()
	mfs, err := srv.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kecis_hub_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRateLimitConfig: the breaker and rate-limit keys have documented
// defaults, the environment overrides them, a limit can be lifted, and
// impossible values are refused at start-up by name.
func TestRateLimitConfig(t *testing.T) {
	srv, h, _ := rateHub(t, "", nil)
	c := srv.Config
	if c.Breaker.Failures != 5 || c.Breaker.OpenFor.D() != 30*time.Second || c.Breaker.Disabled {
		t.Errorf("breaker defaults: %+v", c.Breaker)
	}
	rl := c.RateLimits
	if rl.Registration.PerSecond != 0.2 || rl.Registration.Burst != 10 || rl.Facade.PerSecond != 200 || rl.Facade.Burst != 400 ||
		rl.MaxKeys != 10000 || rl.IdleAfter.D() != 10*time.Minute {
		t.Errorf("rate-limit defaults: %+v", rl)
	}
	if srv.RegistrationLimiter == nil || srv.FacadeLimiter == nil {
		t.Error("limiters not built")
	}
	n := 0
	for range 11 {
		if w := call(h, http.MethodPost, nil, "192.0.2.1:1", nil); w.Code != http.StatusTooManyRequests {
			n++
		}
	}
	if n != 10 {
		t.Errorf("the default registration burst let %d requests through, want 10", n)
	}

	srv, h, _ = rateHub(t, "breaker: {failures: 3}\n", []string{"KECIS_BREAKER_OPEN_FOR=1m", "KECIS_RATE_LIMITS_REGISTRATION_DISABLED=true",
		"KECIS_RATE_LIMITS_FACADE_PER_SECOND=1000", "KECIS_RATE_LIMITS_MAX_KEYS=5"})
	c = srv.Config
	if c.Breaker.Failures != 3 || c.Breaker.OpenFor.D() != time.Minute || c.RateLimits.Facade.PerSecond != 1000 || c.RateLimits.MaxKeys != 5 {
		t.Errorf("overrides: %+v %+v", c.Breaker, c.RateLimits)
	}
	if srv.RegistrationLimiter != nil {
		t.Error("a disabled limit built a limiter")
	}
	for range 20 {
		if w := call(h, http.MethodPost, nil, "192.0.2.1:1", nil); w.Code == http.StatusTooManyRequests {
			t.Fatal("a disabled limit refused")
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	bad := `entity_id: https://hub.test/kecis
tls: {cert: t.pem, key: t.key}
signing: {cert: s.pem, key: s.key}
breaker: {failures: -1}
rate_limits: {registration: {per_second: -2}, facade: {burst: -1}, max_keys: -3}
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.LoadConfig(path, nil)
	for _, want := range []string{"breaker.failures", "rate_limits.registration", "rate_limits.facade", "rate_limits.max_keys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s not refused: %v", want, err)
		}
	}
}

// activeMerchant registers entityID as an active merchant that publishes
// the TLS client certificate tlsCert.
func activeMerchant(t *testing.T, srv *server.Server, entityID string, tlsCert *tls.Certificate) {
	t.Helper()
	leaf, _ := x509.ParseCertificate(tlsCert.Certificate[0])
	_, sig := writeKey(t, filepath.Join(t.TempDir(), "sig"), devpki.Signing, entityID)
	md, err := metadata.Marshal(&metadata.EntityDescriptor{EntityID: entityID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: sig}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: leaf}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := server.Describe(md)
	if err != nil {
		t.Fatal(err)
	}
	now := srv.Now()
	p.Status, p.Metadata, p.CreatedAt, p.UpdatedAt = store.StatusActive, md, now, now
	if err := srv.Store.CreateParticipant(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// facadePost sends POST /v1/card/inquire with the merchant's API key, or
// over a connection that presented cert when it is set.
func facadePost(h http.Handler, cert *tls.Certificate) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/card/inquire", strings.NewReader(`{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = "192.0.2.7:4000"
	if cert != nil {
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	} else {
		r.Header.Set("Authorization", "Bearer "+merchantAPIKey)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestFacadeRateLimit: the hub wires rate_limits.facade into the JSON
// facade — per merchant credential, the API key and the TLS client
// certificate each their own bucket —, answers 429 rate-limited with
// Retry-After, and counts kecis_hub_rate_limited_total{endpoint="facade"};
// disabled, nothing is limited.
func TestFacadeRateLimit(t *testing.T) {
	srv, h, clock := rateHub(t, apiKeyYAML()+"rate_limits: {facade: {per_second: 1, burst: 2}}\n", nil)
	_, mTLS := participant(t, merchantID)
	activeMerchant(t, srv, merchantID, &mTLS)
	for i := range 2 {
		if w := facadePost(h, nil); w.Code == http.StatusTooManyRequests || w.Code == http.StatusUnauthorized {
			t.Fatalf("request %d of the burst: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := facadePost(h, nil)
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != http.StatusTooManyRequests || doc["type"] != "urn:kecis:problem:rate-limited" ||
		w.Header().Get("Retry-After") != "1" {
		t.Fatalf("past the burst: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := facadePost(h, &mTLS); w.Code == http.StatusTooManyRequests || w.Code == http.StatusUnauthorized {
		t.Fatalf("the merchant's certificate, another credential: %d %s", w.Code, w.Body)
	}
	if n := rateLimited(t, srv, "facade"); n != 1 {
		t.Fatalf(`kecis_hub_rate_limited_total{endpoint="facade"} = %v, want 1`, n)
	}
	clock.Advance(time.Second)
	if w := facadePost(h, nil); w.Code == http.StatusTooManyRequests {
		t.Fatal("refused after Retry-After")
	}

	srv, h, _ = rateHub(t, apiKeyYAML()+"rate_limits: {facade: {disabled: true}}\n", nil)
	activeMerchant(t, srv, merchantID, &mTLS)
	if srv.FacadeLimiter != nil {
		t.Fatal("a disabled facade limit built a limiter")
	}
	for range 50 {
		if w := facadePost(h, nil); w.Code == http.StatusTooManyRequests {
			t.Fatal("a disabled facade limit refused")
		}
	}
}
