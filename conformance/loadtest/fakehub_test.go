package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/ecml"
)

// fakeHub is a hub's JSON facade over an issuer's ledger, in memory, with
// faults to inject: an approval it acknowledges and loses, one it books
// twice, keys it answers 503 once, keys it answers too late once (having
// done the work).
type fakeHub struct {
	t   testing.TB
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	keys     map[string]string // API key → merchant
	orders   map[string]*LedgerEntry
	ledger   []*LedgerEntry
	settled  map[string]bool
	replies  map[string][]byte // merchant|key → answer
	attempts map[string]int    // merchant|key → attempts
	merchant map[string]int    // merchant → requests
	noKey    int               // changes without an Idempotency-Key
	keyed    int               // inquiries with one
	n        int               // approvals booked

	lose, double  int             // the approval numbered so is lost, booked twice
	unavailable   map[string]bool // keys answered 503 at their first attempt
	slow          map[string]bool // keys answered after slowFor at their first attempt
	slowFor       time.Duration
	onApprove     func(n int) // called as approval n is answered (the pacing test's clock)
	settleCalls   int
	issuedLimit   int64
	ledgerReads   int
	failIssueCard bool
}

func newFakeHub(t testing.TB) *fakeHub {
	h := &fakeHub{t: t, keys: map[string]string{"key-1": "shop", "key-2": "shop2"}, orders: map[string]*LedgerEntry{},
		settled: map[string]bool{}, replies: map[string][]byte{}, attempts: map[string]int{}, merchant: map[string]int{},
		unavailable: map[string]bool{}, slow: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/card/{op}", h.facade)
	mux.HandleFunc("POST /settle", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.settleCalls++
		for _, e := range h.ledger {
			if e.Status == "approved" {
				e.Status = "settled"
				h.settled[e.Number] = true
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	h.mux = mux
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// replica serves the same hub (its facade over the same ledger) at
// another URL, as a second `kecis serve` on the hub's database; served
// counts the requests it took.
func (h *fakeHub) replica(served *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.mux.ServeHTTP(w, r)
	}))
	h.t.Cleanup(srv.Close)
	return srv.URL
}

func (h *fakeHub) target() *Target {
	return &Target{HubURL: h.srv.URL, SettleURL: h.srv.URL + "/settle",
		Merchants: []Merchant{{Name: "shop", APIKey: "key-1"}, {Name: "shop2", APIKey: "key-2"}}}
}

// IssueCard implements Issuer.
func (h *fakeHub) IssueCard(_ context.Context, limit int64, key string) (*Card, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failIssueCard {
		return nil, fmt.Errorf("issuer down")
	}
	h.issuedLimit = limit
	return &Card{ID: "card_" + key, Number: "9490101234567893", ExpMonth: 12, ExpYear: 2031}, nil
}

// Ledger implements Issuer.
func (h *fakeHub) Ledger(context.Context, string) ([]LedgerEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ledgerReads++
	var out []LedgerEntry
	for _, e := range h.ledger {
		out = append(out, *e)
	}
	return out, nil
}

func (h *fakeHub) answer(w http.ResponseWriter, code int, a callapi.CallResponse) {
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (h *fakeHub) facade(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	merchant := h.keys[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if merchant == "" {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"urn:kecis:problem:unauthenticated"}`))
		return
	}
	var req callapi.CallRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		h.t.Errorf("%s: body: %v", op, err)
	}
	key := r.Header.Get("Idempotency-Key")
	ik := merchant + "|" + key
	h.mu.Lock()
	h.merchant[merchant]++
	if (key == "") != (op == OpInquire) {
		if key == "" {
			h.noKey++
		} else {
			h.keyed++
		}
	}
	h.attempts[ik]++
	first := h.attempts[ik] == 1
	if key != "" && first && h.unavailable[key] {
		h.mu.Unlock()
		h.answer(w, http.StatusServiceUnavailable, callapi.CallResponse{Outcome: callapi.OutcomeUnavailable, Status: "Responder", SubStatus: "ProviderUnavailable"})
		return
	}
	if reply, ok := h.replies[ik]; ok && key != "" {
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(reply[0])<<8 | int(reply[1]))
		_, _ = w.Write(reply[2:])
		return
	}
	slow := key != "" && first && h.slow[key]
	order := merchant + "|" + req.Fields[fOrder]
	e := h.orders[order]
	ok := func(e *LedgerEntry) callapi.CallResponse {
		data := e.Status
		if data == "partially_refunded" {
			data = "partially-refunded"
		}
		return callapi.CallResponse{Outcome: callapi.OutcomeAnswered, Status: "Success",
			Fields: map[string]string{fOrder: req.Fields[fOrder], fApprovalCode: e.Number, fResponseData: data}}
	}
	refuse := func(sub string) callapi.CallResponse {
		return callapi.CallResponse{Outcome: callapi.OutcomeAnswered, Status: "Responder", SubStatus: sub}
	}
	code, a := http.StatusOK, callapi.CallResponse{}
	switch op {
	case OpApprove:
		if e != nil {
			code, a = http.StatusUnprocessableEntity, refuse("Duplicate")
			break
		}
		if !ecml.LuhnValid(req.Fields["Ecom_Payment_Card_Number"]) {
			h.t.Errorf("approve without the card")
		}
		amount, _ := strconv.ParseInt(req.Fields[fAmount], 10, 64)
		h.n++
		e = &LedgerEntry{Number: fmt.Sprintf("%08d", 10_000_000+h.n), Status: "approved", OrderID: fmt.Sprintf("T%06d", h.n), Amount: amount}
		h.orders[order] = e
		if h.n != h.lose {
			h.ledger = append(h.ledger, e)
		}
		if h.n == h.double {
			twice := *e
			twice.Number = fmt.Sprintf("%08d", 20_000_000+h.n)
			h.ledger = append(h.ledger, &twice)
		}
		a = ok(e)
		if h.onApprove != nil {
			h.onApprove(h.n)
		}
	case OpCancel:
		switch {
		case e == nil:
			code, a = http.StatusUnprocessableEntity, refuse("NotFound")
		case e.Status != "approved":
			code, a = http.StatusUnprocessableEntity, refuse("PolicyViolation")
		default:
			e.Status = "cancelled"
			a = ok(e)
		}
	case OpRefund:
		amount, _ := strconv.ParseInt(req.Fields[fAmount], 10, 64)
		switch {
		case e == nil:
			code, a = http.StatusUnprocessableEntity, refuse("NotFound")
		case !h.settled[e.Number]:
			code, a = http.StatusUnprocessableEntity, refuse("PolicyViolation")
		case e.Refunded+amount > e.Amount:
			code, a = http.StatusPaymentRequired, refuse("LimitExceeded")
		default:
			e.Refunded += amount
			e.Status = "partially_refunded"
			a = ok(e)
		}
	case OpInquire:
		if e == nil {
			code, a = http.StatusUnprocessableEntity, refuse("NotFound")
		} else {
			a = ok(e)
		}
	default:
		code, a = http.StatusNotFound, refuse("RequestUnsupported")
	}
	b, _ := json.Marshal(a)
	if key != "" {
		h.replies[ik] = append([]byte{byte(code >> 8), byte(code)}, b...)
	}
	h.mu.Unlock()
	if slow {
		time.Sleep(h.slowFor) // the work is done and kept; the answer comes too late
	}
	h.answer(w, code, a)
}

// fakeClock is a clock that moves only when told: SleepUntil moves it
// forward to the time slept until, Advance to a time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.AdvanceTo(t)
	return ctx.Err()
}

// AdvanceTo moves the clock to t if t is later.
func (c *fakeClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}
