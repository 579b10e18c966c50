package faulttest

import (
	"net/http"
	"testing"
	"time"
)

// TestKillReplicaUnderLoad: SIGKILL one of three replicas while approvals
// flow round robin through all three, on a card the issuer takes 300ms
// over. Requests it held — some delivered, awaiting the issuer — fail at
// the client, which retries them with the same Idempotency-Key at the next
// replica; the other two carry on, the killed one restarts and rejoins;
// every request ends with one outcome — asked again with its key at any
// replica, the same — and the issuer's ledger holds each acknowledged
// approval once.
func TestKillReplicaUnderLoad(t *testing.T) {
	dsn, _ := newDatabase(t)
	f := startFed(t, fedOptions{postgres: dsn})
	a, b, c := f.addReplica("a"), f.addReplica("b"), f.addReplica("c")
	for _, r := range []*replica{a, b, c} {
		r.waitReadyz(t, http.StatusOK, 20*time.Second)
	}
	ctx := bounded(t)
	dr := &driver{f: f, targets: func() []string { return urls(a, b, c) }, retryFor: 30 * time.Second}
	// The issuer takes 300ms over each, so that the kill finds requests
	// replica a already delivered and is waiting on.
	slow := f.issuerDelay(300 * time.Millisecond)
	rqs := f.requests("kill", 150, 1000)
	for i := range rqs {
		rqs[i].card = slow
	}
	loaded := make(chan []outcome, 1)
	start := time.Now()
	go func() { loaded <- dr.run(ctx, rqs, 6) }()

	waitFor(t, "a third of the load sent", 30*time.Second, func() bool { return dr.calls.Load() >= 50 })
	a.kill()
	killed := time.Now()
	callsAtKill := dr.calls.Load()
	t.Logf("replica a killed (SIGKILL) after %d calls, %v into the load", callsAtKill, killed.Sub(start).Round(time.Millisecond))
	waitFor(t, "the other replicas carry on", 20*time.Second, func() bool { return dr.calls.Load() >= callsAtKill+30 })
	a.start(t)
	t.Logf("replica a restarted; ready again in %v", a.waitReadyz(t, http.StatusOK, 20*time.Second).Round(time.Millisecond))

	outs := <-loaded
	summarize(t, "150 approvals round robin over 3 replicas, one killed", outs, time.Since(start))
	cut := 0
	for _, o := range outs {
		if o.seen["no answer"] > 0 {
			cut++
		}
	}
	if cut == 0 {
		t.Error("the kill cut no request: replica a held none")
	}
	t.Logf("%d requests were cut by the kill and retried elsewhere", cut)
	f.reconcile(outs, 1000, 1150)
	f.askAgain(outs, urls(a, b, c))
	f.checkHubRecords(outs)
}
