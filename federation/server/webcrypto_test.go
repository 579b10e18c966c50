package server_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/webcrypto"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// TestServesEncryptScript: the hub serves the browser script at its
// versioned URL, without authentication, with the headers a script tag
// with integrity needs.
func TestServesEncryptScript(t *testing.T) {
	h := startHub(t, "")
	resp, err := h.client(nil).Get(h.url + webcrypto.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != string(webcrypto.Script) {
		t.Fatalf("GET %s: %d, %d bytes", webcrypto.Path, resp.StatusCode, len(b))
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/javascript; charset=utf-8" || !strings.Contains(cc, "immutable") {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS header: a script tag with integrity and crossorigin would not run it")
	}
}

// checkoutPage is the checkout page docs/hub.md gives merchants, with the
// hub's URL and the route written in as the merchant's server would.
func checkoutPage(t *testing.T, hubURL string, route []byte) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hub.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec := strings.SplitN(string(doc), "## Encrypting the card in the browser", 2)
	if len(sec) != 2 {
		t.Fatal(`docs/hub.md has no "Encrypting the card in the browser" section`)
	}
	m := regexp.MustCompile("(?s)```html\n(.*?)```").FindStringSubmatch(sec[1])
	if m == nil {
		t.Fatal("docs/hub.md gives no checkout page")
	}
	page := strings.Replace(m[1], "https://hub.example", hubURL, 1)
	page = strings.Replace(page, "ROUTE_JSON", string(route), 1)
	if page == m[1] || strings.Contains(page, "ROUTE_JSON") {
		t.Fatal("the checkout page has no hub URL or ROUTE_JSON to fill in")
	}
	return "<!doctype html><meta charset=utf-8><title>checkout</title>\n" + page
}

func newChromium(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		// The test hub's TLS certificate is its own, not a CA's.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// goCard is the Card element the hub's ECML writer makes of the same
// fields, as a provider sees it after decryption.
func goCard(t *testing.T, fields map[string]string) string {
	t.Helper()
	v := url.Values{}
	for k, x := range fields {
		v.Set(k, x)
	}
	p, err := ecml.FromForm(v)
	if err != nil {
		t.Fatal(err)
	}
	c := etree.NewElement("c")
	if err := p.AppendTo(c); err != nil {
		t.Fatal(err)
	}
	return elementString(t, c.FindElement("./Ecom/Payment/Card"))
}

func elementString(t *testing.T, el *etree.Element) string {
	t.Helper()
	if el == nil {
		t.Fatal("no element")
	}
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	s, err := d.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decryptInGo decrypts the EncryptedData where a provider meets it (in
// Ecom/Payment) with the issuer's key and returns the Card.
func decryptInGo(t *testing.T, ed string, key *saml.Signer) string {
	t.Helper()
	root, err := saml.ParseDocument([]byte("<Ecom><Payment>"+ed+"</Payment></Ecom>"), saml.Limits{})
	if err != nil {
		t.Fatalf("the script's EncryptedData does not parse: %v", err)
	}
	d := &saml.Decryptor{EntityID: issuerID, Keys: []saml.DecryptionKey{{Cert: key.Cert, Key: key.Key.(crypto.Decrypter)}}}
	if err := d.DecryptPayload(context.Background(), root); err != nil {
		t.Fatalf("the Go decrypter refuses the script's EncryptedData: %v", saml.AsError(err).Cause())
	}
	return elementString(t, root.FindElement("./Payment/Card"))
}

var cipherValues = regexp.MustCompile(`<xenc:CipherValue>[^<]*</xenc:CipherValue>`)

// TestBrowserCardEncryption: the checkout page of docs/hub.md in headless
// Chromium loads the script from a production-mode hub (no clear cards),
// checked by its published integrity hash, and encrypts a card for the
// provider POST /v1/routes names. The merchant's server receives the
// ciphertext and the routing hints, never the number; the Go decrypter
// and xmlsec1 both decrypt the card to the Card element the hub's own
// ECML writer makes of the same fields; the EncryptedData is laid out as
// saml.Encryptor lays it out; and the approval through the facade is
// answered Success by the provider, who saw the card.
func TestBrowserCardEncryption(t *testing.T) {
	chromium := testutil.RequireTool(t, "chromium", "chromium")
	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	code, route := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": saml.ServiceURI("card", "approve"), "amount": "15000", "currency": "KRW", "card_bin": "411111"})
	if code != 200 || route["recipient"] != issuerID {
		t.Fatalf("routes: %d %v", code, route)
	}
	routeJSON, _ := json.Marshal(route)

	// The merchant's shop: the checkout page, and /pay, where the form
	// lands.
	type posted struct {
		form  url.Values
		clear bool
	}
	got := make(chan posted, 1)
	mux := http.NewServeMux()
	page := checkoutPage(t, f.h.url, routeJSON)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		got <- posted{form: form, clear: ecml.ContainsPAN(string(raw)) || strings.Contains(string(raw), "Ecom_Payment_Card")}
		io.WriteString(w, "<p id=done>thank you</p>")
	})
	shop := httptest.NewServer(mux) // http://127.0.0.1: a secure context for Web Crypto
	defer shop.Close()

	ctx := newChromium(t, chromium)
	card := map[string]string{
		"Ecom_Payment_Card_Number": "4111111111111111", "Ecom_Payment_Card_ExpDate_Month": "12",
		"Ecom_Payment_Card_ExpDate_Year": "2030", "Ecom_Payment_Card_Verification": "123",
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(shop.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#checkout"))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof KECIS === "object" && KECIS.version === "`+webcrypto.Version+`"`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		// The script did not run: not served, or its integrity hash differs.
		t.Fatalf("the page did not load the script (integrity %s): %v", webcrypto.Integrity(), err)
	}
	browserChecks(t, ctx, f, route, card)

	var steps []chromedp.Action[chromedp.Void]
	for name, v := range card {
		number := v
		if name == "Ecom_Payment_Card_Number" {
			number = "4111 1111 1111 1111" // as people type it
		}
		steps = append(steps, chromedp.SetValue(chromedp.CSS(`[data-ecml="`+name+`"]`), number))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS("#checkout button")), chromedp.WaitVisible(chromedp.CSS("#done")))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("chromium: the checkout page did not post the form: %v", err)
	}
	var p posted
	select {
	case p = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the form never reached the merchant's server")
	}
	if p.clear {
		t.Fatal("the merchant's server received card fields in clear")
	}
	ed := p.form.Get("encrypted_card")
	if p.form.Get("card_bin") != "411111" || p.form.Get("card_last4") != "1111" || ed == "" {
		t.Fatalf("the form posted %v", p.form)
	}

	// The Go decrypter: the Card the hub's ECML writer makes.
	if dec, want := decryptInGo(t, ed, f.p.signer), goCard(t, card); dec != want {
		t.Errorf("decrypted in Go:\n%s\nwant\n%s", dec, want)
	}
	// xmlsec1, the C reference implementation.
	dir := t.TempDir()
	in := filepath.Join(dir, "card.xml")
	os.WriteFile(in, []byte("<Ecom><Payment>"+ed+"</Payment></Ecom>"), 0o600)
	key := filepath.Join("..", "..", "saml", "testdata", "keys", "issuer-rsa.key.pem")
	out, err := exec.Command(xmlsec, "--decrypt", "--privkey-pem", key, in).CombinedOutput()
	if err != nil {
		t.Fatalf("xmlsec1 --decrypt: %v\n%s", err, out)
	}
	xd := etree.NewDocument()
	if err := xd.ReadFromBytes(out); err != nil {
		t.Fatalf("xmlsec1's output: %v\n%s", err, out)
	}
	if dec, want := elementString(t, xd.FindElement("/Ecom/Payment/Card")), goCard(t, card); dec != want {
		t.Errorf("decrypted by xmlsec1:\n%s\nwant\n%s", dec, want)
	}
	// The layout saml.Encryptor makes, ciphertexts aside.
	goED := browserEncryptedCard(t, route["encryption_certificate"].(string), issuerID)
	if a, b := cipherValues.ReplaceAllString(ed, "<xenc:CipherValue/>"), cipherValues.ReplaceAllString(goED, "<xenc:CipherValue/>"); a != b {
		t.Errorf("the script's EncryptedData:\n%s\nsaml.Encryptor's:\n%s", a, b)
	}

	// The merchant's server sends it on; the provider approves.
	body := map[string]any{"fields": approveFields("15000"), "encrypted": map[string]string{"card": ed},
		"routing": map[string]string{"card_bin": p.form.Get("card_bin"), "card_last4": p.form.Get("card_last4")}}
	code, res := f.facadeCall(t, "/v1/card/approve", "browser-1", body)
	if code != 200 || res["status"] != "Success" || res["provider"] != issuerID {
		t.Fatalf("approve: %d %v", code, res)
	}
	if len(f.p.seen) != 1 || f.p.seen[0] != "411111******1111" {
		t.Fatalf("the provider did not get the card: %v", f.p.seen)
	}
	if logs := f.h.logs.String(); ecml.ContainsPAN(logs) {
		t.Error("a card number in the hub's log")
	}
	testutil.AssertNoPANInSQLite(t, f.h.dbPath)
}

// browserChecks runs the script's own checks in the loaded checkout page:
// its plaintext against the hub's ECML writer, its refusals, and the
// browser's refusal of a script whose hash is not the published one.
func browserChecks(t *testing.T, ctx context.Context, f *fed, route map[string]any, card map[string]string) {
	t.Run("card element", func(t *testing.T) {
		// The plaintext is byte for byte the hub's, escaping included.
		for _, fields := range []map[string]string{
			card,
			{"Ecom_Payment_Card_Number": "5555555555554444", "Ecom_Payment_Card_Name": `Kim & "Lee" <'x'>`, "Ecom_Payment_Card_Type": "MC",
				"Ecom_Payment_Card_Protocol": "set", "Ecom_Payment_Card_IssueNumber": "2", "Ecom_Payment_Card_ExpDate_Day": "31",
				"Ecom_Payment_Card_ExpDate_Month": "01", "Ecom_Payment_Card_ExpDate_Year": "2031", "Ecom_Payment_Card_ValidFrom_Month": "02",
				"Ecom_Payment_Card_ValidFrom_Year": "2024"},
			{"Ecom_Payment_Card_Number": "4111111111111"},
		} {
			arg, _ := json.Marshal(fields)
			js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`KECIS.cardElement(`+string(arg)+`)`))
			if err != nil {
				t.Fatal(err)
			}
			if want := goCard(t, fields); js != want {
				t.Errorf("script: %s\nhub:    %s", js, want)
			}
		}
	})
	t.Run("refusals name the field, never the value", func(t *testing.T) {
		r, _ := json.Marshal(route)
		for _, c := range []struct{ fields, route, want string }{
			{`{"Ecom_Payment_Card_Number":"4111111111111111","Ecom_Payment_Card_Nmber":"4111111111111111"}`, string(r), "Ecom_Payment_Card_Nmber is not an ECML card field"},
			{`{"Ecom_Payment_Card_Number":"4111-1111-1111"}`, string(r), "Ecom_Payment_Card_Number must be 13 to 19 digits"},
			{`{"Ecom_Payment_Card_Number":"4111111111111111","Ecom_Payment_Card_Name":"a\u0007b"}`, string(r), "Ecom_Payment_Card_Name holds a character"},
			{`{"Ecom_Payment_Card_Number":"4111111111111111"}`, `{"recipient":"x","encryption_certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}`, "the encryption certificate"},
			{`{"Ecom_Payment_Card_Number":"4111111111111111"}`, `{"encryption_certificate":"x"}`, "route.recipient"},
		} {
			msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](
				`KECIS.encryptCard(`+c.fields+`, `+c.route+`).then(() => "resolved", e => String(e.message))`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "4111") {
				t.Errorf("%s: %q, want %q and no card digits", c.fields, msg, c.want)
			}
		}
	})
	t.Run("integrity", func(t *testing.T) {
		// A script whose bytes are not the published ones does not run.
		bad := strings.Replace(webcrypto.Integrity(), "sha384-", "sha384-A", 1)[:len(webcrypto.Integrity())]
		res, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`new Promise(resolve => {
			const s = document.createElement("script");
			s.src = %q + "?again"; s.integrity = %q; s.crossOrigin = "anonymous";
			s.onload = () => resolve("ran"); s.onerror = () => resolve("blocked");
			document.head.appendChild(s);
		})`, f.h.url+webcrypto.Path, bad), chromedp.EvalAwaitPromise))
		if err != nil || res != "blocked" {
			t.Errorf("a script with another hash: %q %v", res, err)
		}
	})
}
