package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/internal/testutil"
)

// chromiumPolicies is where Chromium on Debian reads its managed policies.
const chromiumPolicies = "/etc/chromium/policies/managed"

// certBrowser is a tab of a headless Chromium whose NSS database (under
// a HOME of its own) holds the client certificate p12, which a managed
// AutoSelectCertificateForUrls policy lets it present without asking to
// every https://127.0.0.1 server that asks for one of the issuer's CA
// (the coordinator's recipe in the session's contract). The policy file is
// removed when the test ends. Not root, or certutil or pk12util missing
// (Debian's libnss3-tools): the test skips, and fails under CI=true.
func certBrowser(t *testing.T, timeout time.Duration, p12, p12Password, caName string) context.Context {
	t.Helper()
	chromium := testutil.RequireTool(t, "chromium", "chromium")
	certutil := testutil.RequireTool(t, "certutil", "libnss3-tools")
	pk12util := testutil.RequireTool(t, "pk12util", "libnss3-tools")
	if os.Geteuid() != 0 {
		if testutil.CI() {
			t.Fatal("CI=true but not root: the test writes Chromium's managed policy under " + chromiumPolicies)
		}
		t.Skip("not root: the test writes Chromium's managed policy under " + chromiumPolicies)
	}
	home := t.TempDir()
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{certutil, "-N", "-d", "sql:" + nss, "--empty-password"},
		{pk12util, "-i", p12, "-d", "sql:" + nss, "-W", p12Password}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(cmd[0]), err, out)
		}
	}
	rule, _ := json.Marshal(map[string]any{"pattern": "https://127.0.0.1", "filter": map[string]any{"ISSUER": map[string]string{"CN": caName}}})
	policy, _ := json.Marshal(map[string]any{"AutoSelectCertificateForUrls": []string{string(rule)}})
	if err := os.MkdirAll(chromiumPolicies, 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	file := filepath.Join(chromiumPolicies, "kecis-demo-test-"+hex.EncodeToString(b)+".json")
	if err := os.WriteFile(file, policy, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.Env("HOME="+home), chromedp.UserDataDir(filepath.Join(home, "profile")), chromedp.WindowSize(390, 844))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx
}

// TestCardAuthInTheBrowser: two purchases at the demo shop's card-company
// checkout in headless Chromium, each ending in a purchase approved with
// the issuer's AAV (KECIS §15.7, the acceptance): below the
// threshold with the card's password typed on the issuer's randomised
// on-screen keypad, the issuer's page on a phone's 390×844 screen (no
// wider than it); at 150,000 KRW with the password and the cardholder's
// TLS client certificate, which Chromium presents on the page's mutual-TLS
// endpoint from its NSS database, chosen by policy. The issuer's ledger
// records both as authenticated by the AAV.
func TestCardAuthInTheBrowser(t *testing.T) {
	testutil.RequireTool(t, "chromium", "chromium")
	d, _, _ := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	c := d.Cards[0]
	if c.P12 == "" {
		t.Fatal("the first test card has no client certificate")
	}
	ctx := certBrowser(t, 60*time.Second, c.P12, c.P12Password, d.Issuer.CACertificate().Subject.CommonName)

	pay := func(product string, phone bool) (approval, method string) {
		t.Helper()
		var actions []chromedp.Action[chromedp.Void]
		if phone {
			actions = append(actions, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		}
		actions = append(actions, chromedp.Navigate(d.ShopURL+"/"), chromedp.Click(chromedp.ID("product-"+product)),
			chromedp.Click(chromedp.ID("pay-cardauth")), chromedp.WaitVisible(chromedp.ID("number")),
			chromedp.SendKeys(chromedp.ID("number"), c.PAN.Reveal()))
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("to the issuer's page: %v", err)
		}
		if phone {
			width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			screen, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.innerWidth`))
			if err != nil || screen != 390 || width > screen {
				t.Errorf("the issuer's page: %.0f px wide on a %.0f px screen (%v)", width, screen, err)
			}
		}
		// The password on the on-screen keypad, whose keys are shuffled.
		for _, digit := range c.AuthPassword {
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.Search(fmt.Sprintf(`//div[@id="keypad"]/button[text()="%c"]`, digit)))); err != nil {
				t.Fatalf("keypad %c: %v", digit, err)
			}
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action$="/card"] button[type=submit]`))); err != nil {
			t.Fatal(err)
		}
		if product == "keyboard" {
			cert := chromedp.CSS(`form[action$="` + CardAuthCertPath + `"] button`)
			if err := chromedp.Do(ctx, chromedp.WaitVisible(cert), chromedp.Click(cert)); err != nil {
				t.Fatalf("the certificate: %v", err)
			}
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("outcome"))); err != nil {
			t.Fatalf("the shop's outcome: %v", err)
		}
		state, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("outcome"), "data-state"))
		if err != nil || state.Value != "approved" {
			text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("the shop's outcome %q (%v):\n%s", state.Value, err, text)
		}
		if approval, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("approval"))); err != nil {
			t.Fatal(err)
		}
		if method, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("method"))); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(approval), method
	}

	n, method := pay("mug", true)
	if a := ledgerApproval(t, d, c, n); a.CardholderAuth != issuer.AuthValue || a.Amount != krw(shopPrice) || !strings.Contains(method, "password") {
		t.Fatalf("below the threshold: %q, the issuer's approval %+v", method, a)
	}
	n, method = pay("keyboard", false)
	if a := ledgerApproval(t, d, c, n); a.CardholderAuth != issuer.AuthValue || a.Amount != krw(150_000) || !strings.Contains(method, "certificate") {
		t.Fatalf("at the threshold: %q, the issuer's approval %+v", method, a)
	}
}
