package demo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/internal/testutil"
)

// browser is a tab of a headless Chromium 360 px wide, a small phone,
// started at once (chromedp.NewContext of it opens another tab of the same
// browser) and closed when the test ends; its context ends after timeout.
// extra are more of Chromium's options.
func browser(t *testing.T, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	chromium := testutil.RequireTool(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")), chromedp.WindowSize(360, 740))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first run starts the browser, for as long as tab lives.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx
}

// TestPagesFitAPhone opens every HTML page of the demo that a GET shows —
// the issuer's admin page, with approvals and texts in it, the telecom's
// phone list and a phone's inbox, the demo shop's checkout, bank A's login
// and its 2-WAY pages' login (TestTwoWayInTheBrowser checks the name
// check's page) — in headless
// Chromium 360 px wide, a small phone: each declares a viewport, and none
// is wider than the screen (wide tables scroll within the page). The PG's
// amount-authentication page takes a POST only (TestAmountAuthInTheBrowser
// goes through it; connectors/amountauth tests it 360 px wide).
func TestPagesFitAPhone(t *testing.T) {
	testutil.RequireTool(t, "chromium", "chromium")
	d, a, _ := startForMerchants(t, Config{RelayTimeout: 3 * time.Second})
	// The browser closes first (cleanups run last first): a connection it
	// opened ahead would hold the demo's servers' shutdown.
	ctx := browser(t, 60*time.Second)
	c := a.m.TestCards[0]
	if _, out := a.call(0, "approve", "page-1", payFields("PAGE-1", c, 15000), nil); out["status"] != "Success" {
		t.Fatalf("approve: %s", answer(out))
	}
	phone := strings.ReplaceAll(c.Phone, "-", "")
	pages := []string{d.IssuerNative + "/admin", d.TelecomURL + "/phones", d.TelecomURL + "/phones/" + phone, d.ShopURL + "/",
		d.Banks[0].URL + "/login", d.Banks[0].TwoWayURL}
	for _, u := range pages {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(u),
			chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		viewport, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('meta[name=viewport]') || {}).content || ""`))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		screen, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.innerWidth`))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !strings.Contains(viewport, "width=device-width") {
			t.Errorf("%s: viewport %q", u, viewport)
		}
		if screen != 360 || width > screen {
			t.Errorf("%s: %.0f px wide on a %.0f px screen", u, width, screen)
		}
	}
}
