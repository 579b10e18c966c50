package facade_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/internal/testutil"
)

// readCounter is a request body that counts the bytes read from it.
type readCounter struct {
	r *bytes.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestRateLimitPerCredential: the facade limits each merchant credential
// (KECIS §12.7) — its API key and its TLS client certificate are two
// buckets — after authentication: past the burst the answer is 429
// rate-limited with Retry-After, before the body is read, and nothing is
// relayed; a request without a valid credential is 401 and takes no
// token; the token is back when Retry-After said.
func TestRateLimitPerCredential(t *testing.T) {
	clock := testutil.NewClock(testNow)
	e := newEnv(t, options{rate: ratelimit.New(ratelimit.Config{PerSecond: 0.5, Burst: 2}, clock.Now)})
	const body = `{"fields":{"Ecom_ConsumerOrderID":"WEB-1"}}`
	byKey := request{path: inquire, body: body}
	for i := range 2 {
		if a := e.do(t, byKey); a.status != http.StatusOK {
			t.Fatalf("request %d of the burst: %v", i+1, a)
		}
	}
	a := e.do(t, byKey)
	checkProblem(t, a, http.StatusTooManyRequests, "rate-limited", "")
	if ra := a.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	if got, _ := e.issuer.received(); len(got) != 2 {
		t.Fatalf("%d requests relayed, want the burst's 2", len(got))
	}

	// Refused before the body is read.
	rc := &readCounter{r: bytes.NewReader([]byte(body))}
	hr := httptest.NewRequest(http.MethodPost, "https://hub.test"+inquire, rc)
	hr.Header.Set("Authorization", "Bearer "+apiKey)
	w := httptest.NewRecorder()
	e.engine.ServeHTTP(w, hr)
	if w.Code != http.StatusTooManyRequests || rc.n != 0 {
		t.Errorf("over the limit: %d, %d bytes of the body read", w.Code, rc.n)
	}

	// The merchant's certificate is another credential; no credential or
	// another participant's is refused 401, not counted.
	if a := e.do(t, request{path: inquire, auth: "-", tls: e.shopTLS, body: body}); a.status != http.StatusOK {
		t.Errorf("the merchant's certificate: %v", a)
	}
	for range 3 {
		checkProblem(t, e.do(t, request{path: inquire, auth: "sk_wrong", body: body}), http.StatusUnauthorized, "unauthenticated", "")
		checkProblem(t, e.do(t, request{path: inquire, auth: issuerAPIKey, body: body}), http.StatusUnauthorized, "unauthenticated", "")
	}

	clock.Advance(time.Second)
	checkProblem(t, e.do(t, byKey), http.StatusTooManyRequests, "rate-limited", "")
	clock.Advance(time.Second)
	if a := e.do(t, byKey); a.status != http.StatusOK {
		t.Fatalf("after Retry-After: %v", a)
	}
}
