package router_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
	"github.com/kecis/kecis/saml"
)

// TestCrashBetweenWrites kills the hub's store between each pair of the
// writes of one approval (KECIS §12.3), through both paths, and starts the
// hub again on what the database holds:
//
//   - when the merchant got the provider's answer, the idempotency entry
//     is done and the audit holds the request and the answer as relayed;
//   - when it did not, a retry with the same idempotency key — once the
//     crashed attempt's lease has expired — is forwarded and answered with
//     the provider's one outcome for the key, and the audit holds exactly
//     one answer for the transaction.
//
// The last run crashes at no write: the approval is answered, which shows
// the runs before it covered every write.
func TestCrashBetweenWrites(t *testing.T) {
	for _, path := range []string{"soap", "facade"} {
		t.Run(path, func(t *testing.T) {
			writes := approvalWrites(t, path)
			if writes < 2 {
				t.Fatalf("an approval writes %d statements", writes)
			}
			for n := int64(1); n <= writes+1; n++ {
				t.Run(fmt.Sprintf("write-%d", n), func(t *testing.T) { crashAt(t, path, n, writes) })
			}
		})
	}
}

// approvalWrites counts the statements one approval writes once the
// metadata snapshots are stored.
func approvalWrites(t *testing.T, path string) int64 {
	c := newCostFixture(t, filepath.Join(t.TempDir(), "hub.db"))
	c.approve(t, path, "warm-up")
	before := c.probe.Counts()
	c.approve(t, path, "counted")
	return c.probe.Counts().Sub(before).Writes
}

// testClock is the router's clock: the wall clock shifted by what the
// test adds.
type testClock struct {
	mu    sync.Mutex
	shift time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.shift)
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.shift += d
	c.mu.Unlock()
}

func crashAt(t *testing.T, path string, n, writes int64) {
	ctx := context.Background()
	clock := &testClock{}
	dbPath := filepath.Join(t.TempDir(), "hub.db")
	c := newCostFixtureClock(t, dbPath, clock.now)
	c.p.byKey = map[string]string{}
	c.approve(t, path, "warm-up")

	const key = "k-crash"
	c.probe.CrashAt(n)
	first := c.try(t, path, key)
	if crashed := c.probe.Crashed(); crashed != (n <= writes) {
		t.Fatalf("crashed %v at write %d of %d", crashed, n, writes)
	}
	if n > writes && !first.answered {
		t.Fatalf("no crash, and no answer: %s", first.status)
	}
	c.st.Close()

	// The hub starts again on the file, later than any lease of the
	// crashed attempt.
	re := probe.Reopen(t, dbPath)
	clock.add(time.Minute) // a lease lasts the relay timeout (5 s) and the grace (10 s)
	c.restart(re)
	scope := saml.IdemScope(merchantID, "")
	txID := merchantID + "|" + key
	inKind := map[string]string{"soap": "message.in", "facade": "facade.request"}[path]

	if first.answered {
		e, err := re.GetIdem(ctx, scope, key)
		if err != nil || e.State != store.IdemDone {
			t.Fatalf("answered, but the idempotency entry is %v (%v)", stateOf(e), err)
		}
		recs := audit(t, re, txID)
		wantAudit(t, recs, inKind, first.reqID, first.msg)
		wantAudit(t, recs, "message.out", first.reqID, first.answer)
		return
	}
	second := c.try(t, path, key)
	if !second.answered {
		t.Fatalf("crash at write %d: the retry was not answered: %s", n, second.status)
	}
	if want := c.p.byKey[key]; second.status != want {
		t.Fatalf("the retry's outcome %q, the provider's for the key %q", second.status, want)
	}
	e, err := re.GetIdem(ctx, scope, key)
	if err != nil || e.State != store.IdemDone || e.RequestID != second.reqID {
		t.Fatalf("after the retry the idempotency entry is %v (%v)", stateOf(e), err)
	}
	recs := audit(t, re, txID)
	wantAudit(t, recs, inKind, second.reqID, second.msg)
	wantAudit(t, recs, "message.out", second.reqID, second.answer)
	outs := 0
	for _, r := range recs {
		if r.Kind == "message.out" {
			outs++
		}
	}
	if outs != 1 {
		t.Fatalf("the audit holds %d answers for the transaction, want 1", outs)
	}
}

// attempt is what one approval attempt gave the merchant.
type attempt struct {
	answered bool   // the provider's answer reached the merchant
	status   string // its status message (the approval code), or the hub's
	reqID    string
	msg      []byte // the request as signed
	answer   []byte // the provider's answer as relayed (when answered)
}

// try runs one approval through path, answered or not.
func (c *costFixture) try(t *testing.T, path, key string) attempt {
	t.Helper()
	req, msg := c.request(t, key, "15000", c.dest)
	a := attempt{reqID: req.ID, msg: msg}
	switch path {
	case "soap":
		w := c.serve(msg, c.merchantTLS)
		if w.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
		}
		out, err := saml.UnwrapSOAP(w.Body.Bytes(), saml.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		root, err := saml.ParseDocument(out, saml.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m := root.FindElement("//StatusMessage"); m != nil {
			a.status = m.Text()
		}
		if iss := root.FindElement("./Issuer"); iss != nil && iss.Text() == issuerID {
			a.answered, a.answer = true, out
		}
	case "facade":
		dest, err := c.dir.ByID(context.Background(), issuerID)
		if err != nil {
			t.Fatal(err)
		}
		res := c.rt.Relay(context.Background(), req, dest, saml.WrapSOAP(msg), router.WithAudit(facadeAudit(req, msg)))
		a.status = res.Status.Message
		if res.Outcome == router.OutcomeAnswered {
			a.answered, a.answer = true, res.Msg
		}
	}
	return a
}

func audit(t *testing.T, st store.Store, txID string) []*store.AuditRecord {
	t.Helper()
	recs, err := st.ListAudit(context.Background(), store.AuditFilter{TxID: txID})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// wantAudit fails unless recs hold a record of kind for requestID with
// exactly msg.
func wantAudit(t *testing.T, recs []*store.AuditRecord, kind, requestID string, msg []byte) {
	t.Helper()
	for _, r := range recs {
		if r.Kind == kind && r.RequestID == requestID {
			if !bytes.Equal(r.Message, msg) {
				t.Fatalf("the audit's %s of %s is not the message as relayed", kind, requestID)
			}
			return
		}
	}
	t.Fatalf("the audit holds no %s of %s (%d records)", kind, requestID, len(recs))
}

// stateOf describes an idempotency entry for a failure message.
func stateOf(e *store.IdemEntry) string {
	if e == nil {
		return "absent"
	}
	return fmt.Sprintf("%s, request %s, lease %s until %s", e.State, e.RequestID, e.LeaseOwner, e.LeaseExpires.Format(time.RFC3339Nano))
}

// TestRelayReplayedAnswer: a provider's answer whose message ID it used
// before is not its answer to this request (KECIS §7.2): the replay cache
// refuses it in the answer's commit, the sender is told
// ProviderUnavailable, nothing of the answer is audited, and the key stays
// retryable.
func TestRelayReplayedAnswer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2*time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerSameID)
	dest := f.addRecipient(t, issuerID, p.url)

	req, msg := f.request(t, "k-first", "15000", p.url)
	wantOutcome(t, "the first answer", f.relay(req, dest, msg), router.OutcomeAnswered, "")
	req, msg = f.request(t, "k-second", "15000", p.url)
	res := f.relay(req, dest, msg)
	wantOutcome(t, "an answer with a used ID", res, router.OutcomeUnavailable, saml.CodeProviderUnavailable)
	if res.Body != nil || res.Response != nil {
		t.Fatal("a replayed answer is passed on")
	}
	e, err := f.st.GetIdem(ctx, saml.IdemScope(merchantID, ""), "k-second")
	if err != nil || e.State != store.IdemInFlight || e.LeaseOwner != "" {
		t.Fatalf("the key after a replayed answer: %s (%v); want retryable", stateOf(e), err)
	}
	for _, r := range audit(t, f.st, merchantID+"|k-second") {
		if r.Kind == "message.out" {
			t.Fatal("a replayed answer is audited as passed on")
		}
	}
}

// TestSOAPReplayRefused: a message posted again is refused as a replay
// (KECIS §7.2) by the commit that would claim its key — one transaction
// with its replay record, so nothing of the second copy is written or
// forwarded — and the hub's signed Replay status is what the sender gets.
func TestSOAPReplayRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2*time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)
	req, msg := f.request(t, "k-replayed", "15000", p.url)
	if w := f.serve(msg, f.merchantTLS); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), p.answers[0]) {
		t.Fatalf("the first copy: HTTP %d", w.Code)
	}
	w := f.serve(msg, f.merchantTLS)
	if st := f.hubStatus(t, w.Body.Bytes(), req.ID); st.SubCode != saml.CodeReplay {
		t.Fatalf("the second copy: %+v, want Replay", st)
	}
	if n := len(p.received()); n != 1 {
		t.Fatalf("the provider received %d copies, want 1", n)
	}
	if got := f.counter(t, "kecis_router_refusals_total", map[string]string{"reason": "replay"}); got != 1 {
		t.Fatalf("refusals_total{replay} = %v, want 1", got)
	}
	kinds := map[string]int{}
	recs, err := f.st.ListAudit(ctx, store.AuditFilter{RequestID: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		kinds[r.Kind]++
	}
	if kinds["message.in"] != 1 || kinds["message.out"] != 1 || kinds["message.hub"] != 1 {
		t.Fatalf("audit of the request: %v; want one message.in, one message.out, one message.hub (the refusal)", kinds)
	}
}
