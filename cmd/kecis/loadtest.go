package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/conformance/loadtest"
)

func init() { registerCommand(newLoadtestCmd) }

func newLoadtestCmd() *cobra.Command {
	var (
		demoDir, jsonOut, mix string
		cpuProfile            string
		allow, targets        []string
		o                     loadtest.Options
		quiet                 bool
	)
	cmd := &cobra.Command{
		Use:   "loadtest (--demo DIR | --target FILE) [--target URL...] (--requests N | --duration D)",
		Short: "Drive card payments through a hub's JSON facade, measure, and reconcile with the issuer's ledger",
		Long: `Drives real card flows through the hub's JSON facade — approvals mixed with
cancels, refunds and inquiries (--mix), from every merchant of the target in
turn, each change with an Idempotency-Key that a retry reuses — then prints
throughput, latency percentiles and errors by status, and reconciles every
acknowledged approval with the issuer's own ledger: nothing lost, nothing
doubled, a cancelled approval reversed, refunds neither missing nor counted
twice. docs/loadtest.md is the guide.

--demo DIR drives the demo running there (make run, kecis-demo): DIR/demo.json
names the hub, both merchants' API keys, the settle_url and the issuer's API.
The load test issues a card of its own at the issuer (so that the card's
ledger is the run's), approves and settles a few payments to refund during the
run, then runs. --target FILE drives another hub (YAML: docs/loadtest.md).
--target URL (repeated, or a comma list) sends the requests to several
replicas of that hub instead, in turn, a retry to the next one; the summary
counts each one's share.

It is bounded: --requests N, --duration D or both (the first reached ends the
run); at most 500000 requests, 256 workers, one hour. --rate R offers R
requests per second (open loop: a request's latency counts from the time it
was due, so a hub that falls behind shows its queue); without it each of the
--concurrency workers sends as soon as its last answer came. It reaches
loopback hosts only, and those --allow-host names.

A progress line goes to stderr every second; the summary to stdout, and as
JSON to --json FILE. --cpuprofile FILE writes the load generator's own CPU
profile (go tool pprof FILE), from the start of the run to its
reconciliation: what driving the load costs the machine the hub shares. Ctrl-C stops issuing requests: those in flight finish
and what was done is reported and reconciled.

Exit status: 0 when the ledger reconciles; 1 when an approval, cancel or
refund is lost or doubled, or the run could not go (no demo running, a hub
or issuer that does not answer); 2 on a usage error, and for a host that is
not loopback nor allowed.`,
		Example: `  kecis loadtest --demo .kecis-dev --requests 2000 --concurrency 16 --json loadtest.json
  kecis loadtest --demo .kecis-dev --duration 30s --rate 40 --concurrency 32
  kecis loadtest --target staging.yaml --allow-host hub.staging.internal --requests 500
  kecis loadtest --demo .kecis-dev --target https://127.0.0.1:8443,https://127.0.0.1:9443 --requests 2000 -c 16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targetFile, hubs, err := splitTargets(targets)
			if err != nil {
				return usagef("--target: %v", err)
			}
			if (demoDir == "") == (targetFile == "") {
				return usagef("give --demo DIR or --target FILE, one of them (a --target URL only says where the hub's replicas are)")
			}
			if o.Requests == 0 && o.Duration == 0 {
				return usagef("give --requests N or --duration D (a load test is bounded)")
			}
			if mix != "" {
				m, err := loadtest.ParseMix(mix)
				if err != nil {
					return usagef("--mix: %v", err)
				}
				o.Mix = m
			}
			if err := o.Validate(); err != nil {
				return usagef("%v", err)
			}
			var t *loadtest.Target
			if demoDir != "" {
				t, err = loadtest.ReadDemo(demoDir)
			} else {
				t, err = loadtest.ReadTargetFile(targetFile)
			}
			if err != nil {
				return err
			}
			if len(hubs) > 0 {
				t.HubURL, t.HubURLs = hubs[0], hubs
			}
			if err := t.Check(allow); err != nil {
				return usagef("%v", err)
			}
			if o.Seed == 0 {
				o.Seed = uint64(envOf(cmd).now().UnixNano())
			}
			if !quiet {
				o.Progress = cmd.ErrOrStderr()
			}
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := loadtest.Run(ctx, t, o)
			if sum != nil {
				sum.WriteText(cmd.OutOrStdout())
				if jsonOut != "" {
					b, _ := json.MarshalIndent(sum, "", "  ")
					if werr := os.WriteFile(jsonOut, append(b, '\n'), 0o644); werr != nil {
						return errors.Join(err, werr)
					}
				}
			}
			if err != nil {
				return err
			}
			if !sum.Clean() {
				return fail(exitFailed, fmt.Errorf("the issuer's ledger does not reconcile: %d lost, %d doubled", sum.Reconciliation.Lost, sum.Reconciliation.Doubled))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&demoDir, "demo", "", "drive the demo running in DIR (its demo.json)")
	f.StringSliceVar(&targets, "target", nil, "drive the hub FILE describes (YAML: hub_url, hub_ca, merchants, issuer_api or card, settle_url); a URL: a replica of the hub to send requests to, in turn with the others (repeatable, or a comma list)")
	f.IntVarP(&o.Requests, "requests", "n", 0, "stop after N requests")
	f.DurationVar(&o.Duration, "duration", 0, "stop issuing requests after D (e.g. 30s)")
	f.IntVarP(&o.Concurrency, "concurrency", "c", 4, "requests in flight at most (workers)")
	f.Float64Var(&o.Rate, "rate", 0, "offered rate in requests/s, open loop (0: as fast as the workers go)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "bound of one attempt of a request")
	f.IntVar(&o.Retries, "retries", 2, "retries, with the same Idempotency-Key, of a request that timed out or was answered 503, 409 or 429")
	f.StringVar(&mix, "mix", loadtest.DefaultMix.String(), "weights of the operations")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the run's random choices (0: from the clock)")
	f.StringVar(&jsonOut, "json", "", "write the summary as JSON to FILE")
	f.StringSliceVar(&allow, "allow-host", nil, "a host besides loopback the load test may reach (repeatable)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's CPU profile to FILE (go tool pprof)")
	return cmd
}

// startCPUProfile starts profiling this process's CPU into file and returns
// the function that stops it and closes the file.
func startCPUProfile(file string) (func(), error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// splitTargets sorts --target's values into the target file (at most one)
// and the hubs' URLs (values that start with http:// or https://).
func splitTargets(values []string) (file string, hubs []string, err error) {
	for _, v := range values {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
		case strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://"):
			hubs = append(hubs, v)
		case file != "":
			return "", nil, fmt.Errorf("two target files, %s and %s: give one, and the hub's replicas as URLs", file, v)
		default:
			file = v
		}
	}
	return file, hubs, nil
}
