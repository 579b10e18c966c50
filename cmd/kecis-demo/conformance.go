package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/examples/demo"
)

// errPlansFailed is runConformance's error when a plan did not pass (each
// has had its verdict line already).
var errPlansFailed = errors.New("the demo did not pass every conformance plan")

// runConformance is --conformance (`make conformance`): it runs `kecis
// conformance run` — the suite's own command, the kecis binary at
// kecisBin — for every plan the demo running in dir lists in demo.json
// (its conformance section), each with the test profile the demo wrote,
// the participant's metadata from the hub's Metadata Query endpoint and its
// reports written to DIR/conformance-report/<plan>/ (with run.log, the
// command's output). It prints one verdict line per plan and fails when a
// plan did not pass, or when no demo runs in dir — saying so rather than
// blaming a plan.
func runConformance(ctx context.Context, w io.Writer, dir, kecisBin string) error {
	m, err := demo.ReadManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no demo is running in %s (no %s): start one with `make run` (kecis-demo --dir %s) in another shell, then run this again",
			dir, demo.ManifestFile, dir)
	}
	if err != nil {
		return err
	}
	if err := demoAnswers(ctx, m); err != nil {
		return fmt.Errorf("the demo of %s does not answer (%w): it is not running any more — start it with `make run`", filepath.Join(dir, demo.ManifestFile), err)
	}
	if len(m.Conformance.Plans) == 0 {
		return fmt.Errorf("the demo running in %s has no conformance tester (it was started with --tester=false): restart it without that flag", dir)
	}
	if kecisBin, err = findKecis(kecisBin); err != nil {
		return err
	}
	fmt.Fprintf(w, "Running %d conformance plans against the demo in %s (hub %s) with %s; output and reports in %s/<plan>/\n",
		len(m.Conformance.Plans), dir, m.HubURL, kecisBin, filepath.Join(dir, demo.ConformanceReportDir))
	start, failed := time.Now(), 0
	for _, p := range m.Conformance.Plans {
		line, ok := runPlan(ctx, kecisBin, p)
		if !ok {
			failed++
		}
		fmt.Fprintln(w, line)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(w, "%d of %d plans passed in %s\n", len(m.Conformance.Plans)-failed, len(m.Conformance.Plans), time.Since(start).Round(100*time.Millisecond))
	if failed > 0 {
		return errPlansFailed
	}
	return nil
}

// runPlan runs one plan with the kecis binary and tells its verdict line:
// PASS or FAIL, what its report counts and where the HTML report is — or,
// when the run could not start, the last line the command printed (a tester
// the hub does not know, say).
func runPlan(ctx context.Context, kecisBin string, p demo.ManifestPlan) (string, bool) {
	start := time.Now()
	head := func(verdict string) string {
		return fmt.Sprintf("%-8s %-4s %6s", p.Plan, verdict, time.Since(start).Round(100*time.Millisecond))
	}
	if err := os.MkdirAll(p.Reports, 0o700); err != nil {
		return head("FAIL") + "  " + err.Error(), false
	}
	// A report of an earlier run must not stand for this one.
	for _, f := range []string{"report.json", "report.html", "junit.xml"} {
		_ = os.Remove(filepath.Join(p.Reports, f))
	}
	logPath := filepath.Join(p.Reports, "run.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return head("FAIL") + "  " + err.Error(), false
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, kecisBin, "conformance", "run", "--target-metadata", p.TargetMetadata, "--profile", p.Profile, "--out", p.Reports)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	runErr := cmd.Run()
	var rep conformance.Report
	b, err := os.ReadFile(filepath.Join(p.Reports, "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		// No report: the run did not start. Its reason is the command's last line.
		return fmt.Sprintf("%s  %s: %s (log: %s)", head("FAIL"), p.Participant, lastLine(logPath, runErr), logPath), false
	}
	var counts []string
	for _, r := range conformance.Results {
		if n := rep.Summary[r]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, r))
		}
	}
	ok := runErr == nil && rep.Passed && rep.Plan == p.Plan
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	line := fmt.Sprintf("%s  %s: %s; %s", head(verdict), p.Participant, strings.Join(counts, ", "), filepath.Join(p.Reports, "report.html"))
	if rep.Plan != p.Plan {
		line += fmt.Sprintf(" (the suite ran plan %s)", rep.Plan)
	}
	return line, ok
}

// lastLine is the last non-empty line of the file at path, or what runErr
// says when it has none.
func lastLine(path string, runErr error) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	if runErr != nil {
		return runErr.Error()
	}
	return "no report was written"
}

// demoAnswers asks the demo hub's operations listener whether it is alive:
// demo.json outlives a demo that was killed.
func demoAnswers(ctx context.Context, m *demo.Manifest) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Addresses.HubOps+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/healthz: HTTP %d", m.Addresses.HubOps, res.StatusCode)
	}
	return nil
}

// findKecis is the kecis binary to run: bin, else the kecis beside this
// program (make builds both into bin/), else the one on the PATH.
func findKecis(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("--kecis: %w (make conformance builds it)", err)
		}
		return bin, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "kecis"); p != exe {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath("kecis")
	if err != nil {
		return "", errors.New("no kecis binary beside kecis-demo nor on the PATH: build it (make build) or name it with --kecis")
	}
	return p, nil
}
