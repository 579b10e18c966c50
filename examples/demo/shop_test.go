package demo

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/ecml"
)

// TestShopPages: the demo shop's checkout shows the test cards masked
// only, under a CSP whose nonce admits its style and whose form-action
// admits the shop alone, never framed or stored; it refuses a purchase
// posted from another site (it would text a cardholder), a card it does
// not offer, and a return for an order that is not its own — each before
// anything reaches the hub; likewise its cash checkout's forms.
func TestShopPages(t *testing.T) {
	cards := []TestCard{{PAN: "9490101234567893", Holder: "Hong Gildong", Phone: "010-1234-5678", Limit: 3_000_000, Type: "credit", Status: "active"}}
	s := &shop{merchant: &Merchant{APIKey: "sk_test"}, cards: cards, hubURL: "https://127.0.0.1:1", phones: "http://127.0.0.1:2/phones",
		hub: &http.Client{}, log: slog.New(slog.DiscardHandler), rand: rand.Reader, escrow: &escrow.Client{Bank: BankAID}, escrowBankName: "KECIS Bank A"}
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "form-action 'self';") || !strings.Contains(csp, "script-src 'nonce-") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("the checkout: %s, CSP %q, headers %v", resp.Status, csp, resp.Header)
	}
	nonce := csp[strings.Index(csp, "'nonce-")+7:]
	nonce = nonce[:strings.Index(nonce, "'")]
	if !strings.Contains(page, `id="pay-cash"`) || !strings.Contains(page, "150,000원") {
		t.Fatalf("the checkout has no cash section:\n%s", page)
	}
	if !strings.Contains(page, `<style nonce="`+nonce+`">`) || !strings.Contains(page, `name="viewport"`) || !strings.Contains(page, "949010******7893") ||
		ecml.ContainsPAN(page) || !strings.Contains(page, "http://127.0.0.1:2/phones/01012345678") || !strings.Contains(page, "15,000원") {
		t.Fatalf("the checkout page:\n%s", page)
	}
	if resp, _ := get("/checkout"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /checkout: %s", resp.Status)
	}
	post := func(path string, form url.Values, site string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, site string
		form       url.Values
		code       int
		says       string
	}{
		{"/checkout", "cross-site", url.Values{"card": {"0"}}, http.StatusForbidden, "Pay from this shop"},
		{"/checkout", "same-site", url.Values{"card": {"0"}}, http.StatusForbidden, "Pay from this shop"},
		{"/checkout", "same-origin", url.Values{"card": {"1"}}, http.StatusBadRequest, "Choose a card"},
		{"/checkout", "", url.Values{"card": {"x"}}, http.StatusBadRequest, "Choose a card"},
		{"/return", "cross-site", url.Values{"SessionID": {"AAAAAAAAAAAAAAAAAAAAAA"}, "State": {"approved"}}, http.StatusNotFound, "No such order at this shop"},
		// The cash checkout (no call reaches a bank).
		{"/cash", "cross-site", url.Values{"product": {"keyboard"}}, http.StatusForbidden, "Pay from this shop"},
		{"/cash", "same-origin", url.Values{"product": {"piano"}}, http.StatusBadRequest, "Choose a product"},
		{"/cash/return", "cross-site", url.Values{"reference": {"EAAAAAAAAAAA"}}, http.StatusNotFound, "No such order at this shop"},
		{"/cash/orders/SHOP-AAAAAAAAAAAAAAAA/ship", "cross-site", url.Values{"carrier": {"CJ대한통운"}, "tracking": {"1"}}, http.StatusForbidden, "Use this shop"},
		{"/cash/orders/SHOP-AAAAAAAAAAAAAAAA/refund", "same-origin", nil, http.StatusNotFound, "No such escrow order at this shop"},
	} {
		if code, page := post(c.path, c.form, c.site); code != c.code || !strings.Contains(page, c.says) {
			t.Errorf("POST %s %v (Sec-Fetch-Site %q): HTTP %d, want %d saying %q\n%s", c.path, c.form, c.site, code, c.code, c.says, page)
		}
	}
	if resp, page := get("/cash/orders/SHOP-AAAAAAAAAAAAAAAA"); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "No such order at this shop") {
		t.Errorf("an unknown order's page: %s\n%s", resp.Status, page)
	}
	s.escrow = nil
	if code, page := post("/cash", url.Values{"product": {"keyboard"}}, ""); code != http.StatusNotFound || !strings.Contains(page, "No cash payments here") {
		t.Errorf("a shop without a cash checkout: HTTP %d\n%s", code, page)
	}
	for n, want := range map[int64]string{0: "0원", 999: "999원", 1000: "1,000원", 15000: "15,000원", 3_000_000: "3,000,000원"} {
		if got := won(n); got != want {
			t.Errorf("won(%d) = %q, want %q", n, got, want)
		}
	}
}
