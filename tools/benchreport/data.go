package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/kecis/kecis/conformance/loadtest"
)

// Data is everything one run of the report measured, as it measured it
// (rounds kept apart; medians and ratios are computed when rendering). It
// is written to docs/performance/data.json, so that the page can be
// rendered again (-render) without measuring.
type Data struct {
	// Generated is when the run ended (UTC, RFC 3339).
	Generated string `json:"generated"`
	Host      Host   `json:"host"`
	Quick     bool   `json:"quick"`
	// DurationS is the whole run's wall time.
	DurationS float64 `json:"duration_s"`
	// Mix is the load test's operation mix.
	Mix string `json:"mix"`

	// Envelope: rounds of `kecis envelope bench --json` with the standard
	// build, each with the tool's own raw RSA verify and OAEP encrypt
	// (ops/s by op name).
	Envelope []map[string]float64 `json:"envelope"`
	// Boring: the same rounds with the GOEXPERIMENT=boringcrypto build,
	// interleaved with Envelope's; nil when that build was not made.
	Boring []map[string]float64 `json:"boring,omitempty"`
	// BoringSkipped says why there is no BoringCrypto comparison.
	BoringSkipped string `json:"boring_skipped,omitempty"`

	// Peers: scripts/bench-peers.sh's raw results; PeersSkipped says why
	// there are none.
	Peers        []PeerResult `json:"peers,omitempty"`
	PeersSkipped string       `json:"peers_skipped,omitempty"`

	// Cost: the per-approval cost benchmarks (txns/op, fsyncs/op, …).
	Cost []GoBench `json:"cost"`
	// CommitMS is the median time of one SQLite write transaction
	// (WAL, synchronous=FULL: one fsync) on the disk the demo runs on.
	CommitMS float64 `json:"commit_ms"`

	// Load: the load test runs against the demo.
	Load []LoadPoint `json:"load"`
	// History is how many approvals were pushed through the demo before
	// the "after history" points; HubStorage what the hub's database grew
	// by per approval meanwhile, measured after a checkpoint.
	History          int         `json:"history"`
	HistoryDurationS float64     `json:"history_duration_s"`
	HubStorage       *HubStorage `json:"hub_storage,omitempty"`
	// RSAHistory and RSAHistoryDurationS: the same push through the demo
	// with RSA signing keys (Load points of phase "rsa-push"), before its
	// "rsa-history" points; 0 when it was not made (runs before it was).
	RSAHistory          int     `json:"rsa_history,omitempty"`
	RSAHistoryDurationS float64 `json:"rsa_history_duration_s,omitempty"`
	// HubBytesPerApproval is what runs before HubStorage measured: the
	// growth of hub.db and its WAL together (the WAL's size is not the
	// data's). Rendered only when HubStorage is absent.
	HubBytesPerApproval float64 `json:"hub_bytes_per_approval,omitempty"`

	// ReplicaDB is the PostgreSQL server the replica runs (Load points of
	// phase "replicas") had the hub's database on ("PostgreSQL 15.20", say);
	// ReplicasSkipped says why there are none.
	ReplicaDB       string `json:"replica_db,omitempty"`
	ReplicasSkipped string `json:"replicas_skipped,omitempty"`

	// Problems met while measuring (a failed step, a ledger that did not
	// reconcile): the page lists them.
	Problems []string `json:"problems,omitempty"`
}

// Host is the machine the run measured on.
type Host struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	// Load1Start and Load1End: the 1-minute load average at the run's
	// start and end; LoadMax the highest seen before a load test run.
	Load1Start float64 `json:"load1_start"`
	Load1End   float64 `json:"load1_end"`
	LoadMax    float64 `json:"load1_max"`
}

// PeerResult is one line of bench-peers.sh's RESULTS_FILE:
// "<round> <impl> <op> <ops_per_sec>".
type PeerResult struct {
	Round     int     `json:"round"`
	Impl      string  `json:"impl"`
	Op        string  `json:"op"`
	OpsPerSec float64 `json:"ops_per_s"`
}

// GoBench is one result line of `go test -bench`.
type GoBench struct {
	Pkg     string             `json:"pkg"`
	Name    string             `json:"name"` // without the -GOMAXPROCS suffix
	N       int                `json:"n"`
	NsPerOp float64            `json:"ns_per_op"`
	Metrics map[string]float64 `json:"metrics"` // unit → value, ns/op excluded
}

// LoadPoint is one `kecis loadtest` run.
type LoadPoint struct {
	// Phase: "fresh" (the demo as started), "push" (the History
	// approvals), "history" (after them), "rsa" (the demo with RSA signing
	// keys), "rsa-push" and "rsa-history" (its push and the runs after
	// it), or "replicas" (the demo's hub on PostgreSQL, with Replicas hubs
	// on it taking the requests in turn). Kind: "closed" (as fast as the
	// workers go) or "open" (at OfferedPct of the fresh peak).
	Phase      string `json:"phase"`
	Kind       string `json:"kind"`
	Round      int    `json:"round"`
	OfferedPct int    `json:"offered_pct,omitempty"`
	Replicas   int    `json:"replicas,omitempty"`
	// CPUS: the demo process's CPU time (user+system) over the run, and
	// its extra hub replicas' (PostgreSQL's not counted).
	CPUS float64 `json:"cpu_s"`
	// Load1 before the run.
	Load1   float64           `json:"load1"`
	Summary *loadtest.Summary `json:"summary"`
}

// readData reads a Data file written by writeData.
func readData(path string) (*Data, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// writeData writes d as indented JSON.
func writeData(path string, d *Data) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
