package sms

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

var testSecret = []byte("0123456789abcdef-webhook-secret")

type replySink struct {
	mu      sync.Mutex
	replies []Reply
	fail    error
}

func (s *replySink) HandleReply(_ context.Context, r Reply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.replies = append(s.replies, r)
	return nil
}

func (s *replySink) got() []Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reply(nil), s.replies...)
}

func signedRequest(t *testing.T, secret []byte, r Reply, at time.Time) *http.Request {
	t.Helper()
	req, err := NewWebhookRequest(context.Background(), "http://participant.test/sms/replies", secret, r, at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestWebhookAcceptsSignedReply(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	sink := &replySink{}
	logger, logs := newTestLogger()
	h := WebhookHandler(testSecret, sink, WithClock(clock.Now), WithLogger(logger))

	reply := Reply{
		ID: "rpl_1", From: "010-1234-5678", To: "15881234", Text: "482913 동의합니다",
		ReceivedAt: clock.Now().Add(-time.Second), InReplyTo: "msg_1",
	}
	rec := serve(h, signedRequest(t, testSecret, reply, clock.Now()))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := sink.got()
	if len(got) != 1 {
		t.Fatalf("handler got %d replies", len(got))
	}
	want := reply
	want.From = "+821012345678" // normalised
	if !got[0].ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("ReceivedAt = %v, want %v", got[0].ReceivedAt, want.ReceivedAt)
	}
	got[0].ReceivedAt, want.ReceivedAt = time.Time{}, time.Time{}
	if got[0] != want {
		t.Errorf("reply = %+v, want %+v", got[0], want)
	}
	assertNoSecrets(t, logs.String(), "482913", "1234-5678")
	if !strings.Contains(logs.String(), "010-****-5678") {
		t.Errorf("logs should name the masked sender:\n%s", logs)
	}
}

func TestWebhookRefusals(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	reply := Reply{ID: "rpl_1", From: "+821012345678", To: "15881234", Text: "YES", InReplyTo: "msg_1"}
	body, _ := json.Marshal(reply)

	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"forged signature", func() *http.Request {
			return signedRequest(t, []byte("another-secret-of-16+bytes"), reply, clock.Now())
		}, http.StatusUnauthorized},
		{"tampered body", func() *http.Request {
			r := signedRequest(t, testSecret, reply, clock.Now())
			tampered := strings.Replace(string(body), "YES", "NO!", 1)
			r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tampered))
			r2.Header = r.Header.Clone()
			return r2
		}, http.StatusUnauthorized},
		{"expired timestamp", func() *http.Request {
			return signedRequest(t, testSecret, reply, clock.Now().Add(-DefaultReplayWindow-time.Second))
		}, http.StatusUnauthorized},
		{"future timestamp", func() *http.Request {
			return signedRequest(t, testSecret, reply, clock.Now().Add(DefaultReplayWindow+time.Second))
		}, http.StatusUnauthorized},
		{"re-stamped timestamp", func() *http.Request {
			r := signedRequest(t, testSecret, reply, clock.Now().Add(-10*time.Minute))
			r.Header.Set(HeaderTimestamp, strconv.FormatInt(clock.Now().Unix(), 10))
			return r
		}, http.StatusUnauthorized},
		{"no signature", func() *http.Request {
			r := signedRequest(t, testSecret, reply, clock.Now())
			r.Header.Del(HeaderSignature)
			return r
		}, http.StatusUnauthorized},
		{"no timestamp", func() *http.Request {
			r := signedRequest(t, testSecret, reply, clock.Now())
			r.Header.Del(HeaderTimestamp)
			return r
		}, http.StatusUnauthorized},
		{"malformed signature", func() *http.Request {
			r := signedRequest(t, testSecret, reply, clock.Now())
			r.Header.Set(HeaderSignature, "v1=zz")
			return r
		}, http.StatusUnauthorized},
		{"GET", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/", nil)
		}, http.StatusMethodNotAllowed},
		{"not a reply", func() *http.Request {
			b := []byte(`[1,2,3]`)
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(b)))
			r.Header.Set(HeaderTimestamp, strconv.FormatInt(clock.Now().Unix(), 10))
			r.Header.Set(HeaderSignature, Sign(testSecret, clock.Now(), b))
			return r
		}, http.StatusBadRequest},
		{"bad from", func() *http.Request {
			return signedRequest(t, testSecret, Reply{From: "02-123-4567", Text: "x"}, clock.Now())
		}, http.StatusBadRequest},
		{"empty text", func() *http.Request {
			return signedRequest(t, testSecret, Reply{From: "01012345678"}, clock.Now())
		}, http.StatusBadRequest},
		{"too large", func() *http.Request {
			return signedRequest(t, testSecret, Reply{From: "01012345678", Text: strings.Repeat("a", DefaultMaxWebhookBody)}, clock.Now())
		}, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &replySink{}
			logger, _ := newTestLogger()
			h := WebhookHandler(testSecret, sink, WithClock(clock.Now), WithLogger(logger))
			rec := serve(h, tt.req())
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if n := len(sink.got()); n != 0 {
				t.Errorf("handler ran %d times for a refused request", n)
			}
		})
	}
}

func TestWebhookReplayAndRetry(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	sink := &replySink{fail: errors.New("database down")}
	logger, _ := newTestLogger()
	h := WebhookHandler(testSecret, sink, WithClock(clock.Now), WithLogger(logger), WithReplayWindow(time.Minute))
	reply := Reply{ID: "rpl_1", From: "+821012345678", To: "15881234", Text: "YES"}
	at := clock.Now()

	// A failing handler answers 500 and lets the same signed request in again.
	if rec := serve(h, signedRequest(t, testSecret, reply, at)); rec.Code != http.StatusInternalServerError {
		t.Fatalf("failing handler: status %d", rec.Code)
	}
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	if rec := serve(h, signedRequest(t, testSecret, reply, at)); rec.Code != http.StatusNoContent {
		t.Fatalf("retry: status %d", rec.Code)
	}
	// The accepted request cannot be replayed within the window …
	if rec := serve(h, signedRequest(t, testSecret, reply, at)); rec.Code != http.StatusConflict {
		t.Fatalf("replay: status %d, want 409", rec.Code)
	}
	// … nor after it, when its timestamp is stale.
	clock.Advance(2 * time.Minute)
	if rec := serve(h, signedRequest(t, testSecret, reply, at)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("late replay: status %d, want 401", rec.Code)
	}
	// A fresh delivery of the same reply (new timestamp) gets through; the
	// handler deduplicates by ID.
	if rec := serve(h, signedRequest(t, testSecret, reply, clock.Now())); rec.Code != http.StatusNoContent {
		t.Fatalf("redelivery: status %d", rec.Code)
	}
	if n := len(sink.got()); n != 2 {
		t.Errorf("handler accepted %d replies, want 2", n)
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	clock := testutil.NewClock(testutil.FixedNow)
	oldSecret := []byte("old-secret-0123456789")
	sink := &replySink{}
	logger, _ := newTestLogger()
	h := WebhookHandler(testSecret, sink, WithClock(clock.Now), WithLogger(logger), WithPreviousSecret(oldSecret))
	reply := Reply{ID: "rpl_1", From: "+821012345678", Text: "YES"}
	if rec := serve(h, signedRequest(t, oldSecret, reply, clock.Now())); rec.Code != http.StatusNoContent {
		t.Fatalf("old secret: status %d", rec.Code)
	}
	// Several signatures, one valid, as a rotating gateway sends them.
	req := signedRequest(t, []byte("unknown-secret-0123456789"), Reply{ID: "rpl_2", From: "+821012345678", Text: "NO"}, clock.Now())
	body, _ := json.Marshal(Reply{ID: "rpl_2", From: "+821012345678", Text: "NO"})
	req.Header.Set(HeaderSignature, req.Header.Get(HeaderSignature)+", "+Sign(testSecret, clock.Now(), body))
	if rec := serve(h, req); rec.Code != http.StatusNoContent {
		t.Fatalf("second signature valid: status %d", rec.Code)
	}
}

func TestWebhookHandlerPanicsOnMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"short secret": func() { WebhookHandler([]byte("short"), &replySink{}) },
		"nil handler":  func() { WebhookHandler(testSecret, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
