package amountauth

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

func TestHappyPathVoidsAndApprovesWithResult(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": sqltest.TestSQLiteDSN, "postgres": sqltest.TestPostgresDSN} {
		t.Run(name, func(t *testing.T) {
			r := newRigOn(t, dsn(t), nil)
			s := r.start(t, "ORD-1", 150000, testPAN)
			if s.State != AwaitingAmount || s.Ceiling != 50000 {
				t.Fatalf("after start: state %s ceiling %d", s.State, s.Ceiling)
			}
			v := r.issuer.only()
			if !v.verification || v.amount.Minor < 100 || v.amount.Minor >= 50000 || v.merchant != pgID || v.order != verifyOrder(s.ID) {
				t.Fatalf("verification approval %+v", v)
			}
			got := r.confirm(t, s, r.challenge(t, s))
			if got.State != Approved || !got.VerifyDone || got.PurchaseApproval == "" {
				t.Fatalf("after confirm: %+v", got)
			}
			if v.state != "cancelled" {
				t.Fatalf("verification approval %s, want cancelled", v.state)
			}
			if r.acq.count() != 1 {
				t.Fatalf("%d purchases approved", r.acq.count())
			}
			p := r.acq.approvals[keyPurchase(s.ID)]
			if p == nil || p.Amount.Minor != 150000 || p.Merchant != merchantID || p.OrderID != "ORD-1" || p.Result == nil {
				t.Fatalf("purchase %+v", p)
			}
			res, _, err := saml.VerifyAuthenticationResult(context.Background(), p.Result, keys{r.signer.Cert}, r.clock.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != MethodURI || res.Amount != "150000" || res.Currency != "KRW" || res.Merchant != merchantID ||
				res.OrderID != "ORD-1" || res.CardRef != "411111******1111" || !res.AuthnInstant.Equal(at0) {
				t.Fatalf("result %+v", res)
			}
			// The stored session answers the same, again.
			again, err := r.e.Lookup(context.Background(), merchantID, s.ID)
			if err != nil || again.State != Approved || !bytes.Equal(again.Result, got.Result) {
				t.Fatalf("Lookup = %+v, %v", again, err)
			}
		})
	}
}

func TestWrongAmountsUntilTheLimit(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-2", 30000, testPAN)
	right := r.challenge(t, s)
	wrong := ecml.Money{Minor: right.Amount.Minor + 1, Currency: "KRW"}
	s = r.confirm(t, s, Typed{Amount: &wrong})
	if s.State != AwaitingAmount || s.Attempts != 1 {
		t.Fatalf("after one wrong entry: %s, %d attempts", s.State, s.Attempts)
	}
	if st := s.Status(ServiceConfirm); st.SubCode != saml.CodeDeclined || !strings.Contains(st.Message, "2 of 3") {
		t.Fatalf("status %+v", st)
	}
	// Another currency, or a code for an amount session, is a wrong entry too.
	usd := ecml.Money{Minor: right.Amount.Minor, Currency: "USD"}
	s = r.confirm(t, s, Typed{Amount: &usd})
	s = r.confirm(t, s, Typed{Code: "123456"})
	if s.State != Failed || !s.VerifyDone {
		t.Fatalf("after three wrong entries: %+v", s)
	}
	if st := s.Status(ServiceConfirm); st.SubCode != saml.CodeAuthenticationRequired {
		t.Fatalf("status %+v", st)
	}
	if open := r.issuer.open(); len(open) != 0 {
		t.Fatalf("verification approvals still open: %v", open)
	}
	// The right amount after the limit changes nothing and counts nothing.
	s = r.confirm(t, s, right)
	if s.State != Failed || s.Attempts != 3 || r.acq.count() != 0 {
		t.Fatalf("after the limit: %+v, %d purchases", s, r.acq.count())
	}
}

func TestTimeoutExpiresAndVoids(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Options.Timeout = time.Minute })
	s := r.start(t, "ORD-3", 30000, testPAN)
	right := r.challenge(t, s)
	r.clock.Advance(time.Minute)
	s = r.confirm(t, s, right)
	if s.State != Expired || !s.VerifyDone || s.Status(ServiceConfirm).SubCode != saml.CodeExpired {
		t.Fatalf("after the timeout: %+v", s)
	}
	if r.acq.count() != 0 || len(r.issuer.open()) != 0 {
		t.Fatal("a purchase was approved or the verification approval stands")
	}
}

func TestRecoverExpiresAbandonedSessions(t *testing.T) {
	r := newRig(t, nil)
	for i := range 3 {
		r.start(t, "ORD-A"+strconv.Itoa(i), 30000, testPAN)
	}
	if n, err := r.e.Recover(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("Recover before the timeout = %d, %v", n, err)
	}
	if len(r.issuer.open()) != 3 {
		t.Fatal("Recover voided sessions still running")
	}
	r.clock.Advance(DefaultOptions.Timeout)
	if n, err := r.e.Recover(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	if open := r.issuer.open(); len(open) != 0 {
		t.Fatalf("open after Recover: %v", open)
	}
	if left, err := r.store.Open(context.Background(), 100); err != nil || len(left) != 0 {
		t.Fatalf("sessions still owing work: %d, %v", len(left), err)
	}
}

func TestBelowMinimumApprovesAtOnce(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-4", 10099, testPAN) // default minimum: 100 + 10,000
	if s.State != Approved || len(r.issuer.ledger) != 0 || r.acq.count() != 1 {
		t.Fatalf("%+v, %d at the issuer", s, len(r.issuer.ledger))
	}
	if p := r.acq.approvals[keyPurchase(s.ID)]; p.Result != nil {
		t.Fatal("a purchase without AA carried an authentication result")
	}
	s = r.start(t, "ORD-5", 10100, testPAN)
	if s.State != AwaitingAmount {
		t.Fatalf("at the minimum: %s", s.State)
	}
}

func TestDefaultMinimumKeepsTenThousandChallenges(t *testing.T) {
	o := Options{LowestChallenge: 500, HighestChallenge: 1_000_000}.withDefaults()
	if got := min(o.MinPurchase, o.HighestChallenge) - o.LowestChallenge; got != minChallenges {
		t.Fatalf("possible challenges at the minimum purchase: %d", got)
	}
}

func TestChallengeIsUniformOverItsRange(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Rand = zeroReader{} })
	lo, _ := r.e.draw(r.e.cfg.Options, 30000)
	if lo != "100" {
		t.Fatalf("lowest draw %s", lo)
	}
	r = newRig(t, nil)
	seen := map[string]bool{}
	for range 2000 {
		v, err := r.e.draw(r.e.cfg.Options, 10200) // [100, 10200): 10,100 values
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(v)
		if n < 100 || n >= 10200 {
			t.Fatalf("draw %d out of range", n)
		}
		seen[v] = true
	}
	if len(seen) < 1700 { // 2,000 draws from 10,100 values: ~1,820 distinct expected
		t.Fatalf("only %d distinct draws of 2,000", len(seen))
	}
}

func TestProfileSkipsForTheSameUserAndCard(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Options.ProfilePeriod = 24 * time.Hour })
	req := r.request("ORD-6", 30000, testPAN)
	req.UserID = "user-7"
	s, err := r.e.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r.confirm(t, s, r.challenge(t, s))
	verifiedAt := r.clock.Now()
	r.clock.Advance(time.Hour)

	req = r.request("ORD-7", 40000, testPAN)
	req.UserID = "user-7"
	s, err = r.e.Start(context.Background(), req)
	if err != nil || s.State != Approved {
		t.Fatalf("a profiled user: %+v, %v", s, err)
	}
	p := r.acq.approvals[keyPurchase(s.ID)]
	res, _, err := saml.VerifyAuthenticationResult(context.Background(), p.Result, keys{r.signer.Cert}, r.clock.Now(), time.Minute)
	if err != nil || !res.AuthnInstant.Equal(verifiedAt) || res.OrderID != "ORD-7" {
		t.Fatalf("profiled result %+v, %v", res, err)
	}
	// Another card, another user, or after the period: AA again.
	for i, c := range []struct{ user, pan string }{{"user-7", otherPAN}, {"user-8", testPAN}} {
		req = r.request("ORD-8"+strconv.Itoa(i), 40000, c.pan)
		req.UserID = c.user
		if s, _ = r.e.Start(context.Background(), req); s.State != AwaitingAmount {
			t.Fatalf("%+v skipped AA", c)
		}
	}
	r.clock.Advance(24 * time.Hour)
	req = r.request("ORD-9", 40000, testPAN)
	req.UserID = "user-7"
	if s, _ = r.e.Start(context.Background(), req); s.State != AwaitingAmount {
		t.Fatal("AA skipped after the profile period")
	}
}

func TestDescriptorVariant(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Options.Method = ByDescriptor })
	s := r.start(t, "ORD-10", 30000, testPAN)
	v := r.issuer.only()
	if v.amount.Minor != 100 || len(v.code) != 6 {
		t.Fatalf("descriptor approval: amount %d code length %d", v.amount.Minor, len(v.code))
	}
	amount := v.amount
	if s = r.confirm(t, s, Typed{Amount: &amount}); s.State != AwaitingAmount || s.Attempts != 1 {
		t.Fatalf("the amount was accepted for a descriptor session: %+v", s)
	}
	if s = r.confirm(t, s, Typed{Code: ecml.Secret(v.code)}); s.State != Approved {
		t.Fatalf("after the code: %+v", s)
	}
}

func TestVoidRetriedWithTheSameKeyAndResolvedByInquire(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-11", 30000, testPAN)
	right := r.challenge(t, s)
	r.issuer.fail = func(op string) string {
		if op == "cancel" {
			return "after" // the void happens; its answer is lost
		}
		return ""
	}
	r.issuer.mu.Lock()
	r.issuer.fail = func(op string) string {
		if op == "cancel" || op == "inquire" {
			return "after"
		}
		return ""
	}
	r.issuer.mu.Unlock()
	s = r.confirm(t, s, right)
	if s.State != Processing || s.VerifyDone || r.acq.count() != 0 {
		t.Fatalf("with the void unknown: %+v", s)
	}
	if st := s.Status(ServiceConfirm); st.SubCode != saml.CodePending {
		t.Fatalf("status %+v", st)
	}
	r.issuer.mu.Lock()
	r.issuer.fail = nil
	r.issuer.mu.Unlock()
	r.clock.Advance(DefaultGrace + time.Minute)
	if n, err := r.e.Recover(context.Background(), 10); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	s, _ = r.e.Lookup(context.Background(), merchantID, s.ID)
	if s.State != Approved || r.issuer.calls["cancel-applied"] != 1 || r.acq.count() != 1 {
		t.Fatalf("after Recover: %+v, cancels applied %d", s, r.issuer.calls["cancel-applied"])
	}
}

func TestSettledVerificationIsRefundedWhole(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-12", 30000, testPAN)
	r.issuer.settled = true
	r.clock.Advance(time.Hour)
	if _, err := r.e.Recover(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	s, _ = r.e.Lookup(context.Background(), merchantID, s.ID)
	if s.State != Expired || !s.VerifyDone || r.issuer.calls["refund-applied"] != 1 || r.issuer.only().state != "refunded" {
		t.Fatalf("%+v, refunds %d", s, r.issuer.calls["refund-applied"])
	}
}

func TestStartOutcomeUnknown(t *testing.T) {
	t.Run("approved, answer lost: the session goes on", func(t *testing.T) {
		r := newRig(t, nil)
		r.issuer.fail = func(op string) string {
			if op == "verify" {
				return "after"
			}
			return ""
		}
		s := r.start(t, "ORD-13", 30000, testPAN)
		if s.State != Starting || s.Status(ServiceStart).SubCode != saml.CodePending {
			t.Fatalf("%+v", s)
		}
		if _, err := r.e.Recover(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		s, _ = r.e.Lookup(context.Background(), merchantID, s.ID)
		if s.State != AwaitingAmount || s.VerifyApproval == "" {
			t.Fatalf("after Recover: %+v", s)
		}
		if s = r.confirm(t, s, r.challenge(t, s)); s.State != Approved {
			t.Fatalf("after the match: %+v", s)
		}
	})
	t.Run("never made: expired after the grace", func(t *testing.T) {
		r := newRig(t, nil)
		r.issuer.fail = func(op string) string {
			if op == "verify" {
				return "before"
			}
			return ""
		}
		s := r.start(t, "ORD-14", 30000, testPAN)
		if _, err := r.e.Recover(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		if s, _ = r.e.Lookup(context.Background(), merchantID, s.ID); s.State != Starting {
			t.Fatalf("ended within the grace: %+v", s)
		}
		r.clock.Advance(DefaultGrace + time.Minute)
		if n, err := r.e.Recover(context.Background(), 10); err != nil || n != 0 {
			t.Fatalf("Recover = %d, %v", n, err)
		}
		if s, _ = r.e.Lookup(context.Background(), merchantID, s.ID); s.State != Expired || !s.VerifyDone {
			t.Fatalf("after the grace: %+v", s)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := newRig(t, nil)
		r.issuer.declined = true
		s := r.start(t, "ORD-15", 30000, testPAN)
		if s.State != Refused || !s.VerifyDone || s.Status(ServiceStart).SubCode != saml.CodeInsufficientFunds {
			t.Fatalf("%+v", s)
		}
	})
}

func TestPurchaseOutcomeUnknownAskedAgainWithTheSameKey(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-16", 30000, testPAN)
	r.acq.fail = "after"
	s = r.confirm(t, s, r.challenge(t, s))
	if s.State != Processing || !s.VerifyDone {
		t.Fatalf("%+v", s)
	}
	r.acq.fail = ""
	r.clock.Advance(DefaultGrace + time.Minute)
	if _, err := r.e.Recover(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	s, _ = r.e.Lookup(context.Background(), merchantID, s.ID)
	if s.State != Approved || r.acq.count() != 1 || r.acq.calls != 2 {
		t.Fatalf("%+v: %d purchases in %d calls", s, r.acq.count(), r.acq.calls)
	}
}

func TestPurchaseRefusedEndsDeclined(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-17", 30000, testPAN)
	r.acq.fail = "InsufficientFunds"
	s = r.confirm(t, s, r.challenge(t, s))
	if s.State != Declined || s.Status(ServiceConfirm).SubCode != saml.CodeInsufficientFunds || len(r.issuer.open()) != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestOrdersAndSessionsAreTheMerchants(t *testing.T) {
	r := newRig(t, nil)
	s := r.start(t, "ORD-18", 30000, testPAN)
	again := r.start(t, "ORD-18", 30000, testPAN)
	if again.ID != s.ID || len(r.issuer.ledger) != 1 {
		t.Fatal("a repeated start made a second session")
	}
	if _, err := r.e.Start(context.Background(), r.request("ORD-18", 30000, otherPAN)); !isStatus(err, saml.CodeDuplicate) {
		t.Fatalf("the order with another card: %v", err)
	}
	if _, err := r.e.Lookup(context.Background(), otherID, s.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another merchant's lookup: %v", err)
	}
	if _, err := r.e.Confirm(context.Background(), otherID, s.ID, r.challenge(t, s)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another merchant's confirm: %v", err)
	}
	other := r.request("ORD-18", 30000, testPAN)
	other.Merchant = otherID
	if o, err := r.e.Start(context.Background(), other); err != nil || o.ID == s.ID {
		t.Fatalf("another merchant's same order number: %v", err)
	}
}

func isStatus(err error, code string) bool {
	st, ok := connectors.AsStatus(err)
	return ok && st.SubCode == code
}

func TestRateLimitPerCard(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Limits = Limits{CardPerHour: 1, CardBurst: 2} })
	r.start(t, "ORD-19", 30000, testPAN)
	r.start(t, "ORD-20", 30000, testPAN)
	if _, err := r.e.Start(context.Background(), r.request("ORD-21", 30000, testPAN)); !isStatus(err, saml.CodeLimitExceeded) {
		t.Fatalf("third session of a card: %v", err)
	}
	r.start(t, "ORD-22", 30000, otherPAN)
	r.clock.Advance(time.Hour)
	r.start(t, "ORD-23", 30000, testPAN)
}

func TestNothingSecretAtRest(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Options.ProfilePeriod = time.Hour })
	req := r.request("ORD-24", 30000, testPAN)
	req.UserID = "user-secret-42"
	s, err := r.e.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	challenge := strconv.FormatInt(r.challenge(t, s).Amount.Minor, 10)
	r.confirm(t, s, r.challenge(t, s))
	tables := []string{"amountauth_session", "amountauth_profile"}
	testutil.AssertNoSecretsInRows(t, r.db.DB, tables, testPAN, "user-secret-42")
	for table, rows := range testutil.DumpDB(t, r.db.DB, tables...) {
		for _, row := range rows {
			for col, v := range row {
				if s, ok := testutil.Text(v); ok && col != "amount" && col != "id" && s == challenge {
					t.Errorf("%s.%s holds the challenge", table, col)
				}
			}
		}
	}
}

func TestCardFailuresPerDayBoundGuessing(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Limits = Limits{CardPerHour: 100, CardBurst: 100, CardFailuresPerDay: 2} })
	wrong := ecml.Money{Minor: 1, Currency: "KRW"} // below the lowest challenge: never right
	for i := range 2 {
		s := r.start(t, "ORD-F"+strconv.Itoa(i), 30000, testPAN)
		for range 3 {
			s = r.confirm(t, s, Typed{Amount: &wrong})
		}
		if s.State != Failed {
			t.Fatalf("session %d: %s", i, s.State)
		}
	}
	if _, err := r.e.Start(context.Background(), r.request("ORD-F2", 30000, testPAN)); !isStatus(err, saml.CodeLimitExceeded) {
		t.Fatalf("a third session after two failures: %v", err)
	}
	// Another card, and a purchase below the minimum (no AA), go on.
	r.start(t, "ORD-F3", 30000, otherPAN)
	if s := r.start(t, "ORD-F4", 5000, testPAN); s.State != Approved {
		t.Fatalf("below the minimum: %s", s.State)
	}
	r.clock.Advance(24 * time.Hour)
	r.start(t, "ORD-F5", 30000, testPAN)
}

func TestConcurrentEntriesAreEachCounted(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Options.Attempts = 5 })
	s := r.start(t, "ORD-C1", 30000, testPAN)
	wrong := ecml.Money{Minor: 1, Currency: "KRW"}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := r.e.Confirm(context.Background(), merchantID, s.ID, Typed{Amount: &wrong}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, _ = r.e.Lookup(context.Background(), merchantID, s.ID)
	if s.Attempts != 4 || s.State != AwaitingAmount {
		t.Fatalf("after 4 concurrent wrong entries: %d attempts, %s", s.Attempts, s.State)
	}
}

func TestWrongEntriesOfExpiredSessionsCountToo(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Limits = Limits{CardPerHour: 100, CardBurst: 100, CardFailuresPerDay: 1}
		c.Options.Timeout = time.Minute
	})
	wrong := ecml.Money{Minor: 1, Currency: "KRW"}
	// attempts−1 wrong entries, then let it expire: 2 + 2 ≥ 1 × 3.
	for i := range 2 {
		s := r.start(t, "ORD-X"+strconv.Itoa(i), 30000, testPAN)
		for range 2 {
			s = r.confirm(t, s, Typed{Amount: &wrong})
		}
		r.clock.Advance(time.Minute)
		if s, _ = r.e.Lookup(context.Background(), merchantID, s.ID); s.State != Expired {
			t.Fatalf("session %d: %s", i, s.State)
		}
	}
	if _, err := r.e.Start(context.Background(), r.request("ORD-X2", 30000, testPAN)); !isStatus(err, saml.CodeLimitExceeded) {
		t.Fatalf("after 4 wrong entries in expired sessions: %v", err)
	}
}

func TestTheConfiguredNameIsTheText(t *testing.T) {
	r := newRig(t, nil)
	req := r.request("ORD-N1", 30000, testPAN)
	req.SubMerchant = "Another Shop"
	s, err := r.e.Start(context.Background(), req)
	if err != nil || s.SubMerchant != "KECIS 상점" {
		t.Fatalf("the text names %q (%v)", s.SubMerchant, err)
	}
}
