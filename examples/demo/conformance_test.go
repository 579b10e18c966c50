package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/card"
)

// TestStallHook: the stall hook takes {"service", "seconds"} for a card
// service and a stall of at most maxStall, refusing anything else (400);
// the issuer adapter's next call of that service waits that long, once,
// and a call of another service does not wait.
func TestStallHook(t *testing.T) {
	h := &stallHook{stall: map[string]time.Duration{}}
	srv := httptest.NewServer(h.handler())
	defer srv.Close()
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"service":"` + card.ServiceApprove + `","seconds":0.2}`, http.StatusNoContent},
		{`not json`, http.StatusBadRequest},
		{`{"service":"urn:kecis:service:bank:transfer","seconds":1}`, http.StatusBadRequest},
		{`{"service":"` + card.ServiceApprove + `","seconds":0}`, http.StatusBadRequest},
		{`{"service":"` + card.ServiceApprove + `","seconds":3600}`, http.StatusBadRequest},
	} {
		res, err := http.Post(srv.URL+StallPath, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("%s: HTTP %d, want %d", c.body, res.StatusCode, c.code)
		}
	}
	res, err := http.Get(srv.URL + StallPath)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d, want 405", res.StatusCode)
	}
	took := func(service string) time.Duration {
		start := time.Now()
		h.before(context.Background(), service)
		return time.Since(start)
	}
	if d := took(card.ServiceInquire); d > 100*time.Millisecond {
		t.Errorf("an inquire waited %s", d)
	}
	if d := took(card.ServiceApprove); d < 200*time.Millisecond {
		t.Errorf("the stalled approve took %s, want 200ms", d)
	}
	if d := took(card.ServiceApprove); d > 100*time.Millisecond {
		t.Errorf("the next approve waited %s: a stall is for one call", d)
	}
}
