package conformance

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/kecis/kecis/internal/buildinfo"
	"github.com/kecis/kecis/saml"
)

// Config of a run.
type Config struct {
	Target  *Target
	Profile *Profile
	Tester  *Tester
	// Hub is the hub ordinary requests go through; nil sends everything
	// directly (a participant in test mode without a federation).
	Hub *HubConfig
	// Plan names the plan; empty: the profile's, else discovered from the
	// metadata's roles.
	Plan string
	// Modules, when set, runs only these modules of the plan (the others
	// are reported SKIPPED).
	Modules []string
	// RequestTimeout bounds one exchange (default: the profile's, else 20s).
	RequestTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnEvent receives progress as the run goes (the CLI's live output).
	OnEvent func(Event)
	// RunID makes order IDs and idempotency keys unique; default random.
	RunID string
}

// EventKind says what an Event reports.
type EventKind string

const (
	EventPlanStart   EventKind = "plan-start"
	EventModuleStart EventKind = "module-start"
	EventCondition   EventKind = "condition"
	EventModuleDone  EventKind = "module-done"
	EventPlanDone    EventKind = "plan-done"
)

// Event is one step of a run's progress.
type Event struct {
	Kind      EventKind
	Plan      *Plan
	Module    *ModuleReport
	Condition *ConditionReport
	Report    *Report
}

// ConditionTimeout bounds one condition.
const ConditionTimeout = 2 * time.Minute

// Run runs a plan against the participant and returns the report. It
// fails only when the run cannot start (no plan, no tester keys, or — with
// a hub — a tester the hub does not know: ErrTesterNotReady); what the
// participant gets wrong is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Target == nil || cfg.Profile == nil || cfg.Tester == nil {
		return nil, errors.New("conformance: a run needs the target's metadata, a profile and the tester's keys")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkTester(ctx, cfg.Hub, cfg.Tester, cfg.Now); err != nil {
		return nil, err
	}
	name := cfg.Plan
	if name == "" {
		name = cfg.Profile.Plan
	}
	plan, err := SelectPlan(cfg.Target.Descriptor, name)
	if err != nil {
		return nil, err
	}
	if err := plan.validate(); err != nil {
		return nil, err
	}
	for _, m := range cfg.Modules {
		if plan.Module(m) == nil {
			return nil, fmt.Errorf("conformance: plan %s has no module %q (it has %v)", plan.Name, m, plan.ModuleNames())
		}
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = time.Duration(cfg.Profile.Timeouts.Request)
	}
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	second, err := cfg.Profile.LoadIdentity("second")
	if err != nil {
		return nil, err
	}
	outsider, err := cfg.Profile.LoadIdentity("outsider")
	if err != nil {
		return nil, err
	}
	env := &Env{Target: cfg.Target, Profile: cfg.Profile, Tester: cfg.Tester, Second: second, Outsider: outsider, Hub: cfg.Hub, RunID: cfg.RunID,
		plan: plan, now: cfg.Now, timeout: timeout, passed: map[string]bool{}}
	env.init()
	defer env.close()
	emit := func(ev Event) {
		if cfg.OnEvent != nil {
			cfg.OnEvent(ev)
		}
	}
	rep := &Report{Suite: "KECIS conformance suite", Version: buildinfo.Version(), Profile: "KECIS 1.0",
		Plan: plan.Name, PlanTitle: plan.Title, Participant: cfg.Target.EntityID(), MetadataSource: cfg.Target.Source,
		Tester: cfg.Tester.EntityID, RunID: env.RunID, Started: cfg.Now().UTC(), Summary: map[Result]int{}, Partial: len(cfg.Modules) > 0}
	if rep.Participant == "" {
		rep.Participant = cfg.Profile.Participant
	}
	if ed := cfg.Target.Descriptor; ed != nil {
		for _, r := range ed.Roles {
			rep.Roles = append(rep.Roles, string(r))
		}
		for _, k := range slices.Concat(ed.Keys, ed.TLSKeys) {
			if k.Certificate != nil {
				if fp := saml.Fingerprint(k.Certificate); !slices.Contains(rep.Keys, fp) {
					rep.Keys = append(rep.Keys, fp)
				}
			}
		}
	}
	if cfg.Hub != nil {
		rep.Hub = cfg.Hub.URL
	}
	emit(Event{Kind: EventPlanStart, Plan: plan, Report: rep})
	for _, m := range plan.Modules {
		mr := &ModuleReport{Name: m.Name, Title: m.Title, Description: m.Description, Summary: map[Result]int{}}
		emit(Event{Kind: EventModuleStart, Plan: plan, Module: mr})
		skip := ""
		switch {
		case len(cfg.Modules) > 0 && !slices.Contains(cfg.Modules, m.Name):
			skip = "not selected for this run"
		case m.Name != "metadata" && cfg.Target.Descriptor == nil:
			skip = "the participant's metadata could not be read"
		case m.Applies != nil:
			if ok, why := m.Applies(env); !ok {
				skip = why
			}
		}
		mr.Skipped = skip
		state := map[string]any{}
		for _, c := range m.Conditions {
			cr := runCondition(ctx, env, plan, c, state, skip)
			mr.Conditions = append(mr.Conditions, cr)
			mr.Summary[cr.Result]++
			rep.Summary[cr.Result]++
			if cr.Result == Passed || cr.Result == Warning {
				env.mu.Lock()
				env.passed[c.ID] = true
				env.mu.Unlock()
			}
			emit(Event{Kind: EventCondition, Plan: plan, Module: mr, Condition: cr})
		}
		rep.Modules = append(rep.Modules, mr)
		emit(Event{Kind: EventModuleDone, Plan: plan, Module: mr})
	}
	// What was recorded before a one-time secret was learnt is scrubbed
	// of it too.
	env.rescrub(rep)
	rep.Finished = cfg.Now().UTC()
	rep.Passed = rep.Summary[Failed] == 0
	rep.Exchanges = len(env.Exchanges())
	emit(Event{Kind: EventPlanDone, Plan: plan, Report: rep})
	return rep, nil
}

func runCondition(ctx context.Context, env *Env, plan *Plan, cond *Condition, state map[string]any, skip string) (cr *ConditionReport) {
	sev := plan.severity(cond)
	cr = &ConditionReport{ID: cond.ID, Title: cond.Title, Clauses: cond.Clauses, Severity: sev}
	if skip == "" && cond.Service != "" && !env.Declares(cond.Service) {
		skip = "the participant's metadata does not declare " + cond.Service
	}
	if skip == "" {
		for _, n := range cond.Needs {
			if !env.passedOrWarned(n) {
				skip = "needs " + n + ", which did not pass"
				break
			}
		}
	}
	if skip != "" {
		cr.Result, cr.Message = Skipped, skip
		return cr
	}
	cctx, cancel := context.WithTimeout(ctx, ConditionTimeout)
	defer cancel()
	c := &C{Env: env, ctx: cctx, cond: cond, state: state}
	start := time.Now()
	defer func() {
		cr.Duration = time.Since(start).Round(time.Millisecond)
		cr.Evidence = c.evidence
		if p := recover(); p != nil {
			cr.Result = Review
			cr.Message = env.scrub(fmt.Sprintf("the suite failed while running this check (not the participant's fault): %v\n%s", p, debug.Stack()))
		}
	}()
	err := cond.Run(c)
	cr.Result, cr.Message = resultOf(err, sev)
	cr.Message = env.scrub(cr.Message)
	return cr
}
