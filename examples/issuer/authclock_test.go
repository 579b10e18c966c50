package issuer_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// skew is how far the business clock (Config.Now) runs ahead of the
// authentication clock (Config.AuthNow) in TestAuthClock: the demo's
// --settle skips to the next cut-off, days after a few settlements.
const skew = 40 * 24 * time.Hour

// TestAuthClock: with the business clock far ahead of the authentication
// clock, everything that must follow real time follows AuthNow — a TOTP
// code of the AuthNow step, a client certificate and the CRL dated by it,
// an AAV minted on it (and expired on it), a virtual number's day and
// expiry.
func TestAuthClock(t *testing.T) {
	auth := testutil.NewClock(testutil.FixedNow)
	aav := &fakeAAV{}
	e := newEnv(t, sqltest.TestSQLiteDSN, newCA(t), func(c *issuer.Config) {
		c.AuthNow = auth.Now
		c.AuthValues = aav
		c.Virtual.PoolSize = 50
	})
	e.clock.Advance(skew)
	c := e.issue(issuer.Credit, 1_000_000, withAuth)

	t.Run("totp", func(t *testing.T) {
		// The business clock's code is 40 days off: refused.
		wantCheck(t, e.checkTOTP(c, code(t, c, e.clock.Now())), issuer.AuthCheck{Left: 4})
		wantCheck(t, e.checkTOTP(c, code(t, c, auth.Now())), issuer.AuthCheck{OK: true})
		// The step is recorded on the authentication clock: its code is
		// good once, the next step's is good.
		wantCheck(t, e.checkTOTP(c, code(t, c, auth.Now())), issuer.AuthCheck{Left: 4})
		auth.Advance(30 * time.Second)
		wantCheck(t, e.checkTOTP(c, code(t, c, auth.Now())), issuer.AuthCheck{OK: true})
		if _, err := e.iss.UnlockAuth(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("certificate", func(t *testing.T) {
		cc, err := e.iss.IssueClientCertificate(ctx, c.ID, "Hong Gildong")
		if err != nil {
			t.Fatal(err)
		}
		now := auth.Now()
		if nb := cc.Certificate.NotBefore; nb.After(now) || now.Sub(nb) > 2*time.Minute {
			t.Fatalf("NotBefore %v, authentication clock %v", nb, now)
		}
		if na := cc.Certificate.NotAfter; !na.Equal(now.Add(365 * 24 * time.Hour).Truncate(time.Second)) {
			t.Fatalf("NotAfter %v, want a year after %v", na, now)
		}
		roots := x509.NewCertPool()
		roots.AddCert(e.iss.CACertificate())
		if _, err := cc.Certificate.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("verify at the authentication clock's time: %v", err)
		}
		if err := e.iss.RevokeCertificate(ctx, cc.Serial); err != nil {
			t.Fatal(err)
		}
		crl, err := e.iss.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !crl.ThisUpdate.Equal(now.Truncate(time.Second)) || !crl.NextUpdate.Equal(crl.ThisUpdate.Add(10*time.Minute)) {
			t.Fatalf("CRL ThisUpdate %v NextUpdate %v, authentication clock %v", crl.ThisUpdate, crl.NextUpdate, now)
		}
		if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].RevocationTime.After(now) {
			t.Fatalf("CRL entries %+v", crl.RevokedCertificateEntries)
		}
	})

	t.Run("aav", func(t *testing.T) {
		req := e.approveReq(c, 150_000)
		req.AuthValue = aav.mint(c.PAN, 150_000, "KRW", merchant, req.OrderID, auth.Now().Add(5*time.Minute))
		a, err := e.iss.Approve(ctx, req)
		if err != nil {
			t.Fatalf("an AAV minted on the authentication clock: %v", err)
		}
		if a.CardholderAuth != issuer.AuthValue || !a.ApprovedAt.Equal(e.clock.Now()) {
			t.Fatalf("approval %+v: want the AAV, stamped by the business clock %v", a, e.clock.Now())
		}
		// Expired on the authentication clock, though the business clock
		// is far past it anyway.
		late := e.approveReq(c, 150_000)
		late.AuthValue = aav.mint(c.PAN, 150_000, "KRW", merchant, late.OrderID, auth.Now().Add(-time.Second))
		_, err = e.iss.Approve(ctx, late)
		wantCode(t, err, issuer.CodeAuthenticationFailed)
	})

	t.Run("virtual", func(t *testing.T) {
		v := e.virtual(c, vcn.DefaultControls(merchant))
		day := auth.Now().In(issuer.KST).YearDay()
		if p, err := vcn.Parse(v.Number); err != nil || p.Day != day {
			t.Fatalf("virtual number's day %+v, %v: want %d (the authentication clock's)", p, err, day)
		}
		if exp := v.Controls.NotOnOrAfter; !exp.After(auth.Now()) || exp.After(auth.Now().Add(vcn.MaxLifetime)) {
			t.Fatalf("NotOnOrAfter %v, authentication clock %v", exp, auth.Now())
		}
		if _, err := e.iss.Approve(ctx, e.virtualReq(v, 10_000)); err != nil {
			t.Fatalf("approval with a virtual number issued on the authentication clock: %v", err)
		}
		w := e.virtual(c, vcn.DefaultControls(merchant))
		auth.Advance(vcn.DefaultLifetime)
		_, err := e.iss.Approve(ctx, e.virtualReq(w, 10_000))
		wantCode(t, err, issuer.CodeExpired)
	})
}
