package registry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml/metadata"
)

// ErrConformance refuses an approval that lacks a passing conformance
// report, or a report that does not open the registration gate.
var ErrConformance = errors.New("registry: conformance")

// ErrInvalidReport: what was submitted is not a conformance report of the
// participant (or carries a card number in clear).
var ErrInvalidReport = errors.New("registry: invalid conformance report")

// reportSkew is how far in the future a report's end may lie (clocks).
const reportSkew = 5 * time.Minute

// KindConformance is the audit kind of a recorded conformance report.
const KindConformance = "participant.conformance"

// ConformanceReport is what the registration gate reads of a conformance
// suite's report.json (conformance.Report): the fields that decide, not
// the whole model, so that the registry does not depend on the suite.
type ConformanceReport struct {
	Suite       string    `json:"suite"`
	Version     string    `json:"version"`
	Plan        string    `json:"plan"`
	Participant string    `json:"participant"`
	Roles       []string  `json:"roles"`
	RunID       string    `json:"runId"`
	Finished    time.Time `json:"finished"`
	Passed      bool      `json:"passed"`
	// Partial: the run was limited to some modules (--module).
	Partial bool           `json:"partial"`
	Summary map[string]int `json:"summary"`
	// Keys are the SHA-256 fingerprints of the certificates the run
	// tested (signing, encryption, TLS).
	Keys []string `json:"keys"`
}

// ConformanceGate is the registration gate (issue 9, item 8): with
// Required, an operator may approve a participant only after recording a
// passing report of its plan, made with the keys it registered, no older
// than MaxAge.
type ConformanceGate struct {
	Required bool
	MaxAge   time.Duration // 0: 90 days
}

func (g ConformanceGate) maxAge() time.Duration {
	if g.MaxAge > 0 {
		return g.MaxAge
	}
	return 90 * 24 * time.Hour
}

// RecordConformance checks a report against the participant and stores it
// whole in the audit log (the report's evidence is scrubbed by the suite;
// the record is append-only, as certification evidence should be). A
// failing report is recorded too — the history is the operator's — but
// the answer says it does not open the gate.
func (r *Registry) RecordConformance(ctx context.Context, entityID, operator string, report []byte) (*ConformanceReport, error) {
	p, err := r.Store.GetParticipant(ctx, entityID)
	if err != nil {
		return nil, err
	}
	rep, err := ParseConformanceReport(report)
	if err != nil {
		return nil, err
	}
	if rep.Participant != entityID {
		return nil, fmt.Errorf("%w: the report certifies %q, not %q", ErrInvalidReport, rep.Participant, entityID)
	}
	if ecml.ContainsPAN(string(report)) {
		// The suite masks every card number; this report was not left as
		// it wrote it. Nothing of it is kept.
		return nil, fmt.Errorf("%w: it carries a card number in clear", ErrInvalidReport)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, report); err != nil {
		return nil, fmt.Errorf("%w: report.json: %v", ErrInvalidReport, err)
	}
	// Recorded directly, not through audit(): the gate depends on this
	// record, so losing it is the caller's error, not a log line.
	d, _ := json.Marshal(map[string]any{
		"plan": rep.Plan, "passed": rep.Passed, "partial": rep.Partial, "summary": rep.Summary, "run_id": rep.RunID,
		"finished": rep.Finished, "suite_version": rep.Version, "report": json.RawMessage(compact.Bytes()),
	})
	if err := r.Store.AppendAudit(ctx, &store.AuditRecord{Time: r.now(), Kind: KindConformance, Actor: operator, EntityID: p.EntityID, Detail: string(d)}); err != nil {
		return nil, fmt.Errorf("registry: record the conformance report: %w", err)
	}
	r.log().InfoContext(ctx, "registry", "action", KindConformance, "actor", operator, "entity", p.EntityID, "plan", rep.Plan, "passed", rep.Passed, "run_id", rep.RunID)
	if r.OnEvent != nil {
		r.OnEvent(KindConformance)
	}
	err = r.gateOpens(p, rep)
	if err != nil && p.Pending != nil {
		// A report for a pending change (a new role, say) opens its gate,
		// not the active version's.
		if next, _, derr := r.describe(p.Pending.Metadata); derr == nil && r.gateOpens(next, rep) == nil {
			return rep, nil
		}
	}
	return rep, err
}

// ParseConformanceReport reads report.json.
func ParseConformanceReport(b []byte) (*ConformanceReport, error) {
	var rep ConformanceReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%w: report.json: %v", ErrInvalidReport, err)
	}
	if rep.Participant == "" || rep.Plan == "" || rep.Finished.IsZero() || rep.Summary == nil {
		return nil, fmt.Errorf("%w: not a conformance report (participant, plan, finished and summary are required)", ErrInvalidReport)
	}
	return &rep, nil
}

// gateOpens says whether rep lets p be approved.
func (r *Registry) gateOpens(p *store.Participant, rep *ConformanceReport) error {
	now := r.now()
	switch {
	case !rep.Passed || rep.Summary["FAILED"] > 0:
		return fmt.Errorf("%w: the %s plan did not pass (%d FAILED)", ErrConformance, rep.Plan, rep.Summary["FAILED"])
	case rep.Partial:
		return fmt.Errorf("%w: the run was limited to some modules (--module): run the whole plan", ErrConformance)
	case now.Sub(rep.Finished) > r.Gate.maxAge():
		return fmt.Errorf("%w: the report of %s is older than %s: run the suite again", ErrConformance, rep.Finished.Format(time.DateOnly), r.Gate.maxAge())
	case rep.Finished.After(now.Add(reportSkew)):
		return fmt.Errorf("%w: the report ends in the future (%s)", ErrConformance, rep.Finished.Format(time.RFC3339))
	}
	// Plans are named after the role they certify (conformance.Plans).
	if !slices.Contains(p.Roles, store.Role(rep.Plan)) {
		return fmt.Errorf("%w: the report ran the %s plan; the participant registered the roles %v", ErrConformance, rep.Plan, p.Roles)
	}
	var untested []string
	for _, k := range p.Keys {
		if !slices.Contains(rep.Keys, k.Fingerprint) {
			untested = append(untested, string(k.Use)+" "+k.Fingerprint[:16]+"…")
		}
	}
	if len(untested) > 0 {
		return fmt.Errorf("%w: the run did not test the registered keys %s (the metadata changed since): run the suite again", ErrConformance, strings.Join(untested, ", "))
	}
	return nil
}

// checkGate is the approval's gate: the latest recorded report decides.
func (r *Registry) checkGate(ctx context.Context, p *store.Participant) error {
	if !r.Gate.Required {
		return nil
	}
	rep, err := r.latestReport(ctx, p.EntityID, time.Time{}, "")
	if err != nil {
		return err
	}
	if rep == nil {
		return fmt.Errorf("%w: this hub requires a passing conformance report before approval: run `kecis conformance run` against %s, then `kecis federation conformance %s report.json`", ErrConformance, p.EntityID, p.EntityID)
	}
	return r.gateOpens(p, rep)
}

// checkChangeGate is the registration gate applied to a pending change
// (KECIS §12.6): when the change adds roles or offered services, approval
// needs a passing report recorded after the change was requested, made
// with the keys of the new version — for each added role, the latest such
// report of that role's plan; for services added to the same roles, the
// latest such report of any of its plans.
func (r *Registry) checkChangeGate(ctx context.Context, next *store.Participant, d *metadata.Diff, requested time.Time) error {
	if !r.Gate.Required || (len(d.AddedRoles) == 0 && len(d.AddedServices) == 0) {
		return nil
	}
	what := "services " + strings.Join(d.AddedServices, ", ")
	if len(d.AddedServices) == 0 {
		what = "roles"
	}
	plans := []string{""}
	if len(d.AddedRoles) > 0 {
		plans = plans[:0]
		for _, role := range d.AddedRoles {
			plans = append(plans, string(role))
		}
	}
	for _, plan := range plans {
		rep, err := r.latestReport(ctx, next.EntityID, requested, plan)
		if err != nil {
			return err
		}
		if rep == nil {
			of := ""
			if plan != "" {
				of = " of the " + plan + " plan"
			}
			return fmt.Errorf("%w: the change adds %s: this hub requires a passing conformance report%s recorded after the change was requested (%s): run `kecis conformance run` against the new metadata, then `kecis federation conformance %s report.json`",
				ErrConformance, what, of, requested.Format(time.RFC3339), next.EntityID)
		}
		if err := r.gateOpens(next, rep); err != nil {
			return err
		}
	}
	return nil
}

// latestReport returns the latest conformance report recorded for
// entityID after since (any time when zero), of the plan when plan
// is not ""; nil when none is.
func (r *Registry) latestReport(ctx context.Context, entityID string, since time.Time, plan string) (*ConformanceReport, error) {
	recs, err := r.Store.ListAudit(ctx, store.AuditFilter{EntityID: entityID, Kind: KindConformance, Since: since})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b *store.AuditRecord) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	for _, rec := range recs {
		if !since.IsZero() && !rec.Time.After(since) {
			continue // strictly after: a report of the same instant may predate the change
		}
		var d struct {
			Plan   string          `json:"plan"`
			Report json.RawMessage `json:"report"`
		}
		if err := json.Unmarshal([]byte(rec.Detail), &d); err != nil {
			return nil, fmt.Errorf("registry: the recorded conformance report %d: %w", rec.ID, err)
		}
		if plan != "" && d.Plan != plan {
			continue
		}
		return ParseConformanceReport(d.Report)
	}
	return nil, nil
}
