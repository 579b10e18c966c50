package conformance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

// TestReportRendersInChromium opens report.html in headless Chromium (the
// way a person would look at it): the summary is visible on the first
// screen, and the rendered page holds no card number in clear.
func TestReportRendersInChromium(t *testing.T) {
	chromium := testutil.RequireTool(t, "chromium", "chromium")
	dir := t.TempDir()
	if err := sampleReport().WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate("file://"+filepath.Join(dir, "report.html")),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	summaryTop, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.evaluate("//h2[text()='Summary']", document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue.getBoundingClientRect().top`))
	if err != nil {
		t.Fatalf("chromium: summary position: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("chromium: page text: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	if summaryTop <= 0 || summaryTop > 900 {
		t.Errorf("the summary is not on the first screen (top %.0f px)", summaryTop)
	}
	for _, want := range []string{"KECIS conformance report", "Summary", "FAILED", "PASSED"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if ecml.ContainsPAN(text) {
		t.Error("the rendered report shows a card number in clear")
	}
	if len(png) < 10_000 {
		t.Fatalf("screenshot of %d bytes: nothing rendered?", len(png))
	}
	if out := os.Getenv("KECIS_SCREENSHOT_DIR"); out != "" {
		_ = os.WriteFile(filepath.Join(out, "report.png"), png, 0o644)
	}
}
