// Command benchreport measures what a card approval costs and writes the
// performance report, docs/performance.md, with its SVG plots and the
// figures it was made from (docs/performance/). `make bench-report` runs
// it (scripts/bench-report.sh builds the binaries first); docs/performance.md
// says what it measures and how long it takes.
//
//	go run ./tools/benchreport -kecis bin/kecis -kecis-demo bin/kecis-demo [-kecis-boring bin/kecis-boring] [-quick]
//	go run ./tools/benchreport -render docs/performance/data.json   # the page again, from kept figures
//
// It runs, from the repository's root:
//   - `kecis envelope bench --json` (RSA and ECDSA signing keys, the RSA
//     recipient) in interleaved rounds with the standard build and the
//     GOEXPERIMENT=boringcrypto build, pinned to one CPU, with the bare RSA
//     verify and OAEP encrypt it measures itself (-raw-bench);
//   - scripts/bench-peers.sh (kecis vs libxmlsec1), unless libxmlsec1-dev
//     is missing and CI is not true;
//   - the per-approval cost benchmarks (go test -bench ApprovalCost…) and
//     the time of one SQLite commit on this disk;
//   - kecis-demo in a scratch directory, and `kecis loadtest` against it:
//     as fast as possible at each concurrency, at shares of the measured
//     peak, then after a number of approvals; and a second kecis-demo
//     whose signing keys are RSA 2048, as fast as possible at each
//     concurrency, before and after as many approvals;
//   - kecis-demo with its hub on PostgreSQL and 1, 2, 3 hub replicas
//     (`kecis serve` on the demo's hub.yaml), and `kecis loadtest --target
//     URL,…` against them (replicas.go).
//
// The envelope bound, the ratios and the cost split are computed when the
// page is rendered, from data.json (model.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	var (
		p                                 plan
		out, assets, render, rawDur, conc string
		offered, work, replicas           string
		keep                              bool
		envRounds, loadRounds, history    int
		runDur                            time.Duration
	)
	fs.StringVar(&p.Kecis, "kecis", "bin/kecis", "the kecis binary (standard build)")
	fs.StringVar(&p.Boring, "kecis-boring", "", "kecis built with GOEXPERIMENT=boringcrypto (empty: no BoringCrypto comparison)")
	fs.StringVar(&p.Demo, "kecis-demo", "bin/kecis-demo", "the kecis-demo binary")
	fs.BoolVar(&p.Quick, "quick", false, "a short run (about 5 minutes): fewer and shorter rounds, a small history")
	fs.StringVar(&p.Peers, "peers", "auto", "the xmlsec peer comparison: auto (run it when libxmlsec1-dev is installed) or skip")
	fs.IntVar(&p.PinCPU, "pin-cpu", 1, "CPU the envelope benchmarks are pinned to (-1: none)")
	fs.StringVar(&out, "out", "docs/performance.md", "the page to write")
	fs.StringVar(&assets, "assets", "docs/performance", "directory of the page's SVG plots and data.json")
	fs.StringVar(&render, "render", "", "render the page from this data.json, measuring nothing")
	fs.StringVar(&work, "work", "", "scratch directory (default: a new temporary one, removed unless -keep)")
	fs.BoolVar(&keep, "keep", false, "keep the scratch directory (the demo's logs and databases, each load test's JSON)")
	fs.IntVar(&envRounds, "envelope-rounds", 0, "envelope bench rounds (default 5, quick 2)")
	fs.IntVar(&loadRounds, "rounds", 0, "interleaved rounds of the closed-loop load tests (default 3, quick 1)")
	fs.DurationVar(&runDur, "run-duration", 0, "length of each load test run (default 20s, quick 6s)")
	fs.IntVar(&history, "history", -1, "approvals pushed through each demo (ECDSA, RSA) before its after-history runs (default 100000, quick 2000; 0: none)")
	fs.StringVar(&conc, "concurrency", "1,4,16", "concurrencies of the closed-loop runs")
	fs.StringVar(&offered, "offered", "10,25,50,100", "offered rates of the open-loop runs, in % of the measured peak")
	fs.BoolVar(&p.RSA, "rsa", true, "also load-test a demo whose signing keys are RSA 2048")
	fs.StringVar(&p.Mix, "mix", "approve=100", "the load test's operation mix (kecis loadtest --mix)")
	fs.StringVar(&replicas, "replicas", "1,2,3", "numbers of hub replicas on PostgreSQL to measure throughput against (empty: none)")
	fs.StringVar(&p.Postgres, "postgres", envOr("KECIS_TEST_POSTGRES_DSN", defaultPostgres), "the PostgreSQL server of the replica runs (a schema of the run's own is created there and dropped)")
	fs.IntVar(&p.ReplicaConc, "replica-concurrency", 16, "clients of the replica runs")
	fs.StringVar(&rawDur, "raw-bench", "", "internal: measure the bare RSA verify and encrypt for this long, print JSON, exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rawDur != "" {
		d, err := time.ParseDuration(rawDur)
		if err != nil {
			return err
		}
		return rawBench(os.Stdout, d)
	}
	if render != "" {
		d, err := readData(render)
		if err != nil {
			return err
		}
		return writeReport(d, out, assets)
	}

	var err error
	if p.Concurrencies, err = intList(conc); err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if p.OfferedPcts, err = intList(offered); err != nil {
		return fmt.Errorf("-offered: %w", err)
	}
	if strings.TrimSpace(replicas) != "" {
		if p.Replicas, err = intList(replicas); err != nil {
			return fmt.Errorf("-replicas: %w", err)
		}
	}
	if p.ReplicaConc <= 0 {
		return errors.New("-replica-concurrency: want a positive number")
	}
	pick := func(v, full, quick int) int {
		if v > 0 {
			return v
		}
		if p.Quick {
			return quick
		}
		return full
	}
	p.EnvelopeRounds = pick(envRounds, 5, 2)
	p.LoadRounds = pick(loadRounds, 3, 1)
	p.History = history
	if history < 0 {
		if p.Quick {
			p.History = 2000
		} else {
			p.History = 100_000
		}
	}
	p.RunDur = runDur
	if runDur <= 0 {
		p.RunDur = map[bool]time.Duration{false: 20 * time.Second, true: 6 * time.Second}[p.Quick]
	}
	p.EnvelopeDur = map[bool]time.Duration{false: time.Second, true: 300 * time.Millisecond}[p.Quick]
	p.PeerRounds = map[bool]int{false: 5, true: 1}[p.Quick]
	p.PeerDur = map[bool]string{false: "2s", true: "500ms"}[p.Quick]
	p.CostBenchtime = map[bool]string{false: "200x", true: "30x"}[p.Quick]
	p.CommitN = map[bool]int{false: 200, true: 50}[p.Quick]
	p.OpenConc = 16
	for _, f := range []string{p.Kecis, p.Demo, benchDoc} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (run from the repository's root, after make build: make bench-report does both)", err)
		}
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "kecis-bench-report-"); err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(work)
		}
	}
	if p.Work, err = filepath.Abs(work); err != nil {
		return err
	}
	if err := os.MkdirAll(p.Work, 0o700); err != nil {
		return err
	}
	for _, b := range []*string{&p.Kecis, &p.Demo, &p.Boring} {
		if *b != "" {
			if *b, err = filepath.Abs(*b); err != nil {
				return err
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	m := &measurer{p: p, start: start, d: &Data{Quick: p.Quick, Mix: p.Mix, Host: hostInfo()}}
	m.log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench-report [%s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, args...))
	}
	if p.Boring == "" {
		m.d.BoringSkipped = "no BoringCrypto build was given (-kecis-boring; scripts/bench-report.sh builds one when cgo and a C compiler are there)"
	}
	m.log("scratch directory %s; %s run", p.Work, map[bool]string{false: "full", true: "quick"}[p.Quick])
	steps := []func(context.Context){m.envelope, m.peers, m.cost, m.commitTime, m.load, m.replicas}
	if p.RSA {
		steps = append(steps, m.loadRSA)
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		step(ctx)
	}
	m.d.Host.Load1End = load1()
	m.d.DurationS = time.Since(start).Seconds()
	m.d.Generated = time.Now().UTC().Format(time.RFC3339)
	if err := os.MkdirAll(assets, 0o755); err != nil {
		return err
	}
	if err := writeData(filepath.Join(assets, "data.json"), m.d); err != nil {
		return err
	}
	if err := writeReport(m.d, out, assets); err != nil {
		return err
	}
	m.log("wrote %s and %s/ in %s", out, assets, time.Since(start).Round(time.Second))
	if len(m.d.Problems) > 0 {
		m.log("%d problem(s), listed in the page", len(m.d.Problems))
		if os.Getenv("CI") == "true" {
			// Under CI nothing may be left out quietly (a missing
			// libxmlsec1-dev included): the page is written, the run fails.
			return fmt.Errorf("%d problem(s) with CI=true: %s", len(m.d.Problems), strings.Join(m.d.Problems, "; "))
		}
	}
	return nil
}

// envOr is the environment variable k, else def.
func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// intList reads "1,4,16".
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
