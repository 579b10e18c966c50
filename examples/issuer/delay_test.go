package issuer_test

import (
	"context"
	"testing"
	"time"

	"github.com/kecis/kecis/examples/issuer"
)

// TestResponseDelay: a card's response delay (0 to MaxResponseDelay) makes
// the issuer decide an approval on it only after the delay, and decide it
// even when the caller gave up meanwhile — so an inquiry later finds it
// approved, as a slow host's approval is; other cards answer at once; an
// unknown card or a delay out of range is refused.
func TestResponseDelay(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		slow, fast := e.issue(issuer.Credit, 100_000), e.issue(issuer.Credit, 100_000)
		const delay = 300 * time.Millisecond
		c, err := e.iss.SetCardResponseDelay(ctx, slow.ID, delay)
		if err != nil || c.ResponseDelay != delay {
			t.Fatalf("set delay: %v %+v", err, c)
		}
		if _, err := e.iss.SetCardResponseDelay(ctx, slow.ID, issuer.MaxResponseDelay+time.Second); err == nil {
			t.Fatal("a delay above the maximum was accepted")
		}
		if _, err := e.iss.SetCardResponseDelay(ctx, "card_nope", time.Second); err == nil {
			t.Fatal("an unknown card was accepted")
		}

		start := time.Now()
		e.approve(fast, 1000)
		if d := time.Since(start); d >= delay {
			t.Fatalf("a card without delay took %s", d)
		}
		// The caller gives up before the host decides; the host decides anyway.
		cctx, cancel := context.WithTimeout(ctx, delay/3)
		defer cancel()
		req := e.approveReq(slow, 2000)
		start = time.Now()
		a, err := e.iss.Approve(cctx, req)
		if err != nil || a.Status != issuer.StatusApproved {
			t.Fatalf("slow approval: %v %+v", err, a)
		}
		if d := time.Since(start); d < delay {
			t.Fatalf("the slow card was decided after %s, before its delay %s", d, delay)
		}
		if got := e.inquire(a.Number); got.Status != issuer.StatusApproved {
			t.Fatalf("inquiry: %+v", got)
		}
		// Its repeat is the slow host's answer too: after the delay.
		start = time.Now()
		if again, err := e.iss.Approve(ctx, req); err != nil || !again.Replayed || again.Number != a.Number {
			t.Fatalf("repeat: %v %+v", err, again)
		}
		if d := time.Since(start); d < delay {
			t.Fatalf("the repeat on the slow card was answered after %s, before its delay %s", d, delay)
		}
		if c, _ := e.iss.SetCardResponseDelay(ctx, slow.ID, 0); c.ResponseDelay != 0 {
			t.Fatalf("delay not cleared: %+v", c)
		}
	})
}
