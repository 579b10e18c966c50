package server_test

import (
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/saml"
)

// TestTwoReplicasShareIdempotency: two hub replicas on one PostgreSQL
// agree. A request in flight at replica A makes a retry at replica B meet
// InFlight; after A answers Pending, a retry at B reaches the provider and
// gets the original outcome; a replay of A's message at B is a replay.
func TestTwoReplicasShareIdempotency(t *testing.T) {
	sqltest.RequirePostgres(t)
	f := setupFederationOn(t, sqltest.TestPostgresDSN(t), 300*time.Millisecond, "")
	b := f.h.replica(t)
	fa := *f
	fb := *f
	fb.h = b

	msg := f.approve(t, "two-1", "15000", f.dest)
	if st, _, err := fa.send(t, &f.mTLS, msg); err != nil || !st.OK() {
		t.Fatalf("replica A: %v %+v", err, st)
	}
	if st, _, _ := fb.send(t, &f.mTLS, msg); st.SubCode != saml.CodeReplay {
		t.Fatalf("the same message at replica B: %+v, want Replay", st)
	}

	f.p.mu.Lock()
	f.p.block = make(chan struct{})
	block := f.p.block
	start := f.p.received
	f.p.mu.Unlock()
	first := make(chan *saml.Status, 1)
	go func() {
		st, _, _ := fa.send(t, &f.mTLS, f.approve(t, "two-2", "7000", f.dest))
		first <- st
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.p.mu.Lock()
		n := f.p.received
		f.p.mu.Unlock()
		if n > start || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _, _ := fb.send(t, &f.mTLS, f.approve(t, "two-2", "7000", f.dest)); st.SubCode != saml.CodeInFlight {
		t.Fatalf("retry at replica B while A is in flight: %+v", st)
	}
	if st := <-first; st.SubCode != saml.CodePending {
		t.Fatalf("replica A after the timeout: %+v, want Pending", st)
	}
	f.p.mu.Lock()
	f.p.block = nil
	f.p.mu.Unlock()
	close(block)
	var got *saml.Status
	for i := 0; i < 50; i++ {
		if got, _, _ = fb.send(t, &f.mTLS, f.approve(t, "two-2", "7000", f.dest)); got.OK() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.p.mu.Lock()
	want := f.p.outcomes["two-2"]
	f.p.mu.Unlock()
	if !got.OK() || got.Message != want {
		t.Fatalf("retry at replica B after Pending: %+v, want the original outcome %s", got, want)
	}
	// A changed retry is refused at either replica.
	if st, _, _ := fb.send(t, &f.mTLS, f.approve(t, "two-2", "7001", f.dest)); st.SubCode != saml.CodeIdempotencyConflict {
		t.Fatalf("changed retry at B: %+v", st)
	}
}
