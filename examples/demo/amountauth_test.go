package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/testutil"
)

// aaText is the issuer's text of a verification approval (or of any
// approval): "[KECIS Card] 승인 3,417원 Demo shop 05/01 10:41 (1234)".
var aaText = regexp.MustCompile(`^\[KECIS Card\] 승인 ([0-9,]+)원 `)

// textAmount reads the amount of an approval's text, in won.
func textAmount(text string) (int64, bool) {
	m := aaText.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return n, err == nil
}

// waitVerificationText waits for the text of a verification approval —
// an approval naming shop, of an amount other than the purchase's — on
// phone, newer than the message after (its ID; "" for any), and returns
// it with its amount.
func waitVerificationText(t *testing.T, d *Demo, phone, shop, after string) (telecom.Message, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var amount int64
	m, err := d.Telecom.WaitForMessage(ctx, phone, func(m telecom.Message) bool {
		n, ok := textAmount(m.Text)
		if !ok || n == shopPrice || !strings.Contains(m.Text, shop) || m.ID == after {
			return false
		}
		amount = n
		return true
	})
	if err != nil {
		t.Fatalf("no verification approval's text on %s: %v", phone, err)
	}
	return m, amount
}

// secretForms are the forms an amount-authentication secret (a challenge,
// or an amount typed for it) would take in a log line or a stored record
// that leaked it: a quoted string or XML attribute ("3417"), an element's
// text (>3417<), a JSON number (:3417, or :3417}), a form or query value
// (=3417&), grouped (3,417) and in won (3417원). Bare digit runs are not
// searched: base64 and timestamps hold digits by chance.
func secretForms(n int64) []string {
	s := strconv.FormatInt(n, 10)
	forms := []string{`"` + s + `"`, `>` + s + `<`, `:` + s + `,`, `:` + s + `}`, `=` + s + `&`, `=` + s + `"`, s + `원`, s + ` KRW`}
	if g := won(n); strings.Contains(g, ",") {
		forms = append(forms, strings.TrimSuffix(g, "원"))
	}
	return forms
}

// secretLeaks lists where the forms of the secrets appear in text: each as a
// snippet with the secret itself masked.
func secretLeaks(what, text string, secrets ...int64) []string {
	var out []string
	for _, n := range secrets {
		for _, f := range secretForms(n) {
			for i := 0; ; {
				k := strings.Index(text[i:], f)
				if k < 0 {
					break
				}
				at := i + k
				// A grouped form inside a longer number is another number.
				if strings.Contains(f, ",") && (at > 0 && isDigit(text[at-1]) || at+len(f) < len(text) && (isDigit(text[at+len(f)]) || text[at+len(f)] == ',')) {
					i = at + 1
					continue
				}
				lo, hi := max(at-60, 0), min(at+len(f)+60, len(text))
				out = append(out, fmt.Sprintf("%s: …%s…", what, strings.ReplaceAll(text[lo:hi], f, "[SECRET]")))
				i = at + 1
			}
		}
	}
	return out
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// assertNoAASecrets fails the test when a challenge or a typed amount is
// in the captured logs, in the hub's audit (details and messages, read
// back decompressed through the hub store) or in the PG sidecar's
// database file.
func assertNoAASecrets(t *testing.T, d *Demo, logs string, secrets ...int64) {
	t.Helper()
	found := secretLeaks("log", logs, secrets...)
	recs, err := d.HubStore.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("the hub's audit is empty")
	}
	for _, r := range recs {
		found = append(found, secretLeaks(fmt.Sprintf("audit %d (%s) detail", r.ID, r.Kind), r.Detail, secrets...)...)
		found = append(found, secretLeaks(fmt.Sprintf("audit %d (%s) message", r.ID, r.Kind), string(r.Message), secrets...)...)
	}
	for _, f := range []string{"adapter.db", "adapter.db-wal"} {
		b, err := os.ReadFile(d.path("pg", f))
		if err != nil && f == "adapter.db" {
			t.Fatal(err)
		}
		found = append(found, secretLeaks("the PG sidecar's "+f, string(b), secrets...)...)
	}
	if len(found) > 0 {
		t.Fatalf("an amount-authentication secret in clear:\n%s", strings.Join(found, "\n"))
	}
}

// TestAmountAuthEndToEnd: an amount-authenticated purchase through the
// demo as a merchant and a cardholder make it (KECIS §15.3): the shop
// starts it on the hub's facade (POST /v1/amountauth/start, its API key);
// the issuer texts the holder's phone a verification approval whose amount
// the telecom's inbox shows; the PG's page (an HTTP client posting as the
// checkout's form does) takes a wrong amount, then the right one, and
// returns the browser to the shop's return URL, whose page shows the
// approval; amountauth:status says approved with the same approval number.
// At the issuer the verification approval is cancelled and the purchase
// approved once, recorded at the PG as the shop's payment; the holder is
// texted the void and the purchase. Neither the challenge nor the wrong
// amount is in any log line, in the hub's audit or in the sidecar's
// database.
func TestAmountAuthEndToEnd(t *testing.T) {
	d, a, logs := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	ctx := context.Background()
	m := a.m.AmountAuth
	if m.StartURL != a.m.HubURL+"/v1/amountauth/start" || m.PageURL != d.PGPage+AmountAuthPagePath || m.CheckoutURL != d.ShopURL+"/" ||
		m.ReturnURL != d.ShopURL+shopReturnPath || m.Merchant != MerchantID || m.Method != "amount" || m.MinPurchase != 10_100 ||
		m.Attempts != 3 || m.TimeoutSeconds != 300 || a.m.Addresses.PGPage != d.PGPage || a.m.Addresses.Shop != d.ShopURL {
		t.Fatalf("demo.json amountauth: %+v, addresses %+v", m, a.m.Addresses)
	}
	c := a.m.TestCards[0]
	fields := payFields("AA-E2E-1", c, shopPrice)
	code, out := a.facade(0, strings.TrimPrefix(m.StartURL, a.m.HubURL), "aa-e2e-1", mustJSON(t, map[string]any{"fields": fields}))
	f, _ := out["fields"].(map[string]any)
	session, _ := f["KECIS_AmountAuth_SessionID"].(string)
	if code != http.StatusOK || out["status"] != "Success" || out["provider"] != PGID || f["Ecom_Transaction_ResponseData"] != "awaiting-amount" || session == "" {
		t.Fatalf("start: HTTP %d %s %v", code, answer(out), f)
	}
	if _, ok := f["KECIS_AmountAuth_Challenge"]; ok {
		t.Fatal("start's answer names the challenge")
	}

	// The holder's phone shows the verification approval; the issuer's
	// ledger agrees.
	text, challenge := waitVerificationText(t, d, c.Phone, d.Merchants[0].Name, "")
	v, err := d.Verification(ctx, session)
	if err != nil || v.State != verificationApproved || v.Amount != krw(challenge) {
		t.Fatalf("the verification approval at the issuer: %v %q (the text says another amount: %t)", err, v.State, v.Amount != krw(challenge))
	}
	// The conformance suite's amountauth hook tells the same.
	hook := httptest.NewServer(d.amountAuthHook())
	defer hook.Close()
	askHook := func(body string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Post(hook.URL+AmountAuthHookPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if code, v := askHook(`{"session_id":"` + session + `"}`); code != http.StatusOK || v["state"] != "approved" || v["amount"] != strconv.FormatInt(challenge, 10) || v["currency"] != "KRW" {
		t.Fatalf("the amountauth hook before the match: HTTP %d, state %q (the text's amount: %t)", code, v["state"], v["amount"] == strconv.FormatInt(challenge, 10))
	}
	if code, v := askHook(`{"session_id":"AAAAAAAAAAAAAAAAAAAAAA"}`); code != http.StatusOK || v["state"] != "none" || v["amount"] != "" {
		t.Fatalf("the amountauth hook of an unknown session: HTTP %d %v", code, v)
	}
	if code, _ := askHook(`{"session_id":"../x"}`); code != http.StatusBadRequest {
		t.Fatalf("the amountauth hook took a malformed session: HTTP %d", code)
	}
	if len(secretLeaks("the text", text.Text, challenge)) == 0 {
		t.Fatal("the leak check does not find the challenge in the text that carries it")
	}
	if challenge < 100 || challenge >= shopPrice {
		t.Fatalf("the challenge is outside [100, %d)", shopPrice)
	}
	wrong := challenge + 7
	if wrong >= shopPrice {
		wrong = challenge - 7
	}

	// The cardholder's browser: the checkout's form to the PG's page, a
	// wrong amount, the right one, and back to the shop.
	browser := &http.Client{Timeout: 30 * time.Second}
	post := func(u string, form url.Values) (int, string) {
		t.Helper()
		resp, err := browser.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sess := url.Values{"SessionID": {session}, "RelayState": {"AA-E2E-1"}}
	if code, page := post(m.PageURL, sess); code != http.StatusOK || !strings.Contains(page, "Demo shop") || !strings.Contains(page, "15,000원") ||
		!strings.Contains(page, ecml.MaskPAN(c.Number)) || !strings.Contains(page, `name="Entry"`) {
		t.Fatalf("the PG's page: HTTP %d\n%s", code, page)
	}
	entry := func(n int64) url.Values {
		v := url.Values{"Entry": {won(n)}}
		for k, x := range sess {
			v[k] = x
		}
		return v
	}
	if code, page := post(m.PageURL+"/confirm", entry(wrong)); code != http.StatusOK || !strings.Contains(page, "금액이 맞지 않습니다") || !strings.Contains(page, "2 attempts left") {
		t.Fatalf("a wrong amount: HTTP %d\n%s", code, page)
	}
	code, page := post(m.PageURL+"/confirm", entry(challenge))
	if code != http.StatusOK || !strings.Contains(page, "Your payment is complete") || !strings.Contains(page, `action="`+m.ReturnURL+`"`) {
		t.Fatalf("the right amount: HTTP %d\n%s", code, page)
	}
	// The shop's return URL takes only its own orders: this purchase was
	// started on the facade, not at its checkout.
	if code, page := post(m.ReturnURL, url.Values{"SessionID": {session}, "RelayState": {"AA-E2E-1"}, "State": {"approved"}}); code != http.StatusNotFound || !strings.Contains(page, "No such order at this shop") {
		t.Fatalf("the shop's return page of another's order: HTTP %d\n%s", code, page)
	}

	// status: approved, the purchase's approval number, the PG's result.
	statusOf := mustJSON(t, map[string]any{"fields": map[string]any{"KECIS_AmountAuth_SessionID": session,
		"KECIS_AmountAuth_Ceiling": f["KECIS_AmountAuth_Ceiling"], "KECIS_AmountAuth_Currency": f["KECIS_AmountAuth_Currency"]}})
	code, out = a.facade(0, strings.TrimPrefix(m.StatusURL, a.m.HubURL), "", statusOf)
	f, _ = out["fields"].(map[string]any)
	approval, _ := f["Ecom_Transaction_ApprovalCode"].(string)
	if code != http.StatusOK || out["status"] != "Success" || f["Ecom_Transaction_ResponseData"] != "approved" || approval == "" || f["Ecom_ConsumerOrderID"] != "AA-E2E-1" {
		t.Fatalf("status: HTTP %d %s %v", code, answer(out), f)
	}
	if results, _ := out["authentication_results"].([]any); len(results) != 1 {
		t.Fatalf("status carries %d authentication results, want the PG's one", len(results))
	}
	// Another merchant's status of the session: as for an unknown one.
	if code, out := a.facade(1, strings.TrimPrefix(m.StatusURL, a.m.HubURL), "", statusOf); out["status"] == "Success" {
		t.Fatalf("shop 2 read shop 1's session: HTTP %d %s", code, answer(out))
	}

	// The issuer: the verification approval voided, the purchase approved
	// once; the PG records it as the shop's payment.
	if v, err := d.Verification(ctx, session); err != nil || v.State != verificationCancelled {
		t.Fatalf("the verification approval after the match: %v %q", err, v.State)
	}
	if code, v := askHook(`{"session_id":"` + session + `"}`); code != http.StatusOK || v["state"] != "cancelled" {
		t.Fatalf("the amountauth hook after the match: HTTP %d, state %q", code, v["state"])
	}
	ic, err := d.Issuer.FindCard(ctx, ecml.PAN(c.Number))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := d.Issuer.CardApprovals(ctx, ic.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var verifications, purchases int
	for _, ap := range ledger {
		switch {
		case ap.Verification:
			verifications++
			if ap.Status != issuer.StatusCancelled {
				t.Errorf("verification approval %s is %s", ap.Number, ap.Status)
			}
		case ap.Amount == krw(shopPrice) && ap.Status == issuer.StatusApproved:
			purchases++
		}
	}
	if verifications != 1 || purchases != 1 {
		t.Fatalf("the card's ledger: %d verification approvals, %d purchases of %d (want 1 and 1)", verifications, purchases, shopPrice)
	}
	pay, err := d.PG.Find(ctx, d.PGMerchants[MerchantID], "AA-E2E-1")
	if err != nil || pay.Status != pg.StatusApproved || pay.ApprovalNo != approval || pay.Amount != shopPrice {
		t.Fatalf("the PG's record: %v %+v", err, pay)
	}
	// The holder's texts: the void of the small approval, the purchase.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, want := range []string{"승인취소 " + won(challenge), "승인 " + won(shopPrice)} {
		if _, err := d.Telecom.WaitForMessage(wctx, c.Phone, func(m telecom.Message) bool { return strings.Contains(m.Text, want) && m.ID != text.ID }); err != nil {
			t.Fatalf("no text %q: %v", strings.ReplaceAll(want, won(challenge), "[challenge]"), err)
		}
	}
	assertNoAASecrets(t, d, logs.String(), challenge, wrong)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAmountAuthInTheBrowser: two amount-authenticated purchases at the
// demo shop in headless Chromium, as a person makes them (docs/demo.md,
// "Amount authentication"). The shop's checkout posts the session to the
// PG's page; the test reads the amount of the card company's text on the
// phone simulator's page (another tab), types it on the PG's page, and the
// browser comes back to the shop's page showing the purchase approved with
// its approval number. The second purchase gets wrong amounts up to the
// attempt limit: the shop's page says it failed, and the verification
// approval is voided at the issuer. Neither the challenges nor the typed
// amounts are in any log line or hub record.
func TestAmountAuthInTheBrowser(t *testing.T) {
	testutil.RequireTool(t, "chromium", "chromium")
	d, a, logs := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	// The browser closes first (cleanups run last first): a connection it
	// opened ahead would hold the demo's servers' shutdown.
	shopTab := browser(t, 90*time.Second)
	ctx := context.Background()
	c := a.m.TestCards[0]
	phoneTab, cancel := chromedp.NewContext(shopTab)
	defer cancel()
	phonePage := a.m.Addresses.Telecom + "/phones/" + strings.ReplaceAll(c.Phone, "-", "")

	// pay buys the product with the first card at the checkout and waits
	// for the PG's page; it returns the session the page shows.
	pay := func() string {
		t.Helper()
		if err := chromedp.Do(shopTab, chromedp.Navigate(a.m.AmountAuth.CheckoutURL), chromedp.WaitVisible(chromedp.ID("pay")),
			chromedp.SetValue(chromedp.ID("card"), "0"), chromedp.Click(chromedp.ID("pay")), chromedp.WaitVisible(chromedp.ID("entry"))); err != nil {
			t.Fatalf("the checkout to the PG's page: %v", err)
		}
		page, err := chromedp.Run(shopTab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		session, err := chromedp.Run(shopTab, chromedp.Value(chromedp.CSS(`input[name="SessionID"]`)))
		if err != nil || page != a.m.AmountAuth.PageURL || session == "" {
			t.Fatalf("the checkout led to %s (session %q, %v), want the PG's page %s", page, session, err, a.m.AmountAuth.PageURL)
		}
		return session
	}
	// readText reads, on the phone simulator's page, the newest text of a
	// verification approval that is not seen's, and its amount.
	readText := func(seen string) (string, int64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if err := chromedp.Do(phoneTab, chromedp.Navigate(phonePage), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
				t.Fatalf("the phone simulator's page: %v", err)
			}
			msgs, err := chromedp.Run(phoneTab, chromedp.Evaluate[[]struct{ ID, Text string }](
				`[...document.querySelectorAll("article.msg")].map(a => ({ID: a.id, Text: a.querySelector(".text").textContent}))`))
			if err != nil {
				t.Fatalf("the phone simulator's texts: %v", err)
			}
			for _, m := range msgs { // newest first
				if n, ok := textAmount(m.Text); ok && n != shopPrice && m.ID != seen && strings.Contains(m.Text, d.Merchants[0].Name) {
					return m.ID, n
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no verification approval's text on the phone simulator's page (%d texts)", len(msgs))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// typeAmount types n on the PG's page, submits it and waits until the
	// next page has loaded: a mark set on the page it typed on is gone
	// (without it, the next entry could find the old page's field just
	// before the browser replaces it).
	typeAmount := func(n int64) {
		t.Helper()
		if err := chromedp.Do(shopTab, chromedp.WaitVisible(chromedp.ID("entry")), chromedp.SendKeys(chromedp.ID("entry"), won(n)),
			chromedp.Evaluate[chromedp.Void](`window.kecisTyped = true`), chromedp.Submit(chromedp.ID("entry"))); err != nil {
			t.Fatalf("typing on the PG's page: %v", err)
		}
		// While the browser navigates, an evaluation may fail: ask again.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			loaded, err := chromedp.Run(shopTab, chromedp.Evaluate[bool](`!window.kecisTyped && document.readyState === "complete"`))
			if err == nil && loaded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page after typing on the PG's page did not load: %v", err)
			}
		}
	}
	// outcome waits for the shop's page and reads its state and approval.
	outcome := func() (state, approval, page string) {
		t.Helper()
		if err := chromedp.Do(shopTab, chromedp.WaitVisible(chromedp.ID("outcome"))); err != nil {
			t.Fatalf("the shop's page after the PG's: %v", err)
		}
		page, err := chromedp.Run(shopTab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		st, err := chromedp.Run(shopTab, chromedp.AttributeValue(chromedp.ID("outcome"), "data-state"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Value == "approved" {
			if approval, err = chromedp.Run(shopTab, chromedp.Text(chromedp.ID("approval"))); err != nil {
				t.Fatal(err)
			}
		}
		return st.Value, approval, page
	}

	// One: the right amount.
	session1 := pay()
	seen, challenge1 := readText("")
	typeAmount(challenge1)
	state, approval, page := outcome()
	if state != "approved" || approval == "" || page != a.m.AmountAuth.ReturnURL {
		t.Fatalf("the first purchase: %s, approval %q, at %s", state, approval, page)
	}
	if v, err := d.Verification(ctx, session1); err != nil || v.State != verificationCancelled || v.Amount != krw(challenge1) {
		t.Fatalf("the first verification approval: %v %s (the amount the phone showed: %t)", err, v.State, v.Amount == krw(challenge1))
	}

	// Two: wrong amounts until the limit.
	session2 := pay()
	_, challenge2 := readText(seen)
	var typed []int64
	for i := int64(1); i <= int64(a.m.AmountAuth.Attempts); i++ {
		w := challenge2 + i
		if w >= shopPrice {
			w = challenge2 - i
		}
		typed = append(typed, w)
		typeAmount(w)
	}
	if state, _, page := outcome(); state != "failed" || page != a.m.AmountAuth.ReturnURL {
		t.Fatalf("the second purchase: %s at %s, want failed at the shop", state, page)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := d.Verification(ctx, session2)
		if err != nil {
			t.Fatal(err)
		}
		if v.State == verificationCancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verification approval of the failed purchase is %s at the issuer", v.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	assertNoAASecrets(t, d, logs.String(), append(typed, challenge1, challenge2)...)
}
