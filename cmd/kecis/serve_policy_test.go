package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesBadPolicy: a payment policy that does not compile
// (KECIS §12.9) stops `kecis serve` before it opens its database, with
// exit status 1 and every problem named (docs/policy.md).
func TestServeRefusesBadPolicy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.yaml")
	yaml := `entity_id: https://hub.test/kecis
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: s/cert.pem, key: s/key.pem}
database: {dsn: "sqlite:hub.db"}
policy:
  rules:
    - {id: cap, kind: max-amount, max: {KRW: "12.5"}, message: m}
    - {id: strong, kind: require-2fa, message: m}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := kecis(t, nil, "serve", "--config", cfg)
	if code != exitFailed || !strings.Contains(stderr, `amount "12.5" of KRW`) {
		t.Fatalf("a bad amount: exit %d, %s", code, stderr)
	}
	yaml = strings.Replace(yaml, `max: {KRW: "12.5"}`, `max: {KRW: 5000000}`, 1)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KECIS_POLICY_PRESET", "kr-2099")
	code, _, stderr = kecis(t, nil, "serve", "--config", cfg)
	for _, want := range []string{`policy.rules[1] (id "strong"): unknown kind "require-2fa"`, `policy.preset: unknown preset "kr-2099"`} {
		if code != exitFailed || !strings.Contains(stderr, want) {
			t.Errorf("exit %d; stderr lacks %q: %s", code, want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hub.db")); err == nil {
		t.Error("the hub opened its database with a bad policy")
	}
}
