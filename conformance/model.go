package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Result is the outcome of one condition.
type Result string

// Results, in the order of the OpenID Foundation suite's vocabulary.
const (
	Passed  Result = "PASSED"
	Failed  Result = "FAILED"
	Warning Result = "WARNING"
	Skipped Result = "SKIPPED"
	// Review: the check ran but its verdict needs a person (or the suite
	// itself could not complete it).
	Review Result = "REVIEW"
)

// Results lists every result, in report order.
var Results = []Result{Passed, Failed, Warning, Skipped, Review}

// Severity is what a failed condition amounts to; the caller (the module
// that lists the condition, or the plan's overrides) sets it.
type Severity string

const (
	// SeverityFailure: a failed condition is FAILED — a MUST of the profile.
	SeverityFailure Severity = "FAILURE"
	// SeverityWarning: a failed condition is WARNING — a SHOULD.
	SeverityWarning Severity = "WARNING"
	// SeverityInfo: a failed condition is REVIEW — a person decides.
	SeverityInfo Severity = "INFO"
)

func (s Severity) onFailure() Result {
	switch s {
	case SeverityWarning:
		return Warning
	case SeverityInfo:
		return Review
	}
	return Failed
}

// Route is how a condition's requests travel.
type Route string

const (
	// ViaHub: through the federation's hub, as members send (direct when
	// the run has no hub).
	ViaHub Route = "hub"
	// Direct: straight to the participant's endpoint with the tester's TLS
	// client certificate (providers admit a registered tester in test mode).
	Direct Route = "direct"
)

// Condition is one check. Run returns nil when the participant passes;
// Skip, Warn or NeedsReview for those outcomes; any other error is a
// failure, reported as the Severity says.
type Condition struct {
	// ID is unique in the suite: "<module>.<name>".
	ID    string
	Title string
	// Clauses are the clauses the condition checks: "KECIS §5.3.1",
	// "SAML core §3.2.2", "RFC 4112 note 27", "XML Encryption 1.1 §5.2.4".
	Clauses  []string
	Severity Severity
	// Service, when set, is the service the condition exercises: when the
	// participant's metadata does not declare it, the condition is SKIPPED.
	Service string
	// Needs lists conditions (IDs) that must have PASSED (or WARNED) in
	// this run; otherwise this one is SKIPPED.
	Needs []string
	Run   func(c *C) error
}

// Module is a sequence of conditions on one subject. Conditions run in
// order and share the module's state (C.Set, C.Get).
type Module struct {
	Name        string
	Title       string
	Description string
	// Applies, when set, decides whether the module runs for this
	// participant; when it does not, every condition is SKIPPED with the
	// reason.
	Applies    func(e *Env) (bool, string)
	Conditions []*Condition
}

// Plan is what a participant of one role profile is certified with.
type Plan struct {
	Name        string
	Title       string
	Description string
	// Roles are the metadata roles the plan certifies, the first the one
	// that selects it.
	Roles   []string
	Modules []*Module
	// Severity overrides the severity of conditions by ID for this plan.
	Severity map[string]Severity
}

// outcome errors a condition returns for results other than failure.
type outcome struct {
	result Result
	msg    string
}

func (o *outcome) Error() string { return string(o.result) + ": " + o.msg }

// Skip ends a condition as SKIPPED: it does not apply (an undeclared
// service, something the profile does not provide).
func Skip(format string, args ...any) error {
	return &outcome{result: Skipped, msg: fmt.Sprintf(format, args...)}
}

// Warn ends a condition as WARNING whatever its severity: the MUST holds,
// a SHOULD does not.
func Warn(format string, args ...any) error {
	return &outcome{result: Warning, msg: fmt.Sprintf(format, args...)}
}

// NeedsReview ends a condition as REVIEW: a person must judge the evidence.
func NeedsReview(format string, args ...any) error {
	return &outcome{result: Review, msg: fmt.Sprintf(format, args...)}
}

// resultOf maps a condition's returned error to its result and message.
func resultOf(err error, sev Severity) (Result, string) {
	if err == nil {
		return Passed, ""
	}
	var o *outcome
	if errors.As(err, &o) {
		return o.result, o.msg
	}
	return sev.onFailure(), err.Error()
}

// C is what a running condition sees: the run's environment, its module's
// shared state, and the evidence it records.
type C struct {
	*Env
	ctx      context.Context
	cond     *Condition
	state    map[string]any
	evidence []Evidence
}

// Context is the condition's context (it carries the condition's deadline).
func (c *C) Context() context.Context { return c.ctx }

// Set keeps a value for later conditions of the same module.
func (c *C) Set(key string, v any) { c.state[key] = v }

// Get returns a value an earlier condition of the module kept.
func (c *C) Get(key string) (any, bool) { v, ok := c.state[key]; return v, ok }

// Note records a line of text as evidence.
func (c *C) Note(format string, args ...any) {
	c.evidence = append(c.evidence, Evidence{Label: "note", Kind: "text", Content: c.scrub(fmt.Sprintf(format, args...))})
}

// Attach records a document as evidence; it is scrubbed of secrets.
func (c *C) Attach(label, kind string, data []byte) {
	c.evidence = append(c.evidence, Evidence{Label: label, Kind: kind, Content: c.scrub(string(data))})
}

// Record attaches an exchange — the request sent and what came back — as
// evidence.
func (c *C) Record(x *Exchange) {
	if x == nil {
		return
	}
	c.evidence = append(c.evidence, x.evidence(c.Env)...)
}

// Evidence is one item a condition recorded: a message, a note.
type Evidence struct {
	Label   string `json:"label"`
	Kind    string `json:"kind"` // "xml", "text"
	Content string `json:"content"`
}

// ModuleNames returns the names of a plan's modules.
func (p *Plan) ModuleNames() []string {
	var out []string
	for _, m := range p.Modules {
		out = append(out, m.Name)
	}
	return out
}

// Module returns the plan's module by name.
func (p *Plan) Module(name string) *Module {
	for _, m := range p.Modules {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (p *Plan) severity(c *Condition) Severity {
	if s, ok := p.Severity[c.ID]; ok {
		return s
	}
	if c.Severity == "" {
		return SeverityFailure
	}
	return c.Severity
}

// validate checks the plan's structure: unique condition IDs prefixed by
// their module's name, clauses on every condition, Needs that name earlier
// conditions.
func (p *Plan) validate() error {
	seen := map[string]bool{}
	for _, m := range p.Modules {
		for _, c := range m.Conditions {
			if !strings.HasPrefix(c.ID, m.Name+".") {
				return fmt.Errorf("conformance: condition %s is not named after its module %s", c.ID, m.Name)
			}
			if seen[c.ID] {
				return fmt.Errorf("conformance: condition %s listed twice in plan %s", c.ID, p.Name)
			}
			if len(c.Clauses) == 0 {
				return fmt.Errorf("conformance: condition %s cites no clause", c.ID)
			}
			if c.Run == nil {
				return fmt.Errorf("conformance: condition %s has no Run", c.ID)
			}
			for _, n := range c.Needs {
				if !seen[n] {
					return fmt.Errorf("conformance: condition %s needs %s, which does not run before it", c.ID, n)
				}
			}
			seen[c.ID] = true
		}
	}
	for id := range p.Severity {
		if !seen[id] {
			return fmt.Errorf("conformance: plan %s overrides the severity of unknown condition %s", p.Name, id)
		}
	}
	return nil
}

// ConditionIDs returns every condition ID of the plan, in run order.
func (p *Plan) ConditionIDs() []string {
	var out []string
	for _, m := range p.Modules {
		for _, c := range m.Conditions {
			out = append(out, c.ID)
		}
	}
	return out
}

func (p *Plan) hasRole(r string) bool { return slices.Contains(p.Roles, r) }
