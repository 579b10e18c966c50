package sidecar

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	kt "github.com/kecis/kecis/internal/testutil"
)

// TestKECISEndpointRateLimit: rate_limits limits each caller of the KECIS
// endpoint by its TLS client certificate (KECIS §12.7), on the sidecar's
// clock: past the burst the answer is 429 with Retry-After and a SOAP
// fault, before a byte of the request is read, counted as code 429 in
// kecis_adapter_http_requests_total{endpoint=kecis}; another certificate
// has its own bucket; the token is back when Retry-After said.
func TestKECISEndpointRateLimit(t *testing.T) {
	s := goodSidecar(t, context.Background(), "rate_limits: {per_second: 0.5, burst: 2}\n")
	t.Cleanup(func() { s.store.Close() })
	clock := kt.NewClock(time.Now())
	s.now = clock.Now
	h := s.kecisHandler()
	envelope := []byte(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`)
	post := func(cn string) (*httptest.ResponseRecorder, *bytes.Reader) {
		body := bytes.NewReader(envelope)
		r := httptest.NewRequest(http.MethodPost, "/kecis/soap", body)
		r.Header.Set("Content-Type", "text/xml; charset=utf-8")
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte(cn)}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w, body
	}
	// Admitted requests reach the Handler, which refuses a caller that is
	// not the hub with its own fault (500).
	for i := range 2 {
		if w, _ := post("caller a"); w.Code == http.StatusTooManyRequests {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	w, body := post("caller a")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || body.Len() != len(envelope) {
		t.Fatalf("past the burst: %d, Retry-After %q, %d bytes read", w.Code, w.Header().Get("Retry-After"), len(envelope)-body.Len())
	}
	if !strings.Contains(w.Body.String(), "<faultcode>soap:Server</faultcode>") || w.Header().Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Fatalf("not a SOAP fault: %q %s", w.Header().Get("Content-Type"), w.Body)
	}
	if w, _ := post("caller b"); w.Code == http.StatusTooManyRequests {
		t.Fatal("another certificate shares the bucket")
	}
	clock.Advance(2 * time.Second)
	if w, _ := post("caller a"); w.Code == http.StatusTooManyRequests {
		t.Fatal("refused after Retry-After")
	}
	if n := requests(t, s, "kecis", "429"); n != 1 {
		t.Fatalf(`kecis_adapter_http_requests_total{endpoint="kecis",code="429"} = %v, want 1`, n)
	}
}

// TestRateLimitsConfig: the endpoint is limited by default
// (DefaultRatePerSecond, burst twice that), per_second: 0 turns the limit
// off, a missing burst is twice the rate, and impossible values are
// refused with their field and line.
func TestRateLimitsConfig(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		in        RateLimits
		on        bool
		perSecond float64
		burst     int
	}{
		{RateLimits{}, true, DefaultRatePerSecond, 2 * DefaultRatePerSecond},
		{RateLimits{PerSecond: f(0)}, false, 0, 0},
		{RateLimits{PerSecond: f(0), Burst: 5}, false, 0, 0},
		{RateLimits{PerSecond: f(5)}, true, 5, 10},
		{RateLimits{PerSecond: f(0.1)}, true, 0.1, 1},
		{RateLimits{PerSecond: f(3), Burst: 1}, true, 3, 1},
	} {
		got, on := c.in.Limit()
		if on != c.on || got.PerSecond != c.perSecond || got.Burst != c.burst {
			t.Errorf("%+v: %+v %v", c.in, got, on)
		}
	}
	s := goodSidecar(t, context.Background(), "")
	t.Cleanup(func() { s.store.Close() })
	if s.limiter == nil {
		t.Error("no limit by default")
	}
	s = goodSidecar(t, context.Background(), "rate_limits: {per_second: 0}\n")
	t.Cleanup(func() { s.store.Close() })
	if s.limiter != nil {
		t.Error("per_second: 0 left a limit")
	}

	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(append(data, "rate_limits:\n  per_second: -1\n  burst: -2\n"...), "good.yaml", t.TempDir(), func(string) string { return "x" })
	for _, want := range []string{"rate_limits.per_second", "rate_limits.burst"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s not refused: %v", want, err)
		}
	}
}

// requests reads kecis_adapter_http_requests_total{endpoint,code}.
func requests(t *testing.T, s *Sidecar, endpoint, code string) float64 {
	t.Helper()
	mfs, err := s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kecis_adapter_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
