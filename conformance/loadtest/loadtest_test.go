package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 100; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(l, c.p); got != c.want {
			t.Errorf("p%g of 1..100 ms = %s, want %s", c.p, got, c.want)
		}
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one value: %s", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing: %s", got)
	}
	// Nearest rank: p95 of 10 values is the 10th, p50 the 5th.
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if Percentile(ten, 95) != 10 || Percentile(ten, 50) != 5 || Percentile(ten, 90) != 9 {
		t.Errorf("nearest rank of 1..10: p50 %d p90 %d p95 %d", Percentile(ten, 50), Percentile(ten, 90), Percentile(ten, 95))
	}
}

// TestPacer: at a fixed rate slot n is due at start + n/rate; a slot
// handed out late keeps the time it was due; the duration and the
// number of slots bound the run; without a rate slots come at once.
func TestPacer(t *testing.T) {
	ctx := context.Background()
	c := &fakeClock{now: t0}
	p := &pacer{clock: c, start: t0, rate: 10, max: 5}
	for n := range 3 {
		due, ok := p.next(ctx)
		if want := t0.Add(time.Duration(n) * 100 * time.Millisecond); !ok || !due.Equal(want) || !c.Now().Equal(want) {
			t.Fatalf("slot %d: due %v (%v), clock %v; want %v", n, due, ok, c.Now(), want)
		}
	}
	// Every worker was busy for a second: the two slots left were due at
	// 300 and 400 ms and are handed out at once, with those times.
	c.AdvanceTo(t0.Add(time.Second))
	for n := 3; n < 5; n++ {
		due, ok := p.next(ctx)
		if want := t0.Add(time.Duration(n) * 100 * time.Millisecond); !ok || !due.Equal(want) || !c.Now().Equal(t0.Add(time.Second)) {
			t.Fatalf("late slot %d: due %v (%v), clock %v; want due %v, the clock unmoved", n, due, ok, c.Now(), want)
		}
	}
	if _, ok := p.next(ctx); ok {
		t.Fatal("a sixth slot of five")
	}

	c = &fakeClock{now: t0}
	p = &pacer{clock: c, start: t0, end: t0.Add(250 * time.Millisecond), rate: 10, max: 100}
	n := 0
	for _, ok := p.next(ctx); ok; _, ok = p.next(ctx) {
		n++
	}
	if n != 3 {
		t.Errorf("250 ms at 10/s: %d slots, want 3 (0, 100, 200 ms)", n)
	}

	p = &pacer{clock: c, start: t0, max: 2}
	if due, ok := p.next(ctx); !ok || !due.IsZero() {
		t.Errorf("as fast as possible: due %v", due)
	}
	p.next(ctx)
	if _, ok := p.next(ctx); ok {
		t.Error("as fast as possible: a third slot of two")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := (&pacer{clock: c, start: t0, rate: 1, max: 9}).next(cancelled); ok {
		t.Error("a slot after the context ended")
	}
}

// TestLatencyFromDue: at a fixed rate a request's latency counts from the
// time it was due, so the queue behind a slow hub is measured
// (coordinated omission); as fast as possible it counts from the send.
// The hub answers approval n at t0 + n s on the injected clock.
func TestLatencyFromDue(t *testing.T) {
	for _, c := range []struct {
		name     string
		rate     float64
		p50, max time.Duration
	}{
		{"open loop at 10/s", 10, 1900 * time.Millisecond, 2800 * time.Millisecond},
		{"as fast as possible", 0, time.Second, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newFakeHub(t)
			clock := &fakeClock{now: t0}
			h.onApprove = func(n int) { clock.AdvanceTo(t0.Add(time.Duration(n) * time.Second)) }
			sum, err := Run(context.Background(), h.target(), Options{Requests: 3, Concurrency: 1, Rate: c.rate,
				Mix: Mix{Approve: 1}, Clock: clock, Issuer: h, RunID: "pace"})
			if err != nil {
				t.Fatal(err)
			}
			if sum.P50MS != ms(c.p50) || sum.MaxMS != ms(c.max) || sum.DurationS != 3 || sum.Approvals != 3 || sum.ApprovalsPerS != 1 {
				t.Errorf("p50 %v ms, max %v ms, %v s, %d approvals (%v/s); want p50 %v, max %v, 3 s, 3 (1/s)",
					sum.P50MS, sum.MaxMS, sum.DurationS, sum.Approvals, sum.ApprovalsPerS, c.p50, c.max)
			}
		})
	}
}

// TestRunFlows drives the fake hub with every operation: both merchants,
// an Idempotency-Key on every change and none on an inquiry, a retry of an
// approval answered 503 and of one answered too late with the same key,
// one settlement before the run, refunds only of settled approvals, and a
// clean reconciliation.
func TestRunFlows(t *testing.T) {
	h := newFakeHub(t)
	// Orders 1–8 are approved and settled before the run (2 × concurrency);
	// the run's own start at 9.
	h.unavailable["lt-flows-10-a"] = true
	h.slow["lt-flows-12-a"], h.slowFor = true, 600*time.Millisecond
	var progress bytes.Buffer
	sum, err := Run(context.Background(), h.target(), Options{Requests: 120, Concurrency: 4, Seed: 7, RunID: "flows",
		Mix: Mix{Approve: 40, Cancel: 20, Refund: 20, Inquire: 20}, Timeout: 300 * time.Millisecond, Retries: 3,
		Issuer: h, Progress: &progress, ProgressEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	t.Log("\n" + text.String())
	if sum.Requests != 120 || len(sum.Errors) != 0 || sum.Retries != 2 {
		t.Errorf("%d requests, errors %v, %d retries; want 120, none, 2", sum.Requests, sum.Errors, sum.Retries)
	}
	if a, b := h.attempts["shop2|lt-flows-10-a"], h.attempts["shop2|lt-flows-12-a"]; a != 2 || b != 2 {
		t.Errorf("attempts of the keys answered 503 and too late: %d, %d; want 2 each (the same key)", a, b)
	}
	if h.noKey != 0 || h.keyed != 0 {
		t.Errorf("%d changes without an Idempotency-Key, %d inquiries with one", h.noKey, h.keyed)
	}
	if h.merchant["shop"] == 0 || h.merchant["shop2"] == 0 {
		t.Errorf("requests by merchant: %v", h.merchant)
	}
	if h.settleCalls != 1 {
		t.Errorf("%d settlements, want 1 (before the run)", h.settleCalls)
	}
	for _, op := range []string{OpApprove, OpCancel, OpRefund, OpInquire} {
		if st := sum.Operations[op]; st.Count == 0 || st.OK != st.Count {
			t.Errorf("%s: %+v", op, st)
		}
	}
	rc := sum.Reconciliation
	if rc == nil || !sum.Clean() || rc.Acknowledged != sum.Approvals+8 || rc.InLedger != rc.Acknowledged ||
		rc.CancelsAcknowledged != sum.Operations[OpCancel].OK || rc.Reversed != rc.CancelsAcknowledged ||
		rc.RefundedAcknowledged != int64(refundAmount*sum.Operations[OpRefund].OK) || rc.RefundedInLedger != rc.RefundedAcknowledged {
		t.Errorf("reconciliation %+v of %d approvals", rc, sum.Approvals)
	}
	if h.issuedLimit < 120*(approveBase+approveSpan)+8*prepAmount {
		t.Errorf("card limit %d: below what the run may approve", h.issuedLimit)
	}
	if sum.Card != "949010******7893" || strings.Contains(text.String(), "9490101234567893") {
		t.Errorf("card %q; the report shows the number?\n%s", sum.Card, text.String())
	}
	if !strings.Contains(progress.String(), "/120 done") {
		t.Errorf("progress: %q", progress.String())
	}
}

// TestRunReplicas: with several hubs (Target.HubURLs, kecis loadtest
// --target URL,URL…) the requests go to them in turn, a retry to the next
// one — so that a replica that is down costs each of its requests one
// attempt, not the request —, the summary counts each hub's share, and the
// ledger reconciles.
func TestRunReplicas(t *testing.T) {
	h := newFakeHub(t)
	var servedA, servedB atomic.Int64
	a, b := h.replica(&servedA), h.replica(&servedB)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // a replica that was killed: nothing listens there
	tg := h.target()
	tg.HubURLs = []string{a, b, dead.URL}
	if err := tg.Check(nil); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), tg, Options{Requests: 60, Concurrency: 3, Seed: 3, RunID: "replicas",
		Mix: Mix{Approve: 1}, Retries: 2, Issuer: h, Clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	t.Log("\n" + text.String())
	if sum.Approvals != 60 || len(sum.Errors) != 0 || !sum.Clean() || sum.Reconciliation.InLedger != 60 {
		t.Fatalf("%d approvals, errors %v, reconciliation %+v", sum.Approvals, sum.Errors, sum.Reconciliation)
	}
	if len(sum.Targets) != 3 {
		t.Fatalf("targets: %+v", sum.Targets)
	}
	ta, tb, td := sum.Targets[0], sum.Targets[1], sum.Targets[2]
	// A third of the requests start at each hub; those that started at the
	// dead one are retried at the first.
	if ta.URL != a || tb.URL != b || td.URL != dead.URL {
		t.Errorf("target URLs: %+v", sum.Targets)
	}
	if ta.Attempts != 40 || tb.Attempts != 20 || td.Attempts != 20 || sum.Retries != 20 {
		t.Errorf("attempts %d, %d, %d and %d retries; want 40, 20, 20 and 20", ta.Attempts, tb.Attempts, td.Attempts, sum.Retries)
	}
	if ta.Requests != 40 || ta.Approvals != 40 || ta.OK != 40 || tb.Requests != 20 || tb.Approvals != 20 || td.Requests != 0 || td.Errors != 0 {
		t.Errorf("per target: %+v", sum.Targets)
	}
	if servedA.Load() != 40 || servedB.Load() != 20 {
		t.Errorf("the replicas served %d and %d requests; want 40 and 20", servedA.Load(), servedB.Load())
	}
	if !strings.Contains(text.String(), "hub "+a+": 40 requests (40 attempts), 40 ok, 0 errors; 40 approvals") {
		t.Errorf("summary:\n%s", text.String())
	}
	// The JSON summary keeps every documented key and adds targets.
	js, _ := json.Marshal(sum)
	for _, k := range []string{`"approvals_per_s"`, `"p99_ms"`, `"errors"`, `"reconciliation"`, `"targets":[{"url":"` + a + `","attempts":40`} {
		if !bytes.Contains(js, []byte(k)) {
			t.Errorf("JSON summary lacks %s:\n%s", k, js)
		}
	}
}

// TestRunFindsLostAndDoubled: the hub acknowledges an approval the
// issuer's ledger lacks, and books another twice; the reconciliation
// finds both and names the orders.
func TestRunFindsLostAndDoubled(t *testing.T) {
	h := newFakeHub(t)
	h.lose, h.double = 10, 12
	sum, err := Run(context.Background(), h.target(), Options{Requests: 30, Concurrency: 2, Mix: Mix{Approve: 1}, RunID: "faults", Issuer: h})
	if err != nil {
		t.Fatal(err)
	}
	rc := sum.Reconciliation
	if sum.Clean() || rc.Acknowledged != 30 || rc.InLedger != 29 || rc.Lost != 1 || rc.Doubled != 1 || rc.LedgerEntries != 30 {
		t.Fatalf("reconciliation %+v", rc)
	}
	all := strings.Join(rc.Problems, "\n")
	if !strings.Contains(all, "approval 10000010 of") || !strings.Contains(all, "approval 20000012") {
		t.Errorf("problems:\n%s", all)
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	if !strings.Contains(text.String(), "FAILED: 30 acknowledged, 29 in the issuer's ledger, 1 lost, 1 doubled") {
		t.Errorf("summary:\n%s", text.String())
	}
}

// TestReconcile: each way a ledger can disagree with a run.
func TestReconcile(t *testing.T) {
	exp := []Expectation{
		{Order: "ok", Amount: 1000, Acknowledged: true, Number: "1"},
		{Order: "lost", Amount: 1010, Acknowledged: true, Number: "2"},
		{Order: "amount", Amount: 1020, Acknowledged: true, Number: "3"},
		{Order: "cancelled", Amount: 1030, Acknowledged: true, Number: "4", CancelAcknowledged: true, CancelAttempted: true},
		{Order: "not-reversed", Amount: 1040, Acknowledged: true, Number: "5", CancelAcknowledged: true, CancelAttempted: true},
		{Order: "reversed-unasked", Amount: 1050, Acknowledged: true, Number: "6"},
		{Order: "maybe-cancelled", Amount: 1060, Acknowledged: true, Number: "7", CancelAttempted: true},
		{Order: "refunds", Amount: 20000, Acknowledged: true, Number: "8", Refunded: 300, MaybeRefunded: 100},
		{Order: "refund-lost", Amount: 20000, Acknowledged: true, Number: "9", Refunded: 300},
		{Order: "refund-twice", Amount: 20000, Acknowledged: true, Number: "10", Refunded: 300},
		{Order: "found", Amount: 1100, Number: "11"},
		{Order: "unknown", Amount: 1110},
		{Order: "same-number", Amount: 1000, Acknowledged: true, Number: "1"},
	}
	ledger := []LedgerEntry{
		{Number: "1", Status: "approved", Amount: 1000},
		{Number: "3", Status: "approved", Amount: 9999},
		{Number: "4", Status: "cancelled", Amount: 1030},
		{Number: "5", Status: "approved", Amount: 1040},
		{Number: "6", Status: "cancelled", Amount: 1050},
		{Number: "7", Status: "approved", Amount: 1060},
		{Number: "8", Status: "partially_refunded", Amount: 20000, Refunded: 400},
		{Number: "9", Status: "partially_refunded", Amount: 20000, Refunded: 200},
		{Number: "10", Status: "partially_refunded", Amount: 20000, Refunded: 400},
		{Number: "11", Status: "approved", Amount: 1100},
		{Number: "12", Status: "approved", Amount: 1110}, // the unknown one's
		{Number: "13", Status: "approved", Amount: 1000}, // nobody's: doubled
		{Number: "13", Status: "approved", Amount: 1000}, // in the ledger twice
	}
	rc := Reconcile(exp, ledger)
	// Lost: 2 (absent), 3 (amount), 5 (cancel not reversed), 6 (reversed
	// unasked), 9 (refund missing), same-number. Doubled: 10's refund, 13
	// nobody's, 13 twice.
	want := Reconciliation{Acknowledged: 11, InLedger: 8, Lost: 6, Doubled: 3, Resolved: 1, Unresolved: 1,
		CancelsAcknowledged: 2, Reversed: 2, RefundedAcknowledged: 900, RefundedInLedger: 1000, LedgerEntries: 13}
	got := rc
	got.Problems = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reconciliation\n got %+v\nwant %+v", got, want)
	}
	if len(rc.Problems) != 9 {
		t.Errorf("%d problems:\n%s", len(rc.Problems), strings.Join(rc.Problems, "\n"))
	}
	clean := Reconcile(exp[:1], ledger[:1])
	if clean.Lost != 0 || clean.Doubled != 0 || clean.InLedger != 1 || len(clean.Problems) != 0 {
		t.Errorf("a clean ledger: %+v", clean)
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		hub, settle string
		allow       []string
		ok          bool
	}{
		{"https://127.0.0.1:8443", "http://127.0.0.1:8081/demo/settle", nil, true},
		{"https://127.0.0.5:8443", "", nil, true},
		{"https://[::1]:8443", "", nil, true},
		{"https://localhost:8443", "", nil, true},
		{"https://hub.example:8443", "", nil, false},
		{"https://10.0.0.7:8443", "", nil, false},
		{"https://127.0.0.1:8443", "http://10.0.0.7/settle", nil, false},
		{"https://hub.staging.internal", "", []string{"HUB.staging.internal"}, true},
		{"https://[2001:db8::1]:8443", "", []string{"[2001:db8::1]"}, true},
		{"https://hub.staging.internal.evil", "", []string{"hub.staging.internal"}, false},
		{"ftp://127.0.0.1/", "", nil, false},
		{"127.0.0.1:8443", "", nil, false},
	} {
		err := (&Target{HubURL: c.hub, SettleURL: c.settle}).Check(c.allow)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrHostRefused) {
			t.Errorf("hub %s, settle %q, allowed %v: %v", c.hub, c.settle, c.allow, err)
		}
	}
	// Every replica is checked; a URL with credentials is refused without
	// repeating them.
	for _, c := range []struct {
		hubs []string
		ok   bool
	}{
		{[]string{"https://127.0.0.1:8443", "https://127.0.0.1:9443"}, true},
		{[]string{"https://127.0.0.1:8443", "https://10.0.0.7:8443"}, false},
		{[]string{"https://user:s3cret@127.0.0.1:8443"}, false},
	} {
		err := (&Target{HubURL: c.hubs[0], HubURLs: c.hubs}).Check(nil)
		if (err == nil) != c.ok || err != nil && (!errors.Is(err, ErrHostRefused) || strings.Contains(err.Error(), "s3cret")) {
			t.Errorf("hubs %v: %v", c.hubs, err)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("approve=6, cancel=1,inquire=3")
	if err != nil || m != (Mix{Approve: 6, Cancel: 1, Inquire: 3}) {
		t.Errorf("%+v %v", m, err)
	}
	if m, err := ParseMix(DefaultMix.String()); err != nil || m != DefaultMix {
		t.Errorf("the default mix does not read back: %+v %v", m, err)
	}
	for _, bad := range []string{"", "approve", "approve=x", "approve=-1", "buy=3", "cancel=3", "approve=0,cancel=1"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{
		{Concurrency: 1},
		{Requests: MaxRequests + 1, Concurrency: 1},
		{Requests: 1, Concurrency: 0},
		{Requests: 1, Concurrency: MaxConcurrency + 1},
		{Requests: 1, Concurrency: 1, Rate: -1},
		{Duration: 2 * time.Hour, Concurrency: 1},
		{Requests: 1, Concurrency: 1, Retries: 9},
		{Requests: 1, Concurrency: 1, Mix: Mix{Cancel: 1}},
	} {
		if err := o.Validate(); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	o := Options{Duration: time.Second, Concurrency: 1, Rate: 20}
	if err := o.Validate(); err != nil || o.Mix != DefaultMix || o.Timeout != 30*time.Second || o.slots() != 21 {
		t.Errorf("defaults: %+v %v (slots %d)", o, err, o.slots())
	}
	if o := (Options{Duration: time.Second}); o.slots() != MaxRequests {
		t.Errorf("a duration as fast as possible: %d slots", o.slots())
	}
}

func TestReadTargetFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LT_SHOP_KEY", "secret-key")
	path := filepath.Join(dir, "target.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("hub_url: https://127.0.0.1:8443\nmerchants:\n  - {name: shop, api_key: '${LT_SHOP_KEY}'}\ncard: {number: '9490101234567893', exp_month: 12, exp_year: 2031}\n")
	tg, err := ReadTargetFile(path)
	if err != nil || tg.Merchants[0].APIKey != "secret-key" || tg.Card.Number.Reveal() != "9490101234567893" || tg.IssuerAPI != "" {
		t.Fatalf("%+v %v", tg, err)
	}
	for _, bad := range []string{
		"hub_url: https://127.0.0.1:8443\nmerchants: [{name: shop, api_key: k}]\ncard: {number: '9490101234567893', exp_month: 12, exp_year: 2031}\nextra: 1\n",
		"merchants: [{name: shop, api_key: k}]\nissuer_api: http://127.0.0.1:1\n",
		"hub_url: https://127.0.0.1:8443\nissuer_api: http://127.0.0.1:1\n",
		"hub_url: https://127.0.0.1:8443\nmerchants: [{name: shop, api_key: k}]\n",
		"hub_url: https://127.0.0.1:8443\nmerchants: [{name: shop, api_key: ''}]\nissuer_api: http://127.0.0.1:1\n",
		"hub_url: https://127.0.0.1:8443\nmerchants: [{name: shop, api_key: k}]\ncard: {number: '9490101234567890', exp_month: 12, exp_year: 2031}\n",
		"hub_url: https://127.0.0.1:8443\nmerchants: [{name: shop, api_key: k}]\nissuer_api: http://127.0.0.1:1\nhub_ca: missing.pem\n",
	} {
		write(bad)
		if _, err := ReadTargetFile(path); err == nil {
			t.Errorf("taken:\n%s", bad)
		} else if strings.Contains(err.Error(), "949010123456789") {
			t.Errorf("the error shows the card number: %v", err)
		}
	}
	if _, err := ReadDemo(dir); err == nil || !strings.Contains(err.Error(), "no demo runs in") {
		t.Errorf("no demo.json: %v", err)
	}
}

// TestRunStops: a run whose context ended issues nothing, says it was
// interrupted and still reconciles; an issuer that cannot issue the card
// stops the run before it starts.
func TestRunStops(t *testing.T) {
	h := newFakeHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := Run(ctx, h.target(), Options{Requests: 50, Concurrency: 2, Issuer: h, Mix: Mix{Approve: 1}})
	if err != nil || !sum.Interrupted || sum.Requests != 0 || sum.Reconciliation == nil || !sum.Clean() || h.ledgerReads != 1 {
		t.Errorf("%+v %v", sum, err)
	}
	h.failIssueCard = true
	if _, err := Run(context.Background(), h.target(), Options{Requests: 5, Concurrency: 1, Issuer: h}); err == nil || !strings.Contains(err.Error(), "issuer down") {
		t.Errorf("the card could not be issued: %v", err)
	}
}
