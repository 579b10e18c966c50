package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/conformance"
)

func init() { registerCommand(newConformanceCmd) }

func newConformanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Certify a participant: run the KECIS conformance suite against it",
		Long: `The KECIS conformance suite (docs/conformance.md): a plan per role profile
(issuer, pg, bank, merchant, hub), made of modules, each a sequence of checks
that cite the clause they check. The suite acts as a registered participant
with the tester role; ordinary requests go through the hub, attacks directly
to the participant.`,
	}
	cmd.AddCommand(newConformanceRunCmd(), newConformanceListCmd())
	return cmd
}

func newConformanceRunCmd() *cobra.Command {
	var (
		o        runOptions
		out      string
		keysOnly bool
	)
	cmd := &cobra.Command{
		Use:   "run --target-metadata FILE|URL --profile FILE",
		Short: "Run a plan against a participant and write report.json, junit.xml and report.html",
		Long: `Runs the plan the participant's metadata selects (its roles), or --plan, with
the test profile's cards, hooks and tester keys. Progress is printed as the
checks run; the reports go to --out. The exit status is 0 only if no check
FAILED (WARNING, SKIPPED and REVIEW do not fail a run); 1 if one did, or if
the run could not start (a profile, key or metadata that cannot be read, a
hub that does not answer); 2 on a usage error (a required flag missing,
flags that do not go together, an unknown --plan or --module).

--target-metadata is a file or a URL — typically the hub's Metadata Query URL,
https://HUB/kecis/metadata/entities/ENTITYID, verified with the hub's signing
certificate from the profile.

--own-hub DIR runs a hub of the suite's own (kecis serve, as a process) for a
participant without a sandbox hub: the participant (its metadata file), the
tester and the profile's second and outsider identities are registered in it
through its API and approved by the suite as its operator; ordinary requests
go through it. Each run starts it with an empty database. Its keys stay in
DIR between runs: configure the participant once to trust
DIR/signing/cert.pem (metadata, statuses) and DIR/tls/cert.pem (the hub's
TLS client); ` + "`kecis conformance run --own-hub DIR --keys-only`" + ` creates them.`,
		Example: `  kecis conformance run --target-metadata pg-metadata.xml --profile pg-profile.yaml --out report
  kecis conformance run --own-hub ./own-hub --keys-only
  kecis conformance run --own-hub ./own-hub --target-metadata pg-metadata.xml --profile pg-profile.yaml -q`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keysOnly {
				return ownHubKeys(cmd.OutOrStdout(), o.ownHub)
			}
			return conformanceRun(cmd, o, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target-metadata", "", "the participant's KECIS metadata: a file or an http(s) URL")
	f.StringVar(&o.profile, "profile", "", "the participant's test profile (YAML; docs/conformance.md)")
	f.StringVar(&o.plan, "plan", "", "the plan to run (default: discovered from the metadata's roles; see kecis conformance list)")
	f.StringVar(&o.hub, "hub", "", "the hub's URL (default: the profile's hub.url); ordinary requests go through it")
	f.StringVar(&o.clientCert, "client-cert", "", "the tester's TLS client certificate (PEM; default: the profile's tester.tls)")
	f.StringVar(&o.clientKey, "client-key", "", "its private key (PEM)")
	f.StringVar(&out, "out", "conformance-report", "directory for report.json, junit.xml and report.html (empty: none)")
	f.StringSliceVar(&o.modules, "module", nil, "run only these modules of the plan (repeatable)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only checks that did not pass, and the summary")
	f.StringVar(&o.ownHub, "own-hub", "", "run a hub of the suite's own (kecis serve) with its keys, database and log in this directory")
	f.BoolVar(&keysOnly, "keys-only", false, "with --own-hub: only create the hub's keys and print what the participant must trust")
	return cmd
}

// ownHubKeys is --keys-only: it creates the own hub's keys in dir and
// prints what the participant must trust.
func ownHubKeys(w io.Writer, dir string) error {
	if dir == "" {
		return usagef("--keys-only goes with --own-hub")
	}
	own := &conformance.OwnHub{Dir: dir}
	if err := own.EnsureKeys(); err != nil {
		return err
	}
	fmt.Fprintf(w, "own hub %s: configure the participant to trust\n  %s (its signing key: metadata, statuses)\n  %s (its TLS certificate: it calls the participant with it)\n",
		conformance.OwnHubEntityID, own.SigningCert(), own.TLSCert())
	return nil
}

// conformanceRun checks the flags, runs the plan until done or
// interrupted, writes the reports to out and answers with the exit
// status: 2 on a usage error, 1 when the run could not start or a check
// FAILED.
func conformanceRun(cmd *cobra.Command, o runOptions, out string) error {
	if o.target == "" || o.profile == "" {
		return usagef("--target-metadata and --profile are required")
	}
	if (o.clientCert == "") != (o.clientKey == "") {
		return usagef("--client-cert and --client-key go together")
	}
	if o.ownHub != "" && o.hub != "" {
		return usagef("--own-hub and --hub exclude each other")
	}
	if o.plan != "" {
		p, err := conformance.PlanByName(o.plan)
		if err != nil {
			return fail(exitUsage, err)
		}
		for _, m := range o.modules {
			if p.Module(m) == nil {
				return usagef("--module %q: plan %s has no such module (it has %s)", m, p.Name, strings.Join(p.ModuleNames(), ", "))
			}
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runConformance(ctx, cmd.OutOrStdout(), o)
	if err != nil {
		return err
	}
	if out != "" {
		if err := rep.WriteFiles(out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "reports: %s/report.html, report.json, junit.xml\n", strings.TrimRight(out, "/"))
	}
	if n := rep.Summary[conformance.Failed]; n > 0 {
		return fail(exitFailed, fmt.Errorf("%d check(s) FAILED", n))
	}
	return nil
}

type runOptions struct {
	target, profile, plan, hub, clientCert, clientKey, ownHub string
	modules                                                   []string
	quiet                                                     bool
	// exe runs `serve` for --own-hub (default: this program).
	exe string
}

func runConformance(ctx context.Context, w io.Writer, o runOptions) (*conformance.Report, error) {
	p, err := conformance.LoadProfile(o.profile)
	if err != nil {
		return nil, err
	}
	tester, err := p.LoadTester(o.clientCert, o.clientKey)
	if err != nil {
		return nil, err
	}
	hub, err := p.LoadHub(o.hub)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	if hub != nil {
		certs = hub.SigningCerts
	}
	t, err := conformance.LoadTarget(ctx, o.target, certs, conformance.HubMetadataClient(hub), time.Now())
	if err != nil {
		return nil, err
	}
	if o.ownHub != "" {
		if t.Descriptor == nil {
			return nil, fmt.Errorf("--own-hub: the participant's metadata could not be read: %v", t.ParseErr)
		}
		testerMD, err := conformance.TesterMetadata(tester)
		if err != nil {
			return nil, err
		}
		others, err := p.IdentitiesMetadata()
		if err != nil {
			return nil, err
		}
		own := &conformance.OwnHub{Dir: o.ownHub, Exe: o.exe}
		if hub, err = own.Start(ctx, []tls.Certificate{tester.TLS}, append([][]byte{t.Raw, testerMD}, others...)...); err != nil {
			return nil, err
		}
		defer func() {
			if err := own.Close(); err != nil {
				fmt.Fprintf(w, "own hub: %v\n", err)
			}
		}()
		fmt.Fprintf(w, "own hub %s at %s (trust %s and %s; log %s)\n", hub.EntityID, hub.URL, own.SigningCert(), own.TLSCert(),
			filepath.Join(o.ownHub, "hub.log"))
		// The participant as the hub publishes it, signed.
		if t, err = conformance.LoadTarget(ctx, conformance.MDQURL(hub.URL, t.Descriptor.EntityID), hub.SigningCerts,
			conformance.HubMetadataClient(hub), time.Now()); err != nil {
			return nil, err
		}
	}
	return conformance.Run(ctx, conformance.Config{Target: t, Profile: p, Tester: tester, Hub: hub, Plan: o.plan, Modules: o.modules,
		OnEvent: progress(w, o.quiet)})
}

// progress prints the run as it goes: a line per module, a line per check
// (with the first line of what went wrong), and the summary.
func progress(w io.Writer, quiet bool) func(conformance.Event) {
	return func(ev conformance.Event) {
		switch ev.Kind {
		case conformance.EventPlanStart:
			r := ev.Report
			route := "directly"
			if r.Hub != "" {
				route = "through " + r.Hub + " (attacks directly)"
			}
			fmt.Fprintf(w, "KECIS conformance: plan %s (%s) against %s, %s, run %s\n", r.Plan, r.PlanTitle, r.Participant, route, r.RunID)
		case conformance.EventModuleStart:
			if !quiet {
				fmt.Fprintf(w, "\n%s (%s)\n", ev.Module.Title, ev.Module.Name)
			}
		case conformance.EventCondition:
			c := ev.Condition
			if quiet && c.Result == conformance.Passed {
				return
			}
			fmt.Fprintf(w, "  %-8s %s  %s", c.Result, c.ID, c.Title)
			if c.Duration > 0 {
				fmt.Fprintf(w, " (%d ms)", c.Duration.Milliseconds())
			}
			fmt.Fprintln(w)
			if c.Result != conformance.Passed && c.Message != "" {
				msg, _, _ := strings.Cut(c.Message, "\n")
				fmt.Fprintf(w, "           %s\n", msg)
			}
		case conformance.EventPlanDone:
			r := ev.Report
			var parts []string
			for _, res := range conformance.Results {
				parts = append(parts, fmt.Sprintf("%d %s", r.Summary[res], res))
			}
			verdict := "PASS"
			if !r.Passed {
				verdict = "FAIL"
			}
			fmt.Fprintf(w, "\n%s: %s — %d exchanges in %s\n", verdict, strings.Join(parts, ", "), r.Exchanges, r.Finished.Sub(r.Started).Round(time.Millisecond))
		}
	}
}

func newConformanceListCmd() *cobra.Command {
	var plan string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the plans, their modules and (with -v or --plan) their checks and clauses",
		Example: `  kecis conformance list
  kecis conformance list --plan issuer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			defer w.Flush()
			plans := conformance.Plans()
			if plan != "" {
				p, err := conformance.PlanByName(plan)
				if err != nil {
					return fail(exitUsage, err)
				}
				plans, verbose = []*conformance.Plan{p}, true
			}
			for _, p := range plans {
				fmt.Fprintf(w, "%s\t%s (roles: %s)\t%d checks\n", p.Name, p.Title, strings.Join(p.Roles, ", "), len(p.ConditionIDs()))
				for _, m := range p.Modules {
					fmt.Fprintf(w, "  %s\t%s\t%d checks\n", m.Name, m.Title, len(m.Conditions))
					if !verbose {
						continue
					}
					for _, c := range m.Conditions {
						fmt.Fprintf(w, "    %s\t%s\t%s\n", c.ID, strings.Join(c.Clauses, ", "), c.Title)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&plan, "plan", "", "show one plan with every check")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every check with its clauses")
	return cmd
}
