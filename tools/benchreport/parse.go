package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseEnvelope reads `kecis envelope bench --json`: a list of
// {"op", "opsPerSec", "ops"}; it returns ops/s by op.
func parseEnvelope(r io.Reader) (map[string]float64, error) {
	var res []struct {
		Op        string  `json:"op"`
		OpsPerSec float64 `json:"opsPerSec"`
	}
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("envelope bench JSON: %w", err)
	}
	m := make(map[string]float64, len(res))
	for _, x := range res {
		if x.Op == "" || !(x.OpsPerSec > 0) {
			return nil, fmt.Errorf("envelope bench JSON: op %q with %v ops/s", x.Op, x.OpsPerSec)
		}
		if _, dup := m[x.Op]; dup {
			return nil, fmt.Errorf("envelope bench JSON: op %q twice", x.Op)
		}
		m[x.Op] = x.OpsPerSec
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("envelope bench JSON: no operation")
	}
	return m, nil
}

// parsePeers reads scripts/bench-peers.sh's RESULTS_FILE, a line per
// round, implementation and operation: "<round> <impl> <op> <ops_per_sec>".
func parsePeers(r io.Reader) ([]PeerResult, error) {
	var out []PeerResult
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("peer results line %d: want 4 fields, got %d", n, len(f))
		}
		round, err := strconv.Atoi(f[0])
		if err != nil || round < 1 {
			return nil, fmt.Errorf("peer results line %d: round %q", n, f[0])
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("peer results line %d: ops/s %q", n, f[3])
		}
		out = append(out, PeerResult{Round: round, Impl: f[1], Op: f[2], OpsPerSec: v})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("peer results: empty")
	}
	return out, nil
}

// parseGoBench reads `go test -bench` output: "pkg: P" lines name the
// package of the results after them; a result line is
// "BenchmarkName[-P] N v unit [v unit]…". Other lines are ignored.
func parseGoBench(r io.Reader) ([]GoBench, error) {
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue // "BenchmarkX ... FAIL" or a log line
		}
		b := GoBench{Pkg: pkg, Name: trimProcs(f[0]), N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			if f[i+1] == "ns/op" {
				b.NsPerOp = v
			} else {
				b.Metrics[f[i+1]] = v
			}
		}
		if ok {
			out = append(out, b)
		}
	}
	return out, sc.Err()
}

// trimProcs drops the -GOMAXPROCS suffix go test adds to a name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// parseLoadavg reads the 1-minute load average from /proc/loadavg's text.
func parseLoadavg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("loadavg: empty")
	}
	return strconv.ParseFloat(f[0], 64)
}

// parseProcCPU reads a process's user+system CPU time in clock ticks from
// /proc/PID/stat's text (fields 14 and 15, counted after the command,
// which may hold spaces, in parentheses).
func parseProcCPU(s string) (int64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", f[11], f[12])
	}
	return u + st, nil
}
