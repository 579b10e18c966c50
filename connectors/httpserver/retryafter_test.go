package httpserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A rate-limited answer is 429 with Retry-After in whole seconds, rounded
// up and at least 1; a problem without a delay sends no Retry-After.
func TestProblemRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Nanosecond, "1"},
		{300 * time.Millisecond, "1"},
		{time.Second, "1"},
		{1001 * time.Millisecond, "2"},
		{59*time.Second + time.Millisecond, "60"},
	} {
		p := ProblemRateLimited.WithRetryAfter(tc.d)
		if p.RetryAfter() != tc.d || ProblemRateLimited.RetryAfter() != 0 {
			t.Fatal("WithRetryAfter must return a copy holding the delay")
		}
		if !errors.Is(p, ProblemRateLimited) {
			t.Fatal("a copy is still a rate-limited problem")
		}
		w := httptest.NewRecorder()
		p.Write(w)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != tc.want {
			t.Errorf("%v: status %d, Retry-After %q; want 429, %q", tc.d, w.Code, w.Header().Get("Retry-After"), tc.want)
		}
	}
	w := httptest.NewRecorder()
	ProblemInternal.Write(w)
	if _, ok := w.Header()["Retry-After"]; ok {
		t.Error("Retry-After sent without a delay")
	}
}
