package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kecis/kecis/conformance/loadtest"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite" // the hub's SQLite driver, for the commit timing
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
)

// plan is what a run measures and with what.
type plan struct {
	Kecis, Boring, Demo string // binaries (Boring "": no BoringCrypto comparison)
	Work                string // scratch directory (the demo's directory is under it)
	Quick               bool
	Peers               string // auto, skip
	PinCPU              int    // -1: no pinning

	EnvelopeRounds int
	EnvelopeDur    time.Duration
	PeerRounds     int
	PeerDur        string
	CostBenchtime  string
	CommitN        int

	LoadRounds    int
	RunDur        time.Duration
	Concurrencies []int
	OfferedPcts   []int
	OpenConc      int
	History       int
	Mix           string
	RSA           bool // also a demo with RSA signing keys

	// Replicas are the numbers of hub replicas to measure throughput
	// against (none: not measured), on the PostgreSQL server Postgres
	// names, at ReplicaConc clients (replicas.go).
	Replicas    []int
	Postgres    string
	ReplicaConc int
}

// measurer runs a plan and fills Data; a failed step is noted in
// Data.Problems and the run goes on where it can.
type measurer struct {
	p     plan
	d     *Data
	start time.Time
	log   func(format string, args ...any)
}

func (m *measurer) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.log("problem: %s", msg)
	m.d.Problems = append(m.d.Problems, shortProblem(msg))
}

// shortProblem is a problem's first line, and its last when it has more
// (a command's error, then the end of what it printed).
func shortProblem(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	return lines[0] + " … " + strings.TrimSpace(lines[len(lines)-1])
}

// pinned is argv run on the plan's CPU (taskset), or as is when it cannot
// be pinned.
func (m *measurer) pinned(argv ...string) []string {
	if m.p.PinCPU < 0 {
		return argv
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return argv
	}
	if exec.Command("taskset", "-c", strconv.Itoa(m.p.PinCPU), "true").Run() != nil {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(m.p.PinCPU)}, argv...)
}

// output runs argv and returns its stdout; the error carries the end of
// its stderr.
func output(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(tail))
	}
	return stdout.Bytes(), nil
}

const (
	benchDoc  = "saml/testdata/bench/approve-request.xml"
	benchKeys = "saml/testdata/keys"
)

// envelope runs the rounds of `kecis envelope bench --json` (RSA and ECDSA
// signing keys, the RSA recipient), the standard build and the
// BoringCrypto build alternating which goes first, each pinned, with the
// raw RSA verify and encrypt measured beside the standard build's.
func (m *measurer) envelope(ctx context.Context) {
	self, err := os.Executable()
	if err != nil {
		m.problem("envelope: %v", err)
		return
	}
	args := func(bin string) []string {
		return m.pinned(bin, "envelope", "bench", "--in", benchDoc,
			"--key", benchKeys+"/merchant-rsa.key.pem", "--cert", benchKeys+"/merchant-rsa.cert.pem",
			"--ec-key", benchKeys+"/merchant-ec.key.pem", "--ec-cert", benchKeys+"/merchant-ec.cert.pem",
			"--recipient-cert", benchKeys+"/issuer-rsa.cert.pem", "--recipient-key", benchKeys+"/issuer-rsa.key.pem",
			"--duration", m.p.EnvelopeDur.String(), "--json")
	}
	run := func(bin string) (map[string]float64, error) {
		out, err := output(ctx, nil, args(bin)...)
		if err != nil {
			return nil, err
		}
		return parseEnvelope(bytes.NewReader(out))
	}
	if m.p.Boring != "" {
		out, err := output(ctx, nil, m.p.Boring, "version")
		if err != nil || !strings.Contains(string(out), "BoringCrypto") {
			m.d.BoringSkipped = fmt.Sprintf("%s does not say it is a BoringCrypto build (%q, %v)", m.p.Boring, strings.TrimSpace(string(out)), err)
			m.log("%s", m.d.BoringSkipped)
			m.p.Boring = ""
		}
	}
	for r := 1; r <= m.p.EnvelopeRounds; r++ {
		order := []string{"standard", "boring"}
		if r%2 == 0 {
			order = []string{"boring", "standard"}
		}
		for _, which := range order {
			switch {
			case which == "standard":
				m.log("envelope round %d/%d: %s", r, m.p.EnvelopeRounds, m.p.Kecis)
				res, err := run(m.p.Kecis)
				if err != nil {
					m.problem("envelope bench round %d: %v", r, err)
					continue
				}
				raw, err := output(ctx, nil, m.pinned(self, "-raw-bench", m.p.EnvelopeDur.String())...)
				if err == nil {
					var extra map[string]float64
					if err = json.Unmarshal(raw, &extra); err == nil {
						for k, v := range extra {
							res[k] = v
						}
					}
				}
				if err != nil {
					m.problem("raw RSA verify/encrypt round %d: %v", r, err)
				}
				m.d.Envelope = append(m.d.Envelope, res)
			case m.p.Boring != "":
				m.log("envelope round %d/%d: %s", r, m.p.EnvelopeRounds, m.p.Boring)
				res, err := run(m.p.Boring)
				if err != nil {
					m.problem("envelope bench (BoringCrypto) round %d: %v", r, err)
					continue
				}
				m.d.Boring = append(m.d.Boring, res)
			}
		}
	}
}

// peers runs scripts/bench-peers.sh for its RESULTS_FILE, unless
// libxmlsec1-dev is missing outside CI (then it says so and skips).
func (m *measurer) peers(ctx context.Context) {
	if m.p.Peers == "skip" {
		m.d.PeersSkipped = "skipped by request (-peers skip)"
		m.log("peer comparison: %s", m.d.PeersSkipped)
		return
	}
	if exec.Command("pkg-config", "--exists", "xmlsec1-openssl").Run() != nil {
		if os.Getenv("CI") == "true" {
			m.problem("peer comparison: libxmlsec1-dev (xmlsec1-openssl) is missing and CI=true")
			return
		}
		m.d.PeersSkipped = "libxmlsec1-dev is not installed (apt-get install -y libxmlsec1-dev pkg-config): peer comparison skipped"
		m.log("peer comparison: %s", m.d.PeersSkipped)
		return
	}
	results := filepath.Join(m.p.Work, "peers.txt")
	m.log("peer comparison: scripts/bench-peers.sh, %d rounds x %s per op", m.p.PeerRounds, m.p.PeerDur)
	pin := strconv.Itoa(max(m.p.PinCPU, 0))
	if _, err := output(ctx, []string{"RESULTS_FILE=" + results, "ROUNDS=" + strconv.Itoa(m.p.PeerRounds),
		"DURATION=" + m.p.PeerDur, "PIN_CPU=" + pin, "KECIS_BENCH_CMD=" + m.p.Kecis},
		"scripts/bench-peers.sh"); err != nil {
		m.problem("peer comparison: %v", err)
		return
	}
	f, err := os.Open(results)
	if err != nil {
		m.problem("peer comparison: %v", err)
		return
	}
	defer f.Close()
	if m.d.Peers, err = parsePeers(f); err != nil {
		m.problem("peer comparison: %v", err)
	}
}

// costPackages are the packages of the per-approval cost benchmarks.
var costPackages = []string{"./federation/router", "./examples/issuer", "./connectors/store/storesql", "./examples/pg", "./examples/telecom"}

// cost runs the per-approval cost benchmarks (txns, fsyncs, bytes).
func (m *measurer) cost(ctx context.Context) {
	m.log("cost benchmarks (%s each): %s", m.p.CostBenchtime, strings.Join(costPackages, " "))
	argv := append([]string{"go", "test", "-run", "^$", "-bench", "ApprovalCost|SubmitCost|RequestCost", "-benchtime", m.p.CostBenchtime}, costPackages...)
	out, err := output(ctx, nil, argv...)
	if err != nil {
		m.problem("cost benchmarks: %v", err)
	}
	bs, perr := parseGoBench(bytes.NewReader(out))
	if perr != nil {
		m.problem("cost benchmarks: %v", perr)
	}
	m.d.Cost = bs
}

// commitTime measures a SQLite write transaction of one row, as the hub
// opens its database (WAL, synchronous=FULL: the commit waits for one
// fsync), on the disk the demo runs on; the median of n.
func (m *measurer) commitTime(ctx context.Context) {
	path := filepath.Join(m.p.Work, "commit.db")
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		m.problem("commit timing: %v", err)
		return
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		m.problem("commit timing: %v", err)
		return
	}
	v := make([]byte, 512)
	var ms []float64
	for i := range m.p.CommitN {
		t0 := time.Now()
		if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, i, v)
			return err
		}); err != nil {
			m.problem("commit timing: %v", err)
			return
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
	}
	m.d.CommitMS = median(ms)
	m.log("SQLite commit (WAL, synchronous=FULL): median %.2f ms of %d", m.d.CommitMS, m.p.CommitN)
}

// child is a program the report started.
type child struct {
	cmd  *exec.Cmd
	done chan error
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop ends the program with SIGTERM (SIGKILL after 30 s).
func (p *child) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuSeconds is the program's CPU time so far.
func (p *child) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	t, err := parseProcCPU(string(b))
	if err != nil {
		return 0
	}
	return float64(t) / clockTicks
}

// demo is a running kecis-demo, with the hub replicas started beside its
// hub (replicas.go).
type demo struct {
	*child
	dir string
	// hubs are the base URLs of the demo's hub and of its replicas, in
	// that order; a load test point with Replicas n drives the first n.
	hubs     []string
	replicas []*child
}

// startDemo starts kecis-demo in a directory of the work directory, every
// address on a free loopback port, with the extra arguments, and waits
// for its demo.json.
func (m *measurer) startDemo(ctx context.Context, name string, extra ...string) (*demo, error) {
	dir := filepath.Join(m.p.Work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(m.p.Work, name+".out"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"--dir", dir, "--tester=false"}
	for _, f := range []string{"hub", "hub-ops", "issuer", "issuer-api", "telecom", "pg-api", "pg-kecis", "pg-call", "pg-page", "shop", "issuer-page", "issuer-cert"} {
		args = append(args, "--"+f, "127.0.0.1:0")
	}
	cmd := exec.Command(m.p.Demo, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	d := &demo{child: p, dir: dir}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, "demo.json")); err == nil {
			m.log("demo up in %s (pid %d)", dir, cmd.Process.Pid)
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("kecis-demo exited before it was up (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, errors.New("kecis-demo: no demo.json after 2 minutes")
		}
	}
}

// stop ends the demo's replicas, then the demo.
func (d *demo) stop() {
	for _, r := range d.replicas {
		r.stop()
	}
	d.child.stop()
}

// cpuSeconds is the CPU time so far of the demo and of its replicas.
func (d *demo) cpuSeconds() float64 {
	t := d.child.cpuSeconds()
	for _, r := range d.replicas {
		t += r.cpuSeconds()
	}
	return t
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go builds for.
const clockTicks = 100

// hubDB is the demo hub's database.
func (d *demo) hubDB() string { return filepath.Join(d.dir, "hub", "hub.db") }

func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	v, _ := parseLoadavg(string(b))
	return v
}

// loadtest runs `kecis loadtest` against the demo and records the run.
func (m *measurer) loadtest(ctx context.Context, d *demo, pt LoadPoint, conc int, rate float64, requests int, dur time.Duration) (*LoadPoint, error) {
	m.d.Host.LoadMax = max(m.d.Host.LoadMax, load1())
	pt.Load1 = load1()
	out := filepath.Join(m.p.Work, fmt.Sprintf("loadtest-%d.json", len(m.d.Load)))
	argv := []string{m.p.Kecis, "loadtest", "--demo", d.dir, "--concurrency", strconv.Itoa(conc), "--mix", m.p.Mix, "--json", out, "-q"}
	if requests > 0 {
		argv = append(argv, "--requests", strconv.Itoa(requests))
	}
	if dur > 0 {
		argv = append(argv, "--duration", dur.String())
	}
	if rate > 0 {
		argv = append(argv, "--rate", strconv.FormatFloat(rate, 'f', -1, 64))
	}
	if pt.Replicas > 0 {
		argv = append(argv, "--target", strings.Join(d.hubs[:pt.Replicas], ","))
	}
	cpu0 := d.cpuSeconds()
	_, runErr := output(ctx, nil, argv...)
	pt.CPUS = d.cpuSeconds() - cpu0
	b, err := os.ReadFile(out)
	if err != nil {
		if runErr != nil {
			return nil, runErr
		}
		return nil, err
	}
	var s loadtest.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	pt.Summary = &s
	if runErr != nil {
		m.problem("load test (%s, %s, concurrency %d): %v", pt.Phase, pt.Kind, conc, firstLine(runErr.Error()))
	}
	m.log("  %s %s c=%d rate=%g replicas=%d: %.1f approvals/s, p50 %.1f p95 %.1f p99 %.1f ms, CPU %.1f ms/approval, errors %d, load %.1f",
		pt.Phase, pt.Kind, conc, rate, pt.Replicas, s.ApprovalsPerS, s.P50MS, s.P95MS, s.P99MS, pt.CPUS*1000/float64(max(s.Approvals, 1)), len(s.Errors), pt.Load1)
	return &pt, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// load starts the demo and runs the load tests: closed loop at each
// concurrency (rounds interleaved), open loop at shares of the measured
// peak, then History approvals, then the after-history points: the same
// closed-loop rounds, and one open-loop run at the middle share.
func (m *measurer) load(ctx context.Context) {
	d, err := m.startDemo(ctx, "demo")
	if err != nil {
		m.problem("demo: %v", err)
		return
	}
	defer d.stop()
	record := m.recorder(ctx, d)
	m.warmUp(ctx, d)
	m.closedRounds(record, "fresh", "load round")
	pk, _ := peak(m.d, "fresh")
	if pk <= 0 {
		m.problem("no peak throughput measured: the open-loop and history runs are skipped")
		return
	}
	rates := offeredRates(pk, m.p.OfferedPcts)
	for i, pct := range m.p.OfferedPcts {
		m.log("offered %d %% of the peak %.1f/s: %.1f/s", pct, pk, rates[i])
		record(LoadPoint{Phase: "fresh", Kind: "open", Round: 1, OfferedPct: pct}, m.p.OpenConc, rates[i], 0, m.p.RunDur)
	}
	if m.p.History > 0 {
		b0, err := sqlprobe.MeasureSQLite(ctx, d.hubDB())
		if err != nil {
			m.problem("hub storage before the history run: %v", err)
		}
		p, secs := m.push(ctx, d, "push", "history")
		if p == nil {
			return
		}
		m.d.History = p.Summary.Approvals
		m.d.HistoryDurationS = secs
		if p.Summary.Approvals > 0 && b0 != nil {
			if b1, err := sqlprobe.MeasureSQLite(ctx, d.hubDB()); err != nil {
				m.problem("hub storage after the history run: %v", err)
			} else {
				m.d.HubStorage = perApproval(b0, b1, p.Summary.Approvals)
				m.log("hub storage per approval: %.0f bytes retained, %.0f within retention, file %+.0f",
					m.d.HubStorage.Class(storageRetained), m.d.HubStorage.Class(storageRetention), m.d.HubStorage.FileBytes)
			}
		}
		m.closedRounds(record, "history", "after-history load round")
		i := len(m.p.OfferedPcts) / 2
		if len(m.p.OfferedPcts) > 0 {
			record(LoadPoint{Phase: "history", Kind: "open", Round: 1, OfferedPct: m.p.OfferedPcts[i]}, m.p.OpenConc, rates[i], 0, m.p.RunDur)
		}
	}
}

// push sends History approvals through d at 16 clients, as one point of
// the phase (what names the run in the log and problems), and returns
// that point and the push's wall time; nil if the run failed.
func (m *measurer) push(ctx context.Context, d *demo, phase, what string) (*LoadPoint, float64) {
	m.log("%s: %d approvals at concurrency 16", what, m.p.History)
	t0 := time.Now()
	p, err := m.loadtest(ctx, d, LoadPoint{Phase: phase, Kind: "closed", Round: 1}, 16, 0, m.p.History, 0)
	if err != nil {
		m.problem("%s run: %v", what, firstLine(err.Error()))
		return nil, 0
	}
	m.d.Load = append(m.d.Load, *p)
	return p, time.Since(t0).Seconds()
}

// closedRounds runs the closed-loop load tests of a phase: LoadRounds
// rounds, each at every concurrency in turn (the rounds interleaved, so
// that a slow stretch of the machine touches every concurrency alike),
// logged as what.
func (m *measurer) closedRounds(record func(pt LoadPoint, conc int, rate float64, requests int, dur time.Duration), phase, what string) {
	for r := 1; r <= m.p.LoadRounds; r++ {
		for _, c := range m.p.Concurrencies {
			m.log("%s %d/%d, concurrency %d, %s", what, r, m.p.LoadRounds, c, m.p.RunDur)
			record(LoadPoint{Phase: phase, Kind: "closed", Round: r}, c, 0, 0, m.p.RunDur)
		}
	}
}

// recorder returns a function that runs a load test against d and keeps
// its point.
func (m *measurer) recorder(ctx context.Context, d *demo) func(pt LoadPoint, conc int, rate float64, requests int, dur time.Duration) {
	return func(pt LoadPoint, conc int, rate float64, requests int, dur time.Duration) {
		p, err := m.loadtest(ctx, d, pt, conc, rate, requests, dur)
		if err != nil {
			m.problem("load test (%s, %s, concurrency %d): %v", pt.Phase, pt.Kind, conc, firstLine(err.Error()))
			return
		}
		m.d.Load = append(m.d.Load, *p)
	}
}

// warmUp makes the first connections, fetches the metadata and issues the
// card, unmeasured.
func (m *measurer) warmUp(ctx context.Context, d *demo) {
	if _, err := m.loadtest(ctx, d, LoadPoint{Phase: "warmup"}, 4, 0, 50, 0); err != nil {
		m.problem("warm-up load test: %v", firstLine(err.Error()))
	}
}

// rsaSigners are the demo's participants that sign (kecis-demo
// --tester=false): each keeps its signing key in DIR/<name>/signing/,
// generated on first run unless there — the two banks (bank-<code>) and
// the telecom too, since they joined the federation.
var rsaSigners = []string{"hub", "issuer", "pg", "merchant", "merchant2", "bank-088", "bank-089", "telecom"}

// loadRSA runs the closed-loop load tests against a second demo whose
// every signing key is RSA 2048: `kecis keys generate --type rsa` writes
// them where the demo looks for its keys before it first starts, so that
// it keeps them. Every signing certificate the demo ends up with is
// checked to be RSA; if one is not, the figures are dropped. Then, as
// with the ECDSA demo, History approvals (phase "rsa-push") and the same
// closed-loop rounds again (phase "rsa-history"): issue 15 asks for the
// rate after 100,000 approvals of both deployments.
func (m *measurer) loadRSA(ctx context.Context) {
	dir := filepath.Join(m.p.Work, "demo-rsa")
	for _, p := range rsaSigners {
		out := filepath.Join(dir, p, "signing")
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			m.problem("RSA demo: %v", err)
			return
		}
		if _, err := output(ctx, nil, m.p.Kecis, "keys", "generate", "--type", "rsa", "--out", out, "--cn", "KECIS demo "+p+"/signing (RSA)"); err != nil {
			m.problem("RSA demo: %v", err)
			return
		}
	}
	d, err := m.startDemo(ctx, "demo-rsa")
	if err != nil {
		m.problem("RSA demo: %v", err)
		return
	}
	defer d.stop()
	if err := allRSA(dir); err != nil {
		m.problem("RSA demo: %v: its figures are left out", err)
		return
	}
	record := m.recorder(ctx, d)
	m.warmUp(ctx, d)
	m.closedRounds(record, "rsa", "RSA load round")
	if m.p.History <= 0 {
		return
	}
	p, secs := m.push(ctx, d, "rsa-push", "RSA history")
	if p == nil {
		return
	}
	m.d.RSAHistory = p.Summary.Approvals
	m.d.RSAHistoryDurationS = secs
	m.closedRounds(record, "rsa-history", "RSA after-history load round")
}

// allRSA checks that every signing certificate under a demo's directory
// holds an RSA key.
func allRSA(dir string) error {
	certs, err := filepath.Glob(filepath.Join(dir, "*", "signing", "cert.pem"))
	if err != nil {
		return err
	}
	if len(certs) == 0 {
		return errors.New("no signing certificate found")
	}
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return fmt.Errorf("%s: no PEM block", c)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if cert.PublicKeyAlgorithm != x509.RSA {
			return fmt.Errorf("%s signs with %s, not RSA", c, cert.PublicKeyAlgorithm)
		}
	}
	return nil
}

// hostInfo describes the machine.
func hostInfo() Host {
	h := Host{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Load1Start: load1()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}
