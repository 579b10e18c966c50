package issuer_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// TestNoSecretsAtRest runs a full scenario through the Go and the HTTP
// API — cardholder authentication (password, TOTP), a client
// certificate and virtual numbers included — then dumps every column of
// every table, every log line, every SMS and every error, and checks that
// no card number (real or virtual), birth date, card password (digits),
// authentication password or TOTP seed appears in any of them (KECIS
// §9.11).
func TestNoSecretsAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn dsnFunc) {
		ca := newCA(t)
		e := newEnv(t, dsn, ca, func(c *issuer.Config) { c.AdminToken = adminToken; c.Virtual.PoolSize = 20 })
		h := client{t: t, h: e.iss.Handler()}
		var errs []string
		note := func(_ any, err error) {
			if err != nil {
				errs = append(errs, err.Error())
			}
		}

		c := e.issue(issuer.Credit, 100_000)
		check := e.issue(issuer.Check, 50_000)
		hc := httpIssueCard(t, h, "http-card", 200_000)
		pans := []string{c.PAN.Reveal(), check.PAN.Reveal(), hc.str("number")}

		// Cardholder authentication: password, TOTP, a certificate, and
		// virtual numbers (KECIS §15.4, §15.7).
		ac := e.issue(issuer.Credit, 100_000, withAuth)
		pans = append(pans, ac.PAN.Reveal())
		seed := ac.TOTPEnrolment.Seed.Reveal()
		for _, pw := range []string{"wrong-password", testAuthPassword} {
			note(e.iss.CheckAuthPassword(ctx, ac.ID, ecml.Secret(pw)))
		}
		note(e.iss.CheckTOTP(ctx, ac.ID, "000000"))
		note(e.iss.CheckTOTP(ctx, ac.ID, ecml.Secret(code(t, ac, e.clock.Now()))))
		note(e.iss.CheckTOTP(ctx, ac.ID, ecml.Secret(code(t, ac, e.clock.Now()))))
		cc, err := e.iss.IssueClientCertificate(ctx, ac.ID, "Hong Gildong")
		if err != nil {
			t.Fatal(err)
		}
		note(nil, e.iss.RevokeCertificate(ctx, cc.Serial))
		v, err := e.iss.IssueVirtual(ctx, ac.ID, vcn.DefaultControls(merchant))
		if err != nil {
			t.Fatal(err)
		}
		pans = append(pans, v.Number.Reveal())
		if _, err := e.iss.Approve(ctx, e.virtualReq(v, 5_000)); err != nil {
			t.Fatal(err)
		}
		note(e.iss.Approve(ctx, e.virtualReq(v, 5_000)))
		hac := h.do("POST", "/api/v1/cards", "http-auth-card", true, map[string]any{"type": "credit", "holder_name": "김철수",
			"holder_phone": testPhone, "birth_date": testBirth, "password": testPassword, "limit": 1000,
			"auth_password": testAuthPassword, "enrol_totp": true}).want(t, 201, "")
		pans = append(pans, hac.str("number"))
		httpSeed := hac.str("totp", "seed")
		if len(seed) < 16 || len(httpSeed) < 16 {
			t.Fatalf("no TOTP seed to look for: %d, %d characters", len(seed), len(httpSeed))
		}
		h.do("POST", "/api/v1/cards/"+ac.ID+"/auth/unlock", "", true, nil).want(t, 200, "")

		keyIn := func(card *issuer.IssuedCard, amount int64, prefix, birth string) (*issuer.Approval, error) {
			r := e.approveReq(card, amount)
			r.Card.KeyIn = &issuer.KeyIn{PasswordPrefix: ecml.Secret(prefix), BirthDate: ecml.Secret(birth)}
			if s := fmt.Sprintf("%v %+v %#v", r, r, r.Card.KeyIn); ecml.ContainsPAN(s) || strings.Contains(s, testBirth) {
				t.Errorf("a request prints its card data: %s", s)
			}
			return e.iss.Approve(ctx, r)
		}
		a, err := keyIn(c, 15_000, testPrefix, testBirth)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			note(keyIn(check, 1000, "99", testBirth))
		}
		note(keyIn(check, 1000, testPrefix, testBirth)) // blocked now
		unknown := e.approveReq(c, 1000)
		unknown.Card.PAN = ecml.PAN(pans[0][:15] + string("0123456789"[(pans[0][15]-'0'+1)%10]))
		note(e.iss.Approve(ctx, unknown))
		note(e.iss.Approve(ctx, e.approveReq(c, 1_000_000)))

		e.phone.fail.Store(true)
		b, err := keyIn(c, 30_000, "", testBirth)
		if err != nil {
			t.Fatal(err)
		}
		e.phone.fail.Store(false)
		note(e.cancel(a))
		ha := h.do("POST", "/api/v1/approvals", "http-ap", false, httpApproveBody(hc, "HTTP-1", 40_000, true)).want(t, 201, "")
		h.do("POST", "/api/v1/approvals", "http-ap2", false, httpApproveBody(hc, "HTTP-2", 1_000_000, true)).want(t, 402, issuer.CodeLimitExceeded)
		e.pastCutOff()
		note(e.iss.Settle(ctx, e.clock.Now()))
		note(e.refund(b, 10_000))
		note(e.refund(b, 30_000))
		h.do("POST", "/api/v1/approvals/"+ha.str("approval_number")+"/refunds", "http-rf", false,
			map[string]any{"merchant_id": merchant, "amount": 40_000, "currency": "KRW"}).want(t, 201, "")
		note(e.iss.DeliverNotifications(ctx))
		h.do("GET", "/admin", "", true, nil)
		if len(errs) < 8 {
			t.Fatalf("the scenario produced only %d errors: %q", len(errs), errs)
		}

		secrets := append([]string{testBirth, testPassword, testAuthPassword, seed, httpSeed}, pans...)
		leak := func(where, s string) {
			if ecml.ContainsPAN(s) {
				t.Errorf("%s contains a card number: %q", where, s)
			}
			for _, sec := range secrets {
				if strings.Contains(s, sec) {
					t.Errorf("%s contains the secret %s…: %q", where, sec[:2], s)
				}
			}
		}
		cells := 0
		if tables := testutil.Tables(t, e.iss.DB().DB); len(tables) < 7 {
			t.Fatalf("tables: %v", tables)
		}
		for table, rows := range testutil.DumpDB(t, e.iss.DB().DB) {
			for k, row := range rows {
				for col, v := range row {
					where := fmt.Sprintf("%s[%d].%s", table, k, col)
					cells++
					switch v := v.(type) {
					case string:
						leak(where, v)
						if v == testPrefix {
							t.Errorf("%s holds the password digits", where)
						}
					case []byte:
						leak(where, string(v))
						if string(v) == testPrefix {
							t.Errorf("%s holds the password digits", where)
						}
					case int64:
						for _, p := range pans {
							if strconv.FormatInt(v, 10) == p {
								t.Errorf("%s holds a card number as an integer", where)
							}
						}
					case nil, time.Time, bool, float64:
					default:
						t.Errorf("%s: unexpected %T", where, v)
					}
				}
			}
		}
		if cells < 200 {
			t.Errorf("only %d cells dumped", cells)
		}
		logs := e.logs.String()
		for _, line := range strings.Split(logs, "\n") {
			leak("log line", line)
		}
		for _, want := range []string{"approval approved", "approval declined", "key-in verification failed",
			"sms delivery failed", "approval refunded", "settlement batch", "cardholder authentication failed",
			"client certificate revoked", "virtual number issued", "TOTP code of a step already used"} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %q in the logs", want)
			}
		}
		for _, m := range e.phone.Messages("") {
			leak("SMS", m.Text)
		}
		for _, s := range errs {
			leak("error", s)
		}
	})
}
