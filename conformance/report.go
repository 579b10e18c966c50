package conformance

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is a run's result: report.json is this structure.
type Report struct {
	Suite       string   `json:"suite"`
	Version     string   `json:"version"`
	Profile     string   `json:"profile"`
	Plan        string   `json:"plan"`
	PlanTitle   string   `json:"planTitle"`
	Participant string   `json:"participant"`
	Roles       []string `json:"roles,omitempty"`
	// Keys are the SHA-256 fingerprints (hex) of the participant's
	// certificates the run used: a hub's registration gate accepts the
	// report only for the keys it was made with.
	Keys           []string  `json:"keys,omitempty"`
	MetadataSource string    `json:"metadataSource"`
	Tester         string    `json:"tester"`
	Hub            string    `json:"hub,omitempty"`
	RunID          string    `json:"runId"`
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished"`
	Passed         bool      `json:"passed"`
	// Partial: the run was limited to some modules (Config.Modules); a
	// registration gate does not accept it.
	Partial   bool            `json:"partial,omitempty"`
	Summary   map[Result]int  `json:"summary"`
	Exchanges int             `json:"exchanges"`
	Modules   []*ModuleReport `json:"modules"`
}

// ModuleReport is one module's part of the report.
type ModuleReport struct {
	Name        string             `json:"name"`
	Title       string             `json:"title"`
	Description string             `json:"description,omitempty"`
	Skipped     string             `json:"skipped,omitempty"`
	Summary     map[Result]int     `json:"summary"`
	Conditions  []*ConditionReport `json:"conditions"`
}

// ConditionReport is one condition's result.
type ConditionReport struct {
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	Clauses  []string      `json:"clauses"`
	Severity Severity      `json:"severity"`
	Result   Result        `json:"result"`
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"durationNs"`
	Evidence []Evidence    `json:"evidence,omitempty"`
}

// Condition returns the report of condition id (nil when absent).
func (r *Report) Condition(id string) *ConditionReport {
	for _, m := range r.Modules {
		for _, c := range m.Conditions {
			if c.ID == id {
				return c
			}
		}
	}
	return nil
}

// WithResult returns the IDs of the conditions that ended with res.
func (r *Report) WithResult(res Result) []string {
	var out []string
	for _, m := range r.Modules {
		for _, c := range m.Conditions {
			if c.Result == res {
				out = append(out, c.ID)
			}
		}
	}
	return out
}

// WriteJSON writes report.json.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// JUnit XML (the Jenkins/GitLab flavour): one testsuite per module, one
// testcase per condition. FAILED is a failure, SKIPPED skipped; WARNING
// and REVIEW pass with the result in a property and in system-out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMessage   `xml:"failure,omitempty"`
	Skipped    *junitMessage   `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes junit.xml.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "kecis conformance " + r.Plan + " " + r.Participant, Time: seconds(r.Finished.Sub(r.Started))}
	for _, m := range r.Modules {
		s := junitSuite{Name: r.Plan + "." + m.Name, Timestamp: r.Started.Format(time.RFC3339),
			Properties: []junitProperty{{"participant", r.Participant}, {"plan", r.Plan}}}
		var total time.Duration
		for _, c := range m.Conditions {
			total += c.Duration
			tc := junitCase{Name: c.ID, Classname: r.Plan + "." + m.Name, Time: seconds(c.Duration),
				Properties: []junitProperty{{"result", string(c.Result)}, {"severity", string(c.Severity)}, {"clauses", strings.Join(c.Clauses, "; ")}}}
			body := c.Title + "\n" + strings.Join(c.Clauses, "; ")
			if c.Message != "" {
				body += "\n" + c.Message
			}
			switch c.Result {
			case Failed:
				tc.Failure = &junitMessage{Message: firstLine(c.Message), Type: "FAILED", Text: body + "\n" + evidenceText(c)}
				s.Failures++
			case Skipped:
				tc.Skipped = &junitMessage{Message: c.Message}
				s.Skipped++
			case Warning, Review:
				tc.SystemOut = string(c.Result) + ": " + body
			}
			s.Cases = append(s.Cases, tc)
			s.Tests++
		}
		s.Time = seconds(total)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func evidenceText(c *ConditionReport) string {
	var b strings.Builder
	for _, e := range c.Evidence {
		fmt.Fprintf(&b, "--- %s\n%s\n", e.Label, e.Content)
	}
	return b.String()
}

//go:embed report.html.tmpl
var reportHTML string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower": func(r Result) string { return strings.ToLower(string(r)) },
	"join":  strings.Join,
	"count": func(m map[Result]int, r Result) int { return m[r] },
	"ms":    func(d time.Duration) int64 { return d.Milliseconds() },
	"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"open":  func(r Result) bool { return r == Failed || r == Review },
}).Parse(reportHTML))

// WriteHTML writes report.html: one self-contained page (inline styles, no
// script, no external resource) a person reads — the summary, every check
// with its clauses and result, and its evidence.
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, struct {
		*Report
		Results []Result
	}{r, Results})
}

// WriteFiles writes report.json, junit.xml and report.html into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.json": r.WriteJSON, "junit.xml": r.WriteJUnit, "report.html": r.WriteHTML,
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
