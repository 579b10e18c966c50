package telecom

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

const (
	bankID      = "bank-a"
	bankAPIKey  = "bank-a-api-key-0123456789"
	bankNumber  = "1588-1234"
	bankCaller  = "15881234"
	payeePhone  = "010-1234-5678"
	payeeE164   = "+821012345678"
	payeePath   = "01012345678"
	payeeName   = "홍길동"
	adminToken  = "admin-token-0123456789"
	otherPhone  = "011-123-4567"
	otherE164   = "+82111234567"
	webhookPath = "/kecis/sms/replies"
)

var (
	webhookSecret = []byte("bank-a-webhook-secret-0123456789")
	payeeBirth    = time.Date(1990, 1, 2, 0, 0, 0, 0, time.UTC)
)

// logBuffer collects slog output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a telecom with one sender (a bank with a reply webhook), two
// subscribers, an HTTP server and an sms.HTTPGateway pointed at it.
type env struct {
	t       *testing.T
	tc      *Telecom
	clock   *testutil.Clock
	srv     *httptest.Server
	gw      *sms.HTTPGateway
	logs    *logBuffer
	logger  *slog.Logger
	webhook *httptest.Server

	mu      sync.Mutex
	replies []sms.Reply
}

type envOptions struct {
	dsn           string
	delay         time.Duration
	webhookClock  func() time.Time // the bank's clock (the telecom's by default)
	senderSecret  []byte           // what the telecom signs with (webhookSecret by default)
	noWebhook     bool
	adminDisabled bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, clock: testutil.NewClock(testutil.FixedNow), logs: &logBuffer{}}
	e.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	bankClock := o.webhookClock
	if bankClock == nil {
		bankClock = e.clock.Now
	}
	e.webhook = httptest.NewServer(sms.WebhookHandler(webhookSecret, sms.ReplyHandlerFunc(func(_ context.Context, r sms.Reply) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.replies = append(e.replies, r)
		return nil
	}), sms.WithClock(bankClock), sms.WithLogger(e.logger)))
	t.Cleanup(e.webhook.Close)

	dsn := o.dsn
	if dsn == "" {
		dsn = sqltest.TestSQLiteDSN(t)
	}
	cfg := Config{
		DSN: dsn, Now: e.clock.Now, DeliveryDelay: o.delay, Logger: e.logger,
		Rand: testutil.NewDetRand(t.Name()),
	}
	if !o.adminDisabled {
		cfg.AdminToken = adminToken
	}
	tc, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	e.tc = tc

	acct := SenderAccount{ID: bankID, Name: "Bank A", APIKey: bankAPIKey, Numbers: []string{bankNumber, "02-123-4567"}}
	if !o.noWebhook {
		acct.WebhookURL = e.webhook.URL + webhookPath
		acct.WebhookSecret = webhookSecret
		if o.senderSecret != nil {
			acct.WebhookSecret = o.senderSecret
		}
	}
	ctx := context.Background()
	if err := tc.AddSender(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := tc.AddSubscriber(ctx, Subscriber{Phone: payeePhone, HolderName: payeeName, BirthDate: payeeBirth}); err != nil {
		t.Fatal(err)
	}
	if err := tc.AddSubscriber(ctx, Subscriber{Phone: otherPhone, HolderName: "김철수", BirthDate: payeeBirth}); err != nil {
		t.Fatal(err)
	}

	e.srv = httptest.NewServer(tc.Handler())
	t.Cleanup(e.srv.Close)
	e.gw, err = sms.NewHTTPGateway(sms.GatewayConfig{
		URL: e.srv.URL + "/api/sms", APIKey: bankAPIKey, Logger: e.logger, Now: e.clock.Now,
		Sleep: func(context.Context, time.Duration) error { t.Error("unexpected retry wait"); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send sends through the HTTP gateway and fails the test on error.
func (e *env) send(m sms.Message) string {
	e.t.Helper()
	if m.From == "" {
		m.From = bankNumber
	}
	id, err := e.gw.Send(context.Background(), m)
	if err != nil {
		e.t.Fatalf("send: %v", err)
	}
	return id
}

func (e *env) gotReplies() []sms.Reply {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sms.Reply(nil), e.replies...)
}

// do makes an HTTP request to the telecom without following redirects.
func (e *env) do(method, path, contentType, body string, header map[string]string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// getJSON GETs path and decodes a 200 answer into v.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	resp, body := e.do(http.MethodGet, path, "", "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// assertCleanLogs fails when the logs carry a card number or any secret.
func (e *env) assertCleanLogs(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	if ecml.ContainsPAN(logs) {
		e.t.Errorf("logs contain a card number:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}
