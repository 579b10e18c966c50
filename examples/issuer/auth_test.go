package issuer_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// testAuthPassword is a cardholder's authentication password (안심클릭).
const testAuthPassword = "Ansim-7Q2x"

func withAuth(r *issuer.IssueCardRequest) {
	r.AuthPassword = testAuthPassword
	r.EnrolTOTP = true
}

func (e *env) checkPW(c *issuer.IssuedCard, pw string) *issuer.AuthCheck {
	e.t.Helper()
	r, err := e.iss.CheckAuthPassword(ctx, c.ID, ecml.Secret(pw))
	if err != nil {
		e.t.Fatalf("CheckAuthPassword: %v", err)
	}
	return r
}

func (e *env) checkTOTP(c *issuer.IssuedCard, code string) *issuer.AuthCheck {
	e.t.Helper()
	r, err := e.iss.CheckTOTP(ctx, c.ID, ecml.Secret(code))
	if err != nil {
		e.t.Fatalf("CheckTOTP: %v", err)
	}
	return r
}

// code is the card's TOTP code at t.
func code(t testing.TB, c *issuer.IssuedCard, at time.Time) string {
	t.Helper()
	s, err := totp.GenerateCode(c.TOTPEnrolment.Seed.Reveal(), at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCheck(t testing.TB, got *issuer.AuthCheck, want issuer.AuthCheck) {
	t.Helper()
	if *got != want {
		t.Fatalf("check = %+v, want %+v", *got, want)
	}
}

func TestAuthPassword(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000, withAuth)
		if !c.AuthPassword || !c.TOTP || c.AuthFailures != 0 || c.AuthLocked {
			t.Fatalf("issued card: %+v", c.Card)
		}
		wantCheck(t, e.checkPW(c, testAuthPassword), issuer.AuthCheck{OK: true})
		wantCheck(t, e.checkPW(c, "wrong-password"), issuer.AuthCheck{Left: 4})
		wantCheck(t, e.checkPW(c, "wrong-password"), issuer.AuthCheck{Left: 3})
		wantCheck(t, e.checkPW(c, testAuthPassword), issuer.AuthCheck{OK: true}) // clears the password's failures
		for left := 4; left >= 0; left-- {
			wantCheck(t, e.checkPW(c, "wrong-"+itoa(int64(left))), issuer.AuthCheck{Left: left})
		}
		wantCheck(t, e.checkPW(c, testAuthPassword), issuer.AuthCheck{Locked: true})
		if got, _ := e.iss.Card(ctx, c.ID); !got.AuthLocked || got.AuthFailures != 5 {
			t.Fatalf("locked card: %+v", got)
		}
		if got, err := e.iss.UnlockAuth(ctx, c.ID); err != nil || got.AuthLocked || got.AuthFailures != 0 {
			t.Fatalf("UnlockAuth = %+v, %v", got, err)
		}
		wantCheck(t, e.checkPW(c, testAuthPassword), issuer.AuthCheck{OK: true})

		plain := e.issue(issuer.Check, 10_000)
		_, err := e.iss.CheckAuthPassword(ctx, plain.ID, testAuthPassword)
		wantCode(t, err, issuer.CodeNotEnrolled)
		_, err = e.iss.CheckAuthPassword(ctx, "card_none", testAuthPassword)
		wantCode(t, err, issuer.CodeNotFound)
		if _, err := e.iss.SetCardStatus(ctx, c.ID, issuer.CardLost); err != nil {
			t.Fatal(err)
		}
		_, err = e.iss.CheckAuthPassword(ctx, c.ID, testAuthPassword)
		wantCode(t, err, issuer.CodeDeclined)
		_, err = e.iss.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동", HolderPhone: testPhone,
			BirthDate: testBirth, Password: testPassword, AuthPassword: "short", IdempotencyKey: e.key("card")})
		wantCode(t, err, issuer.CodeInvalidRequest)
	})
}

func TestTOTP(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000, withAuth)
		seed, uri := c.TOTPEnrolment.Seed.Reveal(), c.TOTPEnrolment.URI.Reveal()
		if len(seed) != 32 || !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "period=30") ||
			!strings.Contains(uri, "digits=6") || !strings.Contains(uri, "secret="+seed) {
			t.Fatalf("enrolment: seed %d chars, uri %s", len(seed), c.TOTPEnrolment.URI.Masked())
		}
		if s := fmt.Sprintf("%v %+v", c, c.TOTPEnrolment); strings.Contains(s, seed) {
			t.Fatalf("an issued card prints its seed: %s", s)
		}

		now := e.clock.Now()
		first := code(t, c, now)
		wantCheck(t, e.checkTOTP(c, first), issuer.AuthCheck{OK: true})
		wantCheck(t, e.checkTOTP(c, first), issuer.AuthCheck{Left: 4}) // the step is used
		e.clock.Advance(30 * time.Second)
		wantCheck(t, e.checkTOTP(c, code(t, c, now.Add(30*time.Second))), issuer.AuthCheck{OK: true})
		e.clock.Advance(30 * time.Second)
		// One step of skew: the next step's code is good, then the
		// current one is older than the last accepted.
		wantCheck(t, e.checkTOTP(c, code(t, c, now.Add(90*time.Second))), issuer.AuthCheck{OK: true})
		wantCheck(t, e.checkTOTP(c, code(t, c, now.Add(60*time.Second))), issuer.AuthCheck{Left: 4})
		wrong := "000000"
		if wrong == code(t, c, e.clock.Now()) || wrong == code(t, c, e.clock.Now().Add(30*time.Second)) {
			wrong = "000001"
		}
		wantCheck(t, e.checkTOTP(c, wrong), issuer.AuthCheck{Left: 3})
		_, err := e.iss.CheckTOTP(ctx, c.ID, "12345")
		wantCode(t, err, issuer.CodeInvalidRequest)

		// One count for both factors; a success clears its own factor's.
		wantCheck(t, e.checkPW(c, "wrong-password"), issuer.AuthCheck{Left: 2})
		e.clock.Advance(time.Minute)
		wantCheck(t, e.checkTOTP(c, code(t, c, e.clock.Now())), issuer.AuthCheck{OK: true})
		if got, _ := e.iss.Card(ctx, c.ID); got.AuthFailures != 1 {
			t.Fatalf("failures after a TOTP success = %d, want the password's 1", got.AuthFailures)
		}
		for left := 3; left >= 0; left-- {
			wantCheck(t, e.checkPW(c, "wrong-password"), issuer.AuthCheck{Left: left})
		}
		e.clock.Advance(time.Minute)
		wantCheck(t, e.checkTOTP(c, code(t, c, e.clock.Now())), issuer.AuthCheck{Locked: true})

		// An idempotent repeat of the issue shows the same seed.
		req := issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동", HolderPhone: testPhone,
			BirthDate: testBirth, Password: testPassword, Limit: 1000, EnrolTOTP: true, IdempotencyKey: "totp-once"}
		a, err := e.iss.IssueCard(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.iss.IssueCard(ctx, req)
		if err != nil || !b.Replayed || b.TOTPEnrolment == nil || b.TOTPEnrolment.Seed != a.TOTPEnrolment.Seed || b.AuthPassword {
			t.Fatalf("replay: %+v, %v", b, err)
		}
		_, err = e.iss.CheckTOTP(ctx, e.issue(issuer.Check, 1).ID, "123456")
		wantCode(t, err, issuer.CodeNotEnrolled)
	})
}

// newCA returns a config option with a fresh cardholder CA.
func newCA(t testing.TB) func(*issuer.Config) {
	t.Helper()
	certPEM, keyPEM, err := issuer.GenerateCA("KECIS Card Cardholder CA", testutil.FixedNow, 10*365*24*time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *issuer.Config) { c.CACert, c.CAKey = certPEM, keyPEM }
}

func TestClientCertificates(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN, newCA(t))
	c := e.issue(issuer.Credit, 100_000, withAuth)
	cc, err := e.iss.IssueClientCertificate(ctx, c.ID, "Hong Gildong")
	if err != nil {
		t.Fatal(err)
	}
	ca := e.iss.CACertificate()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cc.Certificate.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: e.clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if cc.Certificate.Subject.CommonName != "Hong Gildong" || len(cc.Certificate.ExtKeyUsage) != 1 ||
		cc.Certificate.NotAfter.After(time.Date(c.ExpYear, time.Month(c.ExpMonth)+1, 1, 0, 0, 0, 0, issuer.KST)) {
		t.Fatalf("certificate: %+v", cc.Certificate.Subject)
	}

	// PKCS#12 for a browser: the key, the certificate and the CA back.
	p12, err := cc.PKCS12("p12-pass", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, cas, err := pkcs12.DecodeChain(p12, "p12-pass")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || !k.Equal(cc.Key) || !cert.Equal(cc.Certificate) || len(cas) != 1 || !cas[0].Equal(ca) {
		t.Fatal("PKCS#12 round trip lost the key, the certificate or the CA")
	}
	if _, _, _, err := pkcs12.DecodeChain(p12, "wrong"); err == nil {
		t.Fatal("PKCS#12 opened with a wrong password")
	}

	if ref, err := e.iss.CertificateCard(ctx, cc.Certificate); err != nil || ref != c.ID {
		t.Fatalf("CertificateCard = %q, %v", ref, err)
	}
	crl, err := e.iss.CRL(ctx)
	if err != nil || len(crl.RevokedCertificateEntries) != 0 || crl.CheckSignatureFrom(ca) != nil ||
		crl.NextUpdate.Sub(crl.ThisUpdate) != 10*time.Minute {
		t.Fatalf("CRL = %+v, %v", crl, err)
	}
	if err := e.iss.RevokeCertificate(ctx, cc.Serial); err != nil {
		t.Fatal(err)
	}
	if err := e.iss.RevokeCertificate(ctx, cc.Serial); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	crl2, err := e.iss.CRL(ctx)
	if err != nil || len(crl2.RevokedCertificateEntries) != 1 || crl2.RevokedCertificateEntries[0].SerialNumber.Cmp(cc.Certificate.SerialNumber) != 0 ||
		crl2.Number.Cmp(crl.Number) <= 0 || crl2.CheckSignatureFrom(ca) != nil {
		t.Fatalf("CRL after revocation = %+v, %v", crl2, err)
	}
	_, err = e.iss.CertificateCard(ctx, cc.Certificate)
	wantCode(t, err, issuer.CodeDeclined)
	wantCode(t, e.iss.RevokeCertificate(ctx, "abcdef"), issuer.CodeNotFound)

	// A card reported lost loses its certificates for good.
	cc2, err := e.iss.IssueClientCertificate(ctx, c.ID, "Hong Gildong")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.iss.SetCardStatus(ctx, c.ID, issuer.CardLost); err != nil {
		t.Fatal(err)
	}
	if _, err := e.iss.SetCardStatus(ctx, c.ID, issuer.CardActive); err != nil {
		t.Fatal(err)
	}
	_, err = e.iss.CertificateCard(ctx, cc2.Certificate)
	wantCode(t, err, issuer.CodeDeclined)
	if crl, err := e.iss.CRL(ctx); err != nil || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("CRL after the card was lost: %v", err)
	}

	// The same serial from another CA names no card.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: new(big.Int).Set(cc.Certificate.SerialNumber), Subject: pkix.Name{CommonName: "x"},
		NotBefore: e.clock.Now(), NotAfter: e.clock.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	other, _ := x509.ParseCertificate(der)
	_, err = e.iss.CertificateCard(ctx, other)
	wantCode(t, err, issuer.CodeNotFound)

	// The native API serves the CRL and the CA.
	h := client{t: t, h: e.iss.Handler()}
	res := h.do("GET", "/ca/crl", "", false, nil)
	if res.code != 200 || res.header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET /ca/crl: %d %s", res.code, res.raw)
	}
	if got, err := x509.ParseRevocationList([]byte(res.raw)); err != nil || len(got.RevokedCertificateEntries) != 2 {
		t.Fatalf("served CRL: %v", err)
	}
	if res := h.do("GET", "/ca/cert", "", false, nil); res.code != 200 || !bytes.Equal([]byte(res.raw), ca.Raw) {
		t.Fatalf("GET /ca/cert: %d", res.code)
	}

	// Without a CA.
	plain := newEnv(t, sqltest.TestSQLiteDSN)
	_, err = plain.iss.IssueClientCertificate(ctx, plain.issue(issuer.Credit, 1).ID, "x")
	wantCode(t, err, issuer.CodeNoCA)
	_, err = plain.iss.CRL(ctx)
	wantCode(t, err, issuer.CodeNoCA)
}

// TestConcurrentGuesses: a burst of concurrent guesses gets no more
// checks than the lock allows, on either backend.
func TestConcurrentGuesses(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		e := newEnv(t, dsn)
		c := e.issue(issuer.Credit, 100_000, withAuth)
		var wg sync.WaitGroup
		var mu sync.Mutex
		checked, locked := 0, 0
		for k := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.iss.CheckAuthPassword(ctx, c.ID, ecml.Secret("guess-"+itoa(int64(k))))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("check: %v", err)
				case r.Locked:
					locked++
				default:
					checked++
				}
			}()
		}
		wg.Wait()
		if checked != 5 || locked != 7 {
			t.Fatalf("%d guesses checked, %d refused as locked; want 5 and 7", checked, locked)
		}
	})
}

// TestAuthHTTP: the native API issues a card with credentials, a client
// certificate as PKCS#12, unlocks, and the admin page's unlock button
// refuses a cross-site post.
func TestAuthHTTP(t *testing.T) {
	e := newEnv(t, sqltest.TestSQLiteDSN, newCA(t), func(c *issuer.Config) { c.AdminToken = adminToken })
	h := client{t: t, h: e.iss.Handler()}
	res := h.do("POST", "/api/v1/cards", "auth-card", true, map[string]any{"type": "credit", "holder_name": "홍길동",
		"holder_phone": testPhone, "birth_date": testBirth, "password": testPassword, "limit": 1000,
		"auth_password": testAuthPassword, "enrol_totp": true}).want(t, 201, "")
	id := res.str("card", "id")
	if !strings.HasPrefix(res.str("totp", "uri"), "otpauth://totp/") || res.body["card"].(map[string]any)["auth_password"] != true {
		t.Fatalf("issued: %s", res.raw)
	}
	for range 5 {
		if _, err := e.iss.CheckAuthPassword(ctx, id, "wrong-password"); err != nil {
			t.Fatal(err)
		}
	}
	cert := h.do("POST", "/api/v1/cards/"+id+"/certificates", "", true, map[string]any{"holder_name": "Hong Gildong",
		"pkcs12_password": "p12-pass"}).want(t, 201, "")
	p12, err := base64Std(cert.str("pkcs12"))
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _, err := pkcs12.DecodeChain(p12, "p12-pass"); err != nil || c.Subject.CommonName != "Hong Gildong" {
		t.Fatalf("PKCS#12 from the API: %v", err)
	}
	h.do("POST", "/api/v1/certificates/"+cert.str("serial")+"/revoke", "", true, nil).want(t, 200, "")
	h.do("POST", "/api/v1/certificates/"+cert.str("serial")+"/revoke", "", false, nil).want(t, 401, issuer.CodeUnauthorized)

	req := httptest.NewRequest("POST", "/admin/cards/"+id+"/unlock", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	e.iss.Handler().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("cross-site unlock: %d", rec.Code)
	}
	page := h.do("GET", "/admin", "", true, nil)
	if !strings.Contains(page.raw, `action="/admin/cards/`+id+`/unlock"`) || !strings.Contains(page.raw, "locked") {
		t.Fatal("the admin page shows no unlock button for the locked card")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec = httptest.NewRecorder()
	e.iss.Handler().ServeHTTP(rec, req)
	if rec.Code != 303 {
		t.Fatalf("unlock from the page: %d %s", rec.Code, rec.Body)
	}
	if c, _ := e.iss.Card(ctx, id); c.AuthLocked {
		t.Fatal("still locked")
	}
	h.do("POST", "/api/v1/cards/"+id+"/auth/unlock", "", true, nil).want(t, 200, "")
}

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
