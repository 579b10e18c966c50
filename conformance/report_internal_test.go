package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	e := &Env{scrubber: newScrubber([]string{"pw-1234"})}
	mk := func(id string, err error, sev Severity) *ConditionReport {
		r, msg := resultOf(err, sev)
		return &ConditionReport{ID: id, Title: "check " + id, Clauses: []string{"KECIS §5.1"}, Severity: sev, Result: r, Message: e.scrub(msg),
			Duration: 3 * time.Millisecond, Evidence: []Evidence{{Label: "answer", Kind: "xml", Content: e.scrub(`<a Number="4111111111111111">pw-1234</a><script>alert(1)</script>`)}}}
	}
	m := &ModuleReport{Name: "security", Title: "Security", Summary: map[Result]int{}, Conditions: []*ConditionReport{
		mk("security.a", nil, SeverityFailure),
		mk("security.b", errors.New("accepted <script>alert(1)</script> card 4111111111111111"), SeverityFailure),
		mk("security.c", errors.New("soft"), SeverityWarning),
		mk("security.d", Skip("not declared"), SeverityFailure),
		mk("security.e", errors.New("judge"), SeverityInfo),
	}}
	r := &Report{Suite: "KECIS conformance suite", Plan: "issuer", PlanTitle: "Card issuer", Participant: "https://issuer.example/kecis",
		Started: now, Finished: now.Add(time.Second), Summary: map[Result]int{}, Modules: []*ModuleReport{m}}
	for _, c := range m.Conditions {
		m.Summary[c.Result]++
		r.Summary[c.Result]++
	}
	r.Passed = r.Summary[Failed] == 0
	return r
}

func TestResultOfSeverity(t *testing.T) {
	r := sampleReport()
	want := map[string]Result{"security.a": Passed, "security.b": Failed, "security.c": Warning, "security.d": Skipped, "security.e": Review}
	for id, res := range want {
		if got := r.Condition(id).Result; got != res {
			t.Errorf("%s: %s, want %s", id, got, res)
		}
	}
	if r.Passed {
		t.Error("a report with a FAILED check passes")
	}
}

func TestReportFormats(t *testing.T) {
	r := sampleReport()
	var j, x, h bytes.Buffer
	if err := r.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || back.Condition("security.b").Result != Failed {
		t.Fatalf("report.json does not read back: %v", err)
	}
	var ju junitSuites
	if err := xml.Unmarshal(x.Bytes(), &ju); err != nil {
		t.Fatal(err)
	}
	if ju.Tests != 5 || ju.Failures != 1 || ju.Skipped != 1 || len(ju.Suites) != 1 || ju.Suites[0].Cases[1].Failure == nil {
		t.Fatalf("junit: %+v", ju)
	}
	for name, b := range map[string]string{"json": j.String(), "junit": x.String(), "html": h.String()} {
		if strings.Contains(b, "4111111111111111") || strings.Contains(b, "pw-1234") {
			t.Errorf("%s carries a secret", name)
		}
		if !strings.Contains(b, "411111******1111") || !strings.Contains(b, "[REDACTED]") {
			t.Errorf("%s does not show the masked values", name)
		}
	}
	html := h.String()
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Error("report.html does not escape what participants sent")
	}
	for _, want := range []string{"FAIL — 1 check(s) failed", `id="c-security.b"`, "KECIS §5.1", "badge failed", "badge review", "<details open>"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, forbidden := range []string{"<link", "<script", "src=\"http", "@import"} {
		if strings.Contains(html, forbidden) {
			t.Errorf("report.html is not self-contained: %q", forbidden)
		}
	}
}
