package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchOps are the operations scripts/bench-peers.sh expects one RESULT
// line of, in its table order.
var benchOps = []string{"rsa-sha256-sign", "rsa-sha256-verify", "ecdsa-sha256-sign", "ecdsa-sha256-verify",
	"xmlenc-gcm256-oaep-encrypt", "xmlenc-gcm256-oaep-decrypt",
	"raw-rsa2048-sign", "raw-rsa2048-oaep-decrypt", "raw-ecdsa-p256-sign", "raw-ecdsa-p256-verify"}

// TestEnvelopeBench: kecis envelope bench, with the arguments
// scripts/bench-peers.sh gives it, prints one "RESULT kecis <op> <rate>"
// line per operation and a progress line per operation on stderr; --json
// the same results as JSON.
func TestEnvelopeBench(t *testing.T) {
	args := []string{"envelope", "bench", "--in", benchDoc,
		"--key", keyPath("merchant-rsa"), "--cert", certPath("merchant-rsa"),
		"--ec-key", keyPath("merchant-ec"), "--ec-cert", certPath("merchant-ec"),
		"--recipient-cert", certPath("issuer-rsa"), "--recipient-key", keyPath("issuer-rsa"),
		"--duration", "1ms"}
	code, out, errOut := kecis(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(benchOps) {
		t.Fatalf("%d result lines, want %d:\n%s", len(lines), len(benchOps), out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "RESULT" || f[1] != "kecis" || f[2] != benchOps[i] {
			t.Errorf("line %d: %q, want RESULT kecis %s <ops/s>", i+1, l, benchOps[i])
		}
	}
	if n := strings.Count(errOut, "bench: "); n != len(benchOps) {
		t.Errorf("%d progress lines on stderr, want %d:\n%s", n, len(benchOps), errOut)
	}

	code, out, errOut = kecis(t, nil, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var res []benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != len(benchOps) {
		t.Fatalf("--json: %v, %d results:\n%s", err, len(res), out)
	}
	for i, r := range res {
		if r.Op != benchOps[i] || r.Ops <= 0 || r.OpsPerSec <= 0 {
			t.Errorf("--json result %d: %+v", i, r)
		}
	}

	// A key that cannot sign is refused before anything is measured.
	if code, _, errOut := kecis(t, nil, "envelope", "bench", "--in", benchDoc,
		"--key", keyPath("merchant-rsa"), "--cert", certPath("issuer-rsa"), "--duration", "1ms"); code == 0 {
		t.Fatalf("a key and a certificate that do not match were accepted: %s", errOut)
	}
}
