package faulttest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRestartPostgresUnderLoad: the database of two replicas (and of the
// demo's hub) stops while approvals flow, on a private cluster. Both
// replicas say not ready (/readyz 503 naming the database) and refuse a
// request at once — 503 with Retry-After, the problem unavailable or
// HubUnavailable (KECIS §12.8), never 500 internal — rather than hold it;
// a pooled connection the restart ended is run again on a new one. Once
// the database is back they are ready again, the clients' retries with the
// same Idempotency-Key finish every request with one outcome, and the
// issuer's ledger holds each acknowledged approval once. A request whose
// PG leg (the PG's sidecar through the demo's hub, on the same database)
// failed may stay Pending at the PG — it inquires until its pending
// grace — and is approved at the issuer at most once.
func TestRestartPostgresUnderLoad(t *testing.T) {
	pg := newPGCluster(t)
	f := startFed(t, fedOptions{postgres: pg.dsn("postgres")})
	a, b := f.addReplica("a"), f.addReplica("b")
	for _, r := range []*replica{a, b} {
		r.waitReadyz(t, http.StatusOK, 20*time.Second)
	}
	ctx := bounded(t)
	var mu sync.Mutex
	seen := map[string]int{}
	dr := &driver{f: f, targets: func() []string { return urls(a, b) }, retryFor: 30 * time.Second, pendingFor: 8 * time.Second,
		backoff: 50 * time.Millisecond, onAnswer: func(_ string, a answer) {
			if a.final() || a.err != nil {
				return
			}
			mu.Lock()
			seen[a.String()]++
			mu.Unlock()
			if a.status == http.StatusInternalServerError {
				t.Errorf("a replica answered %v while the database restarted: want 503 unavailable, not an internal error", a)
			}
		}}
	rqs := f.requests("pg", 120, 1000)
	loaded := make(chan []outcome, 1)
	start := time.Now()
	go func() { loaded <- dr.run(ctx, rqs, 4) }()

	waitFor(t, "the load under way", 30*time.Second, func() bool { return dr.calls.Load() >= 30 })
	pg.stop()
	down := time.Now()
	for _, r := range []*replica{a, b} {
		took := r.waitReadyz(t, http.StatusServiceUnavailable, 10*time.Second)
		_, body := r.readyz()
		if !strings.Contains(body, "database: ") || strings.Contains(body, "database: ok") {
			t.Errorf("replica %s not ready, its /readyz does not name the database:\n%s", r.name, body)
		}
		t.Logf("replica %s not ready %v after the database stopped", r.name, took.Round(time.Millisecond))
	}
	probe := request{key: "probe-down", merchant: f.d.Merchants[0], amount: 5000}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	asked := time.Now()
	ans := f.call(pctx, a.url, "approve", probe.merchant, probe.key, f.approveFields(probe.key, probe.amount))
	cancel()
	if !ans.hubUnavailable() {
		t.Errorf("a request while the database is down: %v (Retry-After %q), want 503 unavailable with Retry-After", ans, ans.retryAfter)
	}
	t.Logf("a request while the database is down: %v in %v", ans, time.Since(asked).Round(time.Millisecond))

	// The load meets the outage before the database comes back.
	retried := dr.retried.Load()
	waitFor(t, "the load meets the outage", 10*time.Second, func() bool { return dr.retried.Load() >= retried+20 })
	pg.start()
	t.Logf("the database was down %v", time.Since(down).Round(time.Millisecond))
	for _, r := range []*replica{a, b} {
		t.Logf("replica %s ready %v after the database restarted", r.name, r.waitReadyz(t, http.StatusOK, 20*time.Second).Round(time.Millisecond))
	}
	outs := <-loaded
	mu.Lock()
	t.Logf("answers the clients retried: %v", seen)
	mu.Unlock()
	summarize(t, "120 approvals over 2 replicas, the database restarted", outs, time.Since(start))
	outs = append(outs, dr.do(ctx, probe))
	f.reconcile(outs, 1000, 5001)
	f.askAgain(outs, urls(a, b))
	f.checkHubRecords(outs)
}
