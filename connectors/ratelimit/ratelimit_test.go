package ratelimit_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// A key gets its burst at once, then one request per 1/PerSecond; a
// refused request says how long until the next token (its Retry-After) and
// costs nothing; keys do not share buckets. All on an injected clock.
func TestLimiterBucketPerKey(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	l := ratelimit.New(ratelimit.Config{PerSecond: 0.5, Burst: 3}, clock.Now)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, d := l.Allow("a")
	if ok || d != 2*time.Second {
		t.Fatalf("past the burst: allowed %v, retry after %v; want refused, 2s", ok, d)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	// Refusals cost nothing: many refused requests, then the token comes
	// when promised.
	clock.Advance(time.Second)
	for range 10 {
		if ok, d := l.Allow("a"); ok || d != time.Second {
			t.Fatalf("after 1s: allowed %v, retry after %v; want refused, 1s", ok, d)
		}
	}
	clock.Advance(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("the token promised by Retry-After is not there")
	}
	if ok, d := l.Allow("a"); ok || d != 2*time.Second {
		t.Fatalf("allowed %v, retry after %v; want refused, 2s", ok, d)
	}
	// A long pause fills the bucket to the burst, not beyond.
	clock.Advance(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("a"); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour %d requests at once, want the burst 3", n)
	}

	err := l.Check("a")
	p := httpserver.AsProblem(err)
	if !errors.Is(err, httpserver.ProblemRateLimited) || p.Status != http.StatusTooManyRequests || p.RetryAfter() != 2*time.Second {
		t.Fatalf("Check = %v (retry after %v)", err, p.RetryAfter())
	}
	if errors.Is(l.Check("c"), httpserver.ProblemRateLimited) {
		t.Fatal("Check refused a fresh key")
	}
}

// Memory is bounded: past MaxKeys the least recently seen key is
// forgotten, and a key unused for Idle is forgotten — never before its
// bucket has had time to fill, so forgetting it gives nobody more.
func TestLimiterBoundedKeys(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	l := ratelimit.New(ratelimit.Config{PerSecond: 1, Burst: 1, MaxKeys: 100, Idle: time.Minute}, clock.Now)
	for i := range 1000 {
		l.Allow(fmt.Sprintf("k%d", i))
		if l.Len() > 100 {
			t.Fatalf("%d keys remembered, the cap is 100", l.Len())
		}
	}
	// k999 is remembered (its bucket is empty), k0 was forgotten.
	if ok, _ := l.Allow("k999"); ok {
		t.Fatal("the most recent key was forgotten")
	}
	if ok, _ := l.Allow("k0"); !ok {
		t.Fatal("the least recently seen key is still remembered past the cap")
	}
	clock.Advance(time.Minute)
	l.Allow("fresh")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys after a minute idle, want 1", n)
	}

	// Idle is at least the time to fill the bucket: 10 tokens at 0.01/s
	// take 1000 s, so an empty bucket is remembered past the 1 minute.
	slow := ratelimit.New(ratelimit.Config{PerSecond: 0.01, Burst: 10, Idle: time.Minute}, clock.Now)
	for range 10 {
		slow.Allow("k")
	}
	clock.Advance(10 * time.Minute) // 6 tokens back; a forgotten key would have 10
	slow.Allow("other")
	n := 0
	for {
		if ok, _ := slow.Allow("k"); !ok {
			break
		}
		n++
	}
	if n != 6 {
		t.Fatalf("%d requests after 10 minutes, want 6: an emptied bucket was forgotten before it refilled", n)
	}
}

// A rate that is not positive fails closed: the burst, then nothing.
func TestLimiterNoRate(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{Burst: 2}, testutil.NewClock(testutil.FixedNow).Now)
	l.Allow("k")
	l.Allow("k")
	if ok, d := l.Allow("k"); ok || d <= 0 {
		t.Fatalf("allowed %v, retry after %v", ok, d)
	}
}

// The key of a client is its TLS client certificate, else its address;
// the middleware answers 429 with Retry-After and the problem document.
func TestMiddleware(t *testing.T) {
	cert := &x509.Certificate{Raw: []byte("a certificate")}
	withCert := httptest.NewRequest(http.MethodPost, "/kecis/soap", nil)
	withCert.RemoteAddr = "192.0.2.7:4711"
	withCert.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	if got, want := ratelimit.ClientKey(withCert, ""), "cert:"+saml.Fingerprint(cert); got != want {
		t.Fatalf("ClientKey = %q, want %q", got, want)
	}
	plain := httptest.NewRequest(http.MethodPost, "/kecis/soap", nil)
	plain.RemoteAddr = "192.0.2.7:4711"
	if got := ratelimit.ClientKey(plain, ""); got != "ip:192.0.2.7" {
		t.Fatalf("ClientKey = %q", got)
	}
	if got := ratelimit.ClientKey(plain, "198.51.100.1"); got != "ip:198.51.100.1" {
		t.Fatalf("ClientKey with the caller's address = %q", got)
	}

	clock := testutil.NewClock(testutil.FixedNow)
	l := ratelimit.New(ratelimit.Config{PerSecond: 0.25, Burst: 1}, clock.Now)
	var mu sync.Mutex
	var limited []time.Duration
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		func(_ *http.Request, d time.Duration) {
			mu.Lock()
			limited = append(limited, d)
			mu.Unlock()
		})
	do := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do(withCert); w.Code != http.StatusNoContent {
		t.Fatalf("first request: %d", w.Code)
	}
	w := do(withCert)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "4" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("over the limit: %d, Retry-After %q, %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"))
	}
	// Same address, no certificate: another client.
	if w := do(plain); w.Code != http.StatusNoContent {
		t.Fatalf("another client: %d", w.Code)
	}
	clock.Advance(1500 * time.Millisecond)
	if w := do(withCert); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" {
		t.Fatalf("2.5 s to go: %d, Retry-After %q, want 3 (rounded up)", w.Code, w.Header().Get("Retry-After"))
	}
	clock.Advance(2500 * time.Millisecond)
	if w := do(withCert); w.Code != http.StatusNoContent {
		t.Fatalf("after Retry-After: %d", w.Code)
	}
	if len(limited) != 2 || limited[0] != 4*time.Second || limited[1] != 2500*time.Millisecond {
		t.Fatalf("onLimited saw %v", limited)
	}
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	data []byte
	n    int
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.n >= len(b.data) {
		return 0, io.EOF
	}
	k := copy(p, b.data[b.n:])
	b.n += k
	return k, nil
}

func (b *countingBody) Close() error { return nil }

// A SOAP endpoint's limit is per TLS client certificate; a refused request
// is 429 with Retry-After and a soap:Server fault, answered before a byte
// of its body is read, and reported to onLimited.
func TestSOAP(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	l := ratelimit.New(ratelimit.Config{PerSecond: 0.5, Burst: 1}, clock.Now)
	served, limited := 0, 0
	h := l.SOAP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	}), func(*http.Request, time.Duration) { limited++ })
	envelope := []byte(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`)
	do := func(cert string) (*httptest.ResponseRecorder, *countingBody) {
		body := &countingBody{data: envelope}
		r := httptest.NewRequest(http.MethodPost, "/kecis/soap", nil)
		r.Body = body
		r.RemoteAddr = "192.0.2.7:4711"
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte(cert)}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w, body
	}
	if w, _ := do("the hub"); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	w, body := do("the hub")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || body.n != 0 {
		t.Fatalf("over the limit: %d, Retry-After %q, %d bytes read", w.Code, w.Header().Get("Retry-After"), body.n)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	_, err := saml.UnwrapSOAP(w.Body.Bytes(), saml.Limits{})
	var f *saml.Fault
	if !errors.As(err, &f) || f.Code != "soap:Server" || f.String != "rate limited: retry after 2 s" {
		t.Fatalf("the body is not the rate limit's SOAP fault: %v\n%s", err, w.Body)
	}
	if w, _ := do("a tester"); w.Code != http.StatusOK {
		t.Fatalf("another certificate: %d", w.Code)
	}
	clock.Advance(2 * time.Second)
	if w, _ := do("the hub"); w.Code != http.StatusOK {
		t.Fatalf("after Retry-After: %d", w.Code)
	}
	if served != 3 || limited != 1 {
		t.Fatalf("served %d, limited %d; want 3, 1", served, limited)
	}
}
