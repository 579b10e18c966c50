package sms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

// recordedRequest is what a fake gateway saw.
type recordedRequest struct {
	header http.Header
	body   []byte
}

// fakeGateway answers with respond and records the requests.
type fakeGateway struct {
	mu       sync.Mutex
	requests []recordedRequest
	respond  func(n int, w http.ResponseWriter, r *http.Request)
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recordedRequest{header: r.Header.Clone(), body: body})
	n := len(f.requests)
	f.mu.Unlock()
	f.respond(n, w, r)
}

func (f *fakeGateway) seen() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

func okJSON(body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// sleepRecorder replaces real waits.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleepRecorder) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func newGateway(t *testing.T, cfg GatewayConfig) (*HTTPGateway, *sleepRecorder, *logBuffer) {
	t.Helper()
	sl := &sleepRecorder{}
	logger, logs := newTestLogger()
	if cfg.Sleep == nil {
		cfg.Sleep = sl.Sleep
	}
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	if cfg.Now == nil {
		cfg.Now = testutil.NewClock(testutil.FixedNow).Now
	}
	g, err := NewHTTPGateway(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, sl, logs
}

func TestHTTPGatewayDefaultBody(t *testing.T) {
	fg := &fakeGateway{respond: okJSON(`{"message_id":"m-42","status":"queued"}`)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, sl, logs := newGateway(t, GatewayConfig{URL: srv.URL + "/send", APIKey: "key-0123456789abcdef"})

	text := `[KECIS] 인증번호 482913 "따옴표" <b>`
	id, err := g.Send(context.Background(), Message{From: "1588-1234", To: "010-1234-5678", Text: text, Ref: "tx-1"})
	if err != nil || id != "m-42" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	reqs := fg.seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	h := reqs[0].header
	if h.Get("X-API-Key") != "key-0123456789abcdef" || h.Get("Idempotency-Key") != "tx-1" ||
		h.Get("Content-Type") != DefaultContentType {
		t.Errorf("headers: %v", h)
	}
	var body map[string]string
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatalf("body %s: %v", reqs[0].body, err)
	}
	want := map[string]string{"from": "1588-1234", "to": "+821012345678", "text": text, "ref": "tx-1", "type": "SMS"}
	if len(body) != len(want) {
		t.Errorf("body = %v, want %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%s] = %q, want %q", k, body[k], v)
		}
	}
	if len(sl.got()) != 0 {
		t.Errorf("waited %v", sl.got())
	}
	assertNoSecrets(t, logs.String(), "482913", "1234-5678")
}

func TestHTTPGatewayLMSAndGeneratedRef(t *testing.T) {
	fg := &fakeGateway{respond: okJSON(`{"message_id":7}`)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, _ := newGateway(t, GatewayConfig{URL: srv.URL, DefaultFrom: "0212345678"})

	long := strings.Repeat("안내 ", 20) // 100 bytes
	id, err := g.Send(context.Background(), Message{To: "+821098765432", Text: long})
	if err != nil || id != "7" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	var body map[string]string
	_ = json.Unmarshal(fg.seen()[0].body, &body)
	if body["type"] != "LMS" || body["from"] != "0212345678" {
		t.Errorf("body = %v", body)
	}
	if ref := body["ref"]; !strings.HasPrefix(ref, "sms-") || fg.seen()[0].header.Get("Idempotency-Key") != ref {
		t.Errorf("generated ref %q, header %q", ref, fg.seen()[0].header.Get("Idempotency-Key"))
	}
}

func TestHTTPGatewayTemplate(t *testing.T) {
	var form url.Values
	fg := &fakeGateway{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"result":{"code":"0000","msgId":9876543210}}`)
	}}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, _ := newGateway(t, GatewayConfig{
		URL:            srv.URL + "/v2/send",
		APIKey:         "secret-token-0123456789",
		APIKeyHeader:   "Authorization",
		APIKeyScheme:   "Bearer",
		Headers:        map[string]string{"X-Client": "kecis"},
		BodyTemplate:   `sender={{urlquery .From}}&receiver={{urlquery .ToNational}}&msg={{urlquery .Text}}&msg_type={{.Type}}&bytes={{.Bytes}}&key={{urlquery .Ref}}`,
		ContentType:    "application/x-www-form-urlencoded",
		RefHeader:      "X-Request-Id",
		MessageIDField: "result.msgId",
	})
	text := "이체 확인: 15,000원 & 약관 동의 = 예"
	id, err := g.Send(context.Background(), Message{From: "1588-1234", To: "+82 10 1234 5678", Text: text, Ref: "ref/1"})
	if err != nil || id != "9876543210" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	r := fg.seen()[0]
	form, err = url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"sender": {"1588-1234"}, "receiver": {"01012345678"}, "msg": {text},
		"msg_type": {"SMS"}, "bytes": {"36"}, "key": {"ref/1"},
	}
	for k, v := range want {
		if form.Get(k) != v[0] {
			t.Errorf("form[%s] = %q, want %q", k, form.Get(k), v[0])
		}
	}
	if r.header.Get("Authorization") != "Bearer secret-token-0123456789" || r.header.Get("X-Request-Id") != "ref/1" ||
		r.header.Get("X-Client") != "kecis" || r.header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.header.Get("Idempotency-Key") != "" {
		t.Errorf("headers: %v", r.header)
	}
}

func TestHTTPGatewayJSONTemplateEscapes(t *testing.T) {
	fg := &fakeGateway{respond: okJSON(`{"id":"x1"}`)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, _ := newGateway(t, GatewayConfig{
		URL:            srv.URL,
		BodyTemplate:   `{"destination":{{json .To}},"body":{{json .Text}},"meta":{"ref":{{json .Ref}},"len":{{.Bytes}}}}`,
		MessageIDField: "id",
	})
	evil := `"},"destination":"+15550000000","x":{"`
	if _, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: evil, Ref: "r"}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Destination string
		Body        string
	}
	if err := json.Unmarshal(fg.seen()[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Destination != "+821012345678" || body.Body != evil {
		t.Errorf("body = %+v", body)
	}
}

func TestHTTPGatewayConfigAndValidation(t *testing.T) {
	if _, err := NewHTTPGateway(GatewayConfig{URL: "ftp://x"}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := NewHTTPGateway(GatewayConfig{URL: "http://x", BodyTemplate: "{{"}); err == nil {
		t.Error("broken template accepted")
	}
	if _, err := NewHTTPGateway(GatewayConfig{URL: "http://x", DefaultFrom: "1"}); err == nil {
		t.Error("bad DefaultFrom accepted")
	}

	fg := &fakeGateway{respond: okJSON(`{"message_id":"m"}`)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, _ := newGateway(t, GatewayConfig{URL: srv.URL})
	badTmpl, _, _ := newGateway(t, GatewayConfig{URL: srv.URL, BodyTemplate: `{{.Nope}}`})
	ctx := context.Background()
	cases := []struct {
		name string
		g    *HTTPGateway
		m    Message
		want error
	}{
		{"bad recipient", g, Message{From: "114", To: "02-123-4567", Text: "hi"}, ErrInvalidNumber},
		{"no from", g, Message{To: "01012345678", Text: "hi"}, nil},
		{"bad from", g, Message{From: "1", To: "01012345678", Text: "hi"}, ErrInvalidNumber},
		{"empty", g, Message{From: "114", To: "01012345678"}, ErrEmptyText},
		{"too long", g, Message{From: "114", To: "01012345678", Text: strings.Repeat("가", 1001)}, ErrTextTooLong},
		{"emoji", g, Message{From: "114", To: "01012345678", Text: "😀"}, ErrUnencodable},
		{"template field", badTmpl, Message{From: "114", To: "01012345678", Text: "hi"}, nil},
	}
	for _, c := range cases {
		_, err := c.g.Send(ctx, c.m)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if n := len(fg.seen()); n != 0 {
		t.Errorf("invalid messages reached the gateway %d times", n)
	}
}

// flakyDialer refuses the first n connections, as a gateway that is down.
func flakyDialer(n int32, dials *atomic.Int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) <= n {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestHTTPGatewayRetriesConnectFailure(t *testing.T) {
	fg := &fakeGateway{respond: okJSON(`{"message_id":"m-1"}`)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	var dials atomic.Int32
	client := &http.Client{Transport: &http.Transport{DialContext: flakyDialer(2, &dials)}}
	g, sl, _ := newGateway(t, GatewayConfig{URL: srv.URL, HTTPClient: client})

	id, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi", Ref: "r-1"})
	if err != nil || id != "m-1" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	if got := sl.got(); len(got) != 2 || got[0] != DefaultRetryBackoff || got[1] != 2*DefaultRetryBackoff {
		t.Errorf("waits = %v", got)
	}
	if n := len(fg.seen()); n != 1 {
		t.Errorf("gateway saw %d requests, want 1", n)
	}

	// Down for good: ErrNotDelivered after MaxAttempts.
	var dials2 atomic.Int32
	client2 := &http.Client{Transport: &http.Transport{DialContext: flakyDialer(100, &dials2)}}
	g2, _, _ := newGateway(t, GatewayConfig{URL: srv.URL, HTTPClient: client2, MaxAttempts: 4})
	_, err = g2.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi"})
	if !errors.Is(err, ErrNotDelivered) || dials2.Load() != 4 {
		t.Errorf("err = %v after %d dials, want ErrNotDelivered after 4", err, dials2.Load())
	}
}

func TestHTTPGatewayNoRetryAfterDelivery(t *testing.T) {
	// The gateway reads the request and drops the connection: the message
	// may have been accepted, so the client must not send it again.
	fg := &fakeGateway{respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, sl, _ := newGateway(t, GatewayConfig{URL: srv.URL})
	_, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi", Ref: "r-2"})
	if !errors.Is(err, ErrDeliveryUnknown) {
		t.Fatalf("err = %v, want ErrDeliveryUnknown", err)
	}
	if n := len(fg.seen()); n != 1 || len(sl.got()) != 0 {
		t.Errorf("gateway saw %d requests, waits %v; want 1 and none", n, sl.got())
	}

	// A timeout after the request was written is not retried either.
	release := make(chan struct{})
	defer close(release)
	slow := &fakeGateway{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	srv2 := httptest.NewServer(slow)
	defer srv2.Close()
	g2, sl2, _ := newGateway(t, GatewayConfig{URL: srv2.URL, Timeout: 50 * time.Millisecond})
	_, err = g2.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi"})
	if !errors.Is(err, ErrDeliveryUnknown) || len(slow.seen()) != 1 || len(sl2.got()) != 0 {
		t.Errorf("timeout: err = %v, %d requests, waits %v", err, len(slow.seen()), sl2.got())
	}
}

func TestHTTPGatewayStatusRetries(t *testing.T) {
	now := testutil.FixedNow
	tests := []struct {
		name     string
		first    func(w http.ResponseWriter)
		requests int
		waits    []time.Duration
		status   int // of the error, 0 for success
	}{
		{"503 with Retry-After seconds", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 2, []time.Duration{2 * time.Second}, 0},
		{"429 with Retry-After date", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		}, 2, []time.Duration{3 * time.Second}, 0},
		{"503 without Retry-After", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 1, nil, http.StatusServiceUnavailable},
		{"429 Retry-After beyond the cap", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		}, 1, nil, http.StatusTooManyRequests},
		{"500", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusInternalServerError)
		}, 1, nil, http.StatusInternalServerError},
		{"400", func(w http.ResponseWriter) {
			http.Error(w, `{"error":"bad number"}`, http.StatusBadRequest)
		}, 1, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := &fakeGateway{respond: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					tt.first(w)
					return
				}
				_, _ = io.WriteString(w, `{"message_id":"m-2"}`)
			}}
			srv := httptest.NewServer(fg)
			defer srv.Close()
			g, sl, _ := newGateway(t, GatewayConfig{URL: srv.URL, Now: func() time.Time { return now }})
			id, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi", Ref: "r-3"})
			if tt.status == 0 {
				if err != nil || id != "m-2" {
					t.Fatalf("Send = %q, %v", id, err)
				}
			} else {
				var ge *GatewayError
				if !errors.As(err, &ge) || ge.StatusCode != tt.status {
					t.Fatalf("err = %v, want GatewayError %d", err, tt.status)
				}
			}
			reqs := fg.seen()
			if len(reqs) != tt.requests {
				t.Errorf("%d requests, want %d", len(reqs), tt.requests)
			}
			for _, r := range reqs {
				if r.header.Get("Idempotency-Key") != "r-3" {
					t.Errorf("attempt without the ref: %v", r.header)
				}
			}
			if got := sl.got(); len(got) != len(tt.waits) || (len(got) > 0 && got[0] != tt.waits[0]) {
				t.Errorf("waits = %v, want %v", got, tt.waits)
			}
		})
	}
}

func TestHTTPGatewayMissingMessageID(t *testing.T) {
	for _, body := range []string{`{"status":"ok"}`, `not json`, `{"message_id":""}`, `{"message_id":{"x":1}}`} {
		fg := &fakeGateway{respond: okJSON(body)}
		srv := httptest.NewServer(fg)
		g, _, _ := newGateway(t, GatewayConfig{URL: srv.URL})
		if _, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi"}); !errors.Is(err, ErrNoMessageID) {
			t.Errorf("%s: err = %v, want ErrNoMessageID", body, err)
		}
		srv.Close()
	}
	fg := &fakeGateway{respond: okJSON(``)}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, _ := newGateway(t, GatewayConfig{URL: srv.URL, MessageIDField: "-"})
	if id, err := g.Send(context.Background(), Message{From: "114", To: "01012345678", Text: "hi"}); err != nil || id != "" {
		t.Errorf(`MessageIDField "-": %q, %v`, id, err)
	}
}

func TestHTTPGatewayNeverLogsText(t *testing.T) {
	const pan = "4111111111111111"
	text := "카드 " + pan + " 승인번호 739201"
	// The gateway echoes the text in its error, as some do.
	fg := &fakeGateway{respond: func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"rejected","text":"`+text+`"}`, http.StatusServiceUnavailable)
			return
		}
		http.Error(w, `{"error":"rejected","text":"`+text+`"}`, http.StatusBadRequest)
	}}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	g, _, logs := newGateway(t, GatewayConfig{URL: srv.URL})
	_, err := g.Send(context.Background(), Message{From: "114", To: "010-1234-5678", Text: text, Ref: "r-4"})
	if err == nil {
		t.Fatal("expected an error")
	}
	var ge *GatewayError
	if !errors.As(err, &ge) || strings.Contains(ge.Body, pan) || !strings.Contains(ge.Body, "411111******1111") {
		t.Errorf("GatewayError body should keep the answer with the card number masked: %#v", ge)
	}
	if strings.Contains(err.Error(), "739201") {
		t.Errorf("error message carries the text: %v", err)
	}
	out := logs.String()
	assertNoSecrets(t, out, pan, "739201", "1234-5678")
	for _, want := range []string{"010-****-5678", "ref=r-4", "bytes="} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}
