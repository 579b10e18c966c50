package issuer_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// fakeAAV is an authentication value checker shaped like
// connectors/cardauth.AAV (which the issuer's tests may not import):
// base64url of nonce (8) ‖ expiry (8) ‖ HMAC (16) over the binding.
type fakeAAV struct{ n int }

var aavKey = []byte("kecis-test-aav-key-0123456789abcdef")

func aavMAC(head []byte, pan ecml.PAN, amount int64, currency, merchant, order string) []byte {
	m := hmac.New(sha256.New, aavKey)
	m.Write(head)
	for _, f := range []string{pan.Reveal(), strconv.FormatInt(amount, 10), currency, merchant, order} {
		m.Write([]byte(strconv.Itoa(len(f)) + ":" + f))
	}
	return m.Sum(nil)[:16]
}

func (f *fakeAAV) mint(pan ecml.PAN, amount int64, currency, merchant, order string, expires time.Time) string {
	f.n++
	b := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(b, uint64(f.n))
	binary.BigEndian.PutUint64(b[8:], uint64(expires.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(b, aavMAC(b, pan, amount, currency, merchant, order)...))
}

func (f *fakeAAV) CheckAuthValue(aav string, pan ecml.PAN, amount int64, currency, merchant, orderID string, now time.Time) (string, time.Time, error) {
	b, err := base64.RawURLEncoding.DecodeString(aav)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], aavMAC(b[:16], pan, amount, currency, merchant, orderID)) {
		return "", time.Time{}, errors.New("mismatch")
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(b[8:16])), 0)
	if !now.Before(exp) {
		return "", exp, errors.New("expired")
	}
	return base64.RawURLEncoding.EncodeToString(b[:8]), exp, nil
}

const shop = "https://shop.example/kecis"

func TestAuthValues(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		aav := &fakeAAV{}
		e := newEnv(t, dsn, func(c *issuer.Config) { c.AuthValues = aav })
		c := e.issue(issuer.Credit, 1_000_000)
		exp := e.clock.Now().Add(10 * time.Minute)
		req := e.approveReq(c, 150_000)
		req.MerchantID, req.AuthMerchant = "PG-1", shop
		req.AuthValue = aav.mint(c.PAN, 150_000, "KRW", shop, req.OrderID, exp)
		a, err := e.iss.Approve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if a.CardholderAuth != issuer.AuthValue {
			t.Fatalf("cardholder auth = %s", a.CardholderAuth)
		}
		if again, err := e.iss.Approve(ctx, req); err != nil || !again.Replayed || again.Number != a.Number {
			t.Fatalf("idempotent repeat = %+v, %v", again, err)
		}
		// The same value through another acquirer, for the same shop and
		// order: used.
		other := req
		other.MerchantID, other.IdempotencyKey = "PG-2", e.key("approve")
		_, err = e.iss.Approve(ctx, other)
		wantCode(t, err, issuer.CodeAuthenticationFailed)
		if !strings.Contains(err.Error(), "already used") {
			t.Fatalf("reuse: %v", err)
		}
		// Voided, and the same value again on the same order (a new key):
		// still used — the value is judged before the order.
		if _, err := e.iss.Cancel(ctx, issuer.CancelRequest{MerchantID: req.MerchantID, ApprovalNumber: a.Number, IdempotencyKey: e.key("cancel")}); err != nil {
			t.Fatal(err)
		}
		same := req
		same.IdempotencyKey = e.key("approve")
		_, err = e.iss.Approve(ctx, same)
		wantCode(t, err, issuer.CodeAuthenticationFailed)
		if !strings.Contains(err.Error(), "already used") {
			t.Fatalf("reuse after a void: %v", err)
		}

		decline := func(mod func(r *issuer.ApproveRequest), want string) {
			t.Helper()
			r := e.approveReq(c, 150_000)
			r.AuthValue = aav.mint(c.PAN, 150_000, "KRW", merchant, r.OrderID, e.clock.Now().Add(10*time.Minute))
			mod(&r)
			_, err := e.iss.Approve(ctx, r)
			wantCode(t, err, issuer.CodeAuthenticationFailed)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		}
		decline(func(r *issuer.ApproveRequest) { r.Amount = krw(150_001) }, "does not match the payment")
		decline(func(r *issuer.ApproveRequest) { r.AuthMerchant = "https://other.example" }, "does not match the payment")
		decline(func(r *issuer.ApproveRequest) { r.OrderID += "-x" }, "does not match the payment")
		decline(func(r *issuer.ApproveRequest) { r.Amount.Currency = "USD" }, "does not match the payment")
		decline(func(r *issuer.ApproveRequest) {
			r.AuthValue = aav.mint(c.PAN, 150_000, "KRW", merchant, r.OrderID, e.clock.Now().Add(-time.Second))
		}, "has expired")
		r := e.approveReq(c, 150_000)
		r.AuthValue = "not base64!"
		_, err = e.iss.Approve(ctx, r)
		wantCode(t, err, issuer.CodeInvalidRequest)
		// Without AuthMerchant, the merchant is the caller.
		r = e.approveReq(c, 10_000)
		r.AuthValue = aav.mint(c.PAN, 10_000, "KRW", merchant, r.OrderID, exp)
		if _, err := e.iss.Approve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := e.available(c); got != 1_000_000-10_000 { // the 150,000 was voided
			t.Fatalf("available = %d", got)
		}

		// Concurrent approvals with one value for one order, through
		// several acquirers: one wins.
		r = e.approveReq(c, 1_000)
		r.AuthMerchant = shop
		r.AuthValue = aav.mint(c.PAN, 1_000, "KRW", shop, r.OrderID, exp)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, used := 0, 0
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rr := r
				rr.MerchantID, rr.IdempotencyKey = "PG-C"+strconv.Itoa(k), e.key("approve")
				_, err := e.iss.Approve(ctx, rr)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case issuer.CodeOf(err) == issuer.CodeAuthenticationFailed:
					used++
				default:
					t.Errorf("concurrent: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 || used != 3 {
			t.Fatalf("concurrent uses of one value: %d approved, %d refused", ok, used)
		}

		// Expired records are pruned after a grace.
		e.clock.Advance(10*time.Minute + 11*time.Minute)
		if n, err := e.iss.Prune(ctx); err != nil || n != 3 {
			t.Fatalf("Prune = %d, %v", n, err)
		}

		// An issuer that checks no values declines one.
		plain := newEnv(t, dsn)
		pc := plain.issue(issuer.Credit, 100_000)
		r = plain.approveReq(pc, 1_000)
		r.AuthValue = aav.mint(pc.PAN, 1_000, "KRW", merchant, r.OrderID, plain.clock.Now().Add(time.Minute))
		_, err = plain.iss.Approve(ctx, r)
		wantCode(t, err, issuer.CodeAuthenticationFailed)
	})
}

// virtualReq is an approval with a virtual number.
func (e *env) virtualReq(v *vcn.Issued, amount int64) issuer.ApproveRequest {
	n := e.seq.Add(1)
	return issuer.ApproveRequest{MerchantID: merchant, MerchantName: merchantName, OrderID: "VORD-" + itoa(n),
		Amount: krw(amount), Card: issuer.CardData{PAN: v.Number, ExpMonth: v.ExpMonth, ExpYear: v.ExpYear},
		IdempotencyKey: "vapprove-" + itoa(n)}
}

func (e *env) virtual(c *issuer.IssuedCard, ctl vcn.Controls) *vcn.Issued {
	e.t.Helper()
	v, err := e.iss.IssueVirtual(ctx, c.ID, ctl)
	if err != nil {
		e.t.Fatalf("IssueVirtual: %v", err)
	}
	return v
}

func TestVirtualNumbers(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		aav := &fakeAAV{}
		e := newEnv(t, dsn, func(c *issuer.Config) {
			c.AuthValues = aav
			c.Virtual.PoolSize = 50
		})
		if got := e.iss.VirtualBINs()[ecml.VirtualCardCredit]; got != "404143" {
			t.Fatalf("virtual credit BIN = %q", got)
		}
		c := e.issue(issuer.Credit, 100_000)
		v := e.virtual(c, vcn.DefaultControls(merchant))
		if v.Number.BIN() != "404143" || v.Number.Reveal()[6:9] != "326" || !ecml.LuhnValid(v.Number.Reveal()) {
			t.Fatalf("virtual number %s: want 404143, day 326 (22 November), Luhn-valid", v.Number)
		}
		a, err := e.iss.Approve(ctx, e.virtualReq(v, 10_000))
		if err != nil {
			t.Fatal(err)
		}
		if a.CardID != c.ID || a.CardLast4 != c.Last4 || a.VirtualCard != v.Number.Masked() {
			t.Fatalf("approval: card %s last4 %s virtual %q", a.CardID, a.CardLast4, a.VirtualCard)
		}
		if got := e.available(c); got != 90_000 {
			t.Fatalf("available = %d", got)
		}
		if got := e.inquire(a.Number); got.VirtualCard != v.Number.Masked() {
			t.Fatalf("inquire: virtual %q", got.VirtualCard)
		}
		declined := func(r issuer.ApproveRequest, code issuer.Code, msg string) {
			t.Helper()
			_, err := e.iss.Approve(ctx, r)
			wantCode(t, err, code)
			if !strings.Contains(err.Error(), msg) {
				t.Fatalf("error %v, want %q", err, msg)
			}
		}
		declined(e.virtualReq(v, 10_000), issuer.CodeDeclined, "already used")

		// Merchant lock: the shop an acquirer pays for is the merchant.
		locked := e.virtual(c, vcn.DefaultControls(shop))
		declined(e.virtualReq(locked, 1_000), issuer.CodeDeclined, "locked to another merchant")
		r := e.virtualReq(locked, 1_000)
		r.MerchantID, r.AuthMerchant = "PG-1", shop
		if _, err := e.iss.Approve(ctx, r); err != nil {
			t.Fatalf("approval for the locked merchant via its acquirer: %v", err)
		}

		// Cap, multi-use.
		capped := e.virtual(c, vcn.Controls{MaxAmount: 5_000, Currency: "KRW"})
		declined(e.virtualReq(capped, 6_000), issuer.CodeLimitExceeded, "cap")
		for range 2 {
			if _, err := e.iss.Approve(ctx, e.virtualReq(capped, 5_000)); err != nil {
				t.Fatalf("multi-use under the cap: %v", err)
			}
		}

		// Wrong expiry, unknown number, then expiry.
		short := e.virtual(c, vcn.Controls{NotOnOrAfter: e.clock.Now().Add(10 * time.Minute)})
		r = e.virtualReq(short, 1_000)
		r.Card.ExpYear++
		declined(r, issuer.CodeInvalidCard, "expiry")
		body := "404143326999999"
		d, _ := ecml.LuhnCheckDigit(body)
		unknown := &vcn.Issued{Number: ecml.PAN(body + string(d)), ExpMonth: short.ExpMonth, ExpYear: short.ExpYear}
		declined(e.virtualReq(unknown, 1_000), issuer.CodeInvalidCard, "unknown card number")
		e.clock.Advance(11 * time.Minute)
		declined(e.virtualReq(short, 1_000), issuer.CodeExpired, "expired")

		// The AAV is bound to the number as sent: the virtual one.
		va := e.virtual(c, vcn.DefaultControls(merchant))
		r = e.virtualReq(va, 2_000)
		r.AuthValue = aav.mint(c.PAN, 2_000, "KRW", merchant, r.OrderID, e.clock.Now().Add(time.Minute))
		declined(r, issuer.CodeAuthenticationFailed, "does not match")
		r = e.virtualReq(va, 2_000)
		r.AuthValue = aav.mint(va.Number, 2_000, "KRW", merchant, r.OrderID, e.clock.Now().Add(time.Minute))
		if _, err := e.iss.Approve(ctx, r); err != nil {
			t.Fatalf("approval with the virtual number's AAV: %v", err)
		}

		// A blocked card issues none; its numbers pay nothing.
		vb := e.virtual(c, vcn.Controls{})
		if _, err := e.iss.SetCardStatus(ctx, c.ID, issuer.CardBlocked); err != nil {
			t.Fatal(err)
		}
		_, err = e.iss.IssueVirtual(ctx, c.ID, vcn.Controls{})
		wantCode(t, err, issuer.CodeDeclined)
		declined(e.virtualReq(vb, 1_000), issuer.CodeDeclined, "blocked")

		// A card reported lost loses its virtual numbers for good.
		lost := e.issue(issuer.Credit, 10_000)
		lv := e.virtual(lost, vcn.Controls{})
		if _, err := e.iss.SetCardStatus(ctx, lost.ID, issuer.CardLost); err != nil {
			t.Fatal(err)
		}
		if _, err := e.iss.SetCardStatus(ctx, lost.ID, issuer.CardActive); err != nil {
			t.Fatal(err)
		}
		declined(e.virtualReq(lv, 1_000), issuer.CodeDeclined, "revoked")

		// Never a full number in the ledger.
		for table, rows := range testutil.DumpDB(t, e.iss.DB().DB) {
			for k, row := range rows {
				for col, val := range row {
					if s, ok := val.(string); ok && ecml.ContainsPAN(s) {
						t.Errorf("%s[%d].%s holds a card number", table, k, col)
					}
				}
			}
		}
	})
}
