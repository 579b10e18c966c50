package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The envelope work of one card approval through the demo (merchant → hub
// → PG → hub → issuer and back): what issue 15 counted, and what the bound
// is computed from.
const (
	approvalSigns    = 4
	approvalVerifies = 6
	approvalEncrypts = 2
	approvalDecrypts = 2
)

// Operations of `kecis envelope bench`, and the two raw ones the report
// measures itself (envelope bench has no bare RSA verify or encrypt).
const (
	opEncrypt  = "xmlenc-gcm256-oaep-encrypt"
	opDecrypt  = "xmlenc-gcm256-oaep-decrypt"
	rawEncrypt = "raw-rsa2048-oaep-encrypt"
	rawDecrypt = "raw-rsa2048-oaep-decrypt"
	rawRSAVer  = "raw-rsa2048-verify"
)

// deployment is a kind of signing key: the envelope operations that sign
// and verify with it, and the bare crypto operations under them.
// Encryption is RSA-OAEP (key transport needs RSA) in both.
type deployment struct {
	Name, Short                      string
	Sign, Verify, RawSign, RawVerify string
}

var deployments = []deployment{
	{"ECDSA P-256 signing keys (the demo's)", "ECDSA", "ecdsa-sha256-sign", "ecdsa-sha256-verify", "raw-ecdsa-p256-sign", "raw-ecdsa-p256-verify"},
	{"RSA 2048 signing keys", "RSA", "rsa-sha256-sign", "rsa-sha256-verify", "raw-rsa2048-sign", rawRSAVer},
}

// bound is the envelope bound of a deployment: the CPU the envelope work
// of one approval takes (EnvelopeMS, of which CryptoMS in the bare
// public-key operations and XMLMS the rest: parsing, canonicalisation,
// digests, AES-GCM, serialisation), and the approvals per second the
// machine's cores allow if nothing else cost anything.
type bound struct {
	deployment
	EnvelopeMS, CryptoMS, XMLMS float64
	PerS                        float64
}

// median of v (the mean of the middle two for an even count); NaN of none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOps is each operation's median rate over rounds.
func medianOps(rounds []map[string]float64) map[string]float64 {
	all := map[string][]float64{}
	for _, r := range rounds {
		for op, v := range r {
			all[op] = append(all[op], v)
		}
	}
	m := make(map[string]float64, len(all))
	for op, v := range all {
		m[op] = median(v)
	}
	return m
}

// msOf is the milliseconds one operation takes at rate ops/s.
func msOf(rate float64) float64 { return 1000 / rate }

// bounds computes each deployment's bound from the median rates and the
// number of cores.
func bounds(med map[string]float64, cores int) ([]bound, error) {
	var out []bound
	for _, d := range deployments {
		var missing []string
		get := func(op string) float64 {
			v, ok := med[op]
			if !ok || !(v > 0) {
				missing = append(missing, op)
				return math.NaN()
			}
			return msOf(v)
		}
		env := approvalSigns*get(d.Sign) + approvalVerifies*get(d.Verify) + approvalEncrypts*get(opEncrypt) + approvalDecrypts*get(opDecrypt)
		crypto := approvalSigns*get(d.RawSign) + approvalVerifies*get(d.RawVerify) + approvalEncrypts*get(rawEncrypt) + approvalDecrypts*get(rawDecrypt)
		if len(missing) > 0 {
			return nil, fmt.Errorf("envelope figures lack %s", strings.Join(missing, ", "))
		}
		out = append(out, bound{deployment: d, EnvelopeMS: env, CryptoMS: crypto, XMLMS: env - crypto, PerS: float64(cores) * 1000 / env})
	}
	return out, nil
}

// loadStat is the median over rounds of the load test runs of one kind.
type loadStat struct {
	Runs                    int
	ApprovalsPerS           float64
	P50, P95, P99           float64
	OfferedPerS             float64
	CPUPerApprovalMS        float64 // the demo's CPU over the runs / approvals
	Approvals, Errors, Lost int
	Doubled, Unreconciled   int
	Min, Max                float64 // approvals/s over rounds
	Load1                   float64 // highest load average before a run
	Concurrency, OfferedPct int
}

// aggregate summarizes runs (of one phase, kind, concurrency and offered
// share).
func aggregate(runs []LoadPoint) loadStat {
	st := loadStat{Runs: len(runs), Min: math.Inf(1), Max: math.Inf(-1)}
	var rate, p50, p95, p99, offered []float64
	var cpu float64
	for _, r := range runs {
		s := r.Summary
		if s == nil {
			continue
		}
		st.Concurrency, st.OfferedPct = s.Concurrency, r.OfferedPct
		rate = append(rate, s.ApprovalsPerS)
		p50, p95, p99 = append(p50, s.P50MS), append(p95, s.P95MS), append(p99, s.P99MS)
		offered = append(offered, s.OfferedRate)
		st.Min, st.Max = math.Min(st.Min, s.ApprovalsPerS), math.Max(st.Max, s.ApprovalsPerS)
		cpu += r.CPUS
		st.Approvals += s.Approvals
		for _, n := range s.Errors {
			st.Errors += n
		}
		if rc := s.Reconciliation; rc != nil {
			st.Lost += rc.Lost
			st.Doubled += rc.Doubled
		} else {
			st.Unreconciled++
		}
		st.Load1 = math.Max(st.Load1, r.Load1)
	}
	st.ApprovalsPerS, st.P50, st.P95, st.P99, st.OfferedPerS = median(rate), median(p50), median(p95), median(p99), median(offered)
	if st.Approvals > 0 {
		st.CPUPerApprovalMS = cpu * 1000 / float64(st.Approvals)
	}
	return st
}

// selectLoad returns the runs of a phase and kind with the given
// concurrency (0: any) and offered share (open runs; 0: any).
func selectLoad(d *Data, phase, kind string, conc, pct int) []LoadPoint {
	var out []LoadPoint
	for _, p := range d.Load {
		if p.Phase != phase || p.Kind != kind || p.Summary == nil {
			continue
		}
		if conc != 0 && p.Summary.Concurrency != conc || pct != 0 && p.OfferedPct != pct {
			continue
		}
		out = append(out, p)
	}
	return out
}

// selectReplicas returns the replica runs with n hubs.
func selectReplicas(d *Data, n int) []LoadPoint {
	var out []LoadPoint
	for _, p := range selectLoad(d, "replicas", "closed", 0, 0) {
		if p.Replicas == n {
			out = append(out, p)
		}
	}
	return out
}

// replicaCounts are the distinct numbers of hubs of the replica runs,
// ascending.
func replicaCounts(d *Data) []int {
	var ns []int
	for _, p := range selectLoad(d, "replicas", "closed", 0, 0) {
		if !slices.Contains(ns, p.Replicas) {
			ns = append(ns, p.Replicas)
		}
	}
	slices.Sort(ns)
	return ns
}

// replicaConc is the number of clients of the replica runs.
func replicaConc(d *Data) int {
	if ps := selectLoad(d, "replicas", "closed", 0, 0); len(ps) > 0 {
		return ps[0].Summary.Concurrency
	}
	return 0
}

// replicaShares are, for the replica runs with n hubs, the median over
// rounds of each hub's approvals per second (Summary.Targets, in order).
func replicaShares(d *Data, n int) []float64 {
	per := make([][]float64, n)
	for _, p := range selectReplicas(d, n) {
		for i, t := range p.Summary.Targets {
			if i < n {
				per[i] = append(per[i], t.ApprovalsPerS)
			}
		}
	}
	out := make([]float64, n)
	for i, v := range per {
		out[i] = median(v)
	}
	return out
}

// concurrencies are the distinct concurrencies of a phase's closed runs,
// ascending.
func concurrencies(d *Data, phase string) []int {
	var cs []int
	for _, p := range selectLoad(d, phase, "closed", 0, 0) {
		if !slices.Contains(cs, p.Summary.Concurrency) {
			cs = append(cs, p.Summary.Concurrency)
		}
	}
	slices.Sort(cs)
	return cs
}

// offeredShares are the distinct offered shares of a phase's open runs,
// ascending.
func offeredShares(d *Data, phase string) []int {
	var ps []int
	for _, p := range selectLoad(d, phase, "open", 0, 0) {
		if !slices.Contains(ps, p.OfferedPct) {
			ps = append(ps, p.OfferedPct)
		}
	}
	slices.Sort(ps)
	return ps
}

// peak is the highest median closed-loop throughput of a phase, and the
// concurrency it was reached at.
func peak(d *Data, phase string) (float64, int) {
	best, at := 0.0, 0
	for _, c := range concurrencies(d, phase) {
		if st := aggregate(selectLoad(d, phase, "closed", c, 0)); st.ApprovalsPerS > best {
			best, at = st.ApprovalsPerS, c
		}
	}
	return best, at
}

// offeredRates are the rates to offer at the given shares of peak
// (requests/s, one decimal, at least 1).
func offeredRates(peak float64, pcts []int) []float64 {
	out := make([]float64, len(pcts))
	for i, p := range pcts {
		out[i] = math.Max(1, math.Round(peak*float64(p)/10)/10)
	}
	return out
}

// process is a program of the demo whose database an approval writes,
// with the benchmarks that count its commits, and what issue 15 measured
// before (strace: fsyncs per approval).
type process struct {
	Name   string
	Before float64
	// Fresh and History: benchmarks (package suffix, name) whose fsyncs/op
	// add up to the process's, on a fresh database and after 100,000
	// past approvals.
	Fresh, History []benchRef
}

type benchRef struct{ Pkg, Name string }

var (
	// One approval through the demo relays through the hub twice: the
	// merchant's facade call to the PG, the PG's SOAP request to the issuer.
	hubFresh  = []benchRef{{"federation/router", "BenchmarkApprovalCost/facade"}, {"federation/router", "BenchmarkApprovalCost/soap"}}
	hubHist   = []benchRef{{"federation/router", "BenchmarkApprovalCostAfterHistory/facade"}, {"federation/router", "BenchmarkApprovalCostAfterHistory/soap"}}
	adapter   = benchRef{"connectors/store/storesql", "BenchmarkRequestCost/clients=1"}
	issFresh  = benchRef{"examples/issuer", "BenchmarkApprovalCost/fresh"}
	issHist   = benchRef{"examples/issuer", "BenchmarkApprovalCost/after100k"}
	pgFresh   = benchRef{"examples/pg", "BenchmarkApprovalCost/fresh"}
	pgHist    = benchRef{"examples/pg", "BenchmarkApprovalCost/after100k"}
	telFresh  = benchRef{"examples/telecom", "BenchmarkSubmitCost/fresh"}
	telHist   = benchRef{"examples/telecom", "BenchmarkSubmitCost/after100k"}
	processes = []process{
		{"hub (`hub.db`, two relays)", 11, hubFresh, hubHist},
		{"issuer (its database and its adapter's store)", 6, []benchRef{issFresh, adapter}, []benchRef{issHist, adapter}},
		{"PG sidecar (its store)", 3, []benchRef{adapter}, []benchRef{adapter}},
		{"PG", 2, []benchRef{pgFresh}, []benchRef{pgHist}},
		{"telecom", 1, []benchRef{telFresh}, []benchRef{telHist}},
	}
)

// findBench is the cost benchmark ref names, if it ran.
func findBench(d *Data, ref benchRef) (GoBench, bool) {
	for _, b := range d.Cost {
		if b.Name == ref.Name && (b.Pkg == ref.Pkg || strings.HasSuffix(b.Pkg, "/"+ref.Pkg)) {
			return b, true
		}
	}
	return GoBench{}, false
}

// metricSum adds a metric over refs; ok is false if one did not run.
func metricSum(d *Data, refs []benchRef, unit string) (float64, bool) {
	sum := 0.0
	for _, r := range refs {
		b, ok := findBench(d, r)
		if !ok {
			return 0, false
		}
		v, ok := b.Metrics[unit]
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

// fsyncsPerApproval is the fsyncs of every process for one approval on a
// fresh database (ok false if a benchmark is missing).
func fsyncsPerApproval(d *Data) (float64, bool) {
	total := 0.0
	for _, p := range processes {
		v, ok := metricSum(d, p.Fresh, "fsyncs/op")
		if !ok {
			return 0, false
		}
		total += v
	}
	return total, true
}

// split is the cost of one approval at concurrency 1, in milliseconds of
// its latency: crypto and XML from the envelope figures, the database
// from the commits it waits for, and the rest (HTTP, TLS, JSON, the
// programs' own work, scheduling) as what is left of the measured median.
type split struct {
	Name                        string
	Measured                    bool // from a load test (else modelled)
	Crypto, XML, Database, Rest float64
	Total                       float64
}

// costSplits are the splits of each deployment, the rest what the median
// at one client leaves of each demo's (ECDSA, and RSA when its demo ran;
// else the RSA row is modelled with the ECDSA demo's rest).
func costSplits(d *Data, bs []bound) ([]split, bool) {
	c1 := selectLoad(d, "fresh", "closed", 1, 0)
	fs, ok := fsyncsPerApproval(d)
	if len(c1) == 0 || !ok || len(bs) == 0 {
		return nil, false
	}
	db := fs * d.CommitMS
	medians := []float64{aggregate(c1).P50, math.NaN()}
	if rc1 := selectLoad(d, "rsa", "closed", 1, 0); len(rc1) > 0 {
		medians[1] = aggregate(rc1).P50
	}
	var out []split
	for i, b := range bs {
		s := split{Name: b.Short, Measured: !math.IsNaN(medians[i]), Crypto: b.CryptoMS, XML: b.XMLMS, Database: db}
		if s.Measured {
			s.Rest = math.Max(0, medians[i]-b.CryptoMS-b.XMLMS-db)
		} else {
			s.Rest = out[0].Rest // modelled: the ECDSA demo's rest
		}
		s.Total = s.Crypto + s.XML + s.Database + s.Rest
		out = append(out, s)
	}
	return out, true
}
