package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kecis/kecis/examples/demo"
)

// TestSettleAndTestCards: the guide lists every test card with its
// outcome and how to settle; `kecis-demo --settle --dir DIR` ends the
// issuer's business day of the demo running in DIR (exit 0, what it
// settled), and fails (exit 1) where no demo runs.
func TestSettleAndTestCards(t *testing.T) {
	dir := t.TempDir()
	d, out := startFederationDemo(t, dir)
	guide := out.String()
	for _, c := range d.Cards {
		if !strings.Contains(guide, c.PAN.Reveal()) || !strings.Contains(guide, c.Result) {
			t.Errorf("the guide does not list the %s card:\n%s", c.Result, guide)
		}
	}
	if !strings.Contains(guide, "expired            ") || !strings.Contains(guide, "problem invalid-fields") {
		t.Errorf("the guide does not say how the expired card is refused:\n%s", guide)
	}
	if !strings.Contains(guide, "kecis-demo --settle --dir "+dir) {
		t.Errorf("the guide does not say how to settle:\n%s", guide)
	}
	var so, se bytes.Buffer
	if code := run([]string{"--settle", "--dir", dir}, &so, &se); code != 0 || !strings.Contains(so.String(), "business day ended") {
		t.Fatalf("--settle: exit %d\n%s%s", code, so.String(), se.String())
	}
	if d.Clock.Skipped() <= 0 {
		t.Fatal("--settle did not move the issuer's clock")
	}
	so.Reset()
	se.Reset()
	if code := run([]string{"--settle", "--dir", t.TempDir()}, &so, &se); code != exitFailed || !strings.Contains(se.String(), demo.ManifestFile) {
		t.Fatalf("--settle without a demo: exit %d\n%s%s", code, so.String(), se.String())
	}
}
