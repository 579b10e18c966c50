package pg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/testutil"
)

var (
	ctx         = context.Background()
	testDataKey = bytes.Repeat([]byte{0x5a}, 32)
)

const adminToken = "pg-admin-token-for-tests"

// withCheckDigit appends the Luhn check digit to the digits s.
func withCheckDigit(s string) string {
	sum, double := 0, true
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return s + strconv.Itoa((10-sum%10)%10)
}

// luhnOK is the test's own Luhn check (the package may not use ecml's).
func luhnOK(s string) bool {
	return len(s) >= 2 && withCheckDigit(s[:len(s)-1]) == s
}

var digitRun = regexp.MustCompile(`[0-9]+`)

// findPANs returns every run of 13–19 digits in text that passes the Luhn
// check: what may never appear in clear in a row or a log line.
func findPANs(text string) []string {
	var out []string
	for _, run := range digitRun.FindAllString(text, -1) {
		if len(run) >= 13 && len(run) <= 19 && luhnOK(run) {
			out = append(out, run)
		}
	}
	return out
}

// Test cards: BIN 949010 (the example issuer's credit BIN) and 949020.
var (
	cardGood     = withCheckDigit("949010123456558")
	cardGood2    = withCheckDigit("949010765432107")
	cardOtherBIN = withCheckDigit("949020111122223")
	cardForeign  = withCheckDigit("451842000011112")
)

// declineCard returns a distinct test card the fake issuer declines with
// sub-status sub.
func (g *fakeGateway) declineCard(n int, sub string) string {
	c := withCheckDigit(fmt.Sprintf("9490105%08d", n))
	g.mu.Lock()
	g.declines[c] = sub
	g.mu.Unlock()
	return c
}

// Modes of the fake gateway for one operation.
type mode int

const (
	normal           mode = iota
	pendingProcessed      // the issuer carries it out, the gateway answers 202 pending
	pendingUnseen         // 202 pending, nothing carried out
	unavailable           // 503 unavailable, nothing carried out
	hangupProcessed       // carried out, then the connection drops
	slowProcessed         // carried out, answered after the PG's timeout
	noRoute               // 422 problem no-route
)

type approval struct {
	order, code string
	amount      int64
	refunded    int64
	state       string // approved, settled, cancelled, partially-refunded, refunded
}

type stored struct {
	op, fp string
	status int
	body   []byte
}

// fakeGateway implements the issuer gateway contract in memory, as the
// KECIS sidecar in front of a card issuer would answer it: idempotent by
// key, cancel only before settlement, refunds only after, never above
// the approved amount.
type fakeGateway struct {
	t        testing.TB
	mu       sync.Mutex
	modes    map[string]mode
	declines map[string]string
	byOrder  map[string]*approval
	keys     map[string]stored
	calls    map[string]int
	sentKeys map[string][]string // op → Idempotency-Keys received
	nextCode int
	slow     time.Duration
	raw      map[string]rawAnswer           // op → a fixed answer, nothing carried out
	auth     map[string][][]string          // op → the authentication_results of each call
	fields   map[string][]map[string]string // op → the fields of each call
}

type rawAnswer struct {
	status      int
	contentType string
	body        string
}

func (g *fakeGateway) setRaw(op string, a *rawAnswer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a == nil {
		delete(g.raw, op)
		return
	}
	g.raw[op] = *a
}

func newFakeGateway(t testing.TB) *fakeGateway {
	return &fakeGateway{t: t, modes: map[string]mode{}, declines: map[string]string{}, byOrder: map[string]*approval{},
		keys: map[string]stored{}, calls: map[string]int{}, sentKeys: map[string][]string{}, nextCode: 3427123,
		raw: map[string]rawAnswer{}, auth: map[string][][]string{}, fields: map[string][]map[string]string{}}
}

// fieldsOf returns the fields of each call of op.
func (g *fakeGateway) fieldsOf(op string) []map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]string(nil), g.fields[op]...)
}

// authOf returns the authentication_results of each call of op.
func (g *fakeGateway) authOf(op string) [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]string(nil), g.auth[op]...)
}

func (g *fakeGateway) setMode(op string, m mode) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.modes[op] = m
}

func (g *fakeGateway) count(op string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[op]
}

func (g *fakeGateway) keysFor(op string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.sentKeys[op]...)
}

// settleAll is the issuer's cut-off: every approval becomes settled.
func (g *fakeGateway) settleAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range g.byOrder {
		if a.state == "approved" {
			a.state = "settled"
		}
	}
}

func (g *fakeGateway) approvalOf(order string) *approval {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.byOrder[order]; a != nil {
		c := *a
		return &c
	}
	return nil
}

var wantFields = map[string][]string{
	"approve": {"Ecom_ConsumerOrderID", "Ecom_Transaction_Amount", "Ecom_Transaction_CurrencyCode", "Ecom_Transaction_Type",
		"Ecom_Payment_Card_Number", "Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year"},
	"cancel": {"Ecom_ConsumerOrderID", "Ecom_Transaction_Amount", "Ecom_Transaction_CurrencyCode", "Ecom_Transaction_Type",
		"Ecom_Transaction_ApprovalCode"},
	"refund": {"Ecom_ConsumerOrderID", "Ecom_Transaction_Amount", "Ecom_Transaction_CurrencyCode", "Ecom_Transaction_Type",
		"Ecom_Transaction_ApprovalCode"},
	"inquire": {"Ecom_ConsumerOrderID", "Ecom_Transaction_Type"},
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, "/v1/card/")
	if !ok || wantFields[op] == nil || r.Method != http.MethodPost {
		g.t.Errorf("gateway: unexpected %s %s", r.Method, r.URL.Path)
		problem(w, 404, "unknown-service")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		g.t.Errorf("gateway: %s with Content-Type %q", op, ct)
	}
	key := r.Header.Get("Idempotency-Key")
	if op != "inquire" && key == "" {
		g.t.Errorf("gateway: %s without Idempotency-Key", op)
		problem(w, 400, "idempotency-key-missing")
		return
	}
	var req struct {
		Fields  map[string]string `json:"fields"`
		Routing *struct {
			CardBIN string `json:"card_bin"`
		} `json:"routing"`
		AuthenticationResults []string `json:"authentication_results"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		g.t.Errorf("gateway: %s body: %v", op, err)
		problem(w, 400, "bad-request")
		return
	}
	f := req.Fields
	if req.Routing == nil || len(req.Routing.CardBIN) != 6 {
		g.t.Errorf("gateway: %s without the card's BIN as a routing hint", op)
	}
	for _, name := range wantFields[op] {
		if f[name] == "" {
			g.t.Errorf("gateway: %s without %s", op, name)
		}
	}
	if f["Ecom_Transaction_Type"] != "credit" || op != "inquire" && f["Ecom_Transaction_CurrencyCode"] != "KRW" {
		g.t.Errorf("gateway: %s type/currency %q/%q", op, f["Ecom_Transaction_Type"], f["Ecom_Transaction_CurrencyCode"])
	}
	if op == "approve" {
		if m := f["Ecom_Payment_Card_ExpDate_Month"]; len(m) != 2 {
			g.t.Errorf("gateway: expiry month %q", m)
		}
		if y := f["Ecom_Payment_Card_ExpDate_Year"]; len(y) != 4 {
			g.t.Errorf("gateway: expiry year %q", y)
		}
		// The sub-merchant the PG pays for: its name and MID, or the
		// entityID it came through KECIS with (merchantRef).
		if id := f["Ecom_Merchant_ID"]; f["Ecom_Merchant"] == "" || !strings.HasPrefix(id, "M") && !strings.HasPrefix(id, "https://") {
			g.t.Errorf("gateway: approve without its sub-merchant: %q %q", f["Ecom_Merchant"], f["Ecom_Merchant_ID"])
		}
	}

	g.mu.Lock()
	g.calls[op]++
	g.auth[op] = append(g.auth[op], req.AuthenticationResults)
	g.fields[op] = append(g.fields[op], f)
	if key != "" {
		g.sentKeys[op] = append(g.sentKeys[op], key)
	}
	m := g.modes[op]
	if ra, ok := g.raw[op]; ok {
		g.mu.Unlock()
		w.Header().Set("Content-Type", ra.contentType)
		w.WriteHeader(ra.status)
		io.WriteString(w, ra.body)
		return
	}
	fpb, _ := json.Marshal(f)
	fp := string(fpb)
	var status int
	var body []byte
	if s, seen := g.keys[key]; key != "" && seen {
		if s.op != op || s.fp != fp {
			g.mu.Unlock()
			problem(w, 422, "idempotency-key-reused")
			return
		}
		status, body = s.status, s.body
	} else {
		switch m {
		case pendingUnseen:
			g.mu.Unlock()
			writeRaw(w, 202, respond("pending", "Responder", "Pending", nil))
			return
		case unavailable:
			g.mu.Unlock()
			writeRaw(w, 503, respond("unavailable", "Responder", "ProviderUnavailable", nil))
			return
		case noRoute:
			g.mu.Unlock()
			problem(w, 422, "no-route")
			return
		}
		status, body = g.process(op, f)
		if key != "" {
			g.keys[key] = stored{op: op, fp: fp, status: status, body: body}
		}
	}
	slow := g.slow
	g.mu.Unlock()

	switch m {
	case pendingProcessed:
		writeRaw(w, 202, respond("pending", "Responder", "Pending", nil))
	case hangupProcessed:
		// Every request of the op, a transport-level retry included, is
		// carried out and then loses its answer.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			g.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	case slowProcessed:
		time.Sleep(slow)
		writeRaw(w, status, body)
	default:
		writeRaw(w, status, body)
	}
}

// process carries out op at the fake issuer; the caller holds g.mu.
func (g *fakeGateway) process(op string, f map[string]string) (int, []byte) {
	order := f["Ecom_ConsumerOrderID"]
	a := g.byOrder[order]
	if op != "approve" && (a == nil || f["Ecom_Transaction_ApprovalCode"] != "" && f["Ecom_Transaction_ApprovalCode"] != a.code) {
		return 200, respond("answered", "Requester", "Declined", nil)
	}
	switch op {
	case "approve":
		if a != nil {
			return 200, respond("answered", "Responder", "Declined", nil)
		}
		if sub := g.declines[f["Ecom_Payment_Card_Number"]]; sub != "" {
			return 200, respond("answered", "Responder", sub, nil)
		}
		amount, _ := strconv.ParseInt(f["Ecom_Transaction_Amount"], 10, 64)
		g.nextCode++
		a = &approval{order: order, code: fmt.Sprintf("%08d", g.nextCode), amount: amount, state: "approved"}
		g.byOrder[order] = a
	case "cancel":
		switch a.state {
		case "approved":
			a.state = "cancelled"
		case "cancelled":
			return 200, respond("answered", "Responder", "Declined", nil)
		default:
			return 200, respond("answered", "Responder", "PolicyViolation", nil)
		}
	case "refund":
		amount, _ := strconv.ParseInt(f["Ecom_Transaction_Amount"], 10, 64)
		switch {
		case a.state == "approved":
			return 200, respond("answered", "Responder", "PolicyViolation", nil)
		case a.state == "cancelled" || a.refunded+amount > a.amount:
			return 200, respond("answered", "Responder", "LimitExceeded", nil)
		}
		a.refunded += amount
		a.state = "partially-refunded"
		if a.refunded == a.amount {
			a.state = "refunded"
		}
	}
	fields := map[string]string{
		"Ecom_ConsumerOrderID": order, "Ecom_Transaction_ApprovalCode": a.code,
		"Ecom_Transaction_ResponseData": a.state, "Ecom_Transaction_Amount": strconv.FormatInt(a.amount, 10),
		"Ecom_Transaction_CurrencyCode": "KRW", "Ecom_Transaction_Type": "credit",
	}
	if a.refunded > 0 {
		fields["Ecom_Transaction_PrivateUseData"] = "refunded=" + strconv.FormatInt(a.refunded, 10)
	}
	return 200, respond("answered", "Success", "", fields)
}

func respond(outcome, status, sub string, fields map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"outcome": outcome, "status": status, "sub_status": sub,
		"message": strings.ToLower(sub), "provider": "https://issuer.example/kecis", "request_id": "_req",
		"fields": fields})
	return b
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func problem(w http.ResponseWriter, status int, typ string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "urn:kecis:problem:" + typ, "title": typ, "status": status})
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one PG under test with its fake issuer gateway, clock and logs.
type env struct {
	t     testing.TB
	pg    *pg.PG
	gw    *fakeGateway
	clock *testutil.Clock
	logs  *syncBuffer
	m     *pg.CreatedMerchant
	seq   atomic.Int64
}

type dsnFunc func(testing.TB) string

// eachBackend runs f on SQLite and, when the test server is reachable, on
// PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, dsn dsnFunc)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, sqltest.TestSQLiteDSN)
	})
	t.Run("postgres", func(t *testing.T) {
		sqltest.RequirePostgres(t)
		t.Parallel()
		f(t, func(tb testing.TB) string { return sqltest.TestPostgresDSN(tb) })
	})
}

// defaultContract accepts the 949010 BIN only, up to 1,000,000 won a
// payment and 3,000,000 won a day, at 2.5 %.
var defaultContract = pg.Contract{BINPrefixes: []string{"949010"}, FeeBPS: 250, MaxAmount: 1_000_000, DailyLimit: 3_000_000}

func newEnv(t testing.TB, dsn dsnFunc, opts ...func(*pg.Config)) *env {
	t.Helper()
	e := &env{t: t, gw: newFakeGateway(t), clock: testutil.NewClock(testutil.FixedNow), logs: &syncBuffer{}}
	srv := httptest.NewServer(e.gw)
	t.Cleanup(srv.Close)
	cfg := pg.Config{
		DSN:              dsn(t),
		IssuerGatewayURL: srv.URL,
		HTTPClient:       srv.Client(),
		GatewayTimeout:   5 * time.Second,
		DataKey:          testDataKey,
		AdminToken:       adminToken,
		Logger:           slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:              e.clock.Now,
		Rand:             testutil.NewDetRand(t.Name()),
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := pg.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	e.pg = p
	m, err := p.CreateMerchant(ctx, pg.NewMerchant{Name: "Example Shop", Contract: defaultContract})
	if err != nil {
		t.Fatalf("CreateMerchant: %v", err)
	}
	e.m = m
	return e
}

func (e *env) next() int64 { return e.seq.Add(1) }

// payReq is a payment of amount with card for a fresh order and key.
func (e *env) payReq(card string, amount int64) pg.PayRequest {
	n := e.next()
	return pg.PayRequest{MID: e.m.MID, OrderNo: "ORD-" + strconv.FormatInt(n, 10), Amount: amount,
		CardNo: pg.CardNumber(card), ExpMonth: 11, ExpYear: 2031, ProductName: "아메리카노",
		IdempotencyKey: "pay-" + strconv.FormatInt(n, 10)}
}

// pay pays and requires a recorded transaction (approved or not).
func (e *env) pay(card string, amount int64) *pg.Payment {
	e.t.Helper()
	p, err := e.pg.Pay(ctx, e.payReq(card, amount))
	if err != nil {
		e.t.Fatalf("Pay(%d): %v", amount, err)
	}
	return p
}

func (e *env) approved(amount int64) *pg.Payment {
	e.t.Helper()
	p := e.pay(cardGood, amount)
	if p.Status != pg.StatusApproved || p.ResultCode != pg.CodeSuccess {
		e.t.Fatalf("Pay(%d) = %s/%s %s, want APPROVED/0000", amount, p.Status, p.ResultCode, p.ResultDetail)
	}
	return p
}

func (e *env) cancel(tid string) (*pg.Payment, error) {
	return e.pg.Cancel(ctx, pg.CancelRequest{MID: e.m.MID, TID: tid, IdempotencyKey: "cancel-" + strconv.FormatInt(e.next(), 10)})
}

func (e *env) refund(tid string, amount int64) (*pg.Payment, error) {
	return e.pg.Refund(ctx, pg.RefundRequest{MID: e.m.MID, TID: tid, Amount: amount,
		IdempotencyKey: "refund-" + strconv.FormatInt(e.next(), 10)})
}

func (e *env) get(tid string) *pg.Payment {
	e.t.Helper()
	p, err := e.pg.Get(ctx, e.m.MID, tid)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", tid, err)
	}
	return p
}

func (e *env) resolve() pg.ResolveReport {
	e.t.Helper()
	rep, err := e.pg.ResolvePending(ctx)
	if err != nil {
		e.t.Fatalf("ResolvePending: %v", err)
	}
	return rep
}

func wantCode(t testing.TB, err error, want pg.ResultCode) {
	t.Helper()
	if got := pg.CodeOf(err); got != want {
		t.Fatalf("error = %v (code %q), want code %s", err, got, want)
	}
}

func wantState(t testing.TB, p *pg.Payment, status pg.Status, code pg.ResultCode) {
	t.Helper()
	if p.Status != status || p.ResultCode != code {
		t.Fatalf("payment %s = %s/%s (%s), want %s/%s", p.TID, p.Status, p.ResultCode, p.ResultDetail, status, code)
	}
}

// client calls the PG's HTTP API in process.
type client struct {
	t testing.TB
	h http.Handler
}

type response struct {
	code   int
	header http.Header
	raw    string
	body   map[string]any
}

type hdr map[string]string

// do sends a request; body is JSON-encoded unless it is a string.
func (c client) do(method, path string, h hdr, body any) response {
	c.t.Helper()
	var rd io.Reader = http.NoBody
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := response{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			c.t.Fatalf("%s %s: body %q: %v", method, path, res.raw, err)
		}
	}
	return res
}

// want checks the HTTP status and the resultCode.
func (r response) want(t testing.TB, status int, code pg.ResultCode) response {
	t.Helper()
	if r.code != status || r.str("resultCode") != string(code) {
		t.Fatalf("got HTTP %d %s, want %d with resultCode %s", r.code, r.raw, status, code)
	}
	return r
}

func (r response) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

func (r response) num(k string) int64 {
	f, _ := r.body[k].(float64)
	return int64(f)
}
