package demo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/testutil"
)

// startForMerchants starts a demo and returns it with an attacker — a
// client that knows only demo.json — to drive it as a merchant would.
func startForMerchants(t *testing.T, cfg Config) (*Demo, *attacker, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	cfg.Dir, cfg.AllowClearCard = t.TempDir(), true
	cfg.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	m, err := ReadManifest(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(m.HubCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return d, &attacker{t: t, m: m, dir: cfg.Dir, pool: pool}, logs
}

// payFields are the facade fields of a payment of amount with test card c.
func payFields(order string, c ManifestTestCard, amount int64) map[string]string {
	return map[string]string{"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": fmt.Sprint(amount),
		"Ecom_Transaction_CurrencyCode": c.Currency, "Ecom_Transaction_Type": "credit",
		"Ecom_Payment_Card_Number": c.Number, "Ecom_Payment_Card_ExpDate_Month": fmt.Sprintf("%02d", c.ExpMonth),
		"Ecom_Payment_Card_ExpDate_Year": fmt.Sprint(c.ExpYear)}
}

// TestTestCards: each test card of demo.json, paid through the hub's
// facade with its amount as a merchant would (API key, clear card in the
// development mode), gives its outcome — approved; Declined (blocked),
// InsufficientFunds (check card), LimitExceeded (credit card), Declined
// (lost or stolen); the expired card refused by the hub itself (a 400
// problem naming the expiry); the issuer-timeout card Pending, never a
// decline, and then an inquire finds it approved once the issuer decided.
// The HTTP status is the facade's to choose (docs/merchant.md): the test
// reads the answer's body.
func TestTestCards(t *testing.T) {
	d, a, logs := startForMerchants(t, Config{RelayTimeout: 2 * time.Second})
	cards := map[string]ManifestTestCard{}
	for _, c := range a.m.TestCards {
		cards[c.Outcome] = c
	}
	for _, want := range []struct{ outcome, status, sub string }{
		{CardApproved, "Success", ""},
		{CardDeclined, "Responder", "Declined"},
		{CardInsufficientFunds, "Responder", "InsufficientFunds"},
		{CardLimitExceeded, "Responder", "LimitExceeded"},
		{CardExpired, "", ""},
		{CardLostStolen, "Responder", "Declined"},
		{CardIssuerTimeout, "Responder", "Pending"},
	} {
		t.Run(want.outcome, func(t *testing.T) {
			c, ok := cards[want.outcome]
			if !ok {
				t.Fatalf("no %s card in demo.json", want.outcome)
			}
			if c.SubStatus != want.sub {
				t.Fatalf("demo.json says sub_status %q, want %q", c.SubStatus, want.sub)
			}
			order := "CARD-" + want.outcome
			code, out := a.call(0, "approve", "tc-"+want.outcome, payFields(order, c, c.Amount), nil)
			t.Logf("%s: HTTP %d %s", want.outcome, code, answer(out))
			if c.Problem != "" {
				// Refused by the hub itself: a problem, nothing relayed.
				if typ := fmt.Sprint(out["type"]); code != http.StatusBadRequest || !strings.HasSuffix(typ, c.Problem) ||
					!strings.Contains(fmt.Sprint(out["detail"]), "ExpDate: has expired") {
					t.Fatalf("%s: HTTP %d %v, want a 400 %s problem naming the expiry", want.outcome, code, out, c.Problem)
				}
				return
			}
			if out["status"] != want.status || fmt.Sprint(out["sub_status"]) != want.sub && !(want.sub == "" && out["sub_status"] == nil) {
				t.Fatalf("%s: HTTP %d %s, want %s/%s", want.outcome, code, answer(out), want.status, want.sub)
			}
			if want.outcome != CardIssuerTimeout {
				return
			}
			if out["outcome"] != "pending" {
				t.Fatalf("issuer timeout: outcome %v, want pending", out["outcome"])
			}
			// The issuer decides after its delay; an inquire then tells.
			deadline := time.Now().Add(10 * d.cfg.RelayTimeout)
			for {
				code, out = a.call(0, "inquire", "", map[string]string{"Ecom_ConsumerOrderID": order}, nil)
				fields, _ := out["fields"].(map[string]any)
				if out["status"] == "Success" && fields["Ecom_Transaction_ResponseData"] == "approved" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("inquire after the issuer timeout: HTTP %d %s %v", code, answer(out), fields)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
	if ecml.ContainsPAN(logs.String()) {
		t.Fatal("a card number in clear in the logs")
	}
}

// TestRefundAfterSettle: before the issuer settles, a refund of the whole
// payment is refused "not settled yet: cancel instead" and a partial one
// says it is partial (Korean and English); the demo's settle endpoint
// (demo.json settle_url) ends the issuer's business day, after which the
// partial refund succeeds. The cardholder's texts and the issuer's admin
// page name the shop the cardholder bought from, not the PG, and the page
// fits a phone.
func TestRefundAfterSettle(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) // 19:00 KST
	d, a, _ := startForMerchants(t, Config{RelayTimeout: 3 * time.Second, IssuerNow: clock.Now})
	c := a.m.TestCards[0]
	if code, out := a.call(0, "approve", "rs-1", payFields("REFUND-1", c, 15000), nil); out["status"] != "Success" {
		t.Fatalf("approve: HTTP %d %s", code, answer(out))
	}
	refund := func(key string, amount int64) map[string]any {
		t.Helper()
		_, out := a.call(0, "refund", key, map[string]string{"Ecom_ConsumerOrderID": "REFUND-1",
			"Ecom_Transaction_Amount": fmt.Sprint(amount), "Ecom_Transaction_CurrencyCode": "KRW"}, nil)
		return out
	}
	if out := refund("rs-full", 15000); out["sub_status"] != "PolicyViolation" ||
		!strings.Contains(fmt.Sprint(out["message"]), "not settled yet: cancel instead") || strings.Contains(fmt.Sprint(out["message"]), "부분") {
		t.Fatalf("full refund before settlement: %s", answer(out))
	}
	if out := refund("rs-part", 5000); out["sub_status"] != "PolicyViolation" || !strings.Contains(fmt.Sprint(out["message"]), "부분환불") {
		t.Fatalf("partial refund before settlement: %s", answer(out))
	}

	res, err := http.Post(a.m.SettleURL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"settled":1`) || !strings.Contains(string(b), "T23:00:00+09:00") {
		t.Fatalf("settle: HTTP %d %s", res.StatusCode, b)
	}
	if d.Clock.Skipped() != 4*time.Hour {
		t.Fatalf("the issuer's clock skipped %s, want 4h (19:00 to 23:00 KST)", d.Clock.Skipped())
	}
	if out := refund("rs-after", 5000); out["status"] != "Success" {
		t.Fatalf("refund after settlement: %s", answer(out))
	}

	// The texts name the shop.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []string{"승인", "환불"} {
		m, err := d.Telecom.WaitForMessage(ctx, d.Cards[0].Phone, func(m telecom.Message) bool { return strings.Contains(m.Text, want) })
		if err != nil || !strings.Contains(m.Text, "Demo shop") || strings.Contains(m.Text, "kecis.tes") {
			t.Fatalf("%s text: %v %q", want, err, m.Text)
		}
	}
	res, err = http.Get(a.m.Addresses.IssuerAPI + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	for _, want := range []string{`<meta name="viewport" content="width=device-width, initial-scale=1">`, "overflow-x:auto",
		"Demo shop<span class=\"via\">via " + PGID + "</span>"} {
		if !strings.Contains(page, want) {
			t.Errorf("admin page lacks %q", want)
		}
	}
	if strings.Count(page, PGID) != 1 {
		t.Errorf("the admin page names the PG %d times", strings.Count(page, PGID))
	}

	// A restarted demo keeps its issuer's business time.
	d.Close()
	c2, err := openClock(clock.Now, d.path("issuer", "clock-offset"))
	if err != nil || c2.Skipped() != 4*time.Hour {
		t.Fatalf("clock after restart: %v %v", err, c2)
	}
}

// TestOneDemoPerDirectory: a second demo in the directory of a running
// one stops before it touches anything — the first one's demo.json stays
// — and says why; once the first stops, the directory is free again.
func TestOneDemoPerDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = Start(ctx, Config{Dir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second demo: %v", err)
	}
	if _, err := ReadManifest(dir); err != nil {
		t.Fatalf("the running demo's demo.json: %v", err)
	}
	d.Close()
	d2, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
}
