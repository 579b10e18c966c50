package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/internal/testutil"
)

// TestConformanceAgainstDemo is `make run` then `make conformance`: a demo
// started as kecis-demo starts it (its tester registered by default), then
// `kecis-demo --conformance`, which runs the real `kecis conformance run`
// (built for the test) with the profiles the demo wrote: every plan passes,
// each with a verdict line, and each writes its HTML report (no card
// number in it) under DIR/conformance-report/<plan>/.
func TestConformanceAgainstDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kecis and runs every plan (-short)")
	}
	kecis := buildKecis(t)
	dir := t.TempDir()
	// A short relay timeout keeps the stalls of the card plans short.
	d, _ := startFederationDemoWith(t, dir, demoOptions{tester: true, relayTimeout: time.Second})
	var out, errs bytes.Buffer
	start := time.Now()
	code := run([]string{"--conformance", "--dir", dir, "--kecis", kecis}, &out, &errs)
	t.Logf("kecis-demo --conformance in %s:\n%s%s", time.Since(start).Round(time.Second), out.String(), errs.String())
	if code != 0 {
		for _, plan := range []string{"issuer", "pg", "hub", "merchant", "bank", "telecom"} {
			b, _ := os.ReadFile(filepath.Join(dir, demo.ConformanceReportDir, plan, "run.log"))
			t.Logf("%s run.log:\n%s", plan, b)
		}
		t.Fatalf("exit %d", code)
	}
	m, err := demo.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var plans []string
	for _, p := range m.Conformance.Plans {
		plans = append(plans, p.Plan)
		if !strings.Contains(out.String(), p.Plan) || !strings.Contains(out.String(), filepath.Join(p.Reports, "report.html")) {
			t.Errorf("no verdict line for %s", p.Plan)
		}
		html, err := os.ReadFile(filepath.Join(p.Reports, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Cards {
			if bytes.Contains(html, []byte(c.PAN.Reveal())) {
				t.Errorf("%s's report.html holds a test card's number", p.Plan)
			}
		}
		if ecml.ContainsPAN(string(html)) {
			t.Errorf("%s's report.html holds a card number", p.Plan)
		}
	}
	if strings.Join(plans, " ") != "issuer pg hub merchant bank telecom" {
		t.Errorf("demo.json lists plans %v", plans)
	}
	if n := strings.Count(out.String(), " PASS "); n != len(plans) {
		t.Errorf("%d PASS lines for %d plans", n, len(plans))
	}
	if !strings.Contains(out.String(), "6 of 6 plans passed") {
		t.Error("no summary line")
	}
}

// TestConformanceWithoutDemo: --conformance says plainly when no demo runs
// in --dir (no demo.json; a demo.json a killed demo left behind), or when
// the demo there has no tester — exit 1, no plan run.
func TestConformanceWithoutDemo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadOps := "http://" + l.Addr().String()
	l.Close()
	liveOps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer liveOps.Close()
	plan := demo.ManifestPlan{Plan: "issuer", Participant: demo.IssuerID, Profile: "conformance/issuer.yaml"}
	for _, c := range []struct {
		name     string
		manifest *demo.Manifest
		want     string
	}{
		{"no demo.json", nil, "no demo is running in"},
		{"a killed demo's demo.json", &demo.Manifest{Addresses: demo.ManifestAddresses{HubOps: deadOps},
			Conformance: demo.ManifestConformance{Plans: []demo.ManifestPlan{plan}}}, "does not answer"},
		{"no tester", &demo.Manifest{Addresses: demo.ManifestAddresses{HubOps: liveOps.URL}}, "has no conformance tester"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.manifest != nil {
				b, err := json.Marshal(c.manifest)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, demo.ManifestFile), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out, errs bytes.Buffer
			if code := run([]string{"--conformance", "--dir", dir, "--kecis", "/nonexistent/kecis"}, &out, &errs); code != exitFailed ||
				!strings.Contains(errs.String(), c.want) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, exitFailed, c.want, out.String(), errs.String())
			}
			if _, err := os.Stat(filepath.Join(dir, demo.ConformanceReportDir)); err == nil {
				t.Error("a plan ran")
			}
		})
	}
}

// buildKecis builds the kecis command into a temporary directory.
func buildKecis(t *testing.T) string {
	t.Helper()
	goTool := testutil.RequireTool(t, "go", "golang-go")
	bin := filepath.Join(t.TempDir(), "kecis")
	start := time.Now()
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/kecis/kecis/cmd/kecis").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kecis: %v\n%s", err, out)
	}
	t.Logf("built kecis in %s", time.Since(start).Round(100*time.Millisecond))
	return bin
}
