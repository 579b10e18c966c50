package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadtestExitStatus: kecis loadtest's usage errors exit 2 — a host
// neither loopback nor allowed too, before anything is sent — and a run
// that cannot go (no demo in the directory, a hub that does not answer)
// exits 1. TestLoadtestDemo (conformance/loadtest) runs it against the
// demo; the command is that package's Run behind these flags.
func TestLoadtestExitStatus(t *testing.T) {
	dir := t.TempDir()
	target := func(name, hub string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("hub_url: "+hub+"\nmerchants: [{name: shop, api_key: k}]\ncard: {number: '9490101234567893', exp_month: 12, exp_year: 2031}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	remote := target("remote.yaml", "https://hub.example:8443")
	dead := target("dead.yaml", "https://127.0.0.1:1")
	for _, c := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"neither --demo nor --target", []string{"loadtest", "--requests", "10"}, exitUsage, "give --demo DIR or --target FILE"},
		{"both", []string{"loadtest", "--demo", dir, "--target", remote, "--requests", "10"}, exitUsage, "one of them"},
		{"unbounded", []string{"loadtest", "--demo", dir}, exitUsage, "give --requests N or --duration D"},
		{"too many requests", []string{"loadtest", "--demo", dir, "--requests", "500001"}, exitUsage, "requests must be between 1 and 500000"},
		{"no workers", []string{"loadtest", "--demo", dir, "--requests", "10", "--concurrency", "0"}, exitUsage, "concurrency"},
		{"bad mix", []string{"loadtest", "--demo", dir, "--requests", "10", "--mix", "buy=3"}, exitUsage, `no operation "buy"`},
		{"bad duration", []string{"loadtest", "--demo", dir, "--duration", "soon"}, exitUsage, `invalid argument "soon"`},
		{"a host not loopback", []string{"loadtest", "--target", remote, "--requests", "10"}, exitUsage, "hub.example is not a loopback host"},
		{"no demo running", []string{"loadtest", "--demo", filepath.Join(dir, "none"), "--requests", "10"}, exitFailed, "no demo runs in"},
		{"a hub that does not answer", []string{"loadtest", "--target", dead, "--requests", "2", "--timeout", "2s", "--retries", "0", "-q"}, exitFailed, ""},
		{"replicas without a target", []string{"loadtest", "--target", "https://127.0.0.1:8443", "--requests", "10"}, exitUsage, "a --target URL only says where"},
		{"two target files", []string{"loadtest", "--target", remote + "," + dead, "--requests", "10"}, exitUsage, "two target files"},
		{"a replica not loopback", []string{"loadtest", "--target", dead, "--target", "https://127.0.0.1:2,https://10.0.0.7:8443", "--requests", "10"}, exitUsage,
			"10.0.0.7 is not a loopback host"},
		{"replicas that do not answer", []string{"loadtest", "--target", dead + ",https://127.0.0.1:2,https://127.0.0.1:3", "--requests", "2", "--timeout", "2s", "--retries", "1", "-q"},
			exitFailed, "the hub at https://127.0.0.1:2, https://127.0.0.1:3 answered none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := kecis(t, nil, c.args...)
			if code != c.code || !strings.Contains(stderr, c.err) {
				t.Fatalf("kecis %s: exit %d, want %d; stderr %q lacks %q", strings.Join(c.args, " "), code, c.code, stderr, c.err)
			}
			checkStderr(t, code, stderr)
			if strings.Contains(stderr, "9490101234567893") {
				t.Errorf("stderr shows the card number: %q", stderr)
			}
		})
	}
}

// TestLoadtestCPUProfile: --cpuprofile FILE writes the load generator's
// CPU profile (gzip-compressed, what go tool pprof reads) even when the
// run fails; a file that cannot be created stops the run before it starts.
func TestLoadtestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "dead.yaml")
	if err := os.WriteFile(dead, []byte("hub_url: https://127.0.0.1:1\nmerchants: [{name: shop, api_key: k}]\ncard: {number: '9490101234567893', exp_month: 12, exp_year: 2031}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prof := filepath.Join(dir, "cpu.pprof")
	code, _, stderr := kecis(t, nil, "loadtest", "--target", dead, "--requests", "2", "--timeout", "2s", "--retries", "0", "-q", "--cpuprofile", prof)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitFailed, stderr)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("%s is not a gzip-compressed profile (%d bytes)", prof, len(b))
	}
	code, _, stderr = kecis(t, nil, "loadtest", "--target", dead, "--requests", "2", "-q", "--cpuprofile", filepath.Join(dir, "none", "cpu.pprof"))
	if code != exitFailed || !strings.Contains(stderr, "--cpuprofile") {
		t.Fatalf("exit %d, want %d; stderr %q lacks --cpuprofile", code, exitFailed, stderr)
	}
}
